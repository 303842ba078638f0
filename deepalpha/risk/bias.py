"""Bias statistics: do the risk forecasts match realised volatility out of sample?

For a portfolio with forecast volatility ``sigma_t`` (made at the latest covariance date
``<= t`` from data before it) and realised return ``r_t`` over ``t -> t+1``, the standardised
return is ``z_t = r_t / sigma_t`` and the bias statistic over a window is ``B = std(z)``.
``B ~ 1`` means accurate forecasts; with ``n`` observations the 95 % band is about
``1 +- sqrt(2 / n)``. Forecasts are never revised with later data, so every z is out of sample.

Horizon ``h`` (periods): the forecasts are per period; an ``h``-period return is scored against
``sqrt(h)`` times the forecast volatility in force at its first row. Blocks of ``h`` rows start
at every covariance date ``d`` and at ``d + h, d + 2h, ...`` before the next covariance date
(``h = 1``: every row), and need all ``h`` rows (a block may run past the next covariance date;
blocks starting at consecutive covariance dates then overlap by a few rows). Holdings are fixed
within a block; the block return is the sum of the per-period returns (the variance a per-period
covariance forecast makes for it is ``h`` times the per-period one; Newey-West adjusts the
forecast for the autocorrelation that makes this differ from ``h`` independent periods).

Portfolios: the pure factor portfolios (``sigma_k = sqrt(F_kk)``, ``r = f_k``), the eigen
portfolios of each covariance forecast, random long-only portfolios of estimation-universe
stocks (random subsets, cap weighted, redrawn at every covariance date, held until the next) and
index member-proxy portfolios (the cap-weighted estimation-universe members of an index on the
covariance date, e.g. CSI 300 / 500 / 1000 -- the data has no index weights), whose risk uses the
full model ``x' F x + sum h^2 Delta``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
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


def horizon_blocks(model: RiskModel, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Scoring blocks of `horizon` rows -> (``start int64[B]``, ``cov int64[B]``): the first row
    of each block and the covariance date in force there (see the module docstring)."""
    h = int(horizon)
    if h < 1:
        from deepalpha.errors import ConfigError

        raise ConfigError(f"bias horizon must be >= 1 period, got {horizon}")
    T = len(model.dates)
    ci = model.cov_index()
    starts: list[np.ndarray] = []
    covs: list[np.ndarray] = []
    for i, d in enumerate(ci.tolist()):
        end = int(ci[i + 1]) if i + 1 < len(ci) else T
        s = np.arange(d, end, h)
        s = s[s + h <= T]
        starts.append(s)
        covs.append(np.full(len(s), i))
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(starts).astype(np.int64), np.concatenate(covs).astype(np.int64)


def _block_sum(x: np.ndarray, starts: np.ndarray, h: int) -> np.ndarray:
    """Sum of rows ``[s, s + h)`` of ``x [T, P]`` for each start -> float64[B, P] (NaN if any
    row of the block is NaN)."""
    x = np.asarray(x, dtype=np.float64)
    if h == 1:
        return x[starts]
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(np.nan_to_num(x), axis=0)])
    bad = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(np.isnan(x), axis=0)])
    out = c[starts + h] - c[starts]
    out[(bad[starts + h] - bad[starts]) > 0] = np.nan
    return out


def factor_z(model: RiskModel, horizon: int = 1) -> np.ndarray:
    """Standardised factor returns ``float64[B, K]`` (pure factor portfolios), one row per
    `horizon_blocks` block (``horizon=1``: one row per model row from the first covariance
    date on)."""
    starts, cov = horizon_blocks(model, horizon)
    h = int(horizon)
    var = np.diagonal(np.asarray(model.factor_cov, dtype=np.float64), axis1=1, axis2=2)
    sig = np.sqrt(h * var[cov])
    # no forecast (a factor without history has a zero row; guard round-off relative to the
    # date's median factor variance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a date with no forecast at all
        med = np.nanmedian(np.where(var > 0, var, np.nan), axis=1)
    floor = h * 1e-10 * med[cov]
    sig[~(sig**2 > floor[:, None])] = np.nan
    f = np.asarray(model.factor_returns, dtype=np.float64)
    f = np.where(np.isnan(np.asarray(model.tstats)), np.nan, f)  # NaN t: fixed at 0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = _block_sum(f, starts, h) / sig
    z[~np.isfinite(z)] = np.nan
    return z


def eigen_z(model: RiskModel, horizon: int = 1) -> np.ndarray:
    """Standardised returns ``float64[B, K]`` of the eigen portfolios of the forecast in force,
    one row per `horizon_blocks` block."""
    starts, cov = horizon_blocks(model, horizon)
    h = int(horizon)
    K = model.factor_returns.shape[1]
    z = np.full((len(starts), K), np.nan)
    fb = _block_sum(np.asarray(model.factor_returns, dtype=np.float64), starts, h)
    for i in np.unique(cov).tolist():
        C = np.asarray(model.factor_cov[i], dtype=np.float64)
        rows = np.nonzero(cov == i)[0]
        if not np.isfinite(C).all():
            continue
        d, U = np.linalg.eigh(C)
        d = np.where(d > 1e-10 * d.max(), d, np.nan)  # null directions (factors without data)
        with np.errstate(invalid="ignore", divide="ignore"):
            z[rows] = (np.nan_to_num(fb[rows]) @ U) / np.sqrt(h * d)
        z[rows[np.isnan(fb[rows]).any(axis=1)]] = np.nan
    return z


