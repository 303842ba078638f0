"""Index-enhancement metrics (DESIGN section 6).

Inputs are daily NAV paths ``float[T]`` over the backtest window (``nav[0]`` = the base, before
the first day's return). Conventions:

- relative NAV ``x = nav / bench_nav``; **annualised excess return** is geometric on it:
  ``(x[-1] / x[0])^(252 / n) − 1``, n = number of daily returns;
- daily excess ``e_t = r_p,t − r_b,t``; **tracking error** ``std(e, ddof=1) × √252``;
- **information ratio** = annualised excess / tracking error;
- **max drawdown** of the relative NAV as a positive fraction (0.05 = fell 5 % from its peak);
- **monthly win rate**: share of calendar months whose relative NAV rose;
- **turnover**: one-sided, ``(buys + sells) / 2 / NAV`` per rebalance; reported as the mean per
  rebalance and the annual sum;
- **costs**: ``Σ cost_t / nav_{t-1}`` per year (the drag on the return);
- **ex-ante TE**: the optimiser's mean annualised ex-ante TE against the realised TE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import DataError

__all__ = ["enhancement_metrics", "yearly_table"]

DAYS = 252


def _ret(nav: np.ndarray) -> np.ndarray:
    return nav[1:] / nav[:-1] - 1.0


def _max_dd(x: np.ndarray) -> float:
    if x.size == 0:
        return float("nan")
    peak = np.maximum.accumulate(x)
    return float((1.0 - x / peak).max())


def enhancement_metrics(
    nav: np.ndarray,
    bench_nav: np.ndarray,
    dates: np.ndarray,
    *,
    costs: np.ndarray | None = None,
    turnover: np.ndarray | None = None,
    ex_ante_te: np.ndarray | None = None,
    periods_per_year: float = DAYS,
) -> dict[str, float]:
    """Summary of one enhancement backtest window.

    Parameters
    ----------
    nav, bench_nav : float[T]
        Portfolio and benchmark NAV; ``[0]`` is the base.
    dates : datetime64[D][T]
    costs : float[T], optional
        Costs paid each day in NAV units (``costs[0]`` is ignored: it belongs to the base day).
    turnover : float[R], optional
        One-sided turnover of each rebalance executed in the window (NaN entries, e.g. the
        initial build, are left out of the turnover figures).
    ex_ante_te : float[R], optional
        The optimiser's annualised ex-ante TE at each rebalance.

    Returns
    -------
    dict with ``annual_return, bench_annual_return, excess_return, tracking_error,
    information_ratio, excess_max_drawdown, monthly_win_rate, volatility, max_drawdown,
    turnover_per_rebalance, turnover_annual, cost_total, cost_annual, ex_ante_te, realised_te, days,
    rebalances``.
    """
    nav = np.asarray(nav, np.float64)
    bench_nav = np.asarray(bench_nav, np.float64)
    dates = np.asarray(dates, "datetime64[D]")
    if nav.shape != bench_nav.shape or nav.shape != dates.shape or nav.ndim != 1:
        raise DataError(
            f"nav {nav.shape}, bench_nav {bench_nav.shape}, dates {dates.shape} must be equal [T]"
        )
    if not (np.isfinite(nav).all() and np.isfinite(bench_nav).all()):
        raise DataError("NAV paths must be finite", field="nav")
    H = periods_per_year
    n = nav.shape[0] - 1
    out: dict[str, float] = {"days": float(n)}
    if n < 1:
        return out
    years = n / H
    rp, rb = _ret(nav), _ret(bench_nav)
    e = rp - rb
    rel = nav / bench_nav
    out["annual_return"] = (nav[-1] / nav[0]) ** (1 / years) - 1
    out["bench_annual_return"] = (bench_nav[-1] / bench_nav[0]) ** (1 / years) - 1
    out["excess_return"] = (rel[-1] / rel[0]) ** (1 / years) - 1
    te = float(e.std(ddof=1) * np.sqrt(H)) if n > 1 else float("nan")
    out["tracking_error"] = te
    out["realised_te"] = te
    out["information_ratio"] = out["excess_return"] / te if te > 0 else float("nan")
    out["excess_max_drawdown"] = _max_dd(rel / rel[0])
    out["volatility"] = float(rp.std(ddof=1) * np.sqrt(H)) if n > 1 else float("nan")
    out["max_drawdown"] = _max_dd(nav / nav[0])
    # monthly win rate on the relative NAV (month-end to month-end, the base as the first anchor)
    month = dates.astype("datetime64[M]")
    last_of_month = np.r_[month[1:] != month[:-1], True]
    last_of_month[0] = True  # the base is the first anchor
    anchors = rel[last_of_month]
    mret = anchors[1:] / anchors[:-1] - 1.0
    out["monthly_win_rate"] = float((mret > 0).mean()) if mret.size else float("nan")
    if turnover is not None:
        tv = np.asarray(turnover, np.float64)
        out["rebalances"] = float(tv.size)
        fin = tv[np.isfinite(tv)]  # NaN = not counted (e.g. the initial build)
        out["turnover_per_rebalance"] = float(fin.mean()) if fin.size else 0.0
        out["turnover_annual"] = float(fin.sum() / years)
    if costs is not None:
        c = np.asarray(costs, np.float64)
        if c.shape != nav.shape:
            raise DataError(f"costs {c.shape} must match nav {nav.shape}", field="costs")
        out["cost_total"] = float((c[1:] / nav[:-1]).sum())
        out["cost_annual"] = out["cost_total"] / years
    if ex_ante_te is not None:
        x = np.asarray(ex_ante_te, np.float64)
        out["ex_ante_te"] = float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")
    return out


def yearly_table(
    nav: np.ndarray,
    bench_nav: np.ndarray,
    dates: np.ndarray,
    *,
    costs: np.ndarray | None = None,
    turnover: np.ndarray | None = None,
    rebalance_dates: np.ndarray | None = None,
    ex_ante_te: np.ndarray | None = None,
    periods_per_year: float = DAYS,
) -> pl.DataFrame:
    """`enhancement_metrics` per calendar year (each year's base is the previous year's last
    day) plus a final ``all`` row. Rebalance-level inputs are split by ``rebalance_dates``."""
    dates = np.asarray(dates, "datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    rd = None if rebalance_dates is None else np.asarray(rebalance_dates, "datetime64[D]")
    ry = None if rd is None else rd.astype("datetime64[Y]").astype(int) + 1970
    rows: list[dict[str, Any]] = []

    def pick(a: np.ndarray | None, sel: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or sel is None else np.asarray(a)[sel]

    for y in np.unique(years[1:]):
        idx = np.nonzero(years == y)[0]
        lo = max(idx[0] - 1, 0)
        sl = slice(lo, idx[-1] + 1)
        rsel = None if ry is None else ry == y
        m = enhancement_metrics(
            nav[sl],
            bench_nav[sl],
            dates[sl],
            costs=None if costs is None else np.asarray(costs)[sl],
            turnover=pick(turnover, rsel) if rsel is not None else None,
            ex_ante_te=pick(ex_ante_te, rsel) if rsel is not None else None,
            periods_per_year=periods_per_year,
        )
        # within a year report the plain (not annualised) returns too
        m["period_return"] = nav[sl][-1] / nav[sl][0] - 1
        m["bench_period_return"] = bench_nav[sl][-1] / bench_nav[sl][0] - 1
        m["excess_period_return"] = (nav[sl][-1] / bench_nav[sl][-1]) / (
            nav[sl][0] / bench_nav[sl][0]
        ) - 1
        rows.append({"year": str(y), **m})
    m = enhancement_metrics(
        nav,
        bench_nav,
        dates,
        costs=costs,
        turnover=turnover,
        ex_ante_te=ex_ante_te,
        periods_per_year=periods_per_year,
    )
    m["period_return"] = nav[-1] / nav[0] - 1
    m["bench_period_return"] = bench_nav[-1] / bench_nav[0] - 1
    m["excess_period_return"] = (nav[-1] / bench_nav[-1]) / (nav[0] / bench_nav[0]) - 1
    rows.append({"year": "all", **m})
    return pl.DataFrame(rows, infer_schema_length=None)
