"""Loader for the China A-share data folders: the deepalpha layout of ``../shared/data/cn`` (and
the synthetic market, which writes the same layout), and a plain Qlib provider folder read in
place (``calendars/``, ``instruments/``, ``features/``; see `deepalpha.data.layout`).

``load_cn`` returns a `Panel` of stocks (index codes excluded) with ``float32[T, N]`` fields:

=================  ==========================================================================
``open, high,``    back-adjusted prices (raw price x factor), CNY x factor
``low, close``
``volume``         traded shares (not adjusted; a Qlib ``$volume`` = shares / factor is
                   multiplied back, see ``qlib_volume``)
``factor``         cumulative back-adjustment factor (1 in a Qlib folder without ``$factor``)
``raw_close``      ``close / factor``, CNY
``vwap``           ``vwap.day.bin`` when present, else ``amount / volume`` (back-adjusted) when
                   the folder has ``amount.day.bin`` (CNY), else the typical price
                   ``(high + low + close) / 3``; ``meta["caveats"]`` says which
``mktcap``         total market cap, CNY: a daily ``mktcap.day.bin`` (CNY) when present, else
                   period-end ``total_mv x 1e4`` carried daily by the adjusted close (see
                   `fundamentals.carry_mktcap`)
``shares``         ``mktcap / raw_close``, shares
``pe, pb, ps,``    daily ``.bin`` when present, else the valuation at the latest period end
``dv_ratio``       ``<= t`` (market data known that day); ``dv_ratio`` in %
``roe, roa,``      from financial reports, only after the publication deadline (see
``debt_to_assets,`` `deepalpha.data.fundamentals`)
``ebit``
``size_proxy``     mean daily traded value over 60 days, CNY (`deepalpha.data.size_proxy`):
                   loaded by default only when the data has no market cap
=================  ==========================================================================

Without ``fundamentals/`` (a plain Qlib folder) the fields that need it are absent and
``meta["missing_inputs"]`` lists the files that would add them.

Masks ``bool[T, N]``: ``listed``, ``suspended``, ``limit_up``, ``limit_down``, ``tradable`` and the
point-in-time universes ``csi300, csi500, csi800, csi1000, all`` (intersected with ``listed``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deepalpha.data import announced as _announced_mod
from deepalpha.data import fundamentals as fu
from deepalpha.data import layout as _layout_mod
from deepalpha.data import size_proxy as sp
from deepalpha.data import stockinfo as _stockinfo_mod
from deepalpha.data import universe as un
from deepalpha.data import validate as _validate_mod
from deepalpha.data.announced import ann_dates, to_daily_announced
from deepalpha.data.codes import is_index_code, normalize_code
from deepalpha.data.layout import UNIVERSE_FILES, Layout, as_layout
from deepalpha.data.panel import Panel
from deepalpha.data.qlib_bin import read_calendar, read_instruments
from deepalpha.data.stockinfo import list_dates_for, load_stock_info
from deepalpha.data.validate import check_bars, check_unique, missing_bar_count
from deepalpha.errors import DataError

__all__ = ["ALL_FIELDS", "load_cn", "load_indices", "load_stock_info"]

LOADER_VERSION = 4
AllUniverse = Literal["auto", "csiall", "index_history"]
QlibVolume = Literal["auto", "adjusted", "raw"]
BIN_FIELDS = ("open", "high", "low", "close", "volume", "factor")
MASK_BINS = ("high", "low", "close", "volume", "factor")
# optional daily .bin fields, used when every stock has them: amount (CNY), vwap (adjusted),
# mktcap (CNY) and the daily valuation ratios (written by `deepalpha data import`)
OPTIONAL_BINS = ("amount", "vwap", "mktcap", "pe", "pb", "ps", "dv_ratio")
FUNDAMENTAL_FILES = fu.MARKET_FIELDS + fu.REPORT_FIELDS
ALL_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "factor",
    "raw_close",
    "vwap",
    "mktcap",
    "shares",
    "pe",
    "pb",
    "ps",
    "dv_ratio",
    "roe",
    "roa",
    "debt_to_assets",
    "ebit",
    "size_proxy",
)
INDEX_FIELDS = ("open", "high", "low", "close", "volume")

# field -> bins it needs beyond the mask bins, and fundamentals files it needs
_BIN_DEPS: dict[str, tuple[str, ...]] = {f: (f,) for f in BIN_FIELDS}
_BIN_DEPS.update(
    raw_close=("close", "factor"),
    vwap=("high", "low", "close"),
    mktcap=("close",),
    shares=("close", "factor"),
    size_proxy=("close", "factor"),
)
_FUND_DEPS: dict[str, tuple[str, ...]] = {
    "mktcap": ("total_mv",),
    "shares": ("total_mv",),
    **{f: (f,) for f in ("pe", "pb", "ps", "dv_ratio") + fu.REPORT_FIELDS},
}
# fields a daily .bin replaces the fundamentals CSV for
_DAILY_BIN_FOR = {
    "mktcap": "mktcap",
    "shares": "mktcap",
    **{f: f for f in ("pe", "pb", "ps", "dv_ratio")},
}

CAVEATS = (
    "survivorship bias: stocks delisted before the data snapshot are absent from prices and "
    "fundamentals while membership files include them; universe masks are intersected with listed",
    "industries (stock_basic, CSRC) are static snapshots, not point in time",
    "no point-in-time ST flag: one-price bars (high == low) with a >= 4.9 % move are flagged "
    "limit-locked, and where CSI All Share membership exists a main-board stock listed > 120 "
    "days but outside it (mask st_proxy) is locked when it closes exactly at +-5 %",
    "bars with every field NaN are treated as missing and suspended; a NaN volume next to a "
    "carried price (how the source marks some suspensions) is set to 0 and suspended",
    "new listings' first days (no or wider price limits) are only excluded via min_listed_days",
    "universe csi800 is csi300 | csi500 (the source csi800.txt is incomplete before 2013); "
    "csi1000 starts at the index launch (2014-10)",
)
CAVEAT_MKTCAP_CSV = (
    "mktcap is period-end total_mv carried by the back-adjusted close (continuous over bonus "
    "issues; cash dividends lower it only at the next period end); NaN before a stock's first "
    "period end; for period ends before the calendar the first calendar close is the reference"
)
CAVEATS_FUNDAMENTALS = (
    "fundamentals use quarter-end rows only (the source's sparse month-end rows are dropped)",
    "pe/pb/ps/dv_ratio are as of the latest period end <= t, not re-priced daily",
    "roe/roa/debt_to_assets/ebit are used from the first trading day strictly after the "
    "publication deadline (Q1 04-30, H1 08-31, Q3 10-31, annual 04-30 next year)",
)
CAVEAT_ANNOUNCED = (
    "roe/roa/debt_to_assets/ebit are used from the day after each company's announcement date "
    "(fundamentals/ann_date.csv), else after the publication deadline"
)
HOW_TO_ADD = (
    "add them as fundamentals/<name>.csv (wide: period end YYYYMMDD, one column per code) and "
    "industry/stock_basic.csv or industry/csrc_industry.csv in the data folder, or build a "
    "complete folder from long tables with `deepalpha data import` (README: Bring your own data)"
)


# ------------------------------------------------------------------------------ reading
def read_stock_list(root: str | Path | Layout) -> tuple[np.ndarray, np.ndarray]:
    """Stocks of the layout's ``instruments/all.txt`` (index codes dropped), sorted.

    Returns ``(assets str[N] canonical, dirs str[N] folder names)``. Raises `DataError` on a
    missing file, an unknown code style or a duplicate code.
    """
    lay = as_layout(root)
    path = lay.instruments_file
    rows = read_instruments(lay.prices)
    codes = np.array([normalize_code(c, file=str(path)) for c, _, _ in rows], dtype="U8")
    dup = check_unique(codes, file=path)
    if dup:
        raise dup[0]
    keep = np.array([not is_index_code(c) for c in codes], dtype=bool)
    assets = np.sort(codes[keep])
    return assets, np.char.lower(assets)


def read_price_bins(
    root: str | Path | Layout,
    assets: np.ndarray,
    names: Sequence[str],
    n_dates: int,
    *,
    errors: list[DataError] | None = None,
) -> dict[str, np.ndarray]:
    """Read ``.bin`` fields for ``assets`` -> ``{name: float32[T, N]}`` (NaN outside the history).

    One pass per field over the stock folders; each file is read with a single ``np.fromfile``.
    Every field of a stock must start on the same day with the same length. With ``errors=None``
    the first problem raises `DataError`; otherwise problems are appended and the read goes on.
    """
    lay = as_layout(root)
    N = len(assets)
    out: dict[str, np.ndarray] = {}
    spans: dict[int, tuple[int, int, str]] = {}

    def fail(e: DataError) -> None:
        if errors is None:
            raise e
        errors.append(e)

    for name in names:
        buf = np.full((N, n_dates), np.nan, dtype=np.float32)  # row per stock: contiguous writes
        for n, code in enumerate(np.asarray(assets).tolist()):
            p = lay.bin(code, name)
            try:
                raw = np.fromfile(p, dtype="<f4")
            except FileNotFoundError:
                fail(DataError("missing .bin file", file=p, field=name, code=code))
                continue
            except OSError as e:
                fail(DataError(f"unreadable .bin file: {e}", file=p, field=name, code=code))
                continue
            if raw.size < 1:
                fail(DataError("empty .bin file", file=p, field=name, code=code))
                continue
            s = raw[0]
            if not np.isfinite(s) or s < 0 or s != int(s):
                fail(DataError(f"bad start index {s!r}", file=p, field=name, code=code))
                continue
            start, length = int(s), raw.size - 1
            if start + length > n_dates:
                fail(
                    DataError(
                        f".bin length disagrees with the calendar: start {start} + {length} rows "
                        f"> {n_dates} days",
                        file=p,
                        field=name,
                        code=code,
                    )
                )
                continue
            prev = spans.get(n)
            if prev is None:
                spans[n] = (start, length, name)
            elif prev[:2] != (start, length):
                fail(
                    DataError(
                        f"fields disagree: {prev[2]} starts at {prev[0]} with {prev[1]} rows, "
                        f"{name} at {start} with {length}",
                        file=p,
                        field=name,
                        code=code,
                    )
                )
                continue
            buf[n, start : start + length] = raw[1:]
        out[name] = np.ascontiguousarray(buf.T)
        del buf
    return out


def listed_from_close(close: np.ndarray) -> np.ndarray:
    """``bool[T, N]``: between each stock's first and last finite close (inclusive)."""
    fin = np.isfinite(close)
    T = close.shape[0]
    any_ = fin.any(axis=0)
    first = np.where(any_, fin.argmax(axis=0), T)
    last = np.where(any_, T - 1 - fin[::-1].argmax(axis=0), -1)
    t = np.arange(T)[:, None]
    return (t >= first[None, :]) & (t <= last[None, :])


