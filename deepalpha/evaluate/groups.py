"""Quantile-group tests, vectorised over dates.

Shapes: ``T`` dates, ``N`` assets, ``G`` groups (5 or 10 typically), ``R`` rebalance dates.

Conventions
-----------
- ``groups int8[T, N]``: 0 = lowest signal ... G−1 = highest, −1 = excluded.
- Quantile edges are those of ``pandas.qcut`` (linear-interpolated quantiles of the date's valid
  values, bins right-closed, the lowest value in group 0), so ties always share a group and the
  assignment equals alphalens' ``factor_quantile − 1``. (alphalens drops a whole date when its
  edges are not unique; we keep the date, with tied values in one group.)
- ``returns_1d float[T, N]`` is label-aligned: ``returns_1d[t]`` is the first period's return of
  a position formed on the signal of date t (a 1-period label). Holdings formed at rebalance date
  r earn ``returns_1d[r], ..., returns_1d[r+h−1]``; row t of a group return series is therefore
  the return earned in the period after date t. A NaN return counts as 0 (price carried).
"""

from __future__ import annotations

import numpy as np

from deepalpha.errors import DataError
from deepalpha.evaluate.ic import argsort_rows, flat_rows, for_blocks

BLOCK = 256


def qcut_quantiles(n_groups: int) -> np.ndarray:
    """The ``n_groups + 1`` quantile levels pandas.qcut uses (non-dyadic levels nudged up)."""
    q = np.linspace(0.0, 1.0, n_groups + 1)
    exact = n_groups * q == np.arange(n_groups + 1)
    return np.where(exact, q, np.nextafter(q, 1.0))


def _groups_rows(x: np.ndarray, seg: np.ndarray | None, n_groups: int, n_seg: int) -> np.ndarray:
    """Quantile groups within each (row, segment). ``x float64[B, N]`` (NaN = excluded),
    ``seg int[B, N]`` in ``0..n_seg−1`` (``n_seg`` = excluded) or None (one segment per row).
    Returns ``int8[B, N]``."""
    B, N = x.shape
    valid = np.isfinite(x)
    order, xs = argsort_rows(x)  # NaN last
    if seg is not None:
        # (segment, value) order: value order first, then a stable sort on the segment id
        seg = np.where(valid, seg, n_seg)
        seg1 = np.take_along_axis(seg, order, axis=1)
        o2 = np.argsort(seg1, axis=1, kind="stable")
        order = np.take_along_axis(order, o2, axis=1)
        sg = np.take_along_axis(seg1, o2, axis=1)
        xs = np.take_along_axis(x, order, axis=1)
    else:
        sg = np.where(np.isfinite(xs), 0, n_seg)
    s = xs.ravel()
    flat_sg = sg.ravel()
    new = np.ones(B * N, dtype=bool)
    new[1:] = flat_sg[1:] != flat_sg[:-1]
    new[::N] = True  # each row starts new segments
    heads = np.flatnonzero(new)  # flat start index of each segment
    sizes = np.diff(np.append(heads, B * N))
    seg_of = np.cumsum(new) - 1  # segment number of each sorted element
    label = np.zeros(B * N, dtype=np.int16)
    mm1 = (sizes - 1).astype(np.float64)
    for q in qcut_quantiles(n_groups)[1:-1]:
        # numpy's "linear" quantile of each segment, computed exactly as np.quantile does
        vi = mm1 * q
        prev = np.floor(vi)
        gamma = vi - prev
        lo = heads + prev.astype(np.int64)
        hi = np.minimum(lo + 1, heads + sizes - 1)
        a, b = s[lo], s[hi]
        d = b - a
        edge = np.where(gamma >= 0.5, b - d * (1.0 - gamma), a + d * gamma)
        label += s > edge[seg_of]
    lab = np.where(flat_sg < n_seg, label, -1).astype(np.int8).reshape(B, N)
    out = np.empty((B, N), dtype=np.int8)
    np.put(out, flat_rows(order), lab)
    return out


