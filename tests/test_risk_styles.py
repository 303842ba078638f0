"""Industries, descriptors and the standardisation pipeline against slow references."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from deepalpha.errors import DataError
from deepalpha.risk import descriptors as d
from deepalpha.risk.industries import (
    GROUP_KEYS,
    SW_L1,
    TUSHARE_TO_SW,
    csrc_to_group,
    industry_ids,
    map_industries,
)
from deepalpha.risk.standardize import (
    combine,
    fill_missing,
    mad_winsorize,
    standardize,
    wls_residual,
)

# ----------------------------------------------------------------------------- industries


def test_tushare_table_covers_groups():
    assert len(TUSHARE_TO_SW) == 110
    assert set(TUSHARE_TO_SW.values()) == set(GROUP_KEYS)
    assert len(GROUP_KEYS) == 31


@pytest.mark.realdata
def test_all_real_names_map(cn_path):
    df = pl.read_csv(cn_path / "industry" / "stock_basic.csv")
    names = df["行业"].to_list()
    g = map_industries(names)
    assert set(np.unique(names)) <= set(TUSHARE_TO_SW)
    assert len(set(g)) == 31


def test_names_keys_csrc_and_errors():
    keys = [k for k, _ in SW_L1]
    cns = [c for _, c in SW_L1]
    assert map_industries(keys).tolist() == keys
    assert map_industries(cns).tolist() == keys
    assert map_industries(["银行", None], [None, "J66货币金融服务"]).tolist() == ["banks", "banks"]
    assert csrc_to_group("C39计算机、通信和其他电子设备制造业") == "electronics"
    assert csrc_to_group("K70") == "real_estate"
    with pytest.raises(DataError, match=r"2 industry names map to no group: \['不存在', '外星'\]"):
        map_industries(["银行", "外星", "不存在"])
    ids, names = industry_ids(np.array(["banks", "coal", None, "banks"], dtype=object))
    assert names == ("banks", "coal") and ids.tolist() == [0, 1, -1, 0]


# ----------------------------------------------------------------------------- descriptors


def slow_ew_sum(x, window, halflife):
    lam = 1.0 if halflife is None else 0.5 ** (1 / halflife)
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for s in range(min(window, t + 1)):
            v = x[t - s]
            out[t] += lam**s * np.where(np.isfinite(v), v, 0.0)
    return out


@pytest.mark.parametrize("halflife", [None, 5.0])
def test_ew_sum_matches_loop(halflife):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3))
    x[5, 1] = np.nan
    np.testing.assert_allclose(d.ew_sum(x, 17, halflife), slow_ew_sum(x, 17, halflife), atol=1e-12)


def test_ts_regression_matches_weighted_polyfit():
    rng = np.random.default_rng(1)
    T = 300
    m = rng.standard_normal(T) * 0.01
    r = 1.3 * m[:, None] + rng.standard_normal((T, 2)) * 0.01
    r[100:120, 1] = np.nan
    beta, hs = d.ts_regression(r, m, 120, 30.0, 60)
    t = 250
    lam = 0.5 ** (1 / 30)
    for i in range(2):
        idx = np.arange(t - 119, t + 1)
        ok = np.isfinite(r[idx, i])
        w = lam ** (t - idx[ok])
        b, a = np.polyfit(m[idx[ok]], r[idx[ok], i], 1, w=np.sqrt(w))
        assert beta[t, i] == pytest.approx(b, rel=1e-8)
        e = r[idx[ok], i] - a - b * m[idx[ok]]
        assert hs[t, i] == pytest.approx(np.sqrt((w * e**2).sum() / w.sum()), rel=1e-6)
    assert np.isnan(beta[50]).all()  # fewer than min_obs observations


def test_descriptors_use_only_past_rows():
    rng = np.random.default_rng(2)
    lr = rng.standard_normal((400, 4)) * 0.02
    to = np.exp(rng.standard_normal((400, 4))) * 0.01
    lr2, to2 = lr.copy(), to.copy()
    lr2[300:] += 0.5
    to2[300:] *= 5
    fns = [
        lambda a, b: d.momentum(a),
        lambda a, b: d.short_term_reversal(a),
        lambda a, b: d.cmra(a),
        lambda a, b: d.ew_std(a, 252, 42, 63),
        lambda a, b: d.turnover_log_sum(b, 21, 1),
        lambda a, b: d.atvr(b),
    ]
    for fn in fns:
        np.testing.assert_array_equal(fn(lr, to)[:300], fn(lr2, to2)[:300])
    # momentum at t ignores the last 11 days entirely
    lr3 = lr.copy()
    lr3[290:300] += 1.0
    np.testing.assert_array_equal(d.momentum(lr)[299], d.momentum(lr3)[299])


def test_cmra_and_growth_reference():
    rng = np.random.default_rng(3)
    lr = rng.standard_normal((300, 2)) * 0.02
    c = d.cmra(lr)
    t = 280
    z = [lr[t - 21 * k + 1 : t + 1].sum(axis=0) for k in range(1, 13)]
    np.testing.assert_allclose(c[t], np.max(z, axis=0) - np.min(z, axis=0), atol=1e-12)
    x = np.array([[1.0], [2.0], [-1.0]])
    g = d.yoy_growth(x, days=1)
    np.testing.assert_allclose(g[1:, 0], [1 / 1.5, -3 / 1.5])


# ----------------------------------------------------------------------------- standardise


def test_winsorize_and_standardize():
    rng = np.random.default_rng(4)
    T, N = 5, 500
    x = rng.standard_normal((T, N))
    x[:, 0] = 50.0
    estu = np.ones((T, N), dtype=bool)
    estu[:, -50:] = False
    cap = np.exp(rng.normal(3, 1, (T, N)))
    w = mad_winsorize(x, estu)
    med = np.median(x[:, :-50], axis=1)
    mad = np.median(np.abs(x[:, :-50] - med[:, None]), axis=1) * 1.4826
    np.testing.assert_allclose(w[:, 0], med + 3 * mad)
    z = standardize(w, cap, estu)
    cw = (z * cap * estu).sum(axis=1) / (cap * estu).sum(axis=1)
    np.testing.assert_allclose(cw, 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, :-50].std(axis=1, ddof=1), 1.0)
    assert np.isfinite(z[:, -50:]).all()  # applied outside the ESTU too


def test_combine_reweights_available():
    a = np.array([[1.0, np.nan, np.nan]])
    b = np.array([[3.0, 2.0, np.nan]])
    np.testing.assert_allclose(combine([a, b], [0.75, 0.25]), [[1.5, 2.0, np.nan]])


def test_wls_residual_orthogonal():
    rng = np.random.default_rng(5)
    T, N = 3, 400
    Z = rng.standard_normal((T, N, 2))
    y = Z @ np.array([0.5, -1.0]) + rng.standard_normal((T, N))
    w = rng.random((T, N))
    estu = rng.random((T, N)) < 0.8
    e = wls_residual(y, Z, w, estu)
    D = np.concatenate([np.ones((T, N, 1)), Z], axis=2)
    ww = w * estu
    np.testing.assert_allclose(np.einsum("tni,tn,tn->ti", D, ww, e), 0.0, atol=1e-9)


def test_fill_missing_by_industry_and_size():
    rng = np.random.default_rng(6)
    T, N, P = 2, 600, 4
    ind = rng.integers(0, P, N)
    size = rng.standard_normal((T, N))
    effect = np.array([0.5, -0.5, 1.0, 0.0])
    x = effect[ind][None, :] + 0.7 * size
    miss = rng.random((T, N)) < 0.2
    xm = np.where(miss, np.nan, x)
    estu = np.ones((T, N), dtype=bool)
    out = fill_missing(xm, ind, P, size, np.ones((T, N)), estu, np.ones((T, N), dtype=bool))
    np.testing.assert_allclose(out[miss], x[miss], atol=1e-9)
    np.testing.assert_array_equal(out[~miss], x[~miss])
    # an industry with no observations falls back to its median (none here -> 0)
    xm2 = xm.copy()
    xm2[:, ind == 3] = np.nan
    out2 = fill_missing(xm2, ind, P, size, np.ones((T, N)), estu, np.ones((T, N), dtype=bool))
    assert np.all(out2[:, ind == 3] == 0.0)


def test_nanmedian_rows_matches_numpy():
    from deepalpha.risk.standardize import nanmedian_rows

    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 701))
    x[0, ::2] = np.nan
    x[1] = np.nan
    x[2, 1:] = np.nan
    x[3, :-2] = np.nan
    with pytest.warns(RuntimeWarning):
        ref = np.nanmedian(x, axis=1)
    np.testing.assert_array_equal(nanmedian_rows(x), ref)
