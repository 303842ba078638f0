"""Progress users can see: what `deepalpha run` and `deepalpha demo` show while they work.

A reporter receives events; the core code (rolling training, risk model, backtests) only calls
callbacks and never prints. Events:

* rolling jobs: ``jobs_begin(total, todo, workers, title)``, ``job_started(key)``,
  ``epoch(key, epoch, val_rank_ic, max_epochs)``, ``job_finished(key, summary)`` (``summary`` is
  the job's ``metrics.json``), ``jobs_end()``;
* stages with a bar (risk model build, backtests): ``stage_start(name, total)``,
  ``stage_update(name, completed, info)``, ``stage_finish(name)``.

Implementations (`make_reporter` picks one):

* `RichReporter` (a terminal): a live display -- a bar over the jobs with done / running / left
  and an ETA, one row per running job with its epoch and validation RankIC, a bar per stage --
  and a one-line summary printed above it per finished job;
* `PlainReporter` (not a terminal: CI, logs, pipes): plain lines, one per finished job and per
  stage start / end; epoch and stage-progress lines at most every ``every_s`` seconds;
* `NullReporter` (``--quiet``): nothing.

ETA = mean time of the jobs finished in this session x jobs left / workers busy.
Epochs of jobs running in worker processes reach the parent through small files
(`deepalpha.train.job_progress`).
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from rich.console import Console


class Reporter(Protocol):
    enabled: bool

    def jobs_begin(
        self, total: int, todo: int, workers: int = 1, title: str = "rolling"
    ) -> None: ...
    def job_started(self, key: str) -> None: ...
    def epoch(
        self, key: str, epoch: int, val_rank_ic: float | None, max_epochs: int | None = None
    ) -> None: ...
    def job_finished(self, key: str, summary: dict[str, Any]) -> None: ...
    def jobs_end(self) -> None: ...
    def stage_start(self, name: str, total: float | None = None) -> None: ...
    def stage_update(self, name: str, completed: float, info: str = "") -> None: ...
    def stage_finish(self, name: str) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


# ----------------------------------------------------------------------------- formatting
def fmt_seconds(s: float | None) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``; None -> ``?``."""
    if s is None or not math.isfinite(s):
        return "?"
    s = max(0, round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _ric(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return f"{f:+.4f}" if math.isfinite(f) else "n/a"


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'s' * (k != 1)}"


def job_summary_text(key: str, summary: dict[str, Any]) -> str:
    """``gru/w24/2019-01-02/s0: best val RankIC +0.0412 at epoch 7 of 12, 23.4 s``."""
    parts = []
    if summary.get("n_valid_dates", 1):
        parts.append(
            f"best val RankIC {_ric(summary.get('best_valid_rank_ic'))} "
            f"at epoch {summary.get('best_epoch', '?')} of {summary.get('epochs', '?')}"
        )
    else:
        parts.append(f"{summary.get('epochs', '?')} epochs, no validation")
    sec = summary.get("seconds")
    if isinstance(sec, int | float):
        parts.append(f"{sec:.1f} s")
    return f"{key}: " + ", ".join(parts)


@dataclass
class _Running:
    start: float
    epoch: int = 0
    max_epochs: int | None = None
    val: float | None = None
    best: float | None = None


# ----------------------------------------------------------------------------- reporters
class NullReporter:
    """``--quiet``: every event is ignored."""

    enabled = False

    def jobs_begin(self, total: int, todo: int, workers: int = 1, title: str = "rolling") -> None:
        pass

    def job_started(self, key: str) -> None:
        pass

    def epoch(
        self, key: str, epoch: int, val_rank_ic: float | None, max_epochs: int | None = None
    ) -> None:
        pass

    def job_finished(self, key: str, summary: dict[str, Any]) -> None:
        pass

    def jobs_end(self) -> None:
        pass

    def stage_start(self, name: str, total: float | None = None) -> None:
        pass

    def stage_update(self, name: str, completed: float, info: str = "") -> None:
        pass

    def stage_finish(self, name: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class _Tracker(NullReporter):
    """Counts (done / running / left), job timings and the ETA; subclasses display them."""

    enabled = True

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.title = "rolling"
        self.total = self.todo = self.done = 0
        self.workers = 1
        self.running: dict[str, _Running] = {}
        self.durations: list[float] = []
        self.stages: dict[str, tuple[float, float | None]] = {}  # name -> (start, total)

    # bookkeeping, called under the lock by the public methods
    def _begin(self, total: int, todo: int, workers: int, title: str) -> None:
        self.title, self.total, self.todo, self.workers = title, total, todo, max(1, workers)
        self.done = 0
        self.running.clear()
        self.durations.clear()

    def _started(self, key: str) -> _Running:
        return self.running.setdefault(key, _Running(time.monotonic()))

    def _epoch(self, key: str, epoch: int, val: float | None, max_epochs: int | None) -> _Running:
        r = self._started(key)
        r.epoch, r.max_epochs = epoch, max_epochs or r.max_epochs
        if val is not None and math.isfinite(val):
            r.val = val
            r.best = val if r.best is None else max(r.best, val)
        return r

    def _finished(self, key: str, summary: dict[str, Any]) -> None:
        r = self.running.pop(key, None)
        sec = summary.get("seconds")
        if not isinstance(sec, int | float):
            sec = time.monotonic() - r.start if r is not None else None
        if sec is not None:
            self.durations.append(float(sec))
        self.done += 1

    @property
    def left(self) -> int:
        """Jobs not finished yet (running or waiting)."""
        return max(0, self.todo - self.done)

    def eta(self) -> float | None:
        """Mean finished-job time x jobs left / busy workers (None before the first job ends)."""
        if not self.durations:
            return None
        left = self.left
        if left == 0:
            return 0.0
        mean = sum(self.durations) / len(self.durations)
        return mean * left / min(self.workers, left)

    def counts_text(self) -> str:
        waiting = max(0, self.left - len(self.running))
        return (
            f"done {self.done}/{self.todo}, running {len(self.running)}, left {waiting}, "
            f"ETA {fmt_seconds(self.eta())}"
        )

    def begin_text(self) -> str:
        skipped = self.total - self.todo
        s = f"{self.title}: {_n(self.total, 'job')}"
        if skipped:
            s += f", {skipped} already finished"
        if self.todo:
            s += f", {self.todo} to train on {self.workers} worker{'s' * (self.workers > 1)}"
        return s


class PlainReporter(_Tracker):
    """Plain lines for logs and pipes: one per finished job and per stage start / end; epoch and
    stage-progress lines at most every ``every_s`` seconds (0: every one)."""

    def __init__(self, file: TextIO | None = None, every_s: float = 30.0) -> None:
        super().__init__()
        self._file = file
        self.every_s = every_s
        self._last_epoch_line = -math.inf
        self._last_stage_line: dict[str, float] = {}

    def _line(self, text: str) -> None:
        f = self._file or sys.stdout
        f.write(text + "\n")
        f.flush()

    def jobs_begin(self, total: int, todo: int, workers: int = 1, title: str = "rolling") -> None:
        with self.lock:
            self._begin(total, todo, workers, title)
            self._line(self.begin_text())

    def job_started(self, key: str) -> None:
        with self.lock:
            self._started(key)

    def epoch(
        self, key: str, epoch: int, val_rank_ic: float | None, max_epochs: int | None = None
    ) -> None:
        with self.lock:
            r = self._epoch(key, epoch, val_rank_ic, max_epochs)
            now = time.monotonic()
            if now - self._last_epoch_line >= self.every_s:
                self._last_epoch_line = now
                self._line(
                    f"  {key}: epoch {r.epoch}/{r.max_epochs or '?'}, "
                    f"val RankIC {_ric(val_rank_ic)} (best {_ric(r.best)})"
                )

    def job_finished(self, key: str, summary: dict[str, Any]) -> None:
        with self.lock:
            self._finished(key, summary)
            self._line(f"[{self.done}/{self.todo}] {job_summary_text(key, summary)}"
                       f" | {self.counts_text()}")  # fmt: skip

    def jobs_end(self) -> None:
        with self.lock:
            self.running.clear()

    def stage_start(self, name: str, total: float | None = None) -> None:
        with self.lock:
            self.stages[name] = (time.monotonic(), total)
            self._last_stage_line[name] = time.monotonic()
            self._line(f"{name} ...")

    def stage_update(self, name: str, completed: float, info: str = "") -> None:
        with self.lock:
            if name not in self.stages:
                return
            now = time.monotonic()
            if now - self._last_stage_line.get(name, -math.inf) < self.every_s:
                return
            self._last_stage_line[name] = now
            total = self.stages[name][1]
            pct = f"{100 * completed / total:.0f}%" if total else f"{completed:g}"
            self._line(f"{name}: {pct}" + (f" ({info})" if info else ""))

    def stage_finish(self, name: str) -> None:
        with self.lock:
            t0, _ = self.stages.pop(name, (time.monotonic(), None))
            self._line(f"{name}: done in {fmt_seconds(time.monotonic() - t0)}")

    def message(self, text: str) -> None:
        with self.lock:
            self._line(text)


class RichReporter(_Tracker):
    """A live display for terminals (transient: only the summary lines stay on screen).

    ``console``: default a new `Console` at the terminal's width (a wider one would make the
    terminal wrap the live rows and garble the display)."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self.console = console or Console()
        self._prog: Any = None
        self._tasks: dict[str, Any] = {}

    def _progress(self) -> Any:
        if self._prog is None:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._prog = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=True,
            )
            self._prog.start()
        return self._prog

    def _add(self, tid: str, description: str, total: float | None, info: str = "") -> None:
        self._tasks[tid] = self._progress().add_task(description, total=total, info=info)

    def _remove(self, tid: str) -> None:
        task = self._tasks.pop(tid, None)
        if task is not None and self._prog is not None:
            self._prog.remove_task(task)
        if not self._tasks and self._prog is not None:
            self._prog.stop()
            self._prog = None

    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def _refresh_jobs(self) -> None:
        if "jobs" in self._tasks:
            self._prog.update(self._tasks["jobs"], completed=self.done, info=self.counts_text())

    def jobs_begin(self, total: int, todo: int, workers: int = 1, title: str = "rolling") -> None:
        with self.lock:
            self._begin(total, todo, workers, title)
            self._print(self.begin_text())
            if todo:
                self._add("jobs", f"[bold]{title}", todo, self.counts_text())

    def job_started(self, key: str) -> None:
        with self.lock:
            self._started(key)
            if f"job:{key}" not in self._tasks and "jobs" in self._tasks:
                self._add(f"job:{key}", f"  {key}", None, "starting")
            self._refresh_jobs()

    def epoch(
        self, key: str, epoch: int, val_rank_ic: float | None, max_epochs: int | None = None
    ) -> None:
        with self.lock:
            if f"job:{key}" not in self._tasks:
                self.job_started(key)
            r = self._epoch(key, epoch, val_rank_ic, max_epochs)
            task = self._tasks.get(f"job:{key}")
            if task is not None:
                info = f"epoch {r.epoch}/{r.max_epochs or '?'}  val RankIC {_ric(val_rank_ic)}"
                info += f" (best {_ric(r.best)})"
                self._prog.update(task, completed=r.epoch, total=r.max_epochs, info=info)

    def job_finished(self, key: str, summary: dict[str, Any]) -> None:
        with self.lock:
            self._finished(key, summary)
            self._remove(f"job:{key}")
            self._print(f"[{self.done}/{self.todo}] {job_summary_text(key, summary)}")
            self._refresh_jobs()

    def jobs_end(self) -> None:
        with self.lock:
            for tid in [t for t in self._tasks if t == "jobs" or t.startswith("job:")]:
                self._remove(tid)
            self.running.clear()
            if self.todo:
                self._print(f"{self.title}: {_n(self.done, 'job')} trained")

    def stage_start(self, name: str, total: float | None = None) -> None:
        with self.lock:
            self.stages[name] = (time.monotonic(), total)
            self._add(f"stage:{name}", f"[bold]{name}", total)

    def stage_update(self, name: str, completed: float, info: str = "") -> None:
        with self.lock:
            task = self._tasks.get(f"stage:{name}")
            if task is not None:
                self._prog.update(task, completed=completed, info=info)

    def stage_finish(self, name: str) -> None:
        with self.lock:
            t0, _ = self.stages.pop(name, (time.monotonic(), None))
            self._remove(f"stage:{name}")
            self._print(f"{name}: done in {fmt_seconds(time.monotonic() - t0)}")

    def message(self, text: str) -> None:
        """A line above the live display (print through the reporter while it is live: another
        console's output would garble it)."""
        with self.lock:
            self._print(text)

    def close(self) -> None:
        with self.lock:
            for tid in list(self._tasks):
                self._remove(tid)


def make_reporter(
    quiet: bool = False, console: Console | None = None, *, plain: bool | None = None
) -> NullReporter:
    """`NullReporter` when ``quiet``; else `RichReporter` when ``console`` (default: stdout) is a
    terminal, `PlainReporter` (lines to the console's file) when not; ``plain`` forces it."""
    if quiet:
        return NullReporter()
    console = console or Console()
    if plain is None:
        plain = not console.is_terminal
    if plain:
        return PlainReporter(file=_ConsoleFile(console))
    return RichReporter(Console(stderr=console.stderr))


class _ConsoleFile:
    """Writes to ``console.file`` as it is at write time (CliRunner swaps sys.stdout)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, s: str) -> int:
        return self.console.file.write(s)

    def flush(self) -> None:
        self.console.file.flush()


def resolve_reporter(reporter: Any, progress: bool = True) -> Any:
    """``reporter`` if given, else `make_reporter` (nothing when not ``progress``)."""
    return reporter if reporter is not None else make_reporter(quiet=not progress)


# ----------------------------------------------------------------------------- stage helpers
@contextlib.contextmanager
def stage(reporter: Any, name: str, total: float | None = None) -> Iterator[Any]:
    """``with stage(rep, "backtests", 6): ...`` -- start / finish a stage bar around a block."""
    reporter.stage_start(name, total)
    try:
        yield reporter
    finally:
        reporter.stage_finish(name)


@contextlib.contextmanager
def fraction_stage(reporter: Any, name: str) -> Iterator[Callable[[str, float], None]]:
    """A ``progress(label, fraction)`` callback (`deepalpha.risk.model.build_risk_model`'s) that
    shows stage ``name``; the stage appears at the first call only (nothing for a reloaded model)
    and finishes when the block ends."""
    started = [False]

    def cb(label: str, frac: float) -> None:
        if not started[0]:
            started[0] = True
            reporter.stage_start(name, 1.0)
        reporter.stage_update(name, float(frac), label)

    try:
        yield cb
    finally:
        if started[0]:
            reporter.stage_finish(name)
