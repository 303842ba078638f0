"""Training throughput: sequence dataset + DecompGRN (and the GRU baseline) on the CN dev panel.

Prints stock-days per second for (a) building the Alpha360 batches alone, (b) a training step
(forward + backward + AdamW) on prebuilt batches, (c) the end-to-end `fit` epoch (batches built
on the fly, no cache), and the process's peak RSS (target <= 6 GB).

    python benchmarks/bench_train.py                      # real data at ../shared/data/cn
    python benchmarks/bench_train.py --data /path --dates 30 --models decompgrn gru --threads 2

Falls back to a synthetic market (``deepalpha.data.synth.write_market``) when the real data is
absent. Timings on a shared machine are noisy: the load average is printed next to them.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["open", "high", "low", "close", "volume", "vwap", "mktcap"]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KB on Linux


def load_panel(args):
    from deepalpha.data.cn import load_cn

    path = Path(args.data)
    if not (path / "prices" / "calendars" / "day.txt").is_file():
        from deepalpha.data.synth import write_market

        path = Path(args.scratch) / "synth_market"
        if not path.exists():
            print(f"real data absent; writing a synthetic market to {path}", flush=True)
            write_market(path, stocks=args.synth_stocks, start="2018-01-01", end="2020-12-31")
    t0 = time.perf_counter()
    panel = load_cn(path, fields=FIELDS, start=args.start, end=args.end)
    print(f"load_cn {path}: {panel}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return panel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cn"))
    ap.add_argument("--scratch", default="/tmp/deepalpha_bench")
    ap.add_argument("--synth-stocks", type=int, default=3000)
    ap.add_argument("--start", default="2019-01-01")
    ap.add_argument("--end", default="2020-12-31")
    ap.add_argument("--length", type=int, default=60, help="days per sequence")
    ap.add_argument("--dates", type=int, default=20, help="dates per timing")
    ap.add_argument("--models", nargs="+", default=["decompgrn", "gru"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--universe", default="all")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from deepalpha.models.registry import count_parameters
    from deepalpha.train.datasets import SequenceDataset
    from deepalpha.train.losses import ic_loss
    from deepalpha.train.trainer import TrainConfig, fit, make_model, model_call, resolve_device

    print(f"load average before: {os.getloadavg()}, torch threads {args.threads}", flush=True)
    panel = load_panel(args)
    ds = SequenceDataset(panel, window=args.length, horizon=10, universe=args.universe)
    sd = ds.sample_dates()
    sd = sd[ds.label_known[sd] < len(ds.dates)]
    dates = np.random.default_rng(0).choice(sd, size=min(args.dates, len(sd)), replace=False)

    # (a) batches alone
    t0 = time.perf_counter()
    batches = [ds.batch(int(t)) for t in dates]
    dt = time.perf_counter() - t0
    n = sum(len(b.idx) for b in batches)
    print(
        f"[dataset] {len(dates)} dates, {n} stock-days (mean {n / len(dates):.0f} stocks, "
        f"L={args.length}, F={ds.n_features}): {dt:.2f} s -> {n / dt:,.0f} stock-days/s",
        flush=True,
    )

    dev = resolve_device(args.device)
    results = {}
    for name in args.models:
        model = make_model(name, ds.n_features, seed=0).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        b = batches[0]  # warm-up step
        p = model_call(model, b.x.to(dev), None if b.group_ids is None else b.group_ids.to(dev))
        ic_loss(p, b.y.to(dev)).backward()
        opt.zero_grad()
        t0 = time.perf_counter()
        for b in batches:
            g = None if b.group_ids is None else b.group_ids.to(dev)
            p = model_call(model, b.x.to(dev), g)
            loss = ic_loss(p, b.y.to(dev))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        step_rate = n / dt
        print(
            f"[train step] {name}: {count_parameters(model):,} params, {dt / len(batches):.3f} s/date"
            f" -> {step_rate:,.0f} stock-days/s",
            flush=True,
        )
        # (c) end to end: one epoch of fit, batches rebuilt on the fly
        model = make_model(name, ds.n_features, seed=0)
        cfg = TrainConfig(max_epochs=1, progress=False, cache_mb=0, device=args.device)
        t0 = time.perf_counter()
        res = fit(model, ds, dates, None, cfg)
        dt = time.perf_counter() - t0
        e2e = res.history[0]["train_stock_days"] / dt
        print(f"[fit epoch] {name}: {dt:.2f} s -> {e2e:,.0f} stock-days/s", flush=True)
        results[name] = (count_parameters(model), step_rate, e2e)

    if "decompgrn" in results and "gru" in results:
        (pd, sd_, ed), (pg, sg, eg) = results["decompgrn"], results["gru"]
        print(
            f"[ratio] DecompGRN/GRU: params {pd / pg:.2f}, train-step speed {sd_ / sg:.2f}x, "
            f"fit-epoch speed {ed / eg:.2f}x"
        )
    rss = peak_rss_gb()
    print(f"[memory] peak RSS {rss:.2f} GB (target <= 6 GB): {'OK' if rss <= 6 else 'OVER'}")
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
