"""The CN loader on a tiny hand-built layout (fast) and on the real data (``realdata``)."""

from __future__ import annotations

import os
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest
from test_data_errors import STOCKS, tiny_dates, write_tiny_cn

from deepalpha.data import universe as un
from deepalpha.data.cn import load_cn, load_indices
from deepalpha.data.qlib_bin import write_bin
from deepalpha.data.stockinfo import load_stock_info
from deepalpha.errors import DataError


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return write_tiny_cn(tmp_path_factory.mktemp("tiny") / "cn")


@pytest.fixture(scope="module")
def tiny_panel(tiny_root):
    return load_cn(tiny_root, cache=False)


def col(p, code):
    return list(p.assets).index(code)


# ------------------------------------------------------------------ slow references
def _round2(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def limit_reference(close, high, low, factor, assets, dates, st=None):
    """Cell-by-cell limit-locked flags with Decimal rounding (slow, obviously right)."""
    T, N = close.shape
    up = np.zeros((T, N), bool)
    dn = np.zeros((T, N), bool)
    for n in range(N):
        a = str(assets[n])
        for t in range(1, T):
            c0, c1, f1 = float(close[t - 1, n]), float(close[t, n]), float(factor[t, n])
            if not (np.isfinite(c0) and np.isfinite(c1)):
                continue
            if a.startswith("BJ"):
                r = Decimal("0.30")
            elif a.startswith("SH68"):
                r = Decimal("0.20")
            elif a.startswith("SZ30"):
                r = Decimal("0.20") if dates[t] >= np.datetime64("2020-08-24") else Decimal("0.10")
            else:
                r = Decimal("0.10")
            prev = Decimal(repr(c0 / f1))
            raw = _round2(c1 / f1)
            up_px = (prev * (1 + r)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            dn_px = (prev * (1 - r)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            move = (c1 / f1) / (c0 / f1) - 1
            one = float(high[t, n]) == float(low[t, n])
            up[t, n] = raw >= up_px or (one and move >= 0.049)
            dn[t, n] = raw <= dn_px or (one and move <= -0.049)
            if st is not None and st[t, n]:
                five = Decimal("0.05")
                up[t, n] |= raw == (prev * (1 + five)).quantize(Decimal("0.01"), ROUND_HALF_UP)
                dn[t, n] |= raw == (prev * (1 - five)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return up, dn


# ------------------------------------------------------------------ tiny layout
def test_shapes_and_no_index_codes(tiny_panel):
    p = tiny_panel
    assert p.shape == (120, 4, 18)
    assert list(p.assets) == sorted(STOCKS)
    assert p.data.dtype == np.float32
    np.testing.assert_array_equal(p.dates, tiny_dates())


def test_derived_fields(tiny_panel):
    p = tiny_panel
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(p["raw_close"], p["close"] / p["factor"], rtol=1e-6)
        np.testing.assert_allclose(p["vwap"], (p["high"] + p["low"] + p["close"]) / 3, rtol=1e-6)
        np.testing.assert_allclose(p["shares"], p["mktcap"] / p["raw_close"], rtol=1e-5)
    j = col(p, "SH600000")
    assert p["raw_close"][45, j] == pytest.approx(p["close"][45, j] / 1.05, rel=1e-6)
    assert any("vwap is a proxy" in c for c in p.meta["caveats"])
    assert any("ST" in c for c in p.meta["caveats"])


def test_listed_and_suspended(tiny_panel):
    p = tiny_panel
    listed, susp = p.mask("listed"), p.mask("suspended")
    j = col(p, "SH688001")
    assert not listed[:10, j].any() and listed[10:, j].all()
    assert np.isnan(p["close"][:10, j]).all()
    k = col(p, "SZ000002")
    assert listed[:101, k].all() and not listed[101:, k].any()
    assert susp[60:63, k].all() and susp[:, k].sum() == 3
    assert not (susp & ~listed).any()
    # fundamentals are NaN outside the listed range
    assert np.isnan(p["roe"][~listed]).all() and np.isnan(p["mktcap"][~listed]).all()


def test_limit_masks_match_slow_reference(tiny_panel):
    p = tiny_panel
    ref_up, ref_dn = limit_reference(
        p["close"], p["high"], p["low"], p["factor"], p.assets, p.dates, p.mask("st_proxy")
    )
    live = p.mask("listed") & ~p.mask("suspended")
    np.testing.assert_array_equal(p.mask("limit_up"), ref_up & live)
    np.testing.assert_array_equal(p.mask("limit_down"), ref_dn & live)
    # planted events
    assert p.mask("limit_up")[30, col(p, "SH600000")]
    assert not p.mask("limit_up")[40, col(p, "SH600000")]  # ex-dividend day is not a limit move
    assert p.mask("limit_up")[50, col(p, "SZ300001")]  # +10 % ChiNext before 2020-08-24
    assert p.dates[80] >= np.datetime64("2020-08-24")
    assert not p.mask("limit_up")[80, col(p, "SZ300001")]  # +10 % after the 20 % rule
    k = col(p, "SZ000002")
    assert p.mask("limit_up")[70, k]  # one-price +5 % bar
    # ST proxy: outside CSI All Share on days 85-94 only
    np.testing.assert_array_equal(np.flatnonzero(p.mask("st_proxy")[:, k]), np.arange(85, 95))
    assert p["high"][88, k] > p["low"][88, k]
    assert p.mask("limit_up")[88, k]  # exactly +5 % while flagged: locked
    assert not p.mask("limit_up")[90, k]  # +7 %: the proxy does not cap moves
    assert not p.mask("st_proxy")[:, col(p, "SZ300001")].any()  # main board only


def test_limit_masks_random_vs_reference():
    rng = np.random.default_rng(3)
    T, N = 60, 6
    assets = np.array(["SH600000", "SZ300750", "SH688001", "BJ430017", "SZ000001", "SZ301001"])
    dates = tiny_dates(T, "2020-07-15")
    raw = np.round(10 * np.exp(np.cumsum(rng.normal(0, 0.08, (T, N)), 0)), 2)
    factor = np.cumprod(np.where(rng.random((T, N)) < 0.05, 1.1, 1.0), 0)
    close = (raw * factor).astype(np.float32)
    high = (close * (1 + np.abs(rng.normal(0, 0.01, (T, N))))).astype(np.float32)
    low = close.copy()
    high[::7] = low[::7]  # some one-price bars
    st = rng.random((T, N)) < 0.3
    raw5 = np.round(np.roll(raw, 1, 0) * 1.05, 2)
    pick = st & (rng.random((T, N)) < 0.5)
    close = np.where(pick, raw5 * factor, close).astype(np.float32)  # exact +5 % closes
    up, dn = un.limit_masks(
        close, high, low, factor.astype(np.float32), un.limit_rate(assets, dates), st=st
    )
    ref_up, ref_dn = limit_reference(close, high, low, factor.astype(np.float32), assets, dates, st)
    np.testing.assert_array_equal(up, ref_up)
    np.testing.assert_array_equal(dn, ref_dn)
    assert up.any() and dn.any()


def test_tradable_respects_listing_age(tiny_root):
    p = load_cn(tiny_root, cache=False, fields=["close"], min_listed_days=60)
    j = col(p, "SH688001")  # lists on day 10 (stock_basic list date)
    tr = p.mask("tradable")
    assert not tr[:69, j].any()
    ok = p.mask("listed") & ~p.mask("suspended") & ~p.mask("limit_up") & ~p.mask("limit_down")
    np.testing.assert_array_equal(tr[69:, j], ok[69:, j])
    q = load_cn(tiny_root, cache=False, fields=["close"], min_listed_days=0)
    np.testing.assert_array_equal(q.mask("tradable"), ok)


def test_universe_masks(tiny_panel):
    p = tiny_panel
    d = p.dates
    listed = p.mask("listed")
    a = col(p, "SH600000")
    b = col(p, "SZ000002")
    assert p.mask("csi300")[:60, a].all() and not p.mask("csi300")[60:, a].any()
    np.testing.assert_array_equal(p.mask("csi300")[:, b], (np.arange(120) >= 60) & listed[:, b])
    assert p.mask("csi300")[60:101, b].all() and not p.mask("csi300")[101:, b].any()
    np.testing.assert_array_equal(p.mask("csi800"), p.mask("csi300") | p.mask("csi500"))
    # 'all' before the first csiall spell = listed
    np.testing.assert_array_equal(p.mask("all")[:5], listed[:5])
    assert p.mask("all")[5:].sum() == listed[5:].sum() - 10  # SZ000002 out on days 85-94
    for k in ("csi300", "csi500", "csi800", "csi1000", "all"):
        assert not (p.mask(k) & ~listed).any()
    assert d[0] == np.datetime64("2020-06-01")


def test_spells_to_mask_vs_reference():
    rng = np.random.default_rng(1)
    dates = tiny_dates(80)
    assets = np.array(["SH600000", "SH600001", "SZ000001"])
    codes = rng.choice(np.array([*assets, "SH600999"]), 40)
    s = dates[0] - 10 + rng.integers(0, 130, 40).astype("timedelta64[D]")
    e = s + rng.integers(0, 40, 40).astype("timedelta64[D]")
    got = un.spells_to_mask(codes, s, e, dates, assets)
    ref = np.zeros((80, 3), bool)
    for c, s0, e0 in zip(codes, s, e, strict=True):
        for n, a in enumerate(assets):
            if a == c:
                for t, d in enumerate(dates):
                    ref[t, n] |= s0 <= d <= e0
    np.testing.assert_array_equal(got, ref)


def test_date_slice_equals_slice_of_full(tiny_root, tiny_panel):
    p = load_cn(tiny_root, cache=False, start="2020-07-01", end="2020-09-30")
    full = tiny_panel.sel(dates=slice("2020-07-01", "2020-09-30"))
    np.testing.assert_array_equal(p.dates, full.dates)
    np.testing.assert_array_equal(p.data, full.data)
    for k in full.masks:
        np.testing.assert_array_equal(p.masks[k], full.masks[k])
    assert p.data.flags.c_contiguous


def test_fields_subset_reads_only_needed_bins(tmp_path):
    root = write_tiny_cn(tmp_path / "cn")
    for c in STOCKS:
        (root / "prices" / "features" / c.lower() / "open.day.bin").unlink()
    p = load_cn(root, cache=False, fields=["raw_close", "pe"])
    assert p.fields == ("raw_close", "pe")
    with pytest.raises(DataError, match=r"missing \.bin") as e:
        load_cn(root, cache=False, fields=["open"])
    assert e.value.field == "open"


def test_cache_identical_and_invalidated(tmp_path):
    root = write_tiny_cn(tmp_path / "cn")
    cache = tmp_path / "cache"
    a = load_cn(root, cache_dir=cache)
    b = load_cn(root, cache_dir=cache)
    assert "cache" in b.meta
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.assets, b.assets)
    assert a.fields == b.fields and sorted(a.masks) == sorted(b.masks)
    for k in a.masks:
        np.testing.assert_array_equal(a.masks[k], b.masks[k])
    assert type(b.data) is np.ndarray
    # in-place edits of a cached panel never reach the cache (copy-on-write map)
    b.field("close")[:] = -1.0
    c = load_cn(root, cache_dir=cache)
    np.testing.assert_array_equal(a.data, c.data)
    assert not [x for x in cache.iterdir() if x.name.startswith(".")]  # no temp leftovers
    # a changed source file misses the cache
    p = root / "prices" / "features" / "sh600000" / "close.day.bin"
    raw = np.fromfile(p, dtype="<f4")
    raw[5] *= 1.01
    write_bin(p, int(raw[0]), raw[1:])
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    d = load_cn(root, cache_dir=cache)
    j = col(d, "SH600000")
    assert d["close"][4, j] == pytest.approx(a["close"][4, j] * 1.01, rel=1e-6)
    # options are part of the key
    e = load_cn(root, cache_dir=cache, min_listed_days=0)
    assert e.mask("tradable").sum() >= d.mask("tradable").sum()
    assert len([x for x in cache.iterdir() if x.name.startswith("panel-")]) == 3


def test_load_indices(tiny_root):
    p = load_indices(tiny_root)
    assert list(p.assets) == ["SH000300"]
    assert p.fields == ("open", "high", "low", "close", "volume")
    assert np.isfinite(p["close"]).all()
    q = load_indices(tiny_root, codes=["sh000300"])
    np.testing.assert_array_equal(p.data, q.data)


def test_load_stock_info(tiny_root):
    info = load_stock_info(tiny_root)
    assert info.columns == ["asset", "name", "industry", "csrc", "board", "list_date"]
    assert info["asset"].to_list() == sorted(STOCKS)
    row = dict(zip(info["asset"].to_list(), info["board"].to_list(), strict=True))
    assert row == {
        "SH600000": "main",
        "SZ300001": "chinext",
        "SH688001": "star",
        "SZ000002": "main",
    }
    assert set(info["csrc"].to_list()) == {"J66"}
    assert str(info.filter(info["asset"] == "SH600000")["list_date"][0]) == "1999-11-10"


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real(cn_path):
    return load_cn(cn_path, fields=["raw_close", "close"], cache=False)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_shape(real):
    assert real.shape[:2] == (3401, 3199)
    assert str(real.dates[0]) == "2010-01-04" and str(real.dates[-1]) == "2023-12-29"
    assert not any(a.startswith(("SH000", "SZ399")) for a in real.assets.tolist())


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sh600000_raw_close(real):
    j = col(real, "SH600000")
    assert real["raw_close"][0, j] == pytest.approx(21.19, abs=0.01)


@pytest.mark.realdata
def test_real_csi300_has_300_members(cn_path):
    codes, s, e = un.read_spells(cn_path / "index_membership" / "csi300.txt", skipped=[])
    assert len(un.members_on(codes, s, e, "2016-06-30")) == 300


@pytest.mark.realdata
@pytest.mark.slow
def test_real_masks_are_plausible(real):
    listed = real.mask("listed")
    susp = real.mask("suspended").sum() / listed.sum()
    assert 0.01 < susp < 0.06  # the README says about 2.4 % of stock-days have volume 0
    t = real.date_index("2015-07-08")  # the 2015 crash: over a thousand stocks locked limit-down
    live = listed[t] & ~real.mask("suspended")[t]
    assert real.mask("limit_down")[t].sum() / live.sum() > 0.3
    n300 = real.mask("csi300")[real.date_index("2016-06-30")].sum()
    assert 270 <= n300 <= 300  # members without prices (survivorship) are dropped
    assert real.mask("csi1000")[: real.date_index("2014-10-01")].sum() == 0


@pytest.mark.realdata
@pytest.mark.slow
def test_real_indices_and_info(cn_path):
    idx = load_indices(cn_path, codes=["SH000300", "SH000905"])
    assert idx.shape[:2] == (3401, 2)
    assert np.isfinite(idx["close"]).mean() > 0.99
    info = load_stock_info(cn_path)
    assert info.filter(info["asset"] == "SH600000")["csrc"][0] == "J66"
    assert info["asset"].is_unique().all()


def test_nan_volume_with_a_price_is_a_suspension(tmp_path):
    root = write_tiny_cn(tmp_path / "cn")
    p = root / "prices" / "features" / "sz300001" / "volume.day.bin"
    raw = np.fromfile(p, dtype="<f4")
    raw[1 + 20] = np.nan
    write_bin(p, int(raw[0]), raw[1:])
    q = load_cn(root, cache=False, fields=["volume"])
    j = col(q, "SZ300001")
    assert q["volume"][20, j] == 0.0
    assert q.mask("suspended")[20, j] and not q.mask("tradable")[20, j]
    assert q.meta["nan_volume_set_to_zero"] == 1


def test_cache_prune_keeps_the_newest(tmp_path):
    from deepalpha.data import store

    root = write_tiny_cn(tmp_path / "cn")
    cache = tmp_path / "cache"
    for k in range(4):
        load_cn(root, cache_dir=cache, min_listed_days=k)
    assert len(list(cache.glob("panel-*"))) == 4
    assert store.prune(cache, keep=2) == 2
    left = list(cache.glob("panel-*"))
    assert len(left) == 2
    # the newest entry (min_listed_days=3) is still a hit
    p = load_cn(root, cache_dir=cache, min_listed_days=3)
    assert "cache" in p.meta
