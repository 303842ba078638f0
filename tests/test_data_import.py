"""`deepalpha data import`: long tables (Tushare names, or any names through a map) -> a data
folder that loads like the original.

The tiny CN layout of `test_data_errors` is written out as Tushare-style long tables (raw prices
+ ``adj_factor``, ``vol`` in lots, ``amount`` in 1,000 CNY, suspended days omitted as Tushare
does) and imported back: bars, masks and fundamentals must match the original.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_data_errors import INDICES, STOCKS, tiny_bars, tiny_dates, write_tiny_cn

from deepalpha.data.cn import load_cn, load_indices
from deepalpha.data.fundamentals import read_wide_csv
from deepalpha.data.importer import import_tables
from deepalpha.data.importer.membership import snapshots_to_spells
from deepalpha.errors import ConfigError, DataError

FIELDS = ("open", "high", "low", "close", "factor", "raw_close", "mktcap", "pe", "roe")


def ts(code: str) -> str:
    return f"{code[2:]}.{code[:2]}"


def write_tables(cn: Path, d: Path, *, ann: bool = False) -> dict[str, Path]:
    """Tushare-style long tables of the tiny CN layout at ``cn`` into folder ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    dates = tiny_dates()
    rows, irows = [], []
    for code, f in tiny_bars().items():
        for t in range(len(dates)):
            if not np.isfinite(f["close"][t]) or f["volume"][t] == 0:
                continue  # Tushare has no row for a suspended day
            raw = {k: float(f[k][t] / f["factor"][t]) for k in ("open", "high", "low", "close")}
            typ = (raw["high"] + raw["low"] + raw["close"]) / 3
            row = {
                "ts_code": ts(code),
                "trade_date": str(dates[t]).replace("-", ""),
                **raw,
                "vol": float(f["volume"][t]) / 100,
                "amount": typ * float(f["volume"][t]) / 1000,
                "adj_factor": float(f["factor"][t]),
            }
            (irows if code in INDICES else rows).append(row)
    paths = {"bars": d / "daily.parquet", "index": d / "index_daily.csv"}
    pl.DataFrame(rows).write_parquet(paths["bars"])
    pl.DataFrame(irows).drop("adj_factor").write_csv(paths["index"])
    mem = []
    for p in sorted((cn / "index_membership").iterdir()):
        for ln in p.read_text().splitlines():
            c, s, e = ln.split("\t")
            mem.append({"index": p.stem, "code": c, "start": s, "end": e})
    paths["membership"] = d / "membership.csv"
    pl.DataFrame(mem).write_csv(paths["membership"])
    fund = None
    for name in ("total_mv", "pe", "pb", "ps", "dv_ratio", "roe", "roa", "debt_to_assets", "ebit"):
        periods, codes, vals = read_wide_csv(cn / "fundamentals" / f"{name}.csv")
        long = pl.DataFrame(
            {
                "ts_code": np.repeat([ts(c) for c in codes], len(periods)),
                "end_date": np.tile([str(p).replace("-", "") for p in periods], len(codes)),
                name: vals.T.reshape(-1),
            }
        ).with_columns(pl.col(name).fill_nan(None))
        fund = long if fund is None else fund.join(long, on=["ts_code", "end_date"])
    assert fund is not None
    if ann:
        end = pl.col("end_date").str.strptime(pl.Date, "%Y%m%d")
        fund = fund.with_columns(
            (end + pl.duration(days=10)).dt.strftime("%Y%m%d").alias("ann_date")
        )
    paths["fundamentals"] = d / "fina.parquet"
    fund.write_parquet(paths["fundamentals"])
    basic = pl.read_csv(cn / "industry" / "stock_basic.csv", encoding="utf8-lossy")
    basic = basic.rename({c: c.lstrip("\ufeff") for c in basic.columns})
    paths["industries"] = d / "stock_basic.csv"
    basic.select(
        pl.col("股票代码").alias("ts_code"),
        pl.col("股票名称").alias("name"),
        pl.col("行业").alias("industry"),
        pl.col("上市日期").str.slice(0, 10).alias("list_date"),
    ).write_csv(paths["industries"])
    return paths


@pytest.fixture(scope="module")
def cn(tmp_path_factory) -> Path:
    return write_tiny_cn(tmp_path_factory.mktemp("cn") / "cn")


@pytest.fixture(scope="module")
def tables(tmp_path_factory, cn) -> dict[str, Path]:
    return write_tables(cn, tmp_path_factory.mktemp("tables"))


def _import(out: Path, t: dict[str, Path], **kw):
    args = dict(
        bars=str(t["bars"]),
        prices="raw",
        membership=str(t["membership"]),
        fundamentals=str(t["fundamentals"]),
        industries=str(t["industries"]),
        index_bars=str(t["index"]),
    )
    args.update(kw)
    return import_tables(out, **args)


