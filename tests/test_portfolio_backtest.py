"""Backtest engine: accounting identity, cost schedule by hand, blocked orders, timing."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.errors import DataError
from deepalpha.portfolio.backtest import run_backtest, simple_returns
from deepalpha.portfolio.benchmark import cap_weights, proxy_returns
from deepalpha.portfolio.costs import CostConfig, cost_rates


def bdays(start: str, n: int) -> np.ndarray:
    d = np.arange(np.datetime64(start), np.datetime64(start) + 3 * n)
    d = d[np.is_busday(d)][:n]
    return d.astype("datetime64[D]")


def market(T=120, N=30, seed=0):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.02, (T, N))
    close = 10 * np.cumprod(1 + r, axis=0)
    up = rng.uniform(size=(T, N)) < 0.03
    dn = rng.uniform(size=(T, N)) < 0.03
    susp = rng.uniform(size=(T, N)) < 0.02
    return close, up, dn, susp, bdays("2023-06-01", T)


def test_accounting_identity_day_by_day():
    close, up, dn, susp, dates = market()
    T, N = close.shape
    rng = np.random.default_rng(1)
    sig = np.arange(3, T - 1, 5)
    targets = rng.dirichlet(np.ones(N), size=sig.size) * 0.98
    res = run_backtest(
        targets,
        sig,
        close,
        dates,
        limit_up=up,
        limit_down=dn,
        suspended=susp,
        costs=CostConfig(slippage_bps=10),
    )
    r = simple_returns(close)
    h_prev = res.weights[:-1].astype(np.float64) * res.nav[:-1, None]
    expected = (h_prev * r[1:]).sum(axis=1) - res.costs[1:]
    # weights are stored float32: 1e-7 relative on positions of NAV ~1
    np.testing.assert_allclose(np.diff(res.nav), expected, atol=2e-7)
    assert res.costs.sum() > 0 and res.blocked.sum() > 0
    # holdings + cash = NAV
    np.testing.assert_allclose(res.weights.sum(1) + res.cash, 1.0, atol=1e-6)
    assert (res.cash > -1e-12).all()


def test_costs_by_hand_across_stamp_duty_switch():
    # Thu 2023-08-24 .. Tue 2023-08-29; the stamp duty halves on Mon 2023-08-28
    dates = np.array(["2023-08-24", "2023-08-25", "2023-08-28", "2023-08-29"], "datetime64[D]")
    close = np.array([[10.0, 20.0], [10.0, 20.0], [10.0, 20.0], [10.0, 20.0]])
    cfg = CostConfig(slippage_bps=5)
    # signal 0 -> buy 50/50 on 08-25; signal 1 -> all in stock 0 on 08-28 (sell stock 1)
    targets = np.array([[0.5, 0.5], [1.0, 0.0]])
    res = run_backtest(targets, np.array([0, 1]), close, dates, costs=cfg)
    cb = 0.00025 + 0.0005
    # day 1: cash 1 buys B with B (1 + cb) = 1
    B1 = 1 / (1 + cb)
    assert res.costs[1] == pytest.approx(cb * B1, rel=1e-12)
    V1 = B1
    assert res.nav[1] == pytest.approx(V1, rel=1e-12)
    # day 2: sell stock 1 (value B1/2) at 0.025% + 5bp + 0.05% stamp (new rate), buy stock 0
    cs_new = 0.00025 + 0.0005 + 0.0005
    S = B1 / 2
    B2 = S * (1 - cs_new) / (1 + cb)  # buys scaled to the cash the sale raises
    assert res.costs[2] == pytest.approx(cs_new * S + cb * B2, rel=1e-12)
    assert res.nav[2] == pytest.approx(V1 - cs_new * S - cb * B2, rel=1e-12)
    assert res.costs[3] == 0.0
    # the same trades one trading day earlier: the sell on Fri 08-25 pays the old 0.1 % stamp
    d_old = np.array(["2023-08-23", "2023-08-24", "2023-08-25", "2023-08-28"], "datetime64[D]")
    old = run_backtest(targets, np.array([0, 1]), close, d_old, costs=cfg)
    cs_old = 0.00025 + 0.0005 + 0.001
    B2_old = S * (1 - cs_old) / (1 + cb)
    assert old.costs[2] == pytest.approx(cs_old * S + cb * B2_old, rel=1e-12)
    assert old.costs[2] - res.costs[2] == pytest.approx(0.0005 * S / (1 + cb), rel=1e-9)
    b, s = cost_rates(dates, cfg)
    assert list(s - b) == pytest.approx([0.001, 0.001, 0.0005, 0.0005])


def test_limit_up_not_bought_limit_down_and_suspended_not_sold():
    T, N = 6, 4
    dates = bdays("2020-01-06", T)
    close = np.full((T, N), 10.0)
    up = np.zeros((T, N), bool)
    dn = np.zeros((T, N), bool)
    susp = np.zeros((T, N), bool)
    targets = np.array([[0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.5, 0.5]])
    up[1, 0] = True  # stock 0 limit up on the first execution day: the buy is dropped
    dn[3, 1] = True  # stock 1 limit down on the second execution day: the sell is dropped
    susp[3, 2] = True  # stock 2 suspended on the second execution day: no trade at all
    res = run_backtest(
        targets, np.array([0, 2]), close, dates, limit_up=up, limit_down=dn, suspended=susp
    )
    assert res.weights[1, 0] == 0.0  # not bought
    assert res.trades[0, 0] == 0.0
    assert res.cash[1] == pytest.approx(0.25, abs=1e-3)  # the money stays in cash
    assert res.blocked[0] == 1
    h = res.weights.astype(np.float64) * res.nav[:, None]  # holdings (prices are flat)
    # second rebalance: stock 1 kept (limit down), stock 2 untouched (suspended), stock 3 bought
    assert res.trades[1, 1] == 0.0 and res.trades[1, 2] == 0.0
    np.testing.assert_allclose(h[3, 1:3], h[2, 1:3], rtol=1e-6)
    assert h[3, 0] == 0.0
    assert res.trades[1, 3] > 0
    assert res.blocked[1] == 2


def test_policy_sees_drifted_weights_and_trades_next_day():
    close, _, _, _, dates = market(T=30, N=5, seed=3)
    seen = {}

    def policy(r, s, w_now):
        seen[r] = (s, w_now.copy())
        return np.full(5, 0.2)

    sig = np.array([2, 10, 20])
    res = run_backtest(policy, sig, close, dates)
    assert [seen[r][0] for r in range(3)] == [2, 10, 20]
    np.testing.assert_array_equal(seen[0][1], 0.0)  # all cash before the first trade
    np.testing.assert_allclose(seen[1][1], res.weights[10], atol=1e-7)
    assert list(res.exec_idx) == [3, 11, 21]
    # nothing is traded on signal days themselves
    assert res.costs[2] == 0 and res.costs[3] > 0


def test_vwap_execution_equals_close_execution_when_prices_agree():
    close, up, dn, susp, dates = market(T=40, N=8, seed=4)
    rng = np.random.default_rng(0)
    sig = np.arange(2, 38, 5)
    tg = rng.dirichlet(np.ones(8), size=sig.size)
    a = run_backtest(tg, sig, close, dates, limit_up=up, limit_down=dn, suspended=susp)
    b = run_backtest(
        tg, sig, close, dates, limit_up=up, limit_down=dn, suspended=susp, exec_price=close
    )
    np.testing.assert_allclose(a.nav, b.nav, rtol=1e-12)
    # a different execution price changes the path but keeps holdings + cash = NAV
    vw = close * (1 + rng.normal(0, 0.005, close.shape))
    c = run_backtest(tg, sig, close, dates, exec_price=vw)
    assert not np.allclose(c.nav, a.nav)
    np.testing.assert_allclose(c.weights.sum(1) + c.cash, 1.0, atol=1e-6)


def test_benchmarks_index_and_proxy():
    close, _, _, _, dates = market(T=50, N=6, seed=5)
    cap = close * np.arange(1, 7)
    members = np.ones_like(close, bool)
    members[:, 5] = False
    bw = cap_weights(cap, members)
    np.testing.assert_allclose(bw.sum(1), 1.0)
    assert (bw[:, 5] == 0).all()
    idx = 1000 * np.cumprod(1 + np.random.default_rng(0).normal(0, 0.01, 50))
    sig = np.array([5, 25])
    tg = np.array([[0.5, 0.5, 0, 0, 0, 0]] * 2)
    res = run_backtest(tg, sig, close, dates, index_close=idx, bench_weights=bw, benchmark="index")
    np.testing.assert_allclose(res.bench_nav[5:], idx[5:] / idx[5])
    assert res.info["benchmark_used"] == "index" and "benchmark_fallback" not in res.info
    # the default total-return benchmark needs dv_ratio: without it, the (total-return) proxy
    dflt = run_backtest(tg, sig, close, dates, index_close=idx, bench_weights=bw)
    assert dflt.info["benchmark_used"] == "proxy" and dflt.tr_nav is None
    assert "dv_ratio" in dflt.info["benchmark_fallback"]
    np.testing.assert_allclose(dflt.bench_nav, dflt.proxy_nav)
    np.testing.assert_allclose(dflt.price_nav, res.bench_nav)
    rb = proxy_returns(bw, simple_returns(close))
    np.testing.assert_allclose(res.proxy_nav[6:] / res.proxy_nav[5:-1] - 1, rb[6:])
    # slow reference for the proxy: value-weighted member return from t-1 weights
    t = 10
    ref = sum(bw[t - 1, i] * (close[t, i] / close[t - 1, i] - 1) for i in range(6))
    assert rb[t] == pytest.approx(ref)
    np.testing.assert_allclose(res.excess_nav, res.nav / res.bench_nav)


def test_missing_price_blocks_trading_and_freezes_value():
    close, _, _, _, dates = market(T=20, N=3, seed=6)
    close[8:12, 1] = np.nan
    res = run_backtest(np.array([[0.3, 0.3, 0.4], [0.0, 0.5, 0.5]]), np.array([2, 8]), close, dates)
    assert res.trades[1, 1] == 0.0  # no price on day 9: no trade
    assert np.isfinite(res.nav).all()


def test_bad_inputs_raise():
    close, _, _, _, dates = market(T=10, N=3)
    with pytest.raises(DataError, match="look-ahead"):
        run_backtest(np.full((1, 3), 0.3), np.array([2]), close, dates, lag=0)
    with pytest.raises(DataError, match="targets"):
        run_backtest(np.full((2, 3), 0.3), np.array([2]), close, dates)
    with pytest.raises(DataError, match="sum to <= 1"):
        run_backtest(np.full((1, 3), 0.5), np.array([2]), close, dates)
