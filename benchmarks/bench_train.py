"""Training throughput: sequence dataset + DecompGRN (and the GRU baseline) on the CN dev panel.

Default mode prints stock-days per second for (a) building the Alpha360 batches alone, (b) a
training step (forward + backward + AdamW) on prebuilt batches, (c) the end-to-end `fit` epoch
(batches built on the fly, no cache), and the process's peak RSS (target <= 6 GB).

``--cores`` asks how to use two cores: one job on 2 intra-op threads, or two jobs (processes) on
1 thread each, both training the same model on 800-stock batches (T 60, F 6) for a fixed time;
it prints the stock-days per second of each arrangement.

``--job`` runs one real rolling job of a run config (``configs/system_b_cpu.yaml``: the first
retrain, 2017) through ``deepalpha.train.rolling.run_job``, the code `deepalpha run` uses, and
prints where its time goes: batch assembly (raw windows), normalisation, train steps,
validation, prediction (model) and the rest, with stock-days per second per core for training.
The stages are timed by wrapping the functions the job calls (the job itself is unchanged).

    python benchmarks/bench_train.py                      # real data at ../shared/data/cn
    python benchmarks/bench_train.py --data /path --dates 30 --models decompgrn gru --threads 2
    python benchmarks/bench_train.py --job --models gru decompgrn --threads 1 --epochs 1
    python benchmarks/bench_train.py --cores --models gru rnn_lin decompgrn
    python benchmarks/bench_train.py --models gru gru_torch     # fused C GRU vs nn.GRU

``gru_torch`` is the ``gru`` model forced onto ``nn.GRU`` (``backend="torch"``); plain ``gru``
takes the fused C recurrence on the CPU when the kernels load (``deepalpha.models.gru_fused``).

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


class Clock:
    """Accumulated seconds per stage, from wrapped functions (nested stages are subtracted).

    ``now`` is the clock: wall time, or with ``--clock cpu`` this process's CPU time (with one
    thread a load-independent measure of the work, on a machine shared with other jobs)."""

    now = time.perf_counter

    def __init__(self) -> None:
        self.sec: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list[float]] = []

    def wrap(self, name: str, fn):
        def timed(*a, **k):
            self._stack.append([0.0])
            t0 = Clock.now()
            try:
                return fn(*a, **k)
            finally:
                dt = Clock.now() - t0
                inner = self._stack.pop()[0]
                self.sec[name] = self.sec.get(name, 0.0) + dt - inner
                self.calls[name] = self.calls.get(name, 0) + 1
                if self._stack:
                    self._stack[-1][0] += dt

        return timed


def job_breakdown(args) -> None:
    """One rolling job per model with every stage timed (see the module docstring)."""
    import deepalpha.features.sequences as sequences
    import deepalpha.train.datasets as datasets
    import deepalpha.train.rolling as rolling
    import deepalpha.train.trainer as trainer
    from deepalpha.workflows.config import load_run_config
    from deepalpha.workflows.data import load_panel as load_run_panel

    cfg = load_run_config(args.config, {"data.path": args.data})
    models = list(cfg.rolling.models)
    gru = next((m for m in models if m.key == "gru"), None)
    if "gru_torch" in args.models and gru is not None:  # the config's GRU, on nn.GRU
        kwargs = gru.kwargs | {"backend": "torch"}
        models.append(gru.model_copy(update={"tag": "gru_torch", "kwargs": kwargs}))
    roll = cfg.rolling.model_copy(
        update={
            "train": cfg.rolling.train.model_copy(update={"max_epochs": args.epochs}),
            "threads_per_job": args.threads,
            "models": models,
        }
    )
    t0 = time.perf_counter()
    panel = load_run_panel(Path(args.data), cfg.data)
    data = rolling._select_panel(panel, roll)
    print(f"load {args.data}: {data}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    ds0 = rolling.build_dataset(data, roll.dataset)
    jobs = rolling.plan_jobs(data.dates, roll, int(ds0.sample_dates()[0]))
    for name in args.models:
        job = next(j for j in jobs if j.model == name)
        clock = Clock()
        patches = [
            (sequences.SequenceSource, "raw_window"),
            (datasets, "normalize_window"),
            (datasets, "rank_normalize"),
            (datasets.SequenceDataset, "_make"),
            (trainer, "evaluate"),
            (trainer, "fit"),
            (rolling, "fit"),
            (rolling, "predict"),
            (rolling, "build_dataset"),
        ]
        names = {
            "raw_window": "batch: raw windows",
            "normalize_window": "batch: normalisation",
            "rank_normalize": "batch: normalisation",
            "_make": "batch: rest (masks, groups)",
            "evaluate": "validation (model)",
            "fit": "train steps",
            "predict": "prediction (model)",
            "build_dataset": "dataset setup",
        }
        saved = [(obj, attr, getattr(obj, attr)) for obj, attr in patches]
        for obj, attr, fn in saved:
            if attr == "fit" and obj is rolling:
                setattr(obj, attr, trainer.fit)  # the wrapped one below
                continue
            setattr(obj, attr, clock.wrap(names[attr], fn))
        try:
            t0 = Clock.now()
            res = rolling.run_job(roll, data, job)
            total = Clock.now() - t0
        finally:
            for obj, attr, fn in saved:
                setattr(obj, attr, fn)
        hist = res.history
        train_rows = sum(h["train_stock_days"] for h in hist)
        n_pred = len(res.score)
        print(
            f"\n== job {job.key} ({args.clock} clock; {len(hist)} epochs, {train_rows:,} train stock-days, "
            f"{n_pred:,} predicted stock-days, {args.threads} thread(s)); {load()}"
        )
        accounted = 0.0
        for stage in dict.fromkeys(names.values()):
            sec = clock.sec.get(stage, 0.0)
            accounted += sec
            print(f"  {stage:32s} {sec:8.1f} s  {100 * sec / total:5.1f} %")
        print(f"  {'other (writing, model setup)':32s} {total - accounted:8.1f} s")
        print(f"  {'total':32s} {total:8.1f} s")
        step = clock.sec.get("train steps", float("nan"))
        print(
            f"  -> training {train_rows / step:,.0f} stock-days/s on the steps alone, "
            f"{train_rows / total:,.0f} stock-days/s for the whole job; per core "
            f"{train_rows / total / args.threads:,.0f}"
        )


def model_options(name: str) -> tuple[str, dict]:
    """``gru_torch`` -> the ``gru`` model on ``nn.GRU``; other names as they are."""
    return ("gru", {"backend": "torch"}) if name == "gru_torch" else (name, {})


def _steps_for(name: str, threads: int, seconds: float, stocks: int, queue) -> None:
    """Train ``name`` on random [stocks, 60, 6] batches for ``seconds``; put stock-days done."""
    torch.set_num_threads(threads)
    from deepalpha.models import build_model, cap_groups
    from deepalpha.train.allocator import retain_freed_memory

    retain_freed_memory()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(stocks, 60, 6, generator=g), torch.randn(stocks, generator=g)
    groups = cap_groups(torch.randn(stocks, generator=g), 20)
    model_name, options = model_options(name)
    model = build_model(model_name, 6, seed=0, **options)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(model(x, groups), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        done += stocks
    queue.put(done / (time.perf_counter() - t0))


def cores(args) -> None:
    """Two cores: one job with 2 threads vs two 1-thread jobs at once (see the docstring)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    print(f"== two cores, {args.stocks} stocks a step, T 60; {load()}")
    for name in args.models:
        rates = {}
        for label, procs, threads in (("1 job x 2 threads", 1, 2), ("2 jobs x 1 thread", 2, 1)):
            q = ctx.Queue()
            ps = [
                ctx.Process(target=_steps_for, args=(name, threads, args.seconds, args.stocks, q))
                for _ in range(procs)
            ]
            for p in ps:
                p.start()
            rates[label] = sum(q.get() for _ in ps)
            for p in ps:
                p.join()
        a, b = rates.values()
        print(
            f"{name:10s} 1 job x 2 threads {a:8,.0f} stock-days/s   2 jobs x 1 thread {b:8,.0f}"
            f"   -> two jobs {b / a:4.2f}x"
        )
    print(f"done; {load()}")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min)"


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
    ap.add_argument("--job", action="store_true", help="per-stage breakdown of one rolling job")
    ap.add_argument("--config", default=str(REPO / "configs" / "system_b_cpu.yaml"))
    ap.add_argument("--epochs", type=int, default=1, help="--job: max epochs")
    ap.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="--job: cpu = process CPU time"
    )
    ap.add_argument("--cores", action="store_true", help="2 threads x 1 job vs 1 thread x 2 jobs")
    ap.add_argument("--seconds", type=float, default=20.0, help="--cores: seconds per arrangement")
    ap.add_argument("--stocks", type=int, default=800, help="--cores: stocks per step")
    args = ap.parse_args()
    if args.cores:
        return cores(args)
    torch.set_num_threads(args.threads)
    if args.job:
        from deepalpha.train.allocator import retain_freed_memory

        if args.clock == "cpu":
            Clock.now = time.process_time
        retain_freed_memory()
        return job_breakdown(args)

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
        model_name, options = model_options(name)
        model = make_model(model_name, ds.n_features, seed=0, **options).to(dev)
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
        model = make_model(model_name, ds.n_features, seed=0, **options)
        cfg = TrainConfig(max_epochs=1, progress=False, cache_mb=0, device=args.device)
        t0 = time.perf_counter()
        res = fit(model, ds, dates, None, cfg)
        dt = time.perf_counter() - t0
        e2e = res.history[0]["train_stock_days"] / dt
        print(f"[fit epoch] {name}: {dt:.2f} s -> {e2e:,.0f} stock-days/s", flush=True)
        results[name] = (count_parameters(model), step_rate, e2e)

    if "gru" in results and "gru_torch" in results:
        (_, sf, ef), (_, st, et) = results["gru"], results["gru_torch"]
        print(
            f"[ratio] GRU fused C / nn.GRU: train-step speed {sf / st:.2f}x, "
            f"fit-epoch speed {ef / et:.2f}x"
        )
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
