"""Portfolio risk decomposition (issue 17 item 7) against a brute-force N x N computation."""

from __future__ import annotations

import numpy as np
import pytest
from risk_toy import toy_model

from deepalpha.errors import DataError
from deepalpha.risk.decompose import (
    decompose,
    decompose_snapshot,
    group_table,
    read_snapshot,
    snapshot,
)


def _brute(w, X, F, d, ppy=252.0):
    V = (X @ F @ X.T + np.diag(d)) * ppy
    s = np.sqrt(w @ V @ w)
    return V, s


def test_matches_brute_force_n_by_n():
    rng = np.random.default_rng(3)
    N, K = 50, 9
    X = rng.standard_normal((N, K))
    A = rng.normal(0, 0.01, (K, K))
    F = A @ A.T + np.eye(K) * 1e-5
    d = rng.uniform(1e-4, 1e-3, N)
    w = rng.dirichlet(np.ones(N))
    b = rng.dirichlet(np.ones(N))
    dec = decompose(w, X, F, d, b)
    V, s = _brute(w, X, F, d)
    p = dec.portfolio
    np.testing.assert_allclose(p.risk, s, rtol=1e-12)
    np.testing.assert_allclose(p.factor_risk**2, w @ X @ F @ X.T @ w * 252, rtol=1e-12)
    np.testing.assert_allclose(p.specific_risk**2, (w**2 * d).sum() * 252, rtol=1e-12)
    np.testing.assert_allclose(p.asset_marginal, V @ w / s, rtol=1e-10)
    a = w - b
    _, te = _brute(a, X, F, d)
    np.testing.assert_allclose(dec.active.risk, te, rtol=1e-12)
    np.testing.assert_allclose(dec.active.asset_marginal, V @ a / te, rtol=1e-9, atol=1e-14)
    # per-factor marginal: d sigma / d x_k = (F x)_k / sigma (annualised)
    x = X.T @ a
    np.testing.assert_allclose(dec.active.factor_marginal, 252 * F @ x / te, rtol=1e-10)
    # beta of w on b
    np.testing.assert_allclose(dec.beta, (w @ V @ b) / (b @ V @ b), rtol=1e-12)
    # percent contributions sum to 100 % (factors + specific, and over assets)
    for br in (dec.portfolio, dec.active, dec.benchmark):
        np.testing.assert_allclose(br.factor_pct.sum() + br.specific_pct, 1.0, rtol=1e-12)
        np.testing.assert_allclose(br.asset_pct.sum(), 1.0, rtol=1e-12)
        np.testing.assert_allclose(br.asset_contrib.sum(), br.risk, rtol=1e-12)


def test_snapshot_groups_and_disk_reader_agree(tmp_path):
    m = toy_model()
    m.save(tmp_path / "risk")
    date = m.dates[17]  # forecast of cov date 10, exposures of row 17
    s1 = snapshot(m, date)
    s2 = read_snapshot(tmp_path / "risk", date)
    assert s1.cov_date == m.dates[10] and s1.exposure_date == date
    for a in ("X", "F", "d", "market", "filled"):
        np.testing.assert_array_equal(getattr(s1, a), getattr(s2, a))
    assert s1.factor_names == s2.factor_names
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(len(m.assets)))
    dec = decompose_snapshot(s2, w, s2.market)
    g = group_table(dec)
    np.testing.assert_allclose(
        sum(g[k]["pct"] for k in ("country", "industry", "style", "specific")), 1.0
    )
    np.testing.assert_allclose(g["total"]["contrib"], dec.active.risk)
    # without a benchmark beta is on the model's cap-weighted market, which has beta 1
    assert decompose_snapshot(s2, s2.market).beta == pytest.approx(1.0)


def test_snapshot_fills_missing_and_refuses_unknown(tmp_path):
    m = toy_model()
    m.styles[15, 3, 0] = np.nan
    m.specific_var[0, 5] = np.nan
    s = snapshot(m, m.dates[15], m.assets[:10])
    assert s.filled[[3, 5]].all() and s.filled.sum() == 2
    assert np.isfinite(s.X).all() and (s.d > 0).all()
    with pytest.raises(DataError, match="not in the risk model: XX"):
        snapshot(m, m.dates[15], np.array(["XX", m.assets[0]]))
    with pytest.raises(DataError, match="no forecast on 2020-01-05"):
        snapshot(m, m.dates[4])
    with pytest.raises(DataError, match=r"no meta\.json"):
        read_snapshot(tmp_path, m.dates[15])
