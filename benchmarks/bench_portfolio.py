"""Portfolio benchmarks: optimiser solve time and a full weekly CSI 500 enhancement backtest.

    python benchmarks/bench_portfolio.py                    # both parts
    python benchmarks/bench_portfolio.py --part solve       # solve times only (no data needed)
    python benchmarks/bench_portfolio.py --part backtest --risk RISK_DIR --index csi500

Part 1 (solve): CSI 500 / CSI 1000 sized problems -- 800 / 1,800 candidates, K = 47 factors
(country + 31 industries + 15 styles), random but realistic exposures and a daily factor
covariance -- timed for a first build (cash -> portfolio, no turnover limit) and for a rebalance
with untradable names and the 30 % turnover limit. Target <= 2 s per solve on 2 cores.

Part 2 (backtest): weekly 2014-2023 CSI 500 enhancement on ../shared/data/cn with a 5-day
reversal signal (score = -(close_t / close_{t-5} - 1)). Risk model: ``--risk DIR`` (our Barra
model) or, by default, the simple price-based model of `deepalpha.portfolio.simple_risk`.
Target <= 3 minutes for the backtest itself (loading and the risk model timed separately).

Timings depend on the machine's load: the script prints ``os.getloadavg()`` next to them.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from deepalpha.portfolio.optimizer import OptimizerConfig, optimize

ROOT = Path(__file__).resolve().parents[1]
CN = Path(os.environ.get("DEEPALPHA_CN_DATA", ROOT.parent / "shared" / "data" / "cn"))


def load() -> str:
    return (
        "load avg " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cpus"
    )


def problem(n: int, n_index: int, seed: int = 0, P: int = 31, S: int = 15):
    rng = np.random.default_rng(seed)
    ind = rng.integers(0, P, n)
    K = 1 + P + S
    X = np.zeros((n, K))
    X[:, 0] = 1
    X[np.arange(n), 1 + ind] = 1
    X[:, 1 + P :] = rng.standard_normal((n, S))
    A = rng.standard_normal((K, K)) * 0.003
    F = A @ A.T + np.eye(K) * 2e-5
    delta = rng.uniform(0.015, 0.035, n) ** 2
    cap = np.exp(rng.normal(0, 1, n))
    in_index = np.zeros(n, bool)
    in_index[:n_index] = True
    wb = np.where(in_index, cap, 0.0)
    wb /= wb.sum()
    return rng, X, F, delta, wb, in_index


def bench_solve(repeats: int = 5) -> None:
    print(f"== optimiser solve time ({load()})")
    for backend, name, n, ni in (
        ("clarabel", "CSI 500 sized", 800, 500),
        ("cvxpy", "CSI 500 sized", 800, 500),
        ("clarabel", "CSI 1000 sized", 1800, 1000),
        ("cvxpy", "CSI 1000 sized", 1800, 1000),
    ):
        cfg = OptimizerConfig(backend=backend)
        rng, X, F, delta, wb, in_index = problem(n, ni)
        first, rebal, statuses = [], [], []
        w_prev = None
        for _ in range(repeats):
            alpha = rng.standard_normal(n)
            t = time.perf_counter()
            r0 = optimize(alpha, wb, np.zeros(n), X, F, delta, np.ones(n, bool), in_index, cfg)
            first.append(time.perf_counter() - t)
            w_prev = r0.weights
            alpha2 = 0.7 * alpha + 0.7 * rng.standard_normal(n)
            tradable = rng.uniform(size=n) > 0.03
            t = time.perf_counter()
            r1 = optimize(alpha2, wb, w_prev, X, F, delta, tradable, in_index, cfg)
            rebal.append(time.perf_counter() - t)
            statuses.append(r1.status)
        print(
            f"{name:15s} {backend:8s} N={n:5d} K={X.shape[1]}: first build median {np.median(first):.3f} s "
            f"(max {max(first):.3f}), rebalance median {np.median(rebal):.3f} s "
            f"(max {max(rebal):.3f}); target 2 s -> {2 / max(max(first), max(rebal)):.1f}x "
            f"headroom; statuses {sorted(set(statuses))}"
        )


def bench_backtest(index: str, risk_dir: str | None, start: str, end: str) -> None:
    from deepalpha.data.cn import load_cn
    from deepalpha.data.predictions import dense_to_long
    from deepalpha.portfolio.enhance import BacktestConfig, backtest_predictions

    if not (CN / "prices" / "calendars" / "day.txt").is_file():
        print(f"== backtest skipped: no data at {CN}")
        return
    print(f"== weekly {index} enhancement {start}..{end}, 5-day reversal ({load()})")
    t = time.perf_counter()
    p = load_cn(CN, fields=["close"], start=str(np.datetime64(start) - np.timedelta64(30, "D")))
    c = p.field("close").astype(np.float64)
    s = np.full_like(c, np.nan)
    with np.errstate(all="ignore"):
        s[5:] = -(c[5:] / c[:-5] - 1.0)
    s[~p.masks["listed"]] = np.nan
    keep = (p.dates >= np.datetime64(start)) & (p.dates <= np.datetime64(end))
    preds = dense_to_long(s[keep], p.dates[keep], p.assets)
    t_sig = time.perf_counter() - t
    print(f"signal: {preds.height:,} scores in {t_sig:.1f} s")
    stages: dict[str, float] = {}
    last = [time.perf_counter()]

    def log(msg: str) -> None:
        now = time.perf_counter()
        print(f"  [{now - last[0]:6.1f} s] {msg}")

    done = [0]

    def progress(i: int, n: int) -> None:
        if i == 1:
            stages["backtest_start"] = time.perf_counter()
        done[0] = n

    cfg = BacktestConfig(index=index, freq="weekly")
    t = time.perf_counter()
    res = backtest_predictions(preds, CN, cfg, risk_dir=risk_dir, progress=progress, log=log)
    total = time.perf_counter() - t
    bt_time = time.perf_counter() - stages.get("backtest_start", t)
    m = res.metrics
    rec = res.records
    print(
        f"total {total:.1f} s; of which load + risk model {total - bt_time:.1f} s, "
        f"optimiser + engine + metrics {bt_time:.1f} s for {rec.height} rebalances "
        f"({rec['solve_time'].mean():.3f} s mean solve, {rec['solve_time'].max():.3f} s max, "
        f"{rec['n_candidates'].mean():.0f} candidates); target 180 s -> "
        f"{180 / bt_time:.2f}x"
    )
    print(f"risk model: {res.info['risk_model']}; benchmark: {res.info['benchmark']}")
    print(
        "excess {:.2%}/yr, TE {:.2%}, IR {:.2f}, excess MDD {:.2%}, monthly win {:.0%}, "
        "turnover {:.1%}/rebalance ({:.1f}x/yr), costs {:.2%}/yr, ex-ante TE {:.2%}, "
        "relaxed {:.0%} of rebalances; vs cap-weighted proxy: excess {:.2%}, IR {:.2f}, "
        "TE {:.2%}".format(
            m["excess_return"],
            m["tracking_error"],
            m["information_ratio"],
            m["excess_max_drawdown"],
            m["monthly_win_rate"],
            m["turnover_per_rebalance"],
            m["turnover_annual"],
            m["cost_annual"],
            m["ex_ante_te"],
            m["relaxed_share"],
            m.get("proxy_excess_return", float("nan")),
            m.get("proxy_information_ratio", float("nan")),
            m.get("proxy_tracking_error", float("nan")),
        )
    )
    print(
        res.yearly.select(
            "year", "excess_period_return", "tracking_error", "information_ratio", "cost_annual"
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--part", choices=("all", "solve", "backtest"), default="all")
    ap.add_argument("--index", default="csi500")
    ap.add_argument("--risk", default=None, help="risk model dir (default: simple model)")
    ap.add_argument("--start", default="2014-01-01")
    ap.add_argument("--end", default="2023-12-29")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if a.part in ("all", "solve"):
        bench_solve(a.repeats)
    if a.part in ("all", "backtest"):
        bench_backtest(a.index, a.risk, a.start, a.end)


if __name__ == "__main__":
    main()
