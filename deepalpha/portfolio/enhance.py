"""Index enhancement: scores -> optimiser at each rebalance -> daily backtest -> metrics.

Shapes: ``T`` panel dates, ``N`` panel assets, ``K`` risk factors, ``n`` candidates of a date.

Timing: scores stamped ``s`` are known at the close of ``s`` (the signal day); rebalances are the
last trading day of each week (``freq="weekly"``) or month (``"monthly"``) that has scores; the
optimiser uses only data known at ``s`` (exposures at ``s``, the latest covariance forecast dated
``<= s``, tradability on ``s``, the drifted weights at the close of ``s``) and the trade happens
at ``s + lag`` (default the next day's close; ``execution="vwap"``: that day's VWAP proxy).

Candidates at ``s``: index members with a price, every stock held, and the ``max_outside``
best-scored non-members with a price **inside the point-in-time universe** ``universe[s]`` when
one is given (`backtest_predictions` passes the data's ``all`` mask; without it any stock with a
price is a candidate, which on a folder selected by later index membership is look-ahead). The benchmark weights are the members' cap weights (the
data has no index weights, see `benchmark`). Names suspended or at a price limit on ``s`` are
untradable for the optimiser (kept at ``w_prev``); the engine then drops orders that meet a limit
or suspension on the execution day.

Rebalance dates need scores, a covariance forecast and an index of at least half its median
member count (membership files can be nearly empty before an index's start).

Benchmarks: excess is reported against the total-return index (price index + accrued member
dividend yield, the default ``benchmark="total_return"``: keys ``excess_return``,
``information_ratio``, ...), the price index (``price_*``) and the cap-weighted member proxy
(``proxy_*``); ``tr_*`` repeat the total-return figures. A cost-sensitivity table re-costs the
same targets at 0 / 5 / 10 / 20 bps slippage (`sensitivity`).

Missing risk data of a candidate: styles 0 (the cap-weighted mean), no industry (country only),
specific variance = the candidates' median.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from deepalpha.errors import ConfigError, DataError
from deepalpha.guards import check_members, finite_scores, load_risk_dir
from deepalpha.portfolio.alpha_alignment import AlignmentRisk, augment, residual_exposure
from deepalpha.portfolio.backtest import BENCHMARK_LABEL, BacktestResult, run_backtest
from deepalpha.portfolio.benchmark import cap_weights
from deepalpha.portfolio.bias_scaling import BiasScaling
from deepalpha.portfolio.costs import CostConfig
from deepalpha.portfolio.metrics import enhancement_metrics, yearly_table
from deepalpha.portfolio.optimizer import OptimizerConfig, optimize
from deepalpha.portfolio.risk_tracking import RiskTracking, track_risk, write_tracking
from deepalpha.portfolio.sensitivity import cost_sensitivity
from deepalpha.risk.decompose import design_row as design  # [country, industries, styles] exposures

__all__ = [
    "INDEX_CODES",
    "ArrayRisk",
    "BacktestConfig",
    "EnhancementResult",
    "ModelRisk",
    "RiskSource",
    "design",
    "factor_kinds",
    "rebalance_days",
    "run_enhancement",
]

MIN_WEIGHT = 1e-6  # target weights below this (tradable names) are set to 0

INDEX_CODES = {
    "csi300": "SH000300",
    "csi500": "SH000905",
    "csi800": "SH000906",
    "csi1000": "SH000852",
}


class BacktestConfig(BaseModel):
    """Index-enhancement backtest settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: Literal["csi300", "csi500", "csi800", "csi1000"] = "csi500"
    freq: Literal["weekly", "monthly"] = "weekly"
    execution: Literal["close", "vwap"] = "close"
    lag: int = Field(1, ge=1, description="days from signal to trade")
    start: dt.date | None = None
    end: dt.date | None = None
    max_outside: int = Field(300, ge=0, description="best-scored non-members as candidates")
    benchmark: Literal["total_return", "index", "proxy"] = Field(
        "total_return",
        description="primary benchmark: total_return (price index + accrued member dividend "
        "yield), index (price index, no dividends) or proxy (cap-weighted members, total return)",
    )
    alpha_alignment: bool = Field(
        False,
        description="price the signal's residual (the part the risk model's factors miss) as "
        "one extra factor with an estimated variance (portfolio.alpha_alignment)",
    )
    aaf_halflife: float = Field(84.0, gt=0, description="EWMA half-life (days) of its variance")
    risk_scaling: bool = Field(
        True,
        description="scale the optimiser's covariance by the strategy's own past forecast bias "
        "(EWMA of its past targets' squared standardised active returns; portfolio.bias_scaling)"
        " so that the TE limit holds on realised TE; False: the risk model's forecast as is",
    )
    risk_scaling_halflife: float = Field(63.0, gt=0, description="EWMA half-life (days)")
    optimizer: OptimizerConfig = OptimizerConfig()
    costs: CostConfig = CostConfig()


# ----------------------------------------------------------------------------- risk sources


