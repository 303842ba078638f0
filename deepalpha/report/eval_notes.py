"""Notes under the evaluation tables of the HTML report: how the figures were computed.

Built from an `evaluate_signal` result's ``conventions`` dict (``metrics.json`` detail), so a run
written before a convention existed (no ``entry_filter`` / ``net`` keys) is described as it was
computed: tradable at t only, gross of costs, Newey-West t.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Under the headline tables: what the column abbreviations mean.
HEADLINE_NOTE = (
    "Green row: the best model by RankIC in the universe (oracle excluded). PureF = pure factor "
    "return (System A); L-S = long-short top minus bottom group; 'net' = after trading costs "
    "(each rebalance pays its one-sided turnover x (buy + sell rate) of the default cost "
    "schedule; long-short pays both legs), '-' where the run predates net figures; TO = "
    "one-sided turnover per rebalance; MDD = maximum drawdown."
)


def conventions_text(c: Mapping[str, Any]) -> str:
    """One paragraph stating how IC, t-stats, groups, entry filter and costs were computed."""
    h = c.get("horizon")
    t = "flat-top HAC t (covers the label overlap)" if (h or 1) > 1 else "Newey-West t"
    if "flat-top" not in str(c.get("t_nw", "flat-top")):  # runs written before the HAC rule
        t = "Newey-West (Bartlett) t"
    entry = c.get("entry_filter")
    if entry and not str(entry).startswith("none"):
        ent = (
            "stocks that cannot be traded at the entry close are dropped (IC: suspended, "
            "limit-up or limit-down; long groups: suspended or limit-up; the short leg: "
            "suspended or limit-down)"
        )
    else:
        ent = "stocks tradable at the signal date (no entry-day filter)"
    net = c.get("net")
    cost = (
        "net figures after costs"
        if net and not str(net).startswith("none")
        else "group returns gross of costs"
    )
    return (
        f"IC = Pearson, RankIC = Spearman per date; ICIR annualised with "
        f"√{c.get('periods_per_year', 0):g} signal dates per year; {t}; label horizon {h} "
        f"period(s); {c.get('n_groups')} groups, equal weight, rebalanced every "
        f"{c.get('rebalance_every')} period(s); returns annualised over "
        f"{c.get('return_periods_per_year', 0):g} periods a year (compounded); {ent}; {cost}."
    )
