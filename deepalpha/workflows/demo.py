"""`deepalpha demo`: a synthetic A-share market and small versions of both research systems,
end to end, with the oracle (planted-signal) RankIC printed beside every model's.

The configs are the YAML files ``configs/demo_barra.yaml`` and ``configs/demo_decompgrn.yaml``
shipped inside the package (``deepalpha/workflows/demo_configs``); both runs share one market.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deepalpha.config import read_yaml
from deepalpha.progress import make_reporter
from deepalpha.workflows.config import DataSpec, SynthSpec, parse_config
from deepalpha.workflows.data import resolve_data
from deepalpha.workflows.run import print_tables, run_config, wide_console

DEMO_CONFIGS = Path(__file__).with_name("demo_configs")


def demo_configs(market: Path, quick: bool = False) -> list[Any]:
    """The two demo configs pointed at one market (``quick``: the CI-sized variant)."""
    out = []
    for name in ("demo_barra.yaml", "demo_decompgrn.yaml"):
        over = {"data.path": str(market)}
        if quick:
            over.update(read_yaml(DEMO_CONFIGS / "quick.yaml").get(name.split(".")[0], {}))
        data = read_yaml(DEMO_CONFIGS / name, over)
        out.append(parse_config(data, str(DEMO_CONFIGS / name)))
    return out


def run_demo(
    out: Path, stocks: int = 400, seed: int = 7, *, quick: bool = False, progress: bool = True
) -> list[dict[str, Any]]:
    """Write the market (once), run both systems, print their tables; returns both metrics.
    ``progress``: the live display (plain lines when stdout is not a terminal); False: none."""
    console = wide_console()
    t0 = time.perf_counter()
    out = Path(out)
    console.print(f"[bold]deepalpha demo[/]: synthetic market ({stocks} stocks) under {out}")
    spec = DataSpec(synthetic=SynthSpec(stocks=stocks, seed=seed))  # default calendar
    market = resolve_data(spec, out)  # written once to out/market
    results = []
    rep = make_reporter(quiet=not progress, console=console)
    try:
        for cfg in demo_configs(market, quick):
            m = run_config(cfg, out / cfg.name, console=console, reporter=rep)
            results.append(m)
    finally:
        rep.close()
    for m in results:
        print_tables(m, console)
    console.print(
        f"[bold]demo finished[/] in {time.perf_counter() - t0:.0f} s; runs under {out}. "
        "'oracle (truth)' is the planted signal (truth/), the yardstick for every model."
    )
    return results
