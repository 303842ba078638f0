"""TE-constrained optimiser: every constraint holds at the solution, relaxation is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.errors import DataError
from deepalpha.portfolio.optimizer import (
    OptimizerConfig,
    check_constraints,
    ex_ante_te,
    infer_factor_kind,
    optimize,
)

TOL = 1e-6


def problem(n=300, n_index=200, P=8, S=4, seed=0, untradable=0.05):
    rng = np.random.default_rng(seed)
    ind = rng.integers(0, P, n)
    K = 1 + P + S
    X = np.zeros((n, K))
    X[:, 0] = 1
    X[np.arange(n), 1 + ind] = 1
    X[:, 1 + P :] = rng.standard_normal((n, S))
    A = rng.standard_normal((K, K)) * 0.004
    F = A @ A.T + np.eye(K) * 1e-5  # daily units
    delta = rng.uniform(0.01, 0.03, n) ** 2
    cap = np.exp(rng.normal(0, 1, n))
    in_index = np.zeros(n, bool)
    in_index[:n_index] = True
    wb = np.where(in_index, cap, 0.0)
    wb /= wb.sum()
    alpha = rng.standard_normal(n)
    tradable = rng.uniform(size=n) > untradable
    return alpha, wb, X, F, delta, tradable, in_index


def full_covariance_te(w, wb, X, F, delta, H=252):
    """Slow reference: the N x N covariance."""
    a = w - wb
    Sigma = X @ F @ X.T + np.diag(delta)
    return float(np.sqrt(a @ Sigma @ a * H))


def assert_feasible(res, w_prev, wb, X, F, delta, tradable, in_index, cfg):
    viol = check_constraints(
        res.weights,
        w_bench=wb,
        w_prev=w_prev,
        X=X,
        F=F,
        delta=delta,
        tradable=tradable,
        in_index=in_index,
        factor_kind=infer_factor_kind(X),
        config=cfg,
        te_limit=res.te_limit,
        turnover_limit=res.turnover_limit,
        bound_scale=res.bound_scale,
    )
    bad = {k: v for k, v in viol.items() if v > TOL}
    assert not bad, bad


def test_first_build_all_constraints_hold():
    alpha, wb, X, F, delta, _, in_index = problem()
    cfg = OptimizerConfig()
    n = alpha.size
    tradable = np.ones(n, bool)
    res = optimize(alpha, wb, np.zeros(n), X, F, delta, tradable, in_index, cfg)
    assert res.status == "optimal" and res.relaxed == []
    assert_feasible(res, np.zeros(n), wb, X, F, delta, tradable, in_index, cfg)
    assert res.ex_ante_te <= cfg.te + TOL
    assert res.ex_ante_te == pytest.approx(full_covariance_te(res.weights, wb, X, F, delta))
    # the alpha tilt is real: the portfolio beats the benchmark on alpha
    assert alpha @ res.weights > alpha @ wb + 0.1


def test_rebalance_with_untradable_and_turnover():
    alpha, wb, X, F, delta, tradable, in_index = problem(seed=1)
    cfg = OptimizerConfig(turnover=0.2)
    n = alpha.size
    first = optimize(alpha, wb, np.zeros(n), X, F, delta, np.ones(n, bool), in_index, cfg)
    w_prev = first.weights
    alpha2 = np.random.default_rng(5).standard_normal(n)
    res = optimize(alpha2, wb, w_prev, X, F, delta, tradable, in_index, cfg)
    assert res.status == "optimal"
    assert_feasible(res, w_prev, wb, X, F, delta, tradable, in_index, cfg)
    np.testing.assert_allclose(res.weights[~tradable], w_prev[~tradable], atol=TOL)
    assert res.turnover <= 0.2 + TOL
    assert res.turnover > 0.1  # the limit binds for an unrelated new alpha
    assert res.ex_ante_te <= cfg.te + TOL


def test_every_constraint_binds_somewhere():
    """check_constraints is not vacuous: perturbing the solution breaks constraints."""
    alpha, wb, X, F, delta, _tradable, in_index = problem(seed=2)
    cfg = OptimizerConfig()
    n = alpha.size
    res = optimize(alpha, wb, np.zeros(n), X, F, delta, np.ones(n, bool), in_index, cfg)
    bad = res.weights.copy()
    bad[np.argmax(alpha)] += 0.05
    bad /= bad.sum()
    viol = check_constraints(
        bad,
        w_bench=wb,
        w_prev=np.zeros(n),
        X=X,
        F=F,
        delta=delta,
        tradable=np.ones(n, bool),
        in_index=in_index,
        factor_kind=infer_factor_kind(X),
        config=cfg,
    )
    assert viol["stock_bound"] > 0.01


def test_infeasible_turnover_is_relaxed_and_recorded():
    alpha, wb, X, F, delta, _, in_index = problem(seed=3)
    n = alpha.size
    tradable = np.ones(n, bool)
    # previous portfolio: equal weight on the 40 lowest-alpha non-index names -> far from feasible
    w_prev = np.zeros(n)
    out = np.nonzero(~in_index)[0]
    w_prev[out[np.argsort(alpha[out])[:40]]] = 1 / 40
    cfg = OptimizerConfig(turnover=0.05)
    res = optimize(alpha, wb, w_prev, X, F, delta, tradable, in_index, cfg)
    assert res.status == "relaxed"
    # only turnover is relaxed (it comes first), to the first level that is feasible
    assert len(res.relaxed) == 1 and res.relaxed[0].startswith("turnover")
    assert res.attempts >= 2
    assert res.turnover_limit > 0.05
    assert_feasible(res, w_prev, wb, X, F, delta, tradable, in_index, cfg)


def test_infeasible_te_is_relaxed_after_turnover():
    alpha, wb, X, F, delta, _, in_index = problem(seed=4)
    n = alpha.size
    tradable = np.ones(n, bool)
    # a big untradable active position fixes the TE floor above the limit
    # a frozen active position in a volatile member puts the TE floor above the 1 % limit
    i = int(np.argmax(delta * in_index))
    w_prev = wb * 0.96
    w_prev[i] += 0.04
    tradable[i] = False
    cfg = OptimizerConfig(
        te=0.01, stock_active_bound=None, turnover=0.3, industry_bound=None, style_bound=None
    )
    res = optimize(alpha, wb, w_prev, X, F, delta, tradable, in_index, cfg)
    assert res.status == "relaxed"
    # turnover was relaxed first (to no avail), then TE; the turnover limit was restored after
    assert len(res.relaxed) == 1 and res.relaxed[0].startswith("te")
    assert res.turnover_limit == 0.3 and res.turnover <= 0.3 + TOL
    assert res.attempts >= 1 + 3 + 2  # base, turnover x2/x4/off, TE steps, tighten-back
    assert_feasible(res, w_prev, wb, X, F, delta, tradable, in_index, cfg)
    assert res.ex_ante_te <= res.te_limit + TOL
    assert res.weights[i] == pytest.approx(w_prev[i], abs=TOL)


def test_te_binds_and_tighter_te_lowers_alpha():
    alpha, wb, X, F, delta, _, in_index = problem(seed=6)
    n = alpha.size
    tr = np.ones(n, bool)
    cfg_lo = OptimizerConfig(te=0.02, stock_active_bound=0.05)
    cfg_hi = OptimizerConfig(te=0.06, stock_active_bound=0.05)
    lo = optimize(alpha, wb, np.zeros(n), X, F, delta, tr, in_index, cfg_lo)
    hi = optimize(alpha, wb, np.zeros(n), X, F, delta, tr, in_index, cfg_hi)
    assert lo.ex_ante_te == pytest.approx(0.02, abs=1e-5)
    assert alpha @ hi.weights > alpha @ lo.weights


def test_ex_ante_te_matches_full_covariance():
    _alpha, wb, X, F, delta, _, _ = problem(n=50, seed=7)
    w = np.random.default_rng(0).dirichlet(np.ones(50))
    assert ex_ante_te(w, wb, X, F, delta) == pytest.approx(full_covariance_te(w, wb, X, F, delta))


def test_bad_inputs_raise():
    alpha, wb, X, F, delta, tradable, in_index = problem(n=40)
    with pytest.raises(DataError, match="X"):
        optimize(alpha, wb, np.zeros(40), X[:-1], F, delta, tradable, in_index)
    d = delta.copy()
    d[0] = np.nan
    with pytest.raises(DataError, match="delta"):
        optimize(alpha, wb, np.zeros(40), X, F, d, tradable, in_index)


def test_index_share_relaxed_last_when_untradable_outsiders_block_it():
    alpha, wb, X, F, delta, _, in_index = problem(seed=8)
    n = alpha.size
    tradable = np.ones(n, bool)
    out = np.nonzero(~in_index)[0][:25]
    w_prev = 0.7 * wb
    w_prev[out] += 0.3 / 25  # 30 % in non-members that cannot be traded -> share <= 0.7
    tradable[out] = False
    cfg = OptimizerConfig(stock_active_bound=None)
    res = optimize(alpha, wb, w_prev, X, F, delta, tradable, in_index, cfg)
    assert res.status == "relaxed"
    assert res.relaxed == ["index share off"]  # TE, bounds and turnover restored afterwards
    assert res.te_limit == cfg.te and res.ex_ante_te <= cfg.te + TOL
    np.testing.assert_allclose(res.weights[out], w_prev[out], atol=TOL)
    assert res.weights.sum() == pytest.approx(1.0, abs=TOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_direct_clarabel_matches_cvxpy_reference(seed):
    alpha, wb, X, F, delta, tradable, in_index = problem(seed=seed)
    n = alpha.size
    cfg = OptimizerConfig(turnover=0.15)
    ref_cfg = cfg.model_copy(update={"backend": "cvxpy"})
    w0 = optimize(alpha, wb, np.zeros(n), X, F, delta, np.ones(n, bool), in_index, ref_cfg).weights
    alpha2 = np.random.default_rng(seed + 10).standard_normal(n)
    a = optimize(alpha2, wb, w0, X, F, delta, tradable, in_index, cfg)
    b = optimize(alpha2, wb, w0, X, F, delta, tradable, in_index, ref_cfg)
    assert a.status == b.status == "optimal"
    assert alpha2 @ a.weights == pytest.approx(alpha2 @ b.weights, rel=1e-6)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-4)
    assert_feasible(a, w0, wb, X, F, delta, tradable, in_index, cfg)


def test_cvxpy_backend_relaxes_too():
    alpha, wb, X, F, delta, _, in_index = problem(seed=3)
    n = alpha.size
    w_prev = np.zeros(n)
    out = np.nonzero(~in_index)[0]
    w_prev[out[np.argsort(alpha[out])[:40]]] = 1 / 40
    cfg = OptimizerConfig(turnover=0.05, backend="cvxpy")
    res = optimize(alpha, wb, w_prev, X, F, delta, np.ones(n, bool), in_index, cfg)
    direct = optimize(
        alpha, wb, w_prev, X, F, delta, np.ones(n, bool), in_index,
        cfg.model_copy(update={"backend": "clarabel"}),
    )  # fmt: skip
    assert res.relaxed == direct.relaxed and res.status == "relaxed"
