"""`deepalpha data synth`: write a synthetic market in the CN layout."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to the ``data`` group."""

    @app.command("synth")
    def synth(
        out: Path = typer.Argument(..., help="folder to create (must not exist or be empty)"),
        stocks: int = typer.Option(3000, help="number of stocks (>= 30)"),
        start: str = typer.Option("2014-01-01", help="first calendar day, YYYY-MM-DD"),
        end: str = typer.Option("2023-12-31", help="last calendar day, YYYY-MM-DD"),
        seed: int = typer.Option(0, help="random seed; same seed -> identical bytes"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing OUT"),
    ) -> None:
        """Write a synthetic A-share market (prices, memberships, fundamentals, industries) in
        the layout of ../shared/data/cn, plus truth/ with the planted factors and alphas."""
        import json

        from rich.console import Console

        from deepalpha.data.synth import write_market

        t0 = time.perf_counter()
        path = write_market(
            out, stocks=stocks, start=start, end=end, seed=seed, overwrite=overwrite
        )
        secs = time.perf_counter() - t0
        meta = json.loads((path / "truth" / "meta.json").read_text())
        con = Console()
        st = meta["stats"]
        con.print(
            f"wrote [bold]{path}[/]: {meta['stocks']} stocks x {meta['trading_days']} days "
            f"({meta['start']}..{meta['end']}, seed {seed}) in {secs:.1f} s"
        )
        con.print(
            f"  suspended {st['suspended_share']:.1%} of stock-days, IPOs {st['ipos_in_sample']}, "
            f"delisted {st['delisted_in_sample']}, CSI sizes {meta['csi_sizes']}"
        )
        for name, s in meta["oracle_rank_ic"].items():
            con.print(f"  oracle RankIC {name}: mean {s['mean']:.4f}, ICIR(ann) {s['icir_ann']}")
