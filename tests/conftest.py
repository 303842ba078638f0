"""Shared fixtures: the real CN data (skipped when absent) and small synthetic markets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CN_PATH = Path(os.environ.get("DEEPALPHA_CN_DATA", REPO.parent / "shared" / "data" / "cn"))


@pytest.fixture(scope="session")
def cn_path() -> Path:
    """Path of the real A-share data; skips the test when it is absent."""
    if not (CN_PATH / "prices" / "calendars" / "day.txt").is_file():
        pytest.skip(f"real CN data not found at {CN_PATH} (set DEEPALPHA_CN_DATA)")
    return CN_PATH


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory) -> dict[str, Path]:
    """The quick (CI-sized) demo, run once per session: ``{"market", "demo_barra",
    "demo_decompgrn"}`` -> paths of the synthetic market and the two run directories."""
    from deepalpha.workflows.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    run_demo(out, quick=True, progress=False)
    return {
        "market": out / "market",
        "demo_barra": out / "demo_barra",
        "demo_decompgrn": out / "demo_decompgrn",
    }
