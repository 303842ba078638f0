"""`validate_cn`: read a CN-layout folder and run every check of `deepalpha.data.validate` on it.

Lives apart from the pure checks so that ``validate`` imports no loader (the loader ``cn``
imports ``validate``; this module imports both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.data import cn, fundamentals, stockinfo, universe
from deepalpha.data.qlib_bin import read_calendar
from deepalpha.data.validate import (
    DamageWarning,
    check_bars,
    check_damage,
    check_instrument_spans,
    check_unique,
    csi800_mismatch_dates,
    missing_bar_count,
)
from deepalpha.errors import DataError


@dataclass
class Report:
    """Result of `validate_cn`: ``problems`` fail validation; ``warnings`` (silent damage, a
    count per stock) and ``notes`` do not."""

    problems: list[DataError] = field(default_factory=list)
    warnings: list[DamageWarning] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _collect(rep: Report, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except DataError as e:
        rep.problems.append(e)
        return None


def validate_cn(path: str | Path) -> Report:
    """Check every file of a CN layout at ``path``; collect problems instead of stopping.

    Returns a `Report` with ``problems`` (list of `DataError`), ``warnings`` (list of
    `DamageWarning`) and informational ``notes``.
    """
    root = Path(path)
    rep = Report()
    prices = root / "prices"
    dates = _collect(rep, lambda: read_calendar(prices))
    inst = _collect(rep, lambda: cn.read_stock_list(root))
    if dates is not None and inst is not None:
        assets, _ = inst
        raw = cn.read_price_bins(root, assets, cn.BIN_FIELDS, len(dates), errors=rep.problems)
        listed = cn.listed_from_close(raw["close"])
        rep.problems.extend(check_bars(raw, listed, dates, assets, root))
        rep.problems.extend(check_instrument_spans(root, listed, dates, assets))
        rep.warnings.extend(check_damage(raw, listed, dates, assets, root))
        nvol = int((np.isnan(raw["volume"]) & listed).sum())
        if nvol:
            rep.notes.append(f"{nvol} listed stock-day(s) with NaN volume (treated as suspended)")
        nmiss = missing_bar_count(raw, listed)
        if nmiss:
            rep.notes.append(f"{nmiss} missing bar(s) (every field NaN) inside price histories")
        rep.notes.append(f"{len(dates)} dates {dates[0]}..{dates[-1]}, {len(assets)} stocks")
    spells: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for u, fname in cn.UNIVERSE_FILES.items():
        p = root / "index_membership" / fname
        if not p.is_file():
            rep.problems.append(DataError(f"missing membership file for {u}", file=p))
            continue
        skipped: list[str] = []
        sp = _collect(rep, lambda p=p, sk=skipped: universe.read_spells(p, skipped=sk))
        if skipped:
            rep.notes.append(f"{p.name}: {len(skipped)} row(s) with unknown codes {set(skipped)}")
        if sp is not None:
            spells[u] = sp
            codes, s, e = sp
            key = np.char.add(np.char.add(codes, s.astype(str)), e.astype(str))
            for d in check_unique(key, file=p, what="code"):
                rep.problems.append(DataError("duplicate membership row", file=p, code=d.code[:8]))
    if all(k in spells for k in ("csi300", "csi500", "csi800")) and dates is not None:
        bad = csi800_mismatch_dates(spells, dates)
        if len(bad):
            rep.notes.append(
                f"csi800.txt disagrees with csi300 + csi500 on {len(bad)} month-end date(s) "
                f"({bad[0]}..{bad[-1]}); the loader uses the union"
            )
    for name in cn.FUNDAMENTAL_FILES:
        p = root / "fundamentals" / f"{name}.csv"
        _collect(rep, lambda p=p: fundamentals.read_wide_csv(p))
    _collect(rep, lambda: stockinfo.load_stock_info(root))
    if not (root / "index_bars").is_dir():
        rep.notes.append("no index_bars/ folder (optional)")
    return rep
