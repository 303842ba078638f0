"""Honest benchmark, costs and candidates (issue 14): total-return benchmark, cost-sensitivity
table, point-in-time candidate universe."""

from __future__ import annotations

import numpy as np
import pytest
from test_portfolio_enhance import CFG, run, synthetic_market

from deepalpha.portfolio.backtest import run_backtest
from deepalpha.portfolio.benchmark import (
    accrued_yield,
    cap_weights,
    price_returns,
    total_return_returns,
)
from deepalpha.portfolio.costs import CostConfig
from deepalpha.portfolio.dividends import received_dividends
from deepalpha.portfolio.enhance import BacktestConfig, window_metrics
from deepalpha.portfolio.metrics import enhancement_metrics

FREE = CostConfig(commission=0, stamp_duty_before=0, stamp_duty_after=0, slippage_bps=0)


def test_total_return_returns_by_hand():
    ic = np.array([100.0, 101.0, np.nan, 99.99])
    w = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0], [0.5, 0.5]])
    dv = np.array([[2.0, np.nan], [4.0, 1.0], [3.0, 5.0], [0.0, 0.0]])  # % ; NaN = none
    rp = price_returns(ic)
    np.testing.assert_allclose(rp, [0.0, 0.01, 0.0, 99.99 / 101 - 1])  # gap carried
    acc = accrued_yield(w, dv)
    ref = [0.0, 0.5 * 0.02 / 252, (0.25 * 0.04 + 0.75 * 0.01) / 252, 0.03 / 252]
    np.testing.assert_allclose(acc, ref)
    np.testing.assert_allclose(total_return_returns(ic, w, dv), rp + acc)


def test_received_dividends_skip_share_events():
    f = np.array([[1.0, 1.0], [1.02, 2.0], [1.02, 2.0]])  # a 2 % dividend; a 10-for-10 split
    raw = np.array([[10.0, 20.0], [9.9, 10.0], [9.9, 10.0]])
    rec, big = received_dividends(np.full((3, 2), 0.5), raw * f, f)
    np.testing.assert_allclose(rec, [0, 0.5 * (9.9 / 10) * 0.02, 0])
    np.testing.assert_allclose(big, [0, 0.5, 0])