class RiskSource(Protocol):
    """What the optimiser needs from a risk model on one date."""

    periods_per_year: float

    def first_date(self) -> np.datetime64:
        """First date with a covariance forecast."""
        ...

    def inputs(
        self, t: int, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(X float[n, K], F float[K, K], delta float[n], factor_kind int[K])`` for the panel
        assets ``idx`` at panel date index ``t``, using only information known at ``t``."""
        ...


def _fill(X: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.nan_to_num(X, nan=0.0)
    bad = ~np.isfinite(delta) | (delta <= 0)
    if bad.any():
        med = np.median(delta[~bad]) if (~bad).any() else 0.02**2
        delta = np.where(bad, med, delta)
    return X, delta


def factor_kinds(n_industries: int, n_styles: int) -> np.ndarray:
    """``int8[K]``: 0 country, 1 industries, 2 styles."""
    return np.r_[0, np.ones(n_industries), np.full(n_styles, 2)].astype(np.int8)


@dataclass
class ArrayRisk:
    """A factor risk model held as arrays on the panel's grid (same layout as the risk model's:
    factors [country, industries, styles]).

    Attributes
    ----------
    styles : float[T, N, S]
        Style exposures at each date (NaN = unknown -> 0).
    industry_ids : int[T, N] or int[N]
        Industry index in ``[0, n_industries)``, -1 for none.
    n_industries : int
    factor_cov : float[D, K, K]
        Factor covariance forecasts made at panel date indices ``cov_idx`` (increasing), in the
        units of ``periods_per_year``.
    specific_var : float[D, N]
    cov_idx : int[D]
    dates : datetime64[D][T]
    periods_per_year : float
    """

    styles: np.ndarray
    industry_ids: np.ndarray
    n_industries: int
    factor_cov: np.ndarray
    specific_var: np.ndarray
    cov_idx: np.ndarray
    dates: np.ndarray
    periods_per_year: float = 252.0

    def first_date(self) -> np.datetime64:
        return self.dates[int(self.cov_idx[0])]

    def inputs(self, t: int, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        d = int(np.searchsorted(self.cov_idx, t, side="right")) - 1
        if d < 0:
            raise DataError("no covariance forecast yet", date=self.dates[t])
        ind = self.industry_ids if self.industry_ids.ndim == 1 else self.industry_ids[t]
        X = design(self.styles[t][idx], ind[idx], self.n_industries)
        X, delta = _fill(X, np.asarray(self.specific_var[d][idx], np.float64))
        kind = factor_kinds(self.n_industries, self.styles.shape[2])
        return X, np.asarray(self.factor_cov[d], np.float64), delta, kind


class ModelRisk:
    """Adapter for `deepalpha.risk.model.RiskModel` (duck-typed: ``dates, assets, styles,
    industry_ids, n_industries, cov_dates, factor_cov, specific_var, periods_per_year``),
    aligned to a panel's dates and assets. Exposures come from the model row of the last model
    date ``<= t``, the covariance from the last covariance date ``<= t`` with a finite forecast
    (the first ones lack history)."""

    def __init__(self, model: Any, dates: np.ndarray, assets: np.ndarray) -> None:
        self.model = model
        self.periods_per_year = float(model.periods_per_year)
        mdates = np.asarray(model.dates, "datetime64[D]")
        self.dates = np.asarray(dates, "datetime64[D]")
        self.row = np.searchsorted(mdates, self.dates, side="right") - 1
        # covariance dates with a finite forecast (early ones lack history and are NaN)
        fc = np.asarray(model.factor_cov)
        ok = np.isfinite(fc.reshape(fc.shape[0], -1)).all(axis=1)
        if not ok.any():
            raise DataError("the risk model has no finite factor covariance")
        self.cov_rows = np.nonzero(ok)[0]
        self.cov_dates = np.asarray(model.cov_dates, "datetime64[D]")[self.cov_rows]
        pos = {a: i for i, a in enumerate(np.asarray(model.assets).astype(str).tolist())}
        self.col = np.array([pos.get(a, -1) for a in np.asarray(assets).astype(str)], np.int64)
        if (self.col < 0).all():
            raise DataError("the risk model shares no asset with the panel")
        self.P = int(model.n_industries)
        self.S = int(model.styles.shape[2])

    def first_date(self) -> np.datetime64:
        return self.cov_dates[0]

    def _design(self, row: int, idx: np.ndarray) -> np.ndarray:
        m = self.model
        cols = self.col[idx]
        ok = cols >= 0
        n = idx.shape[0]
        styles = np.full((n, self.S), np.nan)
        styles[ok] = np.asarray(m.styles[row], np.float64)[cols[ok]]
        ind = np.full(n, -1, np.int64)
        ind[ok] = np.asarray(m.industry_ids[row])[cols[ok]]
        return design(styles, ind, self.P)

    def inputs(self, t: int, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        m = self.model
        date = self.dates[t]
        j = int(np.searchsorted(self.cov_dates, date, side="right")) - 1
        row = int(self.row[t])
        if j < 0 or row < 0:
            raise DataError("the risk model has no forecast for this date", date=date)
        d = int(self.cov_rows[j])
        cols = self.col[idx]
        ok = cols >= 0
        delta = np.full(idx.shape[0], np.nan)
        delta[ok] = np.asarray(m.specific_var[d], np.float64)[cols[ok]]
        X, delta = _fill(self._design(row, idx), delta)
        F = np.asarray(m.factor_cov[d], np.float64)
        return X, F, delta, factor_kinds(self.P, self.S)

    def exposures(self, t: int, idx: np.ndarray) -> np.ndarray:
        """``float[n, K]`` exposures of panel assets ``idx`` at ``t`` (unknown styles 0)."""
        row = int(self.row[t])
        if row < 0:
            return np.full((idx.shape[0], 1 + self.P + self.S), np.nan)
        return np.nan_to_num(self._design(row, idx), nan=0.0)

    def specific(self, t: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(u float[n], w float[n])``: the model's specific returns of row ``t`` (``t -> t+1``)
        and its regression weights (√cap in the ESTU, else 0); NaN / 0 where the model lacks
        the asset or has no row dated exactly ``t``."""
        m = self.model
        n = idx.shape[0]
        u, w = np.full(n, np.nan), np.zeros(n)
        row = int(self.row[t])
        if row < 0 or np.datetime64(m.dates[row], "D") != self.dates[t]:
            return u, w
        cols = self.col[idx]
        ok = cols >= 0
        u[ok] = np.asarray(m.specific_returns[row], np.float64)[cols[ok]]
        w[ok] = np.asarray(m.weights[row], np.float64)[cols[ok]]
        return u, np.nan_to_num(w, nan=0.0)


