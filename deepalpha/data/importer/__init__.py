"""`deepalpha data import`: long tables (Parquet or CSV) -> a complete deepalpha data folder.

Pipeline (each step in its own module, pure on frames/arrays; this module does the I/O):

``read`` (files, names, dates, codes) -> ``bars`` (checks, units, back-adjustment, suspensions)
-> ``membership`` (spells) -> ``fundamentals`` (wide files, announcement dates) -> ``industries``
-> written to a temporary folder beside the target, read back with `load_cn` as the last check,
then renamed into place. Nothing is left behind when any step fails.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepalpha.data.importer.bars import DAILY_OUT, Bars, PriceKind, prepare_bars, to_dense
from deepalpha.data.importer.fundamentals import wide_tables
from deepalpha.data.importer.industries import stock_basic_csv
from deepalpha.data.importer.membership import membership_spells, spells_text
from deepalpha.data.importer.read import parse_map, read_tables
from deepalpha.errors import ConfigError, DataError

__all__ = ["ImportReport", "import_tables", "parse_map"]

Sources = str | Path | Sequence[str | Path]


@dataclass
class ImportReport:
    """What an import wrote: the folder, its size and every note (units, fills, unmapped)."""

    out: Path
    dates: tuple[str, str]
    stocks: int
    days: int
    files: int
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _write_bars(prices: Path, bars: Bars, index: Bars | None) -> int:
    """Our ``prices/`` folder (a Qlib folder with volume in shares); returns the file count."""
    from deepalpha.data.qlib_bin import write_calendar

    write_calendar(prices, bars.dates)
    rows = []
    n_files = 1
    for b in (bars, index) if index is not None else (bars,):
        names = [
            k
            for k in ("open", "high", "low", "close", "volume", "factor", *DAILY_OUT)
            if k in b.fields
        ]
        fin = np.isfinite(b.fields["close"])
        for n, code in enumerate(b.codes.tolist()):
            t = np.flatnonzero(fin[:, n])
            if t.size == 0:
                continue
            s, e = int(t[0]), int(t[-1])
            rows.append(f"{code}\t{bars.dates[s]}\t{bars.dates[e]}\n")
            d = prices / "features" / code.lower()
            d.mkdir(parents=True, exist_ok=True)
            for k in names:
                buf = np.empty(e - s + 2, dtype="<f4")
                buf[0] = s
                buf[1:] = b.fields[k][s : e + 1, n]
                buf.tofile(d / f"{k}.day.bin")
                n_files += 1
    (prices / "instruments").mkdir(parents=True, exist_ok=True)
    (prices / "instruments" / "all.txt").write_text("".join(sorted(rows)))
    return n_files + 1


def _index_bars(sources: Sources, mapping: Mapping[str, str], dates: np.ndarray) -> Bars:
    """Index bars on the stocks' calendar (factor 1; days off that calendar are dropped)."""
    df = prepare_bars([read_tables(sources, mapping)])
    b = to_dense(df, "adjusted")
    pos = np.searchsorted(dates, b.dates)
    ok = (pos < len(dates)) & (dates[np.minimum(pos, len(dates) - 1)] == b.dates)
    f = {}
    for k, a in b.fields.items():
        out = np.full((len(dates), a.shape[1]), np.nan, np.float32)
        out[pos[ok]] = a[ok]
        f[k] = out
    notes = [x for x in b.notes if not x.startswith("no adjustment factor")]
    if (~ok).any():
        notes.append(f"index bars: {int((~ok).sum())} date(s) off the stocks' calendar dropped")
    return Bars(dates, b.codes, f, notes)


