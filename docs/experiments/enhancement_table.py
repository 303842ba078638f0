"""Print the README's enhancement table from a folder of `deepalpha backtest --out` folders.

Usage: python docs/experiments/enhancement_table.py GRID_DIR
Each sub-folder's metrics.json gives one row: excess / IR against the total-return index (the
primary benchmark), the price index and the cap-weighted member proxy, TE, turnover, costs and
the excess at 0 and 20 bps slippage per side (same trades re-costed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main(grid: Path) -> None:
    print(
        "| run | excess /yr vs TR index | IR | vs price index | vs members (TR) | IR vs members "
        "| TE | excess MDD | turnover /yr | costs /yr | excess at 0 / 20 bps |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in sorted(p for p in grid.iterdir() if (p / "metrics.json").is_file()):
        m = json.loads((d / "metrics.json").read_text())["metrics"]
        print(
            f"| {d.name} | {pct(m['tr_excess_return'])} | {m['tr_information_ratio']:.2f} "
            f"| {pct(m['price_excess_return'])} | {pct(m['proxy_excess_return'])} "
            f"| {m['proxy_information_ratio']:.2f} | {pct(m['tracking_error'])} "
            f"| {pct(m['excess_max_drawdown'])} | {m['turnover_annual']:.2f} "
            f"| {pct(m['cost_annual'])} | {pct(m['excess_return_slip0bps'])} / "
            f"{pct(m['excess_return_slip20bps'])} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
