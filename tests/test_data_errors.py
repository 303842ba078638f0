"""Bad input raises `DataError` naming the place (file, field, code, date).

`write_tiny_cn` builds a small, valid CN layout (the same files as ``../shared/data/cn``); each
test breaks one thing and checks the loader's error. Other test modules import the builder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from deepalpha.data.cn import load_cn, load_indices
from deepalpha.data.qlib_bin import write_bin
from deepalpha.errors import DataError

STOCKS = ("SH600000", "SZ300001", "SH688001", "SZ000002")
INDICES = ("SH000300",)
FUND_FILES = ("total_mv", "pe", "pb", "ps", "dv_ratio", "roe", "roa", "debt_to_assets", "ebit")


def tiny_dates(n: int = 120, start: str = "2020-06-01") -> np.ndarray:
    d = np.arange(np.datetime64(start), np.datetime64(start) + 2 * n, dtype="datetime64[D]")
    return d[np.is_busday(d)][:n]


def tiny_bars(seed: int = 0, n: int = 120) -> dict[str, dict[str, np.ndarray]]:
    """Per code: full-length ``[T]`` arrays (NaN outside the history) for the six bin fields.

    Planted events (raw prices): SH600000 closes limit-up (+10 %) on day 30 and goes ex-dividend
    on day 40 (factor 1.0 -> 1.05); SZ300001 closes +10 % on day 50 (before 2020-08-24: locked)
    and +10 % on day 80 (after: not locked); SH688001 lists on day 10; SZ000002 is suspended on
    days 60-62 and ends on day 100; SZ000002 has a one-price +5 % bar on day 70, and leaves
    CSI All Share on days 85-94 (the ST proxy) where it closes exactly +5 % on day 88 (an
    ordinary bar) and +7 % on day 90.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, np.ndarray]] = {}
    for k, code in enumerate(STOCKS + INDICES):
        ret = rng.normal(0, 0.015, n).clip(-0.06, 0.06)
        raw = np.round(10.0 * (k + 1) * np.exp(np.cumsum(ret)), 2)
        factor = np.ones(n)
        vol = rng.integers(1_000, 100_000, n).astype(float)
        if code == "SH600000":
            raw[30] = np.floor(raw[29] * 1.10 * 100 + 0.5) / 100
            raw[31:] = np.round(raw[31:] * raw[30] / raw[31], 2)
            factor[40:] = 1.05
            raw[40:] = np.round(raw[40:] / 1.05, 2)
        if code == "SZ300001":
            for t in (50, 80):
                raw[t] = np.floor(raw[t - 1] * 1.10 * 100 + 0.5) / 100
                raw[t + 1 :] = np.round(raw[t + 1 :] * raw[t] / raw[t + 1], 2)
        if code == "SZ000002":
            raw[60:63] = raw[59]
            vol[60:63] = 0.0
            for t, move in ((70, 1.05), (88, 1.05), (90, 1.07)):
                raw[t] = np.floor(raw[t - 1] * move * 100 + 0.5) / 100
                raw[t + 1 :] = np.round(raw[t + 1 :] * raw[t] / raw[t + 1], 2)
        spread = np.abs(rng.normal(0, 0.01, n)) * raw
        high = np.round(raw + spread, 2)
        low = np.round(np.maximum(raw - spread, 0.01), 2)
        opn = np.round(np.clip(raw * (1 + rng.normal(0, 0.005, n)), low, high), 2)
        if code == "SZ000002":
            high[60:63] = low[60:63] = opn[60:63] = raw[59]
            high[70] = low[70] = opn[70] = raw[70]
        f = {
            "open": opn * factor,
            "high": high * factor,
            "low": low * factor,
            "close": raw * factor,
            "volume": vol,
            "factor": factor,
        }
        f = {a: b.astype(np.float32) for a, b in f.items()}
        if code == "SH688001":
            for a in f:
                f[a][:10] = np.nan
        if code == "SZ000002":
            for a in f:
                f[a][101:] = np.nan
        out[code] = f
    return out


