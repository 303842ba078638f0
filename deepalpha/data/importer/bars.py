"""Daily bars from long tables -> dense ``[T, N]`` arrays in our conventions, checked.

Input columns (canonical names, after `read.rename_columns`): ``date, code, open, high, low,
close, volume`` and optional ``amount, factor, vwap, mktcap, total_mv, circ_mv, pe, pb, ps,
dv_ratio``. Units: ``volume`` in shares (Tushare's ``vol`` in lots of 100 is multiplied by 100
and its ``amount`` in 1,000 CNY by 1,000), ``amount`` and ``mktcap`` in CNY, ``total_mv`` /
``circ_mv`` in 10,000 CNY (Tushare's unit: ``mktcap = total_mv x 1e4``), ``dv_ratio`` in %.

Prices: ``raw`` (as traded; back-adjusted here as ``raw x factor``) or ``adjusted`` (already
back-adjusted: ``raw = adjusted / factor``). Without a ``factor`` column the factor is 1 (said
in the notes). Days a stock has no row between its first and last row are suspensions: the
close is carried into open/high/low/close with volume 0 (the convention of our real data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from deepalpha.data.importer.read import (
    _first_bad,
    check_unique,
    parse_codes,
    parse_dates,
    parse_numbers,
    require_columns,
)
from deepalpha.errors import DataError

PriceKind = Literal["raw", "adjusted"]
REQUIRED = ("date", "code", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
OPTIONAL = (
    "amount",
    "factor",
    "vwap",
    "mktcap",
    "total_mv",
    "circ_mv",
    "pe",
    "pb",
    "ps",
    "dv_ratio",
)
#: daily fields written as .bin beside the bars (see deepalpha.data.cn.OPTIONAL_BINS)
DAILY_OUT = ("amount", "vwap", "mktcap", "pe", "pb", "ps", "dv_ratio")


@dataclass
class Bars:
    """Dense bars: ``dates datetime64[D][T]``, ``codes str[N]`` (canonical), ``fields`` name ->
    ``float32[T, N]`` (NaN outside each stock's first..last row), ``notes`` for the report."""

    dates: np.ndarray
    codes: np.ndarray
    fields: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)


