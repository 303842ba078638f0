"""Constrained cross-sectional WLS for many dates at once (the Barra factor-return regression).

Shapes: ``T`` dates, ``N`` assets, ``P`` industries, ``S`` styles, ``K = 1 + P + S`` factors in
the order ``[country, industries..., styles...]``, ``B`` dates in one chunk.

For each date (DESIGN section 3)::

    r = X f + u,   weights v = sqrt(cap) (0 outside the estimation universe),
    constraint  sum_j w_j f_j = 0 over industries, w_j = cap share of industry j,
    f = R g,  g = (R'X'VXR)^-1 R'X'V r,  Omega = R (R'X'VXR)^-1 R'X'V,  u = (I - X Omega) r.

R is ``K x (K-1)``: identity except that the *reference* industry (the one with the largest cap
on that date, for conditioning) is written through the others, ``f_ref = -sum_j (w_j/w_ref) f_j``.

The dense ``[B, N, K]`` design is built one chunk of dates at a time from the styles and the
industry ids (never for all dates), and the normal equations of a chunk are solved together in
float64 with batched linear algebra. No ``N x N`` matrix is ever formed.

Degenerate columns (an industry with no estimation-universe member on a date, a style that is
all zero) get a unit diagonal in the reduced normal matrix, so their factor return is exactly 0
and their t-statistic NaN, while the rest of the date is estimated normally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from deepalpha.errors import DataError


@dataclass(frozen=True)
class RegressionResult:
    """Outputs of `regress`.

    Attributes
    ----------
    factor_returns : float64[T, K]   NaN on dates with fewer usable stocks than factors.
    specific_returns : float32[T, N] ``r - X f`` for every stock with a return and exposures.
    tstats : float32[T, K]           homoskedastic WLS t-statistics (NaN for fixed columns).
    r2 : float32[T]                  weighted uncentred R^2, ``1 - sum v u^2 / sum v r^2``.
    n_obs : int32[T]                 stocks in the regression.
    """

    factor_returns: np.ndarray
    specific_returns: np.ndarray
    tstats: np.ndarray
    r2: np.ndarray
    n_obs: np.ndarray


def design_chunk(styles: np.ndarray, ind_ids: np.ndarray, n_ind: int) -> np.ndarray:
    """Dense exposures for a chunk of dates.

    Parameters
    ----------
    styles : float[B, N, S]   NaN is written as 0 (the row is given zero weight elsewhere).
    ind_ids : int[B, N]       industry index in ``[0, n_ind)``, -1 for none.
    n_ind : int               ``P``.

    Returns
    -------
    float64[B, N, 1 + P + S] columns ``[country, industries, styles]``.
    """
    B, N, S = styles.shape
    X = np.zeros((B, N, 1 + n_ind + S), dtype=np.float64)
    X[:, :, 0] = 1.0
    b, n = np.nonzero(ind_ids >= 0)
    X[b, n, 1 + ind_ids[b, n].astype(np.int64)] = 1.0
    X[:, :, 1 + n_ind :] = np.nan_to_num(styles, nan=0.0)
    return X


def restriction_matrix(ind_weight: np.ndarray, n_styles: int) -> tuple[np.ndarray, np.ndarray]:
    """Batched restriction matrices.

    Parameters
    ----------
    ind_weight : float[B, P]  cap weight (any positive scale) of each industry; 0 if empty.
    n_styles : int            ``S``.

    Returns
    -------
    R : float64[B, K, K-1] with ``f = R g``; ref : int64[B] the reference industry (0..P-1).
    """
    ind_weight = np.asarray(ind_weight, dtype=np.float64)
    B, P = ind_weight.shape
    K = 1 + P + n_styles
    ref = np.argmax(ind_weight, axis=1)
    R = np.zeros((B, K, K - 1), dtype=np.float64)
    keep = np.ones((B, K), dtype=bool)
    keep[np.arange(B), 1 + ref] = False
    # rows that are kept map one-to-one to g coordinates 0..K-2, in order
    bi, fi = np.nonzero(keep)
    gi = np.tile(np.arange(K - 1), B)
    R[bi, fi, gi] = 1.0
    wref = ind_weight[np.arange(B), ref]
    with np.errstate(invalid="ignore", divide="ignore"):
        coef = np.where(wref[:, None] > 0, -ind_weight / wref[:, None], 0.0)  # [B, P]
    # g coordinates of the industries: industry j < ref -> 1 + j, j > ref -> j
    jj = np.arange(P)[None, :]
    gcol = np.where(jj < ref[:, None], 1 + jj, jj)  # [B, P]
    other = jj != ref[:, None]
    b2, j2 = np.nonzero(other)
    R[b2, 1 + ref[b2], gcol[b2, j2]] = coef[b2, j2]
    return R, ref


def solve_chunk(
    X: np.ndarray, r: np.ndarray, v: np.ndarray, n_ind: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Constrained WLS for one chunk of dates.

    Parameters
    ----------
    X : float64[B, N, K]  from `design_chunk`.
    r : float[B, N]       returns (NaN allowed where v == 0).
    v : float[B, N]       regression weights sqrt(cap); 0 = not in the regression. The industry
                          constraint uses cap = v**2 summed per industry.
    n_ind : int           ``P``.

    Returns
    -------
    f float64[B, K], u float64[B, N] (NaN where r is NaN), tstat float64[B, K], r2 float64[B],
    n float64[B].
    """
    K = X.shape[2]
    S = K - 1 - n_ind
    v = np.where(np.isfinite(r), np.asarray(v, dtype=np.float64), 0.0)
    r0 = np.nan_to_num(np.asarray(r, dtype=np.float64), nan=0.0)
    # torch.bmm runs the batched products through BLAS (numpy's stacked matmul on transposed
    # operands does not); float64 throughout.
    Xt = torch.from_numpy(X)
    Xv = Xt * torch.from_numpy(v)[:, :, None]
    A = torch.bmm(Xv.transpose(1, 2), Xt).numpy()  # [B, K, K]
    rhs = np.stack([r0, v * v], axis=2)  # [B, N, 2]
    b = torch.bmm(Xv.transpose(1, 2), torch.from_numpy(r0)[:, :, None]).numpy()[:, :, 0]
    ind_w = torch.bmm(Xt.transpose(1, 2), torch.from_numpy(rhs[:, :, 1:])).numpy()[
        :, 1 : 1 + n_ind, 0
    ]
    R, _ = restriction_matrix(ind_w, S)
    M = np.matmul(R.transpose(0, 2, 1), np.matmul(A, R))  # [B, K-1, K-1]
    rb = np.einsum("bkg,bk->bg", R, b)
    d = np.diagonal(M, axis1=1, axis2=2)
    scale = np.maximum(d.max(axis=1, keepdims=True), 1e-300)
    fixed = d <= 1e-12 * scale  # [B, K-1]
    M = M + np.einsum("bg,gh->bgh", fixed.astype(np.float64), np.eye(K - 1))
    n = (v > 0).sum(axis=1).astype(np.float64)
    ok = n > (K - 1 - fixed.sum(axis=1))
    M[~ok] = np.eye(K - 1)
    try:
        Minv = np.linalg.inv(M)
    except np.linalg.LinAlgError:  # an exactly collinear date: pseudo-inverse for that date
        Minv = np.stack([_inv_or_pinv(m) for m in M])
    g = np.einsum("bgh,bh->bg", Minv, rb)
    f = np.einsum("bkg,bg->bk", R, g)
    fit = torch.bmm(Xt, torch.from_numpy(np.nan_to_num(f))[:, :, None]).numpy()[:, :, 0]
    u = np.asarray(r, dtype=np.float64) - fit
    ssr = np.einsum("bn,bn->b", v, np.nan_to_num(u, nan=0.0) ** 2)
    sst = np.einsum("bn,bn->b", v, r0**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        dof = n - (K - 1 - fixed.sum(axis=1))
        # WLS with weights v: s2 = sum v u^2 / dof; cov(g) = s2 M^-1 (M built with v)
        s2 = ssr / np.where(dof > 0, dof, np.nan)
        cov_g = s2[:, None, None] * Minv
        cov_g = cov_g * ~(fixed[:, :, None] | fixed[:, None, :])
        var_f = np.einsum("bkg,bgh,bkh->bk", R, cov_g, R)
        t = f / np.sqrt(var_f)
        r2 = 1.0 - ssr / sst
    fixed_f = np.einsum("bkg,bg->bk", np.abs(R), fixed.astype(np.float64)) > 0
    t[fixed_f] = np.nan
    f[~ok] = np.nan
    t[~ok] = np.nan
    r2[~ok] = np.nan
    u[~ok] = np.nan
    return f, u, t, r2, n


def _inv_or_pinv(m: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(m, hermitian=True)


def regress(
    styles: np.ndarray,
    ind_ids: np.ndarray,
    n_ind: int,
    returns: np.ndarray,
    weights: np.ndarray,
    *,
    chunk: int = 64,
    progress: Callable[[int], None] | None = None,
) -> RegressionResult:
    """Factor returns for every date.

    Parameters
    ----------
    styles : float[T, N, S]   standardised style exposures at t.
    ind_ids : int[T, N] or int[N]  industry index, -1 for none.
    n_ind : int               number of industries ``P``.
    returns : float[T, N]     the return regressed on the exposures of row t (for the daily model
                              the return over t -> t+1). NaN = not available.
    weights : float[T, N]     sqrt(cap) inside the estimation universe, 0 outside.
    chunk : int               dates per batched solve (memory ~ chunk * N * K * 8 bytes * 3).
    progress : callable(int)  called with the number of dates done after each chunk.

    Returns
    -------
    `RegressionResult`; specific returns are given for every stock with a finite return, finite
    exposures and an industry (also outside the estimation universe).
    """
    styles = np.asarray(styles)
    if styles.ndim != 3:
        raise DataError(f"styles must be [T, N, S], got shape {list(styles.shape)}")
    T, N, S = styles.shape
    if returns.shape != (T, N) or weights.shape != (T, N):
        raise DataError(
            f"returns {list(returns.shape)} and weights {list(weights.shape)} must be [{T}, {N}]"
        )
    ind_ids = np.asarray(ind_ids)
    if ind_ids.ndim == 1:
        ind_ids = np.broadcast_to(ind_ids, (T, N))
    if ind_ids.size and int(ind_ids.max(initial=-1)) >= n_ind:
        raise DataError(f"industry id {int(ind_ids.max())} >= number of industries {n_ind}")
    K = 1 + n_ind + S
    f = np.full((T, K), np.nan)
    t = np.full((T, K), np.nan, dtype=np.float32)
    u = np.full((T, N), np.nan, dtype=np.float32)
    r2 = np.full(T, np.nan, dtype=np.float32)
    nobs = np.zeros(T, dtype=np.int32)
    for lo in range(0, T, chunk):
        hi = min(T, lo + chunk)
        st = styles[lo:hi]
        ids = ind_ids[lo:hi]
        valid = np.isfinite(st).all(axis=2) & (ids >= 0)
        X = design_chunk(st, ids, n_ind)
        w = np.where(valid, np.nan_to_num(weights[lo:hi], nan=0.0), 0.0)
        rr = np.where(valid, returns[lo:hi], np.nan)
        fc, uc, tc, r2c, nc = solve_chunk(X, rr, w, n_ind)
        f[lo:hi], u[lo:hi], t[lo:hi], r2[lo:hi], nobs[lo:hi] = fc, uc, tc, r2c, nc
        if progress is not None:
            progress(hi - lo)
    return RegressionResult(f, u, t, r2, nobs)


def omega(X: np.ndarray, v: np.ndarray, n_ind: int) -> tuple[np.ndarray, np.ndarray]:
    """Single-date ``Omega = R (R'X'VXR)^-1 R'X'V`` (``K x N``) and ``R`` (``K x (K-1)``).

    Row k of Omega holds the weights of the pure factor portfolio of factor k. For tests and
    small cross-sections only (it is ``K x N``, fine, but built one date at a time).
    """
    X = np.asarray(X, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    S = X.shape[1] - 1 - n_ind
    ind_w = (X[:, 1 : 1 + n_ind] * (v * v)[:, None]).sum(axis=0)
    R, _ = restriction_matrix(ind_w[None], S)
    R = R[0]
    XR = X @ R
    M = XR.T @ (v[:, None] * XR)
    return R @ np.linalg.solve(M, (XR * v[:, None]).T), R
