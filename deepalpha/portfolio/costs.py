"""A-share trading costs.

Rates are fractions of traded value:

- commission ``0.025 %`` on each side (no minimum ticket: the backtest is scale-free),
- stamp duty on sells only: ``0.1 %`` before 2023-08-28, ``0.05 %`` from that day on,
- slippage: ``slippage_bps`` basis points on each side (a proxy for half-spread and impact),
  **10 bps by default**.

Why 10 bps a side: one tick (0.01 CNY) on a typical 10-20 CNY A-share is 5-10 bps, so crossing
half the spread costs about 3-5 bps, and a mid-sized index-enhancement product trading a few
percent of a CSI 500/1000 name's daily volume adds a few bps of impact. With commission and
stamp duty a round trip then costs ``2 x (2.5 + 10) + 10 = 35`` bps before 2023-08-28 and 30 bps
after, in line with the sell-side convention for A-share index-enhancement backtests of "3 ‰
two-sided trading cost, executed at the next day's average price" (e.g. Guotai Haitong's weekly
CSI 500 AI-enhanced portfolio report, 2025-09, https://data.djyanbao.com/detail/7989237.html;
fee breakdown without impact: https://www.qfqdesk.com/zh/blog/transaction-cost-slippage-limit-
modeling, institutional commission 2-3 bps, stamp 5 bps on sells since 2023-08). The backtest
reports the excess return at 0 / 5 / 10 / 20 bps (`SLIPPAGE_GRID`, see
`deepalpha.portfolio.sensitivity`), so a reader can see how much of the result rests on it.

So a buy of value ``b`` costs ``b·(commission + slippage)`` and a sell of value ``s`` costs
``s·(commission + slippage + stamp(date))``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SLIPPAGE_GRID", "CostConfig", "cost_rates", "trade_cost"]

SLIPPAGE_GRID = (0.0, 5.0, 10.0, 20.0)  # bps per side of the cost-sensitivity table


class CostConfig(BaseModel):
    """Cost schedule (fractions of traded value; ``slippage_bps`` in basis points)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    commission: float = Field(0.00025, ge=0, description="each side")
    stamp_duty_before: float = Field(0.001, ge=0, description="sells, before stamp_duty_switch")
    stamp_duty_after: float = Field(0.0005, ge=0, description="sells, from stamp_duty_switch on")
    stamp_duty_switch: dt.date = dt.date(2023, 8, 28)
    slippage_bps: float = Field(
        10.0, ge=0, description="each side, basis points (half-spread + impact, see module)"
    )


def cost_rates(
    dates: np.ndarray, config: CostConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-date cost rates.

    Parameters
    ----------
    dates : datetime64[D][T]
        Trade dates.

    Returns
    -------
    buy_rate, sell_rate : float64[T]
        Cost per unit of value bought / sold on each date.
    """
    cfg = config or CostConfig()
    d = np.asarray(dates, dtype="datetime64[D]")
    slip = cfg.slippage_bps * 1e-4
    stamp = np.where(
        d < np.datetime64(cfg.stamp_duty_switch, "D"), cfg.stamp_duty_before, cfg.stamp_duty_after
    )
    buy = np.full(d.shape, cfg.commission + slip)
    sell = cfg.commission + slip + stamp
    return buy.astype(np.float64), sell.astype(np.float64)


def trade_cost(
    buy_value: float, sell_value: float, date: object, config: CostConfig | None = None
) -> float:
    """Cost of buying ``buy_value`` and selling ``sell_value`` (same currency) on ``date``."""
    b, s = cost_rates(np.array([np.datetime64(date, "D")]), config)
    return float(buy_value * b[0] + sell_value * s[0])
