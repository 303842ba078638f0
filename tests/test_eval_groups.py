"""Quantile groups, group returns and turnover against slow per-date loops and alphalens."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.errors import DataError
from deepalpha.evaluate.groups import (
    group_mean,
    group_returns,
    group_turnover,
    long_short,
    qcut_quantiles,
    quantile_groups,
    rebalance_dates,
)

NAN = np.nan


# ---------------------------------------------------------------- slow references
def ref_groups_1d(x: np.ndarray, n: int) -> np.ndarray:
    """One cross-section: qcut-style label by comparing with np.quantile edges."""
    edges = np.quantile(x, qcut_quantiles(n))
    return np.array([sum(v > e for e in edges[1:-1]) for v in x])


def ref_quantile_groups(signal, mask, n, industry=None):
    T, N = signal.shape
    out = np.full((T, N), -1)
    for t in range(T):
        v = np.isfinite(signal[t]) & (True if mask is None else mask[t])
        if industry is None:
            segs = [v]
        else:
            segs = [v & (industry == k) for k in np.unique(industry) if k >= 0]
        for sv in segs:
            if sv.any():
                out[t, sv] = ref_groups_1d(signal[t, sv], n)
    return out


def ref_group_returns(groups, r, h, n):
    """Loop over dates, tracking each group's per-stock holdings value."""
    T = groups.shape[0]
    out = np.full((T, n), NAN)
    r = np.nan_to_num(r)
    for g in range(n):
        hold = None
        for t in range(T):
            if t % h == 0:
                members = np.flatnonzero(groups[t] == g)
                hold = {i: 1.0 / len(members) for i in members} if len(members) else None
            if hold is None:
                continue
            before = sum(hold.values())
            for i in hold:
                hold[i] *= 1 + r[t, i]
            out[t, g] = sum(hold.values()) / before - 1
    return out


def ref_turnover(groups, h, n, r=None):
    T, N = groups.shape
    reb = list(range(0, T, h))
    out = np.full((len(reb), n), NAN)
    for g in range(n):
        for k in range(1, len(reb)):
            old = groups[reb[k - 1]] == g
            new = groups[reb[k]] == g
            if not old.any() or not new.any():
                continue
            w_old = old / old.sum()
            if r is not None:
                grow = np.prod(1 + np.nan_to_num(r[reb[k - 1] : reb[k]]), axis=0)
                w_old = w_old * grow / (w_old * grow).sum()
            w_new = new / new.sum()
            out[k, g] = sum(max(w_new[i] - w_old[i], 0.0) for i in range(N))
    return out


def _panel(rng, T=30, N=40, ties=False):
    s = rng.integers(0, 7, (T, N)).astype(float) if ties else rng.normal(size=(T, N))
    s[rng.random((T, N)) < 0.1] = NAN
    s[3] = NAN
    m = rng.random((T, N)) < 0.9
    r = 0.02 * rng.standard_t(4, size=(T, N))
    r[rng.random((T, N)) < 0.05] = NAN
    return s, m, r


# ------------------------------------------------------------------------- tests
def test_tiny_hand_example():
    s = np.array([[4.0, 1.0, 3.0, 2.0, NAN, 0.0]])
    g = quantile_groups(s, None, n_groups=2)
    # 5 valid values 0..4 -> median edge 2 (right-closed): {0,1,2} low, {3,4} high
    np.testing.assert_array_equal(g, [[1, 0, 1, 0, -1, 0]])
    assert g.dtype == np.int8


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [5, 10])
def test_quantile_groups_vs_loop(ties, n):
    rng = np.random.default_rng(n + ties)
    s, m, _ = _panel(rng, ties=ties)
    np.testing.assert_array_equal(quantile_groups(s, m, n), ref_quantile_groups(s, m, n))


def test_industry_neutral_vs_loop():
    rng = np.random.default_rng(1)
    s, m, _ = _panel(rng)
    ind = rng.integers(-1, 4, s.shape[1])  # -1 = unknown industry, excluded
    got = quantile_groups(s, m, 3, industry=ind)
    np.testing.assert_array_equal(got, ref_quantile_groups(s, m, 3, ind))
    assert (got[:, ind < 0] == -1).all()
    # [T, N] industry array gives the same as [N]
    np.testing.assert_array_equal(got, quantile_groups(s, m, 3, np.tile(ind, (s.shape[0], 1))))


def test_quantile_groups_match_pandas_qcut():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.choice([3, 5, 10]))
        x = rng.integers(0, 12, (1, 37)).astype(float)
        try:
            ref = pd.qcut(x[0], n, labels=False)
        except ValueError:  # duplicate edges: pandas refuses, we keep ties together
            continue
        np.testing.assert_array_equal(quantile_groups(x, None, n)[0], ref)


