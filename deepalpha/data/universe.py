"""Point-in-time index membership and tradability masks (pure functions on arrays).

Shapes: ``T`` trading days, ``N`` assets. Every mask is ``bool[T, N]``.

Price limits (A-share rules, applied to the raw close vs the previous raw close in today's
share units, rounded half-up to 0.01 CNY):

* main board ±10 %
* ChiNext (SZ300/SZ301) ±10 % before 2020-08-24, ±20 % from that day
* STAR (SH688/SH689) ±20 %
* Beijing (BJ) ±30 %
* ST ±5 %: the data has no point-in-time ST flag. Two substitutes: (1) a one-price bar
  (``high == low``) with a move of at least 4.9 % counts as locked in its direction; (2) an
  optional ``st`` proxy mask (`st_proxy`: main-board stocks listed over 120 days but outside the
  CSI All Share index, which excludes ST stocks) marks a close exactly at the ±5 % price as locked.
  On the real data, stock-days outside CSI All Share close exactly at ±5 % 3.7 % of the time
  against 0.4 % inside, and about 2.5x their rate at ±4.8 %: the exclusion is a usable ST signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepalpha.data.codes import normalize_code
from deepalpha.errors import DataError

CHINEXT_20PCT_FROM = np.datetime64("2020-08-24", "D")
ONE_PRICE_MIN_MOVE = 0.049
ST_RATE = 0.05
ST_PROXY_MIN_AGE = 120


# ---------------------------------------------------------------------------- membership
def read_spells(
    path: str | Path, *, skipped: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a ``CODE<TAB>start<TAB>end`` file (inclusive spells).

    Returns ``(codes str[S] canonical, start datetime64[D][S], end datetime64[D][S])``.
    Raises `DataError` naming the file, line and code on a malformed row or ``end < start``.
    A code in an unknown style (the real ``csi300.txt`` lists ``SHT00018`` in 2005-2007) cannot
    match any stock: with ``skipped`` given, it is appended there and the row is dropped;
    otherwise it raises.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("missing membership file", file=path)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    parts = [ln.split("\t") for ln in lines]
    for i, pr in enumerate(parts, 1):
        if len(pr) < 3:
            raise DataError(f"row {i}: expected CODE<TAB>start<TAB>end", file=path)
    raw_codes = np.array([pr[0].strip() for pr in parts], dtype=object)
    # normalise each distinct code once
    canon: dict[str, str | None] = {}
    for c in set(raw_codes.tolist()):
        try:
            canon[c] = normalize_code(c, file=str(path))
        except DataError:
            if skipped is None:
                raise
            canon[c] = None
    codes_l = [canon[c] for c in raw_codes.tolist()]
    keep = np.array([c is not None for c in codes_l], dtype=bool)
    if skipped is not None:
        skipped.extend(raw_codes[~keep].tolist())
    try:
        starts = np.array([pr[1].strip() for pr in parts], dtype="datetime64[D]")
        ends = np.array([pr[2].strip() for pr in parts], dtype="datetime64[D]")
    except ValueError as e:
        raise DataError(f"unparseable date: {e}", file=path) from None
    codes = np.array([c if c is not None else "" for c in codes_l], dtype="U8")
    bad = keep & (ends < starts)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"row {i + 1}: spell ends before it starts", file=path, code=codes[i], date=ends[i]
        )
    return codes[keep], starts[keep], ends[keep]


def spells_to_mask(
    codes: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
) -> np.ndarray:
    """Inclusive spells -> ``bool[T, N]`` membership on the trading ``dates`` for ``assets``.

    Spells of codes not in ``assets`` are ignored (e.g. delisted members without prices).
    Vectorised with a difference array: +1 at the first date inside the spell, -1 after the last.
    """
    T, N = len(dates), len(assets)
    order = np.argsort(assets)
    sa = assets[order]
    pos = np.searchsorted(sa, codes)
    pos = np.clip(pos, 0, max(N - 1, 0))
    known = (sa[pos] == codes) if N else np.zeros(len(codes), bool)
    col = order[pos[known]]
    t0 = np.searchsorted(dates, starts[known], "left")
    t1 = np.searchsorted(dates, ends[known], "right")
    diff = np.zeros((T + 1, N), dtype=np.int16)
    np.add.at(diff, (t0, col), 1)
    np.add.at(diff, (t1, col), -1)
    return np.cumsum(diff[:T], axis=0, dtype=np.int16) > 0


def members_on(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray, date: object) -> np.ndarray:
    """Sorted unique codes whose spell contains ``date`` (inclusive)."""
    d = np.datetime64(date, "D")
    return np.unique(codes[(starts <= d) & (ends >= d)])


# ---------------------------------------------------------------------------- tradability
def board_codes(assets: np.ndarray) -> np.ndarray:
    """Board per asset: ``0`` main, ``1`` ChiNext, ``2`` STAR, ``3`` Beijing -> ``int8[N]``."""
    a = np.asarray(assets).astype("U8")
    out = np.zeros(len(a), dtype=np.int8)
    out[np.char.startswith(a, "SZ30")] = 1
    out[np.char.startswith(a, "SH68")] = 2
    out[np.char.startswith(a, "BJ")] = 3
    return out


def limit_rate(assets: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Daily price-limit rate ``float64[T, N]`` (0.10, 0.20 or 0.30) by board and date."""
    b = board_codes(assets)
    late = (np.asarray(dates, dtype="datetime64[D]") >= CHINEXT_20PCT_FROM)[:, None]
    rate = np.where(b == 3, 0.30, np.where(b == 2, 0.20, 0.10))[None, :]
    rate = np.broadcast_to(rate, (len(dates), len(b))).copy()
    rate[:, b == 1] = np.where(late, 0.20, 0.10)
    return rate