# ----------------------------------------------------------------------------- driver


def rebalance_days(
    dates: np.ndarray, freq: str, has_signal: np.ndarray | None = None
) -> np.ndarray:
    """Signal days of the rebalances (int64[R]): in each calendar week (Monday..Sunday) or month,
    the last trading day with a signal (``has_signal`` bool[T], default every day). The data's
    last period counts only when it is complete (a later trading day would start a new period
    -- unknowable on the last date, so the last period is left out)."""
    d = np.asarray(dates, "datetime64[D]")
    if freq == "weekly":
        # numpy's day 0 (1970-01-01) is a Thursday: shift so weeks run Monday..Sunday
        period = (d.astype(np.int64) + 3) // 7
    elif freq == "monthly":
        period = d.astype("datetime64[M]").astype(np.int64)
    else:
        raise ConfigError(f"freq must be 'weekly' or 'monthly', got {freq!r}")
    ok = np.ones(d.shape, bool) if has_signal is None else np.asarray(has_signal, bool)
    idx = np.nonzero(ok & (period < period[-1]))[0] if d.size else np.zeros(0, np.int64)
    p = period[idx]
    last = np.r_[p[1:] != p[:-1], True] if idx.size else np.zeros(0, bool)
    return idx[last]


@dataclass
class EnhancementResult:
    """Backtest, per-rebalance optimiser records, summary metrics, the per-year table and the
    risk views against the member proxy (`risk_tracking`: exposures, attribution, ex-ante vs
    realised TE)."""

    backtest: BacktestResult
    records: pl.DataFrame
    metrics: dict[str, float]
    yearly: pl.DataFrame
    config: BacktestConfig
    info: dict[str, Any] = field(default_factory=dict)
    risk: RiskTracking | None = None


