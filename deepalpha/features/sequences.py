"""Alpha360-style daily sequences (DESIGN section 8).

For a date index ``t`` and window length ``L`` the features of stock ``i`` are the ``L`` days
``t-L+1 .. t`` of open, high, low, close, vwap and volume, with prices divided by the stock's
close at ``t`` and volume divided by its volume at ``t``; each of the ``L x F`` columns is then
robust-z-scored across the date's stocks and clipped. Only data up to the close of ``t`` is used.

Windows are `numpy.lib.stride_tricks.sliding_window_view` views of the ``[T, N]`` fields; a
date's ``[N, L, F]`` block is the only thing ever copied (never ``[T, N, L, F]``).

VWAP: the ``vwap`` field when the panel has one, else the typical price ``(high + low + close)/3``
(the CN data has no traded amount); `SequenceSource.vwap_source` says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from deepalpha.data.panel import Panel
from deepalpha.errors import ConfigError, DataError
from deepalpha.features.preprocess import robust_zscore

SEQ_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "vwap", "volume")
# optional derived sequence fields (not in the default set): ``turnover`` = volume / shares
PRICE_FIELDS = frozenset({"open", "high", "low", "close", "vwap"})


def windows(arr: np.ndarray, length: int) -> np.ndarray:
    """``[T, N] -> [T - L + 1, N, L]`` read-only view; row ``k`` is the window ending at ``k + L - 1``."""
    if length < 1 or length > arr.shape[0]:
        raise ConfigError(f"window length {length} must be in [1, T={arr.shape[0]}]")
    return sliding_window_view(arr, length, axis=0)


def turnover(panel: Panel) -> np.ndarray:
    """Daily share turnover ``volume / shares`` (float32[T, N], a fraction of the shares; NaN
    where shares are unknown or not positive).

    The panel's ``turnover`` field when it has one, else from ``volume`` and ``shares`` (CN data:
    period-end total cap / raw close, known from the period end on). As a sequence field it is
    the one input with a cross-sectional level: it is only z-scored across stocks, not divided by
    its value at ``t`` like prices and volume.
    """
    if panel.has("turnover"):
        return panel.field("turnover")
    for need in ("volume", "shares"):
        if not panel.has(need):
            raise DataError(f"no turnover field and no {need!r} to form it", field=need)
    shares = panel.field("shares")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = panel.field("volume") / np.where(shares > 0, shares, np.nan)
    return out.astype(np.float32)


@dataclass(frozen=True)
class SequenceSource:
    """The ``[T, N]`` arrays (views of a Panel, no copies) the sequence features are cut from.

    Attributes
    ----------
    arrays : tuple of float32[T, N], one per name in `fields`.
    fields : field names, in feature order.
    vwap_source : ``"vwap"`` (the panel's field) or ``"typical"`` ((H+L+C)/3), or ``"none"``.
    """

    arrays: tuple[np.ndarray, ...]
    fields: tuple[str, ...]
    vwap_source: str

    @classmethod
    def from_panel(cls, panel: Panel, fields: tuple[str, ...] = SEQ_FIELDS) -> SequenceSource:
        arrays = []
        vwap_source = "none"
        for f in fields:
            if f == "vwap" and not panel.has("vwap"):
                for need in ("high", "low", "close"):
                    if not panel.has(need):
                        raise DataError(
                            f"no vwap field and no {need!r} to form the typical price", field=need
                        )
                arrays.append(
                    (
                        (panel.field("high") + panel.field("low") + panel.field("close")) / 3.0
                    ).astype(np.float32)
                )
                vwap_source = "typical"
                continue
            if f == "turnover" and not panel.has("turnover"):
                arrays.append(turnover(panel))
                continue
            if f == "vwap":
                vwap_source = "vwap"
            arrays.append(panel.field(f))
        if "close" not in fields or "volume" not in fields:
            raise ConfigError(f"sequence fields need 'close' and 'volume', got {list(fields)}")
        return cls(tuple(arrays), tuple(fields), vwap_source)

    @property
    def n_dates(self) -> int:
        return self.arrays[0].shape[0]

    def raw_window(self, t: int, length: int, idx: np.ndarray | None = None) -> np.ndarray:
        """Raw (unnormalised) ``float32[n, L, F]`` window ending at ``t`` for stocks ``idx``."""
        if t < length - 1 or t >= self.n_dates:
            raise DataError(f"date index {t} has no full window of {length} days")
        cols = []
        for a in self.arrays:
            w = windows(a, length)[t - length + 1]  # [N, L] view
            cols.append(w if idx is None else w[idx])
        return np.stack(cols, axis=-1).astype(np.float32, copy=False)


def normalize_window(
    raw: np.ndarray, fields: tuple[str, ...], clip: float | None = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha360 normalisation of one date's windows.

    Parameters
    ----------
    raw : float32[n, L, F]
        Windows ending at the same date ``t`` (last step = ``t``).

    Returns
    -------
    x : float32[n, L, F]
        Prices / close at t, volume / volume at t, then robust z-score across the ``n`` stocks for
        each (step, field), clipped to ``+-clip``. Missing stays NaN.
    valid : float32[n]
        Fraction of finite entries per stock.
    """
    ci = fields.index("close")
    vi = fields.index("volume")
    last_close = raw[:, -1, ci][:, None]
    last_vol = raw[:, -1, vi][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        last_close = np.where(last_close > 0, last_close, np.nan)
        last_vol = np.where(last_vol > 0, last_vol, np.nan)
        rel = np.empty_like(raw)
        for k, f in enumerate(fields):
            base = last_vol if f == "volume" else last_close if f in PRICE_FIELDS else None
            rel[:, :, k] = raw[:, :, k] if base is None else raw[:, :, k] / base
    n, L, F = rel.shape
    z = robust_zscore(rel.reshape(n, L * F), axis=0, clip=clip).reshape(n, L, F)
    valid = np.isfinite(z).reshape(n, -1).mean(axis=1).astype(np.float32)
    return z, valid


def sequence_features(
    source: SequenceSource,
    t: int,
    length: int = 60,
    idx: np.ndarray | None = None,
    clip: float | None = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ``float32[n, L, F]`` features at date index ``t`` (see `normalize_window`)."""
    return normalize_window(source.raw_window(t, length, idx), source.fields, clip)
