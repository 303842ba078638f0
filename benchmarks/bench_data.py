"""Data-layer benchmark: cold and cached full loads of the real CN panel, peak RSS, and synthetic
market generation (3,000 stocks x 10 years).

    python benchmarks/bench_data.py [--cn PATH] [--skip-synth]

Each measurement runs in a fresh child process so that its peak RSS is its own. Targets (issue 2,
2 CPU cores): cold load <= 15 s, cached load <= 3 s, peak RSS <= 4 GB, synth <= 60 s. Timings
taken while other jobs share the machine are noisy; the load average is printed next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CN = Path(os.environ.get("DEEPALPHA_CN_DATA", REPO.parent / "shared" / "data" / "cn"))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(kind: str, arg: str, cache_dir: str) -> None:
    """Run one measurement and print a JSON line (seconds, peak RSS in MB, shape)."""
    import numpy as np

    from deepalpha.data.cn import load_cn

    t0 = time.perf_counter()
    c0 = _cpu()
    if kind in ("cold", "cached", "fill"):
        p = load_cn(arg, cache=kind != "cold", cache_dir=cache_dir)
        # touch every value so a memory-mapped load is not measured as free
        checksum = float(np.nansum(p.data[:, -1]))
        shape = list(p.shape)
    elif kind == "synth":
        from deepalpha.data.synth import write_market

        write_market(arg, stocks=3000, start="2014-01-01", end="2023-12-31", seed=0)
        checksum, shape = 0.0, None
    else:
        raise SystemExit(f"unknown child kind {kind}")
    dt = time.perf_counter() - t0
    cpu = _cpu() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"seconds": dt, "cpu": cpu, "rss_mb": rss_mb, "shape": shape, "checksum": checksum}
        )
    )


def _run(kind: str, arg: str, cache_dir: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, arg, cache_dir]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall_with_startup"] = wall
    return out


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cn", default=str(DEFAULT_CN))
    ap.add_argument("--skip-synth", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "ARG", "CACHE"))
    a = ap.parse_args()
    if a.child:
        _child(*a.child)
        return

    print(f"cpus: {os.cpu_count()}, torch threads not used; load average: {_load()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="deepalpha-bench-") as tmp:
        cache = str(Path(tmp) / "cache")
        if (Path(a.cn) / "prices" / "calendars" / "day.txt").is_file():
            cold = _run("cold", a.cn, cache)
            rows.append(("cold load, all fields (no cache)", cold, 15.0, 4096))
            fill = _run("fill", a.cn, cache)
            rows.append(("first load + cache write", fill, None, 4096))
            cached = _run("cached", a.cn, cache)
            rows.append(("cached load (memory-mapped)", cached, 3.0, 4096))
            print(f"panel shape (T, N, F): {tuple(cold['shape'])}")
        else:
            print(f"real CN data not found at {a.cn}: load figures skipped")
        if a.skip_synth:
            print("synth: skipped (--skip-synth)")
        else:
            try:
                from deepalpha.data.synth import write_market  # noqa: F401

                syn = _run("synth", str(Path(tmp) / "synth"), cache)
                rows.append(("synth 3,000 stocks x 10 years", syn, 60.0, 4096))
            except ImportError as e:
                print(f"synth: skipped ({e})")
    print(
        f"{'measurement':<36}{'wall s':>8}{'cpu s':>7}{'target':>8}{'ratio':>7}{'peak RSS MB':>13}"
    )
    for name, r, target, _ in rows:
        ratio = f"{r['seconds'] / target:.2f}" if target else "-"
        tgt = f"{target:.0f}" if target else "-"
        print(
            f"{name:<36}{r['seconds']:>8.2f}{r['cpu']:>7.2f}{tgt:>8}{ratio:>7}{r['rss_mb']:>13.0f}"
        )
    print("(cpu s = user + sys of the measured call: the figure to trust on a busy machine)")
    print(f"(ratio = wall seconds / target; RSS target {4096} MB; load average after: {_load()})")


if __name__ == "__main__":
    main()
