"""`validate_cn`: read a data folder and run every check of `deepalpha.data.validate` on it.

Both layouts the loader reads are checked in place (see `deepalpha.data.layout`):

* the deepalpha layout (``prices/``, ``index_membership/``, ``fundamentals/``, ``industry/``):
  every file is required, as the real and synthetic data have them all;
* a plain Qlib provider folder (``calendars/day.txt``, ``instruments/``, ``features/``): what is
  there is checked (calendar, ``instruments/all.txt`` and its spell files, every ``.bin``, the
  silent-damage warnings); the inputs only System A and the risk model need (fundamentals,
  industries) and absent spell files are notes, not problems, because the loader, System B and
  its evaluation run without them.

Lives apart from the pure checks so that ``validate`` imports no loader (the loader ``cn``
imports ``validate``; this module imports both).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.data import cn, fundamentals, stockinfo, universe
from deepalpha.data.codes import is_index_code, normalize_code
from deepalpha.data.layout import UNIVERSE_FILES, Layout, detect_layout
from deepalpha.data.qlib_bin import read_calendar, read_instruments
from deepalpha.data.validate import (
    DamageWarning,
    bin_path,
    check_bars,
    check_damage,
    check_instrument_spans,
    check_unique,
    csi800_mismatch_dates,
    missing_bar_count,
)
from deepalpha.errors import DataError

#: what the risk-model note says the missing inputs are for (`inputs.require_risk_inputs`)
RISK_PURPOSE = "the risk model (System A, the optimiser's risk: model)"


@dataclass
class Report:
    """Result of `validate_cn`: ``problems`` fail validation; ``warnings`` (silent damage, a
    count per stock) and ``notes`` do not. ``layout`` is the folder's layout (``cn`` or
    ``qlib``; ``None`` when the folder is not a data folder at all)."""

    problems: list[DataError] = field(default_factory=list)
    warnings: list[DamageWarning] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layout: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _collect(rep: Report, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except DataError as e:
        rep.problems.append(e)
        return None


def _real_path(file: str, lay: Layout) -> str:
    """The pure checks name ``<root>/prices/features/...``; in a Qlib folder the ``.bin`` is
    ``<root>/features/...`` (unchanged for the deepalpha layout)."""
    wrong = os.path.dirname(os.path.dirname(bin_path(lay.root, "x", "f")))  # .../prices/features
    right = f"{os.fspath(lay.prices)}/features"
    return right + file[len(wrong) :] if file.startswith(wrong + "/") else file


def _relocated(e: DataError, lay: Layout) -> DataError:
    """``e`` naming the layout's real file."""
    if e.file is None or lay.kind == "cn":
        return e
    return DataError(
        e.message, file=_real_path(e.file, lay), field=e.field, code=e.code, date=e.date
    )


def truncated_bins(lay: Layout, assets: np.ndarray, names: Sequence[str]) -> list[DataError]:
    """A `DataError` per ``.bin`` whose size is not a whole number of float32 values (a file cut
    off mid-value: ``np.fromfile`` would silently drop the tail). Missing files are skipped
    (reported by the read)."""
    out = []
    for code in np.asarray(assets).tolist():
        for name in names:
            p = lay.bin(code, name)
            try:
                size = os.stat(p).st_size
            except OSError:
                continue
            if size % 4:
                out.append(
                    DataError(
                        f"truncated .bin file: {size} bytes is not a whole number of "
                        "float32 values",
                        file=p,
                        field=name,
                        code=code,
                    )
                )
    return out


def _stored_range(p: str, n_dates: int) -> tuple[int, int] | None:
    """``(first, last)`` calendar index a ``.bin`` holds rows for (from its header and size);
    ``None`` when the file is missing or broken (the read reports it)."""
    try:
        with open(p, "rb") as fh:
            head = np.frombuffer(fh.read(4), dtype="<f4")
        size = os.stat(p).st_size
    except OSError:
        return None
    n = size // 4 - 1
    if head.size < 1 or n < 1 or not np.isfinite(head[0]) or head[0] < 0:
        return None
    s = int(head[0])
    return (s, s + n - 1) if s + n <= n_dates else None


