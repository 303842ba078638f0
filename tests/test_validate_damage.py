"""`deepalpha data validate` warns about silent damage, with a count per stock: missing values
inside a listed span that no suspension explains, moves beyond the board's limit without an
adjustment-factor change, volume <= 0 on days the price moves. The clean tiny layout (which
plants a limit-up day, an ex-dividend day and a zero-volume suspension) has none."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from cli_main import run_main
from test_data_errors import write_tiny_cn
from test_validate import _poke

from deepalpha.data import validate
from deepalpha.data.audit import validate_cn
from deepalpha.data.qlib_bin import write_bin


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_cn(tmp_path / "cn")


def _kinds(rep):
    return {w.kind: w for w in rep.warnings}


def _scale_from(root, code, t, k, fields=("open", "high", "low", "close")):
    """Multiply the price fields of ``code`` from day ``t`` on by ``k`` (a broken adjustment)."""
    for f in fields:
        p = root / "prices" / "features" / code.lower() / f"{f}.day.bin"
        raw = np.fromfile(p, dtype="<f4")
        v = raw[1:].copy()
        v[t - int(raw[0]) :] *= k
        write_bin(p, int(raw[0]), v)


def test_clean_layout_has_no_warnings(tiny):
    rep = validate_cn(tiny)
    assert rep.ok and rep.warnings == [], [str(w) for w in rep.warnings]


def test_missing_run_inside_span(tiny):
    for f in ("open", "high", "low", "close", "volume", "factor"):
        for t in (20, 21, 22):
            _poke(tiny, "SH600000", f, t, np.nan)
    _poke(tiny, "SZ300001", "volume", 33, np.nan)  # NaN volume on a day the price moved
    w = _kinds(validate_cn(tiny))["missing"]
    assert w.counts == {"SH600000": 3, "SZ300001": 1}
    assert w.code == "SH600000" and "2 run(s), longest 3 day(s)" in str(w)


def test_jump_without_factor_change(tiny):
    _scale_from(tiny, "SH600000", 70, 1.3)  # +30 % overnight on the main board
    _scale_from(tiny, "SZ300001", 90, 0.7)  # -30 % on ChiNext (20 % limit after 2020-08-24)
    w = _kinds(validate_cn(tiny))["jump"]
    assert w.counts == {"SH600000": 1, "SZ300001": 1}
    assert "close.day.bin" in w.file


def test_jump_with_factor_change_is_an_ex_right_day(tiny):
    _scale_from(tiny, "SH600000", 70, 1.3, fields=("open", "high", "low", "close", "factor"))
    assert "jump" not in _kinds(validate_cn(tiny))


def test_star_board_allows_twenty_percent(tiny):
    _scale_from(tiny, "SH688001", 60, 1.12)  # at most +18.7 % with the day's own move
    assert "jump" not in _kinds(validate_cn(tiny))
    _scale_from(tiny, "SH688001", 80, 1.25)
    assert _kinds(validate_cn(tiny))["jump"].counts == {"SH688001": 1}


def test_zero_volume_on_a_moving_day(tiny):
    for t in (44, 45):
        _poke(tiny, "SZ300001", "volume", t, 0.0)
    _poke(tiny, "SH600000", "volume", 50, -0.0)
    w = _kinds(validate_cn(tiny))["volume"]
    assert w.counts == {"SZ300001": 2, "SH600000": 1}
    assert "volume.day.bin" in w.file


def test_cli_prints_warnings_and_exits_0(tiny, capsys):
    _scale_from(tiny, "SH600000", 70, 1.3)
    r = run_main(["data", "validate", tiny], capsys)
    assert r.code == 0, r.out
    out = " ".join(r.out.split())
    assert "warning: price moves beyond the board's limit" in out and "SH600000 1" in out


def test_validate_module_imports_no_loader():
    """The import cycle cn <-> validate is gone: validate holds pure checks."""
    tree = ast.parse(Path(validate.__file__).read_text())
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "deepalpha.data.cn" not in mods and "deepalpha.data.audit" not in mods
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "cn" not in names
