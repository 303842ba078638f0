"""Round trips of the real data (``../shared/data/cn``): written out as (a) a plain Qlib provider
folder and (b) Tushare-style long Parquet tables, then read back through the Qlib reader and
`deepalpha data import`: the same bars (to float32 precision) and the same universe masks.

Slow (a full export, import and three cold loads: about a minute on 2 cores) and skipped without
the data. Timings are printed (``pytest -s``) with the load average.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deepalpha.data.cn import load_cn, load_indices
from deepalpha.data.export import export_qlib
from deepalpha.data.importer import import_tables

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
BARS = ("open", "high", "low", "close", "factor")
UNIVERSES = ("listed", "suspended", "csi300", "csi500", "csi800", "csi1000", "all")


def _say(what: str, t0: float) -> None:
    print(f"{what}: {time.perf_counter() - t0:.1f} s (load average {os.getloadavg()[0]:.2f})")


@pytest.fixture(scope="module")
def original(cn_path):
    return load_cn(cn_path, cache=False)


def test_real_qlib_folder_round_trip(tmp_path, cn_path, original):
    a = original
    t0 = time.perf_counter()
    q = export_qlib(a, tmp_path / "qlib", indices=load_indices(cn_path))
    _say("export_qlib", t0)
    t0 = time.perf_counter()
    b = load_cn(q, cache=False)
    _say("load_cn(Qlib folder), cold", t0)
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.assets, b.assets)
    for f in (*BARS, "vwap"):
        np.testing.assert_array_equal(a.field(f), b.field(f), err_msg=f)
    np.testing.assert_allclose(a.field("volume"), b.field("volume"), rtol=1e-6)
    for k in UNIVERSES:
        np.testing.assert_array_equal(a.mask(k), b.mask(k), err_msg=k)
    assert b.has("size_proxy") and not b.has("mktcap")


def test_real_tushare_tables_import_round_trip(tmp_path, cn_path, original):
    a = original
    listed = a.mask("listed") & np.isfinite(a.field("close"))
    t, n = np.nonzero(listed)
    f = a.field("factor")[t, n].astype(np.float64)
    bars = pl.DataFrame(
        {
            "ts_code": np.array([f"{c[2:]}.{c[:2]}" for c in a.assets.tolist()])[n],
            "trade_date": a.dates[t],
            **{
                k: a.field(k)[t, n].astype(np.float64) / f for k in ("open", "high", "low", "close")
            },
            "vol": a.field("volume")[t, n].astype(np.float64) / 100,
            "adj_factor": f,
        }
    )
    bars.write_parquet(tmp_path / "daily.parquet")
    del bars
    t0 = time.perf_counter()
    rep = import_tables(
        tmp_path / "imp",
        bars=str(tmp_path / "daily.parquet"),
        prices="raw",
    )
    _say(f"import_tables ({rep.stocks} stocks x {rep.days} days, with its check load)", t0)
    t0 = time.perf_counter()
    b = load_cn(tmp_path / "imp", cache=False)
    _say("load_cn(imported folder), cold", t0)
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.assets, b.assets)
    have = np.isfinite(a.field("close"))  # the 3 missing bars are filled as suspensions
    for k in (*BARS, "volume"):
        np.testing.assert_allclose(b.field(k)[have], a.field(k)[have], rtol=2e-6, err_msg=k)
    for k in ("listed", "suspended"):
        np.testing.assert_array_equal(a.mask(k), b.mask(k), err_msg=k)


def test_real_membership_spells_import(tmp_path, cn_path, original):
    """The membership files as a long spell table and as monthly snapshots give the same masks."""
    rows = []
    for name in ("csi300", "csi500", "csi1000"):
        for ln in (Path(cn_path) / "index_membership" / f"{name}.txt").read_text().splitlines():
            c, s, e = ln.split("\t")
            if c.startswith(("SH", "SZ", "BJ")) and c[2:].isdigit():
                rows.append({"index": name, "code": c, "start": s, "end": e})
    pl.DataFrame(rows).write_csv(tmp_path / "spells.csv")
    a = original
    sub = a.sel(dates=slice("2015-01-01", "2015-12-31"))
    t, n = np.nonzero(sub.mask("listed"))
    pl.DataFrame(
        {
            "trade_date": sub.dates[t],
            "ts_code": sub.assets[n].astype(str),
            **{k: sub.field(k)[t, n].astype(np.float64) for k in ("open", "high", "low", "close")},
            "volume": sub.field("volume")[t, n].astype(np.float64),
            "factor": sub.field("factor")[t, n].astype(np.float64),
        }
    ).write_parquet(tmp_path / "bars.parquet")
    import_tables(
        tmp_path / "imp",
        bars=str(tmp_path / "bars.parquet"),
        prices="adjusted",
        membership=str(tmp_path / "spells.csv"),
    )
    b = load_cn(tmp_path / "imp", cache=False)
    cols = np.searchsorted(sub.assets, b.assets)  # stocks listed in 2015
    for k in ("csi300", "csi500", "csi1000"):
        np.testing.assert_array_equal(b.mask(k), sub.mask(k)[:, cols], err_msg=k)
        assert not sub.mask(k)[:, np.setdiff1d(np.arange(len(sub.assets)), cols)].any()
