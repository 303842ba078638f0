"""Date-batched datasets: membership, masking, labels, cap groups, no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from test_train_helpers import make_panel

from deepalpha.errors import DataError
from deepalpha.features.labels import forward_return
from deepalpha.features.preprocess import rank_normalize
from deepalpha.features.sequences import SequenceSource, sequence_features
from deepalpha.train.datasets import SequenceDataset, TabularDataset, cap_groups


def test_cap_groups_quantiles_and_nan_bucket():
    cap = np.array([5.0, 1.0, np.nan, 3.0, 2.0, 4.0, 0.0, 6.0])
    g = cap_groups(cap, n_groups=3)
    # finite positive caps sorted: 1,2,3,4,5,6 -> ranks 0..5 -> buckets 0,0,1,1,2,2
    np.testing.assert_array_equal(g, [2, 0, 3, 1, 0, 1, 3, 2])
    big = cap_groups(np.random.default_rng(0).lognormal(size=1000), 20)
    np.testing.assert_array_equal(np.bincount(big), np.full(20, 50))


def test_sequence_batch_members_and_labels():
    p = make_panel(T=80, N=30)
    p.data[3, 40, 5] = np.nan  # a missing close at t=40 for stock 5: dropped that date
    ds = SequenceDataset(p, window=10, horizon=4)
    assert ds.n_features == 6
    np.testing.assert_array_equal(ds.sample_dates(), np.arange(9, 80))
    t = 40
    b = ds.batch(t)
    trad = p.mask("tradable")[t]
    expect = np.flatnonzero(trad & (np.arange(30) != 5))
    np.testing.assert_array_equal(b.idx, expect)
    x, _ = sequence_features(SequenceSource.from_panel(p), t, 10, expect)
    np.testing.assert_array_equal(b.x.numpy(), np.nan_to_num(x, nan=0.0))
    ref_y = rank_normalize(forward_return(p.field("close"), 4)[t, expect], axis=0)
    np.testing.assert_allclose(b.y.numpy(), ref_y, rtol=1e-6)
    np.testing.assert_array_equal(b.group_ids.numpy(), cap_groups(p.field("mktcap")[t, expect]))
    assert (b.group_ids.numpy()[np.isin(expect, [0, 1])] == 20).all()  # NaN caps
    assert ds.batch(5) is None  # no full window yet
    # the last h+1 dates: labels unknown -> masked (NaN), stocks still in the batch
    last = ds.batch(79)
    assert len(last.idx) > 0 and not last.label_mask.any()
    np.testing.assert_array_equal(ds.label_known[[10, 20]], [15, 25])


def test_sequence_batch_drops_short_histories_and_ignores_future():
    p = make_panel(T=60, N=20)
    p.data[:, :35, 3] = np.nan  # stock 3 listed at t=35
    ds = SequenceDataset(p, window=10, horizon=2, min_valid_frac=0.9)
    b = ds.batch(40)  # stock 3 has 6/10 days
    assert 3 not in b.idx
    b2 = SequenceDataset(p, window=10, horizon=2, min_valid_frac=0.5).batch(40)
    if p.mask("tradable")[40, 3]:
        assert 3 in b2.idx
        assert np.isfinite(b2.x.numpy()).all()
    q = make_panel(T=60, N=20)
    x0 = SequenceDataset(q, window=10, horizon=2).batch(30).x.numpy()
    q.data[:, 31:] *= np.float32(1.5)
    np.testing.assert_array_equal(SequenceDataset(q, window=10, horizon=2).batch(30).x.numpy(), x0)


def test_sequence_dataset_needs_cap_field():
    p = make_panel(T=30, N=5).sel(fields=["open", "high", "low", "close", "volume"])
    with pytest.raises(DataError, match="mktcap"):
        SequenceDataset(p, window=5)
    assert SequenceDataset(p, window=5, cap_field=None).batch(10).group_ids is None


def test_tabular_dataset():
    rng = np.random.default_rng(0)
    T, N, F = 12, 25, 3
    X = rng.normal(size=(T, N, F)).astype(np.float32)
    X[:, :, :] *= np.array([1.0, 10.0, 0.1], dtype=np.float32)
    X[::2] = np.nan  # features only on odd dates (e.g. month ends)
    X[3, 4, :2] = np.nan  # 1/3 valid: dropped (min_valid_frac 0.5)
    X[3, 5, 0] = np.nan  # 2/3 valid: kept, zero-filled
    y = rng.normal(size=(T, N)).astype(np.float32)
    y[3, 7] = np.nan
    mask = np.ones((T, N), dtype=bool)
    mask[3, 9] = False
    dates = np.datetime64("2021-01-31") + np.arange(T) * 30
    ds = TabularDataset(X, y, dates, np.array([f"A{i}" for i in range(N)]), mask=mask)
    np.testing.assert_array_equal(ds.sample_dates(), np.arange(1, T, 2))
    np.testing.assert_array_equal(ds.label_known[[1, 3, 11]], [3, 5, ds.label_known[11]])
    assert ds.label_known[11] > 10**9  # the last sample's label is never known here
    b = ds.batch(3)
    assert 4 not in b.idx and 9 not in b.idx and 5 in b.idx
    assert b.x.shape == (N - 2, F) and np.isfinite(b.x.numpy()).all()
    j = int(np.flatnonzero(b.idx == 5)[0])
    assert b.x[j, 0] == 0.0
    # per-date robust scale removes the feature units
    assert np.abs(np.median(np.abs(b.x.numpy()), axis=0) - 0.6745).max() < 0.35
    assert not b.label_mask[int(np.flatnonzero(b.idx == 7)[0])]
    assert ds.batch(2) is None or len(ds.batch(2).idx) == 0
    lagged = TabularDataset(X, y, dates, np.arange(N).astype(str), label_known=np.arange(T) + 1)
    np.testing.assert_array_equal(lagged.label_known[:3], [1, 2, 3])