def run_enhancement(
    scores: np.ndarray,
    *,
    dates: np.ndarray,
    close: np.ndarray,
    mktcap: np.ndarray,
    members: np.ndarray,
    risk: RiskSource,
    config: BacktestConfig | None = None,
    suspended: np.ndarray | None = None,
    limit_up: np.ndarray | None = None,
    limit_down: np.ndarray | None = None,
    vwap: np.ndarray | None = None,
    index_close: np.ndarray | None = None,
    dv_ratio: np.ndarray | None = None,
    universe: np.ndarray | None = None,
    progress: Any = None,
) -> EnhancementResult:
    """Run an index-enhancement backtest on arrays.

    Parameters
    ----------
    scores : float[T, N]
        Signal known at each date's close (NaN = no score).
    dates : datetime64[D][T]
    close : float[T, N]
        Back-adjusted close.
    mktcap : float[T, N]
        Market cap for the benchmark weights.
    members : bool[T, N]
        Point-in-time index membership.
    risk : RiskSource
        `ModelRisk` (our risk model) or `ArrayRisk`.
    config : BacktestConfig
    suspended, limit_up, limit_down : bool[T, N], optional
    vwap : float[T, N], optional
        Needed for ``execution="vwap"``.
    index_close : float[T], optional
        The real (price) index; needed for the total-return and price-index benchmarks.
    dv_ratio : float[T, N], optional
        Trailing dividend yield in % as of the latest period end ``<= t`` (total-return
        benchmark). Without it (or ``index_close``) the total-return benchmark falls back to the
        member proxy; ``result.info["benchmark_fallback"]`` says so.
    universe : bool[T, N], optional
        Point-in-time universe: outside-index candidates at ``s`` must be in ``universe[s]``
        (stocks held stay candidates). None: any stock with a price (not point in time).
    progress : callable(done, total), optional
    """
    cfg = config or BacktestConfig()
    dates = np.asarray(dates, "datetime64[D]")
    close = np.asarray(close)
    T, N = close.shape
    scores = np.asarray(scores, np.float64)
    if scores.shape != (T, N):
        raise DataError(f"scores {scores.shape} must be [T={T}, N={N}]", field="scores")
    if np.isinf(scores).any():
        t = int(np.nonzero(np.isinf(scores).any(axis=1))[0][0])
        raise DataError(
            f"{int(np.isinf(scores).sum())} infinite score(s) (NaN = no score is fine)",
            field="scores",
            date=dates[t],
        )
    members = np.asarray(members, bool)
    zeros = np.zeros((T, N), bool)
    susp = zeros if suspended is None else np.asarray(suspended, bool)
    up = zeros if limit_up is None else np.asarray(limit_up, bool)
    dn = zeros if limit_down is None else np.asarray(limit_down, bool)
    if cfg.execution == "vwap" and vwap is None:
        raise ConfigError("execution='vwap' needs the vwap field")
    if universe is not None:
        universe = np.asarray(universe, bool)
        if universe.shape != (T, N):
            raise DataError(f"universe {universe.shape} must be [T={T}, N={N}]", field="universe")

    has_px = np.isfinite(close) & (close > 0)
    has_signal = np.isfinite(scores).any(axis=1)
    ok = has_signal & (dates >= np.datetime64(risk.first_date(), "D"))
    # membership files can be nearly empty before an index's real start (csi1000 lists 2
    # members until 2015-05): rebalance only where the index has at least half its usual size
    n_mem = (members & has_px).sum(axis=1)
    if (n_mem > 0).any():
        ok &= n_mem >= 0.5 * np.median(n_mem[n_mem > 0])
    if cfg.start is not None:
        ok &= dates >= np.datetime64(cfg.start, "D")
    if cfg.end is not None:
        ok &= dates <= np.datetime64(cfg.end, "D")
    sig = rebalance_days(dates, cfg.freq, ok)
    if sig.size == 0:
        raise DataError(
            "no rebalance date: no scores inside the window after the risk model's first "
            f"forecast ({risk.first_date()})"
        )
    check_members(n_mem, dates, sig, cfg.index)
    end_idx = (
        T - 1
        if cfg.end is None
        else int(np.searchsorted(dates, np.datetime64(cfg.end, "D"), "right")) - 1
    )

    bench_w = cap_weights(np.where(has_px, mktcap, np.nan), members & has_px)
    records: list[dict[str, Any]] = []
    ocfg = cfg.optimizer
    if abs(ocfg.periods_per_year - risk.periods_per_year) > 1e-9:
        ocfg = ocfg.model_copy(update={"periods_per_year": risk.periods_per_year})

    aaf = _alignment(scores, risk, cfg)
    scaler = BiasScaling(close, cfg.risk_scaling_halflife) if cfg.risk_scaling else None

    def policy(r: int, s: int, w_now: np.ndarray) -> np.ndarray:
        mem = members[s] & has_px[s]
        sc = scores[s]
        out = ~members[s] & has_px[s] & np.isfinite(sc)
        if universe is not None:
            out &= universe[s]
        out_idx = np.nonzero(out)[0]
        if cfg.max_outside < out_idx.size:
            top = np.argpartition(-sc[out_idx], cfg.max_outside)[: cfg.max_outside]
            out_idx = out_idx[top]
        cand_mask = mem | (w_now > MIN_WEIGHT)
        cand_mask[out_idx] = True
        idx = np.nonzero(cand_mask)[0]
        X, F, delta, kind = risk.inputs(s, idx)
        aaf_var = aaf.variance(s) if aaf is not None else float("nan")
        if np.isfinite(aaf_var):
            X, F, kind = augment(X, F, kind, residual_exposure(sc[idx], X), aaf_var)
        lam2 = scaler.scale(s) if scaler is not None else 1.0
        F, delta = F * lam2, delta * lam2
        tradable = ~(susp[s] | up[s] | dn[s]) & has_px[s]
        wb = bench_w[s][idx]
        res = optimize(
            sc[idx],
            wb,
            w_now[idx],
            X,
            F,
            delta,
            tradable[idx],
            mem[idx],
            ocfg,
            factor_kind=kind,
        )
        if scaler is not None:
            raw = res.ex_ante_te / np.sqrt(ocfg.periods_per_year * lam2)  # daily, unscaled
            scaler.record(s, idx, res.weights - wb, raw)
        target = np.zeros(N)
        target[idx] = res.weights
        # interior-point dust (~1e-9) would otherwise be traded and kept as candidates forever
        dust = (target < MIN_WEIGHT) & tradable
        target[dust] = 0.0
        tot = target.sum()
        if tot > 1.0:
            target /= tot
        records.append(
            {
                "date": dates[s],
                "n_candidates": int(idx.size),
                "n_members": int(mem.sum()),
                "status": res.status,
                "relaxed": "; ".join(res.relaxed),
                "ex_ante_te": res.ex_ante_te,
                "te_limit": res.te_limit,
                "target_turnover": res.turnover,
                "index_share": float(res.weights[mem[idx]].sum()),
                "n_holdings": int((res.weights > 1e-6).sum()),
                "solve_time": res.solve_time,
                "attempts": res.attempts,
                **({"risk_scale": float(np.sqrt(lam2))} if scaler is not None else {}),
                **(
                    {
                        "aaf_vol": float(np.sqrt(aaf_var * ocfg.periods_per_year)),
                        "aaf_active_exposure": float(
                            X[:, -1] @ (res.weights - wb) if np.isfinite(aaf_var) else np.nan
                        ),
                    }
                    if aaf is not None
                    else {}
                ),
            }
        )
        if progress is not None:
            progress(r + 1, sig.size)
        return target

    def engine(targets: Any, costs: CostConfig) -> BacktestResult:
        return run_backtest(
            targets,
            sig,
            close,
            dates,
            limit_up=up,
            limit_down=dn,
            suspended=susp,
            index_close=index_close,
            bench_weights=bench_w,
            exec_price=vwap if cfg.execution == "vwap" else None,
            costs=costs,
            lag=cfg.lag,
            dv_ratio=dv_ratio,
            benchmark=cfg.benchmark,
        )

    res = engine(policy, cfg.costs)
    rec = pl.DataFrame(
        [{**x, "date": x["date"].astype(object)} for x in records], infer_schema_length=None
    )
    executed = res.exec_idx >= 0  # the policy ran (and made a record) exactly for these
    rec = rec.with_columns(
        pl.Series("exec_date", dates[res.exec_idx[executed]]),
        pl.Series("turnover", res.turnover[executed]),
        pl.Series("blocked", res.blocked[executed]),
    )
    t0, t1 = int(sig[0]), end_idx
    win = slice(t0, t1 + 1)
    exec_in = executed & (res.exec_idx <= t1)
    tv = res.turnover.copy()
    tv[0] = np.nan  # the initial build (cash -> portfolio) is not turnover
    ex_ante = np.full(tv.shape, np.nan)
    ex_ante[executed] = rec["ex_ante_te"].to_numpy()
    kw = dict(
        costs=res.costs[win],
        turnover=tv[exec_in],
        ex_ante_te=ex_ante[exec_in],
        periods_per_year=252.0,
    )
    metrics = window_metrics(res, win, **kw)
    metrics["relaxed_share"] = float((rec["status"] != "optimal").mean())
    metrics["mean_solve_time"] = float(rec["solve_time"].mean())
    yearly = yearly_table(
        res.nav[win],
        res.bench_nav[win],
        dates[win],
        rebalance_dates=dates[res.exec_idx[exec_in]],
        **kw,
    )
    for name, prefix in BENCH_PREFIX.items():
        other = _bench_nav(res, name)
        if other is None:
            continue
        yo = yearly_table(res.nav[win], other[win], dates[win])
        yearly = yearly.with_columns(
            yo["excess_period_return"].alias(f"{prefix}excess_period_return"),
            yo["information_ratio"].alias(f"{prefix}information_ratio"),
        )
    fixed = np.nan_to_num(res.targets.astype(np.float64), nan=0.0)
    tot = fixed.sum(axis=1, keepdims=True)  # float32 storage can round a full row above 1
    fixed = np.where(tot > 1.0, fixed / np.maximum(tot, 1e-300), fixed)
    sens = cost_sensitivity(
        res,
        cfg.costs,
        lambda c: engine(fixed, c),
        lambda b: window_metrics(b, win, costs=b.costs[win]),
    )
    for row in sens.iter_rows(named=True):
        b = f"{row['slippage_bps']:g}bps"
        metrics[f"excess_return_slip{b}"] = row["excess_return"]
        metrics[f"information_ratio_slip{b}"] = row["information_ratio"]
    tracking = track_risk(
        res, bench_w, risk, t0, t1, close,
        rebalance_dates=rec["date"].to_numpy().astype("datetime64[D]"),
        rebalance_te=rec["ex_ante_te"].to_numpy(),
    )  # fmt: skip
    for k in TRACKING_KEYS:
        if k in tracking.summary:
            metrics[k] = tracking.summary[k]
    yearly = yearly.join(
        tracking.yearly.select(
            ["year", *[k for k in TRACKING_KEYS if k in tracking.yearly.columns]]
        ),
        on="year",
        how="left",
    )
    used = res.info.get("benchmark_used")
    res.info["records"] = rec
    return EnhancementResult(
        backtest=res,
        records=rec,
        metrics=metrics,
        yearly=yearly,
        config=cfg,
        risk=tracking,
        info={
            "window": (dates[t0], dates[t1]),
            "benchmark_weights": "cap-weighted members (no index weights in data)",
            "benchmark_used": used,
            "benchmark": BENCHMARK_LABEL.get(used, "none") if used else "none",
            **(
                {"benchmark_fallback": res.info["benchmark_fallback"]}
                if "benchmark_fallback" in res.info
                else {}
            ),
            "candidate_universe": "point-in-time universe mask"
            if universe is not None
            else "any stock with a price (not point in time)",
            "universe_point_in_time": universe is not None,
            "cost_sensitivity": sens,
        },
    )


