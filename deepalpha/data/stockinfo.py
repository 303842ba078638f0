"""The static stock table: name, Tushare industry, CSRC industry code, board, list date.

Sources (both optional, at least one required):

* ``industry/stock_basic.csv`` -- UTF-8 with BOM, Chinese headers (``股票代码`` Tushare code,
  ``股票名称`` name, ``行业`` industry, ``市场类型`` board, ``上市日期`` list date).
* ``industry/csrc_industry.csv`` -- baostock codes ``sh.600000``, ``industry`` like
  ``J66货币金融服务`` (letter = CSRC sector, two digits = division).

Both are snapshots (2026 for the real data), not point in time.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from deepalpha.data.codes import board_of, is_index_code, normalize_code
from deepalpha.errors import DataError

BOARDS = {"主板": "main", "创业板": "chinext", "科创板": "star", "北交所": "bj", "CDR": "main"}
_CSRC = re.compile(r"^([A-Z]\d{2})")

SCHEMA = {
    "asset": pl.String,
    "name": pl.String,
    "industry": pl.String,
    "csrc": pl.String,
    "board": pl.String,
    "list_date": pl.Date,
}


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema_length=0, encoding="utf8-lossy")
    except Exception as e:
        raise DataError(f"unreadable CSV: {e}", file=path) from None


def _need(df: pl.DataFrame, cols: list[str], path: Path) -> None:
    for c in cols:
        if c not in df.columns:
            raise DataError(f"missing column {c!r}", file=path, field=c)


def read_stock_basic(path: str | Path) -> pl.DataFrame:
    """``stock_basic.csv`` -> ``asset, name, industry, board, list_date`` (one row per code)."""
    path = Path(path)
    df = _read_csv(path)
    df = df.rename({c: c.lstrip("\ufeff") for c in df.columns})
    _need(df, ["股票代码", "股票名称", "行业", "市场类型", "上市日期"], path)
    assets = [normalize_code(c, file=str(path)) for c in df["股票代码"].to_list()]
    board = [BOARDS.get(b) if b is not None else None for b in df["市场类型"].to_list()]
    list_date = (
        df["上市日期"].str.strip_chars().str.slice(0, 10).str.replace_all("/", "-")
    ).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    out = pl.DataFrame(
        {
            "asset": assets,
            "name": df["股票名称"],
            "industry": df["行业"],
            "board": board,
            "list_date": list_date,
        },
        schema_overrides={"board": pl.String},
    )
    dup = out["asset"].is_duplicated()
    if dup.any():
        raise DataError("duplicate code row", file=path, code=out.filter(dup)["asset"][0])
    return out


def read_csrc(path: str | Path) -> pl.DataFrame:
    """``csrc_industry.csv`` -> ``asset, csrc_name, csrc`` (``csrc`` like ``J66``; null if none)."""
    path = Path(path)
    df = _read_csv(path)
    df = df.rename({c: c.lstrip("\ufeff") for c in df.columns})
    _need(df, ["code", "industry"], path)
    assets = [normalize_code(c, file=str(path)) for c in df["code"].to_list()]
    ind = df["industry"].to_list()
    csrc = [(_CSRC.match(s).group(1) if s and _CSRC.match(s) else None) for s in ind]
    name = df["code_name"] if "code_name" in df.columns else pl.Series([None] * df.height)
    out = pl.DataFrame(
        {"asset": assets, "csrc_name": name, "csrc": csrc},
        schema_overrides={"csrc": pl.String, "csrc_name": pl.String},
    )
    # A code can repeat across update dates; keep the last row.
    return out.unique("asset", keep="last", maintain_order=True)


def load_stock_info(path: str | Path) -> pl.DataFrame:
    """Stock table for the CN layout at ``path``.

    Returns a Polars frame sorted by ``asset`` with columns ``asset`` (canonical code), ``name``,
    ``industry`` (Tushare name, e.g. ``银行``), ``csrc`` (e.g. ``J66``), ``board`` (``main``,
    ``chinext``, ``star``, ``bj``; derived from the code when the file lacks it) and
    ``list_date`` (``pl.Date``, null when unknown). Index codes are excluded.
    """
    root = Path(path)
    sb_path = root / "industry" / "stock_basic.csv"
    cs_path = root / "industry" / "csrc_industry.csv"
    if not sb_path.is_file() and not cs_path.is_file():
        raise DataError(
            "missing industry files (stock_basic.csv / csrc_industry.csv)", file=sb_path
        )
    parts = []
    if sb_path.is_file():
        parts.append(read_stock_basic(sb_path))
    if cs_path.is_file():
        parts.append(read_csrc(cs_path))
    df = parts[0]
    if len(parts) == 2:
        df = df.join(parts[1], on="asset", how="full", coalesce=True)
        df = df.with_columns(pl.coalesce("name", "csrc_name").alias("name"))
    for c, t in SCHEMA.items():
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=t).alias(c))
    df = df.filter(~pl.col("asset").map_elements(is_index_code, return_dtype=pl.Boolean))
    df = df.with_columns(
        pl.when(pl.col("board").is_null())
        .then(pl.col("asset").map_elements(board_of, return_dtype=pl.String))
        .otherwise(pl.col("board"))
        .alias("board")
    )
    return df.select([pl.col(c).cast(t) for c, t in SCHEMA.items()]).sort("asset")


def list_dates_for(info: pl.DataFrame, assets: np.ndarray) -> np.ndarray:
    """List date per asset from a `load_stock_info` frame -> ``datetime64[D][N]`` (NaT unknown)."""
    m = dict(
        zip(
            info["asset"].to_list(),
            info["list_date"].cast(pl.Int32).to_list(),
            strict=True,
        )
    )
    out = np.array(
        [m.get(a) if m.get(a) is not None else -(2**31) for a in np.asarray(assets).tolist()],
        dtype=np.int64,
    )
    res = out.astype("datetime64[D]")
    res[out == -(2**31)] = np.datetime64("NaT")
    return res