@dataclass(frozen=True)
class Sources:
    """What a folder holds beyond the required bars (found by `probe_sources`).

    ``bins``: optional daily ``.bin`` fields every stock has (`OPTIONAL_BINS`); ``partial``:
    optional bins only some stocks have (not used, said in the caveats); ``factor``: whether
    ``factor.day.bin`` exists (a Qlib folder may lack it: then factor = 1); ``fundamentals``:
    whether the ``fundamentals/`` folder exists.
    """

    bins: frozenset[str]
    partial: tuple[str, ...]
    factor: bool
    fundamentals: bool


def probe_sources(lay: Layout, assets: np.ndarray) -> Sources:
    """Which optional inputs the folder at ``lay`` holds for ``assets`` (file existence only)."""
    codes = np.asarray(assets).tolist()

    def count(name: str) -> int:
        if not codes or not os.path.isfile(lay.bin(codes[0], name)):
            # cheap negative: check the rest only when the first stock has the file
            return sum(os.path.isfile(lay.bin(c, name)) for c in codes[1:2])
        return sum(os.path.isfile(lay.bin(c, name)) for c in codes)

    n = len(codes)
    counts = {b: count(b) for b in OPTIONAL_BINS}
    full = frozenset(b for b, k in counts.items() if n and k == n)
    partial = tuple(f"{b} ({k} of {n} stocks)" for b, k in counts.items() if 0 < k < n)
    factor = lay.kind == "cn" or count("factor") > 0
    return Sources(full, partial, factor, lay.fundamentals.is_dir())