def _alignment(scores: np.ndarray, risk: Any, cfg: BacktestConfig) -> AlignmentRisk | None:
    """The AAF's variance forecast when ``cfg.alpha_alignment`` (needs a risk source with
    ``exposures`` and ``specific``: our risk model)."""
    if not cfg.alpha_alignment:
        return None
    if not (hasattr(risk, "exposures") and hasattr(risk, "specific")):
        raise ConfigError(
            "alpha_alignment needs a risk model with specific returns: pass --risk RISK_DIR "
            "(a `deepalpha risk build` output)"
        )
    return AlignmentRisk(scores, risk.exposures, risk.specific, halflife=cfg.aaf_halflife)


BENCH_PREFIX = {"total_return": "tr_", "index": "price_", "proxy": "proxy_"}
TRACKING_KEYS = (
    "proxy_realised_te",
    "ex_ante_te_held",
    "te_ratio",
    "te_ratio_held",
    "bias_stat",
)
"""Ex-ante vs realised TE against the member proxy (`risk_tracking`), in metrics and yearly."""
BENCH_KEYS = (
    "excess_return",
    "tracking_error",
    "information_ratio",
    "excess_max_drawdown",
    "bench_annual_return",
    "monthly_win_rate",
)


def _bench_nav(res: BacktestResult, name: str) -> np.ndarray | None:
    return {"total_return": res.tr_nav, "index": res.price_nav, "proxy": res.proxy_nav}[name]


