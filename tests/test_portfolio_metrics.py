"""Enhancement metrics against hand computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deepalpha.errors import DataError
from deepalpha.portfolio.metrics import enhancement_metrics, yearly_table


def path(T=600, seed=0, drift=0.0002):
    rng = np.random.default_rng(seed)
    d = np.arange(np.datetime64("2019-01-01"), np.datetime64("2019-01-01") + 3 * T)
    dates = d[np.is_busday(d)][:T].astype("datetime64[D]")
    rb = rng.normal(0.0003, 0.012, T)
    rp = rb + rng.normal(drift, 0.003, T)
    rb[0] = rp[0] = 0.0
    return np.cumprod(1 + rp), np.cumprod(1 + rb), dates


def test_enhancement_metrics_by_hand():
    nav, bench, dates = path(drift=0.0005)
    m = enhancement_metrics(nav, bench, dates)
    n = len(nav) - 1
    rel = nav / bench
    assert m["excess_return"] == pytest.approx((rel[-1] / rel[0]) ** (252 / n) - 1)
    e = np.diff(nav) / nav[:-1] - np.diff(bench) / bench[:-1]
    te = np.std(e, ddof=1) * np.sqrt(252)
    assert m["tracking_error"] == pytest.approx(te)
    assert m["information_ratio"] == pytest.approx(m["excess_return"] / te)
    # max drawdown of the relative NAV by brute force
    dd = max(1 - rel[j] / rel[: j + 1].max() for j in range(len(rel)))
    assert m["excess_max_drawdown"] == pytest.approx(dd)
    # monthly win rate by a plain loop over months
    months = dates.astype("datetime64[M]")
    anchors = [rel[0]]
    for mo in np.unique(months):
        anchors.append(rel[np.nonzero(months == mo)[0][-1]])
    wins = [b > a for a, b in itertools.pairwise(anchors)]
    assert m["monthly_win_rate"] == pytest.approx(np.mean(wins))
    assert m["excess_return"] > 0.05  # the planted drift (0.05 %/day, ~13 %/yr) shows up


def test_turnover_costs_ex_ante():
    nav, bench, dates = path(T=253)
    costs = np.zeros(253)
    costs[1::21] = 0.001
    tv = np.full(12, 0.25)
    m = enhancement_metrics(
        nav, bench, dates, costs=costs, turnover=tv, ex_ante_te=np.full(12, 0.04)
    )
    assert m["turnover_per_rebalance"] == pytest.approx(0.25)
    assert m["turnover_annual"] == pytest.approx(3.0)  # 12 rebalances in exactly one year
    assert m["cost_annual"] == pytest.approx((costs[1:] / nav[:-1]).sum())
    assert m["ex_ante_te"] == pytest.approx(0.04)


def test_yearly_table_chains_to_total():
    nav, bench, dates = path(T=700, seed=2)
    rd = dates[5::20]
    tab = yearly_table(nav, bench, dates, turnover=np.full(rd.size, 0.1), rebalance_dates=rd)
    yrs = tab.filter(tab["year"] != "all")
    assert list(yrs["year"]) == ["2019", "2020", "2021"]
    total = np.prod(1 + yrs["excess_period_return"].to_numpy()) - 1
    allrow = tab.filter(tab["year"] == "all")
    assert total == pytest.approx(allrow["excess_period_return"][0])
    assert yrs["rebalances"].sum() == rd.size
    assert np.prod(1 + yrs["period_return"].to_numpy()) == pytest.approx(nav[-1] / nav[0])


def test_shape_mismatch_raises():
    nav, bench, dates = path(T=20)
    with pytest.raises(DataError):
        enhancement_metrics(nav, bench[:-1], dates)