def field_available(f: str, src: Sources) -> bool:
    """Whether field ``f`` can be built from the sources (bars always can)."""
    if f in _DAILY_BIN_FOR and _DAILY_BIN_FOR[f] in src.bins:
        return True
    if f in _FUND_DEPS:
        return src.fundamentals
    return True


def _source_files(lay: Layout, assets: np.ndarray, bins: Sequence[str], funds: Sequence[str]):
    files = [lay.prices / "calendars" / "day.txt", lay.instruments_file]
    files += [lay.bin(a, b) for a in assets.tolist() for b in bins]
    files += [lay.universe_file(k) for k in UNIVERSE_FILES]
    files += [lay.fundamentals / f"{f}.csv" for f in (*funds, "ann_date")]
    files += [lay.industry / "stock_basic.csv", lay.industry / "csrc_industry.csv"]
    return files


def _resolve_fields(
    fields: Sequence[str] | None, src: Sources, lay: Layout
) -> tuple[list[str], list[str], list[str]]:
    """Requested fields -> (fields, bins to read, fundamentals files to read).

    ``None`` means every field the sources allow (``size_proxy`` only when there is no market
    cap). A requested field without a source raises one `DataError` listing them all.
    """
    if fields is None:
        has_cap = field_available("mktcap", src)
        fields = [
            f for f in ALL_FIELDS if field_available(f, src) and not (f == "size_proxy" and has_cap)
        ]
    fields = list(dict.fromkeys(fields))
    for f in fields:
        if f not in ALL_FIELDS:
            raise DataError(f"unknown field {f!r}; known: {list(ALL_FIELDS)}", field=f)
    lacking = [f for f in fields if not field_available(f, src)]
    if lacking:
        raise DataError(
            f"fields {lacking} need inputs this folder lacks "
            f"({', '.join(sorted({d + '.csv' for f in lacking for d in _FUND_DEPS[f]}))} in "
            f"fundamentals/); {HOW_TO_ADD}",
            file=lay.fundamentals,
        )
    bins = set(MASK_BINS)
    funds: set[str] = set()
    for f in fields:
        bins.update(_BIN_DEPS.get(f, ()))
        daily = _DAILY_BIN_FOR.get(f)
        if daily is not None and daily in src.bins:
            bins.add(daily)
        else:
            funds.update(_FUND_DEPS.get(f, ()))
    if "vwap" in fields or "size_proxy" in fields:
        bins.update(b for b in ("vwap", "amount") if b in src.bins)
        bins.update(("volume", "factor"))
    if "vwap" not in fields:
        bins.discard("vwap")
    if lay.kind == "qlib" and "amount" in src.bins:
        bins.add("amount")  # decides the volume convention, whatever the fields
    if not src.factor:
        bins.discard("factor")
    order = BIN_FIELDS + OPTIONAL_BINS
    return (
        fields,
        [b for b in order if b in bins],
        [x for x in FUNDAMENTAL_FILES if x in funds],
    )


