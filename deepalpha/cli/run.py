"""`deepalpha run CONFIG` and `deepalpha compare RUN_DIR...`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        config: Path = typer.Argument(..., help="run config YAML (configs/*.yaml)"),
        data: str = typer.Option(None, help="data folder in the CN layout, or 'synthetic'"),
        out: Path = typer.Option(None, help="run directory (default runs/<name>)"),
        executor: str = typer.Option(None, help="local | process | ray"),
        device: str = typer.Option(None, help="auto | cpu | cuda"),
        set_: list[str] = typer.Option(
            None, "--set", help="override a config key: --set rolling.frequency=yearly"
        ),
        quiet: bool = typer.Option(False, help="no progress output"),
    ) -> None:
        """Run a research system end to end (resumes when re-run)."""
        from deepalpha.workflows.run import parse_sets, run_file

        run_file(
            config, out, data=data, executor=executor, device=device, progress=not quiet,
            sets=parse_sets(set_ or []),
        )  # fmt: skip

    @app.command()
    def compare(
        runs: list[Path] = typer.Argument(..., help="run directories"),
        universe: str = typer.Option(None, help="only this universe"),
        html: Path = typer.Option(None, help="also write an HTML page with the plots overlaid"),
        markdown: bool = typer.Option(False, help="print each run's tables as markdown instead"),
        paired: str = typer.Option(
            None,
            "--paired",
            metavar="BASE",
            help="test every other signal against BASE date by date (a key such as mlp/ic, or "
            "RUN:KEY when keys repeat): mean diff, win rate, HAC t, block-bootstrap 95% CI",
        ),
        horizon: int = typer.Option(
            None,
            min=1,
            help="--paired: label horizon of the IC/RankIC series (default: the one recorded "
            "in metrics.json, else 1); long_short always uses 1",
        ),
        n_boot: int = typer.Option(5000, min=1, help="--paired: bootstrap replicates"),
        seed: int = typer.Option(0, help="--paired: bootstrap seed"),
    ) -> None:
        """Print the headline figures of several runs side by side (or, with --paired, each
        signal's per-date difference to a base signal)."""
        from rich.console import Console
        from rich.table import Table

        if paired is not None:
            _compare_paired(runs, paired, universe, horizon, n_boot, seed, markdown, html)
            return
        from deepalpha.workflows.results import (
            compare_frame,
            fmt,
            load_metrics,
            markdown_seed_table,
            markdown_table,
            universes_of,
        )

        if markdown:
            for r in runs:
                m = load_metrics(r)
                for u in [universe] if universe else universes_of(m):
                    print(f"\n{m['name']} — {u}\n\n{markdown_table(m, u)}")
                    seeds = markdown_seed_table(m, u)
                    if seeds:  # a multi-seed run: what the ensemble adds over one seed
                        print(f"\n{m['name']} — {u}: seed ensembles vs single seeds\n\n{seeds}")
            return
        df = compare_frame(runs, universe)
        cols = ["run", "universe", "model", "ic", "rank_ic", "rank_icir", "rank_ic_win",
                "rank_ic_t_nw", "top_ann_return", "top_ann_net", "ls_ann_return", "ls_ann_net",
                "ls_max_dd", "top_turnover", "pf_ann_return", "pf_t", "n_params"]  # fmt: skip
        t = Table(title="comparison")
        for c in cols:
            t.add_column(c, justify="left" if c in ("run", "universe", "model") else "right")
        for row in df.iter_rows(named=True):
            t.add_row(*(str(row[c]) if c in ("run", "universe", "model") else fmt(c, row[c])
                        for c in cols))  # fmt: skip
        Console().print(t)
        if html is not None:
            from deepalpha.report.html import write_compare_report

            Console().print(f"wrote {write_compare_report(list(runs), html)}")


def _compare_paired(
    runs: list[Path],
    base: str,
    universe: str | None,
    horizon: int | None,
    n_boot: int,
    seed: int,
    markdown: bool,
    html: Path | None,
) -> None:
    """`compare --paired`: one table per (signal, universe); errors as one line, exit 2."""
    from rich.console import Console

    from deepalpha.cli.errors import print_error
    from deepalpha.errors import DeepAlphaError
    from deepalpha.workflows.paired import NOTE, markdown_tables, paired_frame, rich_tables

    try:
        df = paired_frame(runs, base, universe=universe, horizon=horizon, n_boot=n_boot, seed=seed)
    except DeepAlphaError as e:  # exit 2 here too, so CliRunner callers see main()'s code
        print_error(e)
        raise typer.Exit(2) from None
    if df.height == 0:
        print(f"no series to compare with {base} (universe {universe or 'any'})")
        return
    if html is not None:  # the compare page with the paired section after the headline tables
        from deepalpha.report.html import write_compare_report
        from deepalpha.report.paired_html import paired_section

        path = write_compare_report(list(runs), html, extra=[paired_section(df, base)])
        print(f"wrote {path}")
    if markdown:
        print(markdown_tables(df) + "\n\n" + NOTE)
        return
    con = Console()
    for t in rich_tables(df):
        con.print(t)
    con.print(NOTE, highlight=False)
