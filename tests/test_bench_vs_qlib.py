"""benchmarks/bench_vs_qlib.py skips cleanly (exit 0, one line on how to install) without qlib."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_vs_qlib.py"


@pytest.mark.skipif(
    importlib.util.find_spec("qlib") is not None,
    reason="qlib is importable here: the script would run the benchmark, not skip",
)
def test_skips_without_qlib(tmp_path):
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout
    assert "skipped" in lines[0] and "pip install pyqlib" in lines[0]
    assert "pip install torch==2.13.0" in lines[0]  # torch first: never a CUDA build
    assert not (tmp_path / "work").exists()  # nothing written