def qlib_span_checks(
    lay: Layout, listed: np.ndarray, dates: np.ndarray, assets: np.ndarray
) -> tuple[list[DataError], str | None]:
    """A Qlib folder's ``instruments/all.txt`` spans against each stock's ``close.day.bin``.

    Qlib writes a stock's span and its ``.bin`` rows from the same table, so a ``.bin`` holding
    fewer days than the span promises is cut short (an interrupted download or dump): a
    `DataError` naming the ``.bin``. A span that the rows cover but whose first or last days hold
    no price (a suspension at the end of the data) is not damage, and the loader uses the
    ``.bin`` history: one note with the count and the first stock (``None`` when all agree).
    """
    path = lay.instruments_file
    spans = {}
    for c, s, e in read_instruments(lay.prices):
        code = normalize_code(c, file=str(path))
        if not is_index_code(code):
            spans[code] = (s, e)
    T = len(dates)
    any_ = listed.any(axis=0)
    first = listed.argmax(axis=0)
    last = T - 1 - listed[::-1].argmax(axis=0)
    errors: list[DataError] = []
    differ = []
    for n, a in enumerate(np.asarray(assets).tolist()):
        if a not in spans:
            continue
        s, e = spans[a]
        p = lay.bin(a, "close")
        held = _stored_range(p, T)
        if held is not None and (s < dates[held[0]] or e > dates[held[1]]):
            errors.append(
                DataError(
                    f".bin holds {dates[held[0]]}..{dates[held[1]]} but instruments/all.txt "
                    f"lists the stock {s}..{e} (a cut-short file?)",
                    file=p,
                    field="close",
                    code=a,
                    date=s if s < dates[held[0]] else e,
                )
            )
        elif any_[n] and (s, e) != (dates[first[n]], dates[last[n]]):
            differ.append((a, s, e, dates[first[n]], dates[last[n]]))
    if not differ:
        return errors, None
    a, s, e, f, t = differ[0]
    return errors, (
        f"{len(differ)} stock(s) whose instruments/all.txt span disagrees with the first and "
        f"last close of its .bin files (first: {a} {s}..{e} in all.txt, {f}..{t} in the .bin "
        f"files; file={path}); the loader uses the .bin history"
    )


def _fundamental_files(lay: Layout, src: cn.Sources | None) -> list[str]:
    """The ``fundamentals/*.csv`` names to check: every one in the deepalpha layout; in a Qlib
    folder none without ``fundamentals/``, else those the loader reads (a field's file unless a
    daily ``.bin`` of every stock replaces it, see `deepalpha.data.cn.field_available`)."""
    if lay.kind == "cn":
        return list(cn.FUNDAMENTAL_FILES)
    if not lay.fundamentals.is_dir():
        return []
    bins = src.bins if src is not None else frozenset()
    need = {
        d for f, deps in cn._FUND_DEPS.items() if cn._DAILY_BIN_FOR.get(f) not in bins for d in deps
    }
    return [x for x in cn.FUNDAMENTAL_FILES if x in need]


def risk_note(lay: Layout) -> str | None:
    """The inputs System A and the risk model need that the folder lacks, worded as
    `deepalpha.data.inputs.require_risk_inputs` words them (``None`` when complete)."""
    from deepalpha.data.inputs import require_risk_inputs

    try:
        require_risk_inputs(lay, RISK_PURPOSE)
    except DataError as e:
        return e.message
    return None


