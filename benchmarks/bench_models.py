"""Train-step speed of the neural scorers, measured side by side in one process.

    python benchmarks/bench_models.py                 # CPU, 2 threads, T = 60 and 150
    python benchmarks/bench_models.py --quick         # T = 60 only, fewer repeats
    python benchmarks/bench_models.py --device cuda   # on a GPU
    python benchmarks/bench_models.py --skip-mlp --skip-scans --gru-only   # nn.GRU vs fused C GRU

Prints (a) mHC-MLP and HC-MLP vs the plain residual MLP (n = 4, C = 64, L = 6, batch 4,096;
target mHC <= 1.3x), (b) RNN-LIN, DecompGRN and the GRU on the fused C recurrence
(``deepalpha.models.gru_fused``, the ``gru`` model's default on the CPU; target >= 1.6x) vs the
2-layer nn.GRU (3,000 stocks, H = 64, T = 60 and 150; target >= 1.5x faster on CPU, >= 3x on
GPU) for every scan backend tried, and
(c) the scan backends alone with their error against a float64 reference. A train step =
forward, loss, backward, Adam step. Models are timed round-robin (one step of each per round)
and the median per model is reported, so a busy machine slows all of them alike; the load
average is printed before and after.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from deepalpha.models import build_model, cap_groups, count_parameters
from deepalpha.models.scan import lin_rnn_fused, linear_scan, scan_reference
from deepalpha.train.allocator import retain_freed_memory

print = functools.partial(print, flush=True)  # progress shows up while it runs


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step(model: nn.Module, x, y, groups) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = nn.functional.mse_loss(model(x, groups), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCK["wall"]


def race(
    steps: dict[str, Callable[[], None]], rounds: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call, one warm-up call each, then ``rounds`` round-robin rounds.

    Seconds are wall-clock, or this process's CPU time with ``--clock cpu`` (with one thread a
    load-independent measure of the work done, on a machine shared with other jobs)."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    for fn in steps.values():
        fn()
    sync(device)
    for _ in range(rounds):
        for k, fn in steps.items():
            t0 = clock()
            fn()
            sync(device)
            times[k].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def report(title: str, med: dict[str, float], base: str, params: dict[str, int]) -> None:
    print(f"\n== {title}; {load()}")
    print(f"{'model':34s} {'params':>9s} {'s/step':>9s} {'vs ' + base:>12s}")
    for k, v in med.items():
        ratio = v / med[base]
        note = f"{ratio:5.2f}x time" + (f" = {1 / ratio:4.2f}x faster" if ratio < 1 else "")
        print(f"{k:34s} {params.get(k, 0):9,d} {v:9.4f}   {note}")


def bench_mlp(device: torch.device, rounds: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 15, generator=g).to(device)
    y = torch.randn(4096, generator=g).to(device)
    models = {
        "mlp (dropout 0.1)": build_model("mlp", 15, seed=0),
        "mlp (no dropout)": build_model("mlp", 15, seed=0, dropout=0.0),
        "hc_mlp": build_model("hc_mlp", 15, seed=0),
        "mhc_mlp": build_model("mhc_mlp", 15, seed=0),
    }
    steps = {k: train_step(m.to(device), x, y, None) for k, m in models.items()}
    med = race(steps, rounds, device)
    report(
        "tabular, batch 4,096, F 15, n 4, C 64, L 6",
        med,
        "mlp (dropout 0.1)",
        {k: count_parameters(m) for k, m in models.items()},
    )
    print(
        f"-> mHC-MLP / MLP = {med['mhc_mlp'] / med['mlp (dropout 0.1)']:.2f}x (target <= 1.3x; "
        "the baseline as trained, dropout 0.1); "
        f"vs an MLP without dropout {med['mhc_mlp'] / med['mlp (no dropout)']:.2f}x"
    )


def bench_seq(
    device: torch.device, t_len: int, rounds: int, backends: list[str], gru_only: bool = False
) -> None:
    g = torch.Generator().manual_seed(0)
    n = 3000
    x = torch.randn(n, t_len, 6, generator=g).to(device)
    y = torch.randn(n, generator=g).to(device)
    groups = cap_groups(torch.randn(n, generator=g), 20).to(device)
    base = "gru (2 layers, H 64)"  # nn.GRU itself, the baseline every ratio is against
    models = {base: build_model("gru", 6, seed=0, backend="torch")}
    models["gru (fused C) [auto]"] = build_model("gru", 6, seed=0)  # C when the kernels load
    for b in [] if gru_only else backends:
        models[f"rnn_lin H 64 [{b}]"] = build_model("rnn_lin", 6, seed=0, hidden=64, backend=b)
    for b in [] if gru_only else backends:
        models[f"decompgrn H 64 [{b}]"] = build_model("decompgrn", 6, seed=0, hidden=64, backend=b)
    if not gru_only:
        models["decompgrn H 56 (default) [fused]"] = build_model("decompgrn", 6, seed=0)
        models["rnn_lin_glu H 64 [fused]"] = build_model("rnn_lin_glu", 6, seed=0)
    steps = {k: train_step(m.to(device), x, y, groups) for k, m in models.items()}
    med = race(steps, rounds, device)
    report(
        f"sequence, 3,000 stocks, T {t_len}, F 6",
        med,
        "gru (2 layers, H 64)",
        {k: count_parameters(m) for k, m in models.items()},
    )
    gru = med[base]
    best = backends[0]
    if not gru_only:
        print(
            f"-> speed-up over GRU at T {t_len}: RNN-LIN {gru / med[f'rnn_lin H 64 [{best}]']:.2f}x, "
            f"DecompGRN {gru / med[f'decompgrn H 64 [{best}]']:.2f}x [{best}] (target >= 1.5x CPU, >= 3x GPU)"
        )
    fused = models["gru (fused C) [auto]"].uses_fused(x)
    print(
        f"-> GRU (fused C) over nn.GRU at T {t_len}: {gru / med['gru (fused C) [auto]']:.2f}x "
        + ("(target >= 1.6x CPU)" if fused else "(the C kernels did not apply: nn.GRU both)")
    )


def bench_scans(device: torch.device, t_len: int, rounds: int, with_compile: bool) -> None:
    """The recurrence alone on [t, 3000, 64]: fwd + bwd, and the error vs float64."""
    g = torch.Generator().manual_seed(0)
    zf = torch.randn(t_len, 3000, 64, generator=g).to(device)
    zc = torch.randn(t_len, 3000, 64, generator=g).to(device)
    w = torch.randn(t_len, 3000, 64, generator=g).to(device)

    def gates(zf, zc):
        f = torch.sigmoid(zf)
        return f, torch.sigmoid(-zf) * nn.functional.silu(zc)

    fns: dict[str, Callable] = {
        "fused gates+scan Function": lin_rnn_fused,
        "loop scan Function": lambda zf, zc: linear_scan(*gates(zf, zc), backend="loop"),
        "chunked Hillis-Steele (K 16)": lambda zf, zc: linear_scan(
            *gates(zf, zc), backend="chunked"
        ),
        "autograd Python loop": lambda zf, zc: scan_reference(*gates(zf, zc)),
    }
    if with_compile:
        try:
            compiled = torch.compile(lambda zf, zc: scan_reference(*gates(zf, zc)))
            t0 = time.perf_counter()
            a, b = zf.clone().requires_grad_(), zc.clone().requires_grad_()
            (compiled(a, b) * w).sum().backward()
            print(
                f"(torch.compile of the Python loop: first call incl. compile {time.perf_counter() - t0:.1f} s)"
            )
            fns["torch.compile(Python loop)"] = compiled
        except Exception as e:
            print(f"(torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:120]})")

    ref = scan_reference(*gates(zf.double(), zc.double()))

    def step(fn):
        def run():
            a, b = zf.clone().requires_grad_(), zc.clone().requires_grad_()
            (fn(a, b) * w).sum().backward()

        return run

    med = race({k: step(fn) for k, fn in fns.items()}, rounds, device)
    print(f"\n== scan alone, [T {t_len}, 3000, 64], fwd + bwd (gates included)")
    base = med["autograd Python loop"]
    for k, fn in fns.items():
        with torch.no_grad():
            err = (fn(zf, zc).double() - ref).abs().max().item()
        print(
            f"{k:34s} {med[k]:9.4f} s   {base / med[k]:5.2f}x vs autograd loop   max err {err:.1e}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="T = 60 only, 3 rounds")
    ap.add_argument("--compile", action="store_true", help="also try torch.compile of the loop")
    ap.add_argument("--skip-mlp", action="store_true")
    ap.add_argument("--t", default="60,150", help="sequence lengths, comma separated")
    ap.add_argument(
        "--backends", default="fused,loop,chunked", help="scan backends; the first is the headline"
    )
    ap.add_argument("--skip-scans", action="store_true", help="skip the scan-alone section")
    ap.add_argument("--skip-seq", action="store_true", help="only the tabular section")
    ap.add_argument(
        "--gru-only", action="store_true", help="sequence section: nn.GRU vs the fused C GRU only"
    )
    ap.add_argument("--clock", choices=sorted(CLOCK), default="wall", help="cpu: process CPU time")
    ap.add_argument(
        "--release-memory",
        action="store_true",
        help="leave glibc malloc as it is (training keeps freed memory, see train/allocator.py)",
    )
    args = ap.parse_args()
    global clock
    clock = CLOCK[args.clock]  # race() reads it (--clock was parsed but never applied before)
    kept = False if args.release_memory else retain_freed_memory()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    rounds = 3 if args.quick else args.rounds
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"clock {args.clock}, "
        f"freed memory kept: {kept}; {load()}"
    )
    if device.type == "cuda":
        print(torch.cuda.get_device_name())
    if not args.skip_mlp:
        bench_mlp(device, max(rounds, 15))  # 0.1-0.2 s steps: more rounds, steadier medians
    t_lens = (60,) if args.quick else [int(t) for t in args.t.split(",")]
    for t_len in [] if args.skip_seq else t_lens:
        bench_seq(device, t_len, rounds, args.backends.split(","), args.gru_only)
        if not args.skip_scans:
            bench_scans(device, t_len, rounds, args.compile)
    print(f"\ndone; {load()}")


if __name__ == "__main__":
    main()
