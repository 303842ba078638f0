"""Config keys and run folders at degenerate values (empty lists, zero, 1e30, start after end,
damaged metrics.json): each command stops with one error line naming the key or file, exit 2."""

from __future__ import annotations

import pytest
from cli_main import assert_one_line_error, run_main
from test_data_errors import write_tiny_cn


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_cn(tmp_path_factory.mktemp("cfg") / "cn")


@pytest.mark.parametrize(
    "extra, needles",
    [
        ("rolling: {models: []}", ["rolling.models: at least one model"]),
        ("rolling: {windows: [0]}", ["rolling.windows: every window must be >= 1 (got [0])"]),
        ("rolling: {windows: []}", ["rolling.windows", "at least 1 item"]),
        ("rolling: {start: 2020-09-01, end: 2020-07-01}", ["rolling.start (2020-09-01) is after"]),
        ("evaluate: {universes: []}", ["evaluate.universes", "at least 1 item"]),
        ("evaluate: {n_groups: 1e30}", ["evaluate.n_groups"]),
        ("evaluate: {n_groups: 1}", ["evaluate.n_groups", "greater than or equal to 2"]),
        (
            "evaluate: {universes: [all], n_groups: 2, start: 2031-01-01}",
            ["evaluate.start (2031-01-01) is after the data's last date"],
        ),
        ("evaluate: {universes: [csi300]}", ["universe 'csi300' has at most", "10 groups"]),
    ],
)
def test_run_refuses_degenerate_keys(tiny, tmp_path, capsys, extra, needles):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"system: decompgrn\nname: t\ndata: {{path: {tiny}, cache: false}}\n{extra}\n")
    out = tmp_path / "run"
    r = run_main(["run", cfg, "--out", out, "--quiet"], capsys)
    assert_one_line_error(r, *needles)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "text, needle",
    [
        (None, "no metrics.json"),
        ("{not json", "unreadable metrics.json"),
        ("[]", "not a JSON object"),
        ("{}", "no 'models' table"),
    ],
)
@pytest.mark.parametrize("command", ["compare", "report"])
def test_compare_and_report_on_damaged_run_folders(tmp_path, capsys, text, needle, command):
    run = tmp_path / "run"
    run.mkdir()
    if text is not None:
        (run / "metrics.json").write_text(text)
    r = run_main([command, run], capsys)
    assert_one_line_error(r, needle, "metrics.json")


@pytest.mark.parametrize("stocks", ["0", "1", "-5"])
def test_demo_with_too_few_stocks_is_a_usage_error(tmp_path, capsys, stocks):
    r = run_main(["demo", "--stocks", stocks, "--out", tmp_path / "d", "--quiet"], capsys)
    assert r.code == 2 and "Traceback" not in r.err + r.out
    assert "--stocks" in r.err and not (tmp_path / "d").exists()
