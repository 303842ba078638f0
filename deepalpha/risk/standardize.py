"""Cross-sectional descriptor and exposure standardisation (all dates at once).

Shapes: ``T`` dates, ``N`` assets, ``q`` regressors. Every function takes ``[T, N]`` arrays and a
boolean estimation-universe mask ``estu[T, N]``; statistics come from the ESTU, the transform is
applied to every stock with a finite value. Computation in float64, NaN = missing.

Pipeline (DESIGN section 3): MAD winsorise (median +- 3 * 1.4826 * MAD) -> cap-weighted mean 0,
equal-weighted std 1 -> combine descriptors (weighted average of the available ones) ->
re-standardise -> orthogonalise -> fill missing by regression on industry + Size.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def _masked(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask & np.isfinite(x), x, np.nan)


def nanmedian_rows(x: np.ndarray) -> np.ndarray:
    """``np.nanmedian(x, axis=1)`` for ``x [T, N]`` by one sort (NaN sorts last), without the
    per-row Python loop numpy uses for wide rows. All-NaN rows give NaN."""
    s = np.sort(x, axis=1)
    n = np.isfinite(x).sum(axis=1)
    rows = np.arange(x.shape[0])
    lo = np.maximum((n - 1) // 2, 0)
    hi = np.maximum(n // 2, 0)
    med = 0.5 * (s[rows, lo] + s[rows, hi])
    return np.where(n > 0, med, np.nan)


_nanmedian_rows = nanmedian_rows


def mad_winsorize(x: np.ndarray, estu: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Clip each date at ``median +- k * 1.4826 * MAD`` (median and MAD over the ESTU).

    x : float[T, N]; estu : bool[T, N]. Returns float64[T, N] (NaN stays NaN; dates whose ESTU
    has no finite value are returned unchanged).
    """
    x = np.asarray(x, dtype=np.float64)
    xm = _masked(x, estu)
    med = _nanmedian_rows(xm)
    mad = _nanmedian_rows(np.abs(xm - med[:, None])) * 1.4826
    lo = med - k * mad
    hi = med + k * mad
    ok = np.isfinite(med) & np.isfinite(mad)
    lo = np.where(ok, lo, -np.inf)[:, None]
    hi = np.where(ok, hi, np.inf)[:, None]
    return np.where(np.isfinite(x), np.clip(x, lo, hi), np.nan)


