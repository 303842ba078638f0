"""`deepalpha run`: one config -> a run directory with predictions, metrics, tables.

Re-running the same command resumes: finished rolling jobs are skipped, the risk model is
reloaded, and the evaluation (cheap) is redone.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from deepalpha.config import dump_yaml
from deepalpha.workflows.config import BarraMLConfig, RunConfig, load_run_config
from deepalpha.workflows.data import data_summary, load_panel, resolve_data
from deepalpha.workflows.results import (
    clean_json,
    render_table,
    universes_of,
    write_metrics,
    write_results,
)


def machine() -> str:
    """A one-line description of the machine (for reports and the README)."""
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return f"{platform.machine()}, {os.cpu_count()} cores, {dev}, torch {torch.__version__}"


def wide_console() -> Console:
    """A console at least 150 columns wide (tables stay readable in logs and pipes)."""
    return Console(width=max(Console().width, 150))


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[12, 24]"]`` -> ``{"a.b": 1, "c": [12, 24]}`` (values parsed as YAML)."""
    import yaml

    from deepalpha.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def config_overrides(
    data: str | None = None,
    executor: str | None = None,
    device: str | None = None,
    sets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CLI flags as dotted config overrides."""
    out: dict[str, Any] = dict(sets or {})
    if data is not None:
        out["data.path"] = str(data)
    if executor is not None:
        out["rolling.executor"] = executor
    if device is not None:
        out["rolling.train.device"] = device
    return out


def run_config(
    cfg: RunConfig,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    console: Console | None = None,
    reporter: Any = None,
) -> dict[str, Any]:
    """Run a validated config; returns the metrics dict written to ``metrics.json``.

    ``reporter`` (`deepalpha.progress`) shows the stages, the rolling jobs, the risk
    model and backtest bars; default: a live display when ``console`` is a terminal, plain lines
    when not, nothing when not ``progress``.
    """
    from deepalpha.progress import make_reporter

    console = console or Console()
    own = reporter is None
    rep = make_reporter(quiet=not progress, console=console) if own else reporter
    try:
        return _run_config(cfg, out, rep)
    finally:
        if own:
            rep.close()


def _run_config(cfg: RunConfig, out: str | Path | None, rep: Any) -> dict[str, Any]:
    run_dir = Path(out) if out is not None else Path("runs") / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_yaml(cfg, run_dir / "config.yaml")
    t0 = time.perf_counter()
    log = run_dir / "run.log"

    def stage(msg: str) -> None:
        with log.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        rep.message(f"{cfg.name}: {msg}")

    stage("data")
    data_path = resolve_data(cfg.data, run_dir)
    panel = load_panel(data_path, cfg.data)
    summary = data_summary(data_path, panel)
    (run_dir / "data.json").write_text(json.dumps(summary, indent=1))
    stage(f"{cfg.system}: risk model, rolling training, evaluation")
    if isinstance(cfg, BarraMLConfig):
        from deepalpha.workflows.barra_ml import run_barra_ml

        res = run_barra_ml(cfg, run_dir, data_path, panel, reporter=rep)
    else:
        from deepalpha.workflows.decompgrn import run_decompgrn

        res = run_decompgrn(cfg, run_dir, data_path, panel, reporter=rep)
    header = {
        "system": cfg.system,
        "name": cfg.name,
        "data": summary,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
        **{k: v for k, v in res.items() if k not in ("results", "system")},
    }
    metrics = write_results(run_dir, header, res["results"])
    if cfg.portfolio.enabled:
        from deepalpha.workflows.portfolio import run_portfolios

        stage("index enhancement")
        keys = [r.key for r in res["results"]]
        metrics["portfolio"] = run_portfolios(
            cfg.portfolio, run_dir, data_path, panel, keys, log=stage, reporter=rep
        )
        metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
        write_metrics(run_dir, clean_json(metrics))
    from deepalpha.report.html import write_report

    stage(f"report: {write_report(run_dir)}")
    stage(f"done in {metrics['wall_seconds']:.0f} s -> {run_dir}")
    return metrics


def run_file(
    path: str | Path,
    out: str | Path | None = None,
    *,
    data: str | None = None,
    executor: str | None = None,
    device: str | None = None,
    progress: bool = True,
    console: Console | None = None,
    sets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load a YAML config (with CLI overrides) and run it; prints the summary tables."""
    console = console or wide_console()
    cfg = load_run_config(path, config_overrides(data, executor, device, sets))
    metrics = run_config(cfg, out, progress=progress, console=console)
    print_tables(metrics, console)
    return metrics


def print_tables(metrics: dict[str, Any], console: Console) -> None:
    for u in universes_of(metrics):
        console.print(render_table(metrics, u))
