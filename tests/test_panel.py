import numpy as np
import polars as pl
import pytest

from deepalpha.data.panel import Panel
from deepalpha.errors import DataError


def make_panel(T=5, N=4, F=3, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(F, T, N)).astype(np.float32)
    data[0, 1, 2] = np.nan
    dates = np.datetime64("2020-01-01", "D") + np.arange(T)
    assets = np.array([f"SH60000{i}" for i in range(N)])
    masks = {"listed": rng.random((T, N)) > 0.2}
    return Panel(data, dates, assets, tuple(f"f{k}" for k in range(F)), masks)


def test_values_is_a_tnf_view():
    p = make_panel()
    assert p.values.shape == (5, 4, 3)
    assert np.shares_memory(p.values, p.data)
    np.testing.assert_array_equal(p.values[:, :, 1], p.field("f1"))
    assert p.field("f1").flags.c_contiguous


def test_sel_slices_are_views_and_masks_follow():
    p = make_panel()
    q = p.sel(dates=slice("2020-01-02", "2020-01-04"))
    assert q.shape == (3, 4, 3)
    assert np.shares_memory(q.data, p.data)
    np.testing.assert_array_equal(q.mask("listed"), p.mask("listed")[1:4])
    r = p.sel(assets=["SH600003", "SH600001"], fields=["f2"])
    np.testing.assert_array_equal(r.field("f2"), p.field("f2")[:, [3, 1]])
    with pytest.raises(DataError, match="unknown asset"):
        p.sel(assets=["SZ000001"])


def test_long_round_trip():
    p = make_panel()
    df = p.to_long(masks=True)
    assert isinstance(df, pl.DataFrame)
    q = Panel.from_long(df)
    np.testing.assert_array_equal(q.data, p.data)
    np.testing.assert_array_equal(q.masks["listed"], p.masks["listed"])
    assert list(q.assets) == list(p.assets)


def test_bad_panels():
    p = make_panel()
    with pytest.raises(DataError, match="unsorted or duplicated"):
        Panel(p.data, p.dates[::-1].copy(), p.assets, p.fields)
    with pytest.raises(DataError, match="duplicate asset"):
        Panel(p.data, p.dates, np.array(["SH600000"] * 4), p.fields)
    df = p.to_long()
    with pytest.raises(DataError, match="duplicate"):
        Panel.from_long(pl.concat([df, df.head(1)]))


def test_with_fields():
    p = make_panel()
    q = p.with_fields(g=np.ones((5, 4)))
    assert q.fields[-1] == "g" and q.field("g").dtype == np.float32
