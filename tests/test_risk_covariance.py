"""Factor covariance (EWMA + Newey-West, eigen adjustment, VRA) and specific risk."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.risk.covariance import (
    CovarianceConfig,
    combine_vol_corr,
    eigen_adjust,
    ewma_cov,
    factor_covariance,
)
from deepalpha.risk.specific import (
    bayesian_shrink,
    blending_gamma,
    structural_blend,
    ts_specific_var,
)


def random_cov(K, rng):
    A = rng.standard_normal((K, 3 * K))
    return A @ A.T / (3 * K) * 1e-4


def simulate(T, K, rng, spike_from=None, spike=3.0):
    C = random_cov(K, rng)
    L = np.linalg.cholesky(C)
    f = rng.standard_normal((T, K)) @ L.T
    if spike_from is not None:
        f[spike_from:] *= spike
    return f, C


def test_nw_zero_lags_equals_ewma():
    rng = np.random.default_rng(1)
    f, _ = simulate(400, 5, rng)
    cfg = CovarianceConfig(
        vol_halflife=60, corr_halflife=60, nw_lags=0, eigen_scale=0.0, min_obs=10,
        vra_halflife=None,
    )  # fmt: skip
    d = np.array([100, 250, 400])
    cov, sigma, _ = factor_covariance(f, d, cfg)
    for i, t in enumerate(d):
        np.testing.assert_allclose(cov[i], ewma_cov(f[:t], 60), rtol=2e-5)
    # the per-row vol forecast uses only earlier rows
    np.testing.assert_allclose(sigma[250], np.sqrt(np.diag(ewma_cov(f[:250], 60))), rtol=1e-10)
    # with VRA on, the covariance is the same matrix times lambda^2
    cfg_vra = CovarianceConfig(
        vol_halflife=60, corr_halflife=60, nw_lags=0, eigen_scale=0.0, min_obs=10
    )
    cov_v, _, lam_v = factor_covariance(f, d[:2], cfg_vra)
    np.testing.assert_allclose(cov_v[1], cov[1] * lam_v[250] ** 2, rtol=2e-5)
    assert lam_v[250] != 1.0


def test_vol_and_corr_halflives_combine():
    rng = np.random.default_rng(2)
    f, _ = simulate(300, 4, rng)
    Cv, Cc = ewma_cov(f, 20), ewma_cov(f, 200)
    C = combine_vol_corr(Cv, Cc)
    np.testing.assert_allclose(np.diag(C), np.diag(Cv))
    s = np.sqrt(np.diag(C))
    sc = np.sqrt(np.diag(Cc))
    np.testing.assert_allclose(C / np.outer(s, s), Cc / np.outer(sc, sc), atol=1e-12)


def test_newey_west_adds_autocorrelation():
    rng = np.random.default_rng(3)
    e = rng.standard_normal((3000, 2)) * 0.01
    f = e.copy()
    f[1:] += 0.5 * e[:-1]  # MA(1): positive autocorrelation -> NW variance larger
    cfg0 = CovarianceConfig(
        vol_halflife=1e6,
        corr_halflife=1e6,
        nw_lags=0,
        eigen_scale=0.0,
        min_obs=10,
        vra_halflife=None,
    )
    cfg2 = CovarianceConfig(
        vol_halflife=1e6,
        corr_halflife=1e6,
        nw_lags=2,
        eigen_scale=0.0,
        min_obs=10,
        vra_halflife=None,
    )
    c0 = factor_covariance(f, np.array([3000]), cfg0)[0][0]
    c2 = factor_covariance(f, np.array([3000]), cfg2)[0][0]
    # long-run variance of an MA(1) with theta .5: (1 + .5)^2 = 2.25 vs 1.25 without NW
    assert np.all(np.diag(c2) / np.diag(c0) > 1.3)


def test_eigen_adjust_scale_zero_is_identity_and_seeded():
    rng = np.random.default_rng(4)
    C = random_cov(8, rng)
    np.testing.assert_array_equal(eigen_adjust(C, n_obs=100, scale=0.0), C)
    a = eigen_adjust(C, n_obs=100, n_sims=50, rng=np.random.default_rng(7))
    b = eigen_adjust(C, n_obs=100, n_sims=50, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    # sample eigenvalues are too dispersed: the smallest eigen-variances are scaled up most
    d0, U = np.linalg.eigh(C)
    da = np.diag(U.T @ a @ U)
    assert da[0] / d0[0] > da[-1] / d0[-1]
    assert da[0] / d0[0] > 1.0


def test_vra_stationary_and_spike():
    rng = np.random.default_rng(5)
    T, K = 1500, 10
    cfg = CovarianceConfig(vol_halflife=84, corr_halflife=252, eigen_scale=0.0, min_obs=63)
    f, _ = simulate(T, K, rng)
    _, _, lam = factor_covariance(f, np.array([T - 1]), cfg)
    assert np.median(lam[300:]) == pytest.approx(1.0, abs=0.1)
    f2, _ = simulate(T, K, np.random.default_rng(5), spike_from=1200, spike=3.0)
    _, _, lam2 = factor_covariance(f2, np.array([T - 1]), cfg)
    assert lam2[1215] > 1.5
    assert lam2[1215] > lam2[1190] + 0.5


def test_ts_specific_var_no_lookahead_and_ewma():
    rng = np.random.default_rng(6)
    u = rng.standard_normal((300, 5)) * 0.02
    v = ts_specific_var(u, halflife=30, lags=0)
    lam = 0.5 ** (1 / 30)
    w = lam ** np.arange(199, -1, -1)
    np.testing.assert_allclose(v[200], (w[:, None] * u[:200] ** 2).sum(0) / w.sum(), rtol=1e-10)
    u2 = u.copy()
    u2[200:] *= 10
    np.testing.assert_array_equal(ts_specific_var(u2, 30, 2)[:201], ts_specific_var(u, 30, 2)[:201])


def test_bayesian_shrink_preserves_decile_means():
    rng = np.random.default_rng(7)
    N = 1000
    cap = np.exp(rng.normal(3, 1, N))
    sigma = np.exp(rng.normal(-4, 0.4, N))
    sigma[::50] = np.nan
    sh = bayesian_shrink(sigma, cap, q=0.3, n_groups=10)
    ok = np.isfinite(sigma)
    order = np.nonzero(ok)[0][np.argsort(cap[ok], kind="stable")]
    for g in np.array_split(order, 10):
        w = cap[g] / cap[g].sum()
        assert (w * sh[g]).sum() == pytest.approx((w * sigma[g]).sum(), rel=1e-12)
        # shrinks toward the decile mean: dispersion goes down
        assert np.std(sh[g]) < np.std(sigma[g])
    assert np.isnan(sh[::50]).all()


def test_structural_model_fills_thin_histories():
    rng = np.random.default_rng(8)
    N, K = 500, 3
    X = np.c_[np.ones(N), rng.standard_normal((N, K - 1))]
    true = 0.02 * np.exp(0.3 * X[:, 1])
    gamma = np.ones(N)
    gamma[:50] = 0.0  # no usable history
    s_ts = np.where(gamma > 0, true, np.nan)
    out = structural_blend(s_ts, gamma, X, np.ones(N), e0=1.0)
    np.testing.assert_allclose(out[:50], true[:50], rtol=1e-8)
    np.testing.assert_allclose(out[50:], true[50:])
    # the blending coefficient: 0 for a short history, 1 for a long regular one
    u = rng.standard_normal((252, 2))
    u[:200, 0] = np.nan
    g = blending_gamma(u)
    assert g[0] == 0.0 and g[1] > 0.9


def test_column_quantile_matches_numpy():
    from deepalpha.risk.specific import _nanquantile_cols

    rng = np.random.default_rng(9)
    x = rng.standard_normal((60, 5))
    x[::3, 1] = np.nan
    x[:, 2] = np.nan
    x[:59, 3] = np.nan
    n = np.isfinite(x).sum(axis=0)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanquantile(x, [0.25, 0.75], axis=0)
    for i, q in enumerate((0.25, 0.75)):
        np.testing.assert_allclose(_nanquantile_cols(x, q, n), ref[i], equal_nan=True)


def test_late_factor_uses_its_own_history():
    rng = np.random.default_rng(10)
    f, _ = simulate(500, 3, rng)
    g = f.copy()
    g[:300, 2] = np.nan  # factor 2 starts at row 300
    cfg = CovarianceConfig(vol_halflife=50, corr_halflife=50, nw_lags=0, eigen_scale=0.0,
                           min_obs=10, vra_halflife=None)  # fmt: skip
    cov = factor_covariance(g, np.array([500]), cfg)[0][0].astype(np.float64)
    np.testing.assert_allclose(cov[2, 2], ewma_cov(f[300:, 2:], 50)[0, 0], rtol=1e-5)
    np.testing.assert_allclose(cov[:2, :2], ewma_cov(f[:, :2], 50), rtol=1e-5)
    np.testing.assert_allclose(cov[0, 2], ewma_cov(f[300:], 50)[0, 2], rtol=1e-5)


def test_factor_without_history_has_zero_forecast():
    rng = np.random.default_rng(12)
    f, _ = simulate(300, 4, rng)
    f[:250, 3] = np.nan  # factor 3 observed on 50 rows only
    cfg = CovarianceConfig(min_obs=20, min_factor_obs=21, eigen_sims=20)
    cov = factor_covariance(f, np.array([260, 290]), cfg)[0]
    assert np.all(cov[0, 3, :] == 0) and np.all(cov[0, :, 3] == 0)  # 10 rows: no forecast
    assert cov[1, 3, 3] > 0 and np.all(np.diag(cov[0])[:3] > 0)
