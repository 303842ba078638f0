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
