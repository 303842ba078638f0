"""Index enhancement on the real A-share data (short window, simple risk model)."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.portfolio.enhance import BacktestConfig, backtest_predictions

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_csi500_reversal_half_year(cn_path):
    from deepalpha.data.cn import load_cn
    from deepalpha.data.predictions import dense_to_long

    p = load_cn(cn_path, fields=["close"], start="2022-11-01", end="2023-06-30")
    c = p.field("close").astype(np.float64)
    s = np.full_like(c, np.nan)
    s[5:] = -(c[5:] / c[:-5] - 1.0)
    s[~p.masks["listed"]] = np.nan
    keep = p.dates >= np.datetime64("2023-01-01")
    preds = dense_to_long(s[keep], p.dates[keep], p.assets)
    cfg = BacktestConfig(index="csi500", freq="weekly", end="2023-06-30")
    res = backtest_predictions(preds, cn_path, cfg)
    m = res.metrics
    assert res.info["benchmark_used"] == "total_return"
    assert res.info["benchmark"].startswith("SH000905 total return")
    assert res.info["universe_point_in_time"]
    # CSI 500 yields ~1.5 %/yr: the price index flatters the excess by about that much
    gap = m["price_excess_return"] - m["excess_return"]
    assert 0.003 < gap < 0.04
    sens = res.info["cost_sensitivity"]
    assert (np.diff(sens["excess_return"].to_numpy()) < 0).all()
    assert 20 <= m["rebalances"] <= 27
    assert np.isfinite([m["excess_return"], m["tracking_error"], m["cost_annual"]]).all()
    assert 0.005 < m["tracking_error"] < 0.15  # index vs a TE-5 % portfolio: a sane range
    rec = res.records
    assert (rec["index_share"] >= 0.8 - 1e-6).all()
    assert (rec.filter(rec["status"] == "optimal")["ex_ante_te"] <= 0.05 + 1e-6).all()
    assert 700 <= rec["n_candidates"].median() <= 900  # ~500 members + 300 outside
    # solve speed is measured in benchmarks/bench_portfolio.py, not here: a wall-clock bound in
    # a test fails on a shared box (3.6 s median at load 4+ against 0.5-0.8 s idle)
    assert rec["solve_time"].is_finite().all() and (rec["solve_time"] > 0).all()
    # real price-limit and suspension masks are respected at execution
    panel = load_cn(cn_path, fields=["close"], start="2022-11-01", end="2023-06-30")
    bt = res.backtest
    ex = bt.exec_idx[bt.exec_idx >= 0]
    pos = np.searchsorted(panel.dates, bt.dates[ex])
    for r, t in enumerate(pos):
        d = bt.trades[r]
        assert not (d[panel.masks["limit_up"][t]] > 0).any()
        assert not (d[panel.masks["limit_down"][t]] < 0).any()
        assert not (d[panel.masks["suspended"][t]] != 0).any()