def quantile_groups(
    signal: np.ndarray,
    mask: np.ndarray | None = None,
    n_groups: int = 10,
    industry: np.ndarray | None = None,
    *,
    workers: int = 1,
) -> np.ndarray:
    """Quantile group of each stock per date.

    Parameters
    ----------
    signal : float[T, N]
    mask : bool[T, N], optional
        Universe & tradable; NaN signals are excluded automatically.
    n_groups : int
        Number of equal-count groups (ties share a group).
    industry : int[T, N] or int[N], optional
        Industry codes (>= 0; negative = unknown, excluded). When given, quantiles are taken
        within each industry on each date (industry-neutral groups).
    workers : int
        Threads over blocks of dates (same result for any value).

    Returns
    -------
    int8[T, N]
        0..n_groups−1 (0 = lowest signal), −1 where excluded.
    """
    signal = np.asarray(signal)
    if signal.ndim != 2:
        raise DataError(f"signal must be [T, N], got shape {list(signal.shape)}", field="signal")
    if not 1 <= n_groups <= 127:
        raise DataError(f"n_groups must be in 1..127, got {n_groups}")
    T, N = signal.shape
    if mask is not None and mask.shape != (T, N):
        raise DataError(f"mask shape {list(mask.shape)} != [{T}, {N}]", field="mask")
    ind = None
    n_seg = 1
    if industry is not None:
        ind = np.asarray(industry)
        if ind.shape == (N,):
            ind = np.broadcast_to(ind, (T, N))
        if ind.shape != (T, N):
            raise DataError(
                f"industry must be [T, N] or [N], got {list(ind.shape)}", field="industry"
            )
        if ind.dtype.kind not in "iu":
            raise DataError(
                "industry codes must be integers (factorise names first)", field="industry"
            )
        n_seg = int(ind.max()) + 1 if ind.size else 1
    out = np.empty((T, N), dtype=np.int8)

    def block(a: int, b: int) -> None:
        x = np.asarray(signal[a:b], dtype=np.float64)
        v = np.isfinite(x)
        if mask is not None:
            v &= mask[a:b]
        seg = None
        if ind is not None:
            seg = ind[a:b].astype(np.int64)
            v &= seg >= 0
        out[a:b] = _groups_rows(np.where(v, x, np.nan), seg, n_groups, n_seg)

    for_blocks(T, block, workers)
    return out


