"""Preprocessing, Alpha360 sequences and labels against slow, obviously-correct references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from test_train_helpers import make_panel

from deepalpha.data.panel import Panel
from deepalpha.errors import ConfigError, DataError
from deepalpha.features.labels import forward_return, label_known_index, ranked_forward_return
from deepalpha.features.preprocess import (
    fill_missing,
    mad_winsorize,
    nanmedian,
    rank_normalize,
    robust_zscore,
)
from deepalpha.features.sequences import (
    SEQ_FIELDS,
    SequenceSource,
    normalize_window,
    sequence_features,
    windows,
)


def _ref_zscore_1d(v: np.ndarray, clip: float | None) -> np.ndarray:
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v)
    if not ok.any():
        return out
    x = v[ok].astype(np.float64)
    med = np.median(x)
    mad = np.median(np.abs(x - med)) * 1.4826
    scale = mad if mad > 1e-12 else np.sqrt(np.mean((x - med) ** 2))
    z = (x - med) / scale if scale > 1e-12 else np.zeros_like(x)
    if clip is not None:
        z = np.clip(z, -clip, clip)
    out[ok] = z
    return out


@pytest.fixture
def messy():
    rng = np.random.default_rng(3)
    x = rng.standard_t(3, size=(7, 41)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[2, 5] = np.inf
    x[4] = np.nan  # an all-missing date
    x[5, :30] = 1.0  # MAD = 0: falls back to the std
    x[6] = 2.0  # constant: z = 0
    return x


def test_nanmedian_matches_numpy(messy):
    ref = np.array(
        [np.nan if not np.isfinite(r).any() else np.median(r[np.isfinite(r)]) for r in messy]
    )
    np.testing.assert_allclose(nanmedian(messy, axis=1), ref, rtol=1e-6)
    np.testing.assert_allclose(nanmedian(messy.T, axis=0), ref, rtol=1e-6)


@pytest.mark.parametrize("clip", [3.0, None])
def test_robust_zscore_matches_reference(messy, clip):
    got = robust_zscore(messy, axis=1, clip=clip)
    ref = np.stack([_ref_zscore_1d(np.where(np.isfinite(r), r, np.nan), clip) for r in messy])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    assert np.isnan(got[2, 5]) and np.isnan(got[4]).all()
    assert (got[6] == 0).all()
    # axis handling: same along axis 0 of the transpose
    np.testing.assert_allclose(robust_zscore(messy.T, axis=0, clip=clip), got.T, rtol=1e-6)


def test_mad_winsorize_bounds(messy):
    w = mad_winsorize(messy, axis=1, n_mad=2.0)
    r = messy[0][np.isfinite(messy[0])]
    med = np.median(r)
    mad = np.median(np.abs(r - med)) * 1.4826
    ok = np.isfinite(w[0])
    assert w[0][ok].max() <= med + 2 * mad + 1e-6
    assert w[0][ok].min() >= med - 2 * mad - 1e-6
    inside = np.abs(messy[0] - med) < 2 * mad
    np.testing.assert_array_equal(w[0][inside], messy[0][inside])


def test_rank_normalize_matches_scipy_and_is_centred():
    x = np.array([[3.0, 1.0, np.nan, 2.0, 2.0], [5.0, np.nan, np.nan, np.nan, np.nan]])
    got = rank_normalize(x, axis=1)
    valid = x[0][np.isfinite(x[0])]
    r = rankdata(valid)
    ref = ((r - 0.5) / len(valid) - 0.5) * np.sqrt(12)
    np.testing.assert_allclose(got[0][np.isfinite(x[0])], ref, rtol=1e-6)
    assert np.isnan(got[0, 2])
    assert got[1, 0] == 0.0 and np.isnan(got[1, 1:]).all()
    big = rank_normalize(np.random.default_rng(0).normal(size=(3, 5001)), axis=1)
    np.testing.assert_allclose(big.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(big.var(axis=1), 1, atol=1e-3)


def test_fill_missing():
    x = np.array([1.0, np.nan, np.inf, -2.0], dtype=np.float32)
    np.testing.assert_array_equal(fill_missing(x, 0.0), [1, 0, 0, -2])
    assert fill_missing(x).dtype == np.float32


# ----------------------------------------------------------------------------- labels
def test_forward_return_matches_loop():
    rng = np.random.default_rng(1)
    p = np.exp(rng.normal(size=(30, 4)).cumsum(0)).astype(np.float32)
    p[10, 1] = np.nan
    p[12, 2] = 0.0
    h = 5
    got = forward_return(p, h)
    ref = np.full(p.shape, np.nan)
    for t in range(30):
        for i in range(4):
            if t + 1 + h < 30:
                a, b = float(p[t + 1, i]), float(p[t + 1 + h, i])
                if np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0:
                    ref[t, i] = b / a - 1
    np.testing.assert_allclose(got, ref, rtol=1e-6, equal_nan=True)
    assert np.isnan(got[-(h + 1) :]).all() and np.isfinite(got[: -(h + 1), 0]).all()
    assert label_known_index(7, h) == 13
    rk = ranked_forward_return(p, h)
    np.testing.assert_allclose(np.nanmean(rk[:5], axis=1), 0, atol=1e-6)
    with pytest.raises(ConfigError):
        forward_return(p, 0)


def test_label_uses_only_future_after_t():
    p = make_panel(T=60, N=8)
    close = p.field("close").copy()
    y = forward_return(close, 3)
    close2 = close.copy()
    close2[:11] *= 1.7  # change everything up to t+1 = 10 ... labels from t >= 10 unchanged
    np.testing.assert_array_equal(forward_return(close2, 3)[10:], y[10:])


# ----------------------------------------------------------------------------- sequences
def test_windows_are_views():
    a = np.arange(20, dtype=np.float32).reshape(10, 2)
    w = windows(a, 4)
    assert w.shape == (7, 2, 4) and np.shares_memory(w, a)
    np.testing.assert_array_equal(w[2, 1], a[2:6, 1])
    with pytest.raises(ConfigError):
        windows(a, 11)


def _ref_sequence(panel: Panel, t: int, L: int, idx: np.ndarray) -> np.ndarray:
    out = np.zeros((len(idx), L, len(SEQ_FIELDS)))
    for j, i in enumerate(idx):
        c_t = float(panel.field("close")[t, i])
        v_t = float(panel.field("volume")[t, i])
        for k, f in enumerate(SEQ_FIELDS):
            for s in range(L):
                d = t - L + 1 + s
                if f == "vwap":
                    val = (
                        float(panel.field("high")[d, i])
                        + float(panel.field("low")[d, i])
                        + float(panel.field("close")[d, i])
                    ) / 3
                else:
                    val = float(panel.field(f)[d, i])
                out[j, s, k] = val / (v_t if f == "volume" else c_t)
    for s in range(L):
        for k in range(len(SEQ_FIELDS)):
            out[:, s, k] = _ref_zscore_1d(out[:, s, k], 3.0)
    return out


def test_sequence_features_match_reference():
    p = make_panel(T=40, N=12)
    src = SequenceSource.from_panel(p)
    assert src.vwap_source == "typical"
    idx = np.array([0, 3, 4, 7, 11])
    x, valid = sequence_features(src, 30, 8, idx)
    assert x.shape == (5, 8, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x, _ref_sequence(p, 30, 8, idx), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(valid, 1.0)
    # last step of close and volume is 1 for everyone: a constant column -> 0
    assert (x[:, -1, SEQ_FIELDS.index("close")] == 0).all()


def test_sequence_features_ignore_the_future():
    p = make_panel(T=40, N=12)
    x, _ = sequence_features(SequenceSource.from_panel(p), 25, 10)
    p.data[:, 26:] *= np.float32(3.0)  # perturb everything after t
    p.data[:, 26:, 0] = np.nan
    x2, _ = sequence_features(SequenceSource.from_panel(p), 25, 10)
    np.testing.assert_array_equal(x, x2)


def _with_shares(p: Panel, shares: np.ndarray) -> Panel:
    data = np.concatenate([p.data, shares[None].astype(np.float32)], axis=0)
    return Panel(data, p.dates, p.assets, (*p.fields, "shares"), dict(p.masks))


def test_turnover_field_is_volume_over_shares_zscored_across_stocks():
    """The optional ``turnover`` sequence field: volume / shares, z-scored across stocks only
    (its level is the information), never reading past t; without shares a clear error."""
    p = make_panel(T=40, N=12)
    rng = np.random.default_rng(1)
    shares = rng.uniform(1e6, 5e7, size=(40, 12))
    shares[:, 3] = 0.0  # unknown shares: NaN turnover, the stock's window is invalid
    q = _with_shares(p, shares)
    fields = (*SEQ_FIELDS, "turnover")
    src = SequenceSource.from_panel(q, fields)
    idx = np.arange(12)
    x, valid = sequence_features(src, 30, 8, idx)
    assert x.shape == (12, 8, 7)
    ok = idx != 3
    np.testing.assert_allclose(x[:, :, :6][ok], sequence_features(
        SequenceSource.from_panel(p), 30, 8, idx
    )[0][ok], rtol=1e-5, atol=1e-5)  # fmt: skip
    with np.errstate(divide="ignore"):
        turn = p.field("volume")[23:31] / shares[23:31]
    for s in range(8):
        want = _ref_zscore_1d(np.where(ok, turn[s], np.nan), 3.0)
        np.testing.assert_allclose(x[ok, s, 6], want[ok], rtol=1e-4, atol=1e-4)
    assert np.isnan(x[3, :, 6]).all() and valid[3] < 1.0
    shares2 = shares.copy()
    shares2[31:] *= 7.0  # the future changes, the past does not
    x2, _ = sequence_features(SequenceSource.from_panel(_with_shares(p, shares2), fields), 30, 8)
    np.testing.assert_array_equal(sequence_features(src, 30, 8)[0], x2)
    with pytest.raises(DataError, match="shares"):
        SequenceSource.from_panel(p, fields)


def test_sequence_missing_and_errors():
    p = make_panel(T=30, N=6)
    raw = SequenceSource.from_panel(p).raw_window(20, 5)
    raw[1, 2, 0] = np.nan
    raw[2, -1, 3] = 0.0  # no last close: the whole row is missing
    z, valid = normalize_window(raw, SEQ_FIELDS)
    assert np.isnan(z[1, 2, 0]) and np.isnan(z[2, :, :5]).all()
    assert valid[1] == pytest.approx(1 - 1 / 30) and valid[0] == 1.0
    with pytest.raises(DataError):
        SequenceSource.from_panel(p).raw_window(3, 5)
    no_hl = p.sel(fields=["open", "close", "volume"])
    with pytest.raises(DataError, match="high"):
        SequenceSource.from_panel(no_hl)
