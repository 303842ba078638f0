"""Read a finished run directory into plain data (numpy arrays, dicts, polars frames) for the
HTML report. Nothing here draws or formats; every optional part (risk model, training logs,
portfolios) is ``None`` / empty when the run did not produce it.

Run directory layout: see `deepalpha.workflows.results`. Optional parts read here:

- ``risk_monthly/`` and ``risk_daily/``: saved `deepalpha.risk.model.RiskModel`;
- ``rolling/jobs/<model>/w<window>/<retrain>/s<seed>/{metrics.json,train_log.jsonl}``;
- ``portfolio/<key>__<index>/{metrics.json,nav.parquet,yearly.parquet|yearly.csv,costs.csv}``
  and the risk views ``exposures.parquet``, ``attribution.parquet``, ``risk_yearly.csv``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import DataError
from deepalpha.workflows.results import load_metrics, universes_of

#: Oracle key written by the workflows on synthetic data (the planted signal, the yardstick).
ORACLE = "oracle (truth)"


@dataclass
class RiskView:
    """The parts of a saved risk model the report shows."""

    freq: str  # "monthly" | "daily"
    dates: np.ndarray  # datetime64[D][T]
    r2: np.ndarray  # float[T]
    style_names: list[str]
    style_returns: np.ndarray  # float[T, S] per-period style factor returns
    style_tstats: np.ndarray  # float[T, S] per-period regression t-values

    @property
    def periods_per_year(self) -> float:
        return 12.0 if self.freq == "monthly" else 252.0


@dataclass
class TrainingView:
    """Rolling-training jobs: one row per job, and per-epoch ``amax_gain`` curves if logged."""

    jobs: pl.DataFrame  # model, window, retrain, seed, best_epoch, best_valid_rank_ic, ...
    amax: dict[str, list[np.ndarray]] = field(default_factory=dict)  # model -> per-job curves
    log_keys: list[str] = field(default_factory=list)  # keys seen in train_log.jsonl


@dataclass
class PortfolioView:
    """One index-enhancement backtest of a signal (``portfolio/<key>__<index>/``)."""

    name: str
    key: str
    index: str
    metrics: dict[str, Any]
    info: dict[str, Any]
    nav: pl.DataFrame  # date, nav, bench_nav, excess_nav (maybe tr_nav, price_nav, proxy_nav...)
    yearly: pl.DataFrame | None
    costs: pl.DataFrame | None = None  # cost sensitivity (costs.csv), None in older runs
    # risk views (portfolio.risk_tracking): None in older runs
    exposures: pl.DataFrame | None = None  # exposures.parquet (long)
    attribution: pl.DataFrame | None = None  # attribution.parquet (wide, daily)
    risk_yearly: pl.DataFrame | None = None  # risk_yearly.csv


@dataclass
class RunData:
    """Everything the report needs from one run directory."""

    path: Path
    name: str
    system: str
    metrics: dict[str, Any]
    data: dict[str, Any]
    config_text: str
    log_text: str
    series: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]
    risk: list[RiskView]
    training: TrainingView | None
    portfolios: list[PortfolioView]
    problems: list[str] = field(default_factory=list)  # optional parts that could not be read

    @property
    def keys(self) -> list[str]:
        """Signal keys in metrics order, the oracle last."""
        ks = list(self.metrics.get("models", {}))
        return [k for k in ks if k != ORACLE] + [k for k in ks if k == ORACLE]

    @property
    def universes(self) -> list[str]:
        return universes_of(self.metrics)

    @property
    def periods_per_year(self) -> float:
        """Data periods per year of the per-period series (12 System A, 252 System B)."""
        return 12.0 if self.system == "barra_ml" else 252.0

    def get(self, key: str, universe: str, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(dates, values)`` of one series, or None when the run has none."""
        return self.series.get((key, universe, metric))

    def n_groups(self, key: str, universe: str) -> int:
        """Number of quantile groups with a return series."""
        g = 0
        while (key, universe, f"group_{g}") in self.series:
            g += 1
        return g

    def detail(self, key: str, universe: str) -> dict[str, Any]:
        return self.metrics["models"].get(key, {}).get("detail", {}).get(universe, {}) or {}


def read_series(path: Path) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    """``series.parquet`` as ``{(key, universe, metric): (dates, values)}``, sorted by date."""
    if not path.is_file():
        return {}
    df = pl.read_parquet(path)
    if df.height == 0:
        return {}
    out = {}
    for part in df.sort("date").partition_by(["key", "universe", "metric"], maintain_order=True):
        k = (part["key"][0], part["universe"][0], part["metric"][0])
        dates = part["date"].to_numpy().astype("datetime64[D]")
        out[k] = (dates, part["value"].to_numpy().astype(np.float64))
    return out