def prepare_bars(tables: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Parse and check bar tables and join them on ``(date, code)``.

    ``tables[0]`` holds the bars (`REQUIRED` columns); later tables (e.g. Tushare's
    ``adj_factor`` or ``daily_basic``) add columns by ``(date, code)``; a column already present
    is kept from the earlier table. Raises `DataError` naming file, row and column for missing
    columns, empty cells, unparseable dates or numbers, unknown codes and duplicate keys.
    """
    out = None
    for k, df in enumerate(tables):
        need = REQUIRED if k == 0 else ("date", "code")
        require_columns(df, need, "bars")
        df = parse_dates(df, "date")
        df = parse_codes(df, "code")
        cols = [c for c in (*REQUIRED[2:], *OPTIONAL) if c in df.columns]
        df = parse_numbers(df, cols)
        check_unique(df, ("date", "code"), "bars")
        tushare = df["_tushare"].any() if "_tushare" in df.columns else False
        if tushare:
            scale = {"volume": 100.0, "amount": 1000.0}
            df = df.with_columns([pl.col(c) * s for c, s in scale.items() if c in df.columns])
        if out is None:
            out = df
            continue
        extra = [c for c in cols if c not in out.columns]
        if extra:
            out = out.join(df.select("date", "code", *extra), on=["date", "code"], how="left")
    assert out is not None
    return out


def check_values(df: pl.DataFrame, prices: PriceKind) -> None:
    """Refuse non-positive prices or factors, ``high < low`` and negative volume (first bad row
    named)."""
    for c in PRICES:
        _first_bad(df, pl.col(c) <= 0, c, f"non-positive {c}")
    _first_bad(df, pl.col("high") < pl.col("low"), "high", "high < low")
    _first_bad(df, pl.col("volume") < 0, "volume", "negative volume")
    if "factor" in df.columns:
        _first_bad(df, pl.col("factor") <= 0, "factor", "non-positive adjustment factor")
    for c in ("amount", "mktcap", "total_mv"):
        if c in df.columns:
            _first_bad(df, pl.col(c) < 0, c, f"negative {c}")


def to_dense(df: pl.DataFrame, prices: PriceKind) -> Bars:
    """Checked long bars -> `Bars` in our conventions (back-adjusted prices, shares, CNY)."""
    check_values(df, prices)
    notes: list[str] = []
    dates = np.unique(df["date"].to_numpy().astype("datetime64[D]"))
    codes = np.unique(df["code"].to_numpy().astype("U8"))
    T, N = len(dates), len(codes)
    ti = np.searchsorted(dates, df["date"].to_numpy().astype("datetime64[D]"))
    ni = np.searchsorted(codes, df["code"].to_numpy().astype("U8"))
    present = np.zeros((T, N), bool)
    present[ti, ni] = True

    def dense(col: str, scale: np.ndarray | None = None) -> np.ndarray:
        """``float32[T, N]`` of one column, times ``scale[rows]`` in float64 first (so that
        raw x factor rounds once, to the float32 an adjusted source would hold)."""
        v = df[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if scale is not None:
            v = v * scale
        a = np.full((T, N), np.nan, np.float32)
        a[ti, ni] = v
        return a

    adj = None
    if prices == "raw" and "factor" in df.columns:
        adj = df["factor"].cast(pl.Float64).fill_null(np.nan).to_numpy()

    f = {c: dense(c, adj if c in PRICES else None) for c in (*PRICES, "volume")}
    if "factor" in df.columns:
        f["factor"] = dense("factor")
        missing = present & np.isnan(f["factor"])
        if missing.any():
            r = df.filter(pl.col("factor").is_null()).row(0, named=True)
            raise DataError(
                f"row {r['_row']}: no adjustment factor for this bar",
                file=r["_file"],
                field="factor",
            )
    else:
        f["factor"] = np.where(present, np.float32(1), np.float32(np.nan))
        notes.append(f"no adjustment factor column: factor = 1 ({prices} prices used as they are)")
    if "mktcap" in df.columns:
        f["mktcap"] = dense("mktcap")
    elif "total_mv" in df.columns:
        f["mktcap"] = dense("total_mv") * np.float32(1e4)
    for c in ("amount", "vwap", "pe", "pb", "ps", "dv_ratio"):
        if c in df.columns:
            f[c] = dense(c, adj if c == "vwap" else None)
    n_filled = fill_suspensions(f, present)
    if n_filled:
        notes.append(
            f"{n_filled} stock-day(s) without a row inside a stock's history: suspended (close "
            "carried, volume 0)"
        )
    if "amount" in f:
        check_amount_units(f, notes)
    return Bars(dates, codes, f, notes)


def fill_suspensions(f: dict[str, np.ndarray], present: np.ndarray) -> int:
    """Fill days without a row between each stock's first and last row, in place: prices and
    factor (and mktcap, valuation ratios) carried from the last row, volume and amount 0,
    vwap = the carried close. Returns the number of filled stock-days."""
    T = present.shape[0]
    t = np.arange(T)[:, None]
    any_ = present.any(axis=0)
    first = np.where(any_, present.argmax(axis=0), T)
    last = np.where(any_, T - 1 - present[::-1].argmax(axis=0), -1)
    inside = (t >= first) & (t <= last)
    gap = inside & ~present
    if not gap.any():
        return 0
    src = np.maximum.accumulate(np.where(present, t, 0), axis=0)  # last row with data
    cols = np.broadcast_to(np.arange(present.shape[1]), present.shape)
    for k, a in f.items():
        if k in ("volume", "amount"):
            a[gap] = 0.0
        elif k in ("open", "high", "low", "vwap"):
            a[gap] = f["close"][src[gap], cols[gap]]
        else:
            a[gap] = a[src[gap], cols[gap]]
    return int(gap.sum())


def check_amount_units(f: dict[str, np.ndarray], notes: list[str]) -> None:
    """``amount / volume`` (a raw VWAP) must mostly lie within the raw ``[low, high]``: a
    different unit (lots, 1,000 CNY) is refused with the share of bars that fit."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = f["volume"] > 0
        v = f["amount"][ok] / f["volume"][ok]
        lo = f["low"][ok] / f["factor"][ok] * 0.995
        hi = f["high"][ok] / f["factor"][ok] * 1.005
        inside = float(((v >= lo) & (v <= hi)).mean()) if ok.any() else 1.0
    if inside < 0.5:
        raise DataError(
            f"amount / volume lies within [low, high] on only {inside:.0%} of traded bars: units "
            "differ (expected volume in shares and amount in CNY; Tushare's vol (lots) and amount "
            "(1,000 CNY) are converted only under their own names)",
            field="amount",
        )
    if inside < 0.99:
        notes.append(f"amount / volume lies within [low, high] on {inside:.1%} of traded bars")
