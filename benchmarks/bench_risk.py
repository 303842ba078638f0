"""Benchmark the risk model on the real CN panel (3,199 stocks x 3,401 days, K = 47).

1. Batched constrained WLS (all dates) vs a per-date statsmodels WLS loop on the reduced system
   ``Z = X R`` -- the loop is timed on a sample of dates and extrapolated to all dates; the
   factor returns must agree to 1e-8 on the sampled dates.
2. The whole ``build_risk_model`` (styles, regression, covariance, specific risk): wall and CPU
   seconds per stage and the peak RSS of the process.

Usage: ``python benchmarks/bench_risk.py [DATA] [--sample 40]``. Timings depend on the load of
the machine: the script prints ``os.getloadavg()`` next to them.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "data",
        nargs="?",
        default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cn"),
    )
    ap.add_argument("--sample", type=int, default=40, help="dates in the statsmodels loop")
    ap.add_argument("--freq", default="daily")
    args = ap.parse_args()

    from statsmodels.regression.linear_model import WLS

    from deepalpha.risk.descriptors import returns
    from deepalpha.risk.model import RiskConfig, build_risk_model, load_inputs
    from deepalpha.risk.regression import design_chunk, regress, restriction_matrix

    print(f"load average at start: {os.getloadavg()}, cores: {os.cpu_count()}")
    t0 = time.perf_counter()
    panel, groups, list_dates = load_inputs(args.data)
    T, N, _ = panel.shape
    print(f"load_inputs: {time.perf_counter() - t0:.1f} s wall  panel T={T} N={N}")

    stages: dict[str, list[float]] = {}
    last = {"stage": None, "wall": time.perf_counter(), "cpu": time.process_time()}

    def progress(stage: str, frac: float) -> None:
        s = stage.split(":")[0]
        if s != last["stage"]:
            now, cpu = time.perf_counter(), time.process_time()
            if last["stage"] is not None:
                stages[last["stage"]] = [now - last["wall"], cpu - last["cpu"]]
            last.update(stage=s, wall=now, cpu=cpu)

    t1, c1 = time.perf_counter(), time.process_time()
    model = build_risk_model(
        panel, groups, freq=args.freq, config=RiskConfig(), progress=progress, list_dates=list_dates
    )
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    print(
        f"\nbuild_risk_model ({args.freq}): {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak_rss_gb():.2f} GB, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for k, (w, c) in stages.items():
        print(f"  {k:<20s} {w:7.1f} s wall {c:7.1f} s CPU")
    print(
        f"  target: <= 180 s on 2 cores -> ratio {wall / 180:.2f} of budget (wall), {cpu / 2 / 180:.2f} (CPU / 2 cores)"
    )
    print(
        f"  mean cross-sectional R^2 {np.nanmean(model.r2):.3f} (median {np.nanmedian(model.r2):.3f})"
    )

    # ---------------------------------------------------------------- regression benchmark
    if args.freq != "daily":
        return
    ret = returns(panel.field("close"), panel.masks.get("suspended"))
    r_next = np.full((T, N), np.nan)
    r_next[:-1] = ret[1:]
    P = model.n_industries
    t2 = time.perf_counter()
    res = regress(model.styles, model.industry_ids, P, r_next, model.weights)
    t_batch = time.perf_counter() - t2
    rng = np.random.default_rng(0)
    ok_dates = np.nonzero(np.isfinite(res.factor_returns).all(axis=1))[0]
    sample = np.sort(rng.choice(ok_dates, min(args.sample, len(ok_dates)), replace=False))
    t3 = time.perf_counter()
    worst = 0.0
    for t in sample:
        st = model.styles[t : t + 1].astype(np.float64)
        ids = model.industry_ids[t : t + 1]
        X = design_chunk(st, ids, P)[0]
        keep = (
            np.isfinite(st[0]).all(axis=1)
            & (ids[0] >= 0)
            & np.isfinite(r_next[t])
            & (model.weights[t] > 0)
        )
        v = model.weights[t][keep].astype(np.float64)
        ind_w = (X[keep, 1 : 1 + P] * (v * v)[:, None]).sum(axis=0)
        R = restriction_matrix(ind_w[None], X.shape[1] - 1 - P)[0][0]
        Z = X[keep] @ R
        # drop all-zero reduced columns (an industry or style absent that day) as the batched
        # solver does (it fixes them at 0)
        nz = np.abs(Z).sum(axis=0) > 0
        fit = WLS(r_next[t][keep], Z[:, nz], weights=v).fit()
        g = np.zeros(Z.shape[1])
        g[nz] = fit.params
        f = R @ g
        worst = max(worst, float(np.abs(f - res.factor_returns[t]).max()))
    t_loop = time.perf_counter() - t3
    per_date = t_loop / len(sample)
    n_dates = len(ok_dates)
    print(f"\nregression, {n_dates} dates x {N} stocks x K={len(model.factor_names)}:")
    print(
        f"  batched (torch bmm, float64): {t_batch:.2f} s  ({t_batch / n_dates * 1e3:.2f} ms/date)"
    )
    print(
        f"  statsmodels WLS loop: {per_date * 1e3:.1f} ms/date on {len(sample)} sampled dates "
        f"-> {per_date * n_dates:.1f} s extrapolated to all dates"
    )
    print(
        f"  speed-up {per_date * n_dates / t_batch:.0f}x (target >= 50x); max |f_batched - f_statsmodels| = {worst:.2e} (target <= 1e-8)"
    )
    print(f"peak RSS {peak_rss_gb():.2f} GB; load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
