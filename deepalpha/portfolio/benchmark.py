"""Benchmark weights and the cap-weighted member proxy index.

The data has **no index weights** (``../shared/data/cn`` ships membership and index price series
only), so the optimiser's benchmark is a proxy: each date's index members weighted by total market
cap. The real CSI indices weight by free-float cap with tiered inclusion factors and capping, and
include delisted members that the data lacks, so the proxy's return differs from the published
index; the backtest reports excess returns against both.
"""

from __future__ import annotations

import numpy as np

from deepalpha.errors import DataError

__all__ = ["cap_weights", "proxy_returns"]


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
