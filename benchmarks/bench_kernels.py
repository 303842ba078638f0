"""Micro-benchmark: the fused C kernels of ``deepalpha.models.fused`` vs their eager torch ops.

    python benchmarks/bench_kernels.py [--batch 4096] [--streams 4] [--dim 64] [--threads 2]
                                       [--rounds 50] [--clock wall|cpu]

For each op -- Sinkhorn-Knopp (t_max = 20) on ``[b, n, n]``, the pre-mix ``sum_s H_pre x`` and
the post-mix ``H_res x + H_post^T y`` -- times the forward alone and forward + backward
(``torch.autograd.grad`` w.r.t. every input), fused and eager, round-robin (one call of each per
round, after one warm-up call each), and prints the median milliseconds and the eager / fused
ratio. The load average is printed before and after: timings taken while other jobs share the
machine are noisy.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable

import torch

from deepalpha.models import fused
from deepalpha.models.kernels import library
from deepalpha.models.sinkhorn import _prepare

print = functools.partial(print, flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}


def race(
    calls: dict[str, Callable[[], object]], rounds: int, clock: Callable[[], float]
) -> dict[str, float]:
    """Median seconds per call: one warm-up call each, then ``rounds`` round-robin rounds."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for fn in calls.values():
        fn()
    for _ in range(rounds):
        for k, fn in calls.items():
            t0 = clock()
            fn()
            times[k].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def fwd_bwd(
    op: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...]
) -> Callable[[], object]:
    """One forward and a backward to every input (a fixed random output gradient)."""
    grad = torch.randn_like(op(*inputs))
    return lambda: torch.autograd.grad(op(*inputs), inputs, grad)


def forward(
    op: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...]
) -> Callable[[], object]:
    def call() -> object:
        with torch.no_grad():
            return op(*inputs)

    return call


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument(
        "--clock",
        choices=CLOCK,
        default="wall",
        help="wall-clock seconds, or this process's CPU seconds (with --threads 1 a measure of the "
        "work done that a busy machine disturbs less)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, n, d = args.batch, args.streams, args.dim
    if library() is None:
        raise SystemExit("fused kernels unavailable (DEEPALPHA_KERNELS=0 or no C compiler)")

    def leaf(*shape: int, positive: bool = False) -> torch.Tensor:
        t = torch.rand(*shape) if positive else torch.randn(*shape)
        return t.requires_grad_()

    logits = (3 * torch.randn(b, n, n) + 3 * torch.eye(n)).requires_grad_()
    x, y = leaf(b, n, d), leaf(b, d)
    h_pre, h_post = leaf(b, n, positive=True), leaf(b, n, positive=True)
    h_res = fused.sinkhorn_fused(_prepare(logits)).detach().requires_grad_()
    ops = {
        "sinkhorn": (fused.sinkhorn_fused, fused.sinkhorn_eager, (logits,)),
        "pre_mix": (fused.pre_mix, fused.pre_mix_eager, (x, h_pre)),
        "post_mix": (fused.post_mix, fused.post_mix_eager, (x, h_res, h_post, y)),
    }
    print(
        f"b = {b}, n = {n}, d = {d}, {torch.get_num_threads()} threads, {args.rounds} rounds, "
        f"{args.clock} clock"
    )
    print(f"before: {load()}")
    calls: dict[str, Callable[[], object]] = {}
    for name, (fast, slow, inputs) in ops.items():
        for mode, wrap in (("fwd", forward), ("fwd+bwd", fwd_bwd)):
            calls[f"{name} {mode} fused"] = wrap(fast, inputs)
            calls[f"{name} {mode} eager"] = wrap(slow, inputs)
    med = race(calls, args.rounds, CLOCK[args.clock])
    print(f"{'op':<20}{'fused ms':>10}{'eager ms':>10}{'eager/fused':>13}")
    for name in ops:
        for mode in ("fwd", "fwd+bwd"):
            f, e = med[f"{name} {mode} fused"], med[f"{name} {mode} eager"]
            print(f"{name + ' ' + mode:<20}{1e3 * f:>10.3f}{1e3 * e:>10.3f}{e / f:>12.2f}x")
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
