"""Read long tables (Parquet or CSV: one file, a folder of files, or a glob) into one Polars
frame with canonical column names, parsed dates and canonical stock codes.

Every row keeps where it came from (``_file``, ``_row``: 1-based data row, header excluded), so
that each check can name the file, row and column of the first bad value.

Column names: Tushare's (``ts_code``, ``trade_date``, ``vol``, ``end_date``, ``con_code``,
``index_code`` ...) are recognised without a mapping (`TUSHARE_NAMES`); any other through a
user map ``{canonical: source}`` (``--map date=TradingDay,code=SecuCode``).
"""

from __future__ import annotations

import glob as _glob
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from deepalpha.data.codes import normalize_code
from deepalpha.errors import DataError

#: Tushare column -> canonical column (applied when the canonical name is not already there)
TUSHARE_NAMES = {
    "ts_code": "code",
    "trade_date": "date",
    "vol": "volume",
    "adj_factor": "factor",
    "end_date": "period_end",
    "con_code": "code",
    "index_code": "index",
    "in_date": "start",
    "out_date": "end",
}
SUFFIXES = (".parquet", ".pq", ".csv", ".txt")


def parse_map(items: Sequence[str] | str | None) -> dict[str, str]:
    """``["date=TradingDay", "code=SecuCode,close=ClosePrice"]`` -> ``{canonical: source}``.

    An item naming a ``.yaml`` / ``.yml`` file is read as a ``canonical: source`` mapping."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [items]
    out: dict[str, str] = {}
    for item in items:
        if str(item).endswith((".yaml", ".yml")):
            out.update(_yaml_map(Path(item)))
            continue
        for part in str(item).split(","):
            if not part.strip():
                continue
            k, eq, v = part.partition("=")
            if not eq or not k.strip() or not v.strip():
                raise DataError(f"--map expects canonical=source pairs, got {part!r}")
            out[k.strip()] = v.strip()
    return out


def _yaml_map(path: Path) -> dict[str, str]:
    import yaml

    if not path.is_file():
        raise DataError("mapping file not found", file=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise DataError(f"unreadable YAML: {str(e).splitlines()[0]}", file=path) from None
    if not isinstance(data, dict) or not all(isinstance(v, str | int) for v in data.values()):
        raise DataError("expected a mapping of canonical: source names", file=path)
    return {str(k): str(v) for k, v in data.items()}


def expand_sources(sources: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by ``sources``: files, folders (their Parquet/CSV files, sorted) or globs."""
    items = [sources] if isinstance(sources, str | Path) else list(sources)
    files: list[Path] = []
    for s in items:
        p = Path(s).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in SUFFIXES and q.is_file())
            if not found:
                raise DataError("folder holds no .parquet or .csv files", file=p)
            files += found
        elif p.is_file():
            files.append(p)
        else:
            found = sorted(Path(x) for x in _glob.glob(str(p)))
            if not found:
                raise DataError("no such file, folder or glob match", file=p)
            files += [q for q in found if q.is_file()]
    return list(dict.fromkeys(files))


