"""Specific (idiosyncratic) risk forecasts: EWMA + Newey-West, structural model, Bayesian
shrinkage within size deciles, volatility regime adjustment. Never forms an ``N x N`` matrix
(specific risk is diagonal).

Shapes: ``T`` periods, ``N`` assets, ``K`` factors, ``D`` forecast dates. Specific-return row s
is the residual over ``s -> s+1``; the forecast at date d uses rows ``<= d-1``. Units: volatility
per period.

1. Time series: ``var_n = G0 + sum_j (1 - j/(L+1)) 2 G_j`` with EWMA (half-life 84 by default)
   moments of the stock's own specific returns (missing days get zero weight): ``G0`` about 0,
   the lagged ``G_j`` about the EWMA mean.
2. Structural model (USE4) for thin or irregular histories: blending coefficient
   ``gamma = clip((h - 60) / 120, 0, 1) * clip(exp(1 - Z), 0, 1)``, ``h`` = observations in
   the last 252 periods, ``Z = |sigma_eq / sigma_robust - 1|`` (robust = IQR / 1.35). Stocks with
   gamma = 1 fit ``ln sigma_TS = X b`` (sqrt-cap WLS), and
   ``sigma = gamma sigma_TS + (1 - gamma) E0 exp(X b)``, E0 = 1.05.
3. Bayesian shrinkage toward the cap-weighted mean of the stock's size decile (10 by default):
   ``v = q |s - s_bar| / (Delta + q |s - s_bar|)``, ``s_sh = v s_bar + (1 - v) s``, q = 0.1.
   Deviation: we then rescale each decile so its cap-weighted mean is exactly preserved (the
   USE4 formula preserves it only approximately).
4. VRA: ``B_t^2 = sum_n w_n (u_nt / sigma_nt)^2`` (cap weights over the estimation universe,
   step-1 forecasts), ``lambda_d^2 = EWMA_HL(B^2)`` over rows ``<= d-1``; ``sigma *= lambda``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from deepalpha.risk.covariance import vra_lambda


def _ewm(x: np.ndarray, halflife: float) -> np.ndarray:
    lam = 0.5 ** (1.0 / float(halflife))
    return lfilter([1.0], [1.0, -lam], x, axis=0)


def _ewm_sq_weights(ok: np.ndarray, halflife: float) -> np.ndarray:
    """``sum lam^(2 age)`` over the observed rows (for the effective number of observations)."""
    lam = 0.5 ** (1.0 / float(halflife))
    return lfilter([1.0], [1.0, -(lam**2)], ok.astype(np.float64), axis=0)


def ts_specific_var(u: np.ndarray, halflife: float = 84, lags: int = 2) -> np.ndarray:
    """EWMA + Newey-West specific variance forecast for every row.

    u : float[T, N] specific returns (NaN = missing). Returns float64[T, N]; row t uses rows
    ``<= t-1`` (row 0 and stocks with no history are NaN).
    """
    u = np.asarray(u, dtype=np.float64)
    ok = np.isfinite(u)
    u0 = np.where(ok, u, 0.0)
    W = _ewm(ok.astype(np.float64), halflife)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = _ewm(u0 * u0, halflife) / W
        g0 = var.copy()
        # lagged terms are autocovariances about the EWMA mean (a drift is not risk; see
        # covariance._EWMoments.newey_west)
        # minus the noise of the mean estimate, G0 / n_eff (n_eff = (sum w)^2 / sum w^2)
        n_eff = W**2 / _ewm_sq_weights(ok, halflife)
        mu2 = (_ewm(u0, halflife) / W) ** 2 - g0 / np.maximum(n_eff, 1.0) if lags > 0 else 0.0
        for j in range(1, lags + 1):
            prod = np.zeros_like(u0)
            prod[j:] = u0[j:] * u0[:-j]
            var += 2.0 * (1.0 - j / (lags + 1.0)) * (_ewm(prod, halflife) / W - mu2)
    var = np.where(var > 0, var, g0)  # NW can (rarely) go negative: fall back to EWMA
    out = np.full_like(var, np.nan)
    out[1:] = var[:-1]
    out[~(out > 0)] = np.nan
    return out


def _nanquantile_cols(x: np.ndarray, q: float, n: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantile of each column over its finite values (``np.nanquantile``
    semantics) by one sort; ``n`` = finite count per column. NaN for empty columns."""
    s = np.sort(x, axis=0)  # NaN sorts last
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    cols = np.arange(x.shape[1])
    frac = pos - lo
    out = s[lo, cols] * (1 - frac) + s[hi, cols] * frac
    return np.where(n > 0, out, np.nan)


def blending_gamma(u_window: np.ndarray, h_min: int = 60, h_ramp: int = 120) -> np.ndarray:
    """Structural-model blending coefficient per stock from its last rows ``u_window [H, N]``."""
    if u_window.shape[0] == 0:  # no history yet (first date): no time-series weight
        return np.zeros(u_window.shape[1])
    ok = np.isfinite(u_window)
    h = ok.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q1 = _nanquantile_cols(u_window, 0.25, h)
        q3 = _nanquantile_cols(u_window, 0.75, h)
        s_rob = (q3 - q1) / 1.35
        s_eq = np.nanstd(u_window, axis=0)
        Z = np.abs(s_eq / s_rob - 1.0)
    g = np.clip((h - h_min) / h_ramp, 0.0, 1.0) * np.clip(np.exp(1.0 - Z), 0.0, 1.0)
    return np.where(np.isfinite(g), g, 0.0)


