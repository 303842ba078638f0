"""One-call signal evaluation (IC, RankIC, decay, quantile groups) and a per-universe table.

Conventions (DESIGN section 6, repeated in every result under ``"conventions"``):

- IC = Pearson, RankIC = Spearman, per date, between ``signal[t]`` and ``label[t]`` over the
  stocks where ``mask[t]`` is true and both are finite.
- ICIR = mean/std of the per-date series (raw, per date) and ``× √periods_per_year``
  (annualised). ``periods_per_year`` is the number of *signal dates* per year the IC series is
  annualised with: 12 for monthly signals (System A), 252/h for daily signals with h-day labels
  (System B, non-overlapping convention) — the caller states it and it is echoed in the output.
- t-stat of the IC mean (key ``t_nw``): HAC, valid for h-period labels sampled every period
  (`deepalpha.evaluate.paired.hac_se`, the rule of ``compare --paired``): h = 1 Newey-West
  (Bartlett) with ``floor(4 (n/100)^(2/9))`` lags; h > 1 the flat-top kernel with
  ``M = max(h, floor(4 (n/100)^(2/9)) + 1)`` (weight 1 on every lag of the overlap). Null
  rejection at |t| > 1.96 with h = 10 (tests/test_eval_honest.py): about 5-6 % at n = 1,700 and
  8-9 % at n = 300, against 11-12 % and 13 % for the earlier Bartlett ``max(h − 1, ...)`` lags.
- Entry-day tradability (``entry = (can_buy, can_sell)``, `deepalpha.data.universe.entry_masks`:
  row t = tradable at the entry close, t+1 for System B): the IC / RankIC cross-section of date t
  drops stocks that cannot be traded either way at entry (suspended, limit-up or limit-down);
  groups are the quantiles of ``mask`` at t, then each (long) group drops the stocks it cannot
  buy (suspended or limit-up at entry) and the short leg of long-short (the bottom group) drops
  the stocks it cannot sell (suspended or limit-down). Past rows do not depend on it.
- Groups: quantiles of the signal among ``mask & finite(signal)`` (no label information), equal
  weight, rebalanced every ``rebalance_every`` dates with buy-and-hold drift in between; group
  returns are per data period and annualised with ``return_periods_per_year`` (252 for daily data,
  12 for monthly; default ``periods_per_year × horizon``). Long-short = top − bottom group (the
  bottom group as shorted: without the unsellable stocks when ``entry`` is given).
- Net returns (with ``costs = (buy_rate, sell_rate)``): each rebalance costs its one-sided
  turnover × (buy rate + sell rate) (the first purchase: the buy rate), deducted from the first
  period after it; long-short pays both legs. ``*_net`` beside the gross figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import ConfigError, DataError
from deepalpha.evaluate.groups import (
    group_mean,
    group_returns,
    group_turnover,
    long_short,
    quantile_groups,
    rebalance_costs,
)
from deepalpha.evaluate.ic import (
    forward_returns_many,
    ic,
    ic_summary,
    rank_ic_many,
)
from deepalpha.evaluate.performance import performance
from deepalpha.guards import MIN_IC_STOCKS, check_universe_size


def _nanmean_cols(x: np.ndarray) -> np.ndarray:
    """Column means over finite entries of ``x[T, K]``; NaN for a column with none."""
    f = np.isfinite(x)
    n = f.sum(axis=0)
    s = np.where(f, x, 0.0).sum(axis=0)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _evaluate_one(
    signal: np.ndarray,
    label: np.ndarray,
    mask: np.ndarray | None,
    returns_1d: np.ndarray | None,
    *,
    horizon: int,
    n_groups: int,
    periods_per_year: float,
    return_periods_per_year: float,
    rebalance_every: int,
    industry: np.ndarray | None,
    decay_horizons: Sequence[int],
    decay_labels: Sequence[np.ndarray],
    nw_lags: int | None,
    keep_series: bool,
    workers: int,
    entry: tuple[np.ndarray, np.ndarray] | None,
    costs: tuple[np.ndarray, np.ndarray] | None,
) -> dict[str, Any]:
    ic_mask = mask
    if entry is not None:  # IC: only stocks that can be traded either way at entry
        both = entry[0] & entry[1]
        ic_mask = both if mask is None else (np.asarray(mask, dtype=bool) & both)
    ics = ic(signal, label, ic_mask, workers=workers)
    # one call ranks the signal once for the label and every decay horizon
    many = rank_ic_many(signal, [label, *decay_labels], ic_mask, workers=workers)
    rics = many[0]
    out: dict[str, Any] = {
        "ic": ic_summary(ics, periods_per_year, nw_lags, horizon=horizon),
        "rank_ic": ic_summary(rics, periods_per_year, nw_lags, horizon=horizon),
    }
    # quantiles of the cross-section at t; then long groups keep what can be bought at entry,
    # the short leg (bottom group) what can be sold
    groups = quantile_groups(signal, mask, n_groups, industry, workers=workers)
    short = None
    if entry is not None:
        short = np.where(entry[1] & (groups == 0), 0, -1).astype(np.int8)
        groups = np.where(entry[0], groups, -1).astype(np.int8)
    out["groups"] = {"mean_label": _nanmean_cols(group_mean(groups, label, n_groups))}
    if keep_series:
        out["ic_series"] = ics
        out["rank_ic_series"] = rics
    if returns_1d is None:
        return out
    if decay_horizons:
        out["ic_decay"] = {
            int(h): float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")
            for h, r in zip(decay_horizons, many[1:], strict=True)
        }
    gr = group_returns(groups, returns_1d, rebalance_every, n_groups)
    to = group_turnover(groups, rebalance_every, n_groups, returns_1d)
    if short is None:
        sr, sto = gr[:, :1], to[:, :1]
    else:
        sr = group_returns(short, returns_1d, rebalance_every, 1)
        sto = group_turnover(short, rebalance_every, 1, returns_1d)
    ls = gr[:, -1] - sr[:, 0] if short is not None else long_short(gr)
    perf = [performance(gr[:, g], return_periods_per_year) for g in range(n_groups)]
    mean_to = _nanmean_cols(to)
    g_out = out["groups"]
    g_out.update(
        {
            "annual_return": np.array([p["annual_return"] for p in perf]),
            "performance": perf,
            "top": perf[-1],
            "bottom": perf[0],
            "short_leg": performance(sr[:, 0], return_periods_per_year),
            "long_short": performance(ls, return_periods_per_year),
            "turnover": mean_to,
            "top_turnover": float(mean_to[-1]),
            "short_turnover": float(_nanmean_cols(sto)[0]),
        }
    )
    if costs is not None:
        T = gr.shape[0]
        cost = rebalance_costs(to, costs[0], costs[1], T, rebalance_every)
        scost = rebalance_costs(sto, costs[0], costs[1], T, rebalance_every)[:, 0]
        net = gr - cost
        ls_net = ls - cost[:, -1] - scost  # both legs pay
        perf_net = [performance(net[:, g], return_periods_per_year) for g in range(n_groups)]
        g_out.update(
            {
                "annual_return_net": np.array([p["annual_return"] for p in perf_net]),
                "top_net": perf_net[-1],
                "long_short_net": performance(ls_net, return_periods_per_year),
            }
        )
        if keep_series:
            g_out["returns_net"] = net
            g_out["long_short_net_returns"] = ls_net
    if keep_series:
        g_out["returns"] = gr
        g_out["long_short_returns"] = ls
        g_out["turnover_series"] = to
    return out


def evaluate_signal(
    signal: np.ndarray,
    label: np.ndarray,
    mask: np.ndarray | Mapping[str, np.ndarray] | None,
    returns_1d: np.ndarray | None = None,
    *,
    horizon: int,
    periods_per_year: float,
    n_groups: int = 10,
    return_periods_per_year: float | None = None,
    rebalance_every: int | None = None,
    industry: np.ndarray | None = None,
    decay_horizons: Sequence[int] = (1, 5, 10, 20),
    nw_lags: int | None = None,
    keep_series: bool = True,
    workers: int = 1,
    entry: tuple[np.ndarray, np.ndarray] | None = None,
    costs: tuple[np.ndarray | float, np.ndarray | float] | None = None,
) -> dict[str, Any]:
    """Evaluate a signal: IC, RankIC, IC decay, quantile groups, turnover, net group returns.

    Parameters
    ----------
    signal, label : float[T, N]
        Score at t and its forward return (label[t] starts after t).
    mask : bool[T, N], or dict name -> bool[T, N], or None
        Universe & tradable. A dict evaluates each universe and returns ``{name: result}``.
    returns_1d : float[T, N], optional
        Label-aligned 1-period returns (``returns_1d[t]`` = first period's return of a position
        formed on date t). Needed for group returns, turnover with drift and IC decay.
    horizon : int
        Label horizon h in data periods (used for NW lags and the default rebalance interval).
    periods_per_year : float
        Signal dates per year for annualising ICIR (12 monthly; 252/h daily).
    n_groups : int
        5 or 10 typically.
    return_periods_per_year : float, optional
        Data periods per year of ``returns_1d`` (default ``periods_per_year × horizon``; a
        default above 260 raises `ConfigError`, pass it explicitly then).
    rebalance_every : int, optional
        Default ``horizon``.
    industry : int[T, N] or int[N], optional
        Industry codes for industry-neutral groups.
    decay_horizons : sequence of int
        Horizons for `ic_decay` (empty to skip).
    nw_lags : int, optional
        Force Newey-West (Bartlett) with this many lags for ``t_nw`` (default: the
        horizon-aware HAC rule of the module docstring).
    keep_series : bool
        Keep the per-date series (``ic_series``, group ``returns``...) in the result.
    workers : int
        Threads over blocks of dates for the IC and quantile steps (same result for any value).
    entry : (can_buy, can_sell), each bool[T, N], optional
        Whether row t's position can be bought / sold at its entry close
        (`deepalpha.data.universe.entry_masks`); see the module docstring for the rule.
        None: no entry-day filter (only ``mask`` at t).
    costs : (buy_rate, sell_rate), each float[T] or a scalar, optional
        Cost per unit of value bought / sold by row t's rebalance trade
        (`deepalpha.portfolio.costs.cost_rates` at the entry dates). Adds the net figures.

    Returns
    -------
    dict
        ``conventions``, ``ic``, ``rank_ic`` (each an `ic_summary` dict), ``ic_decay``,
        ``groups`` (``mean_label``, ``annual_return[G]``, ``performance``, ``top``, ``bottom``,
        ``short_leg`` (the bottom group as shorted), ``long_short``, ``turnover[G]``,
        ``top_turnover``, ``short_turnover``; with ``costs`` also ``annual_return_net[G]``,
        ``top_net``, ``long_short_net``), plus series when ``keep_series``.
    """
    signal = np.asarray(signal)
    label = np.asarray(label)
    if signal.ndim != 2 or label.shape != signal.shape:
        raise DataError(
            f"signal {list(signal.shape)} and label {list(label.shape)} must be the same [T, N]"
        )
    if returns_1d is not None and np.shape(returns_1d) != signal.shape:
        raise DataError(
            f"returns_1d shape {list(np.shape(returns_1d))} != {list(signal.shape)}",
            field="returns_1d",
        )
    if horizon < 1:
        raise DataError(f"horizon must be >= 1, got {horizon}")
    if entry is not None:
        if len(entry) != 2:
            raise DataError("entry must be a pair (can_buy, can_sell)", field="entry")
        entry = (np.asarray(entry[0], dtype=bool), np.asarray(entry[1], dtype=bool))
        for name, m in zip(("can_buy", "can_sell"), entry, strict=True):
            if m.shape != signal.shape:
                raise DataError(
                    f"entry {name} shape {list(m.shape)} != {list(signal.shape)}", field="entry"
                )
    if costs is not None:
        if len(costs) != 2:
            raise DataError("costs must be a pair (buy_rate, sell_rate)", field="costs")
        try:
            costs = tuple(
                np.broadcast_to(np.asarray(c, dtype=np.float64), signal.shape[:1]) for c in costs
            )
        except ValueError:
            raise DataError(
                f"cost rates must be scalars or [{signal.shape[0]}] per date", field="costs"
            ) from None
    rpy = (
        float(periods_per_year * horizon)
        if return_periods_per_year is None
        else float(return_periods_per_year)
    )
    if return_periods_per_year is None and rpy > 260:
        raise ConfigError(
            f"periods_per_year x horizon = {rpy:g} data periods a year is implausible; for daily "
            "signals with h-day labels pass periods_per_year=252/h (or return_periods_per_year=252)"
        )
    reb = int(horizon if rebalance_every is None else rebalance_every)
    conventions = {
        "ic": "Pearson per date",
        "rank_ic": "Spearman per date (average ranks)",
        "icir": "mean/std of the per-date series (raw)",
        "icir_annualised": f"icir x sqrt({periods_per_year:g}) signal dates per year",
        "t_nw": (
            "HAC t-stat of the mean IC: Newey-West (Bartlett) for horizon 1, flat-top kernel "
            "covering the h-1 overlap for horizon h > 1 (paired.hac_se)"
        ),
        "periods_per_year": float(periods_per_year),
        "return_periods_per_year": rpy,
        "horizon": int(horizon),
        "rebalance_every": reb,
        "n_groups": int(n_groups),
        "industry_neutral": industry is not None,
        "groups": "equal weight, buy-and-hold between rebalances, long-short = top - bottom",
        "annual_return": "compounded",
        "turnover": "one-sided, mean over rebalances",
        "entry_filter": (
            "IC: drop stocks suspended/limit-up/limit-down at entry; long groups: drop "
            "suspended/limit-up at entry; short leg: drop suspended/limit-down at entry"
            if entry is not None
            else "none (tradable at t only)"
        ),
        "net": (
            "cost per rebalance = one-sided turnover x (buy + sell rate); long-short pays both legs"
            if costs is not None
            else "none"
        ),
    }
    hs = tuple(int(h) for h in decay_horizons) if returns_1d is not None else ()
    kw = dict(
        horizon=int(horizon),
        n_groups=int(n_groups),
        periods_per_year=float(periods_per_year),
        return_periods_per_year=rpy,
        rebalance_every=reb,
        industry=industry,
        decay_horizons=hs,
        # h-period forward returns for the decay, built once for all universes
        decay_labels=forward_returns_many(returns_1d, hs) if hs else [],
        nw_lags=nw_lags,
        keep_series=keep_series,
        workers=int(workers),
        entry=entry,
        costs=costs,
    )
    usable = np.isfinite(signal) & np.isfinite(label)
    if signal.shape[0] == 0:
        raise DataError("no dates to evaluate (is the evaluation start after the last signal?)")
    if not np.isfinite(signal).any():
        raise DataError(
            "the signal has no finite value on any of the evaluated dates (a model that diverged, "
            "e.g. a too large learning rate, predicts NaN)",
            field="signal",
        )
    for name, m in mask.items() if isinstance(mask, Mapping) else [("(mask)", mask)]:
        if m is not None and np.shape(m) != signal.shape:
            continue  # the shape error is raised, with its name, where the mask is used
        v = usable if m is None else usable & np.asarray(m, dtype=bool)
        check_universe_size(v, name, need=MIN_IC_STOCKS, what="IC (finite signal and label)")
    if isinstance(mask, Mapping):
        res = {}
        for name, m in mask.items():
            r = _evaluate_one(signal, label, np.asarray(m, dtype=bool), returns_1d, **kw)
            r["conventions"] = {**conventions, "universe": name}
            res[name] = r
        return res
    out = _evaluate_one(signal, label, mask, returns_1d, **kw)
    out["conventions"] = conventions
    return out


#: Columns of the summary table: (key, header, path into the result dict).
SUMMARY_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ic", "IC", ("ic", "mean")),
    ("icir", "ICIR", ("ic", "icir")),
    ("rank_ic", "RankIC", ("rank_ic", "mean")),
    ("rank_icir", "RankICIR", ("rank_ic", "icir")),
    ("rank_icir_ann", "RankICIR ann.", ("rank_ic", "icir_annualised")),
    ("rank_ic_win", "RankIC>0", ("rank_ic", "win_rate")),
    ("rank_ic_t_nw", "t (NW)", ("rank_ic", "t_nw")),
    ("top_ann_return", "Top ann.ret", ("groups", "top", "annual_return")),
    ("top_ann_net", "Top ann.net", ("groups", "top_net", "annual_return")),
    ("top_sharpe", "Top Sharpe", ("groups", "top", "sharpe")),
    ("top_max_dd", "Top MDD", ("groups", "top", "max_drawdown")),
    ("ls_ann_return", "L-S ann.ret", ("groups", "long_short", "annual_return")),
    ("ls_ann_net", "L-S ann.net", ("groups", "long_short_net", "annual_return")),
    ("ls_vol", "L-S vol", ("groups", "long_short", "annual_vol")),
    ("ls_sharpe", "L-S Sharpe", ("groups", "long_short", "sharpe")),
    ("ls_max_dd", "L-S MDD", ("groups", "long_short", "max_drawdown")),
    ("top_turnover", "Top turnover", ("groups", "top_turnover")),
    ("n_dates", "dates", ("rank_ic", "n")),
)


def _get(d: Mapping[str, Any], path: tuple[str, ...]) -> float:
    cur: Any = d
    for k in path:
        if not isinstance(cur, Mapping) or k not in cur:
            return float("nan")
        cur = cur[k]
    try:
        return float(cur)
    except (TypeError, ValueError):
        return float("nan")


def summary_row(result: Mapping[str, Any]) -> dict[str, float]:
    """Flat ``{key: value}`` of the headline figures of one `evaluate_signal` result."""
    return {key: _get(result, path) for key, _, path in SUMMARY_COLUMNS}


def _as_universes(results: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    return {"all": results} if "rank_ic" in results else results


def summary_frame(results: Mapping[str, Any]) -> pl.DataFrame:
    """One row per universe (``universe`` column first) of the headline figures.

    ``results`` is `evaluate_signal`'s output: one result or ``{universe: result}``.
    """
    rows = [{"universe": u, **summary_row(r)} for u, r in _as_universes(results).items()]
    return pl.DataFrame(rows).with_columns(pl.col("n_dates").cast(pl.Int64, strict=False))


def _off(convention: Any) -> bool:
    """A ``conventions`` entry that is absent or ``"none..."``."""
    return convention is None or str(convention).startswith("none")


def format_summary(results: Mapping[str, Any], title: str | None = None) -> str:
    """Plain-text table (universes as rows) with the conventions line underneath."""
    univ = _as_universes(results)
    heads = ["universe"] + [h for _, h, _ in SUMMARY_COLUMNS]
    pct = {"top_ann_return", "top_ann_net", "top_max_dd", "ls_ann_return", "ls_ann_net", "ls_vol",
           "ls_max_dd", "rank_ic_win"}  # fmt: skip
    rows = []
    for u, r in univ.items():
        row = [u]
        for key, _, path in SUMMARY_COLUMNS:
            v = _get(r, path)
            if key == "n_dates":
                row.append("-" if not np.isfinite(v) else f"{int(v)}")
            elif not np.isfinite(v):
                row.append("-")
            elif key in pct or key == "top_turnover":
                row.append(f"{100 * v:.1f}%")
            else:
                row.append(f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
        rows.append(row)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)
    ]
    lines = [] if title is None else [title]
    lines.append("  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)))
    lines.extend("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    if univ:
        c = next(iter(univ.values())).get("conventions", {})
        if c:
            lines.append(
                f"IC Pearson / RankIC Spearman per date; ICIR annualised x sqrt({c['periods_per_year']:g}); "
                f"horizon {c['horizon']}, {c['n_groups']} groups"
                f"{' (industry-neutral)' if c['industry_neutral'] else ''}, rebalance every "
                f"{c['rebalance_every']}, returns annualised over {c['return_periods_per_year']:g} "
                "periods/yr (compounded); turnover one-sided; t (NW): "
                f"{'flat-top HAC' if c['horizon'] > 1 else 'Newey-West'}"
                f"{'' if _off(c.get('entry_filter')) else '; entry-day filter'}"
                f"{'' if _off(c.get('net')) else '; net = after costs'}"
            )
    return "\n".join(lines)