def dividend_market(T=260, N=8, seed=1):
    """Stocks whose total return = price return + a constant dividend yield accrued daily; the
    price index is the cap-weighted member *price* return (no dividends)."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64("2021-01-04"), np.datetime64("2023-01-01"))
    dates = dates[np.is_busday(dates)][:T]
    dy = rng.uniform(0.01, 0.05, N)  # annual dividend yield per stock
    r_px = rng.normal(0.0003, 0.015, (T, N))
    r_px[0] = 0
    r_tr = r_px + dy / 252
    r_tr[0] = 0
    close = 10 * np.cumprod(1 + r_tr, axis=0)  # back-adjusted: dividends in
    mktcap = close * rng.uniform(1, 5, N) * 1e8
    members = np.ones((T, N), bool)
    w = cap_weights(mktcap, members)
    ri = np.zeros(T)
    ri[1:] = (w[:-1] * r_px[1:]).sum(1)
    index_close = 1000 * np.cumprod(1 + ri)
    dv = np.broadcast_to(100 * dy, (T, N)).copy()
    return dates, close, w, index_close, dv, dy


def test_holding_the_members_beats_the_price_index_by_the_yield_not_the_tr_index():
    dates, close, w, ic, dv, dy = dividend_market()
    T = dates.size
    s = 5
    # hold the index's cap weights from the execution day on (buy and hold: they drift with
    # the back-adjusted closes exactly as the cap weights do)
    res = run_backtest(
        w[s + 1][None], np.array([s]), close, dates, index_close=ic, bench_weights=w,
        dv_ratio=dv, costs=FREE,
    )  # fmt: skip
    assert res.info["benchmark_used"] == "total_return"
    win = slice(s + 1, T)  # from the first day invested
    vs_tr = enhancement_metrics(res.nav[win], res.tr_nav[win], dates[win])
    vs_px = enhancement_metrics(res.nav[win], res.price_nav[win], dates[win])
    yield_ = float((w[s + 1] * dy).sum())
    assert abs(vs_tr["excess_return"]) < 2e-4
    assert vs_tr["tracking_error"] < 1e-3
    assert vs_px["excess_return"] == pytest.approx(yield_, rel=0.1)  # ~2-4 %/yr flattered
    # all three benchmarks side by side, the primary unprefixed
    m = window_metrics(res, win)
    assert m["excess_return"] == m["tr_excess_return"] == pytest.approx(vs_tr["excess_return"])
    assert m["price_excess_return"] == pytest.approx(vs_px["excess_return"])
    assert abs(m["proxy_excess_return"]) < 2e-4  # the proxy is total return too
    # asking for the price index makes it primary
    r2 = run_backtest(
        w[s + 1][None], np.array([s]), close, dates, index_close=ic, bench_weights=w,
        dv_ratio=dv, costs=FREE, benchmark="index",
    )  # fmt: skip
    np.testing.assert_allclose(r2.bench_nav, res.price_nav)


def test_default_config_is_total_return_with_realistic_slippage():
    cfg = BacktestConfig()
    assert cfg.benchmark == "total_return"
    assert cfg.costs.slippage_bps == 10.0
    assert cfg.costs.commission == 0.00025


@pytest.fixture(scope="module")
def small():
    return synthetic_market(T=200, N=100, n_index=50, seed=2)


def test_cost_sensitivity_table(small):
    res = run(small, small["truth"])
    tab = res.info["cost_sensitivity"]
    assert tab["slippage_bps"].to_list() == [0.0, 5.0, 10.0, 20.0]  # CFG: 5 bps
    main = tab.filter(tab["source"] == "main run")
    assert main["slippage_bps"].item() == CFG.costs.slippage_bps
    assert main["excess_return"].item() == res.metrics["excess_return"]
    assert main["information_ratio"].item() == res.metrics["information_ratio"]
    assert res.metrics["excess_return_slip20bps"] == tab["excess_return"][-1]
    ex, ir, ca = (tab[c].to_numpy() for c in ("excess_return", "information_ratio", "cost_annual"))
    assert (np.diff(ex) < 0).all() and (np.diff(ir) < 0).all() and (np.diff(ca) > 0).all()
    # re-costing the main targets at the main slippage reproduces the main run
    cfg0 = CFG.model_copy(update={"costs": CFG.costs.model_copy(update={"slippage_bps": 4.999})})
    near = run(small, small["truth"], cfg=cfg0).info["cost_sensitivity"]
    row = near.filter(near["slippage_bps"] == 5.0)
    assert row["source"].item() == "re-costed"
    assert row["excess_return"].item() == pytest.approx(res.metrics["excess_return"], abs=2e-4)


def test_outside_candidate_must_be_in_the_universe(small):
    m = small
    scores = m["truth"].copy()
    outside = np.nonzero(~m["members"][0])[0]
    j = int(outside[np.argmax(m["mktcap"][0, outside])])
    scores[:, j] = 50.0  # the best score by far, every day
    free = run(m, scores)
    assert free.backtest.weights[:, j].max() > 1e-3  # bought when any stock is a candidate
    assert not free.info["universe_point_in_time"]
    universe = np.ones_like(m["members"])
    universe[:, j] = False
    pit = run(m, scores, universe=universe)
    assert pit.backtest.weights[:, j].max() == 0.0
    assert pit.info["universe_point_in_time"]


def test_outputs_and_report_tables(small, tmp_path):
    import json

    import polars as pl

    from deepalpha.portfolio.enhance import write_result
    from deepalpha.report.load import read_portfolios
    from deepalpha.report.portfolio_tables import benchmark_table, cost_table

    res = run(small, small["truth"])
    folder = tmp_path / "portfolio" / "truth__csi500"
    files = write_result(res, folder)
    assert folder / "costs.csv" in files
    nav = pl.read_parquet(folder / "nav.parquet")
    assert {"bench_nav", "tr_nav", "price_nav", "proxy_nav"} <= set(nav.columns)
    meta = json.loads((folder / "metrics.json").read_text())
    assert [r["slippage_bps"] for r in meta["cost_sensitivity"]] == [0.0, 5.0, 10.0, 20.0]
    assert meta["info"]["universe_point_in_time"] is False
    (p,) = read_portfolios(tmp_path / "portfolio")
    assert p.costs is not None and p.costs.height == 4
    html = cost_table(p)
    assert "cost sensitivity" in html and "main run" in html and "re-costed" in html
    # no index series in this market: only the proxy row, and the fallback is said
    assert "member proxy" in benchmark_table(p)
    assert "benchmark_fallback" in meta["info"]