def _portfolio_z(
    model: RiskModel,
    r: np.ndarray,
    holdings: Callable[[int, int, np.ndarray], list[tuple[int, np.ndarray, np.ndarray]]],
    n_cols: int,
    horizon: int,
) -> np.ndarray:
    """Standardised block returns ``float64[B, n_cols]`` of long-only portfolios.

    holdings(cov_index, row, pool) -> [(column, stock indices, weights summing to 1)] for the
    covariance date's row; pool = stocks with a weight and a specific-risk forecast. Daily
    portfolio returns re-normalise the weights over the stocks with a return that day.
    """
    starts, cov = horizon_blocks(model, horizon)
    h = int(horizon)
    ci = model.cov_index()
    z = np.full((len(starts), n_cols), np.nan)
    for i in np.unique(cov).tolist():
        d = int(ci[i])
        C = np.asarray(model.factor_cov[i], dtype=np.float64)
        spec = np.asarray(model.specific_var[i], dtype=np.float64)
        w = np.asarray(model.weights[d], dtype=np.float64)
        pool = np.nonzero((w > 0) & np.isfinite(spec))[0]
        if not np.isfinite(C).all():
            continue
        rows = np.nonzero(cov == i)[0]
        lo, hi = int(starts[rows].min()), int(starts[rows].max()) + h
        X = None
        for col, idx, hw in holdings(i, d, pool):
            if X is None:
                X = model.design(d, d + 1)[0]
            x = X[idx].T @ hw
            sig = np.sqrt(h * (x @ C @ x + (hw * hw * spec[idx]).sum()))
            rr = r[lo:hi][:, idx]
            ok = np.isfinite(rr)
            with np.errstate(invalid="ignore", divide="ignore"):
                rp = (np.where(ok, rr, 0.0) * hw).sum(axis=1) / (ok * hw).sum(axis=1)
            zb = _block_sum(rp[:, None], starts[rows] - lo, h)[:, 0] / sig
            z[rows, col] = zb
    return z


def random_portfolio_z(
    model: RiskModel,
    *,
    n_portfolios: int = 100,
    n_stocks: int = 50,
    seed: int = 0,
    horizon: int = 1,
    returns: np.ndarray | None = None,
) -> np.ndarray:
    """Standardised returns ``float64[B, n_portfolios]`` of random cap-weighted portfolios
    (redrawn at every covariance date), one row per `horizon_blocks` block."""
    from deepalpha.risk.factor_tools import model_returns

    rng = np.random.default_rng(seed)
    r = model_returns(model) if returns is None else returns

    def holdings(i: int, d: int, pool: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        if pool.size < n_stocks:
            return []
        w = np.asarray(model.weights[d], dtype=np.float64)
        out = []
        for p in range(n_portfolios):
            idx = rng.choice(pool, n_stocks, replace=False)
            hw = w[idx] ** 2
            out.append((p, idx, hw / hw.sum()))
        return out

    return _portfolio_z(model, r, holdings, n_portfolios, horizon)


def index_proxy_z(
    model: RiskModel,
    members: Mapping[str, np.ndarray],
    *,
    horizon: int = 1,
    min_stocks: int = 20,
    returns: np.ndarray | None = None,
) -> np.ndarray:
    """Standardised returns ``float64[B, len(members)]`` of index member-proxy portfolios.

    members : name -> bool[T, N] point-in-time membership on the model's dates and assets (e.g.
    the panel masks ``csi300``, ``csi500``, ``csi1000``). At each covariance date the proxy holds
    the members in the estimation universe with a specific-risk forecast, cap weighted (cap =
    weight squared), until the next covariance date; dates with fewer than `min_stocks` such
    members are skipped.
    """
    from deepalpha.risk.factor_tools import model_returns

    names = list(members)
    T, N = len(model.dates), len(model.assets)
    for k in names:
        if np.shape(members[k]) != (T, N):
            raise ValueError(f"membership {k!r} must be bool[{T}, {N}], got {np.shape(members[k])}")
    r = model_returns(model) if returns is None else returns

    def holdings(i: int, d: int, pool: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        w = np.asarray(model.weights[d], dtype=np.float64)
        out = []
        for c, k in enumerate(names):
            idx = pool[np.asarray(members[k][d])[pool]]
            if idx.size >= min_stocks:
                hw = w[idx] ** 2
                out.append((c, idx, hw / hw.sum()))
        return out

    return _portfolio_z(model, r, holdings, len(names), horizon)


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
        "n_obs": int(np.isfinite(z).sum(axis=0).max()) if z.size else 0,
    }


def bias_report(
    model: RiskModel,
    *,
    n_portfolios: int = 100,
    n_stocks: int = 50,
    seed: int = 0,
    horizon: int = 1,
    members: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Bias summaries at `horizon` periods for factor, eigen, random and (with `members`) index
    member-proxy portfolios; rolling windows of about one year (``periods_per_year // horizon``
    blocks, at least 6). ``per_factor``: full-sample bias of each factor; ``index``: per index
    name, the full-sample bias and its rolling summary."""
    h = int(horizon)
    window = max(model.periods_per_year // h, 6)
    fz = factor_z(model, h)
    per_factor = bias_statistic(fz)
    from deepalpha.risk.factor_tools import model_returns

    r = model_returns(model)
    out: dict[str, Any] = {
        "horizon": h,
        "factor": summarize(fz, window),
        "eigen": summarize(eigen_z(model, h), window),
        "random": summarize(
            random_portfolio_z(
                model,
                n_portfolios=n_portfolios,
                n_stocks=n_stocks,
                seed=seed,
                horizon=h,
                returns=r,
            ),
            window,
        ),
        "per_factor": {n: float(b) for n, b in zip(model.factor_names, per_factor, strict=True)},
        "window": window,
    }
    if members:
        iz = index_proxy_z(model, members, horizon=h, returns=r)
        out["index"] = {
            k: {"bias": float(bias_statistic(iz[:, [c]])[0]), **summarize(iz[:, [c]], window)}
            for c, k in enumerate(members)
        }
    return out
