"""A plain Qlib provider folder read in place (``calendars/``, ``instruments/``, ``features/``).

`write_tiny_qlib` turns the tiny CN layout of `test_data_errors` into Qlib's own layout: the same
bars with Qlib's volume convention (``$volume`` = shares / ``$factor``), the membership spells
as ``instruments/csi300.txt`` ..., and no fundamentals. Read back, it must give the same bars and
masks as the CN layout (with the industry table copied beside it, so list dates agree).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_data_errors import STOCKS, tiny_bars, tiny_dates, write_tiny_cn

from deepalpha.data.cn import load_cn, load_indices
from deepalpha.data.inputs import require_risk_inputs, risk_inputs_missing
from deepalpha.data.layout import detect_layout
from deepalpha.data.qlib_bin import write_bin, write_calendar
from deepalpha.data.size_proxy import cap_field_for, size_proxy, traded_value
from deepalpha.errors import DataError

BARS = ("open", "high", "low", "close", "factor")


def write_tiny_qlib(
    root: Path,
    cn: Path,
    *,
    amount: bool = False,
    raw_volume: bool = False,
    csiall: bool = True,
    industry: bool = False,
    factor: bool = True,
) -> Path:
    """A Qlib provider folder at ``root`` with the bars of the tiny CN layout at ``cn``."""
    dates = tiny_dates()
    write_calendar(root, dates)
    inst = []
    for code, f in tiny_bars().items():
        fin = np.flatnonzero(np.isfinite(f["close"]))
        s, e = int(fin[0]), int(fin[-1])
        inst.append(f"{code}\t{dates[s]}\t{dates[e]}\n")
        d = root / "features" / code.lower()
        for name in BARS if factor else BARS[:-1]:
            write_bin(d / f"{name}.day.bin", s, f[name][s : e + 1])
        vol = f["volume"] if raw_volume else f["volume"] / f["factor"]
        write_bin(d / "volume.day.bin", s, vol[s : e + 1])
        if amount:  # CNY: raw typical price x shares
            raw_px = (f["high"] + f["low"] + f["close"]) / 3 / f["factor"]
            write_bin(d / "amount.day.bin", s, (raw_px * f["volume"])[s : e + 1])
    (root / "instruments").mkdir(parents=True, exist_ok=True)
    (root / "instruments" / "all.txt").write_text("".join(inst))
    for p in (cn / "index_membership").iterdir():
        if p.name != "csiall.txt" or csiall:
            shutil.copy(p, root / "instruments" / p.name)
    if industry:
        shutil.copytree(cn / "industry", root / "industry")
    return root


@pytest.fixture(scope="module")
def cn(tmp_path_factory) -> Path:
    return write_tiny_cn(tmp_path_factory.mktemp("cn") / "cn")


@pytest.fixture(scope="module")
def qlib(tmp_path_factory, cn) -> Path:
    return write_tiny_qlib(tmp_path_factory.mktemp("q") / "qlib", cn, industry=True)


# ------------------------------------------------------------------ layout
def test_detect_layout(tmp_path, cn, qlib):
    assert detect_layout(cn).kind == "cn"
    q = detect_layout(qlib)
    assert q.kind == "qlib" and q.prices == qlib.resolve()
    assert q.universe_file("csi300") == qlib.resolve() / "instruments" / "csi300.txt"
    # the prices/ folder of our layout is read as its parent, with a note
    p = detect_layout(cn / "prices")
    assert p.kind == "cn" and p.root == cn.resolve() and "prices/ folder" in p.note
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="Qlib provider folder"):
        detect_layout(tmp_path / "empty")


# ------------------------------------------------------------------ read in place
def test_qlib_folder_equals_cn_layout(cn, qlib):
    a = load_cn(cn, cache=False)
    b = load_cn(qlib, cache=False)
    assert b.meta["layout"] == "qlib"
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.assets, b.assets)
    for f in ("open", "high", "low", "close", "factor", "raw_close", "vwap"):
        np.testing.assert_array_equal(a.field(f), b.field(f), err_msg=f)
    # volume comes back in shares: $volume x $factor (float32 rounding only)
    np.testing.assert_allclose(a.field("volume"), b.field("volume"), rtol=1e-6)
    assert sorted(a.masks) == sorted(b.masks)
    for k in a.masks:
        np.testing.assert_array_equal(a.masks[k], b.masks[k], err_msg=k)
    # no fundamentals: their fields are absent, the size proxy stands in for the cap
    for f in ("mktcap", "shares", "pe", "roe"):
        assert not b.has(f)
    assert b.has("size_proxy") and not a.has("size_proxy")
    assert "fundamentals/total_mv.csv" in b.meta["missing_inputs"]
    assert any("size_proxy" in c for c in b.meta["caveats"])
    assert any("$volume is adjusted" in c and "assumed" in c for c in b.meta["caveats"])
    assert any("typical price" in c for c in b.meta["caveats"])


def test_qlib_indices_and_explicit_missing_field(qlib):
    ix = load_indices(qlib)
    assert list(ix.assets) == ["SH000300"]
    with pytest.raises(DataError, match=r"total_mv\.csv.*deepalpha data import"):
        load_cn(qlib, cache=False, fields=["close", "mktcap"])


def test_amount_gives_vwap_and_detects_the_volume_convention(tmp_path, cn):
    for raw_volume in (False, True):
        q = write_tiny_qlib(tmp_path / f"q{raw_volume}", cn, amount=True, raw_volume=raw_volume)
        p = load_cn(q, cache=False)
        ref = load_cn(cn, cache=False)
        np.testing.assert_allclose(p.field("volume"), ref.field("volume"), rtol=1e-6)
        # amount / shares x factor = the typical price written as amount (within float32)
        traded = p.mask("listed") & (p.field("volume") > 0)
        np.testing.assert_allclose(p.field("vwap")[traded], ref.field("vwap")[traded], rtol=1e-5)
        assert any("vwap = amount / volume" in c for c in p.meta["caveats"])
        want = "raw shares" if raw_volume else "detected from amount"
        assert any(want in c for c in p.meta["caveats"]), p.meta["caveats"]


def test_no_csiall_means_every_listed_stock_and_no_factor(tmp_path, cn):
    q = write_tiny_qlib(tmp_path / "q", cn, csiall=False, factor=False)
    p = load_cn(q, cache=False)
    assert "st_proxy" not in p.masks
    assert not (p.mask("all") & ~p.mask("listed")).any()
    assert p.meta["all_universe"] == "index_history"  # every stock is an index member sometime
    assert (p.field("factor")[p.mask("listed")] == 1).all()
    assert any("no $factor" in c for c in p.meta["caveats"])
    assert any("csiall.txt" in c for c in p.meta["caveats"])


def test_bad_bin_error_names_the_qlib_file(tmp_path, cn):
    q = write_tiny_qlib(tmp_path / "q", cn)
    p = q / "features" / "sh600000" / "low.day.bin"
    raw = np.fromfile(p, dtype="<f4")
    raw[6] = raw[6] * 10  # low above high
    write_bin(p, int(raw[0]), raw[1:])
    with pytest.raises(DataError, match="high < low") as e:
        load_cn(q, cache=False)
    assert e.value.file.startswith(str(q.resolve() / "features"))


# ------------------------------------------------------------------ size proxy
def test_size_proxy_is_a_trailing_mean_of_traded_days():
    v = np.array([[1.0], [np.nan], [3.0], [0.0], [5.0]])
    got = size_proxy(v, window=3, min_days=2)[:, 0]
    np.testing.assert_allclose(got, [np.nan, np.nan, 2.0, np.nan, 4.0])  # t=3: one traded day
    tv = traded_value(np.array([[2.0, 2.0]]), np.array([[10.0, 10.0]]), np.array([[7.0, np.nan]]))
    np.testing.assert_allclose(tv, [[7.0, 20.0]])
    assert cap_field_for(("close", "size_proxy"), "mktcap") == "size_proxy"
    assert cap_field_for(("close", "mktcap", "size_proxy"), "mktcap") == "mktcap"
    assert cap_field_for(("close",), None) is None


def test_decompgrn_dataset_groups_on_the_size_proxy(qlib):
    from deepalpha.train.datasets import SequenceDataset

    p = load_cn(qlib, cache=False)
    ds = SequenceDataset(p, window=5, horizon=2, universe=None, cap_field="mktcap", n_groups=2)
    t = int(ds.sample_dates()[-20])
    b = ds.batch(t)
    assert b is not None and b.group_ids is not None
    assert set(b.group_ids.tolist()) <= {0, 1, 2}


# ------------------------------------------------------------------ risk model inputs
def test_risk_inputs_listed_in_one_error(cn, qlib, tmp_path):
    assert risk_inputs_missing(cn) == []
    q = write_tiny_qlib(tmp_path / "bare", cn)
    miss = risk_inputs_missing(q)
    assert any("total_mv.csv" in m for m in miss) and any("industr" in m for m in miss)
    with pytest.raises(DataError) as e:
        require_risk_inputs(q, "System A")
    msg = str(e.value)
    assert msg.startswith("System A needs") and "roe.csv" in msg and "data import" in msg


# ------------------------------------------------------------------ CLI
def test_cli_data_info_on_a_qlib_folder(tmp_path, cn):
    q = write_tiny_qlib(tmp_path / "q", cn)
    r = subprocess.run(
        [sys.executable, "-m", "deepalpha", "data", "info", str(q), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "size_proxy" in r.stdout and "csi300" in r.stdout
    assert "qlib" in r.stdout and "missing input" in r.stdout and "total_mv.csv" in r.stdout
    assert len(STOCKS) == 4


# ------------------------------------------------------------------ export and read back
def test_export_qlib_round_trip(tmp_path, cn):
    from deepalpha.data.export import export_qlib, mask_to_spells

    a = load_cn(cn, cache=False)
    q = export_qlib(a, tmp_path / "q", indices=load_indices(cn))
    b = load_cn(q, cache=False)
    assert b.meta["layout"] == "qlib"
    for f in ("open", "high", "low", "close", "factor", "vwap"):
        np.testing.assert_array_equal(a.field(f), b.field(f), err_msg=f)
    np.testing.assert_allclose(a.field("volume"), b.field("volume"), rtol=1e-6)
    for k in ("listed", "suspended", "csi300", "csi500", "csi800", "csi1000", "all"):
        np.testing.assert_array_equal(a.mask(k), b.mask(k), err_msg=k)
    assert list(load_indices(q).assets) == ["SH000300"]
    # spells are the inverse of spells_to_mask
    m = a.mask("csi300")
    sp = mask_to_spells(m, a.dates, a.assets)
    from deepalpha.data.universe import spells_to_mask

    codes = np.array([c for c, _, _ in sp], dtype="U8")
    s = np.array([x for _, x, _ in sp], dtype="datetime64[D]")
    e = np.array([x for _, _, x in sp], dtype="datetime64[D]")
    np.testing.assert_array_equal(spells_to_mask(codes, s, e, a.dates, a.assets), m)


# ------------------------------------------------------------------ run and backtest inputs
def test_run_accepts_a_qlib_folder(tmp_path, qlib):
    from deepalpha.errors import ConfigError
    from deepalpha.workflows.config import DecompGRNConfig
    from deepalpha.workflows.data import resolve_data

    cfg = DecompGRNConfig.model_validate({"data": {"path": str(qlib)}})
    assert resolve_data(cfg.data, tmp_path) == qlib.resolve()
    with pytest.raises(ConfigError, match="Qlib provider folder"):
        resolve_data(cfg.data, tmp_path, tmp_path)


def test_backtest_on_a_qlib_folder_uses_the_size_proxy(tmp_path, cn):
    import polars as pl

    from deepalpha.portfolio.enhance import BacktestConfig, backtest_predictions

    q = write_tiny_qlib(tmp_path / "q", cn)  # no industry table, no fundamentals
    p = load_cn(q, cache=False)
    rng = np.random.default_rng(0)
    T = range(70, 110)
    preds = pl.DataFrame(
        {
            "date": np.repeat(p.dates[list(T)], len(p.assets)),
            "asset": np.tile(p.assets.astype(str), len(T)),
            "score": rng.normal(size=len(T) * len(p.assets)),
        }
    )
    res = backtest_predictions(preds, q, BacktestConfig(index="csi300"))
    assert res.metrics["rebalances"] > 0 and np.isfinite(res.metrics["excess_return"])
    assert any("size_proxy" in c for c in res.info["caveats"])
    assert "simple" in res.info["risk_model"]


def test_a_missing_factor_on_a_priced_bar_is_carried(tmp_path, cn):
    from deepalpha.data.cn import fill_factor_gaps

    f = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan]], np.float32)
    c = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, np.nan]], np.float32)
    assert fill_factor_gaps(f, c) == 3
    np.testing.assert_array_equal(f, [[2.0, 1.0], [2.0, 1.0], [2.0, np.nan]])
    q = write_tiny_qlib(tmp_path / "q", cn)
    p = q / "features" / "sh600000" / "factor.day.bin"
    raw = np.fromfile(p, dtype="<f4")
    raw[45] = np.nan
    write_bin(p, int(raw[0]), raw[1:])
    b = load_cn(q, cache=False)
    assert any("no $factor" in c for c in b.meta["caveats"])
    assert np.isfinite(b.field("factor")[b.mask("listed")]).all()
