"""Information coefficients, vectorised over dates.

Shapes: ``T`` dates, ``N`` assets. Every function takes dense arrays:

- ``signal float[T, N]``: the score known at the close of date t;
- ``label float[T, N]``: the forward return for the signal's date (label[t] starts after t);
- ``mask bool[T, N]`` (optional): universe & tradable at t.

A stock enters date t's cross-section when ``mask`` is true and both signal and label are finite.
IC is Pearson, RankIC is Spearman (Pearson on average ranks, ties averaged), per date; a date with
fewer than 3 valid stocks, or with a constant signal or label, gives NaN. All accumulation is in
float64. Work is done in blocks of dates so that memory stays bounded on big panels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from deepalpha.errors import DataError

#: Dates per block; keeps temporaries at a few x (block x N x 8) bytes.
BLOCK = 256
MIN_VALID = 3


def _check_pair(signal: np.ndarray, label: np.ndarray, mask: np.ndarray | None) -> None:
    if signal.ndim != 2:
        raise DataError(f"signal must be [T, N], got shape {list(signal.shape)}", field="signal")
    if label.shape != signal.shape:
        raise DataError(
            f"label shape {list(label.shape)} != signal shape {list(signal.shape)}", field="label"
        )
    if mask is not None and mask.shape != signal.shape:
        raise DataError(
            f"mask shape {list(mask.shape)} != signal shape {list(signal.shape)}", field="mask"
        )


def valid_mask(*arrays: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``bool[T, N]``: every array finite and ``mask`` (when given) true."""
    v = np.isfinite(arrays[0])
    for a in arrays[1:]:
        v &= np.isfinite(a)
    if mask is not None:
        v &= np.asarray(mask, dtype=bool)
    return v


def _pearson_rows(x: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of ``x`` and ``y`` over ``v`` (all ``[B, N]``) -> float64[B]."""
    n = v.sum(axis=1)
    x = np.where(v, x, 0.0).astype(np.float64, copy=False)
    y = np.where(v, y, 0.0).astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = x.sum(axis=1) / n
        my = y.sum(axis=1) / n
        dx = np.where(v, x - mx[:, None], 0.0)
        dy = np.where(v, y - my[:, None], 0.0)
        sxy = np.einsum("ij,ij->i", dx, dy)
        sxx = np.einsum("ij,ij->i", dx, dx)
        syy = np.einsum("ij,ij->i", dy, dy)
        r = sxy / np.sqrt(sxx * syy)
    bad = (n < MIN_VALID) | (sxx <= 0) | (syy <= 0) | ~np.isfinite(r)
    r[bad] = np.nan
    return np.clip(r, -1.0, 1.0)


def rank_rows(x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Average ranks (1-based, ties averaged) within each row over ``valid`` entries.

    ``x float[B, N]`` -> ``float64[B, N]``, NaN where not valid (or not finite). Equal to
    ``scipy.stats.rankdata(row[valid], method="average")`` per row.
    """
    x = np.asarray(x, dtype=np.float64)
    v = np.isfinite(x) if valid is None else (valid & np.isfinite(x))
    B, N = x.shape
    xs = np.where(v, x, np.nan)
    order = np.argsort(xs, axis=1)  # NaN sort last; ties are averaged, so order among them is moot
    s = np.take_along_axis(xs, order, axis=1)
    j = np.broadcast_to(np.arange(N), (B, N))
    new = np.ones((B, N), dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]  # NaN != NaN: each NaN starts its own run
    start = np.maximum.accumulate(np.where(new, j, 0), axis=1)
    last = np.ones((B, N), dtype=bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, j, N)[:, ::-1], axis=1)[:, ::-1]
    avg = (start + end) * 0.5 + 1.0
    out = np.empty((B, N), dtype=np.float64)
    np.put_along_axis(out, order, avg, axis=1)
    out[~v] = np.nan
    return out


