"""Subprocess for the orphan test: a process pool whose job sleeps and reports its pid."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from deepalpha.data.panel import Panel
from deepalpha.train.executors import ProcessExecutor


def sleeper(panel: Panel, job: str) -> int:
    Path(job).write_text(str(os.getpid()))
    time.sleep(120)
    return os.getpid()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    panel = Panel(
        np.zeros((1, 3, 2), np.float32),
        np.arange("2020-01-01", "2020-01-04", dtype="datetime64[D]"),
        np.array(["A", "B"]),
        ("close",),
        {},
    )
    ex = ProcessExecutor(workers=1, scratch=out / "data")
    for _ in ex.run(sleeper, panel, [str(out / "pid")]):
        pass
