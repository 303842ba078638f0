"""Per-date z-score and signal combination; trailing-IC weights never use unknown ICs."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.errors import ConfigError, DataError
from deepalpha.evaluate.ic import rank_ic
from deepalpha.signal.combine import combine, trailing_ic_weights, zscore

NAN = np.nan


def test_zscore_hand():
    x = np.array([[1.0, 2.0, 3.0, NAN], [5.0, NAN, NAN, NAN], [2.0, 2.0, 2.0, 2.0]])
    z = zscore(x)
    np.testing.assert_allclose(z[0, :3], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])
    assert np.isnan(z[0, 3]) and np.isnan(z[1]).all() and np.isnan(z[2]).all()
    m = np.array([[True, True, False, True]] * 3)
    np.testing.assert_allclose(zscore(x, m)[0, :2], [-1.0, 1.0])
    assert np.isnan(zscore(x, m)[0, 2])
    np.testing.assert_allclose(zscore(x, ddof=1)[0, :3], [-1.0, 0.0, 1.0])
    with pytest.raises(DataError):
        zscore(np.zeros(3))


def _signals(rng, T=80, N=60):
    label = rng.normal(size=(T, N))
    good = label + 1.0 * rng.normal(size=(T, N))
    weak = 0.2 * label + rng.normal(size=(T, N))
    noise = rng.normal(size=(T, N))
    return label, [good, weak, noise]


def test_equal_and_fixed_weights():
    rng = np.random.default_rng(0)
    _, sigs = _signals(rng, T=10, N=20)
    s = sigs[0]
    np.testing.assert_allclose(combine([s, 3 * s + 1], "equal"), zscore(s), atol=1e-12)
    z = [zscore(x) for x in sigs]
    raw = combine(sigs, [0.5, 0.3, 0.2], rezscore=False)
    np.testing.assert_allclose(raw, 0.5 * z[0] + 0.3 * z[1] + 0.2 * z[2], atol=1e-12)
    # a stock missing in one signal gets the renormalised mean of the others
    s2 = sigs[1].copy()
    s2[0, 0] = NAN
    out = combine([sigs[0], s2], "equal", rezscore=False)
    assert out[0, 0] == pytest.approx(zscore(sigs[0])[0, 0])


def ref_trailing_weights(ics, known_after, lookback, min_periods, method, allow_negative):
    T, K = ics.shape
    w = np.full((T, K), NAN)
    for t in range(T):
        raw = np.zeros(K)
        for k in range(K):
            window = [
                ics[s, k]
                for s in range(max(0, t - known_after - lookback + 1), t - known_after + 1)
            ]
            window = np.array([x for x in window if np.isfinite(x)])
            if len(window) >= min_periods:
                v = window.mean() if method == "mean" else window.mean() / window.std(ddof=1)
                raw[k] = v if np.isfinite(v) else 0.0
        if not allow_negative:
            raw = np.maximum(raw, 0)
        if np.abs(raw).sum() > 0:
            w[t] = raw / np.abs(raw).sum()
    return w


@pytest.mark.parametrize("method", ["mean", "icir"])
@pytest.mark.parametrize("allow_negative", [False, True])
def test_trailing_weights_vs_loop(method, allow_negative):
    rng = np.random.default_rng(1)
    ics = rng.normal(0.02, 0.1, size=(50, 3))
    ics[rng.random(ics.shape) < 0.1] = NAN
    ics[:, 2] -= 0.05
    got = trailing_ic_weights(
        ics, known_after=3, lookback=8, min_periods=3, method=method, allow_negative=allow_negative
    )
    ref = ref_trailing_weights(ics, 3, 8, 3, method, allow_negative)
    np.testing.assert_allclose(got, ref, atol=1e-10, equal_nan=True)
    assert np.isnan(got[:5]).all()  # nothing known yet


def test_ic_weights_prefer_the_informative_signal():
    rng = np.random.default_rng(2)
    label, sigs = _signals(rng)
    out, w = combine(sigs, "ic", label, horizon=1, lookback=20, return_weights=True)
    late = w[40:]
    assert (late[:, 0] > late[:, 1]).all() and (late[:, 1] > late[:, 2]).mean() > 0.8
    assert np.nanmean(rank_ic(out[40:], label[40:])) > np.nanmean(rank_ic(sigs[1][40:], label[40:]))
    assert np.isnan(out[:2]).all()  # IC of date 0 is known only at date horizon + 1 = 2


def test_ic_weights_use_no_future_ics():
    """Perturb every label not fully realised by date D: weights and scores up to D unchanged."""
    rng = np.random.default_rng(3)
    label, sigs = _signals(rng)
    h, D = 5, 45
    kw = dict(horizon=h, lookback=10, return_weights=True)
    out1, w1 = combine(sigs, "ic", label, **kw)
    lab2 = label.copy()
    # label[s] spans closes s+1 .. s+1+h, so it is known at D only when s + 1 + h <= D
    lab2[D - h :] = rng.normal(size=lab2[D - h :].shape)
    out2, w2 = combine(sigs, "ic", lab2, **kw)
    np.testing.assert_array_equal(w1[: D + 1], w2[: D + 1])
    np.testing.assert_array_equal(out1[: D + 1], out2[: D + 1])
    assert not np.allclose(w1[D + 1 :], w2[D + 1 :], equal_nan=True)  # the perturbation bites later
    # a label known exactly at D does move the weights at D (the test can fail)
    lab3 = label.copy()
    lab3[D - h - 1] = -label[D - h - 1]
    _, w3 = combine(sigs, "ic", lab3, **kw)
    np.testing.assert_array_equal(w1[:D], w3[:D])
    assert not np.allclose(w1[D], w3[D])


def test_combine_errors():
    s = np.zeros((4, 5))
    with pytest.raises(ConfigError):
        combine([], "equal")
    with pytest.raises(ConfigError, match="labels"):
        combine([s], "ic")
    with pytest.raises(ConfigError):
        combine([s], "median")
    with pytest.raises(ConfigError):
        combine([s, s], [1.0, 2.0, 3.0])
    with pytest.raises(DataError):
        combine([s, np.zeros((4, 6))])
    with pytest.raises(ConfigError, match="known_after"):
        trailing_ic_weights(np.zeros((4, 2)), known_after=0, lookback=3)