def ic(signal: np.ndarray, label: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson IC per date.

    Parameters
    ----------
    signal, label : float[T, N]
    mask : bool[T, N], optional

    Returns
    -------
    float64[T]
        NaN on dates with fewer than 3 valid stocks or a constant signal/label.
    """
    signal = np.asarray(signal)
    label = np.asarray(label)
    _check_pair(signal, label, mask)
    T = signal.shape[0]
    out = np.empty(T, dtype=np.float64)
    for a in range(0, T, BLOCK):
        b = min(a + BLOCK, T)
        v = valid_mask(signal[a:b], label[a:b], mask=None if mask is None else mask[a:b])
        out[a:b] = _pearson_rows(signal[a:b], label[a:b], v)
    return out


def rank_ic(signal: np.ndarray, label: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Spearman RankIC per date (average ranks for ties, over the jointly valid stocks).

    Parameters
    ----------
    signal, label : float[T, N]
    mask : bool[T, N], optional

    Returns
    -------
    float64[T]
        Equal to ``scipy.stats.spearmanr`` per date (alphalens' "IC"); NaN on dates with fewer
        than 3 valid stocks or constant ranks.
    """
    signal = np.asarray(signal)
    label = np.asarray(label)
    _check_pair(signal, label, mask)
    T = signal.shape[0]
    out = np.empty(T, dtype=np.float64)
    for a in range(0, T, BLOCK):
        b = min(a + BLOCK, T)
        v = valid_mask(signal[a:b], label[a:b], mask=None if mask is None else mask[a:b])
        rs = rank_rows(signal[a:b], v)
        rl = rank_rows(label[a:b], v)
        out[a:b] = _pearson_rows(rs, rl, v)
    return out


def newey_west_se(x: np.ndarray, lags: int) -> float:
    """Newey-West (Bartlett kernel) standard error of the mean of ``x float[n]`` (finite values).

    ``var(mean) = (γ0 + 2 Σ_{l=1..L} (1 − l/(L+1)) γ_l) / n`` with ``γ_l = Σ_t e_t e_{t−l} / n``,
    ``e = x − mean`` (no small-sample correction; statsmodels' HAC with ``use_correction=False``).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n < 2:
        return float("nan")
    e = x - x.mean()
    s = e @ e / n
    for l in range(1, min(lags, n - 1) + 1):
        s += 2.0 * (1.0 - l / (lags + 1.0)) * (e[l:] @ e[:-l]) / n
    return float(np.sqrt(max(s, 0.0) / n))


def default_nw_lags(n: int) -> int:
    """Newey-West (1994) rule of thumb ``floor(4 (n/100)^(2/9))``."""
    return int(np.floor(4.0 * (max(n, 1) / 100.0) ** (2.0 / 9.0)))


def ic_summary(
    ic_series: np.ndarray, periods_per_year: float, nw_lags: int | None = None
) -> dict[str, float]:
    """Summary of a per-date IC series ``float[T]`` (NaN dates are skipped).

    Returns
    -------
    dict
        ``mean``, ``std`` (ddof=1), ``icir`` (raw: mean/std per period), ``icir_annualised``
        (``icir × √periods_per_year``), ``win_rate`` (share of dates with IC > 0), ``t_stat``
        (plain, ``mean/std·√n``), ``t_nw`` (Newey-West, ``nw_lags`` lags, default
        ``floor(4 (n/100)^(2/9))``), ``nw_lags``, ``n`` (valid dates), ``periods_per_year``.
    """
    if periods_per_year <= 0:
        raise DataError(f"periods_per_year must be > 0, got {periods_per_year}")
    x = np.asarray(ic_series, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    lags = default_nw_lags(n) if nw_lags is None else int(nw_lags)
    nan = float("nan")
    if n == 0:
        return {
            "mean": nan,
            "std": nan,
            "icir": nan,
            "icir_annualised": nan,
            "win_rate": nan,
            "t_stat": nan,
            "t_nw": nan,
            "nw_lags": lags,
            "n": 0,
            "periods_per_year": float(periods_per_year),
        }
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else nan
    icir = mean / std if n > 1 and std > 0 else nan
    se = newey_west_se(x, lags)
    return {
        "mean": mean,
        "std": std,
        "icir": icir,
        "icir_annualised": icir * float(np.sqrt(periods_per_year)),
        "win_rate": float((x > 0).mean()),
        "t_stat": icir * float(np.sqrt(n)),
        "t_nw": mean / se if se > 0 else nan,
        "nw_lags": lags,
        "n": n,
        "periods_per_year": float(periods_per_year),
    }


def forward_returns(returns_1d: np.ndarray, horizon: int) -> np.ndarray:
    """Compound label-aligned 1-period returns into ``horizon``-period forward returns.

    ``returns_1d[t]`` is the first period's return of a position formed on date t (a 1-period
    label). Output ``[t] = Π_{k<horizon} (1 + returns_1d[t+k]) − 1``; NaN when any of those is NaN
    or runs past the end. ``float[T, N]`` -> ``float64[T, N]``.
    """
    if horizon < 1:
        raise DataError(f"horizon must be >= 1, got {horizon}")
    r = np.asarray(returns_1d, dtype=np.float64)
    T = r.shape[0]
    g = np.full(r.shape, np.nan)
    if horizon > T:
        return g
    g[: T - horizon + 1] = 1.0 + r[: T - horizon + 1]
    for k in range(1, horizon):
        g[: T - horizon + 1] *= 1.0 + r[k : T - horizon + 1 + k]
    return g - 1.0


def ic_decay(
    signal: np.ndarray,
    returns_1d: np.ndarray,
    horizons: Iterable[int] = (1, 5, 10, 20),
    mask: np.ndarray | None = None,
) -> dict[int, float]:
    """Mean RankIC of ``signal`` against the h-period forward return, for each h in ``horizons``.

    ``returns_1d float[T, N]`` is label-aligned (see `forward_returns`). Returns ``{h: mean}``.
    """
    out: dict[int, float] = {}
    for h in horizons:
        r = rank_ic(signal, forward_returns(returns_1d, int(h)), mask)
        out[int(h)] = float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")
    return out