def import_tables(
    out: str | Path,
    *,
    bars: str | Path | Sequence[str | Path],
    prices: PriceKind,
    mapping: Mapping[str, str] | None = None,
    membership: Sources | None = None,
    fundamentals: Sources | None = None,
    industries: Sources | None = None,
    index_bars: Sources | None = None,
    industry_map: Mapping[str, str] | None = None,
    overwrite: bool = False,
    check: bool = True,
) -> ImportReport:
    """Build a deepalpha data folder at ``out`` from long tables.

    Parameters
    ----------
    bars : one source (file, folder or glob) or a list of them; the first holds the daily bars
        ``date, code, open, high, low, close, volume``, later ones add columns by
        ``(date, code)`` (Tushare's ``adj_factor``, ``daily_basic``).
    prices : ``"raw"`` (as traded; back-adjusted here with ``factor``) or ``"adjusted"``
        (back-adjusted already).
    mapping : ``{canonical: source column}`` for names other than ours or Tushare's.
    membership, fundamentals, industries, index_bars : optional sources (see the modules).
    industry_map : ``{industry name: risk-model group}``.
    overwrite : replace an existing ``out`` (only after the new folder is complete).
    check : read the new folder back with `load_cn` before the rename.

    Raises `DataError` naming file, row and column on bad input; nothing is written then.
    """
    t0 = time.perf_counter()
    out = Path(out).expanduser().resolve()
    if prices not in ("raw", "adjusted"):
        raise ConfigError(f"--prices must be raw or adjusted, got {prices!r}")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it (after a full import)")
    mapping = dict(mapping or {})
    groups = [bars] if isinstance(bars, str | Path) else list(bars)
    groups = [g for g in groups if g]
    if not groups:
        raise ConfigError("no bars given (--bars)")
    notes: list[str] = []
    tables = [read_tables(g, mapping, strict=(k == 0)) for k, g in enumerate(groups)]
    b = to_dense(prepare_bars(tables), prices)
    del tables
    notes += b.notes
    ix = None
    if index_bars:
        ix = _index_bars(index_bars, mapping, b.dates)
        notes += ix.notes
    spells = None
    if membership:
        spells = membership_spells(read_tables(membership, mapping), b.dates[-1])
        unknown = {
            u: len({c for c, _, _ in rows} - set(b.codes.tolist())) for u, rows in spells.items()
        }
        for u, k in unknown.items():
            if k:
                notes.append(f"membership {u}: {k} code(s) without bars (delisted?) kept in spells")
    funds = wide_tables(read_tables(fundamentals, mapping), notes) if fundamentals else None
    ind = (
        stock_basic_csv(read_tables(industries, mapping), notes, industry_map)
        if industries
        else None
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.import-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        n_files = _write_bars(tmp / "prices", b, ix)
        if spells:
            (tmp / "index_membership").mkdir()
            for u, rows in spells.items():
                (tmp / "index_membership" / f"{u}.txt").write_text(spells_text(rows))
                n_files += 1
        if funds:
            (tmp / "fundamentals").mkdir()
            for name, text in funds.items():
                (tmp / "fundamentals" / f"{name}.csv").write_text(text)
                n_files += 1
        if ind:
            (tmp / "industry").mkdir()
            (tmp / "industry" / "stock_basic.csv").write_text(ind, encoding="utf-8")
            n_files += 1
        rep = ImportReport(
            out, (str(b.dates[0]), str(b.dates[-1])), len(b.codes), len(b.dates), n_files, notes
        )
        (tmp / "import.json").write_text(
            json.dumps(
                {
                    "prices": prices,
                    "map": mapping,
                    "sources": {
                        "bars": [str(g) for g in groups],
                        "membership": None if membership is None else str(membership),
                        "fundamentals": None if fundamentals is None else str(fundamentals),
                        "industries": None if industries is None else str(industries),
                        "index_bars": None if index_bars is None else str(index_bars),
                    },
                    "notes": notes,
                },
                indent=1,
                default=str,
            )
        )
        if check:
            from deepalpha.data.cn import load_cn

            try:
                load_cn(tmp, cache=False)
            except DataError as e:
                raise DataError(
                    f"the imported folder does not load: {e.message}",
                    file=e.file,
                    field=e.field,
                    code=e.code,
                    date=e.date,
                ) from None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    rep.seconds = round(time.perf_counter() - t0, 2)
    return rep