def _round_cny(x: np.ndarray) -> np.ndarray:
    """Round half-up to 0.01 CNY (exchange rule for limit prices)."""
    return np.floor(x * 100.0 + 0.5) / 100.0


def limit_masks(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    factor: np.ndarray,
    rate: np.ndarray,
    *,
    st: np.ndarray | None = None,
    block: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Limit-locked masks ``(limit_up, limit_down)``, each ``bool[T, N]``.

    ``close, high, low`` are back-adjusted ``[T, N]`` prices and ``factor`` the adjustment factor,
    so the raw close is ``close / factor`` and yesterday's reference price in today's share units
    is ``close[t-1] / factor[t]`` (correct across ex-dividend days). Limit prices are rounded
    half-up to 0.01 CNY; a raw close within half a fen of the limit counts as locked. A one-price
    bar (``high == low``) that moved at least 4.9 % counts as locked too (ST stocks at ±5 %).
    Where ``st`` (``bool[T, N]``, optional) is true, a close exactly at the ±5 % price (within
    half a fen) counts as locked too -- equality, not ``>=``, so a wrongly flagged ordinary stock
    that moves 7 % is not marked. The first bar of a stock (no previous close) is never locked.
    Computed in float64 over blocks of ``block`` days to bound memory.
    """
    T, N = close.shape
    up = np.zeros((T, N), dtype=bool)
    dn = np.zeros((T, N), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in range(1, T, block):
            b = min(a + block, T)
            f = factor[a:b].astype(np.float64)
            raw = close[a:b] / f
            prev = close[a - 1 : b - 1] / f
            r = rate[a:b]
            up_px = _round_cny(prev * (1.0 + r))
            dn_px = _round_cny(prev * (1.0 - r))
            u = raw >= up_px - 0.005
            d = raw <= dn_px + 0.005
            move = raw / prev - 1.0
            one = high[a:b] == low[a:b]
            u |= one & (move >= ONE_PRICE_MIN_MOVE)
            d |= one & (move <= -ONE_PRICE_MIN_MOVE)
            if st is not None:
                s_ = st[a:b]
                u |= s_ & (np.abs(raw - _round_cny(prev * (1.0 + ST_RATE))) < 0.005)
                d |= s_ & (np.abs(raw - _round_cny(prev * (1.0 - ST_RATE))) < 0.005)
            ok = np.isfinite(move)
            up[a:b] = u & ok
            dn[a:b] = d & ok
    return up, dn


def st_proxy(
    listed: np.ndarray,
    all_share: np.ndarray,
    covered: np.ndarray,
    age: np.ndarray,
    assets: np.ndarray,
) -> np.ndarray:
    """Point-in-time ST proxy ``bool[T, N]``: a main-board stock, listed for more than
    `ST_PROXY_MIN_AGE` trading days, outside CSI All Share (``all_share``) on a date the
    membership file covers (``covered``, ``bool[T]``). CSI All Share excludes ST/*ST stocks (and
    new or long-suspended ones, hence the age filter); the proxy has false positives and misses ST
    stocks before the file starts (2011-08-31 in the real data)."""
    main = (board_codes(assets) == 0)[None, :]
    return listed & ~all_share & covered[:, None] & main & (age > ST_PROXY_MIN_AGE)


def listed_days(first_day: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Trading days since listing, ``int32[T, N]`` (1 on the listing day, <= 0 before).

    ``first_day`` is ``datetime64[D][N]`` (list date, NaT = unknown -> treated as never listed).
    A list date before the calendar counts from the first calendar day minus the calendar days
    in between (so long-listed stocks are always old enough).
    """
    dates = np.asarray(dates, dtype="datetime64[D]")
    fd = np.asarray(first_day, dtype="datetime64[D]")
    idx = np.searchsorted(dates, fd, "left").astype(np.int64)
    before = fd < dates[0]
    # Calendar days before the calendar start: a lower bound on trading days already listed.
    idx[before] = -(dates[0] - fd[before]).astype(np.int64)
    idx[np.isnat(fd)] = np.iinfo(np.int32).max // 2
    t = np.arange(len(dates), dtype=np.int64)[:, None]
    return np.clip(t - idx[None, :] + 1, -(2**30), 2**30).astype(np.int32)


def tradable_mask(
    listed: np.ndarray,
    suspended: np.ndarray,
    limit_up: np.ndarray,
    limit_down: np.ndarray,
    age: np.ndarray,
    min_listed_days: int,
) -> np.ndarray:
    """``listed & ~suspended & ~limit_up & ~limit_down & age >= min_listed_days`` -> ``bool[T, N]``."""
    return listed & ~suspended & ~limit_up & ~limit_down & (age >= min_listed_days)


def entry_masks(
    suspended: np.ndarray,
    limit_up: np.ndarray,
    limit_down: np.ndarray,
    listed: np.ndarray,
    lag: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Whether a position formed on date t's signal can be entered at the close ``lag`` days later.

    Parameters
    ----------
    suspended, limit_up, limit_down, listed : bool[T, N]
        Daily masks (limit-locked at the close, as `limit_masks`).
    lag : int
        Days from the signal date to the entry close (1: System B enters at the t+1 close; System
        A's month-end signal enters at the close of the next trading day, i.e. row ``rows[k]``
        of the daily masks).

    Returns
    -------
    can_buy, can_sell : bool[T, N]
        Row t: listed, not suspended and not limit-up (``can_buy``) / not limit-down
        (``can_sell``) on day ``t + lag``. The last ``lag`` rows are False (no entry day).
    """
    if lag < 0:
        raise DataError(f"lag must be >= 0, got {lag}", field="lag")
    shape = np.shape(suspended)
    for name, m in (("limit_up", limit_up), ("limit_down", limit_down), ("listed", listed)):
        if np.shape(m) != shape:
            raise DataError(f"{name} shape {list(np.shape(m))} != {list(shape)}", field=name)
    ok = np.asarray(listed, bool) & ~np.asarray(suspended, bool)
    buy = ok & ~np.asarray(limit_up, bool)
    sell = ok & ~np.asarray(limit_down, bool)
    T = shape[0]
    can_buy = np.zeros(shape, dtype=bool)
    can_sell = np.zeros(shape, dtype=bool)
    if lag < T:
        can_buy[: T - lag] = buy[lag:]
        can_sell[: T - lag] = sell[lag:]
    return can_buy, can_sell


# ---------------------------------------------------------------------------- the `all` universe
SELECTED_SHARE = 0.9  # threshold of `folder_is_selected`


def index_history(members: np.ndarray) -> np.ndarray:
    """``bool[T, N]``: the stock has been a member (``members bool[T, N]``, any index union) on
    some date ``<= t`` -- known at ``t``, unlike "is a member at some time"."""
    return np.logical_or.accumulate(np.asarray(members, bool), axis=0)


def folder_is_selected(
    members: np.ndarray, listed: np.ndarray, all_share_codes: np.ndarray, assets: np.ndarray
) -> bool:
    """Whether the folder holds stocks *chosen* by index membership (as ``../shared/data/cn``:
    the stocks that were CSI 800/1000 members at some time and still trade), so that a stock's
    presence before it joins an index is future information.

    Both must hold: at least `SELECTED_SHARE` of the listed stocks were index members
    (``members bool[T, N]``, the union of the index masks) at some time, and the folder has
    prices for less than `SELECTED_SHARE` of the codes CSI All Share ever listed
    (``all_share_codes str[S]``; a whole-market folder misses only delisted stocks).
    """
    ever_listed = np.asarray(listed, bool).any(axis=0)
    if not ever_listed.any():
        return False
    ever_member = np.asarray(members, bool).any(axis=0)
    chosen = (ever_member & ever_listed).sum() >= SELECTED_SHARE * ever_listed.sum()
    codes = np.unique(np.asarray(all_share_codes))
    covered = np.isin(codes, np.asarray(assets)).mean() if codes.size else 0.0
    return bool(chosen and covered < SELECTED_SHARE)


def all_universe_mask(all_share: np.ndarray, index_union: np.ndarray, rule: str) -> np.ndarray:
    """Point-in-time ``all`` universe ``bool[T, N]``.

    ``all_share`` is CSI All Share membership (every listed stock before that file's coverage),
    ``index_union`` the union of the CSI 300/500/800/1000 memberships. ``rule``:

    * ``"csiall"``: ``all_share`` -- right when the data holds every stock of the market;
    * ``"index_history"``: ``all_share & index_history(index_union)`` -- a stock counts from the
      first day it is an index member: in a folder of stocks selected on index membership, its
      presence before then is future information (it is there because it joins later).
    """
    a = np.asarray(all_share, bool)
    if rule == "csiall":
        return a
    if rule == "index_history":
        return a & index_history(index_union)
    raise DataError(f"unknown all_universe rule {rule!r} (csiall, index_history)")
