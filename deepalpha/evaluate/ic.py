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

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from deepalpha.errors import DataError

#: Dates per block; keeps temporaries at a few x (block x N x 8) bytes.
BLOCK = 256
MIN_VALID = 3


def for_blocks(T: int, fn: Callable[[int, int], None], workers: int = 1) -> None:
    """Call ``fn(a, b)`` for each block ``[a, b)`` of ``BLOCK`` dates (``fn`` writes disjoint
    output slices). ``workers > 1`` runs blocks on a thread pool: the heavy numpy steps
    (sort, take/put, ufuncs) release the GIL, so this scales on idle cores; results are
    identical to ``workers=1``."""
    spans = [(a, min(a + BLOCK, T)) for a in range(0, T, BLOCK)]
    if workers <= 1 or len(spans) < 2:
        for a, b in spans:
            fn(a, b)
        return
    with ThreadPoolExecutor(max_workers=int(workers)) as ex:
        for f in [ex.submit(fn, a, b) for a, b in spans]:
            f.result()


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


def flat_rows(order: np.ndarray) -> np.ndarray:
    """Row-wise column indices ``int64[B, N]`` -> flat indices into a C-contiguous ``[B, N]``."""
    B, N = order.shape
    return (order + np.arange(0, B * N, N, dtype=np.int64)[:, None]).ravel()


_SIGN = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


def argsort_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ascending order of ``x float[B, N]`` with NaN last -> ``(order intp[B, N],
    sorted float64[B, N])``.

    Fast path: each float64 is mapped to an order-preserving uint64 whose lowest
    ``ceil(log2 N)`` bits are replaced by the column index, and the packed keys are sorted
    in place (a plain sort is ~2-3x faster than ``argsort``). Values that agree in their top
    ``52 − log2 N`` mantissa bits (never for float32 data) land next to each other in index
    order; those short runs are then sorted by their true values, so the result is exact.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    N = x.shape[1]
    nb = max(1, int(np.ceil(np.log2(max(N, 2)))))
    if nb > 20:  # too wide to pack; plain argsort
        order = np.argsort(x, axis=1)
        return order, np.take_along_axis(x, order, axis=1)
    b = x.view(np.uint64)
    key = b >> np.uint64(63)  # 1 for negatives
    np.negative(key, out=key)  # all ones for negatives, 0 otherwise
    key |= _SIGN
    key ^= b  # negatives: bits flipped; positives: sign bit set -> unsigned order = float order
    np.putmask(key, np.isnan(x), _ALL)
    low = np.uint64((1 << nb) - 1)
    key &= ~low
    key |= np.arange(N, dtype=np.uint64)
    key.sort(axis=1)
    hi = key >> np.uint64(nb)  # the value part of each sorted key
    key &= low
    order = key.view(np.int64)
    # equal value parts may hide distinct values (closer than 2^-(52-nb) relative, e.g. limit
    # moves computed from different prices): those short runs are sorted by value exactly
    same = hi[:, 1:] == hi[:, :-1]
    same &= hi[:, 1:] != (_ALL >> np.uint64(nb))  # NaN (invalid) tail: order is moot
    if same.any():
        _sort_runs(x, order, same)
    s = x.ravel().take(flat_rows(order)).reshape(x.shape)  # ~2x faster than take_along_axis
    return order, s