def test_quantile_groups_errors():
    with pytest.raises(DataError, match="n_groups"):
        quantile_groups(np.zeros((2, 3)), None, 0)
    with pytest.raises(DataError, match="industry codes"):
        quantile_groups(np.zeros((2, 3)), None, 2, industry=np.array([0.5, 1, 2]))


@pytest.mark.parametrize("h", [1, 3, 7])
def test_group_returns_vs_loop(h):
    rng = np.random.default_rng(h)
    s, m, r = _panel(rng)
    g = quantile_groups(s, m, 5)
    got = group_returns(g, r, h, 5)
    ref = ref_group_returns(g, r, h, 5)
    np.testing.assert_allclose(got, ref, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(long_short(got), got[:, 4] - got[:, 0], equal_nan=True)


def test_group_returns_hand_example():
    groups = np.array([[0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.int8)
    r = np.array([[0.1, -0.1, 0.0, 0.2], [0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    got = group_returns(groups, r, 2, 2)
    # group 0 holds stocks 0,1 for dates 0-1: values .55,.45 -> 1.0, then .605,.45 -> 1.055
    assert got[0, 0] == pytest.approx(0.0)
    assert got[1, 0] == pytest.approx(0.055)
    # group 1 holds stocks 2,3: 0.5, 0.6 -> 1.1, then unchanged
    assert got[0, 1] == pytest.approx(0.1)
    assert got[1, 1] == pytest.approx(0.0)
    # date 2 rebalances from groups[2] (date 1's groups are ignored)
    assert got[2, 0] == pytest.approx(0.0)


@pytest.mark.parametrize("h", [1, 4])
@pytest.mark.parametrize("drift", [False, True])
def test_turnover_vs_loop(h, drift):
    rng = np.random.default_rng(10 + h)
    s, m, r = _panel(rng)
    g = quantile_groups(s, m, 5)
    got = group_turnover(g, h, 5, r if drift else None)
    ref = ref_turnover(g, h, 5, r if drift else None)
    assert got.shape == (len(rebalance_dates(s.shape[0], h)), 5)
    np.testing.assert_allclose(got, ref, atol=1e-12, equal_nan=True)
    assert np.isnan(got[0]).all()


def test_turnover_extremes():
    g = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]], dtype=np.int8)
    t = group_turnover(g, 1, 2)
    np.testing.assert_allclose(t[1:], [[0.0, 0.0], [1.0, 1.0]])


def test_group_mean():
    g = np.array([[0, 1, 1, -1], [1, 1, 0, 0]], dtype=np.int8)
    v = np.array([[1.0, 2.0, 4.0, 100.0], [1.0, NAN, 3.0, 5.0]])
    np.testing.assert_allclose(group_mean(g, v, 3), [[1.0, 3.0, NAN], [4.0, 1.0, NAN]])


@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_alphalens_quantiles_and_means():
    pd = pytest.importorskip("pandas")
    al = pytest.importorskip("alphalens")
    rng = np.random.default_rng(21)
    T, N = 40, 30
    dates = pd.bdate_range("2022-03-01", periods=T)
    assets = [f"SZ00{i:04d}" for i in range(N)]
    close = 20 * np.exp(np.cumsum(0.02 * rng.normal(size=(T, N)), axis=0))
    prices = pd.DataFrame(close, index=dates, columns=assets)
    fac = rng.normal(size=(T, N))
    fac[rng.random((T, N)) < 0.1] = NAN
    factor = pd.DataFrame(fac, index=dates, columns=assets).stack(future_stack=True).dropna()
    factor.index.names = ["date", "asset"]
    fd = al.utils.get_clean_factor_and_forward_returns(
        factor, prices, quantiles=5, periods=(1,), max_loss=1.0
    )
    present = np.zeros((T, N), bool)
    ti = dates.get_indexer(fd.index.get_level_values("date"))
    ni = pd.Index(assets).get_indexer(fd.index.get_level_values("asset"))
    present[ti, ni] = True
    g = quantile_groups(fac, present, 5)
    np.testing.assert_array_equal(g[ti, ni] + 1, fd["factor_quantile"].to_numpy())
    assert (g[~present] == -1).all()
    label = np.full((T, N), NAN)
    label[:-1] = close[1:] / close[:-1] - 1
    mr, _ = al.performance.mean_return_by_quantile(fd, by_date=True, demeaned=False)
    ours = group_mean(g, np.where(present, label, NAN), 5)
    for (q, d), val in mr["1D"].items():
        assert ours[dates.get_loc(d), int(q) - 1] == pytest.approx(val, abs=1e-12)