def read_risk(path: Path) -> RiskView | None:
    """The style part of a saved risk model, or None when ``path`` holds none."""
    if not (path / "meta.json").is_file():
        return None
    from deepalpha.risk.model import RiskModel

    m = RiskModel.load(path, mmap=True)
    names = list(m.factor_names)
    cols = [names.index(s) for s in m.style_names]
    r2 = np.asarray(m.r2, np.float64)
    t0 = int(np.argmax(np.isfinite(r2))) if np.isfinite(r2).any() else 0  # skip the warm-up
    return RiskView(
        freq=str(m.freq),
        dates=np.asarray(m.dates, "datetime64[D]")[t0:],
        r2=r2[t0:],
        style_names=list(m.style_names),
        style_returns=np.asarray(m.factor_returns, np.float64)[t0:, cols],
        style_tstats=np.asarray(m.tstats, np.float64)[t0:, cols],
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a truncated last line of a crashed job
    return out


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f if math.isfinite(f) else float("nan")


def read_training(rolling: Path) -> TrainingView | None:
    """Per-job metrics and ``amax_gain`` curves from ``rolling/jobs``; None without jobs."""
    jobs_dir = rolling / "jobs"
    rows: list[dict[str, Any]] = []
    amax: dict[str, list[np.ndarray]] = {}
    keys: list[str] = []
    for mfile in sorted(jobs_dir.glob("*/w*/*/s*/metrics.json")):
        job = mfile.parent
        model, window, retrain, seed = job.relative_to(jobs_dir).parts
        try:
            m = json.loads(mfile.read_text())
        except json.JSONDecodeError:
            continue
        hist = _read_jsonl(job / "train_log.jsonl")
        for rec in hist:
            keys += [k for k in rec if k not in keys]
        rows.append(
            {
                "model": model,
                "window": int(window[1:]) if window[1:].isdigit() else None,
                "retrain": retrain,
                "seed": seed[1:],
                "best_epoch": _num(m.get("best_epoch")),
                "epochs": _num(m.get("epochs", len(hist))),
                "best_valid_rank_ic": _num(m.get("best_valid_rank_ic")),
                "seconds": _num(m.get("seconds")),
                "n_params": _num(m.get("n_params")),
            }
        )
        gains = [_num(r.get("amax_gain")) for r in hist if "amax_gain" in r]
        if gains:
            amax.setdefault(model, []).append(np.asarray(gains, np.float64))
    if not rows:
        return None
    return TrainingView(jobs=pl.DataFrame(rows, infer_schema_length=None), amax=amax, log_keys=keys)


def read_yearly(folder: Path) -> pl.DataFrame | None:
    for name in ("yearly.parquet", "yearly.csv"):
        f = folder / name
        if f.is_file():
            return pl.read_parquet(f) if f.suffix == ".parquet" else pl.read_csv(f)
    return None


def read_portfolios(folder: Path) -> list[PortfolioView]:
    """Every ``portfolio/<key>__<index>/`` backtest with a ``nav.parquet``."""
    out = []
    if not folder.is_dir():
        return out
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not (d / "nav.parquet").is_file():
            continue
        meta: dict[str, Any] = {}
        if (d / "metrics.json").is_file():
            meta = json.loads((d / "metrics.json").read_text())
        # enhance.write_result nests {"metrics", "config", "info"}; accept a flat dict too
        metrics = meta.get("metrics", meta) if isinstance(meta.get("metrics"), dict) else meta
        key, _, index = d.name.rpartition("__")
        out.append(
            PortfolioView(
                name=d.name,
                key=key or d.name,
                index=index if key else "",
                metrics=metrics,
                info=meta.get("info", {}) if isinstance(meta.get("info"), dict) else {},
                nav=pl.read_parquet(d / "nav.parquet").sort("date"),
                yearly=read_yearly(d),
                costs=_read_costs(d, meta),
                exposures=_maybe(d / "exposures.parquet"),
                attribution=_maybe(d / "attribution.parquet"),
                risk_yearly=_maybe(d / "risk_yearly.csv"),
            )
        )
    return out


def _maybe(f: Path) -> pl.DataFrame | None:
    """A backtest's optional table (Parquet or CSV), None when absent."""
    if not f.is_file():
        return None
    return pl.read_parquet(f) if f.suffix == ".parquet" else pl.read_csv(f)


def _read_costs(d: Path, meta: dict[str, Any]) -> pl.DataFrame | None:
    """The cost-sensitivity table: ``costs.csv``, else ``metrics.json``'s rows, else None."""
    if (d / "costs.csv").is_file():
        return pl.read_csv(d / "costs.csv")
    rows = meta.get("cost_sensitivity")
    return pl.DataFrame(rows) if isinstance(rows, list) and rows else None


def _text(path: Path, limit: int = 200_000) -> str:
    return path.read_text(errors="replace")[:limit] if path.is_file() else ""


def load_run(run_dir: str | Path) -> RunData:
    """Read a finished run directory (raises `DataError` when there is no ``metrics.json``)."""
    p = Path(run_dir)
    metrics = load_metrics(p)
    if not isinstance(metrics.get("models"), dict):
        raise DataError("metrics.json has no 'models' table", file=p / "metrics.json")
    data = metrics.get("data") or {}
    if (p / "data.json").is_file():
        data = json.loads((p / "data.json").read_text())
    problems: list[str] = []

    def optional(what: str, fn: Callable[[], Any], default: Any) -> Any:
        try:
            return fn()
        except Exception as e:  # a damaged optional part must not cost the whole report
            problems.append(f"{what}: {type(e).__name__}: {e}")
            return default

    risk = [
        r
        for f in ("monthly", "daily")
        if (r := optional(f"risk_{f}/", lambda f=f: read_risk(p / f"risk_{f}"), None))
    ]
    return RunData(
        path=p,
        name=str(metrics.get("name") or p.name),
        system=str(metrics.get("system", "")),
        metrics=metrics,
        data=data,
        config_text=_text(p / "config.yaml"),
        log_text=_text(p / "run.log"),
        series=read_series(p / "series.parquet"),
        risk=risk,
        training=optional("rolling/jobs", lambda: read_training(p / "rolling"), None),
        portfolios=optional("portfolio/", lambda: read_portfolios(p / "portfolio"), []),
        problems=problems,
    )
