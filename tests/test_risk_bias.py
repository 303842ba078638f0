"""Bias statistics: ~1 when forecasts are right, off by the mis-scaling when they are not."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.risk.bias import bias_report, bias_statistic, factor_z
from deepalpha.risk.model import RiskModel


def test_bias_statistic_reference():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 3))
    z[::7, 1] = np.nan
    b = bias_statistic(z)
    assert b[0] == pytest.approx(np.std(z[:, 0], ddof=1))
    assert b[1] == pytest.approx(np.nanstd(z[:, 1], ddof=1))
    roll = bias_statistic(z, 100)
    assert roll.shape == (3, 3)
    assert roll[1, 2] == pytest.approx(np.std(z[100:200, 2], ddof=1))


def simulated_model(scale_forecast=1.0, T=600, N=300, P=3, S=2, seed=0):
    """Returns drawn from exactly the covariance the model forecasts (times a scale)."""
    rng = np.random.default_rng(seed)
    K = 1 + P + S
    A = rng.standard_normal((K, K))
    C = A @ A.T / K * 1e-4
    f = rng.multivariate_normal(np.zeros(K), C, size=T)
    spec = np.exp(rng.normal(-8, 0.3, N))  # specific variances
    u = rng.standard_normal((T, N)) * np.sqrt(spec)
    dates = np.arange(T).astype("datetime64[D]")
    cov_rows = np.arange(0, T, 20)
    ind = np.broadcast_to(rng.integers(0, P, N), (T, N)).astype(np.int16)
    return RiskModel(
        dates=dates, assets=np.array([f"S{i}" for i in range(N)]), style_names=("A", "B"),
        industry_names=("banks", "coal", "steel"),
        styles=rng.standard_normal((T, N, S)).astype(np.float32), industry_ids=ind,
        weights=np.exp(rng.normal(2, 0.5, (T, N))).astype(np.float32),
        factor_returns=f.astype(np.float32), specific_returns=u.astype(np.float32),
        tstats=np.ones((T, K), np.float32), r2=np.zeros(T, np.float32), cov_dates=dates[cov_rows],
        factor_cov=np.broadcast_to(C * scale_forecast**2, (len(cov_rows), K, K)).astype(np.float32),
        specific_var=np.broadcast_to(spec * scale_forecast**2, (len(cov_rows), N)).astype(np.float32),
    )  # fmt: skip


def test_bias_near_one_when_forecasts_are_right():
    rep = bias_report(simulated_model(), n_portfolios=20, n_stocks=30)
    for k in ("factor", "eigen", "random"):
        assert rep[k]["median"] == pytest.approx(1.0, abs=0.1), k


def test_bias_detects_underforecast():
    rep = bias_report(simulated_model(scale_forecast=0.5), n_portfolios=20, n_stocks=30)
    for k in ("factor", "eigen", "random"):
        assert rep[k]["median"] == pytest.approx(2.0, abs=0.2), k


def test_factor_z_skips_factors_without_forecast():
    m = simulated_model()
    m.factor_cov = np.array(m.factor_cov)
    m.factor_cov[:, 2, :] = 0.0
    m.factor_cov[:, :, 2] = 0.0
    z = factor_z(m)
    assert np.isnan(z[:, 2]).all() and np.isfinite(z[:, 0]).all()
