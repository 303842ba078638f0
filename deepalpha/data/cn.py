"""Loader for the China A-share layout of ``../shared/data/cn`` (and the synthetic market, which
writes the same layout).

``load_cn`` returns a `Panel` of stocks (index codes excluded) with ``float32[T, N]`` fields:

=================  ==========================================================================
``open, high,``    back-adjusted prices (raw price x factor), CNY x factor
``low, close``
``volume``         traded shares (not adjusted)
``factor``         cumulative back-adjustment factor
``raw_close``      ``close / factor``, CNY
``vwap``           proxy: typical price ``(high + low + close) / 3``, adjusted (no amount in data)
``mktcap``         total market cap, CNY: period-end ``total_mv x 1e4`` carried daily by the
                   adjusted close (see `fundamentals.carry_mktcap`)
``shares``         ``mktcap / raw_close``, shares
``pe, pb, ps,``    valuation at the latest period end ``<= t`` (market data known that day);
``dv_ratio``       ``dv_ratio`` in %
``roe, roa,``      from financial reports, only after the publication deadline (see
``debt_to_assets,`` `deepalpha.data.fundamentals`)
``ebit``
=================  ==========================================================================

Masks ``bool[T, N]``: ``listed``, ``suspended``, ``limit_up``, ``limit_down``, ``tradable`` and the
point-in-time universes ``csi300, csi500, csi800, csi1000, all`` (intersected with ``listed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deepalpha.data import fundamentals as fu
from deepalpha.data import stockinfo as _stockinfo_mod
from deepalpha.data import universe as un
from deepalpha.data import validate as _validate_mod
from deepalpha.data.codes import is_index_code, normalize_code
from deepalpha.data.panel import Panel
from deepalpha.data.qlib_bin import read_calendar, read_instruments
from deepalpha.data.stockinfo import list_dates_for, load_stock_info
from deepalpha.data.validate import bin_path, check_bars, check_unique, missing_bar_count
from deepalpha.errors import DataError

__all__ = ["ALL_FIELDS", "load_cn", "load_indices", "load_stock_info"]

LOADER_VERSION = 3
AllUniverse = Literal["auto", "csiall", "index_history"]
BIN_FIELDS = ("open", "high", "low", "close", "volume", "factor")
MASK_BINS = ("high", "low", "close", "volume", "factor")
FUNDAMENTAL_FILES = fu.MARKET_FIELDS + fu.REPORT_FIELDS
UNIVERSE_FILES = {
    "csi300": "csi300.txt",
    "csi500": "csi500.txt",
    "csi800": "csi800.txt",
    "csi1000": "csi1000.txt",
    "all": "csiall.txt",
}
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
)
INDEX_FIELDS = ("open", "high", "low", "close", "volume")

# field -> bins it needs beyond the mask bins, and fundamentals files it needs
_BIN_DEPS: dict[str, tuple[str, ...]] = {f: (f,) for f in BIN_FIELDS}
_BIN_DEPS.update(
    raw_close=("close", "factor"),
    vwap=("high", "low", "close"),
    mktcap=("close",),
    shares=("close", "factor"),
)
_FUND_DEPS: dict[str, tuple[str, ...]] = {
    "mktcap": ("total_mv",),
    "shares": ("total_mv",),
    **{f: (f,) for f in ("pe", "pb", "ps", "dv_ratio") + fu.REPORT_FIELDS},
}

CAVEATS = (
    "survivorship bias: stocks delisted before the data snapshot are absent from prices and "
    "fundamentals while membership files include them; universe masks are intersected with listed",
    "industries (stock_basic, CSRC) are static snapshots, not point in time",
    "vwap is a proxy: typical price (high+low+close)/3, back-adjusted; the data has no amount",
    "no point-in-time ST flag: one-price bars (high == low) with a >= 4.9 % move are flagged "
    "limit-locked, and where CSI All Share membership exists a main-board stock listed > 120 "
    "days but outside it (mask st_proxy) is locked when it closes exactly at +-5 %",
    "mktcap is period-end total_mv carried by the back-adjusted close (continuous over bonus "
    "issues; cash dividends lower it only at the next period end); NaN before a stock's first "
    "period end; for period ends before the calendar the first calendar close is the reference",
    "fundamentals use quarter-end rows only (the source's sparse month-end rows are dropped)",
    "pe/pb/ps/dv_ratio are as of the latest period end <= t, not re-priced daily",
    "roe/roa/debt_to_assets/ebit are used from the first trading day strictly after the "
    "publication deadline (Q1 04-30, H1 08-31, Q3 10-31, annual 04-30 next year)",
    "bars with every field NaN are treated as missing and suspended; a NaN volume next to a "
    "carried price (how the source marks some suspensions) is set to 0 and suspended",
    "new listings' first days (no or wider price limits) are only excluded via min_listed_days",
    "universe csi800 is csi300 | csi500 (the source csi800.txt is incomplete before 2013); "
    "csi1000 starts at the index launch (2014-10)",
    "universe 'all' starts from CSI All Share membership (csiall.txt) from its first spell "
    "date, and every listed stock before that; then made point in time (all_universe)",
)


# ------------------------------------------------------------------------------ reading
def read_stock_list(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Stocks of ``prices/instruments/all.txt`` (index codes dropped), sorted.

    Returns ``(assets str[N] canonical, dirs str[N] folder names)``. Raises `DataError` on a
    missing file, an unknown code style or a duplicate code.
    """
    prices = Path(root) / "prices"
    path = prices / "instruments" / "all.txt"
    rows = read_instruments(prices)
    codes = np.array([normalize_code(c, file=str(path)) for c, _, _ in rows], dtype="U8")
    dup = check_unique(codes, file=path)
    if dup:
        raise dup[0]
    keep = np.array([not is_index_code(c) for c in codes], dtype=bool)
    assets = np.sort(codes[keep])
    return assets, np.char.lower(assets)


