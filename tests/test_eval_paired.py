"""Paired difference of two per-date series: hand-computed values, the HAC kernel, the block
bootstrap, and the size of the t-stat under overlapping labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepalpha.errors import DataError
from deepalpha.evaluate.ic import default_nw_lags, newey_west_se
from deepalpha.evaluate.paired import (
    block_bootstrap_means,
    block_length,
    hac_se,
    paired_difference,
)

NAN = np.nan
# common dates: 0, 1, 3, 5, 6 -> d = 4, -1, 3, 2, 0
A = np.array([5.0, 2.0, NAN, 4.0, 1.0, 3.0, 2.0])
B = np.array([1.0, 3.0, 2.0, 1.0, NAN, 1.0, 2.0])
D = np.array([4.0, -1.0, 3.0, 2.0, 0.0])


def same(r1: dict, r2: dict) -> bool:
    """Equal results, NaN equal to NaN."""
    return r1.keys() == r2.keys() and all(
        r1[k] == r2[k] or (isinstance(r1[k], float) and math.isnan(r1[k]) and math.isnan(r2[k]))
        for k in r1
    )


def test_hand_computed_tiny_series():
    r = paired_difference(A, B, seed=1)
    assert r["n"] == 5
    assert r["mean_a"] == pytest.approx(16 / 5) and r["mean_b"] == pytest.approx(8 / 5)
    assert r["mean_diff"] == pytest.approx(8 / 5)
    assert r["win_rate"] == pytest.approx(3 / 5)  # d = 0 is not a win
    # e = d - 1.6 = [2.4, -2.6, 1.4, 0.4, -1.6]
    g0 = (2.4**2 + 2.6**2 + 1.4**2 + 0.4**2 + 1.6**2) / 5  # 3.44
    g1 = (-2.6 * 2.4 + 1.4 * -2.6 + 0.4 * 1.4 + -1.6 * 0.4) / 5  # -1.992
    g2 = (1.4 * 2.4 + 0.4 * -2.6 + -1.6 * 1.4) / 5  # 0.016
    assert g0 == pytest.approx(3.44) and g1 == pytest.approx(-1.992) and g2 == pytest.approx(0.016)
    # lag 0: var(mean) = g0 / n; lag 1 (Bartlett weight 1/2): (g0 + 2 * 1/2 * g1) / n
    assert newey_west_se(D, 0) == pytest.approx(math.sqrt(3.44 / 5))
    assert newey_west_se(D, 1) == pytest.approx(math.sqrt((3.44 - 1.992) / 5))
    assert 1.6 / newey_west_se(D, 0) == pytest.approx(1.929, abs=1e-3)
    assert 1.6 / newey_west_se(D, 1) == pytest.approx(2.973, abs=1e-3)
    # horizon 1: Bartlett with default_nw_lags(5) = 2 lags (weights 2/3, 1/3)
    assert r["nw_lags"] == default_nw_lags(5) == 2 and r["nw_kernel"] == "bartlett"
    var2 = (g0 + 2 * (2 / 3) * g1 + 2 * (1 / 3) * g2) / 5
    assert r["t_nw"] == pytest.approx(1.6 / math.sqrt(var2))
    # bootstrap: block max(1, ceil(5^(1/3))) = 2; the interval covers the mean, inside [min, max]
    assert r["block"] == 2
    assert D.min() <= r["ci_low"] <= 1.6 <= r["ci_high"] <= D.max()
    assert math.isnan(r["ann_diff"])


def test_deterministic_for_a_seed_and_nan_alignment():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(300), rng.standard_normal(300)
    a[[3, 50]] = NAN
    b[[7, 50, 299]] = np.inf
    r1 = paired_difference(a, b, horizon=5, seed=7)
    assert same(r1, paired_difference(a, b, horizon=5, seed=7))
    r2 = paired_difference(a, b, horizon=5, seed=8)
    assert (r2["ci_low"], r2["ci_high"]) != (r1["ci_low"], r1["ci_high"])
    assert r2["t_nw"] == r1["t_nw"]
    ok = np.isfinite(a) & np.isfinite(b)
    assert r1["n"] == 296
    assert same(r1, paired_difference(a[ok], b[ok], horizon=5, seed=7))


def test_ann_diff_and_block():
    a = np.linspace(0.0, 0.01, 64)
    r = paired_difference(a, np.zeros(64), horizon=10, periods_per_year=252)
    assert r["ann_diff"] == pytest.approx(r["mean_diff"] * 252)
    assert r["block"] == 10 and r["horizon"] == 10
    assert block_length(64, 1) == 4 and block_length(27, 1) == 3 and block_length(28, 1) == 4


def test_too_few_dates_is_nan_and_bad_input_refused():
    r = paired_difference([1.0, 2.0, NAN], [0.0, 1.0, 1.0])
    assert r["n"] == 2
    for k in ("mean_a", "mean_b", "mean_diff", "win_rate", "t_nw", "ci_low", "ci_high", "block"):
        assert math.isnan(r[k]), k
    assert paired_difference([], [])["n"] == 0
    with pytest.raises(DataError, match="differ in length"):
        paired_difference(np.zeros(5), np.zeros(6))
    with pytest.raises(DataError, match="1-D"):
        paired_difference(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(DataError, match="horizon"):
        paired_difference(np.zeros(5), np.zeros(5), horizon=0)


def test_flat_top_kernel_weights():
    """2·NW(2M−1)² − NW(M−1)² = (γ0 + 2 Σ w_l γ_l)/n with w = 1 below M, 2 − l/M up to 2M."""
    rng = np.random.default_rng(3)
    e = rng.standard_normal(400)
    d = np.convolve(e, np.ones(10) / 10, mode="valid")
    se, lags, kernel = hac_se(d, 10)
    n, m = d.size, max(10, default_nw_lags(d.size) + 1)
    assert kernel == "flat-top" and lags == 2 * m - 1
    x = d - d.mean()
    s = x @ x / n
    for l in range(1, 2 * m):
        w = 1.0 if l < m else 2.0 - l / m
        s += 2 * w * (x[l:] @ x[:-l]) / n
    assert se == pytest.approx(math.sqrt(s / n))
    assert hac_se(d, 1) == (newey_west_se(d, default_nw_lags(n)), default_nw_lags(n), "bartlett")


def test_block_bootstrap_matches_index_construction():
    d = np.arange(10.0) ** 2
    got = block_bootstrap_means(d, 3, 50, np.random.default_rng(4))
    starts = np.random.default_rng(4).integers(0, 10 - 3 + 1, size=(50, 4))
    idx = (starts[:, :, None] + np.arange(3)).reshape(50, 12)[:, :10]
    np.testing.assert_allclose(got, d[idx].mean(axis=1))


def test_t_stat_size_with_overlapping_labels():
    """Null d_t = mean of h iid N(0,1) shocks (h = 10, n = 1,500): |t| > 1.96 in 3-8 % of 400
    simulations with the horizon-aware rule; Bartlett with default_nw_lags alone over-rejects."""
    h, n, sims = 10, 1500, 400
    rng = np.random.default_rng(2024)
    c = np.cumsum(rng.standard_normal((sims, n + h - 1)), axis=1)
    c = np.concatenate([np.zeros((sims, 1)), c], axis=1)
    d = (c[:, h:] - c[:, :-h]) / h  # [sims, n], overlapping by h - 1
    naive_lags = default_nw_lags(n)
    rule = naive = 0
    for x in d:
        rule += abs(x.mean() / hac_se(x, h)[0]) > 1.96
        naive += abs(x.mean() / newey_west_se(x, naive_lags)) > 1.96
    assert 0.03 <= rule / sims <= 0.08, rule / sims
    assert naive / sims > 0.10, naive / sims
