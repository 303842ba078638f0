"""Timing of what a signal earns: System A's pure factor return and the backtests.

- The pure factor return of System A's signal at month end t is traded over the label's window
  (enter at the close of the first trading day after t, exit at the close of the first trading
  day after the next month end), never at the signal's own close.
- `run_backtest` / `run_enhancement`: prices and scores perturbed strictly after D leave the
  weights, NAV and targets up to D unchanged; a score that reads the next day's close (a one-day
  leak) is caught by the same comparison (mutation check).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_portfolio_enhance import CFG, synthetic_market
from test_risk_model import CFG as RISK_CFG
from test_risk_model import make_panel as risk_panel

from deepalpha.data.panel import Panel
from deepalpha.portfolio.backtest import run_backtest
from deepalpha.portfolio.enhance import rebalance_days, run_enhancement
from deepalpha.risk.factor_tools import (
    forward_returns,
    orthogonalize,
    pure_factor_return,
    residual_labels,
)
from deepalpha.risk.model import build_risk_model, month_end_rows
from deepalpha.risk.regression import regress
from deepalpha.workflows import barra_ml

# ------------------------------------------------------------------ System A's pure factor return


@pytest.fixture(scope="module")
def monthly():
    panel, groups = risk_panel(T=280, N=80)
    model = build_risk_model(panel, groups, freq="monthly", config=RISK_CFG)
    return panel, model


def _with_close(panel: Panel, close: np.ndarray) -> Panel:
    data = panel.data.copy()
    data[panel.fields.index("close")] = close.astype(np.float32)
    return Panel(data, panel.dates, panel.assets, panel.fields, panel.masks)


def _refit(model, panel: Panel):
    """The model with its exposures kept and its (month end -> month end) returns refitted on
    ``panel``'s closes, as `build_risk_model` regresses them."""
    rows = month_end_rows(panel.dates)
    c = panel.field("close").astype(np.float64)[rows]
    r = np.full_like(c, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[:-1] = c[1:] / c[:-1] - 1.0
    res = regress(model.styles, model.industry_ids, model.n_industries, r, model.weights, chunk=32)
    return dataclasses.replace(
        model,
        factor_returns=res.factor_returns.astype(np.float32),
        specific_returns=res.specific_returns,
    )


def _system_a_pfr(model, panel: Panel, signal: np.ndarray, monkeypatch) -> np.ndarray:
    """System A's pure factor return of ``signal`` (through `barra_ml._factor_result`)."""
    rows = np.searchsorted(panel.dates, model.dates)
    monkeypatch.setattr(barra_ml, "evaluate_signal", lambda *a, **k: {})
    ev = {
        "label": residual_labels(model, panel, "month"),
        "returns": forward_returns(panel, rows, "month"),
        "universes": {"all": np.ones(signal.shape, bool)},
        "t0": 0,
        "n_groups": 5,
        "industries": True,
    }
    res = barra_ml._factor_result("x", signal, model, ev, 0, None)
    return np.asarray(res.extra["pure_factor_returns"], np.float64)


# the day the planted move happens, relative to month end m (d_m) and the next month end (d_m1)
MOVES = {
    # a one-day blip at the signal's own close: not tradable by a signal formed at that close
    "blip_at_month_end": ("d_m", "blip", []),
    # a jump on the first day after the month end (the entry day): the entry price includes it
    "jump_on_entry_day": ("d_m+1", "step", [-1]),
    # a jump on the day after the next month end (the exit day): the signal of m earns it
    "jump_on_exit_day": ("d_m1+1", "step", [0]),
}


@pytest.mark.parametrize("case", list(MOVES))
def test_system_a_pure_factor_return_enters_after_the_month_end(monthly, case, monkeypatch):
    """Move the price of a third of the stocks on one day; the signal is +1 on them. The pure
    factor return of month end m may move only for the signals whose entry window (close after
    t -> close after the next month end) contains the move (offsets in MOVES, relative to m)."""
    panel, model = monthly
    rows = month_end_rows(panel.dates)
    m = 6
    d_m, d_m1 = int(rows[m]), int(rows[m + 1])
    day = {"d_m": d_m, "d_m+1": d_m + 1, "d_m1+1": d_m1 + 1}[MOVES[case][0]]
    hit = np.zeros(len(panel.assets), bool)
    hit[::3] = True
    close = panel.field("close").astype(np.float64)
    moved = close.copy()
    if MOVES[case][1] == "blip":
        moved[day, hit] *= 1.3
    else:
        moved[day:, hit] *= 1.3
    signal = np.broadcast_to(np.where(hit, 1.0, 0.0), (len(model.dates), len(hit))).copy()
    p0, p1 = panel, _with_close(panel, moved)
    # the model's exposures are held fixed; its own returns follow the moved prices
    f0 = _system_a_pfr(_refit(model, p0), p0, signal, monkeypatch)
    f1 = _system_a_pfr(_refit(model, p1), p1, signal, monkeypatch)
    want = [m + k for k in MOVES[case][2]]
    assert np.isfinite(f0[3:-2]).all()
    diff = np.nan_to_num(f1 - f0)
    others = np.setdiff1d(np.arange(len(diff)), want)
    np.testing.assert_allclose(diff[others], 0.0, atol=1e-6, err_msg=f"{case}: {diff}")
    for k in want:
        assert diff[k] > 0.05, (case, diff)  # a 30 % jump of the +1 names is earned
    # the mechanism: the coefficient of the (orthogonalised) signal regressed on the entry-window
    # returns -- whatever the model's own returns are
    fwd = forward_returns(p1, np.searchsorted(p1.dates, model.dates), "month")
    orth = orthogonalize(signal, model, industries=True)
    np.testing.assert_allclose(
        f1, pure_factor_return(orth, model, fwd), rtol=1e-9, atol=1e-12, equal_nan=True
    )


# ------------------------------------------------------------------ run_backtest


def _market(T: int = 90, N: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = np.arange(np.datetime64("2021-01-04"), np.datetime64("2021-01-04") + 2 * T)
    dates = d[np.is_busday(d)][:T].astype("datetime64[D]")
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    return dates, close


def _scores(close: np.ndarray, leak: bool) -> np.ndarray:
    """5-day momentum known at t's close; ``leak``: the next day's return (reads close[t+1])."""
    s = np.full(close.shape, np.nan)
    if leak:
        s[:-1] = close[1:] / close[:-1] - 1
    else:
        s[5:] = close[5:] / close[:-5] - 1
    return s


def _top_targets(scores: np.ndarray, k: int = 6) -> np.ndarray:
    t = np.zeros(scores.shape)
    for i, s in enumerate(scores):
        if np.isfinite(s).any():
            t[i, np.argsort(-np.nan_to_num(s, nan=-np.inf))[:k]] = 1.0 / k
    return t


def _perturb_after(close: np.ndarray, D: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = close.copy()
    out[D + 1 :] *= np.exp(rng.normal(0, 0.05, out[D + 1 :].shape))
    return out


def _backtest_up_to(close: np.ndarray, dates, D: int, leak: bool) -> dict[str, np.ndarray]:
    sig = np.arange(5, len(dates) - 1)  # a rebalance every day
    res = run_backtest(_top_targets(_scores(close, leak)[sig]), sig, close, dates)
    keep = res.signal_idx <= D
    return {
        "nav": res.nav[: D + 1],
        "weights": res.weights[: D + 1],
        "costs": res.costs[: D + 1],
        "targets": res.targets[keep],
    }


@pytest.mark.parametrize("leak", [False, True], ids=["honest", "mutation_next_day_close"])
@pytest.mark.parametrize("D", [40, 41])
def test_backtest_up_to_D_ignores_the_future(D, leak):
    dates, close = _market()
    a = _backtest_up_to(close, dates, D, leak)
    b = _backtest_up_to(_perturb_after(close, D), dates, D, leak)
    same = {k: np.array_equal(a[k], b[k]) for k in a}
    if not leak:
        assert all(same.values()), same
        # ...while the perturbation does reach the days after D (the check can fail)
        full_a = _backtest_up_to(close, dates, len(dates) - 1, leak)
        full_b = _backtest_up_to(_perturb_after(close, D), dates, len(dates) - 1, leak)
        assert not np.array_equal(full_a["nav"], full_b["nav"])
    else:
        assert not same["targets"], "a score reading close[t+1] must change the targets at D"


# ------------------------------------------------------------------ run_enhancement


@pytest.fixture(scope="module")
def small_market():
    return synthetic_market(T=110, N=70, n_index=35)


def _enhance(m: dict, close: np.ndarray, scores: np.ndarray):
    cfg = CFG.model_copy(update={"max_outside": 15})
    return run_enhancement(
        scores, dates=m["dates"], close=close, mktcap=m["mktcap"], members=m["members"],
        risk=m["risk"], config=cfg, suspended=m["suspended"], limit_up=m["limit_up"],
        limit_down=m["limit_down"],
    )  # fmt: skip


@pytest.mark.parametrize("leak", [False, True], ids=["honest", "mutation_next_day_close"])
@pytest.mark.parametrize("before", [0, 1], ids=["D=rebalance", "D=day_before"])
def test_enhancement_up_to_D_ignores_the_future(small_market, before, leak):
    m = small_market
    reb = rebalance_days(m["dates"], "weekly")
    D = int(reb[len(reb) // 2]) - before
    close = m["close"]
    pert = _perturb_after(close, D)
    a = _enhance(m, close, _scores(close, leak))
    b = _enhance(m, pert, _scores(pert, leak))
    ba, bb = a.backtest, b.backtest
    keep = ba.signal_idx <= D
    assert keep.sum() >= 3
    same = {
        "nav": np.array_equal(ba.nav[: D + 1], bb.nav[: D + 1]),
        "weights": np.array_equal(ba.weights[: D + 1], bb.weights[: D + 1]),
        "targets": np.array_equal(ba.targets[keep], bb.targets[: keep.sum()]),
    }
    if not leak:
        assert all(same.values()), same
        assert not np.array_equal(ba.nav, bb.nav)  # the perturbation bites after D
    elif before == 0:
        # D is a signal day: a score reading close[D+1] moves the target decided at D
        assert not same["targets"], same
    else:
        # the day before a rebalance is no signal day: a one-day leak reaches no target <= D
        assert all(same.values()), same
