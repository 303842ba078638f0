"""`deepalpha data validate` on a plain Qlib provider folder: what is there is checked (calendar,
``instruments/`` spell files, every ``.bin``, the silent-damage warnings), the inputs only System
A and the risk model need (fundamentals, industries) are notes, and damage is still refused with
the real file named. Our own layout keeps every file required."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_main import run_main
from test_data_errors import write_tiny_cn
from test_qlib_folder import write_tiny_qlib

from deepalpha.data.audit import validate_cn
from deepalpha.data.qlib_bin import write_bin

FIELDS = ("open", "high", "low", "close", "volume", "factor")


@pytest.fixture(scope="module")
def cn(tmp_path_factory) -> Path:
    return write_tiny_cn(tmp_path_factory.mktemp("cn") / "cn")


@pytest.fixture
def qlib(tmp_path, cn) -> Path:
    return write_tiny_qlib(tmp_path / "qlib", cn)


def _bin(root: Path, code: str, field: str) -> Path:
    return root / "features" / code.lower() / f"{field}.day.bin"


def _text(rep) -> str:
    return "\n".join(str(e) for e in rep.problems)


# ------------------------------------------------------------------ clean folders
def test_clean_qlib_folder_validates_with_notes(qlib):
    rep = validate_cn(qlib)
    assert rep.ok, _text(rep)
    assert rep.layout == "qlib" and rep.warnings == []
    notes = "\n".join(rep.notes)
    assert "Qlib provider folder" in notes and "4 stocks" in notes
    # the risk-model inputs, worded as deepalpha.data.inputs words them, and how to add them
    risk = next(n for n in rep.notes if "needs inputs this data folder lacks" in n)
    assert risk.startswith("the risk model (System A")
    for word in ("fundamentals/total_mv.csv", "fundamentals/roe.csv", "industry/stock_basic.csv"):
        assert word in risk
    assert "deepalpha data import" in risk and "System B (DecompGRN)" in risk
    assert any("size_proxy" in n for n in rep.notes)
    assert "index_bars" not in notes


def test_qlib_folder_with_every_input_has_no_risk_note(tmp_path, cn):
    q = write_tiny_qlib(tmp_path / "q", cn, industry=True)
    shutil.copytree(cn / "fundamentals", q / "fundamentals")
    rep = validate_cn(q)
    assert rep.ok, _text(rep)
    assert not any("needs inputs" in n or "size_proxy" in n for n in rep.notes)


def test_qlib_fundamentals_and_industry_that_are_there_are_checked(tmp_path, cn):
    q = write_tiny_qlib(tmp_path / "q", cn, industry=True)
    (q / "fundamentals").mkdir()
    (q / "fundamentals" / "pe.csv").write_text("no,header\n1,2\n")
    sb = q / "industry" / "stock_basic.csv"
    lines = sb.read_text().splitlines()
    sb.write_text("\n".join([*lines, lines[1]]) + "\n")
    rep = validate_cn(q)
    text = _text(rep)
    assert "pe.csv" in text and "duplicate code row" in text
    # once fundamentals/ exists the loader reads every file of it: an absent one is a problem
    assert "roe.csv" in text and "total_mv.csv" in text


def test_qlib_optional_spell_files_and_factor_are_notes(tmp_path, cn):
    q = write_tiny_qlib(tmp_path / "q", cn, csiall=False, factor=False)
    (q / "instruments" / "csi1000.txt").unlink()
    (q / "instruments" / "csi800.txt").unlink()  # built as csi300 + csi500: not even a note
    rep = validate_cn(q)
    assert rep.ok, _text(rep)
    notes = "\n".join(rep.notes)
    assert "no instruments/csiall.txt" in notes
    assert "instruments/csi1000.txt" in notes and "csi800.txt" not in notes
    assert "no $factor" in notes


def test_qlib_span_with_empty_ends_is_a_note(qlib):
    for f in FIELDS:  # a suspension at the end of the data: rows kept, no price
        p = _bin(qlib, "SH600000", f)
        raw = np.fromfile(p, dtype="<f4")
        v = raw[1:].copy()
        v[-3:] = np.nan
        write_bin(p, int(raw[0]), v)
    rep = validate_cn(qlib)
    assert rep.ok, _text(rep)
    assert any("span disagrees" in n and "SH600000" in n for n in rep.notes)


def test_exported_qlib_folder_validates_clean(tmp_path, cn):
    from deepalpha.data.cn import load_cn, load_indices
    from deepalpha.data.export import export_qlib

    q = export_qlib(load_cn(cn, cache=False), tmp_path / "q", indices=load_indices(cn))
    rep = validate_cn(q)
    assert rep.ok and rep.layout == "qlib", _text(rep)
    assert not any("span disagrees" in n for n in rep.notes)


def test_prices_folder_is_read_as_its_parent(cn):
    rep = validate_cn(cn / "prices")
    assert rep.ok and rep.layout == "cn", _text(rep)
    assert any("prices/ folder" in n for n in rep.notes)


# ------------------------------------------------------------------ damage is refused
def test_truncated_bin_is_refused(qlib):
    p = _bin(qlib, "SH600000", "close")
    p.write_bytes(p.read_bytes()[:-2])  # cut off mid-value
    rep = validate_cn(qlib)
    errs = [e for e in rep.problems if "truncated .bin" in str(e)]
    assert len(errs) == 1 and errs[0].file == str(p.resolve()) and errs[0].code == "SH600000"


def test_cut_short_stock_is_refused(qlib):
    for f in FIELDS:  # every field cut short alike: only all.txt tells
        p = _bin(qlib, "SZ300001", f)
        p.write_bytes(p.read_bytes()[:-40])
    rep = validate_cn(qlib)
    errs = [e for e in rep.problems if "instruments/all.txt lists the stock" in str(e)]
    assert len(errs) == 1, _text(rep)
    assert errs[0].file == str(_bin(qlib, "SZ300001", "close").resolve())
    assert errs[0].date == "2020-11-13"


def test_unsorted_calendar_is_refused(qlib):
    p = qlib / "calendars" / "day.txt"
    lines = p.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]
    p.write_text("\n".join(lines) + "\n")
    rep = validate_cn(qlib)
    assert len(rep.problems) == 1
    e = rep.problems[0]
    assert "unsorted date in calendar" in str(e) and e.file.endswith("calendars/day.txt")


def test_bad_bar_and_damage_name_the_qlib_file(qlib):
    p = _bin(qlib, "SH600000", "high")
    raw = np.fromfile(p, dtype="<f4")
    raw[21] = raw[21] * 0.5  # high below low
    raw.tofile(p)
    c = _bin(qlib, "SZ000002", "close")
    raw = np.fromfile(c, dtype="<f4")
    raw[31:] *= 1.3  # +30 % without a factor change
    raw.tofile(c)
    rep = validate_cn(qlib)
    errs = [e for e in rep.problems if "high < low" in str(e)]
    assert len(errs) == 1 and errs[0].file == str(p.resolve()) and errs[0].date == "2020-06-29"
    w = {w.kind: w for w in rep.warnings}["jump"]
    assert w.counts == {"SZ000002": 1} and w.file == str(c.resolve())


def test_bad_spell_file_is_refused(qlib):
    (qlib / "instruments" / "csi500.txt").write_text("SH600000 2020-06-01\n")
    rep = validate_cn(qlib)
    assert any(e.file and e.file.endswith("instruments/csi500.txt") for e in rep.problems)


def test_our_layout_still_requires_every_file(tmp_path, cn):
    c = tmp_path / "cn"
    shutil.copytree(cn, c)
    shutil.rmtree(c / "fundamentals")
    shutil.rmtree(c / "industry")
    rep = validate_cn(c)
    text = _text(rep)
    assert "total_mv.csv" in text and "missing industry files" in text
    assert not any("needs inputs" in n for n in rep.notes)


# ------------------------------------------------------------------ CLI
def test_cli_validate_qlib_folder(qlib, tmp_path, capsys):
    r = run_main(["data", "validate", qlib], capsys)
    out = " ".join(r.out.split())
    assert r.code == 0, r.out + r.err
    assert "ok: no problems" in out and "note:" in out and "fundamentals/total_mv.csv" in out
    assert "problem:" not in out

    p = _bin(qlib, "SZ300001", "volume")
    p.write_bytes(p.read_bytes()[:-3])
    r = run_main(["data", "validate", qlib], capsys)
    out = " ".join(r.out.split())
    assert r.code == 1 and "Traceback" not in r.out + r.err
    assert "truncated .bin file" in out and "sz300001/volume.day.bin" in out

    r = run_main(["data", "validate", tmp_path / "nothing"], capsys)
    assert r.code == 1 and "Traceback" not in r.out + r.err
    assert "data folder not found" in " ".join(r.out.split())
