"""Result records of a run: what goes into ``metrics.json`` and ``series.parquet``, the terminal
tables, and `compare` across run directories.

Run directory layout (written by `deepalpha run`)::

    config.yaml          the resolved config (every default filled in)
    data.json            data summary with caveats
    rolling/             the rolling jobs (resumable) and their predictions.parquet
    signals/<key>.parquet  final per-model signal (date, asset, score)
    metrics.json         {"system", "name", "data", "models": {key: {...}}, "wall_seconds"}
    series.parquet       long per-date series: key, universe, date, metric, value
    run.log              one line per stage
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepalpha.atomic import atomic_path, atomic_write_text
from deepalpha.data.predictions import dense_to_long, write_predictions
from deepalpha.evaluate.summary import SUMMARY_COLUMNS, summary_row
from deepalpha.train.rolling import ModelSpec
from deepalpha.train.trainer import make_model


@dataclass
class SignalResult:
    """One evaluated signal (a model's final prediction, or the oracle)."""

    key: str
    dates: np.ndarray
    evaluation: dict[str, Any]  # evaluate_signal output: {universe: result}
    n_params: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    first_row: int = 0
    signal: np.ndarray | None = None  # float[T', N] the evaluated scores on `dates`
    assets: np.ndarray | None = None


def predictions_by(preds: pl.DataFrame, model: str, window: int | None = None) -> pl.DataFrame:
    """One model's (and window's) signal: date, asset, score (float64).

    Each seed's (and window's) scores are z-scored per date first (raw scales differ from seed to
    seed, so a plain mean would weight the seed with the widest scores most), then averaged over
    seeds (and windows when ``window`` is None). Per-date affine maps change no IC, rank or group.
    """
    f = pl.col("model") == model
    if window is not None:
        f = f & (pl.col("window") == window)
    by = ["date", "window", "seed"]
    score = pl.col("score").cast(pl.Float64)
    sd = score.std().over(by)
    z = pl.when(sd > 0).then((score - score.mean().over(by)) / sd).otherwise(0.0)
    return (
        preds.filter(f)
        .with_columns(z.alias("score"))
        .group_by(["date", "asset"])
        .agg(pl.col("score").mean())
        .sort(["date", "asset"])
    )


def model_params(spec: ModelSpec, n_features: int) -> int:
    """Parameter count of a model spec at ``n_features`` inputs."""
    m = make_model(spec.name, n_features, **spec.kwargs)
    return int(sum(p.numel() for p in m.parameters()))


def clean_json(x: Any) -> Any:
    """JSON-safe: arrays to lists, NaN/inf to None, drop per-date series."""
    if isinstance(x, dict):
        return {k: clean_json(v) for k, v in x.items() if not _is_series(v)}
    if isinstance(x, list | tuple):
        return [clean_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return [clean_json(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _is_series(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.ndim >= 1 and v.size > 64


def result_record(r: SignalResult) -> dict[str, Any]:
    """The JSON record of one signal: headline rows per universe + full (series-free) detail."""
    return {
        "n_params": r.n_params,
        "first_date": str(r.dates[0]) if len(r.dates) else None,
        "last_date": str(r.dates[-1]) if len(r.dates) else None,
        "summary": {u: clean_json(summary_row(e)) for u, e in r.evaluation.items()},
        "detail": {u: clean_json(e) for u, e in r.evaluation.items()},
        **{k: clean_json(v) for k, v in r.extra.items() if not _is_series(v)},
    }


def series_frame(results: Sequence[SignalResult]) -> pl.DataFrame:
    """Per-date series of every result in long form (key, universe, date, metric, value)."""
    frames = []
    for r in results:
        d = np.asarray(r.dates, dtype="datetime64[D]")
        cols: list[tuple[str, str, np.ndarray]] = []
        for u, e in r.evaluation.items():
            cols += [(u, "ic", e.get("ic_series")), (u, "rank_ic", e.get("rank_ic_series"))]
            g = e.get("groups", {})
            if "returns" in g:
                gr = np.asarray(g["returns"])
                cols += [(u, f"group_{k}", gr[:, k]) for k in range(gr.shape[1])]
                cols.append((u, "long_short", np.asarray(g["long_short_returns"])))
            if "long_short_net_returns" in g:
                cols.append((u, "long_short_net", np.asarray(g["long_short_net_returns"])))
            if "turnover_series" in g:  # per rebalance: a per-date series when rebalanced daily
                cols.append((u, "top_turnover", np.asarray(g["turnover_series"])[:, -1]))
        for k, v in r.extra.items():
            if isinstance(v, np.ndarray) and v.ndim == 1 and len(v) == len(d):
                cols.append(("-", k, v))
        for u, metric, v in cols:
            if v is None or len(v) != len(d):
                continue
            frames.append(
                pl.DataFrame(
                    {
                        "key": r.key,
                        "universe": u,
                        "date": d,
                        "metric": metric,
                        "value": np.asarray(v, dtype=np.float64),
                    }
                )
            )
    if not frames:
        return pl.DataFrame(
            schema={"key": pl.Utf8, "universe": pl.Utf8, "date": pl.Date, "metric": pl.Utf8,
                    "value": pl.Float64}
        )  # fmt: skip
    return pl.concat(frames)


def seed_predictions(preds: pl.DataFrame, model: str, seed: int) -> pl.DataFrame:
    """One seed's signal of one model: date, asset, score (float64), the mean over windows of the
    per-date z-scored scores (as `predictions_by`, for a single seed)."""
    return predictions_by(preds.filter(pl.col("seed") == seed), model)


def seeds_of(preds: pl.DataFrame, model: str) -> list[int]:
    """Seeds with predictions of ``model``, ascending."""
    return sorted(preds.filter(pl.col("model") == model)["seed"].unique().to_list())


def member_key(model: str, seed: int) -> str:
    """Key of one seed's signal in a multi-seed run: ``gru/s1``."""
    return f"{model}/s{seed}"


#: Figures compared between a seed ensemble and its single-seed members.
SEED_FIGURES = ("rank_ic", "rank_icir", "rank_ic_win", "ls_ann_net", "top_turnover")


def seed_ensembles(metrics: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """What averaging seeds adds, per model and universe, from a run's ``models`` records.

    A record with ``members`` (its single-seed keys) is an ensemble. For each figure of
    `SEED_FIGURES`: the ensemble's value, the members' mean, standard deviation (ddof 1; None for
    one member), min and max, and ``gain`` = ensemble - members' mean.

    Returns ``{model: {universe: {figure: {ensemble, mean, std, min, max, gain}, "n_seeds": k}}}``.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    models = metrics["models"]
    for key, rec in models.items():
        members = [m for m in rec.get("members") or [] if m in models]
        if not members:
            continue
        per_u: dict[str, dict[str, Any]] = {}
        for u, s in rec["summary"].items():
            row: dict[str, Any] = {"n_seeds": len(members)}
            for f in SEED_FIGURES:
                vals = [models[m]["summary"].get(u, {}).get(f) for m in members]
                v = np.array([np.nan if x is None else float(x) for x in vals], dtype=np.float64)
                v = v[np.isfinite(v)]
                ens = s.get(f)
                if v.size == 0 or ens is None:
                    continue
                mean = float(v.mean())
                row[f] = {
                    "ensemble": float(ens),
                    "mean": mean,
                    "std": float(v.std(ddof=1)) if v.size > 1 else None,
                    "min": float(v.min()),
                    "max": float(v.max()),
                    "gain": float(ens) - mean,
                }
            per_u[u] = row
        out[key] = per_u
    return out


def markdown_seed_table(metrics: dict[str, Any], universe: str) -> str:
    """Seed ensembles vs their single seeds for one universe, as GitHub markdown (empty string
    when the run has no multi-seed model)."""
    ens = seed_ensembles(metrics)
    rows = [(k, v[universe]) for k, v in ens.items() if universe in v]
    if not rows:
        return ""
    lines = [
        "| model | seeds | RankIC ensemble | RankIC single (mean ± sd) | gain | RankICIR ensemble "
        "| RankICIR single | L-S net ensemble | L-S net single |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k, r in rows:
        ic, ir, ls = r.get("rank_ic", {}), r.get("rank_icir", {}), r.get("ls_ann_net", {})
        sd = ic.get("std")
        lines.append(
            f"| {k} | {r['n_seeds']} | {fmt('rank_ic', ic.get('ensemble'))} | "
            f"{fmt('rank_ic', ic.get('mean'))}"
            + (f" ± {sd:.3f}" if sd is not None else "")
            + f" | {ic.get('gain', float('nan')):+.4f} | {fmt('x', ir.get('ensemble'))} | "
            f"{fmt('x', ir.get('mean'))} | {fmt('ls_ann_net', ls.get('ensemble'))} | "
            f"{fmt('ls_ann_net', ls.get('mean'))} |"
        )
    return "\n".join(lines)


def signal_file(key: str) -> str:
    """File stem of a signal key (``mlp/equal`` -> ``mlp__equal``)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in key.replace("/", "__"))


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)  # temp file + rename; OSError -> DataError naming the file


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json`` atomically."""
    _atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=1, default=str))


def write_results(run_dir: Path, header: dict[str, Any], results: Sequence[SignalResult]) -> dict:
    """Write ``metrics.json`` and ``series.parquet``; returns the metrics dict."""
    metrics = {**header, "models": {r.key: result_record(r) for r in results}}
    ens = seed_ensembles(metrics)
    if ens:
        metrics["seed_ensembles"] = ens
    sig_dir = run_dir / "signals"
    sig_dir.mkdir(exist_ok=True)
    for r in results:
        if r.signal is not None and r.assets is not None:
            df = dense_to_long(r.signal, r.dates, r.assets)
            write_predictions(df, sig_dir / f"{signal_file(r.key)}.parquet")
    write_metrics(run_dir, metrics)
    with atomic_path(run_dir / "series.parquet") as tmp:
        series_frame(results).write_parquet(tmp)
    return metrics


# ------------------------------------------------------------------------------ tables
PCT = {"top_ann_return", "top_ann_net", "top_max_dd", "ls_ann_return", "ls_ann_net", "ls_vol",
       "ls_max_dd", "rank_ic_win", "top_turnover", "pf_ann_return", "pf_cum_return"}  # fmt: skip
IC3 = {"ic", "rank_ic"}


def fmt(key: str, v: Any) -> str:
    """Format one figure: percent for returns, 3 decimals for IC, 2 otherwise."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if key in ("n_params", "n_dates"):
        return f"{int(v):,}"
    if key in PCT:
        return f"{100 * v:.1f}%"
    if key in IC3:
        return f"{v:.3f}"
    return f"{v:.2f}"


#: Columns of the System A table (key, header). "net" = after trading costs (`CostConfig`
#: defaults, one-sided turnover x (buy + sell rate) per rebalance; long-short pays both legs);
#: runs written before the net figures existed show "-" there.
A_COLUMNS = (
    ("ic", "IC"), ("rank_ic", "RankIC"), ("icir", "ICIR"), ("rank_ic_t_nw", "t (NW)"),
    ("pf_ann_return", "PureF ann."), ("pf_t", "PureF t"), ("top_ann_return", "Top ann."),
    ("top_ann_net", "Top net"), ("ls_ann_return", "L-S ann."), ("ls_ann_net", "L-S net"),
    ("ls_max_dd", "L-S MDD"), ("top_turnover", "Top TO"), ("n_params", "params"),
)  # fmt: skip
#: Columns of the System B table.
B_COLUMNS = (
    ("rank_ic", "RankIC"), ("rank_icir", "RankICIR"), ("rank_icir_ann", "RankICIR ann."),
    ("rank_ic_win", "IC>0"), ("ic", "IC"), ("top_ann_return", "Top ann."),
    ("top_ann_net", "Top net"), ("ls_ann_return", "L-S ann."), ("ls_ann_net", "L-S net"),
    ("top_turnover", "Top TO"), ("n_params", "params"),
)  # fmt: skip


def table_rows(metrics: dict[str, Any], universe: str) -> list[dict[str, Any]]:
    """Flat rows (one per model) for one universe, including pure-factor figures."""
    rows = []
    for key, rec in metrics["models"].items():
        s = rec["summary"].get(universe)
        if s is None:
            continue
        pf = rec.get("pure_factor") or {}
        rows.append(
            {
                "model": key,
                **s,
                "n_params": rec.get("n_params"),
                "pf_ann_return": pf.get("annual_return"),
                "pf_cum_return": pf.get("cumulative_return"),
                "pf_t": pf.get("t_stat"),
            }
        )
    return rows


def render_table(metrics: dict[str, Any], universe: str, title: str | None = None):
    """A rich Table of every model of a run for one universe."""
    from rich.table import Table

    cols = A_COLUMNS if metrics.get("system") == "barra_ml" else B_COLUMNS
    t = Table(title=title or f"{metrics.get('name', '')} — {universe}", title_justify="left")
    t.add_column("model", style="bold")
    for _, h in cols:
        t.add_column(h, justify="right")
    for row in table_rows(metrics, universe):
        t.add_row(row["model"], *(fmt(k, row.get(k)) for k, _ in cols))
    return t


def markdown_table(metrics: dict[str, Any], universe: str) -> str:
    """The run's table for one universe as GitHub markdown (for READMEs and notes)."""
    cols = A_COLUMNS if metrics.get("system") == "barra_ml" else B_COLUMNS
    lines = ["| model | " + " | ".join(h for _, h in cols) + " |"]
    lines.append("|---|" + "---:|" * len(cols))
    for row in table_rows(metrics, universe):
        lines.append(
            f"| {row['model']} | " + " | ".join(fmt(k, row.get(k)) for k, _ in cols) + " |"
        )
    return "\n".join(lines)


def universes_of(metrics: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for rec in metrics["models"].values():
        out += [u for u in rec["summary"] if u not in out]
    return out


def load_metrics(run_dir: str | Path) -> dict[str, Any]:
    from deepalpha.errors import DataError

    f = Path(run_dir) / "metrics.json"
    if not f.is_file():
        raise DataError("not a finished run directory (no metrics.json)", file=f)
    try:
        m = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"unreadable metrics.json: {e}", file=f) from None
    if not isinstance(m, dict):
        raise DataError("metrics.json is not a JSON object", file=f)
    if not isinstance(m.get("models"), dict):
        raise DataError("metrics.json has no 'models' table", file=f)
    return m


def compare_frame(run_dirs: Sequence[str | Path], universe: str | None = None) -> pl.DataFrame:
    """Side-by-side rows (run, universe, model, headline figures) of several runs."""
    rows = []
    for d in run_dirs:
        m = load_metrics(d)
        for u in [universe] if universe else universes_of(m):
            for r in table_rows(m, u):
                rows.append({"run": Path(d).name, "universe": u, **r})
    keys = ["run", "universe", "model"] + [k for k, _, _ in SUMMARY_COLUMNS]
    keys += ["n_params", "pf_ann_return", "pf_t"]
    return pl.DataFrame([{k: r.get(k) for k in keys} for r in rows], strict=False)
