"""Alpha-alignment factor (issue 17 item 11): the signal's residual priced as an extra factor.

Hand computations of the residual exposure, the factor return and the EWMA; no look-ahead (the
future of the scores and specific returns cannot move a forecast); on a synthetic market whose
stocks share a hidden factor along the signal's residual, the AAF brings the realised / ex-ante
TE ratio back towards 1 where the plain factor model under-forecasts."""

from __future__ import annotations

import numpy as np
import pytest
from test_portfolio_enhance import CFG, synthetic_market

from deepalpha.errors import ConfigError
from deepalpha.portfolio.alpha_alignment import (
    AlignmentRisk,
    augment,
    factor_return,
    residual_exposure,
)
from deepalpha.portfolio.enhance import design, run_enhancement
from deepalpha.portfolio.optimizer import ex_ante_te


def test_residual_exposure_is_orthogonal_and_unit():
    rng = np.random.default_rng(0)
    n, K = 300, 6
    X = np.column_stack([np.ones(n), rng.standard_normal((n, K - 1))])
    s = X[:, 1] * 2 + rng.standard_normal(n)
    s[:5] = np.nan
    w = rng.uniform(0.5, 2, n)
    g = residual_exposure(s, X, w)
    np.testing.assert_allclose(X.T @ (w * g), 0, atol=1e-9)
    assert np.sqrt((w * g * g).sum() / w.sum()) == pytest.approx(1.0)
    # the hand version: z-score (NaN -> 0), weighted least squares, weighted std
    z = np.zeros(n)
    f = np.isfinite(s)
    z[f] = (s[f] - s[f].mean()) / s[f].std()
    W = np.diag(w)
    beta = np.linalg.solve(X.T @ W @ X, X.T @ W @ z)
    e = z - X @ beta
    np.testing.assert_allclose(g, e / np.sqrt(e @ W @ e / w.sum()), atol=1e-10)
    # scores the factors span leave nothing
    assert not residual_exposure(X[:, 2] * 3 - 1, X).any()


def test_factor_return_recovers_a_planted_slope():
    rng = np.random.default_rng(1)
    n, K = 2000, 5
    X = np.column_stack([np.ones(n), rng.standard_normal((n, K - 1))])
    s = rng.standard_normal(n) + X[:, 1]
    w = rng.uniform(0.5, 2, n)
    g = residual_exposure(s, X, w)
    u = 0.003 * g + 0.0001 * rng.standard_normal(n)
    assert factor_return(s, X, u, w) == pytest.approx(0.003, rel=0.02)
    u[:10] = np.nan  # unusable stocks are dropped, not propagated
    assert np.isfinite(factor_return(s, X, u, w))
    assert np.isnan(factor_return(s[:8], X[:8], u[:8], w[:8]))  # too few stocks


def test_augment_adds_the_aaf_term_to_the_ex_ante_te():
    rng = np.random.default_rng(2)
    n, K = 50, 4
    X = rng.standard_normal((n, K))
    A = rng.standard_normal((K, K)) * 0.01
    F = A @ A.T
    d = rng.uniform(1e-4, 4e-4, n)
    g = rng.standard_normal(n)
    a = rng.standard_normal(n) * 0.01
    X2, F2, kind = augment(X, F, np.zeros(K, np.int8), g, 2e-5)
    assert X2.shape == (n, K + 1) and F2.shape == (K + 1, K + 1) and kind[-1] == 0
    te0 = ex_ante_te(a, 0 * a, X, F, d)
    te1 = ex_ante_te(a, 0 * a, X2, F2, d)
    assert te1**2 == pytest.approx(te0**2 + 252 * 2e-5 * (g @ a) ** 2)


class PanelSpecific:
    """Exposures and specific returns on a panel, as `ModelRisk` provides them."""

    def __init__(self, X, u, w):
        self.X, self.u, self.w = X, u, w

    def exposures(self, t, idx):
        return self.X[idx]

    def specific(self, t, idx):
        return self.u[t, idx], self.w[t, idx]