def validate_cn(path: str | Path) -> Report:
    """Check every file of the data folder at ``path``; collect problems instead of stopping.

    ``path`` is the deepalpha layout (every file required, as before) or a plain Qlib provider
    folder (what is there is checked; missing fundamentals, industries and spell files are
    notes saying what needs them). A folder of neither layout is one problem.

    Returns a `Report` with ``problems`` (list of `DataError`), ``warnings`` (list of
    `DamageWarning`) and informational ``notes``.
    """
    rep = Report()
    lay = _collect(rep, lambda: detect_layout(path))
    if lay is None:
        return rep
    rep.layout = lay.kind
    qlib = lay.kind == "qlib"
    if lay.note:
        rep.notes.append(lay.note)
    if qlib:
        rep.notes.append(
            f"Qlib provider folder (calendars/, instruments/, features/ at {lay.root}): "
            "checked as it is; fundamentals/, industry/ and spell files are optional"
        )
    dates = _collect(rep, lambda: read_calendar(lay.prices))
    inst = _collect(rep, lambda: cn.read_stock_list(lay))
    src = None if inst is None else cn.probe_sources(lay, inst[0])
    if dates is not None and inst is not None and src is not None:
        assets, _ = inst
        names = [f for f in cn.BIN_FIELDS if f != "factor" or src.factor]
        raw = cn.read_price_bins(lay, assets, names, len(dates), errors=rep.problems)
        rep.problems.extend(truncated_bins(lay, assets, names))
        if qlib and not src.factor:
            rep.notes.append(
                "no $factor (factor.day.bin) in the Qlib folder: prices are used as stored with "
                "factor 1; moves beyond the price limit are not checked"
            )
        elif qlib:
            filled = cn.fill_factor_gaps(raw["factor"], raw["close"])  # as the loader does
            if filled:
                rep.notes.append(
                    f"{filled} Qlib bar(s) with a price but no $factor: the loader uses the "
                    "stock's previous (else next) factor"
                )
        if src.partial:
            rep.notes.append(
                f"optional .bin fields present for only some stocks, not used: {src.partial}"
            )
        listed = cn.listed_from_close(raw["close"])
        bars = check_bars(raw, listed, dates, assets, lay.root)
        rep.problems.extend(_relocated(e, lay) for e in bars)
        if qlib:
            spans = _collect(rep, lambda: qlib_span_checks(lay, listed, dates, assets))
            if spans is not None:
                named = {e.file for e in rep.problems}  # one file, one cause is enough
                rep.problems.extend(e for e in spans[0] if e.file not in named)
                if spans[1]:
                    rep.notes.append(spans[1])
        else:
            rep.problems.extend(check_instrument_spans(lay.root, listed, dates, assets))
        for w in check_damage(raw, listed, dates, assets, lay.root):
            rep.warnings.append(replace(w, file=_real_path(w.file, lay)))
        nvol = int((np.isnan(raw["volume"]) & listed).sum())
        if nvol:
            rep.notes.append(f"{nvol} listed stock-day(s) with NaN volume (treated as suspended)")
        nmiss = missing_bar_count(raw, listed)
        if nmiss:
            rep.notes.append(f"{nmiss} missing bar(s) (every field NaN) inside price histories")
        rep.notes.append(f"{len(dates)} dates {dates[0]}..{dates[-1]}, {len(assets)} stocks")
    spells: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    absent: list[str] = []
    for u in UNIVERSE_FILES:
        p = lay.universe_file(u)
        if not p.is_file():
            if qlib:
                absent.append(u)
            else:
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
    if absent:
        rep.notes.extend(_absent_universe_notes(lay, absent))
    if all(k in spells for k in ("csi300", "csi500", "csi800")) and dates is not None:
        bad = csi800_mismatch_dates(spells, dates)
        if len(bad):
            rep.notes.append(
                f"csi800.txt disagrees with csi300 + csi500 on {len(bad)} month-end date(s) "
                f"({bad[0]}..{bad[-1]}); the loader uses the union"
            )
    # a Qlib folder may lack fundamentals/ (named in the risk-inputs note below); once it has
    # one, the loader reads every file a field needs (one not replaced by a daily .bin)
    for name in _fundamental_files(lay, src):
        p = lay.fundamentals / f"{name}.csv"
        _collect(rep, lambda p=p: fundamentals.read_wide_csv(p))
    has_industry = any(
        (lay.industry / f).is_file() for f in ("stock_basic.csv", "csrc_industry.csv")
    )
    if not qlib or has_industry:
        _collect(rep, lambda: stockinfo.load_stock_info(lay.root))
    if qlib:
        if inst is not None:
            note = _collect(rep, lambda: risk_note(lay))
            if note:
                rep.notes.append(note)
        if not has_industry:
            rep.notes.append("no industry table: list dates are the first price dates")
        if src is not None and not cn.field_available("mktcap", src):
            from deepalpha.data.size_proxy import CAVEAT

            rep.notes.append(CAVEAT)
    elif not (lay.root / "index_bars").is_dir():
        rep.notes.append("no index_bars/ folder (optional)")
    return rep


def _absent_universe_notes(lay: Layout, absent: list[str]) -> list[str]:
    """Notes for the spell files a Qlib folder lacks, saying what the loader does instead."""
    out = []
    if "all" in absent:
        out.append(
            "no instruments/csiall.txt: CSI All Share is every listed stock of "
            "instruments/all.txt (point in time only if the folder keeps delisted stocks)"
        )
    rest = [u for u in absent if u != "all"]
    if "csi800" in rest and all(lay.universe_file(k).is_file() for k in ("csi300", "csi500")):
        rest.remove("csi800")  # the loader builds CSI 800 as CSI 300 + CSI 500
    if rest:
        files = ", ".join(f"instruments/{UNIVERSE_FILES[u]}" for u in rest)
        out.append(f"no {files}: universe mask(s) {', '.join(rest)} absent (optional)")
    return out
