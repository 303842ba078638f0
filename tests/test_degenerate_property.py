"""Property: on small random panels with NaN holes and degenerate cross-sections (empty, one
stock, all-NaN rows, constant rows, +-1e30 scores), every stage either returns output without
inf (IC within [-1, 1] or NaN, groups within -1..G-1) or raises one of our errors -- never a
numpy/Python exception. Few examples, no deadline: a few seconds in all."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepalpha.data.predictions import dense_to_long, long_to_dense
from deepalpha.data.validate import check_damage
from deepalpha.errors import DeepAlphaError
from deepalpha.evaluate.groups import group_returns, quantile_groups
from deepalpha.evaluate.ic import ic, rank_ic
from deepalpha.evaluate.summary import evaluate_signal
from deepalpha.guards import finite_scores
from deepalpha.signal.combine import combine

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
KINDS = ("normal", "constant", "extreme", "one_stock", "nan_rows", "ties")


@st.composite
def panels(draw):
    """``(signal, label, returns, mask)`` float64[T, N] / bool[T, N] with planted degeneracy."""
    T = draw(st.integers(1, 8))
    N = draw(st.integers(1, 8))
    kind = draw(st.sampled_from(KINDS))
    holes = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    sig = rng.standard_normal((T, N))
    lab = 0.05 * rng.standard_normal((T, N))
    if kind == "constant":
        sig[:] = 0.5
    elif kind == "extreme":
        sig = np.where(rng.random((T, N)) < 0.5, 1e30, -1e30)
    elif kind == "one_stock":
        sig[:, 1:] = np.nan
    elif kind == "nan_rows":
        sig[rng.random(T) < 0.5] = np.nan
    elif kind == "ties":
        sig = np.round(sig)
    sig[rng.random((T, N)) < holes] = np.nan
    lab[rng.random((T, N)) < holes / 2] = np.nan
    mask = rng.random((T, N)) > holes / 3
    return sig, lab, lab.copy(), mask


def _no_inf(*xs):
    for x in xs:
        assert not np.isinf(np.asarray(x, dtype=np.float64)).any()


@SETTINGS
@given(panels())
def test_ic_and_groups_are_finite_or_nan(p):
    sig, lab, ret, mask = p
    for f in (ic, rank_ic):
        r = f(sig, lab, mask)
        _no_inf(r)
        assert (np.abs(r[np.isfinite(r)]) <= 1.0).all()
    g = quantile_groups(sig, mask, 5)
    assert ((g >= -1) & (g < 5)).all()
    _no_inf(group_returns(g, ret, 1, 5))


@SETTINGS
@given(panels())
def test_evaluate_signal_is_finite_or_our_error(p):
    sig, lab, ret, mask = p
    try:
        res = evaluate_signal(sig, lab, {"u": mask}, ret, horizon=1, periods_per_year=12,
                              n_groups=3, decay_horizons=(1,))  # fmt: skip
    except DeepAlphaError:
        return
    r = res["u"]
    _no_inf(r["ic_series"], r["rank_ic_series"], r["groups"]["returns"])
    for k in ("mean", "icir", "t_nw"):
        assert not np.isinf(r["rank_ic"][k])


@SETTINGS
@given(panels(), panels())
def test_combine_is_finite_or_our_error(p, q):
    a, _, _, mask = p
    b = q[0]
    if b.shape != a.shape:
        b = np.resize(b, a.shape)
    try:
        out = combine([a, b], "equal", mask=mask)
    except DeepAlphaError:
        return
    _no_inf(out)


@SETTINGS
@given(panels())
def test_long_dense_round_trip_and_finite_scores(p):
    sig = p[0]
    T, N = sig.shape
    dates = np.datetime64("2021-01-04") + np.arange(T)
    assets = np.array([f"SH6{i:05d}" for i in range(N)])
    df = dense_to_long(sig, dates, assets)
    back, _, _ = long_to_dense(df, dates, assets)
    np.testing.assert_array_equal(np.isfinite(back), np.isfinite(sig))
    bad = df.with_columns(pl.lit(np.inf).alias("score"))
    try:
        finite_scores(bad, drop=True)
    except DeepAlphaError:
        return
    raise AssertionError("a file of only inf scores must be refused")  # pragma: no cover


@SETTINGS
@given(panels())
def test_damage_checks_never_crash(p):
    sig = p[0]
    T, N = sig.shape
    close = np.abs(sig) + 1.0
    vol = np.where(np.isnan(sig), np.nan, np.round(np.abs(sig)))
    arrays = {"close": close.astype(np.float32), "volume": vol.astype(np.float32),
              "factor": np.ones((T, N), np.float32)}  # fmt: skip
    listed = np.isfinite(close)
    dates = np.datetime64("2021-01-04") + np.arange(T)
    assets = np.array([f"SZ30{i:04d}" for i in range(N)])
    for w in check_damage(arrays, listed, dates, assets, "root"):
        assert w.total > 0 and sum(w.counts.values()) == w.total
        assert str(w)


@pytest.mark.parametrize("fill", [np.nan, 0.0, 1e30])
def test_whole_panel_degenerate(fill):
    sig = np.full((5, 4), fill)
    lab = np.zeros((5, 4))
    try:
        evaluate_signal(sig, lab, None, lab, horizon=1, periods_per_year=12, n_groups=2,
                        decay_horizons=())  # fmt: skip
    except DeepAlphaError as e:
        assert "universe" in str(e) or "no finite value" in str(e)


@st.composite
def rebalances(draw):
    """One small optimiser problem: N candidates (1..6), K = 1 + P + S factors, degenerate
    alphas (all NaN, constant, +-1e30), members possibly one stock."""
    n = draw(st.integers(1, 6))
    P, S = draw(st.integers(1, 2)), draw(st.integers(0, 2))
    kind = draw(st.sampled_from(("normal", "nan", "constant", "extreme")))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    alpha = {
        "normal": rng.standard_normal(n),
        "nan": np.full(n, np.nan),
        "constant": np.full(n, 3.0),
        "extreme": np.where(rng.random(n) < 0.5, 1e30, -1e30),
    }[kind]
    member = rng.random(n) < 0.7
    member[0] = True
    cap = rng.uniform(1, 10, n) * member
    wb = cap / cap.sum()
    ind = rng.integers(0, P, n)
    X = np.zeros((n, 1 + P + S))
    X[:, 0] = 1
    X[np.arange(n), 1 + ind] = 1
    X[:, 1 + P :] = rng.standard_normal((n, S))
    A = rng.standard_normal((1 + P + S, 1 + P + S)) * 0.01
    F = A @ A.T + np.eye(1 + P + S) * 1e-5
    delta = rng.uniform(1e-4, 4e-4, n)
    tradable = rng.random(n) < 0.9
    kinds = np.r_[0, np.ones(P), np.full(S, 2)].astype(np.int8)
    return alpha, wb, X, F, delta, tradable, member, kinds


@settings(max_examples=15, deadline=None, derandomize=True)
@given(rebalances())
def test_optimiser_weights_are_finite_or_our_error(p):
    from deepalpha.portfolio.optimizer import optimize

    alpha, wb, X, F, delta, tradable, member, kinds = p
    try:
        res = optimize(alpha, wb, np.zeros_like(wb), X, F, delta, tradable, member,
                       factor_kind=kinds)  # fmt: skip
    except DeepAlphaError:
        return
    w = res.weights
    assert np.isfinite(w).all() and (w >= -1e-6).all() and w.sum() <= 1 + 1e-6
    assert np.isfinite(res.ex_ante_te)
