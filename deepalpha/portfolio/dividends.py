"""How wrong is the daily dividend accrual of the total-return benchmark?

`benchmark.total_return_returns` spreads the members' trailing dividend yield evenly over the
year. Real cash dividends arrive in lumps on ex-dates (mostly June-July in China). This module
measures the error on a member proxy: the yield it **accrues** against the dividends it
**received** (the same weights' return from back-adjusted closes minus their return from raw
closes ``close / factor``).

Dividends received, per stock and day: ``d[t, i] = (1 + r_raw[t, i]) · j[t, i]`` with
``j = factor[t] / factor[t-1] − 1`` (equal to ``r_adj − r_raw``). A factor jump also comes from
bonus shares and splits (送转, e.g. +100 % for 10-for-10), which are not dividends: jumps above
``max_jump`` (default 10 %) are left out as share events, and a cash dividend paid on the same
day as a bonus issue is lost with it (so "received" is a slight under-count).

Run ``python -m deepalpha.portfolio.dividends DATA [--start 2017 --end 2023]`` for the per-year
table (`accrual_error`); the measured table is in ``DIVIDENDS.md`` next to this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import DataError
from deepalpha.portfolio.benchmark import accrued_yield, cap_weights

__all__ = ["accrual_error", "accrual_table", "received_dividends"]


def received_dividends(
    weights: np.ndarray, close: np.ndarray, factor: np.ndarray, max_jump: float = 0.10
) -> tuple[np.ndarray, np.ndarray]:
    """Daily cash dividends received by a weighted basket, as a fraction of its value.

    Parameters
    ----------
    weights : float[T, N]
        Basket weights at each close (held from ``t-1``'s close over day ``t``).
    close : float[T, N]
        Back-adjusted close (raw x factor).
    factor : float[T, N]
        Cumulative adjustment factor.
    max_jump : float
        Factor jumps ``j`` above this count as bonus shares / splits, not dividends.

    Returns
    -------
    received : float64[T]
        ``Σ_i w[t-1, i] · (1 + r_raw[t, i]) · j[t, i]`` over jumps ``0 < j <= max_jump``.
    share_events : float64[T]
        The weight of the basket with a jump above ``max_jump`` that day (left out).
    """
    w = np.nan_to_num(np.asarray(weights, np.float64))
    c = np.asarray(close, np.float64)
    f = np.asarray(factor, np.float64)
    if not (w.shape == c.shape == f.shape) or w.ndim != 2:
        raise DataError(f"weights {w.shape}, close {c.shape}, factor {f.shape} must be [T, N]")
    raw = c / f
    with np.errstate(invalid="ignore", divide="ignore"):
        j = f[1:] / f[:-1] - 1.0
        r_raw = raw[1:] / raw[:-1] - 1.0
    ok = np.isfinite(j) & np.isfinite(r_raw)
    cash = ok & (j > 1e-9) & (j <= max_jump)
    d = np.where(cash, (1.0 + np.where(ok, r_raw, 0.0)) * np.where(ok, j, 0.0), 0.0)
    rec = np.zeros(w.shape[0])
    rec[1:] = np.einsum("tn,tn->t", w[:-1], d)
    big = np.zeros(w.shape[0])
    big[1:] = (w[:-1] * (ok & (j > max_jump))).sum(axis=1)
    return rec, big


def accrual_table(
    dates: np.ndarray, accrued: np.ndarray, received: np.ndarray, share_events: np.ndarray
) -> pl.DataFrame:
    """Per calendar year: accrued and received yield (sums of the daily fractions), their
    difference, the largest gaps of the cumulative paths inside the year (``max_ahead``: accrued
    ahead of received, ``max_behind``: behind; the timing error an excess-return path carries
    at its worst), the share of the year's dividends received by
    July's end, and the basket weight left out as share events."""
    d = np.asarray(dates, "datetime64[D]")
    year = d.astype("datetime64[Y]").astype(int) + 1970
    month = d.astype("datetime64[M]").astype(int) % 12 + 1
    rows = []
    for y in np.unique(year):
        s = year == y
        a, r = accrued[s], received[s]
        gap = np.cumsum(a) - np.cumsum(r)
        rows.append(
            {
                "year": int(y),
                "accrued": float(a.sum()),
                "received": float(r.sum()),
                "diff": float(a.sum() - r.sum()),
                "max_ahead": float(max(gap.max(), 0.0)),
                "max_behind": float(min(gap.min(), 0.0)),
                "received_by_july": float(r[month[s] <= 7].sum() / r.sum()) if r.sum() else np.nan,
                "share_events_w": float(share_events[s].sum()),
            }
        )
    return pl.DataFrame(rows)


def accrual_error(
    data: str | Path,
    indices: tuple[str, ...] = ("csi300", "csi500", "csi1000"),
    start: int = 2017,
    end: int = 2023,
) -> pl.DataFrame:
    """`accrual_table` of each index's cap-weighted member proxy on the CN layout at ``data``
    for calendar years ``start..end`` (columns ``index`` + the table's)."""
    from deepalpha.data.cn import load_cn

    panel = load_cn(
        data,
        fields=["close", "factor", "mktcap", "dv_ratio"],
        start=f"{start - 1}-12-01",
        end=f"{end}-12-31",
    )
    close, factor = panel.field("close"), panel.field("factor")
    has_px = np.isfinite(close) & (close > 0)
    out = []
    for name in indices:
        if name not in panel.masks:
            raise DataError(f"the data has no membership for {name}", file=data)
        mem = panel.mask(name) & has_px
        w = cap_weights(np.where(has_px, panel.field("mktcap"), np.nan), mem)
        acc = accrued_yield(w, panel.field("dv_ratio"))
        rec, big = received_dividends(w, close, factor)
        keep = panel.dates >= np.datetime64(f"{start}-01-01")
        tab = accrual_table(panel.dates[keep], acc[keep], rec[keep], big[keep])
        out.append(tab.with_columns(pl.lit(name).alias("index")).select("index", *tab.columns))
    return pl.concat(out)


def _main(argv: Any = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--start", type=int, default=2017)
    ap.add_argument("--end", type=int, default=2023)
    a = ap.parse_args(argv)
    tab = accrual_error(a.data, start=a.start, end=a.end)
    with pl.Config(tbl_rows=100, tbl_cols=20, float_precision=4):
        print(tab)


if __name__ == "__main__":
    _main()