def write_tiny_cn(root: str | Path, *, seed: int = 0, n: int = 120) -> Path:
    """Write a small valid CN layout at ``root`` and return it."""
    root = Path(root)
    dates = tiny_dates(n)
    prices = root / "prices"
    (prices / "calendars").mkdir(parents=True, exist_ok=True)
    (prices / "calendars" / "day.txt").write_text("".join(f"{d}\n" for d in dates))
    bars = tiny_bars(seed, n)
    inst = []
    for code, f in bars.items():
        fin = np.flatnonzero(np.isfinite(f["close"]))
        s, e = int(fin[0]), int(fin[-1])
        inst.append(f"{code}\t{dates[s]}\t{dates[e]}\n")
        for name, v in f.items():
            write_bin(prices / "features" / code.lower() / f"{name}.day.bin", s, v[s : e + 1])
    (prices / "instruments").mkdir(parents=True, exist_ok=True)
    (prices / "instruments" / "all.txt").write_text("".join(inst))

    mem = root / "index_membership"
    mem.mkdir(parents=True, exist_ok=True)
    d = [str(x) for x in dates]
    spells = {
        "csi300": [("SH600000", "2005-01-04", d[59]), ("SZ000002", d[60], "2030-01-01")],
        "csi500": [("SZ300001", d[0], d[99]), ("SZ399999", d[0], d[5])],  # unknown stock
        "csi800": [("SH600000", "2005-01-04", d[59]), ("SZ300001", d[0], d[99])],
        "csi1000": [("SH688001", d[20], d[119])],
        "csiall": [(c, d[5], d[119]) for c in STOCKS if c != "SZ000002"]
        + [("SZ000002", d[5], d[84]), ("SZ000002", d[95], d[119])],
    }
    for name, rows in spells.items():
        (mem / f"{name}.txt").write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in rows))

    fund = root / "fundamentals"
    fund.mkdir(parents=True, exist_ok=True)
    periods = ["20191231", "20200331", "20200630", "20200731", "20200930"]
    rng = np.random.default_rng(seed + 1)
    for name in FUND_FILES:
        lines = ["," + ",".join(f"{c[2:]}.{c[:2]}" for c in STOCKS)]
        for p in periods:
            vals = rng.uniform(1, 100, len(STOCKS))
            if name == "total_mv":
                vals = vals * 1e5
            cells = [f"{v:.4f}" for v in vals]
            if p == "20200731":
                cells = ["" for _ in cells]
                cells[0] = "9e12"  # junk month-end row: must be ignored
            if name == "pe" and p == "20200630":
                cells[1] = ""  # a loss maker
            lines.append(p + "," + ",".join(cells))
        (fund / f"{name}.csv").write_text("\n".join(lines) + "\n")

    ind = root / "industry"
    ind.mkdir(parents=True, exist_ok=True)
    hdr = "股票代码,股票名称,地区,行业,公司全称,英文名称,拼音缩写,市场类型,交易所代码,交易货币,上市状态,上市日期,是否沪深港通标的,实控人名称,企业性质"
    board = {"SH600000": "主板", "SZ300001": "创业板", "SH688001": "科创板", "SZ000002": "主板"}
    listd = {
        "SH600000": "1999-11-10 00:00:00",
        "SZ300001": "2009-10-30 00:00:00",
        "SH688001": f"{dates[10]} 00:00:00",
        "SZ000002": "1991-01-29 00:00:00",
    }
    rows = [
        f"{c[2:]}.{c[:2]},名{i},深圳,银行,公司{i},Co {i},X,{board[c]},SZSE,CNY,L,{listd[c]},S,无,其他"
        for i, c in enumerate(STOCKS)
    ]
    (ind / "stock_basic.csv").write_text("\ufeff" + hdr + "\n" + "\n".join(rows) + "\n")
    csrc = ["updateDate,code,code_name,industry,industryClassification"]
    csrc += [
        f"2026-03-09,{c[:2].lower()}.{c[2:]},名{i},J66货币金融服务,证监会行业分类"
        for i, c in enumerate(STOCKS)
    ]
    (ind / "csrc_industry.csv").write_text("\n".join(csrc) + "\n")
    return root


