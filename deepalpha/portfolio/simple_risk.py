"""A small price-based factor risk model, the fallback when no `deepalpha.risk` model is given.

It is deliberately simple (and says so wherever it is used): factors [country, industries,
Size, Momentum, Volatility, Reversal]; exposures standardised per date; daily factor returns by
cross-sectional WLS (weights √cap) of the day's returns on the previous day's exposures, on
industries + styles (the industries span the country, whose factor return is set to 0); factor
covariance = EWMA of the daily factor returns (half-life ``halflife`` days); specific variance =
EWMA of squared residuals (same half-life), NaN with fewer than ``min_obs`` observations.

Styles at ``t`` (all from data known at ``t``'s close):
``Size = log mktcap``; ``Momentum = log close[t−21] / close[t−252]``;
``Volatility = std of daily returns over 63 days``; ``Reversal = log close[t] / close[t−21]``.
Each is MAD-clipped (median ± 3·1.4826·MAD), then given cap-weighted mean 0 and equal-weighted
std 1 over the estimation universe.

Units: daily returns (``periods_per_year = 252``). Shapes: ``T`` dates, ``N`` assets, ``S = 4``,
``P`` industries, ``K = 1 + P + S``, ``D`` covariance dates.
"""

from __future__ import annotations

import warnings

import numpy as np

from deepalpha.errors import DataError
from deepalpha.portfolio.enhance import ArrayRisk

__all__ = ["STYLE_NAMES", "simple_risk_model", "simple_styles"]

STYLE_NAMES = ("Size", "Momentum", "Volatility", "Reversal")


