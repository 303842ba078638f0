"""`deepalpha risk explain`: read a weights file and a benchmark, decompose the portfolio's risk.

Inputs
------
- weights: a backtest's ``weights.parquet`` (or the backtest folder holding it), or any CSV /
  Parquet with columns ``asset, weight`` and optionally ``date`` (one portfolio per date; the
  date asked for, default the file's last). Codes in any of the styles of `deepalpha.data.codes`.
- benchmark: ``csi300 | csi500 | csi800 | csi1000`` -> the cap-weighted member proxy on that date
  (`deepalpha.portfolio.benchmark.cap_weights` of the data's point-in-time members with a price,
  as the backtest's optimiser; the data has no index weights), read from the data folder the
  risk model was built from (or ``data``); or a CSV / Parquet of ``asset, weight`` [, ``date``].

Every defect of the input is a `DataError` / `ConfigError` naming the file, column and date.
Nothing here imports torch: the risk model is read one date at a time (`read_snapshot`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import ConfigError, DataError
from deepalpha.risk.decompose import Decomposition, Snapshot, decompose_snapshot, read_snapshot

__all__ = ["Explanation", "benchmark_weights", "explain", "read_weights", "to_dict"]

INDICES = ("csi300", "csi500", "csi800", "csi1000")


def _read_table(path: Path, what: str) -> pl.DataFrame:
    if path.is_dir():
        if (path / "weights.parquet").is_file() and what == "weights":
            path = path / "weights.parquet"
        else:
            raise DataError(f"{what}: a folder without weights.parquet", file=path)
    if not path.is_file():
        raise DataError(f"{what} file not found", file=path)
    suf = path.suffix.lower()
    try:
        if suf == ".parquet":
            return pl.read_parquet(path)
        if suf in (".csv", ".txt"):
            return pl.read_csv(path, try_parse_dates=True, infer_schema_length=10_000)
    except (OSError, pl.exceptions.PolarsError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read the {what} file ({msg})", file=path) from None
    raise DataError(f"{what} file must be .parquet or .csv, got {suf or 'no suffix'!r}", file=path)


def _pick_date(df: pl.DataFrame, date: np.datetime64 | None, path: Path, what: str) -> Any:
    if "date" not in df.columns:
        if date is None:
            raise DataError(f"the {what} file has no 'date' column: give --date", file=path)
        return df, date
    col = df["date"]
    if col.dtype == pl.Utf8:
        try:
            col = col.str.strptime(pl.Date, "%Y-%m-%d")
        except pl.exceptions.PolarsError:
            raise DataError(
                f"column 'date' of the {what} file is not YYYY-MM-DD", file=path, field="date"
            ) from None
    elif col.dtype != pl.Date:
        try:
            col = col.cast(pl.Date)
        except pl.exceptions.PolarsError:
            raise DataError(
                f"column 'date' of the {what} file is not a date ({col.dtype})",
                file=path,
                field="date",
            ) from None
    if col.null_count():
        raise DataError(
            f"{col.null_count()} empty date(s) in the {what} file", file=path, field="date"
        )
    df = df.with_columns(col.alias("date"))
    days = np.unique(df["date"].to_numpy().astype("datetime64[D]"))
    if days.size == 0:
        raise DataError(f"the {what} file is empty", file=path)
    if date is None:
        date = days[-1]
    elif date not in days:
        i = int(np.searchsorted(days, date))
        near = ", ".join(str(d) for d in days[max(i - 1, 0) : i + 1])
        raise DataError(
            f"no {what} on {date} in the file ({days.size} dates {days[0]}..{days[-1]}; "
            f"nearest {near})",
            file=path,
            date=date,
        )
    return df.filter(pl.col("date") == date), date


def read_weights(
    path: str | Path, date: Any = None, *, what: str = "weights"
) -> tuple[np.datetime64, np.ndarray, np.ndarray]:
    """``(date, assets str[n], weights float64[n])`` of one date of a weights file (see the
    module docstring). Zero weights are dropped; duplicates, non-finite weights, bad codes and
    missing columns are errors naming the file."""
    from deepalpha.data.codes import normalize_codes

    p = Path(path)
    df = _read_table(p, what)
    if p.is_dir():
        p = p / "weights.parquet"
    need = [c for c in ("asset", "weight") if c not in df.columns]
    if need:
        raise DataError(
            f"the {what} file lacks column(s) {', '.join(need)} (has: {', '.join(df.columns)})",
            file=p,
        )
    d = None if date is None else np.datetime64(date, "D")
    df, day = _pick_date(df, d, p, what)
    if df.height == 0:
        raise DataError(f"no {what} rows on {day}", file=p, date=day)
    try:
        w = df["weight"].cast(pl.Float64).to_numpy()
    except pl.exceptions.PolarsError:
        raise DataError(
            f"column 'weight' of the {what} file is not numeric", file=p, field="weight"
        ) from None
    bad = ~np.isfinite(w)
    if bad.any():
        a0 = str(df["asset"][int(np.nonzero(bad)[0][0])])
        raise DataError(
            f"{int(bad.sum())} non-finite weight(s) (first: {a0})", file=p, field="weight",
            date=day,
        )  # fmt: skip
    if df["asset"].null_count():
        raise DataError("empty asset code(s)", file=p, field="asset", date=day)
    assets = normalize_codes(df["asset"].cast(pl.Utf8).to_list(), file=str(p))
    u, cnt = np.unique(assets, return_counts=True)
    if (cnt > 1).any():
        raise DataError(
            f"asset(s) listed twice on {day}: {', '.join(u[cnt > 1][:5].tolist())}",
            file=p,
            field="asset",
            date=day,
        )
    keep = w != 0
    if not keep.any():
        raise DataError(f"every {what} on {day} is zero", file=p, field="weight", date=day)
    return np.datetime64(day, "D"), assets[keep], w[keep]


def benchmark_weights(
    spec: str, date: np.datetime64, data: str | Path | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(assets, weights, label)`` of the benchmark ``spec`` on ``date`` (see the module
    docstring); an index needs the data folder."""
    key = spec.lower()
    if key not in INDICES:
        p = Path(spec)
        if not p.exists():
            raise ConfigError(
                f"--benchmark must be one of {', '.join(INDICES)} or a weights file, got {spec!r}"
            )
        _, a, w = read_weights(p, date, what="benchmark")
        return a, w, f"weights from {p}"
    if data is None:
        raise ConfigError(
            "the benchmark needs the data folder: give --data (the risk model does not say "
            "where it was built from)"
        )
    from deepalpha.data.cn import load_cn
    from deepalpha.portfolio.benchmark import cap_weights

    panel = load_cn(
        data, fields=["close", "mktcap"], start=date - np.timedelta64(20, "D"), end=date
    )
    if key not in panel.masks:
        raise DataError(f"the data has no membership for {key}", file=data)
    i = int(np.searchsorted(panel.dates, date, side="right")) - 1
    if i < 0:
        raise DataError(f"the data has no trading day on or before {date}", file=data, date=date)
    close = panel.field("close")[i]
    has_px = np.isfinite(close) & (close > 0)
    mem = panel.mask(key)[i] & has_px
    w = cap_weights(np.where(has_px, panel.field("mktcap")[i], np.nan), mem)
    if w.sum() <= 0:
        raise DataError(
            f"{key} has no member with a price and a cap on {date}", file=data, date=date
        )
    nz = np.nonzero(w > 0)[0]
    label = f"{key} member proxy (cap-weighted, {nz.size} members on {panel.dates[i]})"
    return np.asarray(panel.assets).astype(str)[nz], w[nz], label