# ---------------------------------------------------------------------------- helpers
@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_cn(tmp_path / "cn")


def _load(root: Path, **kw):
    return load_cn(root, cache=False, **kw)


def _bin(root: Path, code: str, name: str) -> Path:
    return root / "prices" / "features" / code.lower() / f"{name}.day.bin"


def _rewrite(root: Path, code: str, name: str, edit) -> None:
    p = _bin(root, code, name)
    raw = np.fromfile(p, dtype="<f4")
    v = raw[1:].copy()
    edit(v)
    write_bin(p, int(raw[0]), v)


# ---------------------------------------------------------------------------- tests
def test_tiny_layout_loads(tiny):
    p = _load(tiny)
    assert list(p.assets) == sorted(STOCKS)
    assert p.shape[:2] == (120, 4)


def test_missing_calendar(tiny):
    (tiny / "prices" / "calendars" / "day.txt").unlink()
    with pytest.raises(DataError, match="missing calendar") as e:
        _load(tiny)
    assert "day.txt" in str(e.value)


def test_missing_instruments(tiny):
    (tiny / "prices" / "instruments" / "all.txt").unlink()
    with pytest.raises(DataError, match="missing instruments") as e:
        _load(tiny)
    assert "all.txt" in str(e.value)


def test_missing_bin(tiny):
    shutil.rmtree(tiny / "prices" / "features" / "sz300001")
    with pytest.raises(DataError, match=r"missing \.bin") as e:
        _load(tiny)
    assert e.value.code == "SZ300001" and e.value.field is not None


def test_bin_longer_than_calendar(tiny):
    p = _bin(tiny, "SH688001", "close")
    raw = np.fromfile(p, dtype="<f4")
    write_bin(p, int(raw[0]), np.concatenate([raw[1:], np.ones(5, np.float32)]))
    with pytest.raises(DataError, match="disagrees with the calendar") as e:
        _load(tiny)
    assert (e.value.code, e.value.field) == ("SH688001", "close")
    assert "close.day.bin" in e.value.file


def test_fields_of_a_stock_disagree_on_length(tiny):
    _rewrite(tiny, "SH600000", "low", lambda v: None)
    p = _bin(tiny, "SH600000", "low")
    raw = np.fromfile(p, dtype="<f4")
    write_bin(p, int(raw[0]), raw[1:-3])
    with pytest.raises(DataError, match="fields disagree") as e:
        _load(tiny)
    assert e.value.code == "SH600000"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("close", np.nan, "NaN in a partly filled bar"),
        ("open", np.inf, "infinite"),
        ("low", -1.0, "non-positive price"),
        ("high", 0.0, "non-positive price"),
        ("factor", 0.0, "non-positive factor"),
        ("volume", -5.0, "negative volume"),
    ],
)
def test_bad_values_name_code_field_and_date(tiny, field, value, message):
    def edit(v):
        v[17] = value

    _rewrite(tiny, "SZ300001", field, edit)
    with pytest.raises(DataError, match=message) as e:
        _load(tiny)
    assert e.value.code == "SZ300001"
    assert e.value.field == field
    assert e.value.date == str(tiny_dates()[17])
    assert f"{field}.day.bin" in e.value.file


def test_high_below_low(tiny):
    def edit(v):
        v[33] = 0.5  # far below low

    _rewrite(tiny, "SH600000", "high", edit)
    with pytest.raises(DataError, match="high < low") as e:
        _load(tiny)
    assert e.value.code == "SH600000" and e.value.date == str(tiny_dates()[33])


