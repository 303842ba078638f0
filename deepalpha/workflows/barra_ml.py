"""System A: the (mHC-enhanced) Barra ML factor, monthly.

1. Monthly risk model (styles at month ends; next-month returns regressed on them).
2. Label = next-month residual return (`residual_labels(..., "month")`: enter at the close after
   the month end, exit at the close after the next month end).
3. Models (MLP, mHC-MLP, HC-MLP) learn label from the 15 style exposures on rolling windows
   (24/36/72 months by default), retrained on the configured schedule.
4. Per model: the windows' predictions are z-scored and combined (equal and trailing-IC weights),
   the composite is orthogonalised to the styles (``orthogonalize: styles_industries``: to the
   industry dummies too, an industry-neutral composite), and its pure factor return is the
   coefficient of the composite added to the risk model as a style column (unchanged by the
   choice, Frisch-Waugh-Lovell), regressed on the label's window: the raw return from the close
   after the month end to the close after the next month end (not month end to month end).
5. Evaluation: IC / RankIC / ICIR / NW t against the residual label, 10 groups on the raw
   next-month return (top, long-short, turnover, drawdown), the pure factor return's summary.

Timing: the monthly label of month end m is known one trading day after month end m+1, so the
rolling engine is told it is known at month end m+2 (``label_lag: 2``) -- a month of training data
is given up rather than risk a one-day look-ahead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.data.inputs import require_risk_inputs
from deepalpha.data.panel import Panel
from deepalpha.data.predictions import long_to_dense
from deepalpha.evaluate.performance import pure_factor_summary
from deepalpha.evaluate.summary import evaluate_signal
from deepalpha.progress import fraction_stage, resolve_reporter
from deepalpha.risk.factor_tools import (
    forward_returns,
    orthogonalize,
    pure_factor_return,
    residual_labels,
)
from deepalpha.risk.model import RiskConfig, RiskModel, build_risk_model
from deepalpha.signal.combine import combine
from deepalpha.train.rolling import run_rolling
from deepalpha.workflows.config import BarraMLConfig
from deepalpha.workflows.data import panel_industries, truth_signal
from deepalpha.workflows.decompgrn import entry_inputs
from deepalpha.workflows.results import SignalResult, model_params, predictions_by


def monthly_risk_model(
    cfg: BarraMLConfig, panel: Panel, path: Path, out: Path, progress: Any = None
) -> RiskModel:
    """Build (or reload from ``out``) the monthly risk model (``progress(stage, fraction)``: see
    `build_risk_model`)."""
    if (out / "meta.json").is_file():
        return RiskModel.load(out, mmap=False)
    rc = RiskConfig.preset(cfg.risk.preset, eigen_sims=cfg.risk.eigen_sims)
    model = build_risk_model(
        panel, panel_industries(path, panel), freq="monthly", config=rc, progress=progress
    )
    model.save(out)
    return model


def monthly_panel(panel: Panel, model: RiskModel, label: np.ndarray) -> Panel:
    """Month-end panel: style exposures + ``label`` + ``mktcap``; masks at month ends."""
    rows = np.searchsorted(panel.dates, model.dates)
    styles = np.moveaxis(np.asarray(model.styles, dtype=np.float32), 2, 0)
    data = np.concatenate(
        [styles, label[None].astype(np.float32), panel.field("mktcap")[rows][None]], axis=0
    )
    masks = {k: np.ascontiguousarray(m[rows]) for k, m in panel.masks.items()}
    fields = (*model.style_names, "label", "mktcap")
    return Panel(np.ascontiguousarray(data), model.dates, panel.assets, fields, masks)


def run_barra_ml(
    cfg: BarraMLConfig,
    run_dir: Path,
    data_path: Path,
    panel: Panel,
    *,
    progress: bool = True,
    reporter: Any = None,
) -> dict[str, Any]:
    """Run (or resume) System A under ``run_dir``; returns the results dict (see `results`).
    ``reporter``: see `deepalpha.progress` (default from ``progress``)."""
    require_risk_inputs(data_path, "System A (Barra risk model + ML)")
    rep = resolve_reporter(reporter, progress)
    with fraction_stage(rep, "risk model (monthly)") as cb:
        model = monthly_risk_model(cfg, panel, data_path, run_dir / "risk_monthly", progress=cb)
    rows = np.searchsorted(panel.dates, model.dates)
    label = residual_labels(model, panel, "month")
    fwd = forward_returns(panel, rows, "month")
    mpanel = monthly_panel(panel, model, label)
    ds = cfg.rolling.dataset.model_copy(
        update={"features": list(model.style_names), "label": "label", "cap_field": "mktcap"}
    )
    rcfg = cfg.rolling.model_copy(update={"dataset": ds})
    rolled = run_rolling(mpanel, rcfg, run_dir / "rolling", reporter=rep)
    preds = rolled.predictions

    tradable = mpanel.mask("tradable")
    universes = {u: mpanel.mask(u) & tradable for u in cfg.evaluate.universes}
    # entry at the close of the first trading day after the month end (daily row rows[k] + 1)
    entry, costs = entry_inputs(panel, cfg.evaluate.entry_filter, rows)
    t0 = 0 if cfg.evaluate.start is None else int(np.searchsorted(model.dates, cfg.evaluate.start))
    ev = {
        "label": label,
        "returns": fwd,
        "universes": universes,
        "t0": t0,
        "n_groups": cfg.evaluate.n_groups,
        "industries": cfg.orthogonalize == "styles_industries",
        "entry": entry,
        "costs": costs,
    }

    results: list[SignalResult] = []
    for spec in rcfg.models:
        sets = []
        for w in rcfg.windows:
            df = predictions_by(preds, spec.key, w)
            dense, _, _ = long_to_dense(df, model.dates, model.assets, strict=False)
            sets.append(dense)
        n_params = model_params(spec, len(model.style_names))
        first = min(int(np.argmax(np.isfinite(s).any(axis=1))) for s in sets)
        t_eval = max(t0, first)
        eq = combine(sets, "equal", mask=tradable)
        for variant in cfg.combine:
            if variant == "equal":
                comp = eq
            else:
                comp = combine(
                    sets, "ic", labels=label, horizon=1, lookback=cfg.ic_lookback, mask=tradable
                )
                # before the first IC is known the IC-weighted composite falls back to equal weights
                none = ~np.isfinite(comp).any(axis=1, keepdims=True)
                comp = np.where(none, eq, comp)
            results.append(
                _factor_result(f"{spec.key}/{variant}", comp, model, ev, t_eval, n_params)
            )

    oracle = truth_signal(data_path, "alpha_style", model.dates, model.assets)
    if oracle is not None:
        first = min(r.first_row for r in results) if results else t0
        results.append(_factor_result("oracle (truth)", oracle, model, ev, first, None))
    return {"system": "barra_ml", "results": results, "risk_r2": float(np.nanmean(model.r2))}


def _factor_result(
    key: str,
    composite: np.ndarray,
    model: RiskModel,
    ev: dict[str, Any],
    t_eval: int,
    n_params: int | None,
) -> SignalResult:
    """Orthogonalise a composite (to the styles, and the industries when ``ev["industries"]``),
    take its pure factor return and evaluate it from ``t_eval``."""
    orth = orthogonalize(composite, model, industries=ev["industries"])
    # traded over the label's window: enter at the close after the month end (ev['returns'])
    pfr = pure_factor_return(np.where(np.isfinite(orth), orth, np.nan), model, ev["returns"])
    sl = slice(t_eval, None)
    masks = {u: m[sl] for u, m in ev["universes"].items()}
    evaluation = evaluate_signal(
        orth[sl],
        ev["label"][sl],
        masks,
        ev["returns"][sl],
        horizon=1,
        periods_per_year=12,
        return_periods_per_year=12,
        n_groups=ev["n_groups"],
        decay_horizons=(1, 2, 3, 6),  # months
        entry=None if ev.get("entry") is None else tuple(m[sl] for m in ev["entry"]),
        costs=None if ev.get("costs") is None else tuple(c[sl] for c in ev["costs"]),
    )
    pf = pfr[sl]
    return SignalResult(
        key=key,
        dates=model.dates[sl],
        evaluation=evaluation,
        n_params=n_params,
        extra={
            "pure_factor": pure_factor_summary(pf[np.isfinite(pf)], 12),
            "pure_factor_returns": pf,
        },
        first_row=t_eval,
        signal=orth[sl],
        assets=model.assets,
    )