# ------------------------------------------------------------------------------ public API
def load_cn(
    path: str | Path | Layout,
    *,
    fields: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    min_listed_days: int = 60,
    all_universe: AllUniverse = "auto",
    qlib_volume: QlibVolume = "auto",
) -> Panel:
    """Load a data folder at ``path`` as a stock `Panel`: the deepalpha layout or a plain Qlib
    provider folder, read in place (see `deepalpha.data.layout`).

    Parameters
    ----------
    path : folder with ``prices/``, ``index_membership/``, ``fundamentals/``, ``industry/``, or a
        Qlib folder with ``calendars/``, ``instruments/`` (``all.txt`` and point-in-time spell
        files ``csi300.txt`` ...) and ``features/``. ``fundamentals/`` and ``industry/`` are
        optional: without them their fields are absent (``meta["missing_inputs"]``) and
        ``size_proxy`` stands in for the cap groups.
    fields : subset of `ALL_FIELDS` (default: every field the folder's inputs allow); only the
        ``.bin``/CSV files needed are read (the mask inputs high, low, close, volume, factor are
        always read). A requested field without a source raises `DataError`.
    start, end : inclusive date bounds (anything ``np.datetime64`` accepts); derived fields are
        computed on the full history first, so a sliced load equals a slice of the full load.
    cache : reuse / write the assembled panel in ``cache_dir`` (default ``$DEEPALPHA_CACHE`` or
        ``~/.cache/deepalpha``), keyed by the source files' paths, sizes and mtimes + options.
    min_listed_days : trading days since listing before a stock is ``tradable``.
    all_universe : how mask ``all`` is made point in time (`all_universe_mask`): ``"csiall"``
        (CSI All Share membership: the folder holds the whole market), ``"index_history"`` (CSI
        All Share members that have been a CSI 300/500/800/1000 member on or before the date: the
        folder holds only stocks selected on index membership), or ``"auto"`` (``index_history``
        when the folder holds stocks selected on index membership, as ``../shared/data/cn``
        does; see `deepalpha.data.universe.folder_is_selected`; else ``csiall``). The choice is in
        ``meta["all_universe"]``. A Qlib folder without ``instruments/csiall.txt`` takes every
        listed stock of ``instruments/all.txt`` as CSI All Share.
    qlib_volume : a Qlib folder's ``$volume`` convention: ``"adjusted"`` (Qlib's: shares /
        factor; multiplied back by the factor), ``"raw"`` (shares), or ``"auto"`` (decided by
        where ``amount / volume`` falls within the bar when the folder has ``amount``, else
        ``adjusted``). The panel's ``volume`` is always in shares. Ignored for our layout.

    Returns
    -------
    Panel with ``float32[T, N]`` fields, masks ``bool[T, N]`` and provenance in ``meta``.
    """
    from deepalpha.errors import ConfigError

    if min_listed_days < 0:
        raise ConfigError(f"min_listed_days must be >= 0, got {min_listed_days}")
    if qlib_volume not in ("auto", "adjusted", "raw"):
        raise ConfigError(f"qlib_volume must be auto, adjusted or raw, got {qlib_volume!r}")
    _check_all_universe(all_universe)
    lay = as_layout(path)
    assets, _ = read_stock_list(lay)
    src = probe_sources(lay, assets)
    fields_, bins, funds = _resolve_fields(fields, src, lay)
    options = {
        "loader": LOADER_VERSION,
        "fields": fields_,
        "start": None if start is None else str(np.datetime64(start, "D")),
        "end": None if end is None else str(np.datetime64(end, "D")),
        "min_listed_days": int(min_listed_days),
        "all_universe": _check_all_universe(all_universe),
        "layout": lay.kind,
        "qlib_volume": qlib_volume,
    }
    if cache:
        from deepalpha.data import store

        # the loader's own code is part of the key: a code change never serves a stale panel
        mods = (fu, un, _validate_mod, _stockinfo_mod, store, _layout_mod, sp, _announced_mod)
        code = [Path(m.__file__) for m in mods]
        code.append(Path(__file__))
        key = store.cache_key(
            _source_files(lay, assets, bins, funds), {**options, "code": store.digest(code)}
        )
        hit = store.load_cached(key, cache_dir)
        if hit is not None:
            return hit
        panel = _build(lay, src, assets, fields_, bins, funds, options)
        store.save_cached(key, panel, cache_dir)
        return panel
    return _build(lay, src, assets, fields_, bins, funds, options)