def test_tushare_tables_import_to_the_same_panel(tmp_path, cn, tables):
    rep = _import(tmp_path / "imp", tables)
    assert rep.stocks == len(STOCKS) and any("suspended" in n for n in rep.notes)
    a = load_cn(cn, cache=False)
    b = load_cn(tmp_path / "imp", cache=False)
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.assets, b.assets)
    for f in FIELDS:
        np.testing.assert_allclose(b.field(f), a.field(f), rtol=2e-6, err_msg=f)
    np.testing.assert_allclose(b.field("volume"), a.field("volume"), rtol=1e-6)
    traded = a.mask("listed") & (a.field("volume") > 0)
    np.testing.assert_allclose(b.field("vwap")[traded], a.field("vwap")[traded], rtol=1e-5)
    assert sorted(a.masks) == sorted(b.masks)
    for k in a.masks:
        np.testing.assert_array_equal(b.masks[k], a.masks[k], err_msg=k)
    ix = load_indices(tmp_path / "imp")
    assert list(ix.assets) == list(INDICES)
    # nothing left beside the target
    assert [p.name for p in tmp_path.iterdir()] == ["imp"]


def test_announcement_dates_replace_the_deadline(tmp_path, cn):
    t = write_tables(cn, tmp_path / "t", ann=True)  # each period announced 10 days after its end
    _import(tmp_path / "imp", t)
    assert (tmp_path / "imp" / "fundamentals" / "ann_date.csv").is_file()
    p = load_cn(tmp_path / "imp", cache=False, fields=["roe"])
    ref = load_cn(cn, cache=False, fields=["roe"])
    periods, codes, vals = read_wide_csv(cn / "fundamentals" / "roe.csv")
    h1 = dict(zip(codes.tolist(), vals[list(periods).index(np.datetime64("2020-06-30"))]))
    q1 = dict(zip(codes.tolist(), vals[list(periods).index(np.datetime64("2020-03-31"))]))
    # H1 2020 announced 07-10: usable from 07-11 (the deadline rule waits until 09-01)
    t = int(np.searchsorted(p.dates, np.datetime64("2020-07-11")))
    for n, a in enumerate(p.assets.tolist()):
        assert p.field("roe")[t, n] == pytest.approx(h1[a], rel=1e-6)
        assert ref.field("roe")[t, n] == pytest.approx(q1[a], rel=1e-6)
        assert p.field("roe")[t - 1, n] == pytest.approx(q1[a], rel=1e-6)
    assert any("announcement date" in c for c in p.meta["caveats"])


def test_generic_names_through_a_map_and_adjusted_prices(tmp_path, cn):
    b = load_cn(cn, cache=False, fields=["open", "high", "low", "close", "volume", "factor"])
    rows = []
    for n, code in enumerate(b.assets.tolist()):
        for t in np.flatnonzero(b.mask("listed")[:, n]):
            rows.append(
                {
                    "TradingDay": str(b.dates[t]),
                    "SecuCode": code,
                    **{
                        k.upper(): float(b.field(k)[t, n]) for k in ("open", "high", "low", "close")
                    },
                    "Vol": float(b.field("volume")[t, n]),
                    "AdjFactor": float(b.field("factor")[t, n]),
                }
            )
    pl.DataFrame(rows).write_csv(tmp_path / "bars.csv")
    m = "date=TradingDay,code=SecuCode,open=OPEN,high=HIGH,low=LOW,close=CLOSE"
    rep = import_tables(
        tmp_path / "imp",
        bars=str(tmp_path / "bars.csv"),
        prices="adjusted",
        mapping=dict(x.split("=") for x in (m + ",volume=Vol,factor=AdjFactor").split(",")),
    )
    assert rep.stocks == len(STOCKS)
    p = load_cn(tmp_path / "imp", cache=False)
    for f in ("close", "factor", "volume", "raw_close"):
        np.testing.assert_allclose(
            p.field(f),
            b.field(f) if f != "raw_close" else b.field("close") / b.field("factor"),
            rtol=1e-6,
            err_msg=f,
        )
    assert not p.has("mktcap") and p.has("size_proxy")


# ------------------------------------------------------------------ refusals
def _bars_csv(path: Path, edit) -> Path:
    df = pl.read_parquet(path)
    df = edit(df)
    out = path.with_name("bad.csv")
    df.write_csv(out)
    return out