@dataclass
class Explanation:
    """Everything `deepalpha risk explain` prints: the snapshot, the decomposition, the aligned
    weights (``w``, ``b`` over ``snap.assets``), the benchmark's label and the timings."""

    snap: Snapshot
    dec: Decomposition
    w: np.ndarray
    b: np.ndarray | None
    benchmark: str | None
    weights_file: str
    seconds: dict[str, float] = field(default_factory=dict)


def _data_of(risk_dir: Path) -> str | None:
    try:
        meta = json.loads((risk_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    d = meta.get("data") or (meta.get("panel") or {}).get("path")
    return str(d) if d else None


def explain(
    weights: str | Path,
    risk_dir: str | Path,
    *,
    benchmark: str | None = None,
    date: Any = None,
    data: str | Path | None = None,
) -> Explanation:
    """Read the weights of ``date`` (default the file's last), the benchmark and the risk model's
    snapshot of that date, and decompose (see `deepalpha.risk.decompose`)."""
    t0 = time.perf_counter()
    day, assets, w = read_weights(weights, date)
    t1 = time.perf_counter()
    b_assets = b_w = None
    label = None
    if benchmark:
        src = data if data is not None else _data_of(Path(risk_dir))
        b_assets, b_w, label = benchmark_weights(benchmark, day, src)
    t2 = time.perf_counter()
    universe = assets if b_assets is None else np.union1d(assets, b_assets)
    read_snapshot(risk_dir, day, universe[:0])  # a bad folder or date fails before the codes
    snap = read_snapshot(risk_dir, day)  # all the model's assets: the market for beta
    pos = {a: i for i, a in enumerate(snap.assets.tolist())}
    for codes, src in ((assets, str(weights)), (b_assets, benchmark)):
        unknown = [] if codes is None else [a for a in codes.tolist() if a not in pos]
        if unknown:
            raise DataError(
                f"{len(unknown)} asset(s) are not in the risk model: {', '.join(unknown[:10])}"
                + (" ..." if len(unknown) > 10 else ""),
                file=src,
            )
    wv = np.zeros(snap.assets.size)
    wv[[pos[a] for a in assets.tolist()]] = w
    bv = None
    if b_assets is not None:
        bv = np.zeros(snap.assets.size)
        bv[[pos[a] for a in b_assets.tolist()]] = b_w
    t3 = time.perf_counter()
    dec = decompose_snapshot(snap, wv, bv)
    t4 = time.perf_counter()
    return Explanation(
        snap=snap, dec=dec, w=wv, b=bv, benchmark=label, weights_file=str(weights),
        seconds={"read weights": t1 - t0, "benchmark": t2 - t1, "risk model": t3 - t2,
                 "decompose": t4 - t3, "total": t4 - t0},
    )  # fmt: skip


def to_dict(ex: Explanation, top: int = 10) -> dict[str, Any]:
    """A JSON-ready summary: headline risks, groups, every factor and the ``top`` assets by
    absolute contribution to the target risk (active with a benchmark, else total)."""
    from deepalpha.risk.decompose import group_table

    s, d = ex.snap, ex.dec
    t = d.target
    b = ex.b if ex.b is not None else np.zeros_like(ex.w)
    xb = s.X.T @ b
    order = np.argsort(-np.abs(t.asset_contrib))[:top]
    return {
        "date": str(s.date),
        "exposure_date": str(s.exposure_date),
        "covariance_date": str(s.cov_date),
        "weights_file": ex.weights_file,
        "benchmark": ex.benchmark,
        "n_holdings": int((ex.w != 0).sum()),
        "weight_sum": float(ex.w.sum()),
        "filled_assets": s.assets[s.filled & ((ex.w != 0) | (b != 0))].tolist(),
        "total_risk": d.portfolio.risk,
        "factor_risk": d.portfolio.factor_risk,
        "specific_risk": d.portfolio.specific_risk,
        "active_risk": None if d.active is None else d.active.risk,
        "active_factor_risk": None if d.active is None else d.active.factor_risk,
        "active_specific_risk": None if d.active is None else d.active.specific_risk,
        "benchmark_risk": None if d.benchmark is None else d.benchmark.risk,
        "beta": d.beta,
        "beta_on": d.beta_on,
        "target": "active" if d.active is not None else "total",
        "groups": group_table(d),
        "factors": [
            {"factor": n, "kind": str(s.kinds[k]), "portfolio": float(d.portfolio.exposures[k]),
             "benchmark": float(xb[k]), "active": float(t.exposures[k]) if d.active else None,
             "marginal": float(t.factor_marginal[k]), "contrib": float(t.factor_contrib[k]),
             "pct": float(t.factor_pct[k])}
            for k, n in enumerate(s.factor_names)
        ],
        "top_assets": [
            {"asset": str(s.assets[i]), "weight": float(ex.w[i]), "benchmark": float(b[i]),
             "marginal": float(t.asset_marginal[i]), "contrib": float(t.asset_contrib[i]),
             "pct": float(t.asset_pct[i])}
            for i in order
        ],
        "seconds": ex.seconds,
    }  # fmt: skip
