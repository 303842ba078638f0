"""Benchmark weights, the cap-weighted member proxy index and the total-return index.

The data has **no index weights** (``../shared/data/cn`` ships membership and index price series
only), so the optimiser's benchmark is a proxy: each date's index members weighted by total market
cap. The real CSI indices weight by free-float cap with tiered inclusion factors and capping, and
include delisted members that the data lacks, so the proxy's return differs from the published
index; the backtest reports excess returns against both.

Total-return benchmark
----------------------
The portfolio's NAV is a total return (back-adjusted closes: dividends reinvested), while the
index series in the data (``SH000300`` ...) is a **price** index: comparing the two credits the
portfolio with the index's dividend yield (about 1-2.5 % a year for CSI 300/500/1000). The data
has no total-return index, so `total_return_returns` builds one: the price index's daily return
plus the cap-weighted dividend yield of its point-in-time members, accrued daily::

    r_TR[t] = r_price[t] + Σ_i w[t-1, i] · dy[t-1, i] / 252

with ``w`` the members' cap weights (`cap_weights`) and ``dy = dv_ratio / 100`` as of the latest
period end ``<= t`` (``dv_ratio`` is market data at the period end, known that day; NaN = no
dividend -> 0).

Its error: real cash dividends are paid in lumps (ex-dates mostly June-July), so daily accrual
**mistimes** them within a year (too early in the first half, about right by the end of
July / year end), and ``dv_ratio`` is a trailing yield at the last quarter end (last year's
dividend over that day's cap), not the dividend paid this year. Measured on the real data
(`deepalpha.portfolio.dividends.accrual_error`; ``python -m deepalpha.portfolio.dividends
../shared/data/cn``) see ``deepalpha/portfolio/DIVIDENDS.md`` for the per-year table: the
accrued yield of the member proxy against the dividends the same proxy received. In 2017-2023
the annual accrued-minus-received gap averaged 0.21 % (CSI 300), 0.16 % (CSI 500) and 0.09 %
(CSI 1000) in absolute value (worst 0.65 %, CSI 300 2022); inside a year the cumulative accrual
runs up to ~1 % (CSI 300) ahead of the dividends before the June-July ex-dates and up to ~1.2 %
behind after them.
"""

from __future__ import annotations

import numpy as np

from deepalpha.errors import DataError

__all__ = [
    "DAYS",
    "accrued_yield",
    "cap_weights",
    "price_returns",
    "proxy_returns",
    "total_return_returns",
]

DAYS = 252  # accrual days per year


def cap_weights(mktcap: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Cap weights of index members per date.

    Parameters
    ----------
    mktcap : float[T, N] or float[N]
        Market cap (any currency unit) known at each date's close; NaN / non-positive = unknown.
    members : bool[T, N] or bool[N]
        Point-in-time index membership.

    Returns
    -------
    float64[T, N] (or [N])
        Weights, zero outside members with a known cap; each row sums to 1 (all zeros when a date
        has no member with a known cap).
    """
    cap = np.asarray(mktcap, np.float64)
    m = np.asarray(members, bool)
    if cap.shape != m.shape:
        raise DataError(f"mktcap {cap.shape} and members {m.shape} differ in shape", field="mktcap")
    w = np.where(m & np.isfinite(cap) & (cap > 0), cap, 0.0)
    s = w.sum(axis=-1, keepdims=True)
    return np.divide(w, s, out=np.zeros_like(w), where=s > 0)


def proxy_returns(weights: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Daily returns of the cap-weighted member proxy: ``r_b[t] = Σ_i w[t-1, i] r[t, i]``.

    Weights fixed at ``t-1``'s close earn day ``t``'s return (no look-ahead); ``r_b[0] = 0``.
    NaN returns count as 0 (the stock's price is unknown that day).

    Parameters
    ----------
    weights : float[T, N]
    returns : float[T, N]
        Simple close-to-close returns, ``returns[t] = close[t] / close[t-1] − 1``.

    Returns
    -------
    float64[T]
    """
    w = np.asarray(weights, np.float64)
    r = np.nan_to_num(np.asarray(returns, np.float64), nan=0.0)
    out = np.zeros(w.shape[0])
    out[1:] = np.einsum("tn,tn->t", w[:-1], r[1:])
    return out


def price_returns(index_close: np.ndarray) -> np.ndarray:
    """Daily returns of a price series: ``r[t] = c[t] / c[t-1] − 1`` after forward-filling gaps.

    Parameters
    ----------
    index_close : float[T]
        Index level (NaN = no value that day; carried forward).

    Returns
    -------
    float64[T]
        ``r[0] = 0``; days before the first value and their successor are 0.
    """
    c = np.asarray(index_close, np.float64)
    if c.ndim != 1:
        raise DataError(f"index_close must be [T], got {c.shape}", field="index_close")
    ok = np.isfinite(c) & (c > 0)
    idx = np.where(ok, np.arange(c.size), 0)
    np.maximum.accumulate(idx, out=idx)
    f = np.where(np.cumsum(ok) > 0, c[idx], np.nan)
    out = np.zeros(c.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = f[1:] / f[:-1] - 1.0
    out[~np.isfinite(out)] = 0.0
    return out


def accrued_yield(
    weights: np.ndarray, dv_ratio: np.ndarray, days_per_year: float = DAYS
) -> np.ndarray:
    """Daily dividend accrual of a weighted basket: ``a[t] = Σ_i w[t-1, i] · dy[t-1, i] / 252``.

    Parameters
    ----------
    weights : float[T, N]
        Basket weights at each close (rows sum to 1, e.g. `cap_weights`).
    dv_ratio : float[T, N]
        Trailing dividend yield **in percent** as known at each date (the latest period end
        ``<= t``); NaN = no dividend (0). Negative values count as 0.
    days_per_year : float
        Trading days over which one year's yield is spread.

    Returns
    -------
    float64[T]
        Accrual as a fraction of the basket's value per day; ``a[0] = 0``.
    """
    w = np.asarray(weights, np.float64)
    dy = np.asarray(dv_ratio, np.float64)
    if w.shape != dy.shape or w.ndim != 2:
        raise DataError(f"weights {w.shape} and dv_ratio {dy.shape} must be equal [T, N]")
    dy = np.clip(np.nan_to_num(dy, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None) / 100.0
    out = np.zeros(w.shape[0])
    out[1:] = np.einsum("tn,tn->t", np.nan_to_num(w[:-1]), dy[:-1]) / days_per_year
    return out


def total_return_returns(
    index_close: np.ndarray,
    weights: np.ndarray,
    dv_ratio: np.ndarray,
    days_per_year: float = DAYS,
) -> np.ndarray:
    """Daily returns of the total-return index: price return plus the accrued member yield.

    ``r_TR[t] = r_price[t] + Σ_i w[t-1, i] · dv_ratio[t-1, i] / 100 / days_per_year``.

    Parameters
    ----------
    index_close : float[T]
        Price index level (see `price_returns`).
    weights : float[T, N]
        Point-in-time member cap weights (`cap_weights`).
    dv_ratio : float[T, N]
        Members' trailing dividend yield in % as of the latest period end ``<= t``.

    Returns
    -------
    float64[T]
        ``r_TR[0] = 0``. Compound with ``np.cumprod(1 + r)`` for a NAV.
    """
    rp = price_returns(index_close)
    if rp.shape[0] != np.shape(weights)[0]:
        raise DataError(f"index_close {rp.shape} and weights {np.shape(weights)} differ in T")
    return rp + accrued_yield(weights, dv_ratio, days_per_year)
