"""Checks on the CN layout (real or synthetic). Each check returns a list of `DataError` so that
`validate_cn` can report every problem while the loader raises the first fatal one.

Problems found (each names the file, field, code and date where known): missing calendar,
instruments or ``.bin`` files; a ``.bin`` whose length disagrees with the calendar; fields of one
stock that disagree on start or length; NaN (in part of a bar) or inf values; non-positive prices
or factors; negative volume; ``high < low``; duplicate codes or rows; unsorted or duplicate dates;
unknown code styles; malformed membership, fundamentals or industry files.

A bar with **every** price field NaN is a missing bar (the real data has three), not an error:
it is reported as a note and treated as suspended by the loader. A NaN volume next to a
carried-forward price is how the real data marks some suspensions (3,126 stock-days): also
suspended, also a note.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.errors import DataError


def bin_path(root: str | Path, code: str, name: str) -> str:
    """Path of one ``.bin``: ``<root>/prices/features/<code lower>/<name>.day.bin`` (a string:
    this is called once per file, and ``Path`` arithmetic costs more than the read)."""
    return f"{os.fspath(root)}/prices/features/{code.lower()}/{name}.day.bin"


def _first(mask: np.ndarray) -> tuple[int, int]:
    """First ``(t, n)`` where ``mask`` is true, in date order."""
    flat = np.flatnonzero(mask.reshape(-1))
    t, n = divmod(int(flat[0]), mask.shape[1])
    return t, n


def check_bars(
    arrays: Mapping[str, np.ndarray],
    listed: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    root: str | Path,
) -> list[DataError]:
    """Vectorised checks of ``[T, N]`` bar fields inside each stock's listed range.

    ``arrays`` maps field names (any of open, high, low, close, factor, volume) to ``float32[T, N]``;
    ``listed`` is ``bool[T, N]``. Returns one `DataError` per kind of problem and field, naming the
    first offending code and date and the count.
    """
    out: list[DataError] = []
    names = [k for k in ("open", "high", "low", "close", "volume", "factor") if k in arrays]
    if not names:
        return out
    nan_all = np.ones_like(listed)
    for k in names:
        if k != "volume":  # NaN volume with a carried price marks a suspension in the real data
            nan_all &= np.isnan(arrays[k])

    def report(bad: np.ndarray, name: str, what: str) -> None:
        bad = bad & listed
        if bad.any():
            t, n = _first(bad)
            cnt = int(bad.sum())
            out.append(
                DataError(
                    f"{what} ({cnt} value{'s' if cnt > 1 else ''})",
                    file=bin_path(root, str(assets[n]), name),
                    field=name,
                    code=str(assets[n]),
                    date=dates[t],
                )
            )

    with np.errstate(invalid="ignore"):
        for k in names:
            a = arrays[k]
            if k != "volume":
                report(np.isnan(a) & ~nan_all, k, "NaN in a partly filled bar")
            report(np.isinf(a), k, "infinite value")
            if k == "volume":
                report(a < 0, k, "negative volume")
            else:
                report(a <= 0, k, "non-positive price" if k != "factor" else "non-positive factor")
        if "high" in arrays and "low" in arrays:
            report(arrays["high"] < arrays["low"], "high", "high < low")
    return out


def check_instrument_spans(
    root: str | Path, listed: np.ndarray, dates: np.ndarray, assets: np.ndarray
) -> list[DataError]:
    """``instruments/all.txt`` first/last day of each stock must match its ``.bin`` history
    (first and last finite close; ``listed`` is ``bool[T, N]``)."""
    from deepalpha.data.codes import normalize_code
    from deepalpha.data.qlib_bin import read_instruments

    path = Path(root) / "prices" / "instruments" / "all.txt"
    spans = {
        normalize_code(c, file=str(path)): (s, e) for c, s, e in read_instruments(path.parents[1])
    }
    T = len(dates)
    any_ = listed.any(axis=0)
    first = listed.argmax(axis=0)
    last = T - 1 - listed[::-1].argmax(axis=0)
    out = []
    for n, a in enumerate(np.asarray(assets).tolist()):
        if a not in spans or not any_[n]:
            continue
        s, e = spans[a]
        if s != dates[first[n]] or e != dates[last[n]]:
            out.append(
                DataError(
                    f"instruments span {s}..{e} disagrees with the .bin history "
                    f"{dates[first[n]]}..{dates[last[n]]}",
                    file=path,
                    code=a,
                    date=s if s != dates[first[n]] else e,
                )
            )
    return out


def missing_bar_count(arrays: Mapping[str, np.ndarray], listed: np.ndarray) -> int:
    """Bars inside the listed range with every price field NaN (treated as suspended)."""
    m = listed.copy()
    for k, a in arrays.items():
        if k != "volume":
            m &= np.isnan(a)
    return int(m.sum())


def check_unique(values: np.ndarray, *, file: str | Path, what: str = "code") -> list[DataError]:
    """A `DataError` per duplicated value (``what`` = ``code`` or ``date``)."""
    u, c = np.unique(np.asarray(values), return_counts=True)
    out = []
    for v in u[c > 1][:10]:
        kw: dict[str, Any] = {"code": str(v)} if what == "code" else {"date": v}
        out.append(DataError(f"duplicate {what}", file=file, **kw))
    return out


def csi800_mismatch_dates(
    spells: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], dates: np.ndarray
) -> np.ndarray:
    """Month-end trading days where the csi800 members differ from csi300 + csi500."""
    from deepalpha.data.universe import members_on

    d = np.asarray(dates, dtype="datetime64[D]")
    month = d.astype("datetime64[M]")
    ends = d[np.append(month[1:] != month[:-1], True)]
    bad = []
    for t in ends:
        a = members_on(*spells["csi800"], t)
        b = np.union1d(members_on(*spells["csi300"], t), members_on(*spells["csi500"], t))
        if len(a) != len(b) or (a != b).any():
            bad.append(t)
    return np.array(bad, dtype="datetime64[D]")


@dataclass
class Report:
    """Result of `validate_cn`: ``problems`` fail validation, ``notes`` do not."""

    problems: list[DataError] = field(default_factory=list)
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

    Returns a `Report` with ``problems`` (list of `DataError`) and informational ``notes``.
    """
    from deepalpha.data import cn, fundamentals, stockinfo, universe
    from deepalpha.data.qlib_bin import read_calendar

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