def test_variance_is_the_ewma_of_past_factor_returns_only():
    rng = np.random.default_rng(3)
    T, N, K = 120, 200, 4
    X = np.column_stack([np.ones(N), rng.standard_normal((N, K - 1))])
    scores = rng.standard_normal((T, N))
    scores[:10] = np.nan  # no signal yet
    u = rng.standard_normal((T, N)) * 0.02
    w = np.ones((T, N))
    src = PanelSpecific(X, u, w)
    aaf = AlignmentRisk(scores, src.exposures, src.specific, halflife=20, min_obs=15)
    s = 90
    f = np.array([factor_return(scores[t], X, u[t], w[t]) for t in range(s)])
    lo = s - 80
    age = s - 1 - np.arange(lo, s)
    ok = np.isfinite(f[lo:])
    wt = 0.5 ** (age[ok] / 20)
    want = (wt * f[lo:][ok] ** 2).sum() / wt.sum()
    assert aaf.variance(s) == pytest.approx(want, rel=1e-12)
    assert np.isnan(aaf.variance(20))  # 10 days of returns < min_obs
    # perturb the future (scores at s and later, specific returns of rows s and later)
    sc2, u2 = scores.copy(), u.copy()
    sc2[s:] = rng.standard_normal((T - s, N))
    u2[s:] *= 50
    src2 = PanelSpecific(X, u2, w)
    aaf2 = AlignmentRisk(sc2, src2.exposures, src2.specific, halflife=20, min_obs=15)
    assert aaf2.variance(s) == aaf.variance(s)
    assert aaf2.variance(s + 1) != aaf.variance(s + 1)  # row s is known at s + 1


class RiskWithSpecific:
    """The synthetic market's `ArrayRisk` plus exposures and specific returns (OLS residuals of
    each day's returns on the exposures, row t = t -> t+1)."""

    def __init__(self, arr, X, u):
        self.arr, self.X, self.u = arr, X, u
        self.periods_per_year = 252.0

    def first_date(self):
        return self.arr.first_date()

    def inputs(self, t, idx):
        return self.arr.inputs(t, idx)

    def exposures(self, t, idx):
        return self.X[idx]

    def specific(self, t, idx):
        return self.u[t, idx], np.ones(idx.size)


def hidden_market(vol: float = 0.006):
    """The enhancement test market plus a hidden factor the risk model lacks: every day's
    returns load on the (z-scored) signal of the day before with a random sign (daily std
    ``vol``), so the stocks the signal picks co-move beyond the model's factors."""
    m = synthetic_market(seed=4)
    close = m["close"]
    T, N = close.shape
    r = np.zeros((T, N))
    r[1:] = close[1:] / close[:-1] - 1
    a = m["truth"]
    z = (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)
    h = np.random.default_rng(5).standard_normal(T) * vol
    r[1:] += h[1:, None] * z[:-1]
    shares = m["mktcap"][0] / close[0]
    m["close"] = 10 * np.cumprod(1 + r, axis=0)
    m["mktcap"] = m["close"] * shares
    arr = m["risk"]
    X = design(arr.styles[0], arr.industry_ids, arr.n_industries)
    u = np.full((T, N), np.nan)
    beta = np.linalg.lstsq(X, r[1:].T, rcond=None)[0]
    u[:-1] = (r[1:].T - X @ beta).T
    return m, RiskWithSpecific(arr, X, u)


@pytest.fixture(scope="module")
def hidden_factor_market():
    return hidden_market()


def _run(m, risk, cfg):
    kw = {
        k: m[k]
        for k in ("dates", "close", "mktcap", "members", "suspended", "limit_up", "limit_down")
    }
    return run_enhancement(m["truth"], risk=risk, config=cfg, **kw)


def test_aaf_brings_the_te_ratio_back_towards_one(hidden_factor_market):
    m, risk = hidden_factor_market
    raw = CFG.model_copy(update={"risk_scaling": False})  # the AAF alone
    plain = _run(m, risk, raw)
    aligned = _run(m, risk, raw.model_copy(update={"alpha_alignment": True, "aaf_halflife": 42}))
    r0, r1 = plain.metrics["te_ratio"], aligned.metrics["te_ratio"]
    assert r0 > 1.3  # the hidden factor: the plain model under-forecasts
    assert abs(np.log(r1)) < 0.5 * abs(np.log(r0)), (r0, r1)
    rec = aligned.records
    assert "aaf_vol" in rec.columns and "aaf_active_exposure" in rec.columns
    vol = rec["aaf_vol"].to_numpy()
    assert np.isfinite(vol[-10:]).all() and (vol[-10:] > 0).all()
    # each rebalance records its active exposure to the AAF
    late = rec["aaf_active_exposure"].to_numpy()[-20:]
    assert np.isfinite(late).all()


def test_aaf_needs_specific_returns():
    m = synthetic_market(T=120, N=60, n_index=30)
    with pytest.raises(ConfigError, match="alpha_alignment"):
        _run(m, m["risk"], CFG.model_copy(update={"alpha_alignment": True}))