def standardize(x: np.ndarray, cap: np.ndarray, estu: np.ndarray) -> np.ndarray:
    """``(x - capweighted_mean) / equal_weighted_std`` with both statistics over the ESTU.

    x, cap : float[T, N]; estu : bool[T, N]. Returns float64[T, N]; a date with fewer than two
    finite ESTU values, or zero dispersion, becomes all NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    m = estu & np.isfinite(x) & np.isfinite(cap) & (cap > 0)
    w = np.where(m, cap, 0.0)
    xs = np.where(m, x, 0.0)
    sw = w.sum(axis=1)
    n = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (w * xs).sum(axis=1) / sw
        ew_mean = xs.sum(axis=1) / n
        var = (np.where(m, x - ew_mean[:, None], 0.0) ** 2).sum(axis=1) / (n - 1)
        sd = np.sqrt(var)
        bad = (n < 2) | ~(sd > 0)
        out = (x - mu[:, None]) / sd[:, None]
    out[bad] = np.nan
    return out


def winsorize_standardize(
    x: np.ndarray, cap: np.ndarray, estu: np.ndarray, k: float = 3.0
) -> np.ndarray:
    """`mad_winsorize` then `standardize`."""
    return standardize(mad_winsorize(x, estu, k), cap, estu)


def combine(descriptors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted average of standardised descriptors, re-weighted over the available ones.

    descriptors : list of float[T, N]; weights : one positive weight each. A stock with every
    descriptor missing stays NaN (CNE6 re-weights the same way).
    """
    num = None
    den = None
    for d, w in zip(descriptors, weights, strict=True):
        ok = np.isfinite(d)
        a = np.where(ok, d, 0.0) * w
        b = ok * float(w)
        num = a if num is None else num + a
        den = b if den is None else den + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def wls_residual(y: np.ndarray, Z: np.ndarray, weight: np.ndarray, estu: np.ndarray) -> np.ndarray:
    """Residual of ``y`` on ``[1, Z]`` per date, fitted by WLS over the ESTU.

    y : float[T, N]; Z : float[T, N, q]; weight : float[T, N] (regression weights, e.g.
    sqrt(cap)); estu : bool[T, N]. The fitted coefficients are applied to every stock with finite
    y and Z. Returns float64[T, N].
    """
    y = np.asarray(y, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    T, N, q = Z.shape
    D = np.concatenate([np.ones((T, N, 1)), Z], axis=2)
    ok = np.isfinite(y) & np.isfinite(D).all(axis=2)
    w = np.where(ok & estu, np.nan_to_num(weight, nan=0.0), 0.0)
    D0 = np.where(ok[:, :, None], D, 0.0)
    y0 = np.where(ok, y, 0.0)
    A = np.einsum("tni,tn,tnj->tij", D0, w, D0)
    b = np.einsum("tni,tn,tn->ti", D0, w, y0)
    A = A + np.eye(q + 1) * 1e-12 * np.maximum(np.trace(A, axis1=1, axis2=2), 1e-300)[:, None, None]
    beta = np.linalg.solve(A, b[:, :, None])[:, :, 0]
    res = y - np.einsum("tni,ti->tn", D0, beta)
    return np.where(ok, res, np.nan)


def fill_missing(
    x: np.ndarray,
    ind_ids: np.ndarray,
    n_ind: int,
    size: np.ndarray,
    weight: np.ndarray,
    estu: np.ndarray,
    target: np.ndarray,
    *,
    min_obs: int = 3,
) -> np.ndarray:
    """Fill missing exposures by a per-date WLS on industry dummies + Size.

    x : float[T, N] exposure (NaN = missing); ind_ids : int[N] industry (-1 none);
    size : float[T, N] standardised Size; weight : float[T, N] regression weights (sqrt cap);
    estu : bool[T, N] fitting sample; target : bool[T, N] stocks that should end with a value
    (e.g. listed with a cap). Industries with fewer than `min_obs` fitting observations fall back
    to the industry median of `x` over all stocks of that date, then to 0 (the cap-weighted mean).
    Returns float64[T, N]: `x` where finite, the prediction where missing and in `target`.
    """
    x = np.asarray(x, dtype=np.float64)
    T, N = x.shape
    P = n_ind
    H = np.zeros((N, P))
    has = ind_ids >= 0
    H[np.nonzero(has)[0], ind_ids[has]] = 1.0
    s = np.nan_to_num(np.asarray(size, dtype=np.float64), nan=0.0)
    ok = np.isfinite(x) & estu & np.isfinite(size)
    w = np.where(ok, np.nan_to_num(weight, nan=0.0), 0.0)
    x0 = np.where(ok, x, 0.0)
    # normal equations for columns [industries, size]
    A = np.zeros((T, P + 1, P + 1))
    A[:, np.arange(P), np.arange(P)] = w @ H
    ws = w * s
    A[:, :P, P] = ws @ H
    A[:, P, :P] = A[:, :P, P]
    A[:, P, P] = (ws * s).sum(axis=1)
    b = np.zeros((T, P + 1))
    b[:, :P] = (w * x0) @ H
    b[:, P] = (ws * x0).sum(axis=1)
    cnt = ok.astype(np.float64) @ H  # [T, P]
    thin = cnt < min_obs
    # thin industries: drop their column (unit diagonal, zero coupling), predict by fallback
    A[:, :P, P] = np.where(thin, 0.0, A[:, :P, P])
    A[:, P, :P] = np.where(thin, 0.0, A[:, P, :P])
    diag = A[:, np.arange(P), np.arange(P)]
    A[:, np.arange(P), np.arange(P)] = np.where(thin, 1.0, diag)
    b[:, :P] = np.where(thin, 0.0, b[:, :P])
    size_ok = A[:, P, P] > 0
    A[:, P, P] = np.where(size_ok, A[:, P, P], 1.0)
    beta = np.linalg.solve(A, b[:, :, None])[:, :, 0]
    pred = np.where(has[None, :], beta[:, ind_ids.clip(0)], 0.0) + beta[:, P : P + 1] * s
    # fallback for thin industries: industry median of x (all stocks) or 0
    if thin.any():
        xf = np.where(np.isfinite(x), x, np.nan)
        for p in np.unique(np.nonzero(thin)[1]):
            cols = np.nonzero(ind_ids == p)[0]
            if cols.size == 0:
                continue
            rows = np.nonzero(thin[:, p])[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(xf[np.ix_(rows, cols)], axis=1)
            med = np.where(np.isfinite(med), med, 0.0)
            pred[np.ix_(rows, cols)] = med[:, None]
    if (~has).any():
        pred[:, ~has] = 0.0
    need = ~np.isfinite(x) & target
    out = x.copy()
    out[need] = pred[need]
    return out
