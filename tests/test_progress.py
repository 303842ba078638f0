"""Progress users can see: one plain line per finished rolling job when stdout is not a terminal,
nothing with ``--quiet``, epochs of jobs in worker processes reaching the parent, and the reporter
pieces (watcher, ETA, throttling, stages, live display) on their own."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_train_helpers import make_panel, small_rolling_config
from typer.testing import CliRunner

from deepalpha.cli import app
from deepalpha.progress import (
    NullReporter,
    PlainReporter,
    RichReporter,
    fraction_stage,
    make_reporter,
    stage,
)
from deepalpha.train.job_progress import JobProgressWatcher, JobProgressWriter, progress_file
from deepalpha.train.rolling import run_rolling

runner = CliRunner(env={"COLUMNS": "200"})
SUMMARY = re.compile(r"^\[(\d+)/(\d+)\] linear/w6/\S+/s0: best val RankIC [+-]\d\.\d{4} at epoch")

TINY = """\
system: decompgrn
name: tiny
data: {{path: "{market}", cache: false}}
rolling:
  models: [{{name: linear}}]
  windows: [6]
  valid_periods: 2
  frequency: quarterly
  start: 2017-07-01
  dataset: {{kind: sequence, length: 10, horizon: 5, sample_stride: 5}}
  train: {{max_epochs: 2, patience: 1}}
