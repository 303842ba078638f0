"""Shared fixtures: the real CN data (skipped when absent), small synthetic markets and the fused C
kernels (skipped without a compiler)."""

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


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """The fused C kernels (``deepalpha.models.kernels``: mhc.c, linrnn.c, gru.c), built once per
    source version into the usual cache folder, or a fresh one when that is not writable; skips
    without a C compiler. Module-scoped: the library cache is cleared before and after."""
    import warnings

    from deepalpha.models import kernels

    try:
        kernels.compiler()
    except kernels.KernelBuildError as err:
        pytest.skip(f"the fused C kernels need a C compiler: {err}")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DEEPALPHA_KERNELS", raising=False)
        kernels.clear_cache()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handle = kernels.library()
        if handle is None:  # e.g. a read-only home: retry in a temporary cache, warnings shown
            mp.setenv("DEEPALPHA_CACHE", str(tmp_path_factory.mktemp("cache")))
            kernels.clear_cache()
            handle = kernels.library()
        assert handle is not None, "a C compiler is present but the kernels did not build"
        yield handle
    kernels.clear_cache()
