"""System B: GRU, RNN-LIN, RNN-LIN-GLU and DecompGRN on daily price-volume sequences.

Features: Alpha360-style windows of open/high/low/close/VWAP-proxy/volume (T = 60 by default),
label: the 10-day forward return from the t+1 close, rank-normalised per date for training.
Models are retrained on the rolling schedule of the config (yearly by default; window 84 months
with the last 12 validating = 6 years train + 1 year valid). Evaluation per universe (point in
time, tradable at t and, with ``evaluate.entry_filter``, at the t+1 entry close: see
`entry_inputs`): IC, RankIC, RankICIR (raw and annualised with 252/h signal dates per year), IC
win rate, decile groups rebalanced every h days on daily returns, gross and net of the default
`CostConfig` costs, parameter counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.data.panel import Panel
from deepalpha.data.predictions import long_to_dense
from deepalpha.data.universe import entry_masks
from deepalpha.evaluate.summary import evaluate_signal
from deepalpha.features.labels import forward_return
from deepalpha.portfolio.costs import CostConfig, cost_rates
from deepalpha.progress import resolve_reporter
from deepalpha.train.rolling import run_rolling
from deepalpha.workflows.config import DecompGRNConfig
from deepalpha.workflows.data import truth_signal
from deepalpha.workflows.results import (
    SignalResult,
    member_key,
    model_params,
    predictions_by,
    seed_predictions,
    seeds_of,
)


def entry_inputs(
    panel: Panel, entry_filter: bool = True, rows: np.ndarray | None = None
) -> tuple[tuple[np.ndarray, np.ndarray] | None, tuple[np.ndarray, np.ndarray]]:
    """Entry-day tradability and cost rates of positions formed at the close of ``rows``.

    A position formed on daily row t's signal is entered at the close of row t+1 (System B; for
    System A's month-end row ``rows[k]``, the first trading day after the month end).

    Parameters
    ----------
    panel : daily Panel with masks ``suspended``, ``limit_up``, ``limit_down``, ``listed``
        (needed only when ``entry_filter``).
    entry_filter : bool
        False: no entry masks (``None``).
    rows : int[K], optional
        Signal rows in the daily panel (default: every row, K = T).

    Returns
    -------
    entry : (can_buy, can_sell) bool[K, N], or None
        `deepalpha.data.universe.entry_masks` with lag 1 on those rows (False on the last row).
    costs : (buy_rate, sell_rate) float64[K]
        `cost_rates` (default `CostConfig`) on the entry date (the last row: its own date).
    """
    T = len(panel.dates)
    rows = np.arange(T) if rows is None else np.asarray(rows, dtype=np.int64)
    entry_day = panel.dates[np.minimum(rows + 1, T - 1)]
    costs = cost_rates(entry_day, CostConfig())
    if not entry_filter:
        return None, costs
    can_buy, can_sell = entry_masks(
        panel.mask("suspended"),
        panel.mask("limit_up"),
        panel.mask("limit_down"),
        panel.mask("listed"),
        lag=1,
    )
    return (can_buy[rows], can_sell[rows]), costs


def run_decompgrn(
    cfg: DecompGRNConfig,
    run_dir: Path,
    data_path: Path,
    panel: Panel,
    *,
    progress: bool = True,
    reporter: Any = None,
) -> dict[str, Any]:
    """Run (or resume) System B under ``run_dir``; returns the results dict. ``reporter``: see
    `deepalpha.progress` (default from ``progress``)."""
    rep = resolve_reporter(reporter, progress)
    rolled = run_rolling(panel, cfg.rolling, run_dir / "rolling", reporter=rep)
    preds = rolled.predictions
    h = cfg.rolling.dataset.horizon
    price = panel.field(cfg.rolling.dataset.label_price)
    label = forward_return(price, h)
    ret1 = forward_return(price, 1)
    tradable = panel.mask("tradable")
    universes = {u: panel.mask(u) & tradable for u in cfg.evaluate.universes if u in panel.masks}
    entry, costs = entry_inputs(panel, cfg.evaluate.entry_filter)
    t0 = 0 if cfg.evaluate.start is None else int(np.searchsorted(panel.dates, cfg.evaluate.start))
    n_feat = len(cfg.rolling.dataset.fields)

    def evaluate(key: str, signal: np.ndarray, first: int, n_params: int | None) -> SignalResult:
        sl = slice(first, None)
        ev = evaluate_signal(
            signal[sl],
            label[sl],
            {u: m[sl] for u, m in universes.items()},
            ret1[sl],
            horizon=h,
            periods_per_year=252 / h,
            return_periods_per_year=252,
            n_groups=cfg.evaluate.n_groups,
            entry=None if entry is None else (entry[0][sl], entry[1][sl]),
            costs=(costs[0][sl], costs[1][sl]),
        )
        return SignalResult(
            key, panel.dates[sl], ev, n_params, first_row=first, signal=signal[sl],
            assets=panel.assets,
        )  # fmt: skip

    results = []
    for spec in cfg.rolling.models:
        dense, _, _ = long_to_dense(predictions_by(preds, spec.key), panel.dates, panel.assets)
        has = np.isfinite(dense).any(axis=1)
        first = max(t0, int(np.argmax(has)))
        n_params = model_params(spec, n_feat)
        ens = evaluate(spec.key, dense, first, n_params)
        results.append(ens)
        seeds = seeds_of(preds, spec.key)
        if len(seeds) < 2:
            continue
        # a seed ensemble: each seed's own signal too, on the ensemble's dates, so the run shows
        # what averaging adds and per-seed paired tests (`compare --paired`) can use them
        ens.extra["members"] = [member_key(spec.key, s) for s in seeds]
        for s in seeds:
            one = seed_predictions(preds, spec.key, s)
            d1, _, _ = long_to_dense(one, panel.dates, panel.assets)
            r = evaluate(member_key(spec.key, s), d1, first, n_params)
            r.extra.update({"member_of": spec.key, "seed": s})
            results.append(r)
    oracle = truth_signal(data_path, "alpha_pv", panel.dates, panel.assets)
    if oracle is not None and results:
        results.append(evaluate("oracle (truth)", oracle, min(r.first_row for r in results), None))
    return {"system": "decompgrn", "results": results}
