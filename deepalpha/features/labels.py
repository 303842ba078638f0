"""Forward-return labels (DESIGN section 2: a label for t starts after t).

``label[t] = price[t + 1 + h] / price[t + 1] - 1``: enter at the close (or VWAP) of t+1, hold h
trading days. The label for t is therefore known only at the close of ``t + 1 + h``
(`label_known_index`); training on it before then is look-ahead.
"""

from __future__ import annotations

import numpy as np

from deepalpha.errors import ConfigError
from deepalpha.features.preprocess import rank_normalize


def label_known_index(t: np.ndarray | int, horizon: int) -> np.ndarray | int:
    """Index of the first date at whose close the label of date index ``t`` is known."""
    return t + 1 + horizon


def forward_return(price: np.ndarray, horizon: int = 10) -> np.ndarray:
    """h-day forward return from the t+1 price.

    Parameters
    ----------
    price : float[T, N]
        Back-adjusted close (or VWAP) prices.
    horizon : int
        Holding period ``h`` in trading days (>= 1).

    Returns
    -------
    float32[T, N]
        ``price[t+1+h] / price[t+1] - 1``; NaN where either price is missing, not positive, or
        beyond the last date (the last ``h + 1`` rows are all NaN).
    """
    if horizon < 1:
        raise ConfigError(f"label horizon must be >= 1, got {horizon}")
    p = np.asarray(price, dtype=np.float64)
    T = p.shape[0]
    out = np.full(p.shape, np.nan, dtype=np.float32)
    if T > horizon + 1:
        entry = p[1 : T - horizon]
        exit_ = p[1 + horizon :]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = exit_ / entry - 1.0
        ok = np.isfinite(r) & (entry > 0) & (exit_ > 0)
        out[: T - horizon - 1] = np.where(ok, r, np.nan)
    return out


def ranked_forward_return(price: np.ndarray, horizon: int = 10) -> np.ndarray:
    """`forward_return` rank-normalised per date over all stocks with a label: float32[T, N]."""
    return rank_normalize(forward_return(price, horizon), axis=1)