def test_missing_bar_is_not_an_error(tiny):
    for f in ("open", "high", "low", "close", "volume", "factor"):
        _rewrite(tiny, "SH600000", f, lambda v: v.__setitem__(50, np.nan))
    p = _load(tiny)
    j = list(p.assets).index("SH600000")
    assert p.mask("listed")[50, j] and p.mask("suspended")[50, j]
    assert not p.mask("tradable")[50, j]
    assert p.meta["missing_bars"] == 1


def test_duplicate_code_in_instruments(tiny):
    path = tiny / "prices" / "instruments" / "all.txt"
    path.write_text(path.read_text() + "sh600000\t2020-06-01\t2020-11-13\n")
    with pytest.raises(DataError, match="duplicate code") as e:
        _load(tiny)
    assert e.value.code == "SH600000" and "all.txt" in e.value.file


def test_unknown_code_style(tiny):
    path = tiny / "prices" / "instruments" / "all.txt"
    path.write_text(path.read_text() + "600999-SH\t2020-06-01\t2020-11-13\n")
    with pytest.raises(DataError, match="unknown stock-code style") as e:
        _load(tiny)
    assert e.value.code == "600999-SH" and "all.txt" in e.value.file


@pytest.mark.parametrize("kind", ["unsorted", "duplicate"])
def test_bad_calendar(tiny, kind):
    path = tiny / "prices" / "calendars" / "day.txt"
    lines = path.read_text().splitlines()
    if kind == "unsorted":
        lines[10], lines[11] = lines[11], lines[10]
    else:
        lines[11] = lines[10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=kind) as e:
        _load(tiny)
    assert e.value.date is not None and "day.txt" in e.value.file


def test_fundamentals_missing_date_column(tiny):
    path = tiny / "fundamentals" / "roe.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(",".join(ln.split(",")[1:]) for ln in lines) + "\n")
    with pytest.raises(DataError, match="YYYYMMDD") as e:
        _load(tiny, fields=["roe"])
    assert "roe.csv" in e.value.file


def test_fundamentals_duplicate_period_row(tiny):
    path = tiny / "fundamentals" / "pb.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[2]]) + "\n")
    with pytest.raises(DataError, match="duplicate period") as e:
        _load(tiny, fields=["pb"])
    assert "pb.csv" in e.value.file and e.value.date == "2020-03-31"


def test_fundamentals_duplicate_code_column(tiny):
    path = tiny / "fundamentals" / "ps.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(ln + "," + ln.split(",")[1] for ln in lines) + "\n")
    with pytest.raises(DataError, match="duplicate") as e:
        _load(tiny, fields=["ps"])
    assert "ps.csv" in e.value.file


def test_missing_fundamentals_file_only_when_needed(tiny):
    (tiny / "fundamentals" / "ebit.csv").unlink()
    _load(tiny, fields=["close", "roe"])  # ebit not needed: fine
    with pytest.raises(DataError, match="missing fundamentals") as e:
        _load(tiny, fields=["ebit"])
    assert "ebit.csv" in e.value.file


def test_stock_basic_duplicate_row(tiny):
    path = tiny / "industry" / "stock_basic.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(DataError, match="duplicate code row") as e:
        _load(tiny)
    assert "stock_basic.csv" in e.value.file


def test_unknown_field_and_index_code(tiny):
    with pytest.raises(DataError, match="unknown field"):
        _load(tiny, fields=["closee"])
    with pytest.raises(DataError, match="index code not in instruments") as e:
        load_indices(tiny, codes=["SH000905"])
    assert e.value.code == "SH000905"


def test_cli_prints_one_line_and_exits_2(tiny):
    import subprocess
    import sys

    (tiny / "prices" / "calendars" / "day.txt").unlink()
    r = subprocess.run(
        [sys.executable, "-m", "deepalpha", "data", "info", str(tiny), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "missing calendar" in r.stderr
    assert "file=" in r.stderr and "day.txt" in r.stderr  # the place survives rich markup
    assert len(r.stderr.strip().splitlines()) == 1
