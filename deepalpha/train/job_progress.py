"""Live progress of rolling jobs that may run in other processes: one small JSON-lines file per job.

Worker side (`JobProgressWriter`): the job appends a ``start`` record, then one ``epoch`` record
per epoch (epoch, max_epochs, validation RankIC, train loss), each line written and flushed whole.
Parent side (`JobProgressWatcher`): a daemon thread tails every file of the folder a few times a
second and turns new complete lines into reporter calls (``job_started``, ``epoch``);
`JobProgressWatcher.finished` drains a job's file, reports ``job_finished`` and deletes the file.

Why files and not a queue: the same code serves every executor (local, the spawned process pool,
Ray on one machine) without touching the executors or pickling queue proxies into workers; a
crashed worker leaves at worst a stale file (the folder is named like the run's other temporaries,
``.progress.tmp-*``, so the next run's stale-file cleanup removes it) and never a blocked pipe;
and ``tail -f`` on a job's file shows its epochs while it runs.

The reporter is any object with ``job_started(key)``, ``epoch(key, epoch, val_rank_ic,
max_epochs)`` and ``job_finished(key, summary)`` (see `deepalpha.progress`); all its
calls happen under the watcher's lock, so they never interleave.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any


def progress_file(folder: str | Path, key: str) -> Path:
    """The file of job ``key`` in ``folder`` (a hash: keys contain slashes)."""
    return Path(folder) / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.jsonl"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class JobProgressWriter:
    """Appends one job's progress records to its file (in the process that trains it)."""

    def __init__(self, folder: str | Path, key: str) -> None:
        self.key = key
        self.path = progress_file(folder, key)
        self._fh = None
        try:
            self._fh = self.path.open("a", buffering=1)  # line-buffered: one write per line
        except OSError:  # progress is best effort: a missing folder must not fail the job
            self._fh = None
        self._write({"event": "start", "pid": os.getpid()})

    def _write(self, rec: dict[str, Any]) -> None:
        if self._fh is None:
            return
        try:
            self._fh.write(json.dumps({"job": self.key, "time": time.time(), **rec}) + "\n")
        except (OSError, ValueError):
            pass

    def epoch(self, rec: dict[str, Any]) -> None:
        """`deepalpha.train.trainer.fit`'s ``on_epoch`` record (plus ``max_epochs``)."""
        self._write(
            {
                "event": "epoch",
                "epoch": int(rec.get("epoch", 0)),
                "max_epochs": rec.get("max_epochs"),
                "valid_rank_ic": _num(rec.get("valid_rank_ic")),
                "train_loss": _num(rec.get("train_loss")),
            }
        )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JobProgressWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class JobProgressWatcher:
    """Tails the job files in ``folder`` from a thread and calls ``reporter`` for new records."""

    def __init__(self, folder: str | Path, reporter: Any, poll_s: float = 0.25) -> None:
        self.folder = Path(folder)
        self.reporter = reporter
        self.poll_s = poll_s
        self._offsets: dict[Path, int] = {}
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> JobProgressWatcher:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="job-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception:  # the display must never kill a run
                pass

    def poll(self) -> None:
        """Read every file's new complete lines and report them."""
        with self._lock:
            try:
                files = sorted(self.folder.glob("*.jsonl"))
            except OSError:
                return
            for f in files:
                self._read(f)

    def _read(self, f: Path) -> None:
        off = self._offsets.get(f, 0)
        try:
            with f.open("rb") as fh:
                fh.seek(off)
                chunk = fh.read()
        except OSError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self._offsets[f] = off + end + 1
        for line in chunk[: end + 1].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            self._dispatch(rec)

    def _dispatch(self, rec: dict[str, Any]) -> None:
        key = rec.get("job")
        if not isinstance(key, str) or key in self._finished:
            return
        if key not in self._started:
            self._started.add(key)
            self.reporter.job_started(key)
        if rec.get("event") == "epoch":
            self.reporter.epoch(
                key, int(rec["epoch"]), _num(rec.get("valid_rank_ic")), rec.get("max_epochs")
            )

    def finished(self, key: str, summary: dict[str, Any]) -> None:
        """Job ``key`` is done (its outputs are written): report its last records, then it."""
        with self._lock:
            f = progress_file(self.folder, key)
            self._read(f)
            if key not in self._started:
                self._started.add(key)
                self.reporter.job_started(key)
            self._finished.add(key)
            self.reporter.job_finished(key, summary)
            self._offsets.pop(f, None)
            f.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the thread and delete the folder."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> JobProgressWatcher:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
