"""`deepalpha models ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="models commands", no_args_is_help=True)

SEQ_FEATURES, TAB_FEATURES = 6, 15  # the DecompGRN inputs (HOLCV + VWAP); Barra styles


@app.command("list")
def list_models() -> None:
    """Print every registered model with its parameter count at default sizes
    (sequence models for 6 features, tabular for 15) and the DecompGRN / GRU ratio."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from deepalpha.models import MODELS, build_model, count_parameters

    table = Table(title="deepalpha models (default sizes)")
    for col in ("name", "kind", "inputs", "parameters", "description"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    counts = {}
    for name, spec in MODELS.items():
        n_feat = SEQ_FEATURES if spec.kind == "sequence" else TAB_FEATURES
        counts[name] = count_parameters(build_model(name, n_feat, seed=0))
        shape = f"[n, t, {n_feat}]" if spec.kind == "sequence" else f"[n, {n_feat}]"
        table.add_row(name, spec.kind, escape(shape), f"{counts[name]:,}", spec.description)
    console = Console()
    console.print(table)
    ratio = counts["decompgrn"] / counts["gru"]
    console.print(
        f"DecompGRN / GRU parameters: {counts['decompgrn']:,} / {counts['gru']:,} = {ratio:.2f}"
        " (report: 0.43; target 0.4-0.6)"
    )


@app.command("inspect")
def inspect(
    run_dir: str = typer.Argument(..., help="run folder (or its rolling/ folder)"),
    model: list[str] = typer.Option(None, "--model", help="model key(s); default: every HC/mHC"),
    rows: int = typer.Option(2048, help="probe rows (standard normal inputs)"),
    seed: int = typer.Option(0, help="probe seed"),
    json_out: str = typer.Option(None, "--json", help="also write every job's figures here"),
) -> None:
    """Stream mixing of each trained HC / mHC model: streams' spread by layer, the learned H_res
    (bias-only and batch mean) and the Amax gain, per job and averaged per model.

    The probe batch is standard normal rows, the scale of standardised style exposures."""
    import json
    from pathlib import Path

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from deepalpha.errors import DataError
    from deepalpha.models.mixing import format_matrix, has_streams, mixing_summary, probe_batch
    from deepalpha.train.trained import trained_jobs

    console = Console()
    per_model: dict[str, list[dict]] = {}
    table = Table(title=f"stream mixing, {run_dir} (probe: {rows} N(0,1) rows, seed {seed})")
    for col in ("model", "window", "retrain", "seed"):
        table.add_column(col, no_wrap=True)
    for col in ("relative spread by depth (0 = input)", "H_res off-diagonal by layer", "Amax"):
        table.add_column(col)
    for job in trained_jobs(run_dir, model or None):
        if not has_streams(job.model):
            continue
        x = probe_batch(job.model.proj_in.in_features, rows, seed)
        s = mixing_summary(job.model, x)
        s |= {"model": job.model_key, "window": job.window, "retrain": job.retrain}
        s["seed"] = job.seed
        per_model.setdefault(job.model_key, []).append(s)
        table.add_row(
            job.model_key,
            str(job.window),
            job.retrain,
            str(job.seed),
            " ".join(f"{v:.2f}" for v in s["relative_spread"]),
            " ".join(f"{v:.2f}" for v in s["h_res_offdiag"]),
            f"{max(s['amax_fwd'], s['amax_bwd']):.3g}",
        )
    if not per_model:
        raise DataError("no trained HC / mHC model found", file=str(run_dir))
    console.print(table)
    for key, items in per_model.items():
        mean_res = np.mean([s["h_res_mean"] for s in items], axis=0)
        console.print(
            f"\n[bold]{key}[/]: {len(items)} jobs; mean relative spread by depth "
            + " ".join(f"{v:.2f}" for v in np.mean([s["relative_spread"] for s in items], 0))
            + f"; Amax gain max {max(max(s['amax_fwd'], s['amax_bwd']) for s in items):.4g}"
        )
        for layer, m in enumerate(mean_res, 1):
            console.print(f"  H_res layer {layer} (mean over jobs and rows):")
            console.print("    " + format_matrix(m).replace("\n", "\n    "), highlight=False)
    if json_out:

        def plain(v):
            return v.tolist() if isinstance(v, np.ndarray) else v

        out = [{k: plain(v) for k, v in s.items()} for items in per_model.values() for s in items]
        Path(json_out).write_text(json.dumps(out, indent=1))
        console.print(f"wrote {json_out}")