def window_metrics(res: BacktestResult, win: slice, **kw: Any) -> dict[str, float]:
    """`enhancement_metrics` over ``win`` against the primary benchmark (unprefixed keys) plus
    `BENCH_KEYS` against every benchmark the result has, prefixed ``tr_`` (total-return
    index), ``price_`` (price index) and ``proxy_`` (cap-weighted member proxy)."""
    dates = res.dates[win]
    m = enhancement_metrics(res.nav[win], res.bench_nav[win], dates, **kw)
    for name, prefix in BENCH_PREFIX.items():
        other = _bench_nav(res, name)
        if other is None:
            continue
        mo = enhancement_metrics(res.nav[win], other[win], dates)
        m.update({f"{prefix}{k}": mo[k] for k in BENCH_KEYS if k in mo})
    return m


# ----------------------------------------------------------------------------- I/O edge

CAVEATS = (
    "benchmark: the primary excess (excess_return, information_ratio) is against a total-return "
    "index = the price index + its members' trailing dividend yield (dv_ratio) accrued daily; "
    "real dividends arrive in lumps (mostly June-July), so inside a year the accrual runs up to "
    "~1 % (CSI 300) ahead of / behind the dividends, and over a year it misses them by 0.1-0.2 % "
    "on average (see portfolio/DIVIDENDS.md); price_* is against the price index (flatters the "
    "portfolio by the dividend yield), proxy_* against the cap-weighted member proxy",
    "benchmark weights are a proxy: index members weighted by total market cap (the data has no "
    "index weights, no free-float caps)",
    "costs: commission 2.5 bps a side, stamp duty on sells, slippage (default 10 bps a side); "
    "the cost-sensitivity table re-costs the same targets at other slippage levels (the "
    "optimiser has no cost term)",
    "survivorship bias: delisted stocks are absent from prices, so index members without prices "
    "are left out of the proxy and the candidates",
    "a signal at t's close trades at t+1 (close or VWAP proxy = typical price (H+L+C)/3)",
)


def _industry_ids_for(path: Any, assets: np.ndarray) -> np.ndarray:
    """SW2021-like industry ids ``int16[N]`` for the CN layout's stock list (-1 unknown)."""
    from deepalpha.data.stockinfo import load_stock_info
    from deepalpha.risk.industries import industry_ids, map_industries

    try:
        info = load_stock_info(path)
    except DataError as e:  # no industry table (a plain Qlib folder): one group for all
        if "missing industry files" not in str(e):
            raise
        return np.zeros(len(assets), dtype=np.int16)
    df = pl.DataFrame({"asset": np.asarray(assets).astype(str)}).join(info, on="asset", how="left")
    names, csrc = df["industry"].to_list(), df["csrc"].to_list()
    try:
        groups = map_industries(names, csrc)
    except DataError:  # map one by one, unknown names -> none
        groups = np.empty(len(names), dtype=object)
        for i, (n, c) in enumerate(zip(names, csrc, strict=True)):
            try:
                groups[i] = map_industries([n], [c])[0]
            except DataError:
                groups[i] = None
    ids, _ = industry_ids(groups)
    return ids