def _check_all_universe(rule: str) -> str:
    if rule not in ("auto", "csiall", "index_history"):
        from deepalpha.errors import ConfigError

        raise ConfigError(f"all_universe must be auto, csiall or index_history, got {rule!r}")
    return rule


def amount_vwap_share(
    amount: np.ndarray, volume: np.ndarray, factor: np.ndarray, high: np.ndarray, low: np.ndarray
) -> dict[str, float]:
    """Share of traded bars whose ``amount / volume`` lies within ``[low, high]`` (0.5 %
    tolerance) under each volume convention: ``"adjusted"`` (volume = shares / factor, so
    ``amount / volume`` is already a back-adjusted price) and ``"raw"`` (volume in shares: the
    ratio x factor is). All inputs ``float32[T, N]``; amount in CNY, prices back-adjusted."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (volume > 0) & (amount > 0) & np.isfinite(high) & np.isfinite(low)
        ratio = (amount[ok] / volume[ok]).astype(np.float64)
        lo, hi = low[ok] * 0.995, high[ok] * 1.005
        f = factor[ok]
        n = max(int(ok.sum()), 1)
        adj = float(((ratio >= lo) & (ratio <= hi)).sum()) / n
        rw = float(((ratio * f >= lo) & (ratio * f <= hi)).sum()) / n
    return {"adjusted": adj, "raw": rw}


def vwap_field(raw: dict[str, np.ndarray], amount_ok: bool) -> tuple[np.ndarray, str]:
    """The ``vwap`` field ``float32[T, N]`` (back-adjusted) and a caveat saying its source.

    ``vwap.day.bin`` when present; else ``amount / volume x factor`` (volume in shares) where
    the stock traded and the typical price ``(high + low + close) / 3`` elsewhere; else the
    typical price everywhere.
    """
    typical = (raw["high"] + raw["low"] + raw["close"]) / np.float32(3.0)
    if "vwap" in raw:
        return raw["vwap"], "vwap is the data's own vwap.day.bin (taken as back-adjusted)"
    if amount_ok:
        with np.errstate(invalid="ignore", divide="ignore"):
            v = raw["amount"] / raw["volume"] * raw["factor"]
        ok = (raw["volume"] > 0) & np.isfinite(v) & (v > 0)
        out = np.where(ok, v, typical).astype(np.float32)
        return out, (
            "vwap = amount / volume (back-adjusted by factor); the typical price (high+low+close)/3 "
            "on days without trading"
        )
    return typical, (
        "vwap is a proxy: typical price (high+low+close)/3, back-adjusted; the data has no "
        "amount or vwap"
    )


def _field_caveats(
    fields: list[str], funds: list[str], vwap_note: str | None, ann_used: bool = False
) -> list[str]:
    out = [vwap_note] if vwap_note else []
    if "total_mv" in funds:
        out.append(CAVEAT_MKTCAP_CSV)
    if any(f in funds for f in FUNDAMENTAL_FILES if f != "total_mv"):
        out.extend(CAVEATS_FUNDAMENTALS[:2])
        out.append(CAVEAT_ANNOUNCED if ann_used else CAVEATS_FUNDAMENTALS[2])
    if "size_proxy" in fields and "mktcap" not in fields:
        out.append(sp.CAVEAT)
    return out


def missing_inputs(lay: Layout, src: Sources) -> dict[str, list[str]]:
    """Inputs the folder lacks -> the fields or uses they would feed (empty when complete)."""
    out: dict[str, list[str]] = {}
    if not src.fundamentals:
        for f, deps in _FUND_DEPS.items():
            if field_available(f, src):
                continue
            for d in deps:
                out.setdefault(f"fundamentals/{d}.csv", []).append(f)
    if (
        not (lay.industry / "stock_basic.csv").is_file()
        and not (lay.industry / "csrc_industry.csv").is_file()
    ):
        out["industry/stock_basic.csv or industry/csrc_industry.csv"] = [
            "industry factors of the risk model",
            "list dates",
        ]
    return out


def fill_factor_gaps(factor: np.ndarray, close: np.ndarray) -> int:
    """Fill ``factor`` (``float32[T, N]``, in place) where it is NaN but ``close`` is finite
    with the stock's previous finite factor, else its next one; returns how many were filled."""
    gap = np.isnan(factor) & np.isfinite(close)
    if not gap.any():
        return 0
    T = factor.shape[0]
    t = np.arange(T)[:, None]
    fin = np.isfinite(factor)
    prev = np.maximum.accumulate(np.where(fin, t, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(fin, t, T)[::-1], axis=0)[::-1]
    src = np.where(prev >= 0, prev, nxt)
    cols = np.broadcast_to(np.arange(factor.shape[1]), factor.shape)
    ok = gap & (src < T)
    factor[ok] = factor[src[ok], cols[ok]]
    return int(ok.sum())


def _relocated(e: DataError, lay: Layout) -> DataError:
    """`check_bars` names files in the deepalpha layout; in a Qlib folder, name the real file."""
    if lay.kind == "cn" or e.code is None or e.field is None:
        return e
    return DataError(
        e.message, file=lay.bin(e.code, e.field), field=e.field, code=e.code, date=e.date
    )


def _build(
    lay: Layout,
    src: Sources,
    assets: np.ndarray,
    fields: list[str],
    bins: list[str],
    funds: list[str],
    options: dict[str, Any],
) -> Panel:
    root = lay.root
    dates = read_calendar(lay.prices)
    T, N = len(dates), len(assets)
    raw = read_price_bins(lay, assets, bins, T)
    if "factor" not in raw:  # a Qlib folder without $factor: prices are taken as raw
        raw["factor"] = np.ones((T, N), dtype=np.float32)
    n_factor_filled = fill_factor_gaps(raw["factor"], raw["close"]) if lay.kind == "qlib" else 0
    listed = listed_from_close(raw["close"])
    errs = check_bars(
        {k: v for k, v in raw.items() if k in BIN_FIELDS}, listed, dates, assets, root
    )
    if errs:
        raise _relocated(errs[0], lay)
    n_missing = missing_bar_count({k: v for k, v in raw.items() if k in BIN_FIELDS}, listed)
    notes: list[str] = [lay.note] if lay.note else []
    if not src.factor:
        notes.append("no $factor in the Qlib folder: prices are used as stored with factor 1")
    if n_factor_filled:
        notes.append(
            f"{n_factor_filled} Qlib bar(s) with a price but no $factor: the stock's previous "
            "(else next) factor is used"
        )
    if src.partial:
        notes.append(f"optional .bin fields present for only some stocks, not used: {src.partial}")
    vol_convention = "raw"
    amount_ok = "amount" in raw
    if amount_ok:
        share = amount_vwap_share(
            raw["amount"], raw["volume"], raw["factor"], raw["high"], raw["low"]
        )
        if lay.kind == "qlib" and options["qlib_volume"] == "auto":
            vol_convention = max(share, key=share.get)
        elif lay.kind == "qlib":
            vol_convention = options["qlib_volume"]
        if share[vol_convention] < 0.5:
            amount_ok = False
            notes.append(
                f"amount / volume lies within [low, high] on only {share[vol_convention]:.0%} of "
                "bars (units differ?): amount is not used"
            )
    elif lay.kind == "qlib":
        vol_convention = "adjusted" if options["qlib_volume"] == "auto" else options["qlib_volume"]
    if lay.kind == "qlib" and vol_convention == "adjusted":
        raw["volume"] = raw["volume"] * raw["factor"]
        how = (
            "detected from amount"
            if "amount" in raw and options["qlib_volume"] == "auto"
            else (
                "Qlib's convention, assumed: the folder has no amount to check it"
                if options["qlib_volume"] == "auto"
                else "as stated (qlib_volume)"
            )
        )
        notes.append(
            f"Qlib $volume is adjusted (shares / factor; {how}): volume = $volume x $factor"
        )
    elif lay.kind == "qlib":
        notes.append("Qlib $volume is taken as raw shares (detected from amount or stated)")

    # ---- masks
    vol = raw["volume"]
    suspended = listed & ~(vol > 0)  # volume == 0 or a missing (NaN) bar
    # The real data marks some suspensions with a NaN volume next to a carried price: no shares
    # traded, so volume = 0 there (a missing bar, every field NaN, stays NaN).
    n_nan_vol = int((suspended & np.isnan(vol) & np.isfinite(raw["close"])).sum())
    vol[suspended & np.isnan(vol) & np.isfinite(raw["close"])] = 0.0
    first_bar = np.where(listed.any(0), listed.argmax(0), T)
    first_price_day = np.where(
        first_bar < T, dates[np.minimum(first_bar, T - 1)], np.datetime64("NaT")
    )
    info_note = None
    try:
        info = load_stock_info(root)
        ld = list_dates_for(info, assets)
        # A list date after the first price (code change) falls back to the first price date.
        list_date = np.where(np.isnat(ld) | (ld > first_price_day), first_price_day, ld)
    except DataError as e:
        if "missing industry files" not in str(e):
            raise
        info_note = "no industry files: list date = first price date"
        list_date = first_price_day
    age = un.listed_days(list_date, dates)
    masks = {"listed": listed, "suspended": suspended}
    missing_universes = []
    all_covered = None
    all_share = None
    all_share_codes = np.zeros(0, "U8")
    skipped_codes: dict[str, list[str]] = {}
    derive_800 = all(lay.universe_file(k).is_file() for k in ("csi300", "csi500"))
    for name, fname in UNIVERSE_FILES.items():
        p = lay.universe_file(name)
        if name == "csi800" and derive_800:
            continue  # CSI 800 = CSI 300 + CSI 500 (see below)
        if not p.is_file():
            if name == "all" and lay.kind == "qlib":
                # Qlib's instruments/all.txt: every stock while listed
                masks["all"] = listed.copy()
                notes.append(
                    "no instruments/csiall.txt: CSI All Share is every listed stock of "
                    "instruments/all.txt (point in time only if the folder keeps delisted stocks)"
                )
                continue
            missing_universes.append(name)
            continue
        skipped: list[str] = []
        codes, s, e = un.read_spells(p, skipped=skipped)
        if skipped:
            skipped_codes[fname] = sorted(set(skipped))
        m = un.spells_to_mask(codes, s, e, dates, assets)
        if name == "all" and len(s):
            all_covered = dates >= s.min()
            m[~all_covered] = True  # before CSI All Share data: every listed stock
            all_share = m & listed  # the ST proxy needs membership itself, not the universe
            all_share_codes = codes
        masks[name] = m & listed
    if derive_800:
        # CSI 800 = CSI 300 + CSI 500 by construction; the real csi800.txt lists only ~200
        # members before mid-2013 and agrees with the union afterwards.
        masks["csi800"] = masks["csi300"] | masks["csi500"]

    # ---- the `all` universe, point in time (see un.all_universe_mask)
    all_rule = options["all_universe"]
    index_names = [k for k in ("csi300", "csi500", "csi800", "csi1000") if k in masks]
    if "all" in masks and index_names:
        union = np.logical_or.reduce([masks[k] for k in index_names])
        if all_rule == "auto":
            selected = un.folder_is_selected(union, listed, all_share_codes, assets)
            all_rule = "index_history" if selected else "csiall"
        masks["all"] = un.all_universe_mask(masks["all"], union, all_rule)
    elif all_rule == "index_history":
        raise DataError(
            "all_universe='index_history' needs index membership files",
            file=lay.membership,
        )
    else:
        all_rule = "csiall"

    # ---- limits and tradability (ST proxy from CSI All Share membership where it exists)
    st = None
    if all_covered is not None:
        st = un.st_proxy(listed, all_share, all_covered, age, assets)
        masks["st_proxy"] = st
    rate = un.limit_rate(assets, dates)
    up, dn = un.limit_masks(raw["close"], raw["high"], raw["low"], raw["factor"], rate, st=st)
    del rate
    up &= listed & ~suspended
    dn &= listed & ~suspended
    masks["limit_up"] = up
    masks["limit_down"] = dn
    masks["tradable"] = un.tradable_mask(listed, suspended, up, dn, age, options["min_listed_days"])
    del age

    # ---- fields
    data = np.empty((len(fields), T, N), dtype=np.float32)
    fund_cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def fund(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if name not in fund_cache:
            fund_cache[name] = fu.read_wide_csv(lay.fundamentals / f"{name}.csv")
        return fund_cache[name]

    mktcap = None
    vwap_note = None
    ann_file = lay.fundamentals / "ann_date.csv"
    ann_used = False
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, f in enumerate(fields):
            if f in ("mktcap", "shares"):
                if mktcap is None:
                    if "mktcap" in raw:
                        mktcap = raw["mktcap"].copy()
                    else:
                        mktcap = fu.carry_mktcap(*fund("total_mv"), dates, assets, raw["close"])
                    mktcap[~listed] = np.nan
                if f == "mktcap":
                    data[i] = mktcap
                else:
                    np.divide(mktcap, raw["close"] / raw["factor"], out=data[i])
            elif f == "vwap":
                data[i], vwap_note = vwap_field(raw, amount_ok)
            elif f in BIN_FIELDS:
                data[i] = raw[f]
            elif f in raw:  # a daily optional bin (pe, pb, ps, dv_ratio)
                data[i] = raw[f]
                data[i][~listed] = np.nan
            elif f == "raw_close":
                np.divide(raw["close"], raw["factor"], out=data[i])
            elif f == "size_proxy":
                value = sp.traded_value(
                    raw["close"] / raw["factor"],
                    raw["volume"],
                    raw["amount"] if amount_ok else None,
                )
                data[i] = sp.size_proxy(value)
                data[i][~listed] = np.nan
            elif f in fu.REPORT_FIELDS and ann_file.is_file():
                ap, ac, av = fund("ann_date")
                data[i] = to_daily_announced(*fund(f), ap, ac, ann_dates(av), dates, assets)
                data[i][~listed] = np.nan
                ann_used = True
            else:
                p, c, v = fund(f)
                data[i] = fu.to_daily(p, c, v, dates, assets, lagged=f in fu.REPORT_FIELDS)
                data[i][~listed] = np.nan
    del raw, mktcap

    meta: dict[str, Any] = {
        "source": str(root),
        "loader": f"deepalpha.data.cn.load_cn v{LOADER_VERSION}",
        "options": options,
        "caveats": list(CAVEATS) + notes + _field_caveats(fields, funds, vwap_note, ann_used),
        "layout": lay.kind,
        "missing_inputs": missing_inputs(lay, src),
        "missing_bars": n_missing,
        "nan_volume_set_to_zero": n_nan_vol,
        "units": {
            "prices": "back-adjusted CNY (raw x factor)",
            "raw_close": "CNY",
            "volume": "shares",
            "mktcap": "CNY",
            "shares": "shares",
            "dv_ratio": "%",
        },
        "limits": "main 10%, ChiNext 10% (20% from 2020-08-24), STAR 20%, BJ 30%; "
        "ST 5% only through st_proxy and one-price bars",
    }
    meta["all_universe"] = all_rule
    if all_rule == "index_history":
        meta["caveats"].append(
            "universe 'all' is point in time: CSI All Share members that have been a CSI "
            "300/500/800/1000 member on or before the date (the folder holds only stocks that "
            "were index members at some time, so an earlier presence is future information)"
        )
    elif "all" in masks:
        meta["caveats"].append(
            "universe 'all' is CSI All Share membership: point in time only if the folder holds "
            "every stock of the market (it is not selected on later index membership)"
        )
    if missing_universes:
        meta["caveats"].append(f"no membership file for {missing_universes}: masks absent")
    if skipped_codes:
        meta["membership_codes_skipped"] = skipped_codes
    if info_note:
        meta["caveats"].append(info_note)

    panel = Panel(data, dates, assets, tuple(fields), masks, meta)
    if options["start"] is not None or options["end"] is not None:
        panel = panel.sel(dates=slice(options["start"], options["end"]))
        panel = Panel(
            np.ascontiguousarray(panel.data),
            panel.dates.copy(),
            panel.assets,
            panel.fields,
            {k: np.ascontiguousarray(m) for k, m in panel.masks.items()},
            panel.meta,
        )
    return panel


def load_indices(path: str | Path, codes: Sequence[str] | None = None) -> Panel:
    """Index bars stored among the prices (``SH000300`` CSI 300, ``SH000905`` CSI 500,
    ``SH000852`` CSI 1000, ``SH000906`` CSI 800, ...).

    Returns a `Panel` with fields ``open, high, low, close, volume`` (``float32[T, K]``, NaN where
    the index has no value) and mask ``listed``. ``codes=None`` loads every index code in
    ``instruments/all.txt``; a requested code that is absent raises `DataError`.
    """
    lay = as_layout(path)
    root = lay.root
    prices = lay.prices
    dates = read_calendar(prices)
    inst_path = lay.instruments_file
    have = [normalize_code(c, file=str(inst_path)) for c, _, _ in read_instruments(prices)]
    have_idx = sorted({c for c in have if is_index_code(c)})
    if codes is None:
        want = have_idx
    else:
        want = [normalize_code(c) for c in codes]
        for c in want:
            if c not in have_idx:
                raise DataError("index code not in instruments", file=inst_path, code=c)
    assets = np.array(want, dtype="U8")
    raw = read_price_bins(lay, assets, INDEX_FIELDS, len(dates))
    data = np.stack([raw[f] for f in INDEX_FIELDS])
    listed = np.isfinite(raw["close"])
    return Panel(
        data,
        dates,
        assets,
        INDEX_FIELDS,
        {"listed": listed},
        {"source": str(root.resolve()), "loader": "deepalpha.data.cn.load_indices"},
    )
