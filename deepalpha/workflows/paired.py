"""`deepalpha compare --paired BASE RUN_DIR...`: every signal against one base signal, date by
date (`deepalpha.evaluate.paired.paired_difference`) on the per-date series of the run
directories (``series.parquet``: key, universe, date, metric, value).

Signals are named by their key (``mlp/ic``), or ``RUN:KEY`` (RUN = the run directory's name)
when a key appears in more than one run. For each other signal, universe and metric
(`METRICS`) the two series are aligned on date and tested over the dates where both exist.

Horizon of the t-stat and of the bootstrap block, per metric:

- ``ic``, ``rank_ic``: the label horizon h the run was evaluated with, read from
  ``metrics.json`` (``models[key].detail[universe].conventions.horizon``: 1 for System A's
  monthly labels, 10 for System B's 10-day labels sampled daily); the larger of the two
  signals' when they differ; ``horizon`` (CLI ``--horizon``) overrides it, and 1 is used when
  neither is available.
- ``long_short``: 1. It is a per-period return of portfolios held between rebalances, not an
  overlapping h-period label. Its ``ann_diff`` uses the run's ``return_periods_per_year``
  (12 or 252).
- ``top_turnover``: 1, the top group's one-sided turnover at each rebalance (in the series when
  the signal is rebalanced every period, as System A's monthly groups are); ``ann_diff`` is the
  difference in turnover a year.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import ConfigError, DataError
from deepalpha.evaluate.paired import paired_difference

#: Metrics compared, in table order.
METRICS = ("rank_ic", "ic", "long_short", "top_turnover")
#: Metrics whose per-date value is an h-period label statistic (overlapping when h > 1).
LABEL_METRICS = ("ic", "rank_ic")

COLUMNS = ["universe", "key", "base", "metric", "mean", "mean_base", "mean_diff", "ann_diff",
           "win_rate", "t_nw", "nw_lags", "nw_kernel", "ci_low", "ci_high", "block", "n",
           "horizon"]  # fmt: skip


@dataclass(frozen=True)
class RunData:
    """One run directory: its name, ``metrics.json`` and ``series.parquet``."""

    name: str
    metrics: dict[str, Any]
    series: pl.DataFrame  # key, universe, date, metric, value


@dataclass(frozen=True)
class Signal:
    """One signal of one run and its display label (``key`` or ``RUN:KEY``)."""

    run: int
    key: str
    label: str


def load_run(run_dir: str | Path) -> RunData:
    """Read a finished run directory (``DataError`` when ``metrics.json`` or
    ``series.parquet`` is missing). Reads the files directly rather than through
    `deepalpha.workflows.results`, which imports torch."""
    d = Path(run_dir)
    f = d / "metrics.json"
    if not f.is_file():
        raise DataError("not a finished run directory (no metrics.json)", file=f)
    m = json.loads(f.read_text())
    f = d / "series.parquet"
    if not f.is_file():
        raise DataError("run directory has no per-date series", file=f)
    return RunData(d.resolve().name, m, pl.read_parquet(f))


def signals_of(runs: Sequence[RunData]) -> list[Signal]:
    """Every signal of every run in order; labelled ``RUN:KEY`` where the key repeats."""
    keys = [(i, k) for i, r in enumerate(runs) for k in r.series["key"].unique(maintain_order=True)]
    count: dict[str, int] = {}
    for _, k in keys:
        count[k] = count.get(k, 0) + 1
    return [Signal(i, k, k if count[k] == 1 else f"{runs[i].name}:{k}") for i, k in keys]


def resolve_base(runs: Sequence[RunData], base: str) -> Signal:
    """The signal named by ``base`` (``KEY`` or ``RUN:KEY``).

    Raises
    ------
    ConfigError
        Unknown key, or a key found in several runs without ``RUN:``; the message lists the
        known names.
    """
    sigs = signals_of(runs)
    known = ", ".join(s.label for s in sigs) or "(none)"
    run, sep, key = base.partition(":")
    if sep:
        hit = [s for s in sigs if runs[s.run].name == run and s.key == key]
        if hit:
            return hit[0]
    hit = [s for s in sigs if s.key == base or s.label == base]
    if len(hit) == 1:
        return hit[0]
    if len(hit) > 1:
        raise ConfigError(
            f"--paired key {base!r} is in several runs; name one as RUN:KEY: "
            + ", ".join(f"{runs[s.run].name}:{s.key}" for s in hit)
        )
    raise ConfigError(f"--paired: unknown signal key {base!r}; known keys: {known}")


def _conventions(run: RunData, key: str, universe: str) -> dict[str, Any]:
    rec = run.metrics.get("models", {}).get(key) or {}
    return ((rec.get("detail") or {}).get(universe) or {}).get("conventions") or {}


def label_horizon(run: RunData, key: str, universe: str) -> int | None:
    """Label horizon recorded in ``metrics.json`` for ``key`` on ``universe`` (None if absent)."""
    h = _conventions(run, key, universe).get("horizon")
    return None if h is None else int(h)


def return_periods(run: RunData, key: str, universe: str) -> float | None:
    """Return periods per year recorded for ``key`` on ``universe`` (None if absent)."""
    c = _conventions(run, key, universe)
    p = c.get("return_periods_per_year", c.get("periods_per_year"))
    return None if p is None else float(p)


def _series(run: RunData, key: str, universe: str, metric: str) -> pl.DataFrame:
    s = run.series
    return s.filter(
        (pl.col("key") == key) & (pl.col("universe") == universe) & (pl.col("metric") == metric)
    ).select("date", "value")


def aligned(a: pl.DataFrame, b: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Two (date, value) frames on the union of their dates, sorted -> ``(float64[T],
    float64[T])`` with NaN where a series has no value."""
    j = a.join(b, on="date", how="full", coalesce=True, suffix="_b").sort("date")
    nan = float("nan")
    return (
        j["value"].fill_null(nan).to_numpy().astype(np.float64),
        j["value_b"].fill_null(nan).to_numpy().astype(np.float64),
    )