def backtest_predictions(
    predictions: pl.DataFrame,
    data: Any,
    config: BacktestConfig | None = None,
    *,
    risk_dir: Any = None,
    progress: Any = None,
    log: Any = None,
) -> EnhancementResult:
    """Index-enhancement backtest of a long ``date, asset, score`` frame on the CN layout at
    ``data`` (real or synthetic).

    Risk model: `deepalpha.risk.model.RiskModel.load(risk_dir)` when given, else the simple
    price-based model of `simple_risk` (fitted on the loaded window; said in ``info``).
    The panel is loaded from ~18 months before the first prediction (history for the risk model)
    to ``config.end`` or 35 days after the last prediction.
    """
    from deepalpha.data.cn import load_cn, load_indices
    from deepalpha.data.predictions import long_to_dense

    cfg = config or BacktestConfig()
    say = log or (lambda msg: None)
    if predictions.height == 0:
        raise DataError("the prediction file is empty")
    predictions, _ = finite_scores(predictions)  # the CLI drops non-finite rows on request
    d0 = np.datetime64(predictions["date"].min(), "D")
    d1 = np.datetime64(predictions["date"].max(), "D")
    if cfg.start is not None:
        d0 = max(d0, np.datetime64(cfg.start, "D"))
    end = np.datetime64(cfg.end, "D") if cfg.end is not None else d1 + np.timedelta64(35, "D")
    from deepalpha.data.inputs import has_market_cap

    # without market cap (a plain Qlib folder), benchmark weights and Size use the size proxy
    cap_field = "mktcap" if has_market_cap(data) else "size_proxy"
    fields = ["close", cap_field, "dv_ratio"] + (["vwap"] if cfg.execution == "vwap" else [])
    say(f"loading {data} {d0 - np.timedelta64(550, 'D')}..{end} ({', '.join(fields)})")
    try:
        panel = load_cn(data, fields=fields, start=d0 - np.timedelta64(550, "D"), end=end)
    except DataError as e:  # no dv_ratio file: load without it, no total-return benchmark
        say(f"no dv_ratio ({e}): the total-return benchmark is not available")
        fields.remove("dv_ratio")
        panel = load_cn(data, fields=fields, start=d0 - np.timedelta64(550, "D"), end=end)
    dv_ratio = panel.field("dv_ratio") if "dv_ratio" in panel.fields else None
    if dv_ratio is not None and not np.isfinite(dv_ratio).any():
        say("dv_ratio is empty in this window: the total-return benchmark is not available")
        dv_ratio = None
    if cfg.index not in panel.masks:
        raise DataError(f"the data has no membership for {cfg.index}", file=data)
    members = panel.mask(cfg.index) & np.isfinite(panel.field("close"))
    if not members[panel.dates >= d0].any():
        from pathlib import Path

        from deepalpha.data.cn import UNIVERSE_FILES

        raise DataError(
            f"{cfg.index} has no members with a price from {d0} on: the benchmark is empty",
            file=Path(data) / "index_membership" / UNIVERSE_FILES.get(cfg.index, cfg.index),
        )
    scores, _, _ = long_to_dense(predictions, panel.dates, panel.assets, strict=False)
    if not np.isfinite(scores).any():
        raise DataError("no prediction matches the data's dates and assets", file=data)
    code = INDEX_CODES[cfg.index]
    index_close = None
    try:
        ix = load_indices(data, codes=[code])
        pos = np.searchsorted(ix.dates, panel.dates).clip(0, len(ix.dates) - 1)
        index_close = np.where(ix.dates[pos] == panel.dates, ix.field("close")[pos, 0], np.nan)
        if not np.isfinite(index_close).any():
            index_close = None
    except DataError:
        index_close = None
    if index_close is None and cfg.benchmark != "proxy":
        say(f"no {code} series in the data: the benchmark is the cap-weighted member proxy")
    universe = panel.masks.get("all")
    caveats = list(CAVEATS)
    if cap_field != "mktcap":
        caveats.append(
            "no market cap in the data: member weights of the proxy benchmark and the simple "
            "risk model's Size use size_proxy (60-day mean traded value); no industry table "
            "means one industry group"
        )
    if universe is None:
        caveats.append(
            "candidates are NOT point in time: the data has no 'all' universe mask, so any stock "
            "with a price can be bought (on a folder selected by later index membership that is "
            "look-ahead)"
        )
    info: dict[str, Any] = {"index_code": code, "caveats": caveats}
    if risk_dir is not None:
        model = load_risk_dir(risk_dir)
        risk: RiskSource = ModelRisk(model, panel.dates, panel.assets)
        info["risk_model"] = f"deepalpha.risk model at {risk_dir}"
    else:
        from deepalpha.portfolio.simple_risk import simple_risk_model

        say("no --risk: fitting the simple price-based factor model (see portfolio.simple_risk)")
        ids = _industry_ids_for(data, panel.assets)
        risk = simple_risk_model(
            panel.field("close"),
            panel.field(cap_field),
            ids,
            panel.dates,
            estu=panel.masks.get("tradable"),
        )
        info["risk_model"] = "simple price-based model (portfolio.simple_risk), fitted in-window"
    res = run_enhancement(
        scores,
        dates=panel.dates,
        close=panel.field("close"),
        mktcap=panel.field(cap_field),
        members=panel.mask(cfg.index),
        risk=risk,
        config=cfg,
        suspended=panel.masks.get("suspended"),
        limit_up=panel.masks.get("limit_up"),
        limit_down=panel.masks.get("limit_down"),
        vwap=panel.field("vwap") if cfg.execution == "vwap" else None,
        index_close=index_close,
        dv_ratio=dv_ratio,
        universe=universe,
        progress=progress,
    )
    res.info.update(info)
    res.info["assets"] = panel.assets
    used = res.info.get("benchmark_used")
    res.info["benchmark"] = {
        "total_return": f"{code} total return (price + accrued member dv_ratio)",
        "index": f"{code} price index (no dividends)",
        "proxy": "cap-weighted member proxy (total return)",
    }.get(used, "none")
    if "benchmark_fallback" in res.info:
        res.info["benchmark"] += f" [fallback: {res.info['benchmark_fallback']}]"
    if universe is not None:
        rule = panel.meta.get("all_universe")
        res.info["candidate_universe"] = "the data's point-in-time 'all' mask" + (
            f" (all_universe={rule})" if rule else ""
        )
    return res


