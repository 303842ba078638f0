"""Daily A-share backtest engine on arrays.

Shapes: ``T`` trading days, ``N`` stocks, ``R`` rebalances.

Timing (no look-ahead): a target decided at the close of signal day ``s`` (from information up to
``s``) is traded on day ``s + lag`` (default 1) at that day's close, or at its VWAP proxy when
``exec_price`` is given. Each day ``t`` the engine

1. marks the holdings from the previous close to the execution price: ``r_pre = p_exec[t] /
   close[t-1] − 1`` (``p_exec = close`` by default, so this is the whole day's return);
2. on an execution day, trades towards the target: target values are ``target_i × NAV``; an order
   is **dropped** (the position kept) when it buys a stock at limit up, sells one at limit down,
   or trades a suspended stock or one without a price; sells raise cash net of costs and buys are
   scaled down pro rata when that cash does not cover them (no leverage, no short cash); money
   from dropped buys stays in cash (earning 0) until the next rebalance;
3. marks the post-trade holdings from the execution price to the close: ``r_post = close[t] /
   p_exec[t] − 1`` (zero with close execution).

Accounting identity (close execution), day by day::

    nav[t] − nav[t-1] = Σ_i h[t-1, i] · r[t, i] − cost[t]

with ``h`` the post-trade holdings in NAV units at the previous close (``weights[t-1] ×
nav[t-1]``), ``r = close[t]/close[t-1] − 1`` and ``cost[t]`` the costs paid on day ``t``.
Missing prices count as a zero return (the position is frozen) and block trading.

Benchmarks (see `benchmark`): ``benchmark="total_return"`` (default) compares against the price
index plus its members' accrued dividend yield (needs ``index_close``, ``bench_weights`` and
``dv_ratio``); ``"index"`` against the price index (``index_close``: understates the benchmark by
its dividend yield, since the NAV is a total return); ``"proxy"`` against the cap-weighted member
proxy (total return from back-adjusted closes). When the asked-for benchmark lacks its inputs the
engine falls back (total_return -> proxy -> index; index -> proxy; proxy -> index) and says so
in ``info["benchmark_used"]`` / ``info["benchmark_fallback"]``. Every benchmark it can build is
kept (``tr_nav``, ``price_nav``, ``proxy_nav``) so excess can be reported against all of them.

`policy` callbacks let an optimiser see the drifted weights at the signal date (``w_prev``); a
fixed ``[R, N]`` array of targets also works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepalpha.errors import DataError
from deepalpha.portfolio.costs import CostConfig, cost_rates

__all__ = ["BacktestResult", "Policy", "run_backtest", "simple_returns"]

# policy(r, s, w_now) -> target weights [N] for rebalance r decided at the close of day s, where
# w_now [N] are the current (drifted, post-trade) weights at that close.
Policy = Callable[[int, int, np.ndarray], np.ndarray]


@dataclass
class BacktestResult:
    """Daily paths and trade records.

    Attributes
    ----------
    dates : datetime64[D][T]
    nav : float64[T]
        Portfolio NAV (1 at the start, after the costs of each day's trades).
    bench_nav : float64[T]
        The primary benchmark's NAV (``info["benchmark_used"]``: total_return, index or proxy).
    proxy_nav : float64[T] or None
        Cap-weighted member proxy NAV (when benchmark weights were given).
    price_nav : float64[T] or None
        The price index NAV (when ``index_close`` was given).
    tr_nav : float64[T] or None
        Total-return index NAV: price index + accrued member dividend yield (when
        ``index_close``, ``bench_weights`` and ``dv_ratio`` were given).
    excess_nav : float64[T]
        ``nav / bench_nav`` (relative NAV; its log is the compounded excess).
    weights : float32[T, N]
        End-of-day holdings as fractions of NAV (after trading); ``1 − Σ`` is cash.
    cash : float64[T]
        Cash fraction of NAV at each close.
    costs : float64[T]
        Costs paid each day in NAV units (``nav[0] = 1``).
    exec_idx : int64[R]
        Execution day of each rebalance (``-1`` when it falls beyond the data).
    signal_idx : int64[R]
    trades : float32[R, N]
        Executed trade values as fractions of the pre-trade NAV (+ buy, − sell).
    turnover : float64[R]
        One-sided turnover of each rebalance: ``(buys + sells) / 2 / NAV``.
    blocked : int64[R]
        Orders dropped at execution (limit up / down, suspended, no price).
    targets : float32[R, N]
        The targets asked for.
    info : dict
        Free-form extras (optimiser records etc.).
    """

    dates: np.ndarray
    nav: np.ndarray
    bench_nav: np.ndarray
    proxy_nav: np.ndarray | None
    excess_nav: np.ndarray
    weights: np.ndarray
    cash: np.ndarray
    costs: np.ndarray
    exec_idx: np.ndarray
    signal_idx: np.ndarray
    trades: np.ndarray
    turnover: np.ndarray
    blocked: np.ndarray
    targets: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    price_nav: np.ndarray | None = None
    tr_nav: np.ndarray | None = None

    @property
    def returns(self) -> np.ndarray:
        """Daily portfolio returns float64[T] (``returns[0] = 0``)."""
        return _nav_returns(self.nav)

    @property
    def bench_returns(self) -> np.ndarray:
        return _nav_returns(self.bench_nav)


def _nav_returns(nav: np.ndarray) -> np.ndarray:
    out = np.zeros_like(nav)
    out[1:] = nav[1:] / nav[:-1] - 1.0
    return out


def simple_returns(close: np.ndarray) -> np.ndarray:
    """``r[t] = close[t] / close[t-1] − 1`` (float64[T, N]); ``r[0]`` and unknown prices → 0."""
    c = np.asarray(close, np.float64)
    r = np.zeros_like(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[1:] = c[1:] / c[:-1] - 1.0
    r[~np.isfinite(r)] = 0.0
    return r


def run_backtest(
    targets: np.ndarray | Policy,
    signal_idx: np.ndarray,
    close: np.ndarray,
    dates: np.ndarray,
    *,
    limit_up: np.ndarray | None = None,
    limit_down: np.ndarray | None = None,
    suspended: np.ndarray | None = None,
    index_close: np.ndarray | None = None,
    bench_weights: np.ndarray | None = None,
    exec_price: np.ndarray | None = None,
    costs: CostConfig | None = None,
    lag: int = 1,
    start: int | None = None,
    dv_ratio: np.ndarray | None = None,
    benchmark: str = "total_return",
) -> BacktestResult:
    """Run the daily engine.

    Parameters
    ----------
    targets : float[R, N] or Policy
        Target weights per rebalance (rows sum to ≤ 1; the rest is cash), or a callback
        ``policy(r, s, w_now) -> float[N]`` asked at the close of signal day ``s``.
    signal_idx : int[R]
        Signal day of each rebalance (index into ``dates``), increasing.
    close : float[T, N]
        Back-adjusted close (returns) -- NaN where unknown.
    dates : datetime64[D][T]
    limit_up, limit_down, suspended : bool[T, N], optional
        Day-``t`` states that block buys / sells / both on execution day ``t``.
    index_close : float[T], optional
        The real (price) index's close.
    bench_weights : float[T, N], optional
        Cap-weighted member weights (rows sum to 1) for the proxy index, see `benchmark`.
    exec_price : float[T, N], optional
        Execution price (e.g. the VWAP proxy, back-adjusted like ``close``); default ``close``.
    costs : CostConfig
    lag : int
        Days from signal to trade (≥ 1: trading at the signal day's close would be look-ahead).
    start : int, optional
        First day of the NAV path (default: the first signal day). Before the first trade the
        portfolio is all cash.
    dv_ratio : float[T, N], optional
        Trailing dividend yield in % as of the latest period end ``<= t`` (for the total-return
        benchmark; NaN = none).
    benchmark : "total_return" | "index" | "proxy"
        The primary benchmark (``bench_nav``, ``excess_nav``); see the module docstring.
    """
    close = np.asarray(close, np.float64)
    T, N = close.shape
    dates = np.asarray(dates, dtype="datetime64[D]")
    signal_idx = np.asarray(signal_idx, np.int64)
    R = signal_idx.shape[0]
    if dates.shape != (T,):
        raise DataError(f"dates {dates.shape} do not match close {close.shape}", field="dates")
    if lag < 1:
        raise DataError(
            f"lag must be >= 1 (trading on the signal's own close is look-ahead), got {lag}"
        )
    if R and ((np.diff(signal_idx) <= 0).any() or signal_idx[0] < 0 or signal_idx[-1] >= T):
        raise DataError("signal_idx must be increasing indices into dates", field="signal_idx")
    policy: Policy | None = None
    if callable(targets):
        policy = targets
        target_arr = np.full((R, N), np.nan, np.float32)
    else:
        target_arr = np.asarray(targets, np.float32)
        if target_arr.shape != (R, N):
            raise DataError(f"targets {target_arr.shape} must be [R={R}, N={N}]", field="targets")

    def mask(m: np.ndarray | None, name: str) -> np.ndarray:
        if m is None:
            return np.zeros((T, N), bool)
        m = np.asarray(m, bool)
        if m.shape != (T, N):
            raise DataError(f"{name} {m.shape} must be [{T}, {N}]", field=name)
        return m

    up, dn, susp = (
        mask(limit_up, "limit_up"),
        mask(limit_down, "limit_down"),
        mask(suspended, "suspended"),
    )
    px = close if exec_price is None else np.asarray(exec_price, np.float64)
    if px.shape != (T, N):
        raise DataError(f"exec_price {px.shape} must be [{T}, {N}]", field="exec_price")
    px = np.where(np.isfinite(px) & (px > 0), px, close)  # no VWAP: fall back to the close
    buy_rate, sell_rate = cost_rates(dates, costs)

    t0 = int(signal_idx[0]) if start is None and R else int(start or 0)
    exec_idx = np.where(signal_idx + lag < T, signal_idx + lag, -1)
    exec_of_day = {int(e): r for r, e in enumerate(exec_idx) if e >= 0}
    signal_of_day = {int(s): r for r, s in enumerate(signal_idx)}

    nav = np.ones(T)
    cash_frac = np.ones(T)
    cost_path = np.zeros(T)
    W = np.zeros((T, N), np.float32)
    trades = np.zeros((R, N), np.float32)
    turnover = np.zeros(R)
    blocked = np.zeros(R, np.int64)

    h = np.zeros(N)  # holdings, NAV units
    cash = 1.0
    pending: dict[int, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in range(t0, T):
            if t > t0:
                prev = close[t - 1]
                r_pre = px[t] / prev - 1.0
                r_pre[~np.isfinite(r_pre)] = 0.0
                h = h * (1.0 + r_pre)
            if t in exec_of_day and exec_of_day[t] in pending:
                r = exec_of_day[t]
                tgt = pending.pop(r)
                V = h.sum() + cash
                d = tgt * V - h
                no_price = ~(np.isfinite(close[t]) & np.isfinite(px[t]))
                stop = ((d > 0) & (up[t] | susp[t] | no_price)) | (
                    (d < 0) & (dn[t] | susp[t] | no_price)
                )
                blocked[r] = int((stop & (np.abs(d) > 1e-12 * V)).sum())
                d[stop] = 0.0
                S = float(-d[d < 0].sum())
                B = float(d[d > 0].sum())
                cb, cs = buy_rate[t], sell_rate[t]
                avail = cash + S * (1.0 - cs)
                scale = 1.0 if B * (1.0 + cb) <= avail else max(avail, 0.0) / (B * (1.0 + cb))
                d[d > 0] *= scale
                c = cs * S + cb * scale * B
                h = h + d
                h[np.abs(h) < 1e-15] = 0.0
                cash = cash + S - scale * B - c
                cost_path[t] = c
                trades[r] = d / V
                turnover[r] = 0.5 * (S + scale * B) / V
            if t > t0 and exec_price is not None:
                r_post = close[t] / px[t] - 1.0
                r_post[~np.isfinite(r_post)] = 0.0
                h = h * (1.0 + r_post)
            V = h.sum() + cash
            nav[t] = V
            cash_frac[t] = cash / V
            W[t] = h / V
            if t in signal_of_day:
                r = signal_of_day[t]
                if exec_idx[r] >= 0:
                    if policy is not None:
                        tgt = np.asarray(policy(r, t, W[t].astype(np.float64)), np.float64)
                        if tgt.shape != (N,):
                            raise DataError(f"policy returned shape {tgt.shape}, expected ({N},)")
                        target_arr[r] = tgt
                    else:
                        tgt = target_arr[r].astype(np.float64)
                    tgt = np.nan_to_num(tgt, nan=0.0)
                    if (tgt < -1e-9).any() or tgt.sum() > 1 + 1e-6:
                        raise DataError(
                            "target weights must be >= 0 and sum to <= 1", date=dates[t]
                        )
                    pending[r] = np.clip(tgt, 0.0, None)
    nav[:t0] = 1.0
    navs, info = benchmark_navs(
        close, dates, t0, index_close, bench_weights, dv_ratio, benchmark=benchmark
    )
    bench_nav = navs[info["benchmark_used"]] if info["benchmark_used"] else np.ones(T)
    return BacktestResult(
        dates=dates,
        nav=nav,
        bench_nav=bench_nav,
        proxy_nav=navs.get("proxy"),
        excess_nav=nav / bench_nav,
        weights=W,
        cash=cash_frac,
        costs=cost_path,
        exec_idx=exec_idx,
        signal_idx=signal_idx,
        trades=trades,
        turnover=turnover,
        blocked=blocked,
        targets=target_arr,
        info=info,
        price_nav=navs.get("index"),
        tr_nav=navs.get("total_return"),
    )


FALLBACK = {
    "total_return": ("total_return", "proxy", "index"),
    "index": ("index", "proxy"),
    "proxy": ("proxy", "index"),
}
BENCHMARK_LABEL = {
    "total_return": "total-return index (price index + accrued member dividend yield)",
    "index": "price index (no dividends)",
    "proxy": "cap-weighted member proxy (total return)",
}


def benchmark_navs(
    close: np.ndarray,
    dates: np.ndarray,
    t0: int,
    index_close: np.ndarray | None,
    bench_weights: np.ndarray | None,
    dv_ratio: np.ndarray | None,
    *,
    benchmark: str = "total_return",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every benchmark NAV the inputs allow, based at day ``t0`` (1 up to ``t0``).

    Returns ``({"total_return"|"index"|"proxy": float64[T]}, info)`` with ``info`` keys
    ``benchmark_used`` (the first available of `FALLBACK[benchmark]`, None when none is),
    ``benchmark_fallback`` (a sentence, only when it differs from ``benchmark``) and
    ``benchmarks`` (the keys built).
    """
    from deepalpha.portfolio.benchmark import proxy_returns, total_return_returns

    if benchmark not in FALLBACK:
        raise DataError(f"benchmark must be total_return, index or proxy, got {benchmark!r}")
    T, N = close.shape
    navs: dict[str, np.ndarray] = {}
    bw = None
    if bench_weights is not None:
        bw = np.asarray(bench_weights, np.float64)
        if bw.shape != (T, N):
            raise DataError(f"bench_weights {bw.shape} must be [{T}, {N}]", field="bench_weights")
        rb = proxy_returns(bw, simple_returns(close))
        rb[: t0 + 1] = 0.0
        navs["proxy"] = np.cumprod(1.0 + rb)
    if index_close is not None:
        ic = np.asarray(index_close, np.float64)
        if ic.shape != (T,):
            raise DataError(f"index_close {ic.shape} must be [{T}]", field="index_close")
        ic = _ffill(ic)
        if not np.isfinite(ic[t0]):
            raise DataError("index has no value on the first backtest day", date=dates[t0])
        price = ic / ic[t0]
        price[:t0] = 1.0
        navs["index"] = price
        if bw is not None and dv_ratio is not None:
            dv = np.asarray(dv_ratio, np.float64)
            if dv.shape != (T, N):
                raise DataError(f"dv_ratio {dv.shape} must be [{T}, {N}]", field="dv_ratio")
            r = total_return_returns(ic, bw, dv)
            r[: t0 + 1] = 0.0
            navs["total_return"] = np.cumprod(1.0 + r)
    used = next((k for k in FALLBACK[benchmark] if k in navs), None)
    info: dict[str, Any] = {"benchmark_used": used, "benchmarks": sorted(navs)}
    if used != benchmark:
        missing = {
            "total_return": "the index series, member weights and dv_ratio",
            "index": "an index series",
            "proxy": "member weights",
        }[benchmark]
        info["benchmark_fallback"] = (
            f"benchmark {benchmark!r} needs {missing}, which were not given: "
            + (f"using the {BENCHMARK_LABEL[used]}" if used else "no benchmark (flat NAV)")
        )
    return navs, info


def _ffill(x: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs of a 1-D series (leading NaNs stay)."""
    idx = np.where(np.isfinite(x), np.arange(x.shape[0]), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    out[~np.isfinite(x) & (np.cumsum(np.isfinite(x)) == 0)] = np.nan
    return out
