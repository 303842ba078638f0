"""Risk views of an enhancement backtest (issue 17 items 8, 9, 11): active exposures, return
attribution reconciled to 1e-10, ex-ante vs realised TE against the member proxy."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from test_portfolio_enhance import CFG, synthetic_market

from deepalpha.portfolio.benchmark import cap_weights
from deepalpha.portfolio.enhance import TRACKING_KEYS, design, run_enhancement, write_result


class WithFactorReturns:
    """An `ArrayRisk` plus the true factor returns in the model's convention (row t: t -> t+1)."""

    def __init__(self, arr, f, names):
        self.arr = arr
        self.periods_per_year = 252.0
        self.model = SimpleNamespace(dates=arr.dates, factor_returns=f, factor_names=names)

    def first_date(self):
        return self.arr.first_date()

    def inputs(self, t, idx):
        return self.arr.inputs(t, idx)


@pytest.fixture(scope="module")
def run():
    m = synthetic_market()
    arr = m["risk"]
    T, N = m["close"].shape
    X = design(arr.styles[0], arr.industry_ids, arr.n_industries)
    r = np.zeros((T, N))
    r[1:] = m["close"][1:] / m["close"][:-1] - 1
    # the planted factor returns: r[t] = f[t] X' + noise; model row t = f[t+1]
    f_day, *_ = np.linalg.lstsq(X, r.T, rcond=None)
    f = np.full((T, X.shape[1]), np.nan)
    f[:-1] = f_day.T[1:]
    names = ("country", *[f"ind{j}" for j in range(arr.n_industries)], "s0", "s1")
    risk = WithFactorReturns(arr, f, names)
    kw = {
        k: m[k]
        for k in ("dates", "close", "mktcap", "members", "suspended", "limit_up", "limit_down")
    }
    res = run_enhancement(m["truth"], risk=risk, config=CFG, **kw)
    return m, res, X, f


def test_exposures_are_held_minus_proxy(run):
    m, res, X, _ = run
    bt = res.backtest
    ex = res.risk.exposures
    K = X.shape[1]
    days = ex["date"].unique().sort()
    assert ex.height == days.len() * K
    t = int(np.searchsorted(m["dates"], np.datetime64(days[10], "D")))
    bw = cap_weights(m["mktcap"], m["members"])
    want = X.T @ (bt.weights[t].astype(np.float64) - bw[t])
    got = ex.filter(pl.col("date") == days[10])["active"].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-9)
    e = ex.filter(pl.col("date") == days[10])
    np.testing.assert_allclose(e["portfolio"] - e["benchmark"], e["active"], atol=1e-15)


def test_attribution_reconciles_to_the_nav(run):
    m, res, _, _ = run
    bt = res.backtest
    att = res.risk.attribution
    total = att["total"].to_numpy()
    parts = att["factor"].to_numpy() + att["specific"].to_numpy() + att["residual"].to_numpy()
    np.testing.assert_allclose(parts, total, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.cumsum(parts), np.cumsum(total), rtol=0, atol=1e-10)
    kinds = att["country"] + att["industry"] + att["style"]
    np.testing.assert_allclose(kinds.to_numpy(), att["factor"].to_numpy(), atol=1e-14)
    # total = portfolio minus proxy return of the day; residual = the day's costs (close
    # execution, no missing prices), up to the float32 storage of the held weights
    d = att["date"].to_numpy().astype("datetime64[D]")
    t = np.searchsorted(m["dates"], d)
    rp = bt.nav[t] / bt.nav[t - 1] - 1
    rb = bt.proxy_nav[t] / bt.proxy_nav[t - 1] - 1
    np.testing.assert_allclose(total, rp - rb, atol=1e-14)
    np.testing.assert_allclose(att["residual"].to_numpy(), -bt.costs[t] / bt.nav[t - 1], atol=1e-9)


def test_ex_ante_vs_realised_in_metrics_and_yearly(run, tmp_path):
    _, res, _, _ = run
    for k in TRACKING_KEYS:
        assert k in res.metrics and k in res.yearly.columns
    # the backtest's risk model is the true one: the held weights' forecast is unbiased
    assert 0.8 < res.metrics["te_ratio_held"] < 1.2
    assert 0.8 < res.metrics["bias_stat"] < 1.2
    y = res.risk.yearly
    np.testing.assert_allclose(
        y["te_ratio"].to_numpy(), (y["proxy_realised_te"] / y["ex_ante_te"]).to_numpy()
    )
    files = {p.name for p in write_result(res, tmp_path)}
    assert {
        "exposures.parquet",
        "attribution.parquet",
        "risk_daily.parquet",
        "risk_yearly.csv",
    } <= files
