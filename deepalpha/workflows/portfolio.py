"""The index-enhancement stage of `deepalpha run` (the ``portfolio`` config section).

For each chosen signal of the run (``signals/<key>.parquet``) and each index, the TE-constrained
optimiser rebalances weekly (or monthly) and the A-share backtest runs on the same data, with a
daily risk model built once per run (``risk_daily/``). Outputs per (signal, index):
``portfolio/<key>__<index>/`` with ``nav.parquet``, ``rebalances.parquet``, ``yearly.csv``,
``costs.csv`` (cost sensitivity), ``weights.parquet`` and ``metrics.json``; the headline metrics
go into the run's metrics: excess against the total-return index (default primary), the price
index (``price_*``) and the member proxy (``proxy_*``), and the excess / IR at each slippage level
(``excess_return_slip<k>bps``). Outside-index candidates come from the data's point-in-time
``all`` universe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from deepalpha.config import Strict
from deepalpha.data.inputs import risk_inputs_missing
from deepalpha.data.predictions import read_predictions
from deepalpha.portfolio.enhance import BacktestConfig, backtest_predictions, write_result
from deepalpha.progress import NullReporter, fraction_stage, stage
from deepalpha.risk.model import RiskConfig, build_risk_model
from deepalpha.workflows.results import signal_file


class PortfolioSpec(Strict):
    """Index enhancement run after the models (off unless ``enabled``)."""

    enabled: bool = False
    models: list[str] | None = Field(
        None, description="signal keys to backtest (default: every model, not the oracle)"
    )
    indices: list[Literal["csi300", "csi500", "csi800", "csi1000"]] = Field(
        default_factory=lambda: ["csi300", "csi500", "csi1000"]
    )
    risk: Literal["model", "simple"] = Field(
        "model",
        description="model: a daily deepalpha risk model (the simple one when the data lacks "
        "its fundamentals or industries); simple: price-based model",
    )
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)


def daily_risk_model(
    panel: Any, data_path: Path, out: Path, preset: str = "responsive", progress: Any = None
) -> Path:
    """Build (once) the daily risk model the optimiser uses; returns its directory
    (``progress(stage, fraction)``: see `build_risk_model`)."""
    if not (out / "meta.json").is_file():
        from deepalpha.data.inputs import require_risk_inputs
        from deepalpha.workflows.data import panel_industries

        require_risk_inputs(data_path, "the daily risk model (portfolio.risk: model)")

        model = build_risk_model(
            panel,
            panel_industries(data_path, panel),
            freq="daily",
            config=RiskConfig.preset(preset),
            progress=progress,
        )
        model.save(out)
    return out


def run_portfolios(
    spec: PortfolioSpec,
    run_dir: Path,
    data_path: Path,
    panel: Any,
    keys: list[str],
    log: Any = None,
    reporter: Any = None,
) -> dict[str, dict[str, Any]]:
    """Backtest every (signal, index); returns ``{key: {index: metrics}}``. ``reporter``
    (`deepalpha.progress`) shows the risk model and backtest bars."""
    say = log or (lambda msg: None)
    rep = reporter if reporter is not None else NullReporter()
    risk_dir = None
    missing = risk_inputs_missing(data_path) if spec.risk == "model" else []
    if missing:  # e.g. a plain Qlib folder: no fundamentals or industries
        say(f"portfolio: no daily risk model ({'; '.join(missing)} missing): simple risk model")
    elif spec.risk == "model":
        say("portfolio: daily risk model")
        with fraction_stage(rep, "risk model (daily)") as cb:
            risk_dir = daily_risk_model(panel, data_path, run_dir / "risk_daily", progress=cb)
    out: dict[str, dict[str, Any]] = {}
    signals = spec.models or [k for k in keys if not k.startswith("oracle")]
    n = len(signals) * len(spec.indices)
    done = 0
    with stage(rep, "backtests", n):
        for key in signals:
            preds = read_predictions(run_dir / "signals" / f"{signal_file(key)}.parquet")
            for index in spec.indices:
                say(f"portfolio: {key} on {index}")
                cfg = spec.backtest.model_copy(update={"index": index})

                def bar(k: int, total: int, base: int = done, label: str = f"{key} on {index}"):
                    rep.stage_update("backtests", base + k / max(total, 1), label)

                res = backtest_predictions(preds, data_path, cfg, risk_dir=risk_dir, progress=bar)
                done += 1
                write_result(res, run_dir / "portfolio" / f"{signal_file(key)}__{index}")
                out.setdefault(key, {})[index] = {
                    **res.metrics,
                    "benchmark": res.info.get("benchmark"),
                    "risk_model": res.info.get("risk_model"),
                    "candidate_universe": res.info.get("candidate_universe"),
                }
    return out
