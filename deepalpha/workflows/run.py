"""`deepalpha run`: one config -> a run directory with predictions, metrics, tables.

Re-running the same command resumes: finished rolling jobs are skipped, the risk model is
reloaded, and the evaluation (cheap) is redone.

A run folder never lies (`deepalpha.workflows.run_folder`): the cached settings and the data
fingerprint are checked against ``manifest.json`` (or, for an older folder, ``config.yaml``)
before anything is written, so a refused re-run leaves every file byte-identical; files are
written atomically; ``manifest.json`` records the code version and data fingerprint of each
artefact. Degenerate inputs (an empty span, a universe too small for IC and groups) are refused
before training (`deepalpha.guards`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from deepalpha.errors import ConfigError, DataError
from deepalpha.guards import MIN_IC_STOCKS, check_universe_size
from deepalpha.workflows import run_folder
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
    except OSError as e:  # a full disk or a folder gone read-only mid-run: one line, no traceback
        raise DataError(f"I/O error during the run: {e.strerror or e}", file=e.filename) from None
    finally:
        if own:
            rep.close()


def _run_config(cfg: RunConfig, out: str | Path | None, rep: Any) -> dict[str, Any]:
    """Check, then write. Nothing in ``run_dir`` is touched until the folder's cached settings
    (`run_folder.check_settings`) and data fingerprint (`run_folder.check_data`) match this run
    and the folder is writable; every file is then written atomically and recorded in
    ``manifest.json`` with the code version and data fingerprint."""
    from deepalpha.train.rolling import data_fingerprint

    run_dir = Path(out) if out is not None else Path("runs") / cfg.name
    check_config(cfg)
    manifest = run_folder.check_settings(run_dir, cfg)  # reads only
    t0 = time.perf_counter()
    log = run_dir / "run.log"
    held: list[str] = []  # log lines held back until the folder's checks have passed
    committed = [False]

    def stage(msg: str) -> None:
        held.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        if committed[0]:
            with log.open("a") as f:
                f.writelines(held)
            held.clear()
        rep.message(f"{cfg.name}: {msg}")

    stage("data")
    if cfg.data.path == "synthetic":
        run_folder.ensure_writable(run_dir)  # the market is written inside the run folder
    data_path = resolve_data(cfg.data, run_dir)
    panel = load_panel(data_path, cfg.data)
    fp = data_fingerprint(panel)
    run_folder.check_data(run_dir, manifest, fp)
    check_universes(cfg, panel)
    run_folder.ensure_writable(run_dir)
    summary = {**data_summary(data_path, panel), "fingerprint": fp}
    run_folder.atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
    run_folder.atomic_write_text(run_dir / "data.json", json.dumps(summary, indent=1))
    manifest = run_folder.write_manifest(
        run_dir, cfg, fp, ["config.yaml", "data.json"], previous=manifest
    )
    committed[0] = True
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
        "code": run_folder.code_version(),
        "config_fingerprint": manifest["config_fingerprint"],
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
    run_folder.write_manifest(
        run_dir, cfg, fp, run_folder.run_artefacts(run_dir), previous=manifest
    )
    stage(f"done in {metrics['wall_seconds']:.0f} s -> {run_dir}")
    return metrics


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML text (every default filled in)."""
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def check_config(cfg: RunConfig) -> None:
    """Degenerate settings the schema lets through, refused before anything is read or
    written: an empty model list, windows < 1, start after end (data, rolling)."""
    if not cfg.rolling.models:
        raise ConfigError("rolling.models: at least one model is needed")
    bad = [w for w in cfg.rolling.windows if w < 1]
    if bad:
        raise ConfigError(f"rolling.windows: every window must be >= 1 (got {bad})")
    for key, spec in (("data", cfg.data), ("rolling", cfg.rolling)):
        if spec.start is not None and spec.end is not None and spec.start > spec.end:
            raise ConfigError(f"{key}.start ({spec.start}) is after {key}.end ({spec.end})")


def check_universes(cfg: RunConfig, panel: Any) -> None:
    """Before training: every evaluated universe the panel has must hold enough tradable
    stocks on some date for IC and ``n_groups`` groups (`deepalpha.guards.check_universe_size`);
    a universe the panel lacks is refused for System A (its evaluation needs every one)."""
    if cfg.evaluate.start is not None and np.datetime64(cfg.evaluate.start) > panel.dates[-1]:
        raise ConfigError(
            f"evaluate.start ({cfg.evaluate.start}) is after the data's last date "
            f"({panel.dates[-1]}): nothing to evaluate"
        )
    need = max(MIN_IC_STOCKS, cfg.evaluate.n_groups)
    tradable = panel.masks.get("tradable")
    for u in cfg.evaluate.universes:
        if u not in panel.masks:
            if isinstance(cfg, BarraMLConfig):
                raise ConfigError(
                    f"evaluate.universes: the data has no universe {u!r} "
                    f"(has {sorted(panel.masks)})"
                )
            continue
        m = panel.masks[u] if tradable is None else panel.masks[u] & tradable
        check_universe_size(m, u, need=need, what=f"IC and {cfg.evaluate.n_groups} groups")


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
