"""Bias statistics: do the risk forecasts match realised volatility out of sample?

For a portfolio with forecast volatility ``sigma_t`` (made at the latest covariance date
``<= t`` from data before it) and realised return ``r_t`` over ``t -> t+1``, the standardised
return is ``z_t = r_t / sigma_t`` and the bias statistic over a window is ``B = std(z)``.
``B ~ 1`` means accurate forecasts; with ``n`` observations the 95 % band is about
``1 +- sqrt(2 / n)``. Forecasts are never revised with later data, so every z is out of sample.

Portfolios: the pure factor portfolios (``sigma_k = sqrt(F_kk)``, ``r = f_k``), the eigen
portfolios of each covariance forecast, and random long-only portfolios of estimation-universe
stocks (random subsets, cap weighted, redrawn at every covariance date, held until the next)
whose risk uses the full model ``x' F x + sum h^2 Delta``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from deepalpha.risk.model import RiskModel


def bias_statistic(z: np.ndarray, window: int | None = None, min_obs: int = 20) -> np.ndarray:
    """Std of standardised returns per column.

    z : float[T, P]. ``window=None``: one statistic per column over all finite rows
    (float64[P]); else non-overlapping windows of `window` rows (float64[W, P]), NaN for windows
    with fewer than `min_obs` finite values.
    """
    z = np.asarray(z, dtype=np.float64)
    if window is None:
        blocks = [z]
    else:
        blocks = [z[i : i + window] for i in range(0, z.shape[0] - window + 1, window)]
    out = np.full((len(blocks), z.shape[1]), np.nan)
    for i, b in enumerate(blocks):
        ok = np.isfinite(b)
        n = ok.sum(axis=0)
        b0 = np.where(ok, b, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = b0.sum(axis=0) / n
            v = (np.where(ok, b - m, 0.0) ** 2).sum(axis=0) / (n - 1)
        out[i] = np.where(n >= min_obs, np.sqrt(v), np.nan)
    return out[0] if window is None else out


def _forecast_row(model: RiskModel) -> np.ndarray:
    """For each model row, the index of the covariance date in force (-1 before the first)."""
    ci = model.cov_index()
    return np.searchsorted(ci, np.arange(len(model.dates)), side="right") - 1


def factor_z(model: RiskModel) -> np.ndarray:
    """Standardised factor returns ``float64[T, K]`` (pure factor portfolios)."""
    j = _forecast_row(model)
    var = np.diagonal(np.asarray(model.factor_cov, dtype=np.float64), axis1=1, axis2=2)
    sig = np.where(j[:, None] >= 0, np.sqrt(var[np.maximum(j, 0)]), np.nan)
    # no forecast (a factor without history has a zero row; guard round-off relative to the
    # date's median factor variance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a date with no forecast at all
        med = np.nanmedian(np.where(var > 0, var, np.nan), axis=1)
    floor = np.where(j >= 0, 1e-10 * med[np.maximum(j, 0)], np.inf)
    sig[~(sig**2 > floor[:, None])] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.asarray(model.factor_returns, dtype=np.float64) / sig
    z[~np.isfinite(z) | np.isnan(np.asarray(model.tstats))] = np.nan  # NaN t: fixed at 0
    return z


def eigen_z(model: RiskModel) -> np.ndarray:
    """Standardised returns ``float64[T, K]`` of the eigen portfolios of the forecast in force."""
    j = _forecast_row(model)
    T, K = model.factor_returns.shape
    z = np.full((T, K), np.nan)
    f = np.asarray(model.factor_returns, dtype=np.float64)
    for i in range(len(model.cov_dates)):
        C = np.asarray(model.factor_cov[i], dtype=np.float64)
        rows = np.nonzero(j == i)[0]
        if rows.size == 0 or not np.isfinite(C).all():
            continue
        d, U = np.linalg.eigh(C)
        d = np.where(d > 1e-10 * d.max(), d, np.nan)  # null directions (factors without data)
        with np.errstate(invalid="ignore", divide="ignore"):
            z[rows] = (np.nan_to_num(f[rows]) @ U) / np.sqrt(d)
        z[rows[np.isnan(f[rows]).any(axis=1)]] = np.nan
    return z


def random_portfolio_z(
    model: RiskModel, *, n_portfolios: int = 100, n_stocks: int = 50, seed: int = 0
) -> np.ndarray:
    """Standardised returns ``float64[T, n_portfolios]`` of random cap-weighted portfolios."""
    from deepalpha.risk.factor_tools import model_returns

    rng = np.random.default_rng(seed)
    T = len(model.dates)
    ci = model.cov_index()
    r = model_returns(model)
    z = np.full((T, n_portfolios), np.nan)
    for i, d in enumerate(ci.tolist()):
        end = ci[i + 1] if i + 1 < len(ci) else T
        C = np.asarray(model.factor_cov[i], dtype=np.float64)
        spec = np.asarray(model.specific_var[i], dtype=np.float64)
        w = np.asarray(model.weights[d], dtype=np.float64)
        pool = np.nonzero((w > 0) & np.isfinite(spec))[0]
        if pool.size < n_stocks or not np.isfinite(C).all():
            continue
        X = model.design(d, d + 1)[0]
        for p in range(n_portfolios):
            idx = rng.choice(pool, n_stocks, replace=False)
            h = w[idx] ** 2
            h /= h.sum()
            x = X[idx].T @ h
            sig = np.sqrt(x @ C @ x + (h * h * spec[idx]).sum())
            rr = r[d:end][:, idx]
            ok = np.isfinite(rr)
            hw = ok * h
            with np.errstate(invalid="ignore", divide="ignore"):
                rp = (np.where(ok, rr, 0.0) * h).sum(axis=1) / hw.sum(axis=1)
            z[d:end, p] = rp / sig
    return z


def summarize(z: np.ndarray, window: int) -> dict[str, Any]:
    """Median and spread of full-sample and rolling bias statistics, and the rolling mean
    absolute deviation from 1 (MRAD)."""
    full = bias_statistic(z)
    roll = bias_statistic(z, window, min_obs=min(20, max(window // 2, 2)))
    return {
        "median": float(np.nanmedian(full)) if np.isfinite(full).any() else float("nan"),
        "q10": float(np.nanquantile(full, 0.1)) if np.isfinite(full).any() else float("nan"),
        "q90": float(np.nanquantile(full, 0.9)) if np.isfinite(full).any() else float("nan"),
        "rolling_median": float(np.nanmedian(roll)) if np.isfinite(roll).any() else float("nan"),
        "rolling_mrad": float(np.nanmean(np.abs(roll - 1.0)))
        if np.isfinite(roll).any()
        else float("nan"),
        "n_windows": int(roll.shape[0]),
    }


def bias_report(
    model: RiskModel, *, n_portfolios: int = 100, n_stocks: int = 50, seed: int = 0
) -> dict[str, Any]:
    """Bias summaries for factor, eigen and random portfolios (rolling windows of one year)."""
    window = model.periods_per_year
    fz = factor_z(model)
    per_factor = bias_statistic(fz)
    return {
        "factor": summarize(fz, window),
        "eigen": summarize(eigen_z(model), window),
        "random": summarize(
            random_portfolio_z(model, n_portfolios=n_portfolios, n_stocks=n_stocks, seed=seed),
            window,
        ),
        "per_factor": {n: float(b) for n, b in zip(model.factor_names, per_factor, strict=True)},
        "window": window,
    }
