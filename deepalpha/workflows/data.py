"""Data plumbing shared by the workflows: resolve the data path (writing the synthetic market
when asked), load the panel, map industries, read the synthetic truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepalpha.data.cn import load_cn
from deepalpha.data.panel import Panel
from deepalpha.data.predictions import long_to_dense
from deepalpha.data.stockinfo import load_stock_info
from deepalpha.errors import ConfigError
from deepalpha.guards import check_span
from deepalpha.risk.industries import map_industries
from deepalpha.workflows.config import DataSpec


def resolve_data(spec: DataSpec, run_dir: Path, override: str | Path | None = None) -> Path:
    """The folder to read: ``override``, ``spec.path`` (our layout or a Qlib provider folder),
    or a synthetic market written (once) to ``run_dir/market`` when the path is ``synthetic``."""
    path = str(override) if override is not None else spec.path
    if path == "synthetic":
        out = Path(run_dir) / "market"
        if not (out / "prices" / "calendars" / "day.txt").is_file():
            from deepalpha.data.synth import write_market

            s = spec.synthetic
            write_market(out, stocks=s.stocks, start=str(s.start), end=str(s.end), seed=s.seed)
        return out
    from deepalpha.data.layout import detect_layout
    from deepalpha.errors import DataError

    try:  # the deepalpha layout or a plain Qlib provider folder (deepalpha.data.layout)
        return detect_layout(path).root
    except DataError as e:
        raise ConfigError(
            f"data.path: {path} is not a folder in the CN layout or a Qlib provider folder: "
            f"{e.message}"
        ) from None


def load_panel(path: Path, spec: DataSpec, fields: list[str] | None = None) -> Panel:
    """`load_cn` with the run's date bounds and cache setting.

    The span is checked against the calendar first (`deepalpha.guards.check_span`): ``start``
    after ``end`` is a `ConfigError`, a span with too few trading days a `DataError` naming the
    calendar file and its range.
    """
    from deepalpha.data.qlib_bin import read_calendar

    root = Path(path)  # our layout keeps the calendar under prices/, a Qlib folder at its root
    cal = root / "prices" if (root / "prices" / "calendars" / "day.txt").is_file() else root
    check_span(read_calendar(cal), spec.start, spec.end, file=cal / "calendars" / "day.txt")
    return load_cn(
        path,
        fields=fields,
        start=spec.start,
        end=spec.end,
        cache=spec.cache,
        all_universe=spec.all_universe,
    )


def panel_industries(path: Path, panel: Panel) -> np.ndarray:
    """Industry group key per panel asset (``""`` where the stock has no industry record)."""
    info = load_stock_info(path)
    names = dict(zip(info["asset"].to_list(), info["industry"].to_list(), strict=True))
    csrc = dict(zip(info["asset"].to_list(), info["csrc"].to_list(), strict=True))
    assets = [str(a) for a in panel.assets]
    known = [a for a in assets if names.get(a) or csrc.get(a)]
    keys = map_industries(
        [names.get(a) for a in known], [csrc.get(a) for a in known], file=str(path / "industry")
    )
    out = np.full(len(assets), "", dtype=object)
    pos = {a: i for i, a in enumerate(assets)}
    for a, k in zip(known, keys, strict=True):
        out[pos[a]] = k
    return out


def truth_signal(path: Path, name: str, dates: np.ndarray, assets: np.ndarray) -> np.ndarray | None:
    """Dense ``float64[T, N]`` of a planted signal in ``truth/<name>.parquet`` (column ``alpha``)
    on the given grid, or None when the data has no truth (real data)."""
    f = Path(path) / "truth" / f"{name}.parquet"
    if not f.is_file():
        return None
    df = pl.read_parquet(f).select(
        pl.col("date").cast(pl.Date), pl.col("asset").cast(pl.Utf8), pl.col("alpha").alias("score")
    )
    dense, _, _ = long_to_dense(df, dates, assets, strict=False)
    return dense


def data_summary(path: Path, panel: Panel) -> dict[str, Any]:
    """What a report states about the data (with its caveats)."""
    synthetic = (Path(path) / "truth").is_dir()
    caveats = panel.meta.get("caveats", [])
    kind = "Qlib provider folder" if panel.meta.get("layout") == "qlib" else "CN layout"
    if synthetic:
        kind = "synthetic market (deepalpha data synth)"
    return {
        "path": str(path),
        "kind": kind,
        "first_date": str(panel.dates[0]),
        "last_date": str(panel.dates[-1]),
        "days": int(panel.shape[0]),
        "stocks": int(panel.shape[1]),
        "caveats": list(caveats) if isinstance(caveats, list | tuple) else [str(caveats)],
    }
