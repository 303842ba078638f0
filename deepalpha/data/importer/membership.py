"""Index membership from long tables -> point-in-time spells per universe.

Two shapes are accepted (canonical names; Tushare's ``index_code``, ``con_code``,
``trade_date``, ``in_date``, ``out_date`` are recognised):

* spells ``index, code, start, end`` (inclusive; an empty end = still a member);
* a daily (or monthly: Tushare's ``index_weight``) long table ``date, index, code``: a stock is a
  member from a snapshot date where it is listed until the day before the first later snapshot
  that omits it; at the last snapshot it stays a member to ``last_day`` (the bars' last day).

Index names: ``csi300`` / ``000300.SH`` / ``399300.SZ`` / ``hs300``, ``csi500`` / ``000905.SH``,
``csi800`` / ``000906.SH``, ``csi1000`` / ``000852.SH``, ``csiall`` / ``000985.SH`` (CSI All
Share); anything else is refused with the file and row.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from deepalpha.data.importer.read import (
    check_unique,
    parse_codes,
    parse_dates,
    require_columns,
)
from deepalpha.errors import DataError

INDEX_NAMES = {
    "csi300": ("csi300", "000300.SH", "SH000300", "399300.SZ", "hs300", "000300"),
    "csi500": ("csi500", "000905.SH", "SH000905", "399905.SZ", "zz500", "000905"),
    "csi800": ("csi800", "000906.SH", "SH000906", "000906"),
    "csi1000": ("csi1000", "000852.SH", "SH000852", "000852"),
    "csiall": ("csiall", "000985.SH", "SH000985", "000985", "all"),
}
_LOOKUP = {alias.lower(): k for k, v in INDEX_NAMES.items() for alias in v}

Spells = dict[str, list[tuple[str, np.datetime64, np.datetime64]]]


def canonical_index(df: pl.DataFrame) -> pl.DataFrame:
    """``index`` column -> our universe names (file name stem); unknown names raise."""
    names = df.select(pl.col("index").cast(pl.String).str.strip_chars().unique()).to_series()
    canon: dict[str, str] = {}
    for n in names.to_list():
        k = _LOOKUP.get(str(n).lower())
        if k is None:
            r = df.filter(pl.col("index").cast(pl.String).str.strip_chars() == n).row(0, named=True)
            raise DataError(
                f"row {r['_row']}: unknown index {n!r}; known: "
                f"{', '.join(f'{k} ({v[1]})' for k, v in INDEX_NAMES.items())}",
                file=r["_file"],
                field="index",
            )
        canon[n] = k
    return df.with_columns(
        pl.col("index").cast(pl.String).str.strip_chars().replace_strict(canon).alias("index")
    )


def membership_spells(df: pl.DataFrame, last_day: np.datetime64 | None = None) -> Spells:
    """Long membership table (either shape) -> ``{universe: [(code, start, end), ...]}``."""
    require_columns(df, ("index", "code"), "membership")
    df = canonical_index(parse_codes(df, "code"))
    if "start" in df.columns:
        require_columns(df, ("start",), "membership")
        df = parse_dates(df, "start")
        check_unique(df, ("index", "code", "start"), "membership")
        if "end" in df.columns:
            df = parse_dates(df, "end")
        else:
            df = df.with_columns(pl.lit(None, pl.Date).alias("end"))
        bad = df.filter(pl.col("end").is_not_null() & (pl.col("end") < pl.col("start")))
        if bad.height:
            r = bad.row(0, named=True)
            raise DataError(
                f"row {r['_row']}: spell ends before it starts", file=r["_file"], field="end"
            )
        far = last_day if last_day is not None else np.datetime64("2099-12-31")
        out: Spells = {}
        for idx, code, s, e in df.select("index", "code", "start", "end").iter_rows():
            end = np.datetime64(e, "D") if e is not None else far
            out.setdefault(idx, []).append((code, np.datetime64(s, "D"), end))
        return out
    if "date" not in df.columns:
        raise DataError(
            "membership: need either index, code, start[, end] (spells) or date, index, code "
            "(a daily long table)",
            file=df["_file"][0] if df.height else None,
        )
    require_columns(df, ("date",), "membership")
    df = parse_dates(df, "date")
    check_unique(df, ("index", "date", "code"), "membership")
    out = {}
    for key, sub in df.group_by("index", maintain_order=True):
        out[str(key[0])] = snapshots_to_spells(
            sub["date"].to_numpy().astype("datetime64[D]"),
            sub["code"].to_numpy().astype("U8"),
            last_day,
        )
    return out


def snapshots_to_spells(
    dates: np.ndarray, codes: np.ndarray, last_day: np.datetime64 | None = None
) -> list[tuple[str, np.datetime64, np.datetime64]]:
    """Membership snapshots (row k: ``codes[k]`` is a member on ``dates[k]``) -> inclusive
    spells. A spell runs from a snapshot where the stock appears to the day before the next
    snapshot where it does not; present at the last snapshot, it ends on ``last_day`` (default:
    the last snapshot date)."""
    snaps = np.unique(dates)
    end_all = snaps[-1] if last_day is None else max(np.datetime64(last_day, "D"), snaps[-1])
    order = np.lexsort((dates, codes))
    d, c = dates[order], codes[order]
    k = np.searchsorted(snaps, d)  # snapshot number of each row
    out = []
    i = 0
    n = len(d)
    while i < n:
        j = i
        while j + 1 < n and c[j + 1] == c[i] and k[j + 1] == k[j] + 1:
            j += 1
        nxt = k[j] + 1
        end = end_all if nxt >= len(snaps) else snaps[nxt] - np.timedelta64(1, "D")
        out.append((str(c[i]), d[i], end))
        i = j + 1
    return out


def spells_text(rows: list[tuple[str, np.datetime64, np.datetime64]]) -> str:
    """Spell rows as ``CODE<TAB>start<TAB>end`` lines, sorted by code and start."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    return "".join(f"{c}\t{s}\t{e}\n" for c, s, e in rows)
