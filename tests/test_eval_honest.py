"""Honest evaluation: HAC t-stats valid for overlapping labels, entry-day (t+1) tradability in IC
and groups, and group returns net of trading costs (issue 14, items 3-5)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from deepalpha.data.panel import Panel
from deepalpha.data.universe import entry_masks
from deepalpha.evaluate.groups import group_returns, group_turnover, rebalance_costs
from deepalpha.evaluate.ic import default_nw_lags, ic_summary, newey_west_se, rank_ic
from deepalpha.evaluate.summary import evaluate_signal, summary_row
from deepalpha.portfolio.costs import CostConfig, cost_rates
from deepalpha.workflows import decompgrn
from deepalpha.workflows.config import DecompGRNConfig, EvalSpec
from deepalpha.workflows.results import compare_frame, fmt, markdown_table


# ------------------------------------------------------------------------ item 4: HAC t-stat
def _overlapping_null(rng: np.random.Generator, sims: int, n: int, h: int) -> np.ndarray:
    """``[sims, n]`` null IC series: sums of h consecutive iid shocks (an h-day label sampled
    daily shares h − 1 days with its neighbour), i.e. MA(h − 1) with equal weights."""
    c = np.cumsum(rng.standard_normal((sims, n + h - 1)), axis=1)
    c = np.concatenate([np.zeros((sims, 1)), c], axis=1)
    return c[:, h:] - c[:, :-h]


@pytest.mark.parametrize(
    ("n", "sims", "new_hi", "old_lo"),
    [
        # measured over 4,000 simulations (h = 10): new 5.8 %, old max(h-1, default) 11.6 %,
        # Bartlett default lags alone 14.0 %
        (1700, 3000, 0.08, 0.09),
        # n = 300 (about 1.2 years of daily ICs): new 8.3-9.3 %, old 13.5 %, Bartlett default 19 %.
        # The flat-top kernel's demeaning bias (about 3M/n of the variance) is still visible here.
        (300, 3000, 0.11, 0.11),
    ],
)
def test_t_nw_null_size_with_overlapping_labels(n, sims, new_hi, old_lo):
    """|t_nw| > 1.96 under the null: the summary's HAC t keeps the size near 5 % at h = 10 where
    the previous rule (Bartlett, max(h − 1, default) lags) over-rejects."""
    h = 10
    x = _overlapping_null(np.random.default_rng(20240514 + n), sims, n, h)
    old_lags = max(h - 1, default_nw_lags(n))
    new = old = 0
    for d in x:
        s = ic_summary(d, 252 / h, horizon=h)
        new += abs(s["t_nw"]) > 1.96
        old += abs(d.mean() / newey_west_se(d, old_lags)) > 1.96
    assert s["nw_kernel"] == "flat-top" and s["nw_lags"] == 2 * max(h, default_nw_lags(n) + 1) - 1
    assert 0.03 <= new / sims <= new_hi, new / sims
    assert old / sims > old_lo, old / sims
    assert old / sims - new / sims > 0.03


def test_t_nw_horizon_one_and_explicit_lags_unchanged():
    """Monthly (h = 1) t is plain Newey-West with the default lags, as before; an explicit
    ``nw_lags`` still forces Bartlett."""
    x = np.random.default_rng(1).standard_normal(120) * 0.05 + 0.01
    s = ic_summary(x, 12)
    assert s["nw_kernel"] == "bartlett" and s["nw_lags"] == default_nw_lags(120)
    assert s["t_nw"] == pytest.approx(x.mean() / newey_west_se(x, default_nw_lags(120)))
    s = ic_summary(x, 12, 7, horizon=10)
    assert s["nw_kernel"] == "bartlett" and s["nw_lags"] == 7
    assert s["t_nw"] == pytest.approx(x.mean() / newey_west_se(x, 7))


def test_evaluate_signal_uses_the_horizon_aware_t():
    rng = np.random.default_rng(2)
    T, N, h = 300, 40, 10
    sig = rng.standard_normal((T, N))
    lab = rng.standard_normal((T, N))
    res = evaluate_signal(sig, lab, None, horizon=h, periods_per_year=252 / h)
    r = res["rank_ic"]
    want = ic_summary(res["rank_ic_series"], 252 / h, horizon=h)
    assert r["nw_kernel"] == "flat-top" and r["t_nw"] == pytest.approx(want["t_nw"])
    assert "flat-top" in res["conventions"]["t_nw"]


# ------------------------------------------------------------------------ item 5: entry day
def test_entry_masks_shift_rows_and_block_the_last():
    T, N = 5, 3
    z = np.zeros((T, N), bool)
    listed = np.ones((T, N), bool)
    susp, up, dn = z.copy(), z.copy(), z.copy()
    susp[2, 0] = True
    up[3, 1] = True
    dn[4, 2] = True
    buy, sell = entry_masks(susp, up, dn, listed, lag=1)
    assert not buy[1, 0] and not sell[1, 0]  # suspended on the entry day
    assert not buy[2, 1] and sell[2, 1]  # limit-up: can sell, cannot buy
    assert buy[3, 2] and not sell[3, 2]  # limit-down: can buy, cannot sell
    assert not buy[-1].any() and not sell[-1].any()  # no entry day after the last row
    assert buy[0].all() and sell[0].all()
    b0, s0 = entry_masks(susp, up, dn, listed, lag=0)
    np.testing.assert_array_equal(b0, listed & ~susp & ~up)
    np.testing.assert_array_equal(s0, listed & ~susp & ~dn)


def _market(T=24, N=30, seed=3):
    rng = np.random.default_rng(seed)
    sig = rng.standard_normal((T, N))
    r1 = rng.standard_normal((T, N)) * 0.02
    z = np.zeros((T, N), bool)
    return sig, r1, z


def test_limit_down_at_t_plus_1_leaves_rank_ic_and_short_leg_at_t():
    """The worst-signal stock is limit-down at t+1: it cannot be sold short at the entry close,
    so it is not in date t's RankIC nor in the short leg (bottom group) of long-short; rows
    before t are unchanged. The best-signal stock limit-up at t+1 cannot be bought: out of the
    top group. Without the filter (today's t-only mask) both would count."""
    sig, r1, z = _market()
    T, N = sig.shape
    t, worst, best = 12, 0, 1
    sig[t, worst] = -10.0
    sig[t, best] = 10.0
    r1[t, worst] = -0.5  # would make the short leg look great
    r1[t, best] = 0.5
    listed = np.ones((T, N), bool)
    up, dn = z.copy(), z.copy()
    dn[t + 1, worst] = True
    up[t + 1, best] = True
    kw = dict(horizon=1, periods_per_year=252, return_periods_per_year=252, n_groups=5)
    kw |= dict(decay_horizons=())
    plain = evaluate_signal(sig, r1, None, r1, **kw)
    clean = evaluate_signal(sig, r1, None, r1, entry=entry_masks(z, z, z, listed), **kw)
    filt = evaluate_signal(sig, r1, None, r1, entry=entry_masks(z, up, dn, listed), **kw)

    m = np.ones((T, N), bool)
    m[t, [worst, best]] = False
    assert filt["rank_ic_series"][t] == pytest.approx(rank_ic(sig, r1, m)[t])
    assert filt["rank_ic_series"][t] != pytest.approx(plain["rank_ic_series"][t])
    # bottom group at t as shorted: the 6 lowest minus the locked stock; top: 6 highest minus one
    order = np.argsort(sig[t])
    short = [i for i in order[:6] if i != worst]
    top = [i for i in order[-6:] if i != best]
    want = r1[t, top].mean() - r1[t, short].mean()
    assert filt["groups"]["long_short_returns"][t] == pytest.approx(want)
    plain_ls = r1[t, order[-6:]].mean() - r1[t, order[:6]].mean()
    assert plain["groups"]["long_short_returns"][t] == pytest.approx(plain_ls)
    # the bottom group held long may still buy a limit-down stock
    assert filt["groups"]["returns"][t, 0] == pytest.approx(r1[t, order[:6]].mean())
    # past rows unchanged (the last row has no entry day, so compare with an unflagged filter)
    for key in ("rank_ic_series", "ic_series"):
        np.testing.assert_array_equal(filt[key][:t], clean[key][:t])
        np.testing.assert_array_equal(filt[key][t + 1 :], clean[key][t + 1 :])
    np.testing.assert_array_equal(
        filt["groups"]["long_short_returns"][:t], clean["groups"]["long_short_returns"][:t]
    )
    assert "limit-down" in filt["conventions"]["entry_filter"]


def test_entry_filter_off_is_todays_evaluation():
    sig, r1, _ = _market(seed=4)
    kw = dict(horizon=2, periods_per_year=126, return_periods_per_year=252, n_groups=5)
    a = evaluate_signal(sig, r1, None, r1, **kw)
    b = evaluate_signal(sig, r1, None, r1, entry=None, **kw)
    np.testing.assert_array_equal(a["rank_ic_series"], b["rank_ic_series"])
    np.testing.assert_array_equal(
        a["groups"]["long_short_returns"], b["groups"]["long_short_returns"]
    )
    assert a["conventions"]["entry_filter"].startswith("none")


def _daily_panel(T=90, N=24, seed=5, start="2023-06-01"):
    rng = np.random.default_rng(seed)
    dates = np.busday_offset(np.datetime64(start, "D"), np.arange(T), roll="forward")
    assets = np.array([f"SH6{i:05d}" for i in range(N)])
    close = 10 * np.exp(np.cumsum(rng.standard_normal((T, N)) * 0.02, axis=0))
    z = np.zeros((T, N), bool)
    masks = {"listed": ~z, "tradable": ~z, "all": ~z, "suspended": z.copy(),
             "limit_up": z.copy(), "limit_down": z.copy()}  # fmt: skip
    return Panel(close[None].astype(np.float32), dates, assets, ("close",), masks)


def test_system_b_drops_a_stock_limit_down_on_the_entry_day(monkeypatch, tmp_path):
    """run_decompgrn wiring: the model's worst stock at t, limit-down at t+1, leaves date t's
    RankIC; `evaluate.entry_filter: false` keeps it; net long-short <= gross."""
    panel = _daily_panel()
    T, N = panel.data.shape[1:]
    base = DecompGRNConfig()
    spec = base.rolling.models[0]
    rolling = base.rolling.model_copy(update={"models": [spec]})
    rng = np.random.default_rng(6)
    score = rng.standard_normal((T, N))
    t, worst = 40, 3
    score[t, worst] = -9.0
    panel.masks["limit_down"][t + 1, worst] = True
    preds = pl.DataFrame(
        {
            "date": np.repeat(panel.dates, N),
            "asset": np.tile(panel.assets, T),
            "model": spec.key,
            "window": 84,
            "seed": 0,
            "score": score.ravel(),
        }
    )
    monkeypatch.setattr(
        decompgrn, "run_rolling", lambda *a, **k: SimpleNamespace(predictions=preds)
    )

    def run(flag: bool):
        cfg = base.model_copy(
            update={"rolling": rolling, "evaluate": EvalSpec(universes=["all"], entry_filter=flag)}
        )
        out = decompgrn.run_decompgrn(cfg, tmp_path, tmp_path, panel, progress=False)
        (r,) = out["results"]
        return r.evaluation["all"]

    on, off = run(True), run(False)
    h = base.rolling.dataset.horizon
    close = panel.data[0].astype(np.float64)
    label = np.full((T, N), np.nan)
    label[: T - h - 1] = close[h + 1 :] / close[1 : T - h] - 1
    m = np.ones((T, N), bool)
    m[t, worst] = False
    assert on["rank_ic_series"][t] == pytest.approx(rank_ic(score, label, m)[t], abs=1e-6)
    assert off["rank_ic_series"][t] == pytest.approx(rank_ic(score, label)[t], abs=1e-6)
    assert on["rank_ic_series"][t] != pytest.approx(off["rank_ic_series"][t], abs=1e-6)
    np.testing.assert_allclose(on["rank_ic_series"][:t], off["rank_ic_series"][:t])
    g = on["groups"]
    assert g["long_short_net"]["annual_return"] <= g["long_short"]["annual_return"]
    assert g["top_net"]["annual_return"] <= g["top"]["annual_return"]


def test_system_a_entry_rows_are_the_day_after_the_month_end():
    """System A's month-end signal enters at the close of daily row rows[k] + 1: a stock
    limit-down there cannot be sold for that month; the cost rates are those of the entry day
    (stamp duty halves from 2023-08-28, the Monday after the 2023-08-25 month-end proxy)."""
    panel = _daily_panel(T=90, start="2023-06-01")
    d = panel.dates
    rows = np.array([int(np.searchsorted(d, np.datetime64("2023-08-25", "D"))), 10])
    panel.masks["limit_down"][rows[0] + 1, 5] = True
    panel.masks["limit_up"][rows[0], 6] = True  # on the signal day itself: not the entry day
    (buy, sell), (b, s) = decompgrn.entry_inputs(panel, True, rows)
    assert buy.shape == (2, panel.data.shape[2])
    assert not sell[0, 5] and buy[0, 5] and buy[0, 6] and sell[0, 6]
    assert sell[1].all() and buy[1].all()
    want_b, want_s = cost_rates(d[rows + 1])
    np.testing.assert_allclose(b, want_b)
    np.testing.assert_allclose(s, want_s)
    assert d[rows[0] + 1] == np.datetime64("2023-08-28", "D")
    assert s[0] == pytest.approx(
        CostConfig().commission + CostConfig().slippage_bps * 1e-4 + 0.0005
    )
    entry, costs = decompgrn.entry_inputs(panel, False, rows)
    assert entry is None and costs[0].shape == (2,)


# ------------------------------------------------------------------------ item 3: net returns
def test_rebalance_costs_by_hand():
    to = np.array([[np.nan, np.nan], [0.5, 0.2], [0.1, np.nan]])
    c = rebalance_costs(to, 0.001, np.array([0.002] * 7), 7, 3)
    want = np.zeros((7, 2))
    want[0] = 0.001  # initial purchase: buy side only
    want[3] = [0.5 * 0.003, 0.2 * 0.003]
    want[6] = [0.1 * 0.003, 0.001]  # empty before: bought afresh
    np.testing.assert_allclose(c, want)


def test_net_group_returns_below_gross_and_equal_without_costs():
    sig, r1, _ = _market(T=60, N=50, seed=7)
    T = sig.shape[0]
    kw = dict(horizon=5, periods_per_year=252 / 5, return_periods_per_year=252, n_groups=5)
    dates = np.busday_offset(np.datetime64("2023-08-01", "D"), np.arange(T), roll="forward")
    rates = cost_rates(dates, CostConfig())
    net = evaluate_signal(sig, r1, None, r1, costs=rates, **kw)
    zero = evaluate_signal(sig, r1, None, r1, costs=(0.0, 0.0), **kw)
    gross = evaluate_signal(sig, r1, None, r1, **kw)
    g, gz = net["groups"], zero["groups"]
    assert g["top_net"]["annual_return"] < g["top"]["annual_return"]
    assert g["long_short_net"]["annual_return"] < g["long_short"]["annual_return"]
    assert np.all(g["annual_return_net"] < g["annual_return"])
    ok = np.isfinite(g["returns"])
    assert np.all(g["returns_net"][ok] <= g["returns"][ok])
    ls_ok = np.isfinite(g["long_short_returns"])
    assert np.all(g["long_short_net_returns"][ls_ok] <= g["long_short_returns"][ls_ok])
    np.testing.assert_array_equal(gz["returns_net"], gz["returns"])
    np.testing.assert_array_equal(gz["long_short_net_returns"], gz["long_short_returns"])
    assert gz["top_net"] == gz["top"] and gz["long_short_net"] == gz["long_short"]
    # the long-short pays both legs' turnover at each rebalance
    cost = g["returns"] - g["returns_net"]
    ls_cost = g["long_short_returns"] - g["long_short_net_returns"]
    np.testing.assert_allclose(ls_cost, cost[:, -1] + cost[:, 0], atol=1e-15)
    # net keys absent without costs; summary rows carry them (NaN -> "-")
    assert "top_net" not in gross["groups"]
    row = summary_row(net)
    assert row["top_ann_net"] == pytest.approx(g["top_net"]["annual_return"])
    assert row["ls_ann_net"] == pytest.approx(g["long_short_net"]["annual_return"])
    assert np.isnan(summary_row(gross)["top_ann_net"])


def test_group_returns_net_matches_manual_single_group():
    """One group, rebalanced every 2 rows: net = gross − turnover × (buy + sell) on rebalance
    rows, the initial purchase at the buy rate."""
    rng = np.random.default_rng(8)
    T, N = 6, 4
    g = np.zeros((T, N), np.int8)
    g[2, 0] = -1  # stock 0 left the group at the second rebalance
    r = rng.standard_normal((T, N)) * 0.01
    gr = group_returns(g, r, 2, 1)
    to = group_turnover(g, 2, 1, r)
    cost = rebalance_costs(to, 0.001, 0.002, T, 2)
    assert cost[0, 0] == pytest.approx(0.001)
    assert cost[2, 0] == pytest.approx(to[1, 0] * 0.003) and to[1, 0] > 0
    assert cost[1, 0] == 0 and cost[3, 0] == 0
    net = gr - cost
    assert net[0, 0] == pytest.approx(gr[0, 0] - 0.001) and net[1, 0] == gr[1, 0]


def test_compare_reads_old_run_folders_without_net_figures(tmp_path):
    """A metrics.json written before the net figures: compare / markdown show '-'."""
    old = {"ic": 0.02, "rank_ic": 0.03, "top_ann_return": 0.1, "ls_ann_return": 0.05,
           "rank_ic_t_nw": 2.1, "n_dates": 100}  # fmt: skip
    m = {"system": "decompgrn", "name": "old", "models": {"gru": {"n_params": 10,
         "summary": {"all": old}, "detail": {"all": {}}}}}  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps(m))
    df = compare_frame([tmp_path])
    assert df["top_ann_return"][0] == pytest.approx(0.1)
    assert df["top_ann_net"][0] is None and fmt("top_ann_net", df["ls_ann_net"][0]) == "-"
    md = markdown_table(m, "all")
    assert "Top net" in md and "L-S net" in md


def test_eval_spec_entry_filter_defaults_on():
    assert EvalSpec().entry_filter is True
    assert EvalSpec(entry_filter=False).entry_filter is False


def test_report_conventions_state_t_entry_and_costs():
    """The report's note under the tables says how t, entry filter and costs were computed, and
    describes an old run (no entry_filter / net keys, Bartlett t) as it was computed."""
    from deepalpha.report.eval_notes import conventions_text

    sig, r1, z = _market(seed=9)
    T, N = sig.shape
    kw = dict(horizon=2, periods_per_year=126, return_periods_per_year=252, n_groups=5)
    ones = np.ones((T, N), bool)
    new = evaluate_signal(
        sig, r1, None, r1, entry=entry_masks(z, z, z, ones), costs=(0.001, 0.002), **kw
    )
    text = conventions_text(new["conventions"])
    assert "flat-top" in text and "limit-down" in text and "net figures after costs" in text
    old = {k: v for k, v in new["conventions"].items() if k not in ("entry_filter", "net")}
    old["t_nw"] = "Newey-West t-stat of the mean IC"
    text = conventions_text(old)
    assert "Bartlett" in text and "no entry-day filter" in text and "gross of costs" in text
