"""Checks on the CN layout (real or synthetic). Each check returns a list of `DataError` so that
`deepalpha.data.audit.validate_cn` can report every problem while the loader raises the first
fatal one.

Problems found (each names the file, field, code and date where known): missing calendar,
instruments or ``.bin`` files; a ``.bin`` whose length disagrees with the calendar; fields of one
stock that disagree on start or length; NaN (in part of a bar) or inf values; non-positive prices
or factors; negative volume; ``high < low``; duplicate codes or rows; unsorted or duplicate dates;
unknown code styles; malformed membership, fundamentals or industry files.

Silent damage (warnings, `DamageWarning`, a count per stock): missing values inside a listed span
that no suspension rule explains, price moves beyond the board's limit without an
adjustment-factor change, volume <= 0 on days the price moves.

Pure checks on arrays: this module imports no loader. The folder-level walk that reads a CN
layout and runs every check is `deepalpha.data.audit.validate_cn`.

A bar with **every** price field NaN is a missing bar (the real data has three), not an error:
it is reported as a note and treated as suspended by the loader. A NaN volume next to a
carried-forward price is how the real data marks some suspensions (3,126 stock-days): also
suspended, also a note.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.errors import DataError


def bin_path(root: str | Path, code: str, name: str) -> str:
    """Path of one ``.bin``: ``<root>/prices/features/<code lower>/<name>.day.bin`` (a string:
    this is called once per file, and ``Path`` arithmetic costs more than the read)."""
    return f"{os.fspath(root)}/prices/features/{code.lower()}/{name}.day.bin"


def _first(mask: np.ndarray) -> tuple[int, int]:
    """First ``(t, n)`` where ``mask`` is true, in date order."""
    flat = np.flatnonzero(mask.reshape(-1))
    t, n = divmod(int(flat[0]), mask.shape[1])
    return t, n


def check_bars(
    arrays: Mapping[str, np.ndarray],
    listed: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    root: str | Path,
) -> list[DataError]:
    """Vectorised checks of ``[T, N]`` bar fields inside each stock's listed range.

    ``arrays`` maps field names (any of open, high, low, close, factor, volume) to ``float32[T, N]``;
    ``listed`` is ``bool[T, N]``. Returns one `DataError` per kind of problem and field, naming the
    first offending code and date and the count.
    """
    out: list[DataError] = []
    names = [k for k in ("open", "high", "low", "close", "volume", "factor") if k in arrays]
    if not names:
        return out
    nan_all = np.ones_like(listed)
    for k in names:
        if k != "volume":  # NaN volume with a carried price marks a suspension in the real data
            nan_all &= np.isnan(arrays[k])

    def report(bad: np.ndarray, name: str, what: str) -> None:
        bad = bad & listed
        if bad.any():
            t, n = _first(bad)
            cnt = int(bad.sum())
            out.append(
                DataError(
                    f"{what} ({cnt} value{'s' if cnt > 1 else ''})",
                    file=bin_path(root, str(assets[n]), name),
                    field=name,
                    code=str(assets[n]),
                    date=dates[t],
                )
            )

    with np.errstate(invalid="ignore"):
        for k in names:
            a = arrays[k]
            if k != "volume":
                report(np.isnan(a) & ~nan_all, k, "NaN in a partly filled bar")
            report(np.isinf(a), k, "infinite value")
            if k == "volume":
                report(a < 0, k, "negative volume")
            else:
                report(a <= 0, k, "non-positive price" if k != "factor" else "non-positive factor")
        if "high" in arrays and "low" in arrays:
            report(arrays["high"] < arrays["low"], "high", "high < low")
    return out


def check_instrument_spans(
    root: str | Path, listed: np.ndarray, dates: np.ndarray, assets: np.ndarray
) -> list[DataError]:
    """``instruments/all.txt`` first/last day of each stock must match its ``.bin`` history
    (first and last finite close; ``listed`` is ``bool[T, N]``)."""
    from deepalpha.data.codes import normalize_code
    from deepalpha.data.qlib_bin import read_instruments

    path = Path(root) / "prices" / "instruments" / "all.txt"
    spans = {
        normalize_code(c, file=str(path)): (s, e) for c, s, e in read_instruments(path.parents[1])
    }
    T = len(dates)
    any_ = listed.any(axis=0)
    first = listed.argmax(axis=0)
    last = T - 1 - listed[::-1].argmax(axis=0)
    out = []
    for n, a in enumerate(np.asarray(assets).tolist()):
        if a not in spans or not any_[n]:
            continue
        s, e = spans[a]
        if s != dates[first[n]] or e != dates[last[n]]:
            out.append(
                DataError(
                    f"instruments span {s}..{e} disagrees with the .bin history "
                    f"{dates[first[n]]}..{dates[last[n]]}",
                    file=path,
                    code=a,
                    date=s if s != dates[first[n]] else e,
                )
            )
    return out


def missing_bar_count(arrays: Mapping[str, np.ndarray], listed: np.ndarray) -> int:
    """Bars inside the listed range with every price field NaN (treated as suspended)."""
    m = listed.copy()
    for k, a in arrays.items():
        if k != "volume":
            m &= np.isnan(a)
    return int(m.sum())


def check_unique(values: np.ndarray, *, file: str | Path, what: str = "code") -> list[DataError]:
    """A `DataError` per duplicated value (``what`` = ``code`` or ``date``)."""
    u, c = np.unique(np.asarray(values), return_counts=True)
    out = []
    for v in u[c > 1][:10]:
        kw: dict[str, Any] = {"code": str(v)} if what == "code" else {"date": v}
        out.append(DataError(f"duplicate {what}", file=file, **kw))
    return out


def csi800_mismatch_dates(
    spells: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], dates: np.ndarray
) -> np.ndarray:
    """Month-end trading days where the csi800 members differ from csi300 + csi500."""
    from deepalpha.data.universe import members_on

    d = np.asarray(dates, dtype="datetime64[D]")
    month = d.astype("datetime64[M]")
    ends = d[np.append(month[1:] != month[:-1], True)]
    bad = []
    for t in ends:
        a = members_on(*spells["csi800"], t)
        b = np.union1d(members_on(*spells["csi300"], t), members_on(*spells["csi500"], t))
        if len(a) != len(b) or (a != b).any():
            bad.append(t)
    return np.array(bad, dtype="datetime64[D]")


# ----------------------------------------------------------------------------- silent damage
#: Days after a stock's first bar without a price limit (IPO days: main board day 1, ChiNext and
#: STAR days 1-5); jumps on them are not flagged.
IPO_FREE_DAYS = 5


@dataclass(frozen=True)
class DamageWarning:
    """A pattern that is not an error but usually means a broken download.

    ``counts`` maps each affected code to how many stock-days show the pattern; ``code`` and
    ``date`` name the first occurrence, ``file`` its ``.bin``.
    """

    kind: str
    message: str
    counts: dict[str, int]
    code: str
    date: str
    file: str

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        per = ", ".join(f"{c} {n}" for c, n in top[:10]) + (", ..." if len(top) > 10 else "")
        return (
            f"{self.message}: {self.total} stock-day(s) in {len(self.counts)} stock(s) "
            f"(first {self.code} on {self.date}, file={self.file}); per stock: {per}"
        )


def _damage(
    kind: str,
    message: str,
    bad: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    root: str | Path,
    field: str,
) -> DamageWarning | None:
    """A `DamageWarning` from a ``bool[T, N]`` mask (None when it is empty)."""
    if not bad.any():
        return None
    per = bad.sum(axis=0)
    counts = {str(assets[n]): int(per[n]) for n in np.flatnonzero(per)}
    t, n = _first(bad)
    code = str(assets[n])
    return DamageWarning(kind, message, counts, code, str(dates[t]), bin_path(root, code, field))


def _prev(a: np.ndarray) -> np.ndarray:
    """``a`` shifted one day later (row 0 NaN), float64."""
    out = np.full(a.shape, np.nan)
    out[1:] = a[:-1]
    return out


def price_moved(close: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """``bool[T, N]``: the (back-adjusted) close differs from the previous day's by more than
    ``rtol`` relative (False where either is missing)."""
    c = np.asarray(close, dtype=np.float64)
    p = _prev(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(c / p - 1.0) > rtol


def check_missing_runs(
    arrays: Mapping[str, np.ndarray],
    listed: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    root: str | Path,
) -> DamageWarning | None:
    """Missing values inside listed spans that no suspension rule explains.

    ``arrays``: ``float[T, N]`` bar fields (close required; volume optional); ``listed``
    ``bool[T, N]`` (first to last finite close). Counts stock-days with a missing close inside
    the span (the loader treats them as suspended, but a suspension carries the price with zero
    volume) and, where volume is given, a NaN volume on a day the price moved (a suspension
    carries the price). The message gives the number of separate runs.
    """
    close = np.asarray(arrays["close"])
    miss = listed & np.isnan(close)
    if "volume" in arrays:
        miss |= listed & np.isnan(arrays["volume"]) & price_moved(close)
    if not miss.any():
        return None
    prev = np.zeros_like(miss)
    prev[1:] = miss[:-1]
    runs = int((miss & ~prev).sum())
    longest = _longest_run(miss)
    return _damage(
        "missing",
        f"missing values inside listed spans not explained by a suspension ({runs} run(s), "
        f"longest {longest} day(s))",
        miss,
        dates,
        assets,
        root,
        "close",
    )


def _longest_run(m: np.ndarray) -> int:
    """Longest run of True down the date axis of ``bool[T, N]``."""
    run = np.zeros(m.shape[1], dtype=np.int64)
    best = 0
    for row in m:
        run = np.where(row, run + 1, 0)
        best = max(best, int(run.max(initial=0)))
    return best


def check_price_jumps(
    close: np.ndarray,
    factor: np.ndarray,
    listed: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    root: str | Path,
    *,
    free_days: int = IPO_FREE_DAYS,
) -> DamageWarning | None:
    """Day-on-day moves beyond the board's price limit with no adjustment-factor change.

    ``close`` back-adjusted, ``factor`` the adjustment factor (both ``float[T, N]``). The limit is
    `deepalpha.data.universe.limit_rate` (10 % main board, 20 % ChiNext from 2020-08-24 and
    STAR, 30 % Beijing) plus one price tick (0.005 CNY on the raw previous close); the first
    ``free_days`` bars of each stock (IPO days without a limit) are skipped. A jump on a day the
    factor changes is an ex-right day, not damage.
    """
    from deepalpha.data.universe import limit_rate

    c = np.asarray(close, dtype=np.float64)
    f = np.asarray(factor, dtype=np.float64)
    pc, pf = _prev(c), _prev(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        move = c / pc - 1.0
        raw_prev = pc / pf
        same_factor = np.abs(f / pf - 1.0) <= 1e-9
        tol = 0.005 / raw_prev + 1e-6
        bad = np.abs(move) > limit_rate(assets, dates) + tol
    age = np.cumsum(listed, axis=0)
    bad &= listed & same_factor & np.isfinite(move) & (age > free_days)
    return _damage(
        "jump",
        "price moves beyond the board's limit without an adjustment-factor change",
        bad,
        dates,
        assets,
        root,
        "close",
    )


def check_volume_moves(
    close: np.ndarray,
    volume: np.ndarray,
    listed: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    root: str | Path,
) -> DamageWarning | None:
    """Volume <= 0 on a day the (back-adjusted) close moved: a suspended stock carries its price,
    so a zero volume with a new price is a broken bar."""
    v = np.asarray(volume)
    with np.errstate(invalid="ignore"):
        bad = listed & (v <= 0) & price_moved(close)
    return _damage(
        "volume", "volume <= 0 on days the price moved", bad, dates, assets, root, "volume"
    )


def check_damage(
    arrays: Mapping[str, np.ndarray],
    listed: np.ndarray,
    dates: np.ndarray,
    assets: np.ndarray,
    root: str | Path,
) -> list[DamageWarning]:
    """Every silent-damage check that the given fields allow (close; factor; volume)."""
    out = [check_missing_runs(arrays, listed, dates, assets, root)]
    if "factor" in arrays:
        out.append(
            check_price_jumps(arrays["close"], arrays["factor"], listed, dates, assets, root)
        )
    if "volume" in arrays:
        out.append(
            check_volume_moves(arrays["close"], arrays["volume"], listed, dates, assets, root)
        )
    return [w for w in out if w is not None]