def write_result(result: EnhancementResult, out: Any) -> list[Any]:
    """Write ``nav.parquet`` (``bench_nav`` = the primary benchmark, plus ``tr_nav``,
    ``price_nav``, ``proxy_nav``; NaN when missing), ``rebalances.parquet``, ``yearly.csv``,
    ``costs.csv`` (cost sensitivity), ``weights.parquet`` (held weights after each rebalance,
    long), the risk views of `risk_tracking.write_tracking` (``exposures.parquet``,
    ``attribution.parquet``, ``risk_daily.parquet``, ``risk_yearly.csv``) and ``metrics.json``
    (``metrics``, ``cost_sensitivity`` rows, ``config``, ``info``) into folder ``out``, each atomically (`deepalpha.atomic`); an unwritable ``out`` is a
    `ConfigError` before any file is written."""
    import json
    from pathlib import Path

    from deepalpha.atomic import atomic_path, atomic_write_text, ensure_writable

    out = ensure_writable(Path(out))
    bt = result.backtest
    t0 = int(bt.signal_idx[0])
    nav = pl.DataFrame(
        {
            "date": bt.dates[t0:],
            "nav": bt.nav[t0:],
            "bench_nav": bt.bench_nav[t0:],
            "tr_nav": bt.tr_nav[t0:] if bt.tr_nav is not None else np.nan,
            "price_nav": bt.price_nav[t0:] if bt.price_nav is not None else np.nan,
            "proxy_nav": bt.proxy_nav[t0:] if bt.proxy_nav is not None else np.nan,
            "excess_nav": bt.excess_nav[t0:],
            "cash": bt.cash[t0:],
            "costs": bt.costs[t0:],
        }
    )
    files = [out / "nav.parquet", out / "rebalances.parquet", out / "yearly.csv"]
    with atomic_path(files[0]) as tmp:
        nav.write_parquet(tmp)
    with atomic_path(files[1]) as tmp:
        result.records.write_parquet(tmp)
    with atomic_path(files[2]) as tmp:
        result.yearly.write_csv(tmp)
    sens = result.info.get("cost_sensitivity")
    if isinstance(sens, pl.DataFrame):
        with atomic_path(out / "costs.csv") as tmp:
            sens.write_csv(tmp)
        files.append(out / "costs.csv")
    assets = result.info.get("assets")
    if assets is not None:
        ex = bt.exec_idx[bt.exec_idx >= 0]
        W = bt.weights[ex]
        r, n = np.nonzero(W > 1e-8)
        with atomic_path(out / "weights.parquet") as tmp:
            pl.DataFrame(
                {
                    "date": bt.dates[ex][r],
                    "asset": np.asarray(assets).astype(str)[n],
                    "weight": W[r, n],
                }
            ).write_parquet(tmp)
        files.append(out / "weights.parquet")
    if result.risk is not None:
        files += write_tracking(result.risk, out)
    skip = ("assets", "records", "cost_sensitivity")
    meta = {
        "metrics": result.metrics,
        "cost_sensitivity": sens.to_dicts() if isinstance(sens, pl.DataFrame) else None,
        "config": result.config.model_dump(mode="json"),
        "info": {k: v for k, v in result.info.items() if k not in skip},
    }
    atomic_write_text(out / "metrics.json", json.dumps(meta, indent=2, default=str))
    files.append(out / "metrics.json")
    return files
