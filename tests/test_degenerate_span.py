"""A run span with no (or too few) trading days, or ``start`` after ``end``, is refused with an
error naming the keys, the calendar file and its range (it was an IndexError traceback)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_main import assert_one_line_error, run_main
from test_data_errors import tiny_dates, write_tiny_cn

from deepalpha.errors import ConfigError, DataError
from deepalpha.guards import MIN_RUN_DAYS, check_span
from deepalpha.workflows.config import DataSpec
from deepalpha.workflows.data import load_panel


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_cn(tmp_path_factory.mktemp("span") / "cn")


def test_check_span_rules():
    cal = tiny_dates(60)
    assert check_span(cal) == 60
    assert check_span(cal, cal[10], cal[39]) == 30
    with pytest.raises(ConfigError, match=r"data.start \(2020-07-01\) is after data.end"):
        check_span(cal, "2020-07-01", "2020-06-15")
    with pytest.raises(DataError, match="holds 0 trading day") as e:
        check_span(cal, "2031-01-01", "2031-02-01", file="day.txt")
    assert "calendar 2020-06-01.." in str(e.value) and e.value.file == "day.txt"
    with pytest.raises(DataError, match=f"at least {MIN_RUN_DAYS}"):
        check_span(cal, cal[0], cal[2])
    with pytest.raises(DataError, match="calendar empty"):
        check_span(np.array([], dtype="datetime64[D]"))


@pytest.mark.parametrize(
    "start, end, match",
    [
        ("2031-01-01", "2031-06-30", "holds 0 trading day"),
        ("2020-06-06", "2020-06-07", "holds 0 trading day"),  # a weekend
        ("2020-07-01", "2020-06-01", "is after data.end"),
    ],
)
def test_load_panel_refuses_empty_span(tiny, start, end, match):
    spec = DataSpec(path=str(tiny), start=start, end=end, cache=False)
    with pytest.raises((DataError, ConfigError), match=match) as e:
        load_panel(tiny, spec)
    if isinstance(e.value, DataError):
        assert e.value.file.endswith("day.txt")


def test_cli_run_with_empty_span_is_one_line(tiny, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"system: decompgrn\nname: t\ndata: {{path: {tiny}, start: 2031-01-01, "
        "end: 2031-12-31, cache: false}\n"
    )
    out = tmp_path / "run"
    r = run_main(["run", cfg, "--out", out, "--quiet"], capsys)
    assert_one_line_error(r, "holds 0 trading day", "day.txt", "2031-01-01")
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_cli_run_start_after_end(tiny, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"system: barra_ml\nname: t\ndata: {{path: {tiny}, start: 2020-09-01, "
        "end: 2020-07-01, cache: false}\n"
    )
    r = run_main(["run", cfg, "--out", tmp_path / "run", "--quiet"], capsys)
    assert_one_line_error(r, "data.start (2020-09-01) is after data.end (2020-07-01)")
    assert not (tmp_path / "run").exists()
