"""`deepalpha risk ...` commands: build a risk model from a CN-layout folder, inspect one."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="Barra CNE6-style risk model: build, info, explain.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _fail(e: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def build(
    data: Path = typer.Argument(..., help="CN-layout folder (real data or a synthetic market)."),
    out_dir: Path = typer.Option(..., "--out", help="Directory to write the model to."),
    freq: str = typer.Option("daily", help="daily | monthly regression."),
    preset: str = typer.Option("responsive", help="responsive (84/504) | stable (252/756)."),
    cov: str = typer.Option("month_end", help="Covariance dates: month_end | all."),
    cache: bool = typer.Option(True, help="Use / fill the panel cache."),
    bias: bool = typer.Option(True, help="Compute bias statistics and store them in meta.json."),
    horizon: int = typer.Option(
        1,
        help="Forecast horizon in trading days (1, 21, ...): Newey-West lags and bias statistics.",
    ),
) -> None:
    """Fit exposures, factor and specific returns, covariance and specific risk; save them."""
    import time

    import numpy as np
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from deepalpha.atomic import ensure_writable
    from deepalpha.errors import ConfigError, DeepAlphaError
    from deepalpha.risk.bias import bias_report
    from deepalpha.risk.model import RiskConfig, build_risk_model, load_inputs, model_rows

    try:
        if freq not in ("daily", "monthly"):
            raise ConfigError(f"--freq must be daily or monthly, got {freq!r}")
        if cov not in ("month_end", "all"):
            raise ConfigError(f"--cov must be month_end or all, got {cov!r}")
        cfg = RiskConfig.preset(preset, cov=cov, horizon=horizon)
        ensure_writable(out_dir.parent)  # save() writes a temp folder beside out_dir
        t0 = time.perf_counter()
        with Progress(
            TextColumn("[bold]{task.description:<32}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as bar:
            task = bar.add_task("loading data", total=100)
            panel, groups, list_dates = load_inputs(data, cache=cache)
            panel.meta.setdefault("path", str(data))  # named by the degenerate-input errors

            def progress(stage: str, frac: float) -> None:
                bar.update(task, completed=100 * frac, description=stage)

            model = build_risk_model(
                panel, groups, freq=freq, config=cfg, progress=progress, list_dates=list_dates
            )
            if bias:
                bar.update(task, description="bias statistics")
                members = {
                    k: panel.masks[k] for k in ("csi300", "csi500", "csi1000") if k in panel.masks
                }
                if freq != "daily":
                    members = {
                        k: m[model_rows(panel.dates, model.dates)] for k, m in members.items()
                    }
                by_h = {
                    h: bias_report(model, horizon=h, members=members)
                    for h in sorted({1, int(model.meta["horizon"])})
                }
                model.meta["bias"] = by_h[int(model.meta["horizon"])]
                model.meta["bias_by_horizon"] = {str(h): b for h, b in by_h.items()}
            bar.update(task, description="saving")
            model.meta["data"] = str(data)
            model.meta["build_seconds"] = round(time.perf_counter() - t0, 1)
            model.save(out_dir)
            bar.update(task, completed=100, description="done")
    except DeepAlphaError as e:
        _fail(e)
    out.print(
        f"risk model ({freq}) -> {escape(str(out_dir))}: {len(model.dates)} dates x "
        f"{len(model.assets)} stocks, K={len(model.factor_names)}, mean R^2 "
        f"{float(np.nanmean(model.r2)):.3f}, {model.meta['build_seconds']} s"
    )


@app.command()
def info(
    model_dir: Path = typer.Argument(..., help="Directory written by `deepalpha risk build`."),
    top: int = typer.Option(10, help="How many factors to list by mean return."),
    horizon: int | None = typer.Option(
        None, help="Bias statistics at this horizon in periods (default: the model's horizon)."
    ),
) -> None:
    """Mean R^2, annualised factor volatilities, top factor returns, bias statistics at the
    model's forecast horizon (factor, eigen, random and CSI member-proxy portfolios)."""
    import warnings

    import numpy as np

    from deepalpha.errors import DeepAlphaError
    from deepalpha.guards import load_risk_dir
    from deepalpha.risk.bias import bias_report

    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (styles not yet alive)

    try:
        m = load_risk_dir(model_dir)
    except DeepAlphaError as e:
        _fail(e)
    ppy = m.periods_per_year
    f = np.asarray(m.factor_returns, dtype=np.float64)
    head = Table(title=escape(str(model_dir)), show_header=False)
    head.add_row("frequency", m.freq)
    head.add_row("dates", f"{m.dates[0]} .. {m.dates[-1]} ({len(m.dates)})")
    head.add_row("stocks", str(len(m.assets)))
    head.add_row(
        "factors",
        f"{len(m.factor_names)} = country + {m.n_industries} industries + {len(m.style_names)} styles",
    )
    head.add_row(
        "cross-sectional R^2", f"mean {np.nanmean(m.r2):.3f}, median {np.nanmedian(m.r2):.3f}"
    )
    head.add_row("covariance dates", f"{len(m.cov_dates)} ({m.cov_dates[0]} .. {m.cov_dates[-1]})")

    t = Table(title=f"factors (annualised, x{ppy})")
    for c in ("factor", "mean ret", "vol", "|t| mean", "share |t|>2", "bias"):
        t.add_column(c, justify="right" if c != "factor" else "left")
    h = int(horizon or m.meta.get("horizon", 1))
    head.add_row("bias horizon", str(h))
    stored = (m.meta.get("bias_by_horizon") or {}).get(str(h))
    if stored is None and int(m.meta.get("horizon", 1)) == h and m.meta.get("bias"):
        stored = m.meta["bias"]
    bias = stored or bias_report(m, horizon=h)  # no index proxies without the panel
    head.add_row(
        "forecast horizon", f"{m.meta.get('horizon', 1)} (NW lags {m.meta.get('nw_lags', 2)})"
    )
    out.print(head)
    mean = np.nanmean(f, axis=0) * ppy
    vol = np.nanstd(f, axis=0) * np.sqrt(ppy)
    ts = np.abs(np.asarray(m.tstats, dtype=np.float64))
    order = np.r_[0, 1 + m.n_industries + np.arange(len(m.style_names))]
    ind_order = 1 + np.argsort(-np.abs(mean[1 : 1 + m.n_industries]))[: max(top - len(order), 0)]
    for k in np.r_[order, ind_order]:
        with np.errstate(invalid="ignore"):
            share = np.nanmean(ts[:, k] > 2)
        t.add_row(
            m.factor_names[k],
            f"{mean[k]:+.2%}",
            f"{vol[k]:.2%}",
            f"{np.nanmean(ts[:, k]):.2f}",
            f"{share:.0%}",
            f"{bias['per_factor'].get(m.factor_names[k], float('nan')):.2f}",
        )
    out.print(t)
    b = Table(
        title=f"bias statistics at horizon {bias.get('horizon', 1)} (std of z; rolling windows "
        f"of {bias['window']} blocks)"
    )
    for c in ("portfolios", "median", "q10", "q90", "rolling median", "rolling MRAD", "target"):
        b.add_column(c)
    cols = ("median", "q10", "q90", "rolling_median", "rolling_mrad")
    targets = {"factor": "[0.95, 1.05]", "eigen": "[0.95, 1.10]", "random": "[0.90, 1.10]"}
    for k in ("factor", "eigen", "random"):
        b.add_row(k, *(f"{bias[k][x]:.3f}" for x in cols), targets[k])
    styles = [bias["per_factor"].get(n, float("nan")) for n in m.style_names]
    if styles:
        b.add_row("styles", f"{np.nanmedian(styles):.3f}", f"{np.nanmin(styles):.3f} (min)",
                  f"{np.nanmax(styles):.3f} (max)", "", "", "[0.85, 1.15] each")  # fmt: skip
    for k, s in (bias.get("index") or {}).items():
        b.add_row(f"{k} proxy", f"{s['bias']:.3f}", "", "", f"{s['rolling_median']:.3f}",
                  f"{s['rolling_mrad']:.3f}", "[0.90, 1.10]")  # fmt: skip
    out.print(b)


from deepalpha.cli import risk_explain as _risk_explain  # noqa: E402  (registers `explain`)

_risk_explain.register(app)
