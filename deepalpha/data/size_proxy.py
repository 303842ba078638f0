"""A size proxy for data without market cap: the trailing mean daily traded value.

DecompGRN de-means layer-1 outputs within market-cap groups. When the data has no market cap
(a plain Qlib folder, bars without ``total_mv``), the groups are formed on ``size_proxy``: the
mean raw traded value (CNY) over the last `WINDOW` trading days up to and including t, over the
days the stock traded (volume > 0), NaN with fewer than `MIN_DAYS` such days. Known at t's
close, so no look-ahead. Traded value ranks stocks much like cap does (large caps trade more),
but turnover differs by stock: it is a proxy, and the run's caveats say so.
"""

from __future__ import annotations

import numpy as np

WINDOW = 60
MIN_DAYS = 20
CAVEAT = (
    f"no market cap in the data: DecompGRN's cap groups use size_proxy, the mean daily traded "
    f"value over the last {WINDOW} trading days (days with volume > 0, at least {MIN_DAYS}), "
    "known at t"
)


def traded_value(
    raw_close: np.ndarray, volume: np.ndarray, amount: np.ndarray | None = None
) -> np.ndarray:
    """Daily traded value in CNY, ``float64[T, N]``: ``amount`` where given and finite, else
    ``raw_close x volume`` (volume in shares); NaN where neither is known."""
    with np.errstate(invalid="ignore"):
        v = np.asarray(raw_close, np.float64) * np.asarray(volume, np.float64)
    if amount is not None:
        a = np.asarray(amount, np.float64)
        v = np.where(np.isfinite(a), a, v)
    return v


def size_proxy(value: np.ndarray, window: int = WINDOW, min_days: int = MIN_DAYS) -> np.ndarray:
    """Trailing mean of positive daily traded value -> ``float32[T, N]``.

    ``value`` is ``float[T, N]`` (CNY; zero or NaN on days without trading, which are skipped).
    Row t averages rows ``t - window + 1 .. t``; NaN when fewer than ``min_days`` of them traded.
    """
    v = np.asarray(value, np.float64)
    ok = np.isfinite(v) & (v > 0)
    x = np.where(ok, v, 0.0)
    T = v.shape[0]
    cs = np.zeros((T + 1, *v.shape[1:]))
    cn = np.zeros((T + 1, *v.shape[1:]))
    np.cumsum(x, axis=0, out=cs[1:])
    np.cumsum(ok, axis=0, out=cn[1:])
    lo = np.maximum(np.arange(1, T + 1) - window, 0)
    s = cs[1:] - cs[lo]
    n = cn[1:] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n >= min_days, s / np.maximum(n, 1), np.nan)
    return out.astype(np.float32)


def cap_field_for(fields: tuple[str, ...] | list[str], cap_field: str | None) -> str | None:
    """The field DecompGRN's cap groups read: ``cap_field`` when the panel has it, else
    ``size_proxy`` when ``cap_field`` is ``mktcap`` and the panel has the proxy (the loader adds
    it, with `CAVEAT`, when the data has no market cap); otherwise ``cap_field`` unchanged (the
    dataset then names it as missing)."""
    if cap_field is None or cap_field in fields:
        return cap_field
    if cap_field == "mktcap" and "size_proxy" in fields:
        return "size_proxy"
    return cap_field
