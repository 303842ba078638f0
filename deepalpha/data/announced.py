"""Report fundamentals made daily with each company's own announcement date.

``fundamentals/ann_date.csv`` (written by `deepalpha data import` when the report table has an
``ann_date`` column) has the shape of the other wide files: period end ``YYYYMMDD`` rows, one
column per code, cells = announcement date ``YYYYMMDD`` (empty = unknown). Where a date is known,
a period's values are used from the first calendar day strictly after it (an announcement can
come after the close); where it is not, the statutory deadline applies
(`deepalpha.data.fundamentals.publication_deadline`). Either way the value is point in time.
"""

from __future__ import annotations

import numpy as np

from deepalpha.data.fundamentals import (
    _align_columns,
    asof_index,
    is_quarter_end,
    publication_deadline,
)


def ann_dates(values: np.ndarray) -> np.ndarray:
    """Wide ``YYYYMMDD`` numbers ``float[P, M]`` -> ``datetime64[D][P, M]`` (NaT where NaN)."""
    v = np.asarray(values, np.float64)
    ok = np.isfinite(v) & (v > 1e7)
    iv = np.where(ok, v, 19700101).astype(np.int64)
    y, md = np.divmod(iv, 10000)
    m, d = np.divmod(md, 100)
    txt = np.char.add(
        np.char.add(np.char.zfill(y.astype(str), 4), "-"),
        np.char.add(
            np.char.add(np.char.zfill(m.astype(str), 2), "-"), np.char.zfill(d.astype(str), 2)
        ),
    )
    out = txt.astype("datetime64[D]")
    out[~ok] = np.datetime64("NaT")
    return out


def to_daily_announced(
    periods: np.ndarray,
    codes: np.ndarray,
    values: np.ndarray,
    ann_periods: np.ndarray,
    ann_codes: np.ndarray,
    ann: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
) -> np.ndarray:
    """Report ``values[P, M]`` -> daily ``float32[T, N]``, each stock's period usable from the
    day after its announcement (``ann datetime64[D][P', M']`` on its own period/code grid; NaT =
    unknown: the deadline + 1 day). As `fundamentals.to_daily`: quarter-end rows with a value
    only, the latest usable period wins, no forward fill across a missing value."""
    periods = np.asarray(periods, dtype="datetime64[D]")
    keep = is_quarter_end(periods) & np.isfinite(values).any(axis=1)
    periods, values = periods[keep], values[keep]
    T, N = len(dates), len(assets)
    out = np.full((T, N), np.nan, dtype=np.float32)
    if len(periods) == 0:
        return out
    deadline = publication_deadline(periods) + np.timedelta64(1, "D")
    # announcement dates on the value grid
    prow = {
        int(p): i for i, p in enumerate(np.asarray(ann_periods, "datetime64[D]").astype(np.int64))
    }
    pidx = np.array([prow.get(int(p), -1) for p in periods.astype(np.int64)])
    acol = _align_columns(ann_codes, np.asarray(codes))
    col = _align_columns(codes, assets)
    for n in np.flatnonzero(col >= 0).tolist():
        m = col[n]
        avail = deadline.copy()
        a = acol[m]
        if a >= 0:
            have = pidx >= 0
            known = np.full(len(periods), np.datetime64("NaT"), "datetime64[D]")
            known[have] = ann[pidx[have], a]
            ok = ~np.isnat(known)
            avail[ok] = known[ok] + np.timedelta64(1, "D")
        rows = asof_index(avail, periods, dates)
        good = rows >= 0
        out[good, n] = values[rows[good], m]
    return out
