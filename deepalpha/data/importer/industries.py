"""An industry table (``code, industry[, name, list_date]``; Tushare's ``stock_basic`` as is)
-> our ``industry/stock_basic.csv`` (UTF-8 with BOM, the Chinese headers `stockinfo` reads).

Any classification is accepted. Names the risk model cannot map to its SW2021-like groups
(`deepalpha.risk.industries.map_industries`) are reported; ``industry_map`` (``{name: group}``,
a group key like ``banks`` or its Chinese name) maps them on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from deepalpha.data.codes import board_of, to_tushare
from deepalpha.data.importer.read import check_unique, parse_codes, parse_dates, require_columns
from deepalpha.errors import DataError

BOARD_NAMES = {"main": "主板", "chinext": "创业板", "star": "科创板", "bj": "北交所"}
HEADER = "股票代码,股票名称,行业,市场类型,上市日期"


def unmapped_names(names: list[str]) -> list[str]:
    """Names `map_industries` maps to no group."""
    from deepalpha.risk.industries import map_industries

    bad = []
    for n in sorted(set(names)):
        try:
            map_industries([n])
        except DataError:
            bad.append(n)
    return bad


def stock_basic_csv(
    df: pl.DataFrame, notes: list[str], industry_map: Mapping[str, str] | None = None
) -> str:
    """Checked industry table -> the text of ``industry/stock_basic.csv``."""
    require_columns(df, ("code", "industry"), "industries")
    df = parse_codes(df, "code")
    check_unique(df, ("code",), "industries")
    if "list_date" in df.columns:
        df = parse_dates(df, "list_date")
    imap = dict(industry_map or {})
    raw = df["industry"].cast(pl.String).str.strip_chars().to_list()
    names = [imap.get(x, x) for x in raw]
    unmapped = set(unmapped_names(names))
    bad = sorted(
        {
            f"{r} (mapped to {imap[r]!r})" if r in imap else r
            for r, n in zip(raw, names, strict=True)
            if n in unmapped
        }
    )
    if bad:
        notes.append(
            f"industries: {len(bad)} name(s) map to no risk-model group (the risk model will "
            f"refuse them; map them with --industry-map NAME=GROUP): {bad[:20]}"
        )
    rows = [HEADER]
    codes = df["code"].to_list()
    title = df["name"].cast(pl.String).to_list() if "name" in df.columns else [""] * len(codes)
    ld = (
        df["list_date"].dt.strftime("%Y-%m-%d").to_list()
        if "list_date" in df.columns
        else [""] * len(codes)
    )
    for c, t, n, d in zip(codes, title, names, ld, strict=True):
        cells = [to_tushare(c), t or "", n or "", BOARD_NAMES[board_of(c)], d or ""]
        rows.append(",".join(x.replace(",", " ") for x in cells))
    return "\ufeff" + "\n".join(rows) + "\n"