def read_one(path: Path) -> pl.DataFrame:
    """One table; CSV cells are read as text (parsed and checked later)."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pl.read_parquet(path)
        else:
            df = pl.read_csv(path, infer_schema_length=0, encoding="utf8-lossy")
    except Exception as e:  # polars / pyarrow raise many types on malformed files
        raise DataError(f"unreadable table: {str(e).splitlines()[0]}", file=path) from None
    df = df.rename({c: c.lstrip("\ufeff").strip() for c in df.columns})
    return df.with_columns(
        pl.lit(str(path)).alias("_file"), pl.int_range(1, df.height + 1).alias("_row")
    )


def rename_columns(
    df: pl.DataFrame, mapping: Mapping[str, str], *, file: str, strict: bool = True
) -> pl.DataFrame:
    """User map first (``{canonical: source}``), then Tushare's names where the canonical name
    is free; with ``strict``, a mapped source column that is absent raises `DataError`."""
    ren: dict[str, str] = {}
    for canon, srcname in mapping.items():
        if srcname in df.columns:
            ren[srcname] = canon
        elif strict and canon not in df.columns:
            raise DataError(
                f"--map {canon}={srcname}: no column {srcname!r}; columns: {df.columns}",
                file=file,
                field=srcname,
            )
    taken = set(df.columns) - set(ren) | set(ren.values())
    for t, canon in TUSHARE_NAMES.items():
        if t in df.columns and t not in ren and canon not in taken:
            ren[t] = canon
            taken.add(canon)
    return df.rename(ren)


def read_tables(
    sources: str | Path | Sequence[str | Path],
    mapping: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
) -> pl.DataFrame:
    """All files of ``sources`` renamed to canonical columns and stacked (columns missing from
    a file are null there). Adds ``_tushare`` (bool): the file used Tushare's ``vol`` column
    (volume in lots of 100 shares, amount in 1,000 CNY); a ``vol`` named in ``mapping`` is taken
    as shares."""
    frames = []
    for f in expand_sources(sources):
        df = read_one(f)
        # Tushare's own `vol` (lots; amount in 1,000 CNY), unless the user mapped it explicitly
        mapped = set((mapping or {}).values())
        tushare = "vol" in df.columns and "volume" not in df.columns and "vol" not in mapped
        df = rename_columns(df, mapping or {}, file=str(f), strict=strict)
        frames.append(df.with_columns(pl.lit(tushare).alias("_tushare")))
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def require_columns(df: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    """`DataError` naming the first file that lacks one of ``cols``."""
    for c in cols:
        if c not in df.columns:
            f = df["_file"][0] if df.height else None
            raise DataError(
                f"{what}: missing column {c!r} (have {[x for x in df.columns if x[0] != '_']}; "
                f"map another name with --map {c}=<column>)",
                file=f,
                field=c,
            )
        nulls = df.filter(pl.col(c).is_null())
        if nulls.height:
            r = nulls.row(0, named=True)
            raise DataError(f"{what}: row {r['_row']}: empty {c!r}", file=r["_file"], field=c)


def _first_bad(df: pl.DataFrame, bad: pl.Expr, column: str, message: str) -> None:
    hit = df.filter(bad)
    if hit.height:
        r = hit.row(0, named=True)
        raise DataError(
            f"row {r['_row']}: {message} (value {r.get(column)!r}; {hit.height} row(s))",
            file=r["_file"],
            field=column,
        )


def parse_dates(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """``column`` as ``pl.Date`` from a date, datetime, ``YYYYMMDD`` integer or a
    ``YYYYMMDD`` / ``YYYY-MM-DD`` / ``YYYY/MM/DD`` string; an unparseable value raises
    `DataError` naming the file, row and column (nulls stay null)."""
    dt = df.schema[column]
    if dt == pl.Date:
        return df
    if isinstance(dt, pl.Datetime):
        return df.with_columns(pl.col(column).dt.date())
    s = pl.col(column).cast(pl.String).str.strip_chars()
    s = s.str.replace_all(r"[/.]", "-").str.slice(0, 10)
    parsed = (
        pl.when(s.str.contains(r"^\d{8}$"))
        .then(s.str.strptime(pl.Date, "%Y%m%d", strict=False))
        .otherwise(s.str.strptime(pl.Date, "%Y-%m-%d", strict=False))
    )
    out = df.with_columns(parsed.alias("_parsed"))
    _first_bad(
        out,
        pl.col("_parsed").is_null() & pl.col(column).is_not_null(),
        column,
        f"unparseable date in {column!r}",
    )
    return out.with_columns(pl.col("_parsed").alias(column)).drop("_parsed")


def parse_numbers(df: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """``columns`` as ``Float64``; a non-empty cell that is not a number raises `DataError`."""
    for c in columns:
        if c not in df.columns or df.schema[c] == pl.Float64:
            continue
        if df.schema[c].is_numeric():
            df = df.with_columns(pl.col(c).cast(pl.Float64))
            continue
        txt = pl.col(c).cast(pl.String).str.strip_chars()
        num = txt.cast(pl.Float64, strict=False)
        tmp = df.with_columns(num.alias("_num"), (txt == "").alias("_empty"))
        _first_bad(
            tmp,
            pl.col("_num").is_null() & pl.col(c).is_not_null() & ~pl.col("_empty"),
            c,
            f"not a number in {c!r}",
        )
        df = tmp.with_columns(pl.col("_num").alias(c)).drop("_num", "_empty")
    return df


def parse_codes(df: pl.DataFrame, column: str = "code") -> pl.DataFrame:
    """``column`` to canonical ``SH600000`` codes; an unknown style raises `DataError` naming
    the file and row."""
    uniq = df.select(pl.col(column).cast(pl.String).unique()).to_series().to_list()
    canon: dict[str, str] = {}
    for c in uniq:
        if c is None:
            continue
        try:
            canon[c] = normalize_code(c)
        except DataError:
            r = df.filter(pl.col(column).cast(pl.String) == c).row(0, named=True)
            raise DataError(
                f"row {r['_row']}: unknown stock-code style {c!r} (expected SH600000, 600000.SH "
                "or sh.600000)",
                file=r["_file"],
                field=column,
            ) from None
    return df.with_columns(
        pl.col(column).cast(pl.String).replace_strict(canon, default=None).alias(column)
    )


def check_unique(df: pl.DataFrame, keys: Sequence[str], what: str) -> None:
    """`DataError` naming the file and row of the first duplicated key."""
    dup = df.filter(pl.struct(list(keys)).is_duplicated())
    if dup.height:
        r = dup.sort("_file", "_row").row(0, named=True)
        key = ", ".join(f"{k}={r[k]}" for k in keys)
        raise DataError(
            f"{what}: row {r['_row']}: duplicate ({key}); {dup.height} rows share a key",
            file=r["_file"],
            field=keys[-1],
        )
