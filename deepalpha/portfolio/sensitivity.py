"""Cost sensitivity: the same portfolio re-costed at several slippage levels.

The optimiser has no cost term (`optimizer.optimize` trades off alpha, risk and a turnover
*limit*; costs never enter), so its targets do not depend on the slippage. The table therefore
re-runs the daily engine (`backtest.run_backtest`) on the **same target weights** with only
``slippage_bps`` changed. One approximation: the optimiser saw the drifted weights of the main
run, which differ slightly at another cost level (a little more or less cash), so its targets
would differ by that much; the trades of the re-run are re-derived from the same targets, so
they do reflect the changed cash. The row at the configured slippage is the main run itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from deepalpha.portfolio.backtest import BacktestResult
from deepalpha.portfolio.costs import SLIPPAGE_GRID, CostConfig

__all__ = ["COLUMNS", "cost_sensitivity"]

COLUMNS = (
    "slippage_bps",
    "excess_return",
    "information_ratio",
    "tracking_error",
    "annual_return",
    "cost_annual",
    "price_excess_return",
    "proxy_excess_return",
    "source",
)


def cost_sensitivity(
    main: BacktestResult,
    costs: CostConfig,
    rerun: Callable[[CostConfig], BacktestResult],
    summarise: Callable[[BacktestResult], dict[str, Any]],
    grid: Sequence[float] = SLIPPAGE_GRID,
) -> pl.DataFrame:
    """One row per slippage level (bps per side, sorted; the configured level is added when
    it is not in ``grid``).

    Parameters
    ----------
    main : BacktestResult
        The main run (its row is ``summarise(main)``, ``source = "main run"``).
    costs : CostConfig
        The main run's costs; other rows change only ``slippage_bps``.
    rerun : callable(CostConfig) -> BacktestResult
        The engine on the main run's targets with other costs.
    summarise : callable(BacktestResult) -> dict
        Metrics of a result over the backtest window (keys of `COLUMNS` that it has).

    Returns
    -------
    polars.DataFrame with `COLUMNS` (NaN where a benchmark is missing).
    """
    levels = sorted({float(x) for x in grid} | {float(costs.slippage_bps)})
    rows = []
    for s in levels:
        if s == costs.slippage_bps:
            m, src = summarise(main), "main run"
        else:
            m, src = summarise(rerun(costs.model_copy(update={"slippage_bps": s}))), "re-costed"
        row: dict[str, Any] = {"slippage_bps": s}
        for k in COLUMNS[1:-1]:
            row[k] = float(m.get(k, np.nan))
        row["source"] = src
        rows.append(row)
    return pl.DataFrame(
        rows, schema={k: (pl.Utf8 if k == "source" else pl.Float64) for k in COLUMNS}
    )
