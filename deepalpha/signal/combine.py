"""Per-date z-scores and combinations of several prediction sets.

Shapes: ``T`` dates, ``N`` assets, ``K`` signals.

Trailing-IC weights use only ICs known at the date. The IC of signal date s compares the signal
with a label that starts after s and runs ``horizon`` periods; under the DESIGN label convention
(enter at the t+1 close) that label is known at the close of ``s + 1 + horizon``. So at date t the
usable ICs are those of dates ``s <= t − known_after`` with ``known_after = horizon + 1`` by
default (set ``known_after = horizon`` for labels that start at the signal date's close, e.g.
monthly close-to-close returns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from deepalpha.errors import ConfigError, DataError
from deepalpha.evaluate.ic import ic as pearson_ic
from deepalpha.evaluate.ic import rank_ic


def zscore(x: np.ndarray, mask: np.ndarray | None = None, ddof: int = 0) -> np.ndarray:
    """Cross-sectional z-score per date over ``mask & finite(x)``.

    ``x float[T, N]`` -> ``float64[T, N]``: ``(x − mean_t) / std_t`` (std with ``ddof``, default
    population); NaN outside the valid set and on dates with fewer than 2 valid values or zero
    dispersion.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"x must be [T, N], got shape {list(x.shape)}")
    v = np.isfinite(x)
    if mask is not None:
        if mask.shape != x.shape:
            raise DataError(f"mask shape {list(mask.shape)} != {list(x.shape)}", field="mask")
        v &= mask
    n = v.sum(axis=1, keepdims=True)
    xv = np.where(v, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xv.sum(axis=1, keepdims=True) / n
        d = np.where(v, x - mean, 0.0)
        sd = np.sqrt((d * d).sum(axis=1, keepdims=True) / (n - ddof))
        z = d / sd
    ok = v & (n >= 2) & (sd > 0)
    return np.where(ok, z, np.nan)


def trailing_ic_weights(
    ics: np.ndarray,
    *,
    known_after: int,
    lookback: int,
    min_periods: int | None = None,
    method: Literal["mean", "icir"] = "mean",
    allow_negative: bool = False,
) -> np.ndarray:
    """Weights at each date from trailing IC statistics known at that date.

    Parameters
    ----------
    ics : float[T, K]
        Per-date IC of each signal (NaN = unknown).
    known_after : int
        The IC of date s is usable from date ``s + known_after`` on (>= 1).
    lookback : int
        Number of most recent usable IC dates averaged (the window ``[t − known_after −
        lookback + 1, t − known_after]``).
    min_periods : int, optional
        Minimum finite ICs in the window per signal (default ``max(2, lookback // 2)``).
    method : "mean" or "icir"
        Raw weight = mean IC, or mean/std of the ICs in the window.
    allow_negative : bool
        Keep negative raw weights (bet against a signal); default clips them to 0.

    Returns
    -------
    float64[T, K]
        Weights normalised to ``Σ|w| = 1`` per date; a row is NaN when no signal has
        ``min_periods`` ICs or all weights are 0.
    """
    ics = np.asarray(ics, dtype=np.float64)
    if ics.ndim != 2:
        raise DataError(f"ics must be [T, K], got shape {list(ics.shape)}")
    if known_after < 1:
        raise ConfigError(
            f"known_after must be >= 1 (an IC is never known on its own date), got {known_after}"
        )
    if lookback < 1:
        raise ConfigError(f"lookback must be >= 1, got {lookback}")
    if method not in ("mean", "icir"):
        raise ConfigError(f"method must be 'mean' or 'icir', got {method!r}")
    mp = max(2, lookback // 2) if min_periods is None else int(min_periods)
    T, K = ics.shape
    f = np.isfinite(ics)
    x = np.where(f, ics, 0.0)
    # cumulative sums with a leading zero row: S[i] = sum of rows < i
    zero = np.zeros((1, K))
    cs_n = np.concatenate([zero, np.cumsum(f, axis=0)])
    cs_x = np.concatenate([zero, np.cumsum(x, axis=0)])
    cs_x2 = np.concatenate([zero, np.cumsum(x * x, axis=0)])
    t = np.arange(T)
    hi = np.clip(t - known_after + 1, 0, T)  # exclusive end: rows <= t - known_after
    lo = np.clip(hi - lookback, 0, T)
    n = cs_n[hi] - cs_n[lo]
    s1 = cs_x[hi] - cs_x[lo]
    s2 = cs_x2[hi] - cs_x2[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        if method == "icir":
            var = np.maximum(s2 - n * mean * mean, 0.0) / (n - 1)
            raw = mean / np.sqrt(var)
        else:
            raw = mean
    raw = np.where((n >= mp) & np.isfinite(raw), raw, 0.0)
    if not allow_negative:
        raw = np.maximum(raw, 0.0)
    tot = np.abs(raw).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = raw / tot
    return np.where(tot > 0, w, np.nan)


def combine(
    signals: Sequence[np.ndarray],
    weights: Literal["equal", "ic"] | Sequence[float] | np.ndarray = "equal",
    labels: np.ndarray | None = None,
    *,
    horizon: int = 1,
    lookback: int = 12,
    known_after: int | None = None,
    mask: np.ndarray | None = None,
    ic_kind: Literal["rank", "pearson"] = "rank",
    method: Literal["mean", "icir"] = "mean",
    min_periods: int | None = None,
    allow_negative: bool = False,
    rezscore: bool = True,
    return_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Combine K prediction sets into one score per date.

    Each signal is z-scored per date (over ``mask``), then summed with weights; a stock missing
    in some signals gets the weighted mean of the ones it has (weights renormalised over them).

    Parameters
    ----------
    signals : list of float[T, N]
    weights : "equal", "ic", or float[K] / float[T, K]
        ``"ic"`` uses `trailing_ic_weights` of each z-scored signal's IC against ``labels``.
    labels : float[T, N]
        Forward returns (label[t] starts after t); required for ``"ic"``.
    horizon : int
        Label horizon in dates; sets the default ``known_after = horizon + 1``.
    lookback : int
        Trailing window of usable IC dates.
    known_after : int, optional
        Override the IC availability delay (see module docstring).
    mask : bool[T, N], optional
        Universe; the z-scores and ICs use only these stocks.
    ic_kind : "rank" (Spearman) or "pearson"
    method, min_periods, allow_negative
        Passed to `trailing_ic_weights`.
    rezscore : bool
        Z-score the combined score per date (default).
    return_weights : bool
        Also return the ``float64[T, K]`` weights used.

    Returns
    -------
    float64[T, N] (and float64[T, K] when ``return_weights``)
        NaN where no signal is available or, for ``"ic"``, before any IC is known.
    """
    if len(signals) == 0:
        raise ConfigError("combine needs at least one signal")
    shape = np.shape(signals[0])
    for k, s in enumerate(signals):
        if np.shape(s) != shape or len(shape) != 2:
            raise DataError(f"signal {k} has shape {list(np.shape(s))}, expected {list(shape)}")
    T, _ = shape
    K = len(signals)
    z = [zscore(s, mask) for s in signals]
    if isinstance(weights, str):
        if weights == "equal":
            w = np.full((T, K), 1.0 / K)
        elif weights == "ic":
            if labels is None:
                raise ConfigError("weights='ic' needs labels")
            if np.shape(labels) != shape:
                raise DataError(
                    f"labels shape {list(np.shape(labels))} != {list(shape)}", field="labels"
                )
            fn = rank_ic if ic_kind == "rank" else pearson_ic
            ics = np.stack([fn(zk, labels, mask) for zk in z], axis=1)
            w = trailing_ic_weights(
                ics,
                known_after=horizon + 1 if known_after is None else int(known_after),
                lookback=lookback,
                min_periods=min_periods,
                method=method,
                allow_negative=allow_negative,
            )
        else:
            raise ConfigError(f"weights must be 'equal', 'ic' or an array, got {weights!r}")
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape == (K,):
            w = np.broadcast_to(w, (T, K))
        if w.shape != (T, K):
            raise ConfigError(f"weights must be [K] or [T, K] with K={K}, got {list(w.shape)}")
    acc = np.zeros(shape)
    wsum = np.zeros(shape)
    for k, zk in enumerate(z):
        wk = w[:, k : k + 1]
        ok = np.isfinite(zk) & np.isfinite(wk)
        acc += np.where(ok, zk * wk, 0.0)
        wsum += np.where(ok, np.abs(wk), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(wsum > 0, acc / wsum, np.nan)
    if rezscore:
        out = zscore(out, mask)
    return (out, w) if return_weights else out
