"""Round trips of the real data (``../shared/data/cn``): written out as (a) a plain Qlib provider
folder and (b) Tushare-style long Parquet tables, then read back through the Qlib reader and
`deepalpha data import`: the same bars (to float32 precision) and the same universe masks.

Slow (a full export, import and three cold loads: about a minute on 2 cores) and skipped without
the data. Timings are printed (``pytest -s``) with the load average.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deepalpha.data.cn import load_cn, load_indices
from deepalpha.data.export import export_qlib
from deepalpha.data.fundamentals import read_wide_csv
from deepalpha.data.importer import import_tables
from deepalpha.data.stockinfo import load_stock_info

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


def _tushare_tables(cn_path: Path, a, d: Path) -> list[str]:
    """Tushare-style long tables of the real data in ``d``; returns the import CLI arguments."""
    listed = a.mask("listed") & np.isfinite(a.field("close"))
    t, n = np.nonzero(listed)
    f = a.field("factor")[t, n].astype(np.float64)
    ts = np.array([f"{c[2:]}.{c[:2]}" for c in a.assets.tolist()])
    pl.DataFrame(
        {
            "ts_code": ts[n],
            "trade_date": a.dates[t],
            **{
                k: a.field(k)[t, n].astype(np.float64) / f for k in ("open", "high", "low", "close")
            },
            "vol": a.field("volume")[t, n].astype(np.float64) / 100,
            "adj_factor": f,
        }
    ).write_parquet(d / "daily.parquet")
    fund = None
    for name in ("total_mv", "pe", "pb", "ps", "dv_ratio", "roe", "roa", "debt_to_assets", "ebit"):
        periods, codes, vals = read_wide_csv(cn_path / "fundamentals" / f"{name}.csv")
        long = pl.DataFrame(
            {
                "ts_code": np.repeat([f"{c[2:]}.{c[:2]}" for c in codes], len(periods)),
                "end_date": np.tile(periods, len(codes)),
                name: vals.T.reshape(-1),
            }
        ).with_columns(pl.col(name).fill_nan(None))
        fund = (
            long
            if fund is None
            else fund.join(long, on=["ts_code", "end_date"], how="full", coalesce=True)
        )
    assert fund is not None
    fund.write_parquet(d / "fina.parquet")
    mem = []
    for p in sorted((cn_path / "index_membership").iterdir()):
        for ln in p.read_text().splitlines():
            c, s, e = ln.split("\t")
            if c[2:].isdigit():  # the source lists SHT00018 in 2005-2007 (the loader skips it)
                mem.append({"index": p.stem, "code": c, "start": s, "end": e})
    pl.DataFrame(mem).write_parquet(d / "membership.parquet")
    info = load_stock_info(cn_path)
    info.select(pl.col("asset").alias("ts_code"), "name", "industry", "list_date").filter(
        pl.col("industry").is_not_null()
    ).write_csv(d / "stock_basic.csv")
    return [
        "--bars", str(d / "daily.parquet"), "--prices", "raw",
        "--fundamentals", str(d / "fina.parquet"), "--membership", str(d / "membership.parquet"),
        "--industries", str(d / "stock_basic.csv"),
    ]  # fmt: skip


def test_real_tushare_tables_import_round_trip(tmp_path, cn_path, original):
    a = original
    args = _tushare_tables(cn_path, a, tmp_path)
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "deepalpha", "data", "import", str(tmp_path / "imp"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert r.returncode == 0, r.stderr
    _say(f"deepalpha data import, bars + fundamentals + membership + industries "
         f"(peak RSS {rss:.0f} MB, with its check load)", t0)  # fmt: skip
    t0 = time.perf_counter()
    b = load_cn(tmp_path / "imp", cache=False)
    _say("load_cn(imported folder), cold", t0)
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.assets, b.assets)
    have = np.isfinite(a.field("close"))  # the 3 missing bars are filled as suspensions
    for k in (*BARS, "volume", "mktcap", "pe", "roe"):
        np.testing.assert_allclose(b.field(k)[have], a.field(k)[have], rtol=2e-6, err_msg=k)
    assert sorted(a.masks) == sorted(b.masks)
    for k in a.masks:  # the 3 missing bars come back as suspensions: the same masks
        np.testing.assert_array_equal(b.mask(k), a.mask(k), err_msg=k)


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
