"""Fidelity fixes of the risk model (issue 17, items 1-6): each test fails on the code before
the fix and passes after it. Small synthetic panels; real-data checks live in
`test_risk_fidelity_real.py` and skip without ``../shared/data/cn``."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.data.panel import Panel
from deepalpha.risk.model import estimation_universe


def _panel(T: int = 80, N: int = 40, seed: int = 0, **masks: np.ndarray) -> Panel:
    rng = np.random.default_rng(seed)
    dates = np.busday_offset("2015-01-01", np.arange(T), roll="forward").astype("datetime64[D]")
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, N)), axis=0))
    cap = close * 1e8
    vol = np.full((T, N), 1e6)
    fields = ("close", "volume", "mktcap")
    data = np.stack([close, vol, cap]).astype(np.float32)
    listed = np.ones((T, N), dtype=bool)
    m = {"listed": listed, "suspended": np.zeros((T, N), dtype=bool), **masks}
    return Panel(data, dates, np.array([f"SH{600000 + i}" for i in range(N)]), fields, m)


def test_estu_ignores_a_market_wide_limit_day():
    """Item 2: 96 % of stocks locked at the limit on t must not empty the ESTU of t (the old
    ESTU dropped every stock that was not tradable on t)."""
    T, N = 80, 40
    up = np.zeros((T, N), dtype=bool)
    t = 50
    up[t, : int(0.96 * N)] = True
    p = _panel(T, N, limit_up=up, limit_down=np.zeros_like(up), tradable=~up)
    ind = np.arange(N) % 4
    estu, _ = estimation_universe(p, ind, min_days=20, list_dates=None)
    assert estu[t].sum() == N  # the membership does not move with day-t tradability
    assert (estu[t] == estu[t - 1]).all()


def test_estu_is_monthly_and_needs_age():
    T, N = 80, 10
    p = _panel(T, N)
    lst = p.masks["listed"].copy()
    lst[:30, 0] = False  # stock 0 lists on row 30
    p = p.with_masks(listed=lst)
    ind = np.zeros(N, dtype=int)
    estu, _ = estimation_universe(p, ind, min_days=10, list_dates=None)
    ends = np.nonzero(
        np.r_[p.dates.astype("datetime64[M]")[1:] != p.dates.astype("datetime64[M]")[:-1], True]
    )[0]
    first_in = int(np.argmax(estu[:, 0]))
    assert first_in in set(ends.tolist() + [0])  # joins only on a month end
    assert first_in >= 30 + 9
    # membership constant between month ends
    for a, b in zip(ends[:-1], ends[1:], strict=True):  # noqa: RUF007
        assert (estu[a:b] == estu[a][None]).all()


def test_regression_filters_on_the_return_day():
    """Item 2: a stock locked at the limit on t+1 leaves row t's regression; one locked on t
    stays (its t -> t+1 return is not censored)."""
    from deepalpha.risk.model import regression_mask

    T, N = 30, 6
    up = np.zeros((T, N), dtype=bool)
    up[10, 0] = True  # locked on day 10
    susp = np.zeros((T, N), dtype=bool)
    susp[12, 1] = True
    p = _panel(T, N, limit_up=up, limit_down=np.zeros_like(up), suspended=susp)
    ok = regression_mask(p)
    assert not ok[9, 0] and ok[10, 0]  # row 9 regresses the return of day 10 (censored)
    assert not ok[11, 1] and ok[12, 1]
    assert not ok[-1].any()


def test_value_yields_are_repriced_daily():
    """Item 1: pb / pe / dv_ratio are period-end values held for a quarter; the yields must move
    with the daily price (book / cap_t), not stay at the quarter-end level."""
    from deepalpha.risk.styles import DescriptorSource

    dates = np.busday_offset("2020-03-02", np.arange(90), roll="forward").astype("datetime64[D]")
    T, N = len(dates), 3
    close = np.full((T, N), 10.0)
    # the price doubles after the 03-31 quarter end (row of 2020-03-31 is the reference)
    q = int(np.searchsorted(dates, np.datetime64("2020-03-31"), "right")) - 1
    close[q + 5 :] = 20.0
    pb = np.full((T, N), np.nan)
    pb[q + 1 :] = 2.0  # the 03-31 value, usable from the first day after (03-31 is a trading day)
    pb[q] = 2.0
    pe = np.where(np.isfinite(pb), 10.0, np.nan)
    dv = np.where(np.isfinite(pb), 3.0, np.nan)
    src = DescriptorSource({"close": close, "pb": pb, "pe": pe, "dv_ratio": dv}, None, dates)
    btop = src.compute("BTOP")
    assert np.allclose(btop[q + 1 : q + 5], 0.5)
    assert np.allclose(btop[q + 5 :][dates[q + 5 :] < np.datetime64("2020-06-30")], 0.25)
    assert np.allclose(src.compute("ETOP")[q + 6], 0.05)
    assert np.allclose(src.compute("DTOP")[q + 6], 0.015)
    # at the next quarter end the reference moves: the ratio resets to 1 (new period value)
    r = int(np.searchsorted(dates, np.datetime64("2020-06-30"), "right")) - 1
    assert np.allclose(btop[r + 1], 0.5)  # pb still 2, reference price 20 = price 20


def test_reprice_reference_rows_never_look_ahead():
    from deepalpha.risk.descriptors import period_end_ref_rows

    d = np.array(
        ["2023-09-28", "2023-10-02", "2023-12-29", "2024-01-02", "2024-03-29", "2024-04-01"],
        dtype="datetime64[D]",
    )
    ref = period_end_ref_rows(d)
    assert ref.tolist() == [-1, 0, 0, 2, 2, 4]
    assert (ref <= np.arange(len(d))).all()


def test_missing_dividend_yield_is_zero_where_valuation_exists():
    """Item 3: dv_ratio NaN with a valid pb = no dividend -> DTOP 0 (the old code left NaN,
    later filled with an industry + Size prediction, i.e. an average yield)."""
    from deepalpha.risk.styles import DescriptorSource

    pb = np.array([[2.0, 2.0, np.nan]])
    dv = np.array([[1.5, np.nan, np.nan]])
    src = DescriptorSource({"close": np.ones((1, 3)), "pb": pb, "dv_ratio": dv})
    out = src.compute("DTOP")
    assert out[0, 0] == 0.015 and out[0, 1] == 0.0 and np.isnan(out[0, 2])


def test_growth_compares_the_same_report_period():
    """Item 4: YoY growth in report-period space mapped to days with the publication lag. The
    old 252-trading-day lag compares different report periods around the deadlines."""
    from deepalpha.data.fundamentals import to_daily
    from deepalpha.risk.descriptors import period_yoy, ttm_from_ytd, yoy_growth

    periods = np.array(
        [f"{y}-{md}" for y in (2018, 2019, 2020) for md in ("03-31", "06-30", "09-30", "12-31")],
        dtype="datetime64[D]",
    )
    # YTD EBIT: each quarter adds 10 * (1 + year index); Q-values distinct per year
    ytd = np.array([[10.0 * (1 + y) * (q + 1)] for y in range(3) for q in range(4)])
    g = period_yoy(periods, ytd)
    assert np.isnan(g[:4]).all()
    assert np.allclose(g[4:8, 0], (20 - 10) / 15)  # 2019 vs 2018, every quarter
    ttm = ttm_from_ytd(periods, ytd)
    assert ttm[7, 0] == 80.0  # annual 2019
    assert ttm[8, 0] == 30.0 + 80.0 - 20.0  # Q1 2020: YTD + last annual - last year's Q1
    dates = np.busday_offset("2019-01-02", np.arange(400), roll="forward").astype("datetime64[D]")
    daily = to_daily(periods, np.array(["SH600000"]), g, dates, np.array(["SH600000"]), lagged=True)
    # no value before the Q1 2019 report is due (04-30) -> first usable day 05-01 or later
    first = dates[np.isfinite(daily[:, 0])][0]
    assert first > np.datetime64("2019-04-30")
    # the old way on the daily YTD field: 252 days back often lands on another report period
    ebit_d = to_daily(
        periods, np.array(["SH600000"]), ytd, dates, np.array(["SH600000"]), lagged=True
    )
    old = yoy_growth(ebit_d, 252)[:, 0]
    new = daily[:, 0]
    both = np.isfinite(old) & np.isfinite(new)
    assert both.any() and not np.allclose(old[both], new[both])
    vals = new[np.isfinite(new)]
    assert np.all(np.isclose(vals, (20 - 10) / 15) | np.isclose(vals, (30 - 20) / 25))


# ------------------------------------------------------------------ item 5: CNE6 choices


def test_size_keeps_mega_caps_distinguishable():
    """Item 5: MAD winsorisation of LNCAP tied the largest caps at one exposure."""
    from deepalpha.risk.styles import DescriptorSource, compute_styles

    rng = np.random.default_rng(0)
    T, N = 3, 400
    cap = np.exp(rng.normal(22, 1.0, (1, N))).repeat(T, 0)
    cap[:, :10] = np.exp(np.linspace(27, 29, 10))  # ten mega caps, 5-7 sigma above the median
    src = DescriptorSource({"mktcap": cap, "close": np.ones((T, N))})
    estu = np.ones((T, N), dtype=bool)
    out = compute_styles(
        src, estu=estu, weight=np.sqrt(cap), ind_ids=np.zeros(N, dtype=int), n_ind=1,
        target=estu, styles=("Size",),
    )  # fmt: skip
    s = out[0, :10, 0]
    assert np.all(np.diff(s) > 0.05)  # strictly ordered, not clipped to one value


def test_hsigma_is_the_residual_volatility_of_the_beta_regression():
    from deepalpha.risk import descriptors as d
    from deepalpha.risk.styles import DescriptorSource

    rng = np.random.default_rng(1)
    T, N = 300, 5
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    src = DescriptorSource({"close": close, "mktcap": close * 1e8})
    beta, resid = d.ts_regression(src.ret, src.mkt, 504, 252, 126)
    np.testing.assert_allclose(src.compute("HSIGMA"), resid, equal_nan=True)
    np.testing.assert_allclose(src.compute("BETA"), beta, equal_nan=True)


def _styles_panel(T=900, N=60, seed=3):
    from deepalpha.risk.styles import DescriptorSource

    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.02, (T, N)) + rng.normal(0, 0.01, (T, 1))
    close = 10 * np.exp(np.cumsum(r, axis=0))
    shares = np.exp(rng.normal(20, 1, N))
    fields = {
        "close": close, "mktcap": close * shares, "shares": np.broadcast_to(shares, (T, N)),
        "volume": shares * np.exp(rng.normal(-4.5, 0.5, (T, N))),
    }  # fmt: skip
    return DescriptorSource(fields), rng


def _wls_coef(y, Z, w):
    D = np.column_stack([np.ones(len(y)), Z])
    W = w[:, None]
    return np.linalg.solve(D.T @ (W * D), D.T @ (w * y))


def test_long_term_reversal_is_orthogonal_to_momentum():
    from deepalpha.risk.styles import compute_styles

    src, _ = _styles_panel()
    T, N = src.cap.shape
    estu = np.ones((T, N), dtype=bool)
    w = np.sqrt(src.cap)
    out = compute_styles(
        src, estu=estu, weight=w, ind_ids=np.zeros(N, dtype=int), n_ind=1, target=estu,
        styles=("Momentum", "LongTermReversal"),
    )  # fmt: skip
    t = T - 1
    b = _wls_coef(out[t, :, 1].astype(float), out[t, :, 0].astype(float), w[t])
    assert abs(b[1]) < 1e-5


def test_residual_volatility_orthogonal_after_filling():
    """Item 5: stocks whose ResidualVolatility is filled must be orthogonal to Beta, Size and
    Liquidity too (the old code orthogonalised before filling)."""
    from deepalpha.risk.styles import compute_styles

    src, rng = _styles_panel(T=320, N=80)
    _, N = src.cap.shape
    # a quarter of the stocks start trading late: ESTU members with too short a history
    late = rng.random(N) < 0.25
    c = np.array(src.fields["close"])
    c[:250, late] = np.nan
    src.fields["close"] = c
    src.fields["mktcap"] = np.where(np.isfinite(c), src.fields["mktcap"], np.nan)
    src._cache.clear()
    estu = np.isfinite(c)
    w = np.where(estu, np.sqrt(np.nan_to_num(src.fields["mktcap"])), 0.0)
    ind = np.arange(N) % 3
    out = compute_styles(
        src, estu=estu, weight=w, ind_ids=ind, n_ind=3, target=estu,
        styles=("Size", "Beta", "ResidualVolatility", "Liquidity"),
    )  # fmt: skip
    t = 270  # late stocks listed 20 days: ResidualVolatility filled for them
    e = estu[t]
    y = out[t, e, 2].astype(float)
    Z = out[t, e][:, [1, 0, 3]].astype(float)
    b = _wls_coef(y, Z, w[t, e])
    assert np.abs(b[1:]).max() < 1e-6


def test_stable_preset_specific_halflife_and_shrinking_non_estu():
    from deepalpha.risk.model import RiskConfig
    from deepalpha.risk.specific import bayesian_shrink

    assert RiskConfig.preset("stable").specific_halflife == 252
    rng = np.random.default_rng(0)
    N = 200
    cap = np.exp(rng.normal(22, 1, N))
    sig = np.exp(rng.normal(-4, 0.3, N))
    estu = np.ones(N, dtype=bool)
    estu[:20] = False
    out = bayesian_shrink(sig, cap, estu=estu)
    assert not np.allclose(out[:20], sig[:20])  # non-ESTU stocks are shrunk too
    # toward their decile mean: never farther from it than before
    assert np.isfinite(out).all()


# ------------------------------------------------------------------ item 6: horizon


def test_horizon_sets_newey_west_lags_and_blocks():
    from deepalpha.risk.model import RiskConfig, _scaled

    cc, sc = _scaled(RiskConfig(horizon=21), "daily")
    assert cc.nw_lags == 20 and sc.nw_lags == 20
    cc, _ = _scaled(RiskConfig(horizon=1), "daily")
    assert cc.nw_lags == 0
    cc, _ = _scaled(RiskConfig(horizon=21, nw_lags=2), "daily")
    assert cc.nw_lags == 2


def test_bias_at_a_horizon_scores_h_day_sums():
    """Item 6: the bias statistic at horizon h standardises non-overlapping h-day sums by
    sqrt(h) times the one-day forecast; right forecasts give ~1 at every horizon, and
    positively autocorrelated returns scored without Newey-West are under-forecast at h > 1."""
    from test_risk_bias import simulated_model

    from deepalpha.risk.bias import bias_report, factor_z, horizon_blocks

    m = simulated_model(T=1200)
    starts, cov = horizon_blocks(m, 5)
    assert (np.diff(starts) > 0).all() and starts[0] == 0
    z = factor_z(m, 5)
    f = np.asarray(m.factor_returns, dtype=np.float64)
    C = np.asarray(m.factor_cov[cov[3]], dtype=np.float64)
    assert z[3, 0] == pytest.approx(f[starts[3] : starts[3] + 5, 0].sum() / np.sqrt(5 * C[0, 0]))
    rep = bias_report(m, horizon=5, n_portfolios=10, n_stocks=30)
    assert rep["horizon"] == 5 and rep["factor"]["median"] == pytest.approx(1.0, abs=0.12)
    # AR(1) factor returns (phi 0.3): the one-day forecast under-states 10-day risk
    g = np.array(m.factor_returns, dtype=np.float64)
    for t in range(1, len(g)):
        g[t] = 0.3 * g[t - 1] + np.sqrt(1 - 0.09) * g[t]
    m.factor_returns = g.astype(np.float32)
    assert bias_report(m, horizon=10, n_portfolios=5)["factor"]["median"] > 1.15


def test_newey_west_does_not_count_a_drift_as_risk():
    """Item 6: at long horizons (many NW lags) a factor with a steady drift must not get the
    drift's square once per lag added to its variance (the old zero-mean lagged moments did:
    ~11x the variance here)."""
    from deepalpha.risk.covariance import CovarianceConfig, factor_covariance
    from deepalpha.risk.specific import ts_specific_var

    rng = np.random.default_rng(0)
    T = 3000
    f = 0.01 + 0.01 * rng.standard_normal((T, 2))  # drift = noise std
    cfg = CovarianceConfig(
        vol_halflife=500, corr_halflife=500, nw_lags=10, eigen_sims=0, eigen_scale=0.0,
        vra_halflife=None, min_obs=50,
    )  # fmt: skip
    C, _, _ = factor_covariance(f, np.array([T - 1]), cfg)
    v = float(C[0, 0, 0])
    assert 1.5e-4 < v < 3.0e-4  # sigma^2 + mu^2 = 2e-4 (lag 0 about zero, by convention)
    s = ts_specific_var(f, 500, 10)[-1, 0]
    assert 1.5e-4 < s < 3.0e-4


def test_earnings_variability_over_five_fiscal_years():
    """Item 5 (obtainable, not forced): VERN from 5 annual reports (the fundamentals start in
    2005), mapped from the annual report's deadline."""
    from deepalpha.data.fundamentals import to_daily
    from deepalpha.risk.descriptors import annual_variability

    periods = np.array(
        [f"{y}-{md}" for y in range(2005, 2012) for md in ("06-30", "12-31")], dtype="datetime64[D]"
    )
    annual = np.array([100.0, 120.0, 80.0, 110.0, 90.0, 130.0, 70.0])
    vals = np.repeat(annual, 2)[:, None] * np.tile([0.5, 1.0], 7)[:, None]  # H1 = half the year
    ap, v = annual_variability(periods, vals)
    assert len(ap) == 7 and np.isnan(v[:2, 0]).all()  # < 3 years
    w = annual[:5]
    assert v[4, 0] == pytest.approx(np.std(w, ddof=1) / np.mean(np.abs(w)))
    w = annual[2:7]
    assert v[6, 0] == pytest.approx(np.std(w, ddof=1) / np.mean(np.abs(w)))
    dates = np.array(["2010-04-30", "2010-05-04"], dtype="datetime64[D]")
    d = to_daily(ap, np.array(["SH600000"]), v, dates, np.array(["SH600000"]), lagged=True)
    assert d[0, 0] == pytest.approx(v[3, 0]) and d[1, 0] == pytest.approx(
        v[4, 0]
    )  # 2009 from 05-01


def test_short_term_reversal_sign_and_lag():
    """Item 5: STREV is a reversal exposure (recent losers positive, as LongTermReversal) on a
    3-day mean lagged one day (today's return does not enter)."""
    from deepalpha.risk.descriptors import short_term_reversal

    T = 40
    lr = np.zeros((T, 2))
    lr[20, 0] = 0.1  # a winner on day 20
    lr[T - 1, 1] = -0.1  # a loser today
    s = short_term_reversal(lr)
    assert s[25, 0] < 0  # recent winner: negative reversal exposure
    assert s[T - 1, 1] == 0.0  # today's return is not in today's exposure
    assert s[T - 1, 0] < 0
