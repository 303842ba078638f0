"""Prediction files and interop formats.

Our interchange form is a long Polars frame ``date (pl.Date), asset (str, canonical SH600000),
score (f64)``, one row per (date, asset), sorted by date then asset. The core works on dense
``float[T, N]`` arrays; `long_to_dense` / `dense_to_long` convert between the two.

Formats
-------
- Parquet: columns ``date, asset, score`` (`write_parquet`, `read_parquet`).
- Qlib prediction frame (what ``pred.pkl`` holds and Qlib's ``SignalRecord`` / backtest read):
  a pandas DataFrame indexed by a MultiIndex ``(datetime, instrument)`` with a ``score`` column,
  pickled (`to_qlib_frame`, `write_qlib_pickle`, `read_qlib_pickle`). Instruments are written as
  canonical upper-case codes (``SH600000``), the form Qlib's CN data uses.
- alphalens factor: a pandas Series indexed by a MultiIndex ``(date, asset)`` of Timestamps and
  codes, named ``factor`` (`to_alphalens_factor`, `from_alphalens_factor`).

pandas is imported lazily, only by the interop functions.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from deepalpha.data.codes import normalize_codes
from deepalpha.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SCHEMA = {"date": pl.Date, "asset": pl.String, "score": pl.Float64}


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover
        raise DataError("pandas is needed for the Qlib/alphalens formats") from e
    return pd


def _check_long(
    df: pl.DataFrame, *, file: str | Path | None = None, column: str = "score"
) -> pl.DataFrame:
    """Validate and normalise a long prediction frame -> ``date, asset, score`` sorted."""
    for c in ("date", "asset", column):
        if c not in df.columns:
            raise DataError(
                f"prediction frame lacks column {c!r}; has {df.columns}", file=file, field=c
            )
    try:
        out = df.select(
            pl.col("date").cast(pl.Date),
            pl.col("asset").cast(pl.String),
            pl.col(column).cast(pl.Float64).alias("score"),
        )
    except pl.exceptions.PolarsError as e:
        raise DataError(f"cannot read prediction columns: {e}", file=file) from None
    if out["date"].null_count():
        raise DataError("null date in predictions", file=file, field="date")
    if out["asset"].null_count():
        raise DataError("null asset in predictions", file=file, field="asset")
    codes = out["asset"].unique()
    canon = normalize_codes(codes.to_list(), file=None if file is None else str(file))
    if (canon != codes.to_numpy().astype(str)).any():
        mapping = dict(zip(codes.to_list(), canon.tolist(), strict=True))
        out = out.with_columns(pl.col("asset").replace_strict(mapping))
    dup = out.select(["date", "asset"]).is_duplicated()
    if dup.any():
        row = out.filter(dup).row(0, named=True)
        raise DataError(
            "duplicate (date, asset) prediction", file=file, code=row["asset"], date=row["date"]
        )
    return out.sort(["date", "asset"])


def dense_to_long(
    scores: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    mask: np.ndarray | None = None,
) -> pl.DataFrame:
    """``float[T, N]`` scores -> long ``date, asset, score`` frame (NaN and ``~mask`` dropped)."""
    scores = np.asarray(scores)
    T, N = len(dates), len(assets)
    if scores.shape != (T, N):
        raise DataError(f"scores shape {list(scores.shape)} != [{T} dates, {N} assets]")
    keep = np.isfinite(scores)
    if mask is not None:
        keep &= mask
    ti, ni = np.nonzero(keep)
    return pl.DataFrame(
        {
            "date": np.asarray(dates, dtype="datetime64[D]")[ti],
            "asset": np.asarray(assets).astype(str)[ni],
            "score": scores[ti, ni].astype(np.float64),
        },
        schema=SCHEMA,
    ).sort(["date", "asset"])


def long_to_dense(
    df: pl.DataFrame,
    dates: np.ndarray | None = None,
    assets: np.ndarray | None = None,
    *,
    column: str = "score",
    strict: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long frame -> ``(float64[T, N], dates datetime64[D][T], assets str[N])``.

    ``dates`` / ``assets`` default to the sorted unique values in the frame. Given explicitly
    (e.g. a Panel's), rows outside them raise `DataError` when ``strict`` and are dropped
    otherwise. Cells without a row are NaN.
    """
    df = _check_long(df, column=column)
    d = df["date"].to_numpy().astype("datetime64[D]")
    a = df["asset"].to_numpy().astype(str)
    ud = np.unique(d) if dates is None else np.asarray(dates, dtype="datetime64[D]")
    ua = np.unique(a) if assets is None else np.asarray(assets).astype(str)
    if len(ud) > 1 and (np.diff(ud.astype(np.int64)) <= 0).any():
        raise DataError("dates must be sorted and unique")
    a_order = np.argsort(ua, kind="stable")
    ti = np.searchsorted(ud, d).clip(0, max(len(ud) - 1, 0))
    pos = np.searchsorted(ua[a_order], a).clip(0, max(len(ua) - 1, 0))
    ni = a_order[pos] if len(ua) else pos
    ok = (ud[ti] == d) & (ua[ni] == a) if len(ud) and len(ua) else np.zeros(len(d), bool)
    if not ok.all():
        bad = int(np.argmin(ok))
        if strict:
            what = "date" if not (len(ud) and ud[ti[bad]] == d[bad]) else "asset"
            raise DataError(f"prediction {what} not in the target grid", code=a[bad], date=d[bad])
    out = np.full((len(ud), len(ua)), np.nan)
    s = df["score"].to_numpy()
    out[ti[ok], ni[ok]] = s[ok]
    return out, ud, ua


