"""Report and period-end tables (long: ``code, period_end[, ann_date], field...``) -> our wide
``fundamentals/<field>.csv`` files (period end ``YYYYMMDD`` rows, one column per Tushare code).

Fields kept: ``total_mv, pe, pb, ps, dv_ratio`` (market data at the period end) and ``roe, roa,
debt_to_assets, ebit`` (reports); other columns are listed in the notes and ignored. With an
``ann_date`` column, ``fundamentals/ann_date.csv`` records each announcement and the loader uses
it instead of the statutory deadline (`deepalpha.data.announced`). A period reported more than
once (restatements) keeps its first announcement (what was known then); without ``ann_date`` a
repeated ``(code, period_end)`` is refused.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from deepalpha.data.codes import to_tushare
from deepalpha.data.fundamentals import MARKET_FIELDS, REPORT_FIELDS
from deepalpha.data.importer.read import (
    check_unique,
    parse_codes,
    parse_dates,
    parse_numbers,
    require_columns,
)

KEEP = MARKET_FIELDS + REPORT_FIELDS


def wide_tables(df: pl.DataFrame, notes: list[str]) -> dict[str, str]:
    """Checked long fundamentals -> ``{file stem: CSV text}`` for ``fundamentals/``."""
    require_columns(df, ("code", "period_end"), "fundamentals")
    df = parse_codes(parse_dates(df, "period_end"), "code")
    fields = [c for c in KEEP if c in df.columns]
    ignored = [
        c
        for c in df.columns
        if c[0] != "_" and c not in (*KEEP, "code", "period_end", "ann_date", "f_ann_date")
    ]
    if ignored:
        notes.append(f"fundamentals: columns not used: {ignored}")
    if not fields:
        require_columns(df, (KEEP[0],), "fundamentals (none of " + ", ".join(KEEP) + ")")
    df = parse_numbers(df, fields)
    has_ann = "ann_date" in df.columns
    if has_ann:
        df = parse_dates(df, "ann_date")
        n0 = df.height
        df = df.sort("code", "period_end", "ann_date", nulls_last=True).unique(
            ["code", "period_end"], keep="first", maintain_order=True
        )
        if df.height < n0:
            notes.append(
                f"fundamentals: {n0 - df.height} restated row(s) dropped (the first announcement "
                "of a period is kept: point in time)"
            )
    else:
        check_unique(df, ("code", "period_end"), "fundamentals")
    codes = np.unique(df["code"].to_numpy().astype("U8"))
    periods = np.unique(df["period_end"].to_numpy().astype("datetime64[D]"))
    pi = np.searchsorted(periods, df["period_end"].to_numpy().astype("datetime64[D]"))
    ci = np.searchsorted(codes, df["code"].to_numpy().astype("U8"))
    labels = np.char.replace(periods.astype(str), "-", "").tolist()
    header = "period_end," + ",".join(to_tushare(c) for c in codes.tolist())
    out: dict[str, str] = {}
    for f in fields + (["ann_date"] if has_ann else []):
        if f == "ann_date":
            d = df[f].to_numpy().astype("datetime64[D]")
            txt = np.char.replace(d.astype(str), "-", "")
            col = np.where(np.isnat(d), "", txt)
        else:
            v = df[f].cast(pl.Float64).fill_null(np.nan).to_numpy()
            col = np.where(np.isnan(v), "", v.astype(str))
        grid = np.full((len(periods), len(codes)), "", dtype=col.dtype if col.size else "U1")
        grid[pi, ci] = col
        lines = [header] + [
            lab + "," + ",".join(row) for lab, row in zip(labels, grid.tolist(), strict=True)
        ]
        out[f] = "\n".join(lines) + "\n"
    return out
