"""Validation RankIC by epoch of a rolling run's jobs (the evidence behind a training budget).

Reads ``RUN/rolling/jobs/<model>/w<window>/<retrain>/s<seed>/train_log.jsonl`` and prints, per
model, a markdown table: one row per job (validation RankIC after each epoch, the best epoch and
the job's seconds), then the mean over jobs at each epoch (over the jobs that reached it) and how
often each epoch was the best. Only validation years are read: nothing here looks at test data.

Usage: python docs/experiments/validation_curves.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def jobs(run: Path) -> list[dict]:
    out = []
    for log in sorted(run.glob("rolling/jobs/*/*/*/*/train_log.jsonl")):
        model, window, retrain, seed = log.parts[-5:-1]
        recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        meta = json.loads((log.parent / "metrics.json").read_text())
        out.append(
            {
                "model": model,
                "job": f"{window}/{retrain}/{seed}",
                "curve": [r.get("valid_rank_ic") for r in recs],
                "best": meta.get("best_epoch"),
                "seconds": meta.get("seconds"),
            }
        )
    return out


def table(model: str, rows: list[dict]) -> str:
    n = max(len(r["curve"]) for r in rows)
    head = "| job | " + " | ".join(f"ep {k + 1}" for k in range(n)) + " | best | s |"
    lines = [head, "|---|" + "---:|" * (n + 2)]
    for r in rows:
        cells = [f"{v:.4f}" if v is not None else "-" for v in r["curve"]]
        cells += [""] * (n - len(cells))
        lines.append(
            f"| {r['job']} | " + " | ".join(cells) + f" | {r['best']} | {r['seconds']:.0f} |"
        )
    mean, best = [], defaultdict(int)
    for k in range(n):
        vals = [r["curve"][k] for r in rows if len(r["curve"]) > k and r["curve"][k] is not None]
        mean.append(f"{sum(vals) / len(vals):.4f} ({len(vals)})" if vals else "-")
    for r in rows:
        best[r["best"]] += 1
    lines.append("| mean (jobs) | " + " | ".join(mean) + " | | |")
    lines.append(
        "| best epoch | " + " | ".join(str(best.get(k + 1, 0)) for k in range(n)) + " | | |"
    )
    return f"{model}\n\n" + "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for run in map(Path, argv):
        rows = jobs(run)
        if not rows:
            print(f"{run}: no finished jobs")
            continue
        by: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by[r["model"]].append(r)
        print(f"## {run.name}: validation RankIC by epoch\n")
        for model, rs in by.items():
            print(table(model, rs) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