def _standardise(x: np.ndarray, cap: np.ndarray, estu: np.ndarray) -> np.ndarray:
    """Per date: MAD clip, cap-weighted mean 0, equal-weighted std 1 over ``estu`` ([T, N])."""
    x = np.where(np.isfinite(x), x, np.nan)
    e = estu & np.isfinite(x)
    xe = np.where(e, x, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(xe, axis=1, keepdims=True)
        mad = np.nanmedian(np.abs(xe - med), axis=1, keepdims=True) * 1.4826
        x = np.clip(x, med - 3 * mad, med + 3 * mad)
        w = np.where(e, np.nan_to_num(cap, nan=0.0), 0.0)
        mu = (np.nan_to_num(x) * w).sum(1, keepdims=True) / w.sum(1, keepdims=True)
        sd = np.nanstd(np.where(e, x, np.nan), axis=1, keepdims=True)
        z = (x - mu) / sd
    return z.astype(np.float32)


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    if k < x.shape[0]:
        out[k:] = x[:-k]
    return out


def simple_styles(close: np.ndarray, mktcap: np.ndarray, estu: np.ndarray) -> np.ndarray:
    """Standardised styles ``float32[T, N, 4]`` in `STYLE_NAMES` order."""
    c = np.asarray(close, np.float64)
    with np.errstate(all="ignore"):
        lc = np.log(np.where(c > 0, c, np.nan))
        r = np.diff(lc, axis=0, prepend=np.nan)
        raw = [
            np.log(np.where(mktcap > 0, mktcap, np.nan)),
            _shift(lc, 21) - _shift(lc, 252),
            _rolling_std(r, 63),
            lc - _shift(lc, 21),
        ]
    cap = np.asarray(mktcap, np.float64)
    return np.stack([_standardise(x, cap, estu) for x in raw], axis=2)


def _rolling_std(r: np.ndarray, w: int) -> np.ndarray:
    """Rolling std over ``w`` rows with at least ``w // 2`` finite values (NaN else)."""
    f = np.isfinite(r)
    x = np.where(f, r, 0.0)
    c1 = np.cumsum(np.r_[np.zeros((1, r.shape[1])), x], axis=0)
    c2 = np.cumsum(np.r_[np.zeros((1, r.shape[1])), x * x], axis=0)
    cn = np.cumsum(np.r_[np.zeros((1, r.shape[1])), f.astype(float)], axis=0)
    lo = np.maximum(np.arange(1, r.shape[0] + 1) - w, 0)
    hi = np.arange(1, r.shape[0] + 1)
    n = cn[hi] - cn[lo]
    s1, s2 = c1[hi] - c1[lo], c2[hi] - c2[lo]
    with np.errstate(all="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1)
    return np.where(n >= w // 2, np.sqrt(np.clip(var, 0, None)), np.nan)


def _wls_day(
    r: np.ndarray,
    ind: np.ndarray,
    sty: np.ndarray,
    cap: np.ndarray,
    estu: np.ndarray,
    P: int,
    ridge: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One date's WLS of ``r [N]`` on [industry one-hot, styles] with weights √cap over
    ``estu``; the Gram matrix is assembled with bincounts (no N x P one-hot).
    Returns ``(f float64[P + S], residuals float32[N])``."""
    S = sty.shape[1]
    x = np.nan_to_num(np.asarray(sty, np.float64), nan=0.0)
    ok = estu & np.isfinite(r) & (np.abs(np.nan_to_num(r)) < 0.25) & (ind >= 0)
    w = np.where(ok, np.sqrt(np.where(ok, cap, 0.0)), 0.0)
    ii = np.where(ind >= 0, ind, 0).astype(np.int64)
    rz = np.where(ok, r, 0.0)
    G = np.zeros((P + S, P + S))
    G[np.arange(P), np.arange(P)] = np.bincount(ii, w, minlength=P)[:P]
    xw = x * w[:, None]
    M = np.stack([np.bincount(ii, xw[:, s], minlength=P)[:P] for s in range(S)], axis=1)
    G[:P, P:] = M
    G[P:, :P] = M.T
    G[P:, P:] = xw.T @ x
    rhs = np.r_[np.bincount(ii, w * rz, minlength=P)[:P], xw.T @ rz]
    G[np.diag_indices_from(G)] += ridge * (np.trace(G) / (P + S) + 1.0)
    f = np.linalg.solve(G, rhs)
    u = r - np.where(ind >= 0, f[ii], 0.0) - x @ f[P:]
    return f, np.where(np.isfinite(r), u, np.nan).astype(np.float32)


def simple_risk_model(
    close: np.ndarray,
    mktcap: np.ndarray,
    industry_ids: np.ndarray,
    dates: np.ndarray,
    *,
    estu: np.ndarray | None = None,
    cov_idx: np.ndarray | None = None,
    halflife: float = 90.0,
    min_obs: int = 63,
) -> ArrayRisk:
    """Fit the simple model.

    Parameters
    ----------
    close : float[T, N]
        Back-adjusted close.
    mktcap : float[T, N]
    industry_ids : int[N] or int[T, N]
        ``0..P-1``, -1 for none.
    dates : datetime64[D][T]
    estu : bool[T, N], optional
        Estimation universe (default: price, cap and industry known).
    cov_idx : int[D], optional
        Dates (indices) to forecast at; default the last trading day of each month from row
        ``min_obs`` on. A forecast at ``d`` uses factor returns of rows ``<= d`` (known at ``d``'s
        close).
    halflife : float
        EWMA half-life in days for factor covariance and specific variance.
    """
    close = np.asarray(close, np.float64)
    mktcap = np.asarray(mktcap, np.float64)
    T, N = close.shape
    ind = np.asarray(industry_ids)
    ind_tn = np.broadcast_to(ind, (T, N)) if ind.ndim == 1 else ind
    if ind_tn.shape != (T, N):
        raise DataError(f"industry_ids {ind.shape} must be [N] or [T, N]", field="industry_ids")
    P = int(ind_tn.max()) + 1 if (ind_tn >= 0).any() else 0
    S = len(STYLE_NAMES)
    K = 1 + P + S
    valid = np.isfinite(close) & (close > 0) & np.isfinite(mktcap) & (mktcap > 0) & (ind_tn >= 0)
    estu = valid if estu is None else (np.asarray(estu, bool) & valid)
    styles = simple_styles(close, mktcap, estu)

    with np.errstate(all="ignore"):
        ret = np.full((T, N), np.nan)
        ret[1:] = close[1:] / close[:-1] - 1.0
    fr = np.zeros((T, K))  # row t: return over t-1 -> t on exposures at t-1; country stays 0
    resid = np.full((T, N), np.nan, np.float32)
    ridge = 1e-10
    for t in range(1, T):
        fr[t, 1:], resid[t] = _wls_day(
            ret[t], ind_tn[t - 1], styles[t - 1], mktcap[t - 1], estu[t - 1], P, ridge
        )

    if cov_idx is None:
        m = np.asarray(dates, "datetime64[M]")
        cov_idx = np.nonzero(np.r_[m[1:] != m[:-1], True])[0]
        cov_idx = cov_idx[cov_idx >= min_obs]
    cov_idx = np.asarray(cov_idx, np.int64)
    if cov_idx.size == 0:
        raise DataError(f"too few dates ({T}) for the simple risk model (min_obs={min_obs})")
    lam = 0.5 ** (1.0 / halflife)
    D = cov_idx.size
    Fc = np.zeros((D, K, K), np.float32)
    for j, d in enumerate(cov_idx):
        rows = np.arange(1, d + 1)
        wt = lam ** (d - rows)
        wt /= wt.sum()
        f = fr[rows]
        Fc[j] = (f * wt[:, None]).T @ f  # zero-mean EWMA (daily means are noise)
    # specific variance: EWMA recursion over all rows, sampled at cov_idx
    spec = np.full((D, N), np.nan, np.float32)
    ew = np.zeros(N)
    wsum = np.zeros(N)
    cnt = np.zeros(N)
    want = {int(d): j for j, d in enumerate(cov_idx)}
    for t in range(T):
        u = resid[t].astype(np.float64)
        f = np.isfinite(u)
        ew *= lam
        wsum *= lam
        ew[f] += u[f] ** 2
        wsum[f] += 1.0
        cnt += f
        if t in want:
            with np.errstate(all="ignore"):
                v = ew / wsum
            spec[want[t]] = np.where(cnt >= min_obs, v, np.nan)
    return ArrayRisk(
        styles=styles,
        industry_ids=np.asarray(industry_ids).astype(np.int16),
        n_industries=P,
        factor_cov=Fc,
        specific_var=spec,
        cov_idx=cov_idx,
        dates=np.asarray(dates, "datetime64[D]"),
        periods_per_year=252.0,
    )