evaluate: {{universes: [all]}}
"""


class Recorder(NullReporter):
    """Keeps every event (called from the watcher thread and the main thread)."""

    enabled = True

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def jobs_begin(self, total: int, todo: int, workers: int = 1, title: str = "rolling") -> None:
        self.events.append(("begin", total, todo, workers))

    def job_started(self, key: str) -> None:
        self.events.append(("started", key))

    def epoch(self, key: str, epoch: int, val: float | None, max_epochs: int | None = None) -> None:
        self.events.append(("epoch", key, epoch, val, max_epochs))

    def job_finished(self, key: str, summary: dict[str, Any]) -> None:
        self.events.append(("finished", key, summary["best_epoch"]))

    def jobs_end(self) -> None:
        self.events.append(("end",))


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    from deepalpha.data.synth import write_market

    root = tmp_path_factory.mktemp("progress")
    market = write_market(root / "market", stocks=50, start="2016-01-01", end="2017-12-31", seed=1)
    cfg = root / "tiny.yaml"
    cfg.write_text(TINY.format(market=market))
    return cfg


@pytest.fixture
def no_report(monkeypatch):
    """The HTML report's plots take most of a tiny run's time and show no progress: skip them."""
    import deepalpha.report.html as html

    monkeypatch.setattr(html, "write_report", lambda run_dir, *a, **k: Path(run_dir) / "report")


def test_run_prints_one_summary_line_per_finished_job(tiny_config, tmp_path, no_report):
    """CliRunner's stdout is not a terminal: plain lines, one per job (2 jobs), no ANSI codes."""
    res = runner.invoke(app, ["run", str(tiny_config), "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    summaries = [s for s in lines if SUMMARY.match(s)]
    assert [SUMMARY.match(s).groups() for s in summaries] == [("1", "2"), ("2", "2")]
    assert "rolling (local): 2 jobs, 2 to train on 1 worker" in lines
    assert "ETA" in summaries[0] and "\x1b[" not in res.output
    assert len([s for s in lines if ": epoch " in s]) <= 4  # at most a line per epoch
    assert "oracle (truth)" in res.output  # the tables still follow
    # a re-run resumes: it says so and trains nothing
    again = runner.invoke(app, ["run", str(tiny_config), "--out", str(tmp_path / "run")])
    assert again.exit_code == 0, again.output
    assert "rolling (local): 2 jobs, 2 already finished" in again.output.splitlines()
    assert not [s for s in again.output.splitlines() if SUMMARY.match(s)]


def test_quiet_prints_no_progress(tiny_config, tmp_path, no_report):
    res = runner.invoke(app, ["run", str(tiny_config), "--out", str(tmp_path / "q"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "rolling" not in res.output and "epoch" not in res.output
    assert not [s for s in res.output.splitlines() if SUMMARY.match(s) or s.startswith("tiny:")]
    assert "oracle (truth)" in res.output
    assert (tmp_path / "q" / "rolling" / "predictions.parquet").is_file()


def test_demo_has_quiet(monkeypatch):
    import deepalpha.workflows.demo as demo

    seen: dict[str, Any] = {}
    monkeypatch.setattr(demo, "run_demo", lambda **kw: seen.update(kw))
    assert runner.invoke(app, ["demo", "--quiet", "--quick"]).exit_code == 0
    assert seen["progress"] is False and seen["quick"] is True
    assert runner.invoke(app, ["demo"]).exit_code == 0
    assert seen["progress"] is True


@pytest.mark.slow  # a spawned process pool: ~10 s
def test_worker_epochs_reach_the_parent(tmp_path):
    """Process executor: every epoch of every job, reported in the parent, before its job ends."""
    cfg = small_rolling_config(
        executor="process",
        workers=1,  # one spawned worker: the cheapest process pool
        end="2020-06-20",
        train=dict(max_epochs=3, patience=10, lr=1e-2),
    )
    rec = Recorder()
    res = run_rolling(make_panel(), cfg, tmp_path / "run", reporter=rec)
    keys = [j.key for j in res.jobs]
    assert len(keys) == 2
    assert rec.events[0] == ("begin", 2, 2, 1) and rec.events[-1] == ("end",)
    for k in keys:
        mine = [e for e in rec.events if len(e) > 1 and e[1] == k]
        assert mine[0] == ("started", k)
        assert [e[2] for e in mine if e[0] == "epoch"] == [1, 2, 3]
        assert all(e[4] == 3 and isinstance(e[3], float) for e in mine if e[0] == "epoch")
        assert mine[-1][0] == "finished"
        hist = [json.loads(s) for s in (res.run_dir / "jobs" / k / "train_log.jsonl").open()]
        vals = [e[3] for e in mine if e[0] == "epoch"]
        assert vals == pytest.approx([h["valid_rank_ic"] for h in hist])
    assert not list((tmp_path / "run" / "jobs").glob(".progress.tmp-*"))  # folder removed


def test_watcher_reads_only_complete_lines(tmp_path):
    rec = Recorder()
    w = JobProgressWatcher(tmp_path, rec)
    with JobProgressWriter(tmp_path, "m/w1/2020-01-01/s0") as job:
        job.epoch({"epoch": 1, "max_epochs": 5, "valid_rank_ic": 0.05, "train_loss": 1.0})
    f = progress_file(tmp_path, "m/w1/2020-01-01/s0")
    full = f.read_text()
    f.write_text(full + '{"job": "m/w1/2020-01-01/s0", "event": "epoch", "epo')  # half a line
    w.poll()
    assert rec.events == [
        ("started", "m/w1/2020-01-01/s0"),
        ("epoch", "m/w1/2020-01-01/s0", 1, 0.05, 5),
    ]
    with f.open("a") as fh:
        fh.write('ch": 2, "max_epochs": 5, "valid_rank_ic": NaN}\n')
    w.poll()
    assert rec.events[-1] == ("epoch", "m/w1/2020-01-01/s0", 2, None, 5)  # NaN -> None
    w.finished("m/w1/2020-01-01/s0", {"best_epoch": 1})
    assert rec.events[-1] == ("finished", "m/w1/2020-01-01/s0", 1) and not f.exists()
    w.poll()  # nothing new after the end
    assert rec.events[-1][0] == "finished"


def test_plain_reporter_eta_throttle_and_stages():
    buf = io.StringIO()
    rep = PlainReporter(file=buf, every_s=3600)
    rep.jobs_begin(5, 4, workers=2)
    for e in (1, 2, 3):
        rep.epoch("a", e, 0.01 * e, 3)  # only the first epoch line (throttled)
    rep.job_started("b")
    rep.job_finished("a", {"best_epoch": 3, "epochs": 3, "best_valid_rank_ic": 0.03,
                           "seconds": 10.0, "n_valid_dates": 5})  # fmt: skip
    assert rep.eta() == pytest.approx(10.0 * 3 / 2)
    with fraction_stage(rep, "risk model") as cb:  # never called: a reloaded model, no lines
        pass
    with fraction_stage(rep, "risk model (daily)") as cb:
        cb("styles", 0.5)
    with stage(rep, "backtests", 2):
        rep.stage_update("backtests", 1.0, "x")  # throttled
    lines = buf.getvalue().splitlines()
    assert lines == [
        "rolling: 5 jobs, 1 already finished, 4 to train on 2 workers",
        "  a: epoch 1/3, val RankIC +0.0100 (best +0.0100)",
        "[1/4] a: best val RankIC +0.0300 at epoch 3 of 3, 10.0 s"
        " | done 1/4, running 1, left 2, ETA 15s",
        "risk model (daily) ...",
        "risk model (daily): done in 0s",
        "backtests ...",
        "backtests: done in 0s",
    ]


def test_rich_reporter_live_display_comes_and_goes():
    buf = io.StringIO()
    rep = RichReporter(Console(file=buf, force_terminal=True, width=100))
    rep.jobs_begin(2, 2, workers=2, title="rolling (process)")
    rep.job_started("a")
    rep.epoch("a", 1, 0.02, 4)
    assert rep._prog is not None  # live while jobs run
    rep.message("a message above the display")
    rep.job_finished("a", {"best_epoch": 1, "epochs": 1, "best_valid_rank_ic": 0.02,
                           "seconds": 1.0})  # fmt: skip
    rep.epoch("b", 1, None, 4)  # a job seen first through an epoch
    rep.job_finished("b", {"best_epoch": 1, "epochs": 1, "seconds": 1.0})
    rep.jobs_end()
    assert rep._prog is None  # the live display stops with the section
    with fraction_stage(rep, "risk model") as cb:
        cb("styles", 0.3)
        assert rep._prog is not None
    rep.close()
    out = buf.getvalue()
    assert "[1/2] a: best val RankIC +0.0200 at epoch 1 of 1, 1.0 s" in out
    assert "a message above the display" in out and "risk model: done in" in out


def test_make_reporter_picks_by_terminal():
    assert isinstance(make_reporter(quiet=True), NullReporter)
    assert not make_reporter(quiet=True).enabled
    plain = make_reporter(console=Console(file=io.StringIO()))
    assert isinstance(plain, PlainReporter)
    tty = make_reporter(console=Console(file=io.StringIO(), force_terminal=True))
    assert isinstance(tty, RichReporter)