@pytest.mark.parametrize(
    ("edit", "match", "column"),
    [
        (
            lambda d: pl.concat([d, d.head(1)]),
            r"duplicate \(date=2020-06-01, code=SH600000\)",
            "code",
        ),
        (
            lambda d: d.with_columns(
                pl.when(pl.int_range(pl.len()) == 4)
                .then(0.5)
                .otherwise(pl.col("high"))
                .alias("high")
            ),
            "row 5: high < low",
            "high",
        ),
        (
            lambda d: d.with_columns(
                pl.when(pl.int_range(pl.len()) == 2)
                .then(-1.0)
                .otherwise(pl.col("close"))
                .alias("close")
            ),
            "row 3: non-positive close",
            "close",
        ),
        (
            lambda d: d.with_columns(
                pl.when(pl.int_range(pl.len()) == 6)
                .then(pl.lit("2020-13-45"))
                .otherwise(pl.col("trade_date"))
                .alias("trade_date")
            ),
            "row 7: unparseable date",
            "date",
        ),
        (lambda d: d.drop("low"), "missing column 'low'", "low"),
        (
            lambda d: d.with_columns(
                pl.when(pl.int_range(pl.len()) == 1)
                .then(pl.lit("XX1"))
                .otherwise(pl.col("ts_code"))
                .alias("ts_code")
            ),
            "row 2: unknown stock-code style",
            "code",
        ),
    ],
    ids=["duplicate", "high<low", "non-positive", "bad-date", "missing-column", "unknown-code"],
)
def test_bad_bars_are_refused_and_nothing_is_written(tmp_path, tables, edit, match, column):
    bad = _bars_csv(tables["bars"], edit)
    with pytest.raises(DataError, match=match) as e:
        import_tables(tmp_path / "out", bars=str(bad), prices="raw")
    assert e.value.file == str(bad) and e.value.field == column
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_existing_target_needs_overwrite(tmp_path, tables):
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="--overwrite"):
        import_tables(tmp_path / "out", bars=str(tables["bars"]), prices="raw")
    rep = import_tables(tmp_path / "out", bars=str(tables["bars"]), prices="raw", overwrite=True)
    assert (rep.out / "prices" / "calendars" / "day.txt").is_file()


def test_amount_in_other_units_is_refused(tmp_path, tables):
    bad = _bars_csv(tables["bars"], lambda d: d.rename({"vol": "volume"}))  # lots read as shares
    with pytest.raises(DataError, match="units differ"):
        import_tables(tmp_path / "out", bars=str(bad), prices="raw")


# ------------------------------------------------------------------ membership shapes
def test_daily_snapshots_become_spells():
    d = np.array(["2020-01-31", "2020-02-28", "2020-03-31"], dtype="datetime64[D]")
    dates = np.array([d[0], d[1], d[2], d[0], d[2]])
    codes = np.array(["SH600000"] * 3 + ["SZ000001"] * 2)
    got = snapshots_to_spells(dates, codes, np.datetime64("2020-04-10"))
    assert got == [
        ("SH600000", d[0], np.datetime64("2020-04-10")),
        ("SZ000001", d[0], np.datetime64("2020-02-27")),
        ("SZ000001", d[2], np.datetime64("2020-04-10")),
    ]


