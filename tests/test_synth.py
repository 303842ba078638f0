"""Synthetic market: layout, determinism, sanity of values, planted signals, loader round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import rankdata, spearmanr

from deepalpha.data import synth
from deepalpha.data import synth_alpha as sa
from deepalpha.data.qlib_bin import read_bin, read_calendar, read_instruments, write_bin
from deepalpha.errors import ConfigError
from deepalpha.risk.industries import SW_L1

STOCKS, START, END, SEED = 160, "2018-01-01", "2019-09-30", 11
FIELDS = ("open", "high", "low", "close", "volume", "factor")
REAL_BASIC_HEADER = [
    "股票代码", "股票名称", "地区", "行业", "公司全称", "英文名称", "拼音缩写", "市场类型",
    "交易所代码", "交易货币", "上市状态", "上市日期", "是否沪深港通标的", "实控人名称", "企业性质",
]  # fmt: skip


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    return synth.write_market(
        tmp_path_factory.mktemp("synth") / "m", stocks=STOCKS, start=START, end=END, seed=SEED
    )


@pytest.fixture(scope="module")
def bars(market):
    """Raw arrays read back from the .bin files: dict field -> float64[T, N], codes, dates."""
    prices = market / "prices"
    dates = read_calendar(prices)
    rows = [r for r in read_instruments(prices) if not r[0].startswith("SH000")]
    codes = [r[0] for r in rows]
    T, N = len(dates), len(codes)
    out = {f: np.full((T, N), np.nan) for f in FIELDS}
    for j, c in enumerate(codes):
        for f in FIELDS:
            s, v = read_bin(prices / "features" / c.lower() / f"{f}.day.bin", T)
            out[f][s : s + len(v), j] = v
    return out, np.array(codes), dates


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------------------ layout
def test_layout_complete(market, bars):
    for rel in [
        "prices/calendars/day.txt",
        "prices/instruments/all.txt",
        *[f"index_membership/csi{k}.txt" for k in ("300", "500", "800", "1000", "all")],
        *[f"fundamentals/{k}.csv" for k in ("total_mv", "pe", "pb", "ps", "dv_ratio")],
        *[f"fundamentals/{k}.csv" for k in ("roe", "roa", "debt_to_assets", "ebit")],
        "industry/stock_basic.csv",
        "industry/csrc_industry.csv",
        *[f"truth/{k}" for k in ("README.md", "meta.json", "factor_returns.parquet")],
        *[f"truth/{k}.parquet" for k in ("exposures", "alpha_style", "alpha_pv", "regimes")],
        *[f"truth/{k}.npy" for k in ("raw_close", "total_return", "specific_return")],
    ]:
        assert (market / rel).is_file(), rel
    _, codes, dates = bars
    assert len(codes) == STOCKS
    assert np.is_busday(dates).all() and len(dates) > 380
    inst = read_instruments(market / "prices")
    assert {"SH000300", "SH000905", "SH000852", "SH000906"} <= {c for c, _, _ in inst}
    for c, s, e in inst:
        assert dates[0] <= s <= e <= dates[-1]
        n = np.fromfile(market / "prices/features" / c.lower() / "close.day.bin", "<f4").size - 1
        assert n == np.searchsorted(dates, e) - np.searchsorted(dates, s) + 1
    assert not list(market.parent.glob(".m.tmp-*"))  # no temp folder left


def test_write_bins_same_bytes_as_qlib_write_bin(tmp_path):
    v = np.random.default_rng(0).random(37) * 100
    write_bin(tmp_path / "a" / "close.day.bin", 5, v)
    synth._write_bins(tmp_path / "b", 5, {"close": v})
    assert (tmp_path / "a/close.day.bin").read_bytes() == (
        tmp_path / "b/close.day.bin"
    ).read_bytes()


# ------------------------------------------------------------------------------ determinism
def test_same_seed_identical_bytes_different_seed_differs(tmp_path):
    kw = dict(stocks=40, start="2019-01-01", end="2019-08-31")
    a = _files(synth.write_market(tmp_path / "a", seed=5, **kw))
    b = _files(synth.write_market(tmp_path / "b", seed=5, **kw))
    c = _files(synth.write_market(tmp_path / "c", seed=6, **kw))
    assert a.keys() == b.keys() and len(a) > 40 * 6
    assert [k for k in a if a[k] != b[k]] == []
    differ = [k for k in a if k in c and a[k] != c[k]]
    assert "truth/raw_close.npy" in differ and "fundamentals/pb.csv" in differ


def test_bad_arguments_and_existing_output(tmp_path):
    with pytest.raises(ConfigError):
        synth.write_market(tmp_path / "x", stocks=5, start="2019-01-01", end="2019-12-31")
    with pytest.raises(ConfigError):
        synth.write_market(tmp_path / "x", stocks=50, start="2019-12-31", end="2019-01-01")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        synth.write_market(tmp_path / "full", stocks=40, start="2019-01-01", end="2019-08-31")
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, "_write_truth", boom)
    with pytest.raises(RuntimeError):
        synth.write_market(tmp_path / "m", stocks=40, start="2019-01-01", end="2019-08-31")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ values
def test_prices_sane(market, bars):
    b, codes, dates = bars
    listed = np.isfinite(b["close"])
    for f in FIELDS:
        assert np.isfinite(b[f][listed]).all(), f
    for f in ("open", "high", "low", "close", "factor"):
        assert (b[f][listed] > 0).all(), f
    tol = 1e-5 * b["close"][listed]
    assert (b["high"][listed] >= np.maximum(b["open"], b["close"])[listed] - tol).all()
    assert (b["low"][listed] <= np.minimum(b["open"], b["close"])[listed] + tol).all()
    raw = b["close"] / b["factor"]
    assert np.allclose(raw[listed], np.round(raw[listed], 2), atol=2e-4)  # 0.01 CNY ticks
    # price limits: raw close vs the previous close in today's share units
    prev = np.full_like(raw, np.nan)
    prev[1:] = b["close"][:-1] / b["factor"][1:]
    move = raw / prev - 1
    rate = np.where(np.char.startswith(codes, "SH68"), 0.2, 0.1)[None, :]
    rate = np.where(
        np.char.startswith(codes, "SZ30") & (dates >= synth.CHINEXT_20PCT_FROM)[:, None], 0.2, rate
    )
    ok = np.isfinite(move)
    assert (np.abs(move[ok]) <= (rate + 0.01 / prev)[ok] + 1e-4).all()
    assert (np.abs(move[ok]) >= 0.095).mean() > 0.001  # limit moves happen
    # suspended days: volume 0 and a carried, one-price bar
    susp = listed & (b["volume"] == 0)
    share = susp.sum() / listed.sum()
    assert 0.005 < share < 0.05
    t, i = np.nonzero(susp)
    t, i = t[t > 0], i[t > 0]
    assert np.allclose(b["close"][t, i], b["close"][t - 1, i], rtol=1e-6)
    for f in ("open", "high", "low"):
        assert np.allclose(b[f][t, i], b["close"][t, i], rtol=1e-6)
    assert np.array_equal(np.load(market / "truth/suspended.npy"), susp)


def test_memberships_by_cap_rank(market, bars):
    b, codes, dates = bars
    sizes = synth.csi_sizes(STOCKS)
    assert sizes == {"csi300": 16, "csi500": 27, "csi1000": 53}
    masks = {}
    for name in ("300", "500", "800", "1000", "all"):
        m = np.zeros((len(dates), len(codes)), dtype=bool)
        col = {c: j for j, c in enumerate(codes)}
        for ln in (market / f"index_membership/csi{name}.txt").read_text().splitlines():
            c, s, e = ln.split("\t")
            m[
                np.searchsorted(dates, np.datetime64(s)) : np.searchsorted(dates, np.datetime64(e))
                + 1,
                col[c],
            ] = True
        masks[name] = m
    listed = np.isfinite(b["close"])
    for k in masks.values():
        assert not (k & ~listed).any()
    for r in synth.rebalance_indices(dates):
        assert masks["300"][r].sum() == sizes["csi300"]
        assert masks["500"][r].sum() == sizes["csi500"]
        assert masks["1000"][r].sum() == sizes["csi1000"]
    assert not (masks["300"] & masks["500"]).any() and not (masks["800"] & masks["1000"]).any()
    assert np.array_equal(masks["800"], masks["300"] | masks["500"])
    assert not ((masks["800"] | masks["1000"]) & ~masks["all"]).any()
    # CSI 300 members are bigger than CSI 500 members on a rebalance day
    r = synth.rebalance_indices(dates)[1]
    cap = (b["close"] / b["factor"] * np.load(market / "truth/shares.npy"))[r]
    assert (
        np.median(cap[masks["300"][r]])
        > np.median(cap[masks["500"][r]])
        > np.median(cap[masks["1000"][r]])
    )


def test_index_series_follow_members(market, bars):
    dates = bars[2]
    s, close = read_bin(market / "prices/features/sh000300/close.day.bin", len(dates))
    _, high = read_bin(market / "prices/features/sh000300/high.day.bin", len(dates))
    _, low = read_bin(market / "prices/features/sh000300/low.day.bin", len(dates))
    assert s == 0 and len(close) == len(dates) and close[0] == pytest.approx(1000, rel=1e-3)
    assert (high >= close - 1e-3).all() and (low <= close + 1e-3).all()
    r = np.diff(np.log(close))
    assert 0.003 < r.std() < 0.04


def test_fundamentals_format_and_consistency(market, bars):
    b, codes, dates = bars
    raw = (market / "fundamentals/total_mv.csv").read_bytes()
    assert raw.startswith(b",") and b"\r\n" in raw
    df = pl.read_csv(market / "fundamentals/total_mv.csv", infer_schema_length=0)
    assert df.columns[1].endswith((".SH", ".SZ", ".BJ"))
    periods = np.array(
        [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in df[df.columns[0]]], dtype="datetime64[D]"
    )
    assert (periods.astype("datetime64[M]").astype(int) % 3 == 2).all()
    shares = np.load(market / "truth/shares.npy")
    col = {f"{c[2:]}.{c[:2]}": j for j, c in enumerate(codes)}
    checked = 0
    for q, pe in enumerate(periods):
        t = np.searchsorted(dates, pe, "right") - 1
        if t < 0:
            continue
        for name in df.columns[1:]:
            v = df[name][q]
            if v is None or v == "":
                continue
            j = col[name]
            expect = b["close"][t, j] / b["factor"][t, j] * shares[t, j] / 1e4
            assert float(v) == pytest.approx(expect, rel=1e-4)
            checked += 1
    assert checked > STOCKS
    pe = pl.read_csv(market / "fundamentals/pe.csv", infer_schema_length=0)
    vals = np.array([[float(x) if x else np.nan for x in pe[c]] for c in pe.columns[1:]])
    assert np.isnan(vals).any() and (vals[np.isfinite(vals)] > 0).all()  # loss makers empty


def test_industry_files(market, bars):
    codes = bars[1]
    raw = (market / "industry/stock_basic.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = list(csv.reader((market / "industry/stock_basic.csv").open(encoding="utf-8-sig")))
    assert rows[0] == REAL_BASIC_HEADER and len(rows) == STOCKS + 1
    names = {n for _, n in SW_L1}
    board = {"主板": "main", "创业板": "chinext", "科创板": "star", "北交所": "bj"}
    for r in rows[1:]:
        assert r[3] in names
        c = r[0][7:] + r[0][:6]
        want = (
            "star"
            if c.startswith("SH68")
            else "chinext"
            if c.startswith("SZ30")
            else "bj"
            if c.startswith("BJ")
            else "main"
        )
        assert board[r[7]] == want
    assert len({r[3] for r in rows[1:]}) >= 15  # many industries, uneven sizes
    csrc = list(csv.reader((market / "industry/csrc_industry.csv").open(encoding="utf-8")))
    assert csrc[0][:2] == ["updateDate", "code"]
    assert sorted(r[1][:2].upper() + r[1][3:] for r in csrc[1:]) == sorted(codes)


# ------------------------------------------------------------------------------ planted signals
def test_oracle_ics_positive_and_reproducible(market):
    meta = json.loads((market / "truth/meta.json").read_text())
    ic = meta["oracle_rank_ic"]
    assert ic["style_vs_next_month_residual"]["mean"] > 0.05
    assert ic["pv_vs_label_t1_to_t11"]["mean"] > 0.04
    # recompute the style IC from the truth files with scipy's Spearman (slow reference)
    dates = read_calendar(market / "prices")
    assets = (market / "truth/assets.txt").read_text().split()
    spec = np.load(market / "truth/specific_return.npy").astype(np.float64)
    a = pl.read_parquet(market / "truth/alpha_style.parquet")
    edates = np.unique(a["date"].to_numpy().astype("datetime64[D]"))
    eidx = np.r_[np.searchsorted(dates, edates), len(dates) - 1]
    col = {c: j for j, c in enumerate(assets)}
    ics = []
    for k in range(len(edates)):
        lo, hi = eidx[k] + 1, eidx[k + 1] + 1
        sub = a.filter(pl.col("date") == edates[k])
        j = np.array([col[c] for c in sub["asset"]])
        w = spec[lo:hi, j]
        n = np.isfinite(w).sum(axis=0)
        res = np.where(n >= 0.5 * (hi - lo), np.nansum(w, axis=0), np.nan)
        ok = np.isfinite(res)
        ics.append(spearmanr(sub["alpha"].to_numpy()[ok], res[ok])[0])
    assert np.mean(ics) == pytest.approx(ic["style_vs_next_month_residual"]["mean"], abs=2e-3)


def test_style_alpha_is_the_documented_function_of_exposures(market):
    ex = pl.read_parquet(market / "truth/exposures.parquet")
    al = pl.read_parquet(market / "truth/alpha_style.parquet")
    d = ex["date"].unique().sort()[3]
    e = ex.filter(pl.col("date") == d).join(al, on=["date", "asset"])
    X = e.select(list(sa.STYLES)).to_numpy()
    keys = [k for k, _ in SW_L1]
    ind = np.eye(len(keys))[[keys.index(k) for k in e["industry"]]]
    # weights: sqrt cap; cap from the Size exposure is only known up to scale -> use truth caps
    dates = read_calendar(market / "prices")
    assets = (market / "truth/assets.txt").read_text().split()
    t = np.searchsorted(dates, np.datetime64(d))
    j = [assets.index(c) for c in e["asset"]]
    cap = np.load(market / "truth/raw_close.npy")[t, j] * np.load(market / "truth/shares.npy")[t, j]
    g = sa.style_alpha_raw(X)
    gr = sa.residualize(
        g, np.c_[np.ones(len(g)), ind, X], np.sqrt(cap.astype(np.float64)), np.ones(len(g), bool)
    )
    want = synth.SynthParams().style_alpha * sa.zscore(gr, np.ones(len(g), bool))
    assert np.corrcoef(want, e["alpha"].to_numpy())[0, 1] > 0.999
    # Size exposure is the standardised log cap of that day
    size = sa.standardize(
        np.log(cap.astype(np.float64)), cap.astype(np.float64), np.ones(len(g), bool)
    )
    assert np.corrcoef(size, e["Size"].to_numpy())[0, 1] > 0.999


def test_pv_alpha_uses_only_past_observable_data(market, bars):
    """Recompute the planted pv innovation from the written bars up to t: no look-ahead."""
    b, codes, dates = bars
    shares = np.load(market / "truth/shares.npy").astype(np.float64)
    adj = b["close"]
    lr = np.full(adj.shape, np.nan)
    lr[1:] = np.log(adj[1:] / adj[:-1])
    susp = b["volume"] == 0
    lr[susp & np.isfinite(adj)] = 0.0
    trade = np.isfinite(adj) & ~susp
    to = np.where(trade, b["volume"] / shares, np.nan)
    rc = b["close"] / b["factor"]
    hi, lo = b["high"] / b["factor"], b["low"] / b["factor"]
    gap = np.where(trade, (rc - (hi + lo + rc) / 3) / rc, np.nan)
    first = np.argmax(np.isfinite(adj), axis=0)
    T = len(dates)
    new = np.zeros(adj.shape)
    for t in range(20, T):
        ok = trade[t] & (t - first >= 20)
        p = sa.pv_pattern(lr[t - 19 : t + 1], to[t - 19 : t + 1], gap[t - 19 : t + 1], ok)
        d = sa.cap_group_demean(p, np.log(rc[t] * shares[t]), ok, 20)
        new[t] = np.nan_to_num(synth.SynthParams().pv_alpha * sa.zscore(d, ok))
    exp = synth.pv_expectation(new, 10)
    truth = pl.read_parquet(market / "truth/alpha_pv.parquet")
    col = {c: j for j, c in enumerate(codes)}
    t_idx = np.searchsorted(dates, truth["date"].to_numpy().astype("datetime64[D]"))
    j_idx = np.array([col[c] for c in truth["asset"]])
    got = exp[t_idx, j_idx]
    assert np.corrcoef(got, truth["alpha"].to_numpy())[0, 1] > 0.995


def test_factor_returns_and_exposures_truth(market):
    fr = pl.read_parquet(market / "truth/factor_returns.parquet")
    keys = [k for k, _ in SW_L1]
    assert fr.columns == ["date", "country", *keys, *sa.STYLES]
    ex = pl.read_parquet(market / "truth/exposures.parquet")
    for s in sa.STYLES:
        sd = ex.group_by("date").agg(pl.col(s).std().alias("sd"))["sd"].to_numpy()
        live = sd[sd > 0.01]  # LongTermReversal needs > 1.5 years of history
        assert s == "LongTermReversal" or len(live) > len(sd) // 2, s
        assert np.allclose(live, 1.0, atol=0.2), s
    # planted factor returns are recoverable: daily WLS of realised returns on the exposures
    dates = read_calendar(market / "prices")
    assets = (market / "truth/assets.txt").read_text().split()
    col = {c: j for j, c in enumerate(assets)}
    lr = np.log1p(np.load(market / "truth/total_return.npy").astype(np.float64))
    susp = np.load(market / "truth/suspended.npy")
    shares = np.load(market / "truth/shares.npy").astype(np.float64)
    cap = np.load(market / "truth/raw_close.npy") * shares
    f_true = fr.select(["country", "Size"]).to_numpy()
    edates = ex["date"].unique().sort().to_numpy().astype("datetime64[D]")
    eidx = np.searchsorted(dates, edates)
    got, want = [], []
    for k, e in enumerate(eidx):
        sub = ex.filter(pl.col("date") == edates[k])
        j = np.array([col[c] for c in sub["asset"]])
        ind = np.eye(len(keys))[[keys.index(i) for i in sub["industry"]]]
        X = np.c_[ind, sub.select(list(sa.STYLES)).to_numpy()]
        end = eidx[k + 1] if k + 1 < len(eidx) else len(dates) - 1
        for t in range(e + 1, end + 1):
            ok = np.isfinite(lr[t, j]) & ~susp[t, j] & np.isfinite(cap[t - 1, j])
            w = np.sqrt(cap[t - 1, j][ok])
            b = np.linalg.lstsq(X[ok] * w[:, None], lr[t, j][ok] * w, rcond=None)[0]
            # country = cap-weighted mean of the industry intercepts (Barra constraint)
            wi = (ind[ok] * cap[t - 1, j][ok][:, None]).sum(axis=0)
            got.append([wi @ b[: len(keys)] / wi.sum(), b[len(keys) + sa.S["Size"]]])
            want.append(f_true[t])
    got, want = np.array(got), np.array(want)
    assert np.corrcoef(got[:, 0], want[:, 0])[0, 1] > 0.95  # country
    assert np.corrcoef(got[:, 1], want[:, 1])[0, 1] > 0.7  # Size (160 stocks: noisy)


# ------------------------------------------------------------------------------ helpers
def test_rank_ic_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 200))
    b = a + rng.standard_normal((30, 200))
    a[a > 1.3] = np.nan
    b[:, :4] = np.nan
    b[:, 10:20] = 0.0  # ties
    ref = [spearmanr(a[d], b[d], nan_policy="omit")[0] for d in range(30)]
    assert np.allclose(sa.rank_ic(a, b), ref, atol=1e-12)
    x = rng.integers(0, 5, size=(4, 50)).astype(float)
    assert np.allclose(sa.row_ranks(x), rankdata(x, axis=1))


def test_cap_group_demean_matches_loop():
    rng = np.random.default_rng(2)
    x, lc = rng.standard_normal(103), rng.standard_normal(103)
    m = rng.random(103) > 0.1
    got = sa.cap_group_demean(x, lc, m, 20)
    idx = np.flatnonzero(m)
    order = idx[np.argsort(lc[idx])]
    group = np.arange(len(idx)) * 20 // len(idx)  # quantile group of each rank
    for g in range(20):
        who = order[group == g]
        assert 4 <= len(who) <= 5
        assert np.allclose(got[who], x[who] - x[who].mean())
    assert np.isnan(got[~m]).all()


def test_residualize_matches_lstsq_and_standardize():
    rng = np.random.default_rng(3)
    N = 300
    X = np.c_[np.ones(N), np.eye(5)[rng.integers(0, 5, N)], rng.standard_normal((N, 3))]
    y, w = rng.standard_normal(N), rng.random(N) + 0.1
    m = np.ones(N, bool)
    got = sa.residualize(y, X, w, m)
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
    assert np.allclose(got, y - X @ beta, atol=1e-7)
    cap = np.exp(rng.standard_normal(N))
    z = sa.standardize(rng.standard_normal(N), cap, m)
    assert np.sum(cap * z) / cap.sum() == pytest.approx(0, abs=1e-12)
    assert z.std() == pytest.approx(1, abs=0.05)


# ------------------------------------------------------------------------------ loader + CLI
def test_round_trip_through_loader(market, bars):
    cn = pytest.importorskip("deepalpha.data.cn")
    p = cn.load_cn(market, cache=False)
    assets = (market / "truth/assets.txt").read_text().split()
    assert list(p.assets) == assets
    raw = np.load(market / "truth/raw_close.npy")
    rc = p.field("raw_close")
    assert np.array_equal(np.isfinite(rc), np.isfinite(raw))
    assert np.nanmax(np.abs(rc - raw) / raw) < 1e-5
    assert np.array_equal(p.masks["listed"], np.isfinite(raw))
    assert np.array_equal(
        p.masks["suspended"] & p.masks["listed"], np.load(market / "truth/suspended.npy")
    )
    tr = np.load(market / "truth/total_return.npy")
    c = p.field("close").astype(np.float64)
    r = c[1:] / c[:-1] - 1
    ok = np.isfinite(tr[1:]) & np.isfinite(r)
    assert ok.sum() > 1000 and np.abs(r[ok] - tr[1:][ok]).max() < 1e-4
    sizes = synth.csi_sizes(STOCKS)
    for t in synth.rebalance_indices(p.dates):
        assert p.masks["csi300"][t].sum() == sizes["csi300"]
    # mktcap the day after a period end (loader: total_mv carried by the adjusted close) equals
    # raw close x shares for stocks without an ex-date that day
    shares = np.load(market / "truth/shares.npy")
    t = np.searchsorted(p.dates, np.datetime64("2018-06-30"), "right")
    cap = p.field("mktcap")[t]
    f = p.field("factor")
    ok = np.isfinite(cap) & (f[t] == f[t - 1])
    assert ok.sum() > 100
    assert np.allclose(cap[ok], (raw[t] * shares[t])[ok], rtol=1e-4)


def test_cli_synth(tmp_path):
    from typer.testing import CliRunner

    from deepalpha.cli import app

    out = tmp_path / "cli"
    args = ["data", "synth", str(out), "--stocks", "40", "--start", "2019-01-01", "--end", "2019-08-31", "--seed", "3"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "oracle RankIC" in res.output and (out / "truth/meta.json").is_file()
    res = CliRunner().invoke(app, args)
    assert res.exit_code != 0 and isinstance(res.exception, ConfigError)