def paired_frame(
    run_dirs: Sequence[str | Path],
    base: str,
    *,
    universe: str | None = None,
    metrics: Sequence[str] = METRICS,
    horizon: int | None = None,
    n_boot: int = 5000,
    seed: int = 0,
) -> pl.DataFrame:
    """Paired differences of every signal against ``base``, per universe and metric.

    Parameters
    ----------
    run_dirs : run directories (``metrics.json`` and ``series.parquet``)
    base : ``KEY`` or ``RUN:KEY`` (`resolve_base`)
    universe : only this universe (default: every universe of each signal with a base series)
    metrics : per-date metrics to compare
    horizon : label horizon for ``ic``/``rank_ic`` (default: from ``metrics.json``, else 1)
    n_boot, seed : bootstrap replicates and seed (`paired_difference`)

    Returns
    -------
    pl.DataFrame
        One row per (signal, universe, metric) in `COLUMNS`: ``key``/``base`` are the display
        labels, ``mean``/``mean_base`` the two means over the common dates, the rest as in
        `paired_difference`. Rows where either side has no series are left out.
    """
    if horizon is not None and horizon < 1:
        raise ConfigError(f"--horizon must be >= 1, got {horizon}")
    runs = [load_run(d) for d in run_dirs]
    b = resolve_base(runs, base)
    brun = runs[b.run]
    rows: list[dict[str, Any]] = []
    for s in signals_of(runs):
        if s == b:
            continue
        run = runs[s.run]
        us = run.series.filter(pl.col("key") == s.key)["universe"].unique(maintain_order=True)
        for u in [universe] if universe else [u for u in us if u != "-"]:
            for metric in metrics:
                x, y = _series(run, s.key, u, metric), _series(brun, b.key, u, metric)
                if x.height == 0 or y.height == 0:
                    continue
                ppy = None
                if metric in LABEL_METRICS:
                    hs = [label_horizon(run, s.key, u), label_horizon(brun, b.key, u)]
                    known = [h for h in hs if h is not None]
                    h = horizon if horizon is not None else max(known, default=1)
                else:
                    h = 1
                    ppy = return_periods(run, s.key, u) or return_periods(brun, b.key, u)
                r = paired_difference(
                    *aligned(x, y), horizon=h, periods_per_year=ppy, n_boot=n_boot, seed=seed
                )
                rows.append(
                    {
                        "universe": u,
                        "key": s.label,
                        "base": b.label,
                        "metric": metric,
                        "mean": r["mean_a"],
                        "mean_base": r["mean_b"],
                        **{k: r[k] for k in COLUMNS if k in r and k not in ("mean_a", "mean_b")},
                    }
                )
    schema = {c: pl.Float64 for c in COLUMNS}
    schema.update(
        universe=pl.Utf8, key=pl.Utf8, base=pl.Utf8, metric=pl.Utf8, nw_kernel=pl.Utf8,
        nw_lags=pl.Int64, block=pl.Int64, n=pl.Int64, horizon=pl.Int64,
    )  # fmt: skip
    for r in rows:  # NaN lags/block (too few dates) -> null in the integer columns
        for c in ("nw_lags", "block"):
            if isinstance(r[c], float) and not math.isfinite(r[c]):
                r[c] = None
    return pl.DataFrame(rows, schema=schema)


