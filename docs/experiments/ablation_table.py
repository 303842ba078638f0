"""One markdown table of System B ablations against a base signal (issue 16, item 4).

Each ablation is a run folder made from one config of ``configs/system_b/`` (a single model and
seed); the base is a ``RUN:KEY`` signal of another run (``system_b_s01:decompgrn/s0``). For each
ablation the table gives its RankIC on ``all``, the paired per-date difference against the base
on ``all`` and CSI 1000 (`deepalpha.workflows.paired.paired_frame`: HAC t for the overlapping
10-day labels, moving-block bootstrap 95 % CI), its RankICIR, top-decile turnover and net long-short return (``metrics.json``), the mean best
validation RankIC of its jobs (validation years only) and the summed job seconds. The base's own
row comes first.

Usage: python docs/experiments/ablation_table.py BASE_RUN:KEY BASE_RUN_DIR ABLATION_RUN_DIR...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from deepalpha.workflows.paired import paired_frame


def job_stats(run: Path, key: str) -> tuple[float, float, int]:
    """(mean best validation RankIC, summed job seconds, jobs) of ``key``'s jobs in ``run``."""
    model, _, seed = key.partition("/s")
    pattern = f"rolling/jobs/{model}/*/*/s{seed or '*'}/metrics.json"
    metas = [json.loads(p.read_text()) for p in sorted(run.glob(pattern))]
    if not metas:
        return float("nan"), float("nan"), 0
    valid = [m["best_valid_rank_ic"] for m in metas if m.get("best_valid_rank_ic") is not None]
    return sum(valid) / len(valid), sum(m["seconds"] for m in metas), len(metas)


def signal_keys(run: Path) -> list[str]:
    return list(json.loads((run / "metrics.json").read_text())["models"])


def summary(run: Path, key: str) -> dict:
    """``metrics.json`` summary of ``key`` on ``all`` (RankICIR, turnover, net long-short)."""
    return json.loads((run / "metrics.json").read_text())["models"][key]["summary"]["all"]


def extra(sm: dict) -> str:
    return f"{sm['rank_icir']:.2f} | {sm['top_turnover']:.1%} | {sm['ls_ann_net']:.1%}"


def num(x: float) -> str:
    """``+0.0046``; differences under 0.00005 in scientific notation, not as ``-0.0000``."""
    return f"{x:+.4f}" if abs(x) >= 5e-5 or x == 0 else f"{x:+.1e}"


def cell(r: dict | None, t: bool = True) -> str:
    if r is None:
        return "–"
    s = num(r["mean_diff"])
    if t:
        s += f" (t {r['t_nw']:.2f})"
    return s


def main(argv: list[str]) -> str:
    base, base_dir, abl_dirs = argv[0], Path(argv[1]), [Path(a) for a in argv[2:]]
    frame = paired_frame([base_dir, *abl_dirs], base, metrics=("rank_ic",))
    base_key = base.split(":", 1)[-1]
    head = (
        "| ablation | RankIC all | Δ all (t) [95 % CI] | Δ CSI 1000 (t) | RankICIR | top TO | "
        "L-S net | valid RankIC | job s (jobs) |"
    )
    lines = [head, "|---|" + "---:|" * 8]

    def rows(metric: str, universe: str, key: str) -> dict | None:
        f = frame.filter(
            (pl.col("metric") == metric) & (pl.col("universe") == universe) & (pl.col("key") == key)
        )
        return f.row(0, named=True) if f.height else None

    any_row = rows("rank_ic", "all", frame["key"][0]) if frame.height else None
    base_ic = any_row["mean_base"] if any_row else float("nan")
    v, s, n = job_stats(base_dir, base_key)
    lines.append(
        f"| base: {base} | {base_ic:.4f} | – | – | {extra(summary(base_dir, base_key))} | "
        f"{v:.4f} | {s:.0f} ({n}) |"
    )
    for d in abl_dirs:
        for key in signal_keys(d):
            label = key if frame.filter(pl.col("key") == key).height else f"{d.name}:{key}"
            r_all, r_1000 = rows("rank_ic", "all", label), rows("rank_ic", "csi1000", label)
            v, s, n = job_stats(d, key)
            ci = f" [{num(r_all['ci_low'])}, {num(r_all['ci_high'])}]" if r_all else ""
            ic = f"{r_all['mean']:.4f}" if r_all else "–"
            lines.append(
                f"| {d.name} | {ic} | {cell(r_all)}{ci} | {cell(r_1000)} | "
                f"{extra(summary(d, key))} | {v:.4f} | "
                f"{s:.0f} ({n}) |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    print(main(sys.argv[1:]))
