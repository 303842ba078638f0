"""Performance statistics, pure-factor summary and the one-call evaluation / summary table."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.errors import ConfigError, DataError
from deepalpha.evaluate.groups import group_returns, quantile_groups
from deepalpha.evaluate.ic import forward_returns, ic_decay, rank_ic
from deepalpha.evaluate.performance import (
    annualised_return,
    drawdown,
    max_drawdown,
    nav,
    performance,
    pure_factor_summary,
)
from deepalpha.evaluate.summary import evaluate_signal, format_summary, summary_frame

NAN = np.nan


def test_nav_drawdown_hand_example():
    r = np.array([0.1, -0.5, 0.2, NAN])
    np.testing.assert_allclose(nav(r), [1.1, 0.55, 0.66, 0.66])
    np.testing.assert_allclose(drawdown(r), [0.0, 0.5, 0.4, 0.4])
    assert max_drawdown(r) == pytest.approx(0.5)
    assert max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(0.1)  # loss from the start
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_performance_hand_example():
    r = np.array([0.1, -0.5, 0.2, NAN])
    p = performance(r, periods_per_year=3)
    f = r[:3]
    assert p["n"] == 3
    assert p["cumulative_return"] == pytest.approx(-0.34)
    assert p["annual_return"] == pytest.approx(-0.34)  # 3 periods = exactly one year
    assert p["annual_vol"] == pytest.approx(f.std(ddof=1) * np.sqrt(3))
    assert p["sharpe"] == pytest.approx(f.mean() / f.std(ddof=1) * np.sqrt(3))
    assert p["max_drawdown"] == pytest.approx(0.5)
    assert p["win_rate"] == pytest.approx(2 / 3)
    # compounding over 252 days: a constant 0.1 % a day
    q = performance(np.full(504, 0.001), 252)
    assert q["annual_return"] == pytest.approx(1.001**252 - 1)
    assert annualised_return(np.full(126, 0.001), 252) == pytest.approx(1.001**252 - 1)


def test_performance_degenerate():
    p = performance(np.full(4, NAN))
    assert p["n"] == 0 and np.isnan(p["annual_return"]) and np.isnan(p["sharpe"])
    with pytest.raises(DataError):
        performance(np.zeros((2, 2)))
    with pytest.raises(DataError):
        performance(np.zeros(3), periods_per_year=-1)


def test_pure_factor_summary():
    rng = np.random.default_rng(0)
    f = 0.002 + 0.01 * rng.normal(size=120)
    t = rng.normal(2, 1, size=120)
    s = pure_factor_summary(f, periods_per_year=12, t_values=t)
    assert s["cumulative_return"] == pytest.approx(np.prod(1 + f) - 1)
    assert s["mean"] == pytest.approx(f.mean())
    assert s["ir"] == pytest.approx(f.mean() / f.std(ddof=1))
    assert s["ir_annualised"] == pytest.approx(s["ir"] * np.sqrt(12))
    assert s["t_stat"] == pytest.approx(f.mean() / f.std(ddof=1) * np.sqrt(120))
    assert s["mean_abs_t"] == pytest.approx(np.abs(t).mean())
    assert s["share_abs_t_gt_2"] == pytest.approx((np.abs(t) > 2).mean())
    assert s["n"] == 120 and s["periods_per_year"] == 12


def _market(rng, T=200, N=120, strength=0.004):
    sig = rng.normal(size=(T, N))
    r1 = 0.015 * rng.standard_t(4, size=(T, N)) + strength * sig
    r1[-1] = NAN
    return sig, r1


def test_evaluate_signal_consistency():
    rng = np.random.default_rng(1)
    sig, r1 = _market(rng)
    h = 5
    label = forward_returns(r1, h)
    m = rng.random(sig.shape) < 0.9
    res = evaluate_signal(sig, label, m, r1, horizon=h, periods_per_year=252 / h, n_groups=5)
    c = res["conventions"]
    assert c["periods_per_year"] == pytest.approx(50.4)
    assert c["return_periods_per_year"] == pytest.approx(252)
    assert c["rebalance_every"] == h
    np.testing.assert_allclose(res["rank_ic_series"], rank_ic(sig, label, m))
    assert res["rank_ic"]["mean"] == pytest.approx(np.nanmean(rank_ic(sig, label, m)))
    assert res["rank_ic"]["nw_lags"] >= h - 1
    g = quantile_groups(sig, m, 5)
    gr = group_returns(g, r1, h, 5)
    np.testing.assert_allclose(res["groups"]["returns"], gr, equal_nan=True)
    assert res["groups"]["top"] == performance(gr[:, -1], 252)
    assert res["groups"]["long_short"] == performance(gr[:, -1] - gr[:, 0], 252)
    assert res["rank_ic"]["mean"] > 0.02
    assert res["groups"]["long_short"]["annual_return"] > 0
    ar = res["groups"]["annual_return"]
    assert ar[-1] > ar[0]
    assert set(res["ic_decay"]) == {1, 5, 10, 20}
    ref = ic_decay(sig, r1, (1, 5, 10, 20), m)
    assert res["ic_decay"] == pytest.approx(ref, abs=1e-12)


def test_evaluate_signal_per_universe_and_table():
    rng = np.random.default_rng(2)
    sig, r1 = _market(rng, T=60, N=80)
    label = r1  # monthly-style: one period label
    masks = {"csi300": rng.random(sig.shape) < 0.5, "all": np.ones(sig.shape, bool)}
    res = evaluate_signal(
        sig, label, masks, r1, horizon=1, periods_per_year=12, n_groups=5, decay_horizons=(1, 2)
    )
    assert set(res) == {"csi300", "all"}
    assert res["csi300"]["conventions"]["universe"] == "csi300"
    assert res["all"]["conventions"]["return_periods_per_year"] == 12
    np.testing.assert_allclose(
        res["csi300"]["rank_ic_series"], rank_ic(sig, label, masks["csi300"])
    )
    frame = summary_frame(res)
    assert frame["universe"].to_list() == ["csi300", "all"]
    assert frame["rank_ic"][1] == pytest.approx(res["all"]["rank_ic"]["mean"])
    assert frame["n_dates"][1] == res["all"]["rank_ic"]["n"]
    text = format_summary(res, title="demo")
    assert "csi300" in text and "RankICIR" in text and "sqrt(12)" in text


def test_evaluate_signal_without_returns_and_groups_ignore_labels():
    rng = np.random.default_rng(3)
    sig, r1 = _market(rng, T=40, N=50)
    res = evaluate_signal(sig, r1, None, None, horizon=1, periods_per_year=252, keep_series=False)
    assert "ic_series" not in res and "ic_decay" not in res and "top" not in res["groups"]
    assert res["groups"]["mean_label"].shape == (10,)
    # group formation uses no label information: perturbing the future leaves dates <= D alone
    D = 20
    r2 = r1.copy()
    r2[D + 1 :] = rng.normal(size=r2[D + 1 :].shape)
    a = evaluate_signal(sig, r1, None, r1, horizon=1, periods_per_year=252, decay_horizons=())
    b = evaluate_signal(sig, r2, None, r2, horizon=1, periods_per_year=252, decay_horizons=())
    np.testing.assert_array_equal(a["rank_ic_series"][: D + 1], b["rank_ic_series"][: D + 1])
    np.testing.assert_array_equal(a["groups"]["returns"][: D + 1], b["groups"]["returns"][: D + 1])


def test_evaluate_signal_errors():
    with pytest.raises(DataError):
        evaluate_signal(np.zeros((3, 4)), np.zeros((3, 5)), None, horizon=1, periods_per_year=12)
    with pytest.raises(DataError, match="returns_1d"):
        evaluate_signal(
            np.zeros((3, 4)),
            np.zeros((3, 4)),
            None,
            np.zeros((2, 4)),
            horizon=1,
            periods_per_year=12,
        )


def test_implausible_return_frequency_raises():
    s = np.zeros((5, 4))
    with pytest.raises(ConfigError, match="252/h"):
        evaluate_signal(s, s, None, s, horizon=10, periods_per_year=252)
    res = evaluate_signal(
        s,
        s,
        None,
        s,
        horizon=10,
        periods_per_year=252,
        return_periods_per_year=252,
        decay_horizons=(),
    )
    assert res["conventions"]["return_periods_per_year"] == 252