# ------------------------------------------------------------------------------ tables
#: Table columns: (frame column, header). ``{key}``/``{base}`` become the signals' labels.
TABLE = (
    ("metric", "metric"), ("mean", "{key}"), ("mean_base", "{base}"), ("mean_diff", "diff"),
    ("ann_diff", "ann. diff"), ("win_rate", "win"), ("t_nw", "t (HAC)"), ("ci", "95% CI"),
    ("n", "n"), ("horizon", "h"), ("nw_lags", "lags"),
)  # fmt: skip
NOTE = (
    "diff = signal − base per date, means over the dates both have; win = share of dates with "
    "diff > 0; t (HAC) = t of the mean diff, Newey-West (flat-top kernel when h > 1) with up to "
    "`lags` lags; 95% CI = moving-block bootstrap of the mean diff, blocks of max(h, ⌈n^(1/3)⌉) "
    "dates; h = label horizon; long_short is a per-period return, ann. diff = diff × periods "
    "a year."
)


def fmt_value(metric: str, col: str, v: Any) -> str:
    """One cell: IC figures with 4 decimals, returns in percent, t with 2 decimals."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if col in ("n", "horizon", "nw_lags", "block"):
        return str(int(v))
    if col == "win_rate":
        return f"{100 * v:.1f}%"
    if col == "t_nw":
        return f"{v:.2f}"
    if col == "ann_diff":
        return f"{100 * v:.2f}%"
    if metric in LABEL_METRICS:
        return f"{v:.4f}"
    return f"{100 * v:.3f}%"


def table_cells(row: dict[str, Any]) -> list[str]:
    """The cells of one frame row in `TABLE` order."""
    m = row["metric"]
    out = []
    for col, _ in TABLE:
        if col == "metric":
            out.append(m)
        elif col == "ci":
            lo, hi = fmt_value(m, "ci_low", row["ci_low"]), fmt_value(m, "ci_high", row["ci_high"])
            out.append("-" if lo == "-" else f"[{lo}, {hi}]")
        else:
            out.append(fmt_value(m, col, row[col]))
    return out


def groups(frame: pl.DataFrame) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """``(key, base, universe, rows)`` per table, in frame order."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in frame.iter_rows(named=True):
        out.setdefault((r["key"], r["base"], r["universe"]), []).append(r)
    return [(k, b, u, rows) for (k, b, u), rows in out.items()]


def headers(key: str, base: str) -> list[str]:
    return [h.format(key=key, base=base) for _, h in TABLE]


def rich_tables(frame: pl.DataFrame) -> list[Any]:
    """One rich Table per (signal, universe) (about 110 columns wide; narrower wraps)."""
    from rich import box
    from rich.table import Table

    tables = []
    for key, base, u, rows in groups(frame):
        t = Table(title=f"{key} vs {base} — {u}", title_justify="left", box=box.SIMPLE_HEAD)
        for i, h in enumerate(headers("signal", "base")):  # the names are in the title
            t.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*table_cells(r))
        tables.append(t)
    return tables


def markdown_tables(frame: pl.DataFrame) -> str:
    """Every (signal, universe) table as GitHub markdown, with a title line each."""
    parts = []
    for key, base, u, rows in groups(frame):
        lines = ["| " + " | ".join(headers(key, base)) + " |"]
        lines.append("|---|" + "---:|" * (len(TABLE) - 1))
        lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
        parts.append(f"{key} vs {base} — {u}\n\n" + "\n".join(lines))
    return "\n\n".join(parts)
