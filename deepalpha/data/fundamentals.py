"""Quarterly fundamentals -> daily ``[T, N]`` fields without look-ahead.

Source: wide CSVs ``fundamentals/<name>.csv`` -- first column the period end ``YYYYMMDD``, then one
column per Tushare code (``600000.SH``).

Two kinds of fields:

* **market data at the period end** (``total_mv``, ``pe``, ``pb``, ``ps``, ``dv_ratio``): known on
  the period-end date, so the value is used from the first trading day ``>= period end`` until the
  next period end.
* **report data** (``roe``, ``roa``, ``debt_to_assets``, ``ebit``): usable only after the
  publication deadline -- Q1 (03-31) by 04-30, H1 (06-30) by 08-31, Q3 (09-30) by 10-31,
  annual (12-31) by 04-30 of the next year -- and conservatively from the first trading day
  **strictly after** the deadline (a value stamped t is known at t's close). When two periods
  become usable on the same day (annual and next Q1 on 05-01), the later period wins.

Values are taken as of the latest usable period with no forward-fill across a missing value
(an empty ``pe`` means a loss maker, not "same as last quarter").
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl

from deepalpha.data.codes import normalize_code
from deepalpha.errors import DataError

MARKET_FIELDS = ("total_mv", "pe", "pb", "ps", "dv_ratio")
REPORT_FIELDS = ("roe", "roa", "debt_to_assets", "ebit")

# (period month-day) -> (deadline month-day, years after the period end)
_DEADLINES = {
    (3, 31): ((4, 30), 0),
    (6, 30): ((8, 31), 0),
    (9, 30): ((10, 31), 0),
    (12, 31): ((4, 30), 1),
}


def read_wide_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one wide fundamentals CSV.

    Returns ``(periods datetime64[D][P], codes str[M] canonical, values float64[P, M])``, rows
    sorted by period. Raises `DataError` (naming the file, and the code or date) when the file is
    missing, the first column is not a ``YYYYMMDD`` date column, a date or a code repeats, a
    header holds an unknown code style, or a cell is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("missing fundamentals file", file=path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    if not header or len(header) < 2:
        raise DataError("fundamentals CSV needs a date column and at least one code", file=path)
    first = header[0]
    codes = np.array([normalize_code(k, file=str(path)) for k in header[1:]], dtype="U8")
    u, c = np.unique(codes, return_counts=True)
    if (c > 1).any():
        raise DataError("duplicate code column", file=path, code=str(u[c > 1][0]))
    names = [f"c{i}" for i in range(len(header))]
    schema = {n: (pl.String if i == 0 else pl.Float64) for i, n in enumerate(names)}
    try:
        df = pl.read_csv(path, has_header=False, skip_rows=1, schema=schema)
    except Exception as e:  # polars raises several types on malformed CSV / non-numeric cells
        raise DataError(
            f"unreadable or non-numeric CSV: {str(e).splitlines()[0]}", file=path
        ) from None
    if df.height == 0:
        raise DataError("fundamentals CSV has no rows", file=path)
    raw_dates = df["c0"].str.strip_chars()
    parsed = raw_dates.str.strptime(pl.Date, "%Y%m%d", strict=False)
    if parsed.null_count() > 0:
        bad = raw_dates.filter(parsed.is_null())[0]
        raise DataError(
            f"first column {first!r} must hold YYYYMMDD period ends (missing date column?); "
            f"got {bad!r}",
            file=path,
            field=first or "<unnamed first column>",
        )
    periods = parsed.to_numpy().astype("datetime64[D]")
    u, c = np.unique(periods, return_counts=True)
    if (c > 1).any():
        raise DataError("duplicate period row", file=path, date=u[c > 1][0])
    vals = df.select(names[1:]).to_numpy().astype(np.float64)
    order = np.argsort(periods, kind="stable")
    return periods[order], codes, vals[order]


def is_quarter_end(periods: np.ndarray) -> np.ndarray:
    """``bool[P]``: period end is 03-31, 06-30, 09-30 or 12-31."""
    md = np.char.ljust(np.asarray(periods, dtype="datetime64[D]").astype(str), 10)
    md = np.array([x[5:] for x in md.tolist()])
    return np.isin(md, ["03-31", "06-30", "09-30", "12-31"])


def drop_empty_periods(periods: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep quarter-end rows with at least one finite value -> ``(periods[P'], values[P', M])``.

    The real files also carry a few month-end rows (2013-07-31, 2014-08-31, ...) that hold one
    or two values for companies that listed years later -- junk, not reports -- and quarter rows
    can be empty; both are dropped.
    """
    keep = is_quarter_end(periods) & np.isfinite(values).any(axis=1)
    return np.asarray(periods)[keep], values[keep]


def publication_deadline(periods: np.ndarray) -> np.ndarray:
    """Publication deadline per period end -> ``datetime64[D][P]``.

    Quarter ends map to 04-30, 08-31, 10-31 and 04-30 of the next year; any other period end
    (not expected in the data) is treated as an annual report: deadline = period end + 4 months.
    """
    out = []
    for p in np.asarray(periods, dtype="datetime64[D]"):
        y, m, d = (int(x) for x in str(p).split("-"))
        dl = _DEADLINES.get((m, d))
        if dl is None:
            mm = m + 4
            out.append(np.datetime64(f"{y + (mm - 1) // 12:04d}-{(mm - 1) % 12 + 1:02d}-01", "D"))
        else:
            (dm, dd), dy = dl
            out.append(np.datetime64(f"{y + dy:04d}-{dm:02d}-{dd:02d}", "D"))
    return np.array(out, dtype="datetime64[D]")


