"""IC / RankIC / IC summary / decay: hand-computed values, scipy, statsmodels and alphalens."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from deepalpha.errors import DataError
from deepalpha.evaluate.ic import (
    forward_returns,
    ic,
    ic_decay,
    ic_summary,
    newey_west_se,
    rank_ic,
    rank_rows,
)

NAN = np.nan


def test_tiny_hand_computed():
    signal = np.array(
        [
            [1.0, 2.0, 3.0, 4.0],  # Pearson = Spearman = 4 / 5
            [1.0, 1.0, 2.0, 3.0],  # ties: ranks 1.5 1.5 3 4 vs 4 3 2 1 -> -4.5 / sqrt(22.5)
            [1.0, 2.0, NAN, NAN],  # 2 valid -> NaN
            [5.0, 5.0, 5.0, 5.0],  # constant -> NaN
            [NAN, NAN, NAN, NAN],  # all NaN -> NaN
        ]
    )
    label = np.array(
        [
            [1.0, 3.0, 2.0, 4.0],
            [4.0, 3.0, 2.0, 1.0],
            [1.0, 2.0, 3.0, 4.0],
            [1.0, 2.0, 3.0, 4.0],
            [1.0, 2.0, 3.0, 4.0],
        ]
    )
    r = rank_ic(signal, label)
    p = ic(signal, label)
    assert r[0] == pytest.approx(0.8, abs=1e-12)
    assert p[0] == pytest.approx(0.8, abs=1e-12)
    assert r[1] == pytest.approx(-4.5 / np.sqrt(22.5), abs=1e-12)
    # Pearson on raw values of row 1: x=[1,1,2,3] (mean 1.75), y=[4,3,2,1] (mean 2.5)
    dx = np.array([-0.75, -0.75, 0.25, 1.25])
    dy = np.array([1.5, 0.5, -0.5, -1.5])
    assert p[1] == pytest.approx(dx @ dy / np.sqrt((dx @ dx) * (dy @ dy)), abs=1e-12)
    assert np.isnan(r[2:]).all() and np.isnan(p[2:]).all()


def test_mask_excludes_stocks():
    signal = np.array([[1.0, 2.0, 3.0, 4.0, 100.0]])
    label = np.array([[1.0, 3.0, 2.0, 4.0, -100.0]])
    mask = np.array([[True, True, True, True, False]])
    assert rank_ic(signal, label, mask)[0] == pytest.approx(0.8)
    assert ic(signal, label, mask)[0] == pytest.approx(0.8)
    assert rank_ic(signal, label)[0] < 0.8


def _random_panel(rng, T=40, N=30, ties=True):
    s = rng.integers(0, 6, (T, N)).astype(float) if ties else rng.normal(size=(T, N))
    l = rng.normal(size=(T, N)) + 0.3 * np.nan_to_num(s)
    s[rng.random((T, N)) < 0.15] = NAN
    l[rng.random((T, N)) < 0.1] = NAN
    m = rng.random((T, N)) < 0.85
    s[5] = NAN  # an all-NaN date
    return s, l, m


@pytest.mark.parametrize("ties", [True, False])
def test_against_scipy_per_date(ties):
    rng = np.random.default_rng(3)
    s, l, m = _random_panel(rng, ties=ties)
    r, p = rank_ic(s, l, m), ic(s, l, m)
    for t in range(s.shape[0]):
        v = np.isfinite(s[t]) & np.isfinite(l[t]) & m[t]
        if v.sum() < 3:
            assert np.isnan(r[t]) and np.isnan(p[t])
            continue
        assert r[t] == pytest.approx(stats.spearmanr(s[t, v], l[t, v])[0], abs=1e-12)
        assert p[t] == pytest.approx(stats.pearsonr(s[t, v], l[t, v])[0], abs=1e-12)


def test_rank_rows_matches_rankdata():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 5, (6, 20)).astype(float)
    x[rng.random(x.shape) < 0.2] = NAN
    r = rank_rows(x)
    for t in range(6):
        v = np.isfinite(x[t])
        np.testing.assert_allclose(r[t, v], stats.rankdata(x[t, v]))
        assert np.isnan(r[t, ~v]).all()


def test_float32_input_and_blocks(monkeypatch):
    import deepalpha.evaluate.ic as mod

    rng = np.random.default_rng(5)
    s, l, m = _random_panel(rng, T=23, ties=False)
    full = rank_ic(s, l, m)
    monkeypatch.setattr(mod, "BLOCK", 4)  # several blocks, a ragged last one
    np.testing.assert_allclose(
        rank_ic(s.astype(np.float32), l.astype(np.float32), m), full, atol=1e-6
    )
    np.testing.assert_allclose(ic(s, l, m), mod.ic(s, l, m))


def test_shape_errors():
    with pytest.raises(DataError, match="label shape"):
        ic(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(DataError, match="mask shape"):
        rank_ic(np.zeros((3, 4)), np.zeros((3, 4)), np.ones((2, 4), bool))


@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_alphalens_ic_equal():
    pd = pytest.importorskip("pandas")
    al = pytest.importorskip("alphalens")
    rng = np.random.default_rng(7)
    T, N = 60, 25
    dates = pd.bdate_range("2021-01-04", periods=T)
    assets = [f"SH60{i:04d}" for i in range(N)]
    close = 10 * np.exp(np.cumsum(0.02 * rng.normal(size=(T, N)), axis=0))
    close[rng.random((T, N)) < 0.03] = NAN
    prices = pd.DataFrame(close, index=dates, columns=assets)
    fac = -(close / np.roll(close, 5, axis=0) - 1)
    fac[:5] = NAN
    fac[rng.random((T, N)) < 0.05] = NAN
    factor = pd.DataFrame(fac, index=dates, columns=assets).stack(future_stack=True).dropna()
    factor.index.names = ["date", "asset"]
    fd = al.utils.get_clean_factor_and_forward_returns(
        factor, prices, quantiles=5, periods=(1, 5), max_loss=1.0
    )
    al_ic = al.performance.factor_information_coefficient(fd)
    # our dense inputs: forward returns computed the alphalens way (ffill, t -> t+h)
    p = prices.ffill().to_numpy()
    present = np.zeros((T, N), bool)
    ti = dates.get_indexer(fd.index.get_level_values("date"))
    ni = pd.Index(assets).get_indexer(fd.index.get_level_values("asset"))
    present[ti, ni] = True
    for h, col in ((1, "1D"), (5, "5D")):
        label = np.full((T, N), NAN)
        label[: T - h] = p[h:] / p[: T - h] - 1
        ours = rank_ic(fac, label, present)
        got = al_ic[col].reindex(dates).to_numpy()
        ok = np.isfinite(got)
        assert ok.sum() > 40
        np.testing.assert_allclose(ours[ok], got[ok], atol=1e-6)
        # Pearson against the same factor_data, per date
        pear = ic(fac, label, present)
        for d, g in fd.groupby(level="date"):
            t = dates.get_loc(d)
            if len(g) >= 3:
                ref = stats.pearsonr(g["factor"], g[col])[0]
                assert pear[t] == pytest.approx(ref, abs=1e-6)


def test_ic_summary_values_and_newey_west():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(11)
    e = rng.normal(size=300)
    x = 0.03 + 0.05 * (e + 0.6 * np.roll(e, 1))  # autocorrelated
    x_nan = x.copy()
    x_nan[[3, 50]] = NAN
    s = ic_summary(x_nan, periods_per_year=12, nw_lags=4)
    f = x_nan[np.isfinite(x_nan)]
    assert s["n"] == 298
    assert s["mean"] == pytest.approx(f.mean())
    assert s["std"] == pytest.approx(f.std(ddof=1))
    assert s["icir"] == pytest.approx(f.mean() / f.std(ddof=1))
    assert s["icir_annualised"] == pytest.approx(s["icir"] * np.sqrt(12))
    assert s["win_rate"] == pytest.approx((f > 0).mean())
    assert s["t_stat"] == pytest.approx(f.mean() / f.std(ddof=1) * np.sqrt(298))
    fit = sm.OLS(f, np.ones_like(f)).fit(
        cov_type="HAC", cov_kwds={"maxlags": 4, "use_correction": False}
    )
    assert s["t_nw"] == pytest.approx(fit.tvalues[0], rel=1e-9)
    assert newey_west_se(f, 0) == pytest.approx(f.std(ddof=0) / np.sqrt(f.size))
    # positive autocorrelation widens the NW standard error
    assert abs(s["t_nw"]) < abs(s["t_stat"])


def test_ic_summary_empty():
    s = ic_summary(np.full(5, NAN), periods_per_year=252)
    assert s["n"] == 0 and np.isnan(s["mean"]) and np.isnan(s["t_nw"])
    with pytest.raises(DataError):
        ic_summary(np.zeros(3), periods_per_year=0)


def test_forward_returns_matches_loop():
    rng = np.random.default_rng(2)
    r = 0.01 * rng.normal(size=(12, 4))
    r[4, 1] = NAN
    f = forward_returns(r, 3)
    for t in range(12):
        for i in range(4):
            if t + 3 > 12 or np.isnan(r[t : t + 3, i]).any():
                assert np.isnan(f[t, i])
            else:
                assert f[t, i] == pytest.approx(np.prod(1 + r[t : t + 3, i]) - 1)
    np.testing.assert_allclose(forward_returns(r, 1), r)


def test_ic_decay():
    rng = np.random.default_rng(8)
    T, N = 120, 60
    s = rng.normal(size=(T, N))
    r = 0.01 * rng.normal(size=(T, N)) + 0.01 * s  # predicts only the first period
    d = ic_decay(s, r, horizons=(1, 5, 20))
    assert set(d) == {1, 5, 20}
    assert d[1] == pytest.approx(np.nanmean(rank_ic(s, r)))
    assert d[1] > d[5] > d[20] > 0


def test_argsort_rows_exact_including_fallback():
    from deepalpha.evaluate.ic import argsort_rows

    rng = np.random.default_rng(9)
    x = rng.normal(size=(5, 300))
    x[rng.random(x.shape) < 0.2] = NAN
    x[0, :4] = [-0.0, 0.0, -1e-300, 1e-300]
    x[1, :2] = [1.0 + 4e-16, 1.0]  # closer than the packed precision: falls back to argsort
    order, s = argsort_rows(x)
    np.testing.assert_array_equal(s, np.sort(x, axis=1))
    np.testing.assert_array_equal(np.take_along_axis(x, order, axis=1), s)
    assert sorted(order[2]) == list(range(300))


def test_rank_ic_many_equals_one_by_one():
    from deepalpha.evaluate.ic import rank_ic_many

    rng = np.random.default_rng(12)
    s, l, m = _random_panel(rng, ties=True)
    l2 = l.copy()
    l2[rng.random(l.shape) < 0.3] = NAN  # a different missing pattern: signal re-ranked there
    l3 = np.round(l, 1)  # many ties
    got = rank_ic_many(s, [l, l2, l3], m)
    for k, lab in enumerate([l, l2, l3]):
        np.testing.assert_allclose(got[k], rank_ic(s, lab, m), atol=1e-12, equal_nan=True)
        for t in range(s.shape[0]):
            v = np.isfinite(s[t]) & np.isfinite(lab[t]) & m[t]
            if v.sum() >= 3 and np.isfinite(got[k, t]):
                assert got[k, t] == pytest.approx(stats.spearmanr(s[t, v], lab[t, v])[0], abs=1e-12)


def test_argsort_rows_near_equal_runs():
    """Limit-move-like returns: equal to ~1e-16 relative, computed from different prices."""
    from deepalpha.evaluate.ic import argsort_rows

    rng = np.random.default_rng(13)
    p = rng.uniform(3, 60, size=(7, 500))
    x = (p * 1.1) / p - 1.0  # a handful of distinct values, all within a few ulps of 0.1
    x[:, ::3] = (p[:, ::3] * 0.9) / p[:, ::3] - 1.0
    assert 2 < len(np.unique(x[0])) < 10  # near-equal but distinct: the run repair is needed
    x[rng.random(x.shape) < 0.1] = NAN
    order, s = argsort_rows(x)
    np.testing.assert_array_equal(s, np.sort(x, axis=1))
    np.testing.assert_array_equal(np.take_along_axis(x, order, axis=1), s)
    r = rank_rows(x)
    for t in range(7):
        v = np.isfinite(x[t])
        np.testing.assert_allclose(r[t, v], stats.rankdata(x[t, v]))


def test_forward_returns_many_matches_loop():
    from deepalpha.evaluate.ic import forward_returns_many

    rng = np.random.default_rng(14)
    r = 0.02 * rng.normal(size=(40, 6))
    r[7, 2] = NAN
    hs = (1, 3, 5, 10, 20, 40, 41)
    got = forward_returns_many(r, hs)
    for h, g in zip(hs, got, strict=True):
        ref = np.full(r.shape, NAN)
        for t in range(40 - h + 1):
            ref[t] = np.prod(1 + r[t : t + h], axis=0) - 1
        np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_workers_give_identical_results(monkeypatch):
    import deepalpha.evaluate.ic as mod
    from deepalpha.evaluate.groups import quantile_groups

    monkeypatch.setattr(mod, "BLOCK", 8)  # several blocks
    rng = np.random.default_rng(15)
    s, l, m = _random_panel(rng, T=37)
    np.testing.assert_array_equal(rank_ic(s, l, m, workers=3), rank_ic(s, l, m))
    np.testing.assert_array_equal(ic(s, l, m, workers=2), ic(s, l, m))
    np.testing.assert_array_equal(
        quantile_groups(s, m, 5, workers=2), quantile_groups(s, m, 5, workers=1)
    )