def group_mean(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Equal-weight mean of ``values`` per group per date (alphalens' by-date quantile mean).

    ``groups int8[T, N]``, ``values float[T, N]`` (NaN skipped) -> ``float64[T, n_groups]``,
    NaN where a group has no finite value.
    """
    if groups.shape != values.shape:
        raise DataError(f"groups {list(groups.shape)} and values {list(values.shape)} differ")
    T = groups.shape[0]
    ok = (groups >= 0) & (groups < n_groups) & np.isfinite(values)
    # one bin per (date, group) plus a dump bin T*G for excluded cells
    cell = np.arange(0, T * n_groups, n_groups, dtype=np.intp)[:, None] + groups
    np.putmask(cell, ~ok, T * n_groups)
    cell = cell.ravel()
    w = np.where(ok, values, 0.0).astype(np.float64, copy=False).ravel()
    s = np.bincount(cell, weights=w, minlength=T * n_groups + 1)[:-1]
    n = np.bincount(cell, minlength=T * n_groups + 1)[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (s / n).reshape(T, n_groups)


def rebalance_dates(T: int, rebalance_every: int, offset: int = 0) -> np.ndarray:
    """Indices ``offset, offset+h, ...`` (< T) of the rebalance dates."""
    if rebalance_every < 1:
        raise DataError(f"rebalance_every must be >= 1, got {rebalance_every}")
    if not 0 <= offset < max(T, 1):
        raise DataError(f"offset must be in 0..{T - 1}, got {offset}")
    return np.arange(offset, T, rebalance_every)


def _blocks(x: np.ndarray, reb: np.ndarray, h: int, fill: float) -> np.ndarray:
    """``x[T, N]`` from ``reb[0]`` on, padded with ``fill`` and reshaped to ``[R, h, N]``."""
    N = x.shape[1]
    R = len(reb)
    pad = np.full((R * h, N), fill, dtype=np.float64)
    seg = x[reb[0] :]
    pad[: len(seg)] = seg
    return pad.reshape(R, h, N)


def group_returns(
    groups: np.ndarray,
    returns_1d: np.ndarray,
    rebalance_every: int,
    n_groups: int,
    offset: int = 0,
) -> np.ndarray:
    """Equal-weight group returns with holdings refreshed every ``rebalance_every`` dates.

    At each rebalance date r (``offset + k·h``) every group is bought equal-weighted from
    ``groups[r]``; between rebalances the positions drift with their returns (buy and hold).

    Parameters
    ----------
    groups : int8[T, N]
    returns_1d : float[T, N]
        Label-aligned 1-period returns (module docstring); NaN counts as 0.
    rebalance_every : int
        ``h`` in dates (1 = rebalance every date).
    n_groups : int

    Returns
    -------
    float64[T, n_groups]
        Row t = the group's return over the period after date t; NaN before ``offset`` and for a
        group that was empty at its last rebalance. Long-short: `long_short`.
    """
    if groups.shape != returns_1d.shape:
        raise DataError(
            f"groups {list(groups.shape)} and returns {list(returns_1d.shape)} differ",
            field="returns_1d",
        )
    T = groups.shape[0]
    h = int(rebalance_every)
    reb = rebalance_dates(T, h, offset)
    out = np.full((T, n_groups), np.nan)
    if T == 0:
        return out
    r = np.asarray(returns_1d, dtype=np.float64)
    step = max(1, BLOCK // h)  # rebalances per block
    for a in range(0, len(reb), step):
        rb = reb[a : a + step]
        t0, t1 = rb[0], min(rb[-1] + h, T)
        rr = np.nan_to_num(r[t0:t1], nan=0.0)
        growth = np.cumprod(1.0 + _blocks(rr, rb - t0, h, 0.0), axis=1)  # [R, h, N]
        g = groups[rb]
        onehot = (g[:, :, None] == np.arange(n_groups)).astype(np.float64)  # [R, N, G]
        count = onehot.sum(axis=1)  # [R, G]
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.matmul(growth, onehot) / count[:, None, :]  # [R, h, G]
            prev = np.concatenate([np.ones_like(value[:, :1]), value[:, :-1]], axis=1)
            ret = (value / prev - 1.0).reshape(-1, n_groups)
        out[t0:t1] = ret[: t1 - t0]
    return out


def long_short(group_ret: np.ndarray) -> np.ndarray:
    """Top minus bottom group return per date: ``group_ret[:, -1] − group_ret[:, 0]``."""
    return group_ret[:, -1] - group_ret[:, 0]


def group_turnover(
    groups: np.ndarray,
    rebalance_every: int,
    n_groups: int,
    returns_1d: np.ndarray | None = None,
    offset: int = 0,
) -> np.ndarray:
    """One-sided turnover of each equal-weight group at each rebalance.

    ``turnover = ½ Σ_i |w_new,i − w_old,i|`` (= Σ buys = Σ sells), where ``w_new`` is the equal
    weight on the new members and ``w_old`` the previous rebalance's equal weights (or, when
    ``returns_1d`` is given, those weights after drifting with returns until this rebalance).

    Returns
    -------
    float64[R, n_groups]
        Row k = rebalance ``offset + k·h``; row 0 is NaN (initial purchase), NaN where a group is
        empty at either end.
    """
    T, N = groups.shape
    h = int(rebalance_every)
    reb = rebalance_dates(T, h, offset)
    R = len(reb)
    out = np.full((R, n_groups), np.nan)
    if R < 2:
        return out
    g = groups[reb]  # [R, N]
    drift = None
    if returns_1d is not None:
        if returns_1d.shape != groups.shape:
            raise DataError("returns_1d shape differs from groups", field="returns_1d")
        r = np.nan_to_num(np.asarray(returns_1d, dtype=np.float64), nan=0.0)
        drift = np.empty((R - 1, N))
        for k in range(R - 1):  # growth of each stock from rebalance k to k+1
            drift[k] = np.prod(1.0 + r[reb[k] : reb[k + 1]], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for q in range(n_groups):
            m = (g == q).astype(np.float64)
            w = m / m.sum(axis=1, keepdims=True)  # NaN rows when empty
            old = w[:-1]
            if drift is not None:
                old = old * drift
                old = old / old.sum(axis=1, keepdims=True)
            out[1:, q] = 0.5 * np.abs(w[1:] - old).sum(axis=1)
    return out


def rebalance_costs(
    turnover: np.ndarray,
    buy_rate: np.ndarray,
    sell_rate: np.ndarray,
    T: int,
    rebalance_every: int,
    offset: int = 0,
) -> np.ndarray:
    """Trading cost of each equal-weight group, charged on its rebalance rows.

    At rebalance k (date ``r = offset + k·h``) a group trades its one-sided turnover on both
    sides: ``cost = turnover[k] × (buy_rate[r] + sell_rate[r])``, as a fraction of the group's
    value. Where the turnover is NaN (the first rebalance, or a group empty at the previous one)
    the whole group is bought: ``cost = buy_rate[r]``.

    Parameters
    ----------
    turnover : float[R, G]
        `group_turnover` output (R rebalances).
    buy_rate, sell_rate : float[T] or scalars
        Cost per unit of value bought / sold by the trade of row t's rebalance
        (`deepalpha.portfolio.costs.cost_rates` at the trade dates).
    T : int
        Rows of the group return series.
    rebalance_every, offset : int
        As `group_returns`.

    Returns
    -------
    float64[T, G]
        The cost on rebalance rows, 0 elsewhere. ``group_returns(...) − cost`` is the net return
        (the cost is deducted from the first period's return after the rebalance).
    """
    to = np.asarray(turnover, dtype=np.float64)
    buy = np.broadcast_to(np.asarray(buy_rate, dtype=np.float64), (T,))
    sell = np.broadcast_to(np.asarray(sell_rate, dtype=np.float64), (T,))
    reb = rebalance_dates(T, int(rebalance_every), offset) if T else np.arange(0)
    if to.ndim != 2 or to.shape[0] != len(reb):
        raise DataError(
            f"turnover shape {list(to.shape)} != [{len(reb)} rebalances, G]", field="turnover"
        )
    out = np.zeros((T, to.shape[1]))
    b, s = buy[reb][:, None], sell[reb][:, None]
    out[reb] = np.where(np.isfinite(to), to * (b + s), b)
    return out
