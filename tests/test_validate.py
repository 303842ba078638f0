"""`validate_cn` collects every problem; `deepalpha data validate/info` print and exit right."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_data_errors import write_tiny_cn
from typer.testing import CliRunner

from deepalpha.cli.data import app
from deepalpha.data.audit import validate_cn
from deepalpha.data.qlib_bin import write_bin

runner = CliRunner()


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_cn(tmp_path / "cn")


def _poke(root, code, field, t, value):
    p = root / "prices" / "features" / code.lower() / f"{field}.day.bin"
    raw = np.fromfile(p, dtype="<f4")
    v = raw[1:].copy()
    v[t] = value
    write_bin(p, int(raw[0]), v)


def test_clean_layout_has_no_problems(tiny):
    rep = validate_cn(tiny)
    assert rep.ok, [str(e) for e in rep.problems]
    assert any("4 stocks" in n for n in rep.notes)


def test_collects_every_problem(tiny):
    _poke(tiny, "SH600000", "close", 5, -1.0)
    _poke(tiny, "SZ300001", "high", 7, np.inf)
    _poke(tiny, "SZ000002", "high", 9, 0.01)  # below low
    shutil.rmtree(tiny / "prices" / "features" / "sh688001")
    (tiny / "index_membership" / "csi500.txt").unlink()
    path = tiny / "fundamentals" / "pe.csv"
    path.write_text("\n".join(",".join(x.split(",")[1:]) for x in path.read_text().splitlines()))
    sb = tiny / "industry" / "stock_basic.csv"
    lines = sb.read_text().splitlines()
    sb.write_text("\n".join([*lines, lines[1]]) + "\n")

    rep = validate_cn(tiny)
    msgs = [str(e) for e in rep.problems]
    text = "\n".join(msgs)
    assert "non-positive price" in text and "code=SH600000" in text
    assert "infinite value" in text and "code=SZ300001" in text
    assert "high < low" in text and "code=SZ000002" in text
    assert "missing .bin" in text and "code=SH688001" in text
    assert "missing membership file" in text and "csi500.txt" in text
    assert "pe.csv" in text
    assert "duplicate code row" in text
    # one line per problem, every one naming its file
    assert all("file=" in m for m in msgs)
    assert len(rep.problems) >= 7


def test_duplicate_membership_rows(tiny):
    p = tiny / "index_membership" / "csi300.txt"
    lines = p.read_text().splitlines()
    p.write_text("\n".join([*lines, lines[0]]) + "\n")
    rep = validate_cn(tiny)
    assert any(
        "duplicate membership row" in str(e) and "csi300.txt" in str(e) for e in rep.problems
    )


def test_cli_validate_exit_codes(tiny):
    r = runner.invoke(app, ["validate", str(tiny)])
    assert r.exit_code == 0, r.output
    assert "ok: no problems" in r.output
    _poke(tiny, "SH600000", "low", 3, 0.0)
    r = runner.invoke(app, ["validate", str(tiny)])
    assert r.exit_code == 1
    assert "non-positive price" in r.output and "SH600000" in r.output


def test_cli_info(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPALPHA_CACHE", str(tmp_path / "cache"))
    r = runner.invoke(app, ["info", str(tiny)], terminal_width=200)
    assert r.exit_code == 0, r.output
    for word in ("2020-06-01", "stocks", "coverage", "csi300", "suspended share", "mktcap"):
        assert word in r.output


def test_instruments_span_must_match_bins(tiny):
    p = tiny / "prices" / "instruments" / "all.txt"
    lines = p.read_text().splitlines()
    lines = [
        ln.replace("\t2020-11-13", "\t2020-11-12") if ln.startswith("SH600000") else ln
        for ln in lines
    ]
    p.write_text("\n".join(lines) + "\n")
    rep = validate_cn(tiny)
    errs = [e for e in rep.problems if "instruments span" in str(e)]
    assert len(errs) == 1
    assert errs[0].code == "SH600000" and errs[0].file.endswith("all.txt")
    assert errs[0].date == "2020-11-12"
