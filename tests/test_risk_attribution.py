"""Exposures over time and return attribution (issue 17 items 8, 9): reconciliation to 1e-10."""

from __future__ import annotations

import numpy as np
from risk_toy import toy_model

from deepalpha.risk.attribution import attribute_returns, carino_link, exposure_path
from deepalpha.risk.regression import design_chunk


def _setup(seed=0):
    m = toy_model()
    T, N = len(m.dates), len(m.assets)
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(N), T) * 0.97  # 3 % cash
    b = rng.dirichlet(np.ones(N), T)
    return m, w, b, rng


def test_exposure_path_matches_dense_design():
    m, w, b, _ = _setup()
    X = design_chunk(np.nan_to_num(m.styles), m.industry_ids, m.n_industries)
    x = exposure_path(w - b, m.styles, m.industry_ids, m.n_industries, chunk=7)
    np.testing.assert_allclose(x, np.einsum("tnk,tn->tk", X, w - b), atol=1e-12)
    # a reordered / partial asset list and a day outside the model
    cols = np.r_[5, 3, -1]
    rows = np.r_[np.arange(len(m.dates) - 1), -1]
    x2 = exposure_path(w[:, :3], m.styles, m.industry_ids, m.n_industries, rows=rows, cols=cols)
    assert np.isnan(x2[-1]).all()
    want = np.einsum("tnk,tn->tk", X[:-1][:, [5, 3]], w[:-1, :2])
    want[:, 0] += w[:-1, 2]  # not in the model: country only
    np.testing.assert_allclose(x2[:-1], want, atol=1e-12)


def test_attribution_reconciles_and_recovers_specific():
    m, w, b, rng = _setup()
    T, N = w.shape
    a = w - b
    X = design_chunk(np.nan_to_num(m.styles), m.industry_ids, m.n_industries)
    f = np.nan_to_num(m.factor_returns.astype(np.float64))
    u = rng.normal(0, 0.02, (T, N))
    r = np.einsum("tnk,tk->tn", X, f) + u  # returns exactly explained by the model
    x = exposure_path(a, m.styles, m.industry_ids, m.n_industries)
    costs = rng.uniform(0, 1e-3, T)
    total = np.einsum("tn,tn->t", a, r) - costs
    att = attribute_returns(
        a, r, x, f, total=total, factor_names=m.factor_names, n_ind=m.n_industries
    )
    parts = att.factor.sum(1) + att.specific + att.residual
    np.testing.assert_allclose(parts, total, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.cumsum(parts), np.cumsum(total), rtol=0, atol=1e-10)
    np.testing.assert_allclose(att.specific, np.einsum("tn,tn->t", a, u), atol=1e-12)
    np.testing.assert_allclose(att.residual, -costs, atol=1e-12)
    k = att.by_kind()
    np.testing.assert_allclose(k["country"] + k["industry"] + k["style"], k["factor"], atol=1e-15)
    df = att.frame(m.dates + 1)
    assert {"total", "factor", "specific", "residual", "style:A", "industry:steel"} <= set(
        df.columns
    )
    # rows without factor returns (the model's last one) go to specific
    f2 = f.copy()
    f2[-1] = np.nan
    att2 = attribute_returns(a, r, x, f2, total=total)
    assert att2.unattributed[-1] and att2.factor[-1].sum() == 0
    np.testing.assert_allclose(
        att2.factor.sum(1) + att2.specific + att2.residual, total, atol=1e-10
    )


def test_carino_link_adds_up_to_compounded_active():
    rng = np.random.default_rng(2)
    T = 250
    rb = rng.normal(3e-4, 0.01, T)
    rp = rb + rng.normal(2e-4, 0.003, T)
    parts = rng.dirichlet(np.ones(4), T) * (rp - rb)[:, None]
    linked = carino_link(parts, rp, rb)
    np.testing.assert_allclose(linked.sum(), np.prod(1 + rp) - np.prod(1 + rb), rtol=0, atol=1e-12)
