"""Executors: run independent jobs ``fn(panel, job) -> result`` sequentially, in a local process
pool, or on Ray, yielding ``(job, result)`` as each finishes (so the caller can persist it at once).

How the data travels:

* ``local``: the Panel object itself;
* ``process``: the panel is saved once as ``.npy`` files (`save_panel_arrays`) and every worker
  memory-maps them (no pickling of the arrays, pages shared by the OS);
* ``ray``: the arrays are put in the object store once (``ray.put``) and every task gets the same
  reference (zero-copy read-only numpy in the workers).

``fn`` must be a picklable module-level callable (or a ``functools.partial`` of one).
Results are the same bytes whichever executor runs them as long as the job itself pins its
thread count (the rolling jobs do).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from deepalpha.data.panel import Panel
from deepalpha.errors import ConfigError, DataError

J = TypeVar("J")
R = TypeVar("R")
JobFn = Callable[[Panel, Any], Any]


# ----------------------------------------------------------------------------- data transport
def panel_to_arrays(panel: Panel) -> dict[str, Any]:
    """Plain dict of the panel's arrays (what Ray puts in its object store)."""
    return {
        "data": panel.data,
        "dates": panel.dates,
        "assets": panel.assets,
        "fields": list(panel.fields),
        "masks": dict(panel.masks),
    }


def arrays_to_panel(d: dict[str, Any]) -> Panel:
    return Panel(d["data"], d["dates"], d["assets"], tuple(d["fields"]), dict(d["masks"]))


def save_panel_arrays(panel: Panel, folder: str | Path) -> Path:
    """Write the panel as ``.npy`` files (data, dates, assets, masks) + ``meta.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "data.npy", np.ascontiguousarray(panel.data))
    np.save(folder / "dates.npy", panel.dates.astype("datetime64[D]"))
    np.save(folder / "assets.npy", panel.assets.astype(str))
    for k, m in panel.masks.items():
        np.save(folder / f"mask_{k}.npy", m)
    meta = {"fields": list(panel.fields), "masks": sorted(panel.masks)}
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / "meta.json")  # written last: the folder is complete when it exists
    return folder


def load_panel_arrays(folder: str | Path, mmap: bool = True) -> Panel:
    """Inverse of `save_panel_arrays`; memory-maps the data (read-only) when ``mmap``."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise DataError("saved panel is incomplete (no meta.json)", file=meta_path)
    meta = json.loads(meta_path.read_text())
    mode = "r" if mmap else None
    return Panel(
        np.load(folder / "data.npy", mmap_mode=mode),
        np.load(folder / "dates.npy"),
        np.load(folder / "assets.npy"),
        tuple(meta["fields"]),
        {k: np.load(folder / f"mask_{k}.npy", mmap_mode=mode) for k in meta["masks"]},
    )


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Pool initializer: end this worker when its parent process is gone (a killed ``deepalpha
    run`` would otherwise leave spawned workers training to the end of their jobs)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _call_saved(fn: JobFn, folder: str, job: Any) -> Any:
    return fn(load_panel_arrays(folder), job)


def _call_arrays(fn: JobFn, arrays: dict[str, Any], job: Any) -> Any:
    return fn(arrays_to_panel(arrays), job)


# ----------------------------------------------------------------------------- executors
class Executor(Protocol):
    def run(self, fn: JobFn, panel: Panel, jobs: Sequence[J]) -> Iterator[tuple[J, Any]]: ...


class LocalExecutor:
    """Sequential, in this process."""

    def run(self, fn: JobFn, panel: Panel, jobs: Sequence[J]) -> Iterator[tuple[J, Any]]:
        for job in jobs:
            yield job, fn(panel, job)


class ProcessExecutor:
    """A local pool of ``workers`` spawned processes reading a memory-mapped copy of the panel
    saved under ``scratch``."""

    def __init__(self, workers: int = 2, scratch: str | Path | None = None) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.scratch = scratch

    def run(self, fn: JobFn, panel: Panel, jobs: Sequence[J]) -> Iterator[tuple[J, Any]]:
        if not jobs:
            return
        if self.scratch is None:
            raise ConfigError("the process executor needs a scratch folder for the shared data")
        folder = Path(self.scratch)
        if not (folder / "meta.json").is_file():
            save_panel_arrays(panel, folder)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            pending = {pool.submit(_call_saved, fn, str(folder), j): j for j in jobs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    job = pending.pop(f)
                    yield job, f.result()


class RayExecutor:
    """Ray tasks (``num_cpus`` each). ``address``: ``local`` starts a private local cluster
    (``workers`` CPUs, no dashboard) and shuts it down afterwards; ``auto`` or ``ray://host:port``
    connects to a running one. A task whose worker process dies is re-run up to ``max_retries``
    times (jobs are pure functions, so a re-run gives the same result)."""

    def __init__(
        self, address: str = "local", workers: int = 2, num_cpus: float = 1.0, max_retries: int = 3
    ) -> None:
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.max_retries = max_retries

    def run(self, fn: JobFn, panel: Panel, jobs: Sequence[J]) -> Iterator[tuple[J, Any]]:
        if not jobs:
            return
        try:
            import ray
        except ImportError as e:
            raise ConfigError(
                f"executor 'ray' needs ray installed (pip install ray): {e}"
            ) from None
        started = False
        if not ray.is_initialized():
            if self.address == "local":
                ray.init(
                    num_cpus=self.workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            started = True
        try:
            # a job is a pure function of (config, data, job), so a task whose worker died (killed,
            # out of memory, node lost) is simply run again; errors raised by the job itself are
            # not retried (retry_exceptions off) and reach the caller as before
            remote = ray.remote(num_cpus=self.num_cpus, max_retries=self.max_retries)(_call_arrays)
            ref = ray.put(panel_to_arrays(panel))
            pending = {remote.remote(fn, ref, j): j for j in jobs}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for r in done:
                    job = pending.pop(r)
                    yield job, ray.get(r)
        finally:
            if started:
                ray.shutdown()


def make_executor(
    name: str, *, workers: int = 2, address: str = "local", scratch: str | Path | None = None
) -> Executor:
    """``local`` | ``process`` | ``ray``."""
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers, scratch)
    if name == "ray":
        return RayExecutor(address, workers)
    raise ConfigError(f"unknown executor {name!r}; choose local, process or ray")