def structural_blend(
    sigma_ts: np.ndarray,
    gamma: np.ndarray,
    X: np.ndarray,
    weight: np.ndarray,
    *,
    e0: float = 1.05,
) -> np.ndarray:
    """Blend the time-series forecast with the structural one for one date.

    sigma_ts : float[N]; gamma : float[N]; X : float[N, K] exposures (rows with NaN unusable);
    weight : float[N] regression weights (0 = not used in the fit). Returns float64[N]
    (NaN where neither forecast exists).
    """
    Xok = np.isfinite(X).all(axis=1)
    fit = Xok & (gamma >= 1.0) & (sigma_ts > 0) & (weight > 0)
    out = np.where(gamma > 0, sigma_ts, np.nan)
    if fit.sum() <= X.shape[1]:
        return out
    Xf = X[fit]
    wf = weight[fit]
    A = Xf.T @ (Xf * wf[:, None])
    A += np.eye(A.shape[0]) * 1e-10 * np.trace(A) / A.shape[0]  # empty industries: ridge
    beta = np.linalg.solve(A, Xf.T @ (wf * np.log(sigma_ts[fit])))
    s_str = np.where(Xok, e0 * np.exp(np.nan_to_num(X) @ beta), np.nan)
    g = np.where(np.isfinite(sigma_ts), gamma, 0.0)
    blended = g * np.nan_to_num(sigma_ts) + (1.0 - g) * s_str
    return np.where(np.isfinite(blended), blended, out)


def bayesian_shrink(
    sigma: np.ndarray,
    cap: np.ndarray,
    *,
    q: float = 0.1,
    n_groups: int = 10,
    recentre: bool = True,
    estu: np.ndarray | None = None,
) -> np.ndarray:
    """Shrink ``sigma [N]`` toward the cap-weighted mean of its cap decile.

    ``estu=None``: the deciles, their means and dispersions come from every stock with a finite
    sigma and a positive cap, and those stocks are shrunk. ``estu`` (bool[N]): deciles (equal
    counts), means and dispersions come from the ESTU stocks; every stock with a finite sigma and
    a positive cap -- inside the ESTU or not -- is shrunk toward the mean of the decile its cap
    falls in (CNE6 shrinks all stocks). Others are left as they are. With ``recentre`` each
    decile is rescaled so that its (ESTU) cap-weighted mean is preserved exactly. Returns
    float64[N].
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    cap = np.asarray(cap, dtype=np.float64)
    out = sigma.copy()
    ok = np.isfinite(sigma) & np.isfinite(cap) & (cap > 0)
    fit = ok if estu is None else ok & np.asarray(estu, dtype=bool)
    idx = np.nonzero(fit)[0]
    if idx.size == 0:
        return out
    order = idx[np.argsort(cap[idx], kind="stable")]
    groups = [g for g in np.array_split(order, n_groups) if g.size]
    # decile of every shrinkable stock: by the upper cap bound of each fitted group
    bounds = np.array([cap[g[-1]] for g in groups])
    others = np.nonzero(ok & ~fit)[0]
    gid = np.minimum(np.searchsorted(bounds, cap[others], side="left"), len(groups) - 1)
    for k, grp in enumerate(groups):
        w = cap[grp] / cap[grp].sum()
        s = sigma[grp]
        sbar = (w * s).sum()
        delta = np.sqrt(np.mean((s - sbar) ** 2))
        members = np.concatenate([grp, others[gid == k]])
        dev = np.abs(sigma[members] - sbar)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(dev > 0, q * dev / (delta + q * dev), 0.0)
        sh = v * sbar + (1.0 - v) * sigma[members]
        if recentre:
            sh = sh * (sbar / (w * sh[: grp.size]).sum())
        out[members] = sh
    return out


@dataclass(frozen=True)
class SpecificConfig:
    """Specific-risk settings (half-lives and windows in periods of the model)."""

    halflife: float = 84
    nw_lags: int = 2
    window: int = 252
    h_min: int = 60
    h_ramp: int = 120
    e0: float = 1.05
    shrink_q: float = 0.1
    n_groups: int = 10
    vra_halflife: float = 21


def specific_vra(
    u: np.ndarray, sigma: np.ndarray, cap: np.ndarray, estu: np.ndarray, halflife: float
) -> np.ndarray:
    """Specific VRA multiplier lambda ``[T]`` (on volatility) from rows ``<= t-1``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z2 = (u / sigma) ** 2
    ok = np.isfinite(z2) & estu & np.isfinite(cap) & (cap > 0)
    w = np.where(ok, cap, 0.0)
    sw = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        b2 = np.where(sw > 0, (w * np.where(ok, z2, 0.0)).sum(axis=1) / sw, np.nan)
    return vra_lambda(b2, halflife)
