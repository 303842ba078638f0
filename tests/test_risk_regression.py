"""Constrained cross-sectional WLS: identities, recovery and a slow statsmodels reference."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.risk.regression import design_chunk, omega, regress, restriction_matrix


def make_market(T=12, N=300, P=6, S=4, seed=0, empty_industry_at=None):
    rng = np.random.default_rng(seed)
    ind = rng.integers(0, P, size=N)
    if empty_industry_at is not None:
        ind[ind == P - 1] = 0  # industry P-1 has no members at all
    styles = rng.standard_normal((T, N, S))
    cap = np.exp(rng.normal(3, 1, size=(T, N)))
    f_true = rng.normal(0, 0.01, size=(T, 1 + P + S))
    X = design_chunk(styles, np.broadcast_to(ind, (T, N)), P)
    u_true = rng.standard_t(4, size=(T, N)) * 0.02
    r = np.einsum("tnk,tk->tn", X, f_true) + u_true
    v = np.sqrt(cap)
    return styles, ind, P, r, v, cap, X


def reference_wls(X, r, v, P):
    """Slow per-date reference: statsmodels WLS on the reduced system Z = X R."""
    lm = pytest.importorskip("statsmodels.regression.linear_model")
    keep = v > 0
    ind_w = (X[keep, 1 : 1 + P] * (v[keep] ** 2)[:, None]).sum(axis=0)
    R, _ = restriction_matrix(ind_w[None], X.shape[1] - 1 - P)
    R = R[0]
    Z = X[keep] @ R
    res = lm.WLS(r[keep], Z, weights=v[keep]).fit()
    f = R @ res.params
    cov_f = R @ res.cov_params() @ R.T
    return f, f / np.sqrt(np.diag(cov_f))


def test_matches_statsmodels_reference():
    styles, ind, P, r, v, _, X = make_market()
    res = regress(styles, ind, P, r, v, chunk=5)
    for t in range(styles.shape[0]):
        f_ref, t_ref = reference_wls(X[t], r[t], v[t], P)
        np.testing.assert_allclose(res.factor_returns[t], f_ref, atol=1e-10, rtol=1e-8)
        np.testing.assert_allclose(res.tstats[t], t_ref, rtol=1e-4)


def test_industry_constraint_exact_and_recovery():
    styles, ind, P, r, v, cap, X = make_market(T=6, N=2000)
    res = regress(styles, ind, P, r, v)
    w = np.stack([np.bincount(ind, weights=cap[t], minlength=P) for t in range(6)])
    s = (w * res.factor_returns[:, 1 : 1 + P]).sum(axis=1) / w.sum(axis=1)
    assert np.abs(s).max() < 1e-15
    # specific returns are the residuals of the fit
    u = r - np.einsum("tnk,tk->tn", X, res.factor_returns)
    np.testing.assert_allclose(res.specific_returns, u, atol=1e-6)
    assert np.all((res.r2 > 0) & (res.r2 < 1))


def test_omega_identities_and_pure_style_portfolios():
    styles, ind, P, r, v, _, X = make_market(T=1, N=400)
    Om, R = omega(X[0], v[0], P)
    np.testing.assert_allclose(Om @ X[0] @ R, R, atol=1e-10)
    E = Om @ X[0]  # row k: exposures of the pure factor portfolio k
    K = X.shape[2]
    for k in range(1 + P, K):
        np.testing.assert_allclose(E[k], np.eye(K)[k], atol=1e-10)
    # Omega r reproduces the batched factor returns
    res = regress(styles, ind, P, r, v)
    np.testing.assert_allclose(Om @ r[0], res.factor_returns[0], atol=1e-12)
    # the country portfolio is fully invested; style portfolios are dollar neutral
    assert Om[0].sum() == pytest.approx(1.0)
    assert np.allclose(Om[1 + P :].sum(axis=1), 0.0, atol=1e-10)


def test_empty_industry_and_missing_rows():
    styles, ind, P, r, v, _, _ = make_market(T=3, N=300, empty_industry_at=True)
    styles = styles.copy()
    styles[0, :10] = np.nan  # missing exposures -> excluded
    r = r.copy()
    r[1, 10:20] = np.nan  # missing returns -> excluded
    res = regress(styles, ind, P, r, v)
    assert np.all(res.factor_returns[:, P] == 0.0)  # empty industry (index P-1, column P)
    assert np.isnan(res.tstats[:, P]).all()
    assert np.isfinite(res.factor_returns[:, :P]).all()
    assert np.isnan(res.specific_returns[0, :10]).all()
    assert np.isnan(res.specific_returns[1, 10:20]).all()
    assert res.n_obs.tolist() == [290, 290, 300]


def test_too_few_stocks_gives_nan():
    styles, ind, P, r, v, _, _ = make_market(T=2, N=300)
    v = v.copy()
    v[1, 5:] = 0.0
    res = regress(styles, ind, P, r, v)
    assert np.isfinite(res.factor_returns[0]).all()
    assert np.isnan(res.factor_returns[1]).all()


def test_collinear_style_falls_back_to_pseudo_inverse():
    styles, ind, P, r, v, _, _ = make_market(T=2, N=300)
    styles = styles.copy()
    styles[0, :, 0] = (ind == 1).astype(float)  # style 0 == industry 1 dummy on date 0
    res = regress(styles, ind, P, r, v)
    assert np.isfinite(res.factor_returns).all()
    ok = np.isfinite(res.specific_returns[0])
    assert ok.all() and 0 < res.r2[0] < 1
