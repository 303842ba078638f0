"""Cross-sectional preprocessing: robust z-score (median / MAD), clipping, rank-normalisation, fill.

Every function works along one axis (the cross-section, ``axis`` = the stock axis) of an array of
any rank, so a ``[T, N]`` field, a ``[N, L, F]`` window stack or an ``[N, F]`` date slice all go
through the same code. Non-finite values (NaN, +-inf) are treated as missing and stay NaN.

Units: inputs are raw floats; z-scores are in units of robust standard deviations
(``1.4826 * MAD``, which equals the standard deviation for Gaussian data).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

MAD_TO_STD = 1.4826


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32 if np.asarray(x).dtype == np.float32 else np.float64)
    if np.isfinite(x).all():
        return x
    return np.where(np.isfinite(x), x, np.nan).astype(x.dtype, copy=False)


def nanmedian(x: np.ndarray, axis: int = 0, keepdims: bool = False) -> np.ndarray:
    """Median over ``axis`` ignoring NaN (exact: mean of the two middle values for even counts).

    A sort-based version: much faster than ``np.nanmedian`` on wide arrays with NaNs. All-NaN
    slices give NaN.
    """
    x = _finite(x)
    s = np.sort(x, axis=axis)  # NaN sorts last
    n = np.isfinite(x).sum(axis=axis, keepdims=True)
    lo = np.maximum((n - 1) // 2, 0)
    hi = np.maximum(n // 2, 0)
    with np.errstate(invalid="ignore"):
        med = 0.5 * (np.take_along_axis(s, lo, axis) + np.take_along_axis(s, hi, axis))
    med = np.where(n > 0, med, np.nan).astype(x.dtype, copy=False)
    return med if keepdims else np.squeeze(med, axis=axis)


def robust_zscore(
    x: np.ndarray,
    axis: int = 0,
    clip: float | None = 3.0,
    eps: float = 1e-12,
) -> np.ndarray:
    """``(x - median) / (1.4826 * MAD)`` along ``axis``, then clipped to ``[-clip, clip]``.

    Where the MAD is zero (more than half the values equal) the standard deviation is used
    instead; where that is zero too (a constant slice) the result is 0. Missing stays NaN.

    Parameters
    ----------
    x : float[..., N, ...]
    axis : the cross-sectional axis.
    clip : bound of the output in robust standard deviations (``None``: no clipping).
    """
    x = _finite(x)
    med = nanmedian(x, axis=axis, keepdims=True)
    dev = x - med
    mad = nanmedian(np.abs(dev), axis=axis, keepdims=True) * MAD_TO_STD
    with np.errstate(invalid="ignore", divide="ignore"):
        if _any_small(mad, eps):
            sq = np.where(np.isfinite(dev), dev * dev, 0.0)
            cnt = np.isfinite(dev).sum(axis=axis, keepdims=True)
            std = np.sqrt(sq.sum(axis=axis, keepdims=True) / np.maximum(cnt, 1))
        else:
            std = mad
        scale = np.where(mad > eps, mad, std)
        z = np.where(scale > eps, dev / np.where(scale > eps, scale, 1.0), 0.0)
    z = np.where(np.isfinite(x), z, np.nan).astype(x.dtype, copy=False)
    if clip is not None:
        np.clip(z, -clip, clip, out=z)
    return z


def _any_small(a: np.ndarray, eps: float) -> bool:
    return bool(np.any(~(a > eps)))


def mad_winsorize(x: np.ndarray, axis: int = 0, n_mad: float = 3.0) -> np.ndarray:
    """Clip to ``median +- n_mad * 1.4826 * MAD`` along ``axis`` (values keep their units)."""
    x = _finite(x)
    med = nanmedian(x, axis=axis, keepdims=True)
    mad = nanmedian(np.abs(x - med), axis=axis, keepdims=True) * MAD_TO_STD
    return np.clip(x, med - n_mad * mad, med + n_mad * mad).astype(x.dtype, copy=False)


def rank_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cross-sectional rank, centred and scaled to unit variance.

    ``r = ((rank - 0.5) / n - 0.5) * sqrt(12)`` with average ranks for ties (rank 1 = smallest)
    and ``n`` the number of finite values in the slice: values lie in ``(-sqrt(3), sqrt(3))``,
    the mean is exactly 0 and the variance tends to 1. Missing stays NaN.
    """
    x = _finite(np.asarray(x, dtype=np.float64))
    r = rankdata(x, axis=axis, nan_policy="omit")
    n = np.isfinite(x).sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ((r - 0.5) / n - 0.5) * np.sqrt(12.0)
    return np.where(np.isfinite(x), out, np.nan).astype(np.float32)


def fill_missing(x: np.ndarray, value: float = 0.0) -> np.ndarray:
    """Replace non-finite values by ``value`` (0 = the cross-sectional median after a z-score)."""
    x = np.asarray(x)
    return np.where(np.isfinite(x), x, np.asarray(value, dtype=x.dtype)).astype(x.dtype, copy=False)