def _sort_runs(x: np.ndarray, order: np.ndarray, same: np.ndarray) -> None:
    """Re-order, by the true values of ``x``, the runs of sorted positions flagged by
    ``same[:, j]`` (position j+1 continues the run of j). ``order`` is modified in place."""
    B, N = order.shape
    inrun = np.zeros((B, N), dtype=bool)
    inrun[:, 1:] |= same
    inrun[:, :-1] |= same
    pos = np.flatnonzero(inrun)
    start = np.ones((B, N), dtype=bool)
    start[:, 1:] = ~same
    run_id = np.cumsum(start.ravel())[pos]
    fo = order.reshape(-1)  # a view: order is C-contiguous
    cols = fo[pos]
    vals = x[pos // N, cols]
    fo[pos] = cols[np.lexsort((vals, run_id))]  # runs are contiguous, so each stays in place


def _ranks(x: np.ndarray, v: np.ndarray, fill: float) -> np.ndarray:
    """Average 1-based ranks of ``x[B, N]`` over ``v`` per row; ``fill`` elsewhere."""
    B, N = x.shape
    order, s = argsort_rows(np.where(v, x, np.nan))  # invalid sort last
    new = np.ones((B, N), dtype=bool)
    np.not_equal(s[:, 1:], s[:, :-1], out=new[:, 1:])  # NaN != NaN: each NaN its own run
    if new.all():  # no ties: rank = position + 1
        avg = np.broadcast_to(np.arange(1.0, N + 1.0), (B, N))
    else:  # runs of equal values share the mean of their positions
        f = new.ravel()
        heads = np.flatnonzero(f)  # every row starts a run (new[:, 0] is True)
        lens = np.diff(heads, append=f.size)
        avg = np.repeat(heads % N + (lens + 1) * 0.5, lens).reshape(B, N)
    out = np.empty((B, N), dtype=np.float64)
    np.put(out, flat_rows(order), avg)
    np.putmask(out, ~v, fill)
    return out


def rank_rows(x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Average ranks (1-based, ties averaged) within each row over ``valid`` entries.

    ``x float[B, N]`` -> ``float64[B, N]``, NaN where not valid (or not finite). Equal to
    ``scipy.stats.rankdata(row[valid], method="average")`` per row.
    """
    x = np.asarray(x, dtype=np.float64)
    v = np.isfinite(x) if valid is None else (valid & np.isfinite(x))
    return _ranks(x, v, np.nan)


def _rank_corr_rows(rx: np.ndarray, ry: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Pearson correlation of average ranks (0 outside the valid set) -> float64[B].

    Average ranks over n values sum to n(n+1)/2 whatever the ties, so the means are known and
    one pass per product suffices (ranks are small integers/halves: no cancellation issue).
    """
    n = n.astype(np.float64)
    c = n * ((n + 1.0) * 0.5) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        sxy = np.einsum("ij,ij->i", rx, ry) - c
        sxx = np.einsum("ij,ij->i", rx, rx) - c
        syy = np.einsum("ij,ij->i", ry, ry) - c
        r = sxy / np.sqrt(sxx * syy)
    tol = 1e-9 * np.maximum(c, 1.0)
    bad = (n < MIN_VALID) | (sxx <= tol) | (syy <= tol) | ~np.isfinite(r)
    r[bad] = np.nan
    return np.clip(r, -1.0, 1.0)


def ic(
    signal: np.ndarray, label: np.ndarray, mask: np.ndarray | None = None, *, workers: int = 1
) -> np.ndarray:
    """Pearson IC per date.

    Parameters
    ----------
    signal, label : float[T, N]
    mask : bool[T, N], optional
    workers : int
        Threads over blocks of dates (`for_blocks`; same result for any value).

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

    def block(a: int, b: int) -> None:
        v = valid_mask(signal[a:b], label[a:b], mask=None if mask is None else mask[a:b])
        out[a:b] = _pearson_rows(signal[a:b], label[a:b], v)

    for_blocks(T, block, workers)
    return out


def rank_ic(
    signal: np.ndarray, label: np.ndarray, mask: np.ndarray | None = None, *, workers: int = 1
) -> np.ndarray:
    """Spearman RankIC per date (average ranks for ties, over the jointly valid stocks).

    Parameters
    ----------
    signal, label : float[T, N]
    mask : bool[T, N], optional
    workers : int
        Threads over blocks of dates (`for_blocks`; same result for any value).

    Returns
    -------
    float64[T]
        Equal to ``scipy.stats.spearmanr`` per date (alphalens' "IC"); NaN on dates with fewer
        than 3 valid stocks or constant ranks.
    """
    return rank_ic_many(signal, [label], mask, workers=workers)[0]


def rank_ic_many(
    signal: np.ndarray,
    labels: Sequence[np.ndarray],
    mask: np.ndarray | None = None,
    *,
    workers: int = 1,
) -> np.ndarray:
    """RankIC of one signal against several labels (e.g. horizons) -> ``float64[H, T]``.

    The signal is ranked once per date and re-ranked only on dates where a label's missing
    values change the jointly valid set, so H labels cost about H + 1 sorts instead of 2H.
    """
    signal = np.asarray(signal)
    for lab in labels:
        _check_pair(signal, np.asarray(lab), mask)
    T = signal.shape[0]
    out = np.empty((len(labels), T), dtype=np.float64)

    def block(a: int, b: int) -> None:
        s = np.asarray(signal[a:b], dtype=np.float64)
        vs = np.isfinite(s)
        if mask is not None:
            vs &= mask[a:b]
        rs = _ranks(s, vs, 0.0)
        for k, lab in enumerate(labels):
            y = np.asarray(lab[a:b], dtype=np.float64)
            v = vs & np.isfinite(y)
            differ = (v != vs).any(axis=1)
            rx = rs
            if differ.any():
                rx = rs.copy()
                rx[differ] = _ranks(s[differ], v[differ], 0.0)
            ry = _ranks(y, v, 0.0)
            out[k, a:b] = _rank_corr_rows(rx, ry, v.sum(axis=1))

    for_blocks(T, block, workers)
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
    ic_series: np.ndarray,
    periods_per_year: float,
    nw_lags: int | None = None,
    *,
    horizon: int = 1,
) -> dict[str, float]:
    """Summary of a per-date IC series ``float[T]`` (NaN dates are skipped).

    ``horizon`` is the label horizon h in dates: with h > 1 consecutive ICs share h − 1 return
    days and the t-stat uses the flat-top HAC kernel of `deepalpha.evaluate.paired.hac_se`
    (Bartlett lags shrink the overlap's autocovariances and over-reject under the null: 11-13 %
    instead of 5 % at h = 10, see tests/test_eval_honest.py). ``horizon = 1`` is Newey-West
    (Bartlett) with ``floor(4 (n/100)^(2/9))`` lags. An explicit ``nw_lags`` forces Bartlett with
    that many lags.

    Returns
    -------
    dict
        ``mean``, ``std`` (ddof=1), ``icir`` (raw: mean/std per period), ``icir_annualised``
        (``icir × √periods_per_year``), ``win_rate`` (share of dates with IC > 0), ``t_stat``
        (plain, ``mean/std·√n``), ``t_nw`` (HAC t of the mean, see above), ``nw_lags`` (largest
        lag with non-zero weight), ``nw_kernel`` (``"bartlett"`` or ``"flat-top"``), ``n``
        (valid dates), ``periods_per_year``.
    """
    # imported here: paired.py imports this module
    from deepalpha.evaluate.paired import hac_lags, hac_se

    if periods_per_year <= 0:
        raise DataError(f"periods_per_year must be > 0, got {periods_per_year}")
    if horizon < 1:
        raise DataError(f"horizon must be >= 1, got {horizon}", field="horizon")
    x = np.asarray(ic_series, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    if nw_lags is not None:
        lags, kernel = int(nw_lags), "bartlett"
    elif horizon > 1:
        lags, kernel = 2 * hac_lags(n, horizon) - 1, "flat-top"
    else:
        lags, kernel = default_nw_lags(n), "bartlett"
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
            "nw_kernel": kernel,
            "n": 0,
            "periods_per_year": float(periods_per_year),
        }
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else nan
    icir = mean / std if n > 1 and std > 0 else nan
    if nw_lags is not None:
        se = newey_west_se(x, lags)
    else:
        se, lags, kernel = hac_se(x, horizon)
    return {
        "mean": mean,
        "std": std,
        "icir": icir,
        "icir_annualised": icir * float(np.sqrt(periods_per_year)),
        "win_rate": float((x > 0).mean()),
        "t_stat": icir * float(np.sqrt(n)),
        "t_nw": mean / se if se > 0 else nan,
        "nw_lags": lags,
        "nw_kernel": kernel,
        "n": n,
        "periods_per_year": float(periods_per_year),
    }


def forward_returns_many(returns_1d: np.ndarray, horizons: Sequence[int]) -> list[np.ndarray]:
    """Compound label-aligned 1-period returns into h-period forward returns for each h.

    ``returns_1d[t]`` is the first period's return of a position formed on date t (a 1-period
    label). Output ``[t] = Π_{k<h} (1 + returns_1d[t+k]) − 1``; NaN when any of those is NaN or
    runs past the end. ``float[T, N]`` -> list of ``float64[T, N]``. Window products are built
    from products over 1, 2, 4, ... periods (O(log h) passes instead of h).
    """
    hs = [int(h) for h in horizons]
    if any(h < 1 for h in hs):
        raise DataError(f"horizons must be >= 1, got {hs}")
    r = np.asarray(returns_1d, dtype=np.float64)
    T = r.shape[0]
    pw = {1: 1.0 + r}  # pw[k][t] = Π_{j<k} (1 + r[t+j]), t = 0..T-k
    k = 1
    while 2 * k <= max(hs, default=1) and 2 * k <= T:
        p = pw[k]
        pw[2 * k] = p[: len(p) - k] * p[k:]
        k *= 2
    out = []
    for h in hs:
        g = np.full(r.shape, np.nan)
        n = T - h + 1
        if n > 0:
            acc = None
            off = 0
            for k in sorted(pw, reverse=True):
                if h - off >= k:
                    part = pw[k][off : off + n]
                    acc = part.copy() if acc is None else np.multiply(acc, part, out=acc)
                    off += k
            g[:n] = acc
        out.append(g - 1.0)
    return out


def forward_returns(returns_1d: np.ndarray, horizon: int) -> np.ndarray:
    """``horizon``-period forward returns, see `forward_returns_many`. ``float64[T, N]``."""
    if horizon < 1:
        raise DataError(f"horizon must be >= 1, got {horizon}")
    return forward_returns_many(returns_1d, [horizon])[0]


def ic_decay(
    signal: np.ndarray,
    returns_1d: np.ndarray,
    horizons: Iterable[int] = (1, 5, 10, 20),
    mask: np.ndarray | None = None,
    *,
    workers: int = 1,
) -> dict[int, float]:
    """Mean RankIC of ``signal`` against the h-period forward return, for each h in ``horizons``.

    ``returns_1d float[T, N]`` is label-aligned (see `forward_returns`). Returns ``{h: mean}``.
    """
    hs = [int(h) for h in horizons]
    if not hs:
        return {}
    r = rank_ic_many(signal, forward_returns_many(returns_1d, hs), mask, workers=workers)
    return {
        h: float(np.nanmean(r[k])) if np.isfinite(r[k]).any() else float("nan")
        for k, h in enumerate(hs)
    }
