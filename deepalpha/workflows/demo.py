"""The demo workflow (grows as the pipelines land)."""

from __future__ import annotations

from pathlib import Path


def run_demo(out: Path, stocks: int = 400, seed: int = 7) -> None:
    raise NotImplementedError("the demo lands with the synthetic market")