def asof_index(avail: np.ndarray, periods: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """For each trading day, the row of the latest period usable on that day -> ``int64[T]``
    (``-1`` = none yet).

    ``avail[p]`` is the first calendar date on which period ``p`` may be used; ties are broken by
    the later period end.
    """
    avail = np.asarray(avail, dtype="datetime64[D]")
    periods = np.asarray(periods, dtype="datetime64[D]")
    order = np.lexsort((periods, avail))  # by avail, then period end
    # running "latest period end" along the availability order: the usable period is the one with
    # the greatest period end among everything available so far.
    p_sorted = periods[order].astype(np.int64)
    best = np.maximum.accumulate(p_sorted) if len(p_sorted) else p_sorted
    # map the running maximum period back to its row (periods are unique)
    row_of = {int(v): int(r) for r, v in enumerate(periods.astype(np.int64))}
    best_row = np.array([row_of[int(v)] for v in best], dtype=np.int64)
    k = np.searchsorted(avail[order], np.asarray(dates, dtype="datetime64[D]"), "right") - 1
    out = np.full(len(dates), -1, dtype=np.int64)
    ok = k >= 0
    out[ok] = best_row[k[ok]]
    return out


def to_daily(
    periods: np.ndarray,
    codes: np.ndarray,
    values: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    *,
    lagged: bool,
) -> np.ndarray:
    """Quarterly ``values[P, M]`` -> daily ``float32[T, N]`` aligned to ``dates`` x ``assets``.

    ``lagged=False``: market data, usable from the period-end date. ``lagged=True``: report data,
    usable from the day after the publication deadline. Assets missing from ``codes`` are NaN.
    """
    periods, values = drop_empty_periods(periods, values)
    avail = (
        publication_deadline(periods) + np.timedelta64(1, "D")
        if lagged
        else np.asarray(periods, dtype="datetime64[D]")
    )
    rows = asof_index(avail, periods, dates)
    col = _align_columns(codes, assets)
    out = np.full((len(dates), len(assets)), np.nan, dtype=np.float32)
    have = col >= 0
    ok = rows >= 0
    if have.any() and ok.any():
        sub = values[:, col[have]].astype(np.float32)  # [P, n_have]
        out[np.ix_(ok, have)] = sub[rows[ok]]
    return out


def _align_columns(codes: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """Column of each asset in ``codes`` (``-1`` when absent) -> ``int64[N]``."""
    pos = {c: i for i, c in enumerate(np.asarray(codes).tolist())}
    return np.array([pos.get(a, -1) for a in np.asarray(assets).tolist()], dtype=np.int64)


def carry_mktcap(
    periods: np.ndarray,
    codes: np.ndarray,
    total_mv: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    close: np.ndarray,
) -> np.ndarray:
    """Daily market cap in CNY -> ``float32[T, N]``.

    ``total_mv[P, M]`` is in 10,000 CNY at each period end (market data, known that day). For a
    trading day t and a stock, the latest period end ``pe <= t`` with a finite ``total_mv`` for
    that stock is used and carried by the back-adjusted close:
    ``mktcap[t] = total_mv[pe] * 1e4 * close[t] / close[ref]``, ``ref`` = the last trading day
    ``<= pe`` (the first calendar day when ``pe`` precedes the calendar). The adjusted close keeps
    the cap continuous over bonus-share issues and splits (a raw-price ratio would halve a stock's
    cap on a 10-for-10 bonus issue until the next period end); the cost is that a cash dividend
    lowers the cap only at the next period end (a ~1-3 % bias). ``close`` is ``[T, N]``
    back-adjusted. NaN before a stock's first finite ``total_mv``.
    """
    dates = np.asarray(dates, dtype="datetime64[D]")
    T, N = len(dates), len(assets)
    periods, total_mv = drop_empty_periods(periods, total_mv)
    out = np.full((T, N), np.nan, dtype=np.float32)
    col = _align_columns(codes, assets)
    have = np.flatnonzero(col >= 0)
    P = len(periods)
    if P == 0 or len(have) == 0:
        return out
    rows = asof_index(periods, periods, dates)  # [T] latest period end <= t
    order = np.argsort(periods)
    rank = np.empty(P, dtype=np.int64)
    rank[order] = np.arange(P)
    mv = total_mv[order][:, col[have]]  # [P, n] in period order
    # last period (in order) with a finite value, per stock, as of each period row
    last = np.where(np.isfinite(mv), np.arange(P)[:, None], -1)
    last = np.maximum.accumulate(last, axis=0)  # [P, n]
    ref_t = np.clip(np.searchsorted(dates, periods[order], "right") - 1, 0, T - 1)  # [P]
    c = close[:, have]
    ar = np.arange(len(have))
    r_ord = np.where(rows >= 0, rank[np.maximum(rows, 0)], -1)  # [T] ordered period per day
    # days sharing a period row form one contiguous block (rows is non-decreasing in time)
    bounds = np.flatnonzero(np.diff(r_ord)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [T]])
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        r = int(r_ord[a])
        if r < 0:
            continue
        lr = last[r]  # [n]
        valid = lr >= 0
        lr0 = np.where(valid, lr, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = mv[lr0, ar] * 1e4 / c[ref_t[lr0], ar].astype(np.float64)  # [n]
            scale[~valid] = np.nan
            block = (c[a:b].astype(np.float64) * scale).astype(np.float32)
        out[a:b, have] = block
    return out