def read_price_bins(
    root: str | Path,
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
            p = bin_path(root, code, name)
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


def _source_files(root: Path, assets: np.ndarray, bins: Sequence[str], funds: Sequence[str]):
    prices = root / "prices"
    files = [prices / "calendars" / "day.txt", prices / "instruments" / "all.txt"]
    files += [bin_path(root, a, b) for a in assets.tolist() for b in bins]
    files += [root / "index_membership" / f for f in UNIVERSE_FILES.values()]
    files += [root / "fundamentals" / f"{f}.csv" for f in funds]
    files += [root / "industry" / "stock_basic.csv", root / "industry" / "csrc_industry.csv"]
    return files


def _resolve_fields(fields: Sequence[str] | None) -> tuple[list[str], list[str], list[str]]:
    """Requested fields -> (fields, bins to read, fundamentals files to read)."""
    if fields is None:
        fields = list(ALL_FIELDS)
    fields = list(dict.fromkeys(fields))
    for f in fields:
        if f not in ALL_FIELDS:
            raise DataError(f"unknown field {f!r}; known: {list(ALL_FIELDS)}", field=f)
    bins = set(MASK_BINS)
    funds: set[str] = set()
    for f in fields:
        bins.update(_BIN_DEPS.get(f, ()))
        funds.update(_FUND_DEPS.get(f, ()))
    return (
        fields,
        [b for b in BIN_FIELDS if b in bins],
        [x for x in FUNDAMENTAL_FILES if x in funds],
    )


# ------------------------------------------------------------------------------ public API
def load_cn(
    path: str | Path,
    *,
    fields: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    min_listed_days: int = 60,
    all_universe: AllUniverse = "auto",
) -> Panel:
    """Load the CN layout at ``path`` as a stock `Panel`.

    Parameters
    ----------
    path : folder with ``prices/``, ``index_membership/``, ``fundamentals/``, ``industry/``.
    fields : subset of `ALL_FIELDS` (default all); only the ``.bin``/CSV files needed are read
        (the mask inputs high, low, close, volume, factor are always read).
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
        ``meta["all_universe"]``.

    Returns
    -------
    Panel with ``float32[T, N]`` fields, masks ``bool[T, N]`` and provenance in ``meta``.
    """
    root = Path(path).resolve()
    fields_, bins, funds = _resolve_fields(fields)
    if min_listed_days < 0:
        from deepalpha.errors import ConfigError

        raise ConfigError(f"min_listed_days must be >= 0, got {min_listed_days}")
    options = {
        "loader": LOADER_VERSION,
        "fields": fields_,
        "start": None if start is None else str(np.datetime64(start, "D")),
        "end": None if end is None else str(np.datetime64(end, "D")),
        "min_listed_days": int(min_listed_days),
        "all_universe": _check_all_universe(all_universe),
    }
    if cache:
        from deepalpha.data import store

        assets, _ = read_stock_list(root)
        # the loader's own code is part of the key: a code change never serves a stale panel
        code = [Path(m.__file__) for m in (fu, un, _validate_mod, _stockinfo_mod, store)]
        code.append(Path(__file__))
        key = store.cache_key(
            _source_files(root, assets, bins, funds), {**options, "code": store.digest(code)}
        )
        hit = store.load_cached(key, cache_dir)
        if hit is not None:
            return hit
        panel = _build(root, fields_, bins, funds, options)
        store.save_cached(key, panel, cache_dir)
        return panel
    return _build(root, fields_, bins, funds, options)


def _check_all_universe(rule: str) -> str:
    if rule not in ("auto", "csiall", "index_history"):
        from deepalpha.errors import ConfigError

        raise ConfigError(f"all_universe must be auto, csiall or index_history, got {rule!r}")
    return rule


def _build(
    root: Path,
    fields: list[str],
    bins: list[str],
    funds: list[str],
    options: dict[str, Any],
) -> Panel:
    dates = read_calendar(root / "prices")
    assets, _ = read_stock_list(root)
    T, N = len(dates), len(assets)
    raw = read_price_bins(root, assets, bins, T)
    listed = listed_from_close(raw["close"])
    errs = check_bars(raw, listed, dates, assets, root)
    if errs:
        raise errs[0]
    n_missing = missing_bar_count(raw, listed)

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
    derive_800 = all(
        (root / "index_membership" / UNIVERSE_FILES[k]).is_file() for k in ("csi300", "csi500")
    )
    for name, fname in UNIVERSE_FILES.items():
        p = root / "index_membership" / fname
        if name == "csi800" and derive_800:
            continue  # CSI 800 = CSI 300 + CSI 500 (see below)
        if not p.is_file():
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
            file=root / "index_membership",
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
            fund_cache[name] = fu.read_wide_csv(root / "fundamentals" / f"{name}.csv")
        return fund_cache[name]

    mktcap = None
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, f in enumerate(fields):
            if f in raw:
                data[i] = raw[f]
            elif f == "raw_close":
                np.divide(raw["close"], raw["factor"], out=data[i])
            elif f == "vwap":
                np.add(raw["high"], raw["low"], out=data[i])
                data[i] += raw["close"]
                data[i] /= np.float32(3.0)
            elif f in ("mktcap", "shares"):
                if mktcap is None:
                    mktcap = fu.carry_mktcap(*fund("total_mv"), dates, assets, raw["close"])
                    mktcap[~listed] = np.nan
                if f == "mktcap":
                    data[i] = mktcap
                else:
                    np.divide(mktcap, raw["close"] / raw["factor"], out=data[i])
            else:
                p, c, v = fund(f)
                data[i] = fu.to_daily(p, c, v, dates, assets, lagged=f in fu.REPORT_FIELDS)
                data[i][~listed] = np.nan
    del raw, mktcap

    meta: dict[str, Any] = {
        "source": str(root),
        "loader": f"deepalpha.data.cn.load_cn v{LOADER_VERSION}",
        "options": options,
        "caveats": list(CAVEATS),
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
    root = Path(path)
    prices = root / "prices"
    dates = read_calendar(prices)
    inst_path = prices / "instruments" / "all.txt"
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
    raw = read_price_bins(root, assets, INDEX_FIELDS, len(dates))
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