# ------------------------------------------------------------------------ parquet
def write_parquet(df: pl.DataFrame, path: str | Path) -> Path:
    """Write ``date, asset, score`` to Parquet atomically (temp file + rename)."""
    path = Path(path)
    out = _check_long(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    out.write_parquet(tmp)
    os.replace(tmp, path)
    return path


def read_parquet(path: str | Path, column: str = "score") -> pl.DataFrame:
    """Read a Parquet prediction file -> ``date, asset, score`` (validated, sorted)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("missing prediction file", file=path)
    try:
        df = pl.read_parquet(path)
    except Exception as e:
        raise DataError(f"unreadable Parquet: {e}", file=path) from None
    return _check_long(df, file=path, column=column)


# --------------------------------------------------------------------------- qlib
def to_qlib_frame(df: pl.DataFrame) -> pd.DataFrame:
    """Long frame -> Qlib prediction DataFrame (MultiIndex ``datetime, instrument``; ``score``)."""
    pd = _pandas()
    df = _check_long(df)
    idx = pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex(df["date"].to_numpy().astype("datetime64[ns]")),
            pd.Index(df["asset"].to_list(), dtype=object),
        ],
        names=["datetime", "instrument"],
    )
    return pd.DataFrame({"score": df["score"].to_numpy()}, index=idx)


def from_qlib_frame(frame: Any, *, file: str | Path | None = None) -> pl.DataFrame:
    """Qlib prediction DataFrame (or Series) -> long ``date, asset, score``.

    Accepts either index order (``datetime, instrument`` or ``instrument, datetime``), and a
    single unnamed column when ``score`` is absent.
    """
    pd = _pandas()
    if isinstance(frame, pd.Series):
        frame = frame.to_frame("score")
    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.MultiIndex):
        raise DataError("not a Qlib prediction frame (expected a MultiIndex DataFrame)", file=file)
    names = list(frame.index.names)
    if set(names) != {"datetime", "instrument"}:
        raise DataError(f"index levels must be datetime, instrument; got {names}", file=file)
    if "score" in frame.columns:
        col = frame["score"]
    elif frame.shape[1] == 1:
        col = frame.iloc[:, 0]
    else:
        raise DataError(f"no 'score' column; have {list(frame.columns)}", file=file, field="score")
    dt = frame.index.get_level_values("datetime")
    inst = frame.index.get_level_values("instrument")
    out = pl.DataFrame(
        {
            "date": np.asarray(pd.DatetimeIndex(dt).values).astype("datetime64[D]"),
            "asset": np.asarray(inst).astype(str),
            "score": np.asarray(col, dtype=np.float64),
        },
        schema=SCHEMA,
    )
    return _check_long(out.filter(pl.col("score").is_not_nan()), file=file)


def write_qlib_pickle(df: pl.DataFrame, path: str | Path) -> Path:
    """Pickle the Qlib prediction frame of ``df`` (atomic)."""
    path = Path(path)
    frame = to_qlib_frame(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.to_pickle(tmp)
    os.replace(tmp, path)
    return path


def read_qlib_pickle(path: str | Path) -> pl.DataFrame:
    """Read a Qlib ``pred.pkl`` -> long ``date, asset, score``. Only open trusted pickles."""
    path = Path(path)
    if not path.is_file():
        raise DataError("missing prediction file", file=path)
    pd = _pandas()
    try:
        frame = pd.read_pickle(path)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
        raise DataError(f"unreadable pickle: {e}", file=path) from None
    return from_qlib_frame(frame, file=path)


# ---------------------------------------------------------------------- alphalens
def to_alphalens_factor(df: pl.DataFrame) -> pd.Series:
    """Long frame -> alphalens factor Series (MultiIndex ``date, asset``, name ``factor``)."""
    pd = _pandas()
    df = _check_long(df)
    idx = pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex(df["date"].to_numpy().astype("datetime64[ns]")),
            pd.Index(df["asset"].to_list(), dtype=object),
        ],
        names=["date", "asset"],
    )
    return pd.Series(df["score"].to_numpy(), index=idx, name="factor")


def from_alphalens_factor(series: Any) -> pl.DataFrame:
    """alphalens factor Series (or its ``factor_data`` frame) -> long ``date, asset, score``."""
    pd = _pandas()
    if isinstance(series, pd.DataFrame):
        if "factor" not in series.columns:
            raise DataError("alphalens frame lacks a 'factor' column", field="factor")
        series = series["factor"]
    if not isinstance(series, pd.Series) or not isinstance(series.index, pd.MultiIndex):
        raise DataError("not an alphalens factor (expected a MultiIndex Series)")
    if series.index.nlevels != 2:
        raise DataError(f"alphalens factor index must have 2 levels, has {series.index.nlevels}")
    dt = pd.DatetimeIndex(series.index.get_level_values(0))
    if dt.tz is not None:
        dt = dt.tz_localize(None)
    out = pl.DataFrame(
        {
            "date": np.asarray(dt.values).astype("datetime64[D]"),
            "asset": np.asarray(series.index.get_level_values(1)).astype(str),
            "score": np.asarray(series, dtype=np.float64),
        },
        schema=SCHEMA,
    )
    return _check_long(out.filter(pl.col("score").is_not_nan()))


# ------------------------------------------------------------------------ dispatch
def write_predictions(df: pl.DataFrame, path: str | Path) -> Path:
    """Write by suffix: ``.parquet`` -> Parquet, ``.pkl`` / ``.pickle`` -> Qlib frame."""
    suf = Path(path).suffix.lower()
    if suf == ".parquet":
        return write_parquet(df, path)
    if suf in (".pkl", ".pickle"):
        return write_qlib_pickle(df, path)
    raise DataError(f"unknown prediction format {suf!r} (use .parquet or .pkl)", file=path)


def read_predictions(path: str | Path) -> pl.DataFrame:
    """Read by suffix (``.parquet`` or Qlib ``.pkl``) -> long ``date, asset, score``."""
    suf = Path(path).suffix.lower()
    if suf == ".parquet":
        return read_parquet(path)
    if suf in (".pkl", ".pickle"):
        return read_qlib_pickle(path)
    raise DataError(f"unknown prediction format {suf!r} (use .parquet or .pkl)", file=path)