def test_cli_import_then_info(tmp_path, tables):
    r = subprocess.run(
        [sys.executable, "-m", "deepalpha", "data", "import", str(tmp_path / "imp"),
         "--bars", str(tables["bars"]), "--prices", "raw",
         "--membership", str(tables["membership"]), "--industries", str(tables["industries"])],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "imported 4 stocks" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "deepalpha", "data", "import", str(tmp_path / "x"),
         "--bars", str(tables["bars"]), "--prices", "sideways"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr and "raw or adjusted" in r.stderr


def test_export_long_then_import_round_trip(tmp_path, cn):
    from deepalpha.data.export import export_long

    a = load_cn(cn, cache=False)
    d = export_long(a, tmp_path / "long")
    import_tables(
        tmp_path / "imp",
        bars=str(d / "bars.parquet"),
        prices="adjusted",
        membership=str(d / "membership.parquet"),
    )
    b = load_cn(tmp_path / "imp", cache=False)
    for f in ("open", "high", "low", "close", "factor", "volume", "vwap", "mktcap", "pe"):
        np.testing.assert_allclose(b.field(f), a.field(f), rtol=1e-6, err_msg=f)
    for k in ("listed", "suspended", "csi300", "csi500", "csi1000", "all"):
        np.testing.assert_array_equal(b.mask(k), a.mask(k), err_msg=k)


def test_map_from_yaml_and_pairs(tmp_path):
    from deepalpha.data.importer import parse_map

    (tmp_path / "m.yaml").write_text("date: TradingDay\ncode: SecuCode\n")
    got = parse_map([str(tmp_path / "m.yaml"), "close=ClosePrice,volume=Vol"])
    assert got == {"date": "TradingDay", "code": "SecuCode", "close": "ClosePrice", "volume": "Vol"}
    with pytest.raises(DataError, match="canonical=source"):
        parse_map(["close"])


def test_daily_basic_joins_and_monthly_index_weights(tmp_path, cn, tables):
    """A second bars table (Tushare daily_basic) adds daily market cap and valuation by
    (date, code); Tushare index_weight snapshots (index_code, con_code, trade_date) become spells."""
    bars = pl.read_parquet(tables["bars"])
    basic = bars.select(
        "ts_code",
        "trade_date",
        pl.col("close"),  # already in the bars: ignored
        (pl.col("close") * 1e4).alias("total_mv"),  # 10,000 CNY
        pl.lit(12.5).alias("pe"),
        pl.lit(1.0).alias("turnover_rate"),
    )
    basic.write_parquet(tmp_path / "daily_basic.parquet")
    month_ends = ["20200630", "20200731", "20200831"]
    weights = pl.DataFrame(
        {
            "index_code": ["000300.SH"] * 5,
            "con_code": ["600000.SH", "600000.SH", "000002.SZ", "000002.SZ", "600000.SH"],
            "trade_date": [
                month_ends[0],
                month_ends[1],
                month_ends[0],
                month_ends[2],
                month_ends[2],
            ],
            "weight": [1.0] * 5,
        }
    )
    weights.write_csv(tmp_path / "index_weight.csv")
    rep = import_tables(
        tmp_path / "imp",
        bars=[str(tables["bars"]), str(tmp_path / "daily_basic.parquet")],
        prices="raw",
        membership=str(tmp_path / "index_weight.csv"),
    )
    p = load_cn(tmp_path / "imp", cache=False, fields=["close", "raw_close", "mktcap", "pe"])
    assert rep.stocks == len(STOCKS)
    traded = p.mask("listed") & np.isfinite(p.field("pe"))
    # daily total_mv (x 1e4 CNY) of a raw close x 1e4: mktcap = raw close x 1e8
    np.testing.assert_allclose(
        p.field("mktcap")[traded], p.field("raw_close")[traded] * 1e8, rtol=1e-5
    )
    assert (p.field("pe")[traded] == 12.5).all()
    m = p.mask("csi300")
    j = list(p.assets).index("SZ000002")
    d = {str(x): k for k, x in enumerate(p.dates)}
    assert m[d["2020-06-30"], j] and not m[d["2020-07-31"], j] and m[d["2020-08-31"], j]
    assert m[d["2020-07-30"], j]  # a member until the day before the snapshot that omits it


def test_unmapped_industries_are_reported_and_mapped(tmp_path, tables):
    ind = pl.DataFrame(
        {"ts_code": [ts(c) for c in STOCKS], "industry": ["银行", "火星采矿", "银行", "软件服务"]}
    )
    ind.write_csv(tmp_path / "ind.csv")
    spells = pl.DataFrame(
        {"index": ["csi300"], "code": ["SH600000"], "start": ["2020-06-01"], "end": [None]},
        schema={"index": pl.String, "code": pl.String, "start": pl.String, "end": pl.String},
    )
    spells.write_csv(tmp_path / "spells.csv")
    rep = import_tables(
        tmp_path / "a",
        bars=str(tables["bars"]),
        prices="raw",
        industries=str(tmp_path / "ind.csv"),
        membership=str(tmp_path / "spells.csv"),
    )
    assert any("火星采矿" in n and "--industry-map" in n for n in rep.notes)
    p = load_cn(tmp_path / "a", cache=False, fields=["close"])
    j = list(p.assets).index("SH600000")
    assert p.mask("csi300")[-1, j]  # an empty end: a member to the last day
    rep = import_tables(
        tmp_path / "b",
        bars=str(tables["bars"]),
        prices="raw",
        industries=str(tmp_path / "ind.csv"),
        industry_map={"火星采矿": "nonferrous_metals"},
    )
    assert not any("map to no" in n for n in rep.notes)
    from deepalpha.data.stockinfo import load_stock_info

    info = load_stock_info(tmp_path / "b")
    assert info.filter(pl.col("asset") == "SZ300001")["industry"][0] == "nonferrous_metals"


def test_vol_mapped_explicitly_is_shares(tmp_path, tables):
    bars = pl.read_parquet(tables["bars"]).with_columns(
        pl.col("vol") * 100, pl.col("amount") * 1000
    )
    bars.write_parquet(tmp_path / "b.parquet")
    import_tables(
        tmp_path / "a", bars=str(tmp_path / "b.parquet"), prices="raw", mapping={"volume": "vol"}
    )
    a = load_cn(tmp_path / "a", cache=False, fields=["volume"])
    import_tables(tmp_path / "t", bars=str(tables["bars"]), prices="raw")
    t = load_cn(tmp_path / "t", cache=False, fields=["volume"])
    np.testing.assert_allclose(a.field("volume"), t.field("volume"), rtol=1e-6)
