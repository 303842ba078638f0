"""Paired difference of two signals' per-date series: "does model A beat model B?".

Given two series on the same dates (``a, b : float[T]``, e.g. the RankIC of mHC-MLP and of the
plain MLP, or their long-short returns), the test is on ``d_t = a_t − b_t`` over the dates where
both are finite: its mean, the share of dates with ``d > 0``, a heteroskedasticity- and
autocorrelation-consistent t-stat of the mean, and a moving-block bootstrap interval.

Overlapping labels. With an h-period label sampled every period (System B: 10-day returns,
daily dates) consecutive ICs share ``h − 1`` of their h return days, so ``d`` is autocorrelated
up to lag ``h − 1`` by construction, with a roughly triangular autocorrelation
``ρ_l ≈ (h − l)/h``. Newey-West's Bartlett kernel weights lag l by ``1 − l/(L + 1)``; on that
triangle it loses a share ``≈ h/(3(L + 1))`` of the long-run variance, so a Bartlett t stays
too large unless L ≫ h, and L ≫ h makes the variance estimate noisy. Simulated (h = 10,
n = 1,500, |t| > 1.96 under the null): Bartlett with ``default_nw_lags(n)`` = 7 lags rejects
14 %, with ``max(h − 1, default)`` 12 %, with ``2h`` 8 %, and no Bartlett lag does better than
~7 %. `hac_se` therefore uses, for ``horizon > 1``, the flat-top (trapezoid) kernel of Politis
& Romano built from two Newey-West estimates, which weights every lag up to the overlap by 1
(see `hac_se`); it rejects 5-6 % in the same simulation (tests/test_eval_paired.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deepalpha.errors import DataError
from deepalpha.evaluate.ic import default_nw_lags, newey_west_se

#: Fewer common dates than this give NaN statistics.
MIN_DATES = 3
CI_LEVEL = 0.95


def hac_lags(n: int, horizon: int) -> int:
    """Flat-top width ``M = max(h, default_nw_lags(n) + 1)`` for ``horizon h > 1``, or the
    Bartlett lag count ``default_nw_lags(n)`` for ``h = 1`` (see `hac_se`)."""
    if horizon <= 1:
        return default_nw_lags(n)
    return max(int(horizon), default_nw_lags(n) + 1)


def hac_se(d: np.ndarray, horizon: int = 1) -> tuple[float, int, str]:
    """Standard error of the mean of ``d float[n]`` (finite values) valid for h-period
    overlapping labels.

    - ``horizon == 1``: Newey-West (Bartlett) with ``L = default_nw_lags(n)`` lags, the same
      t as `deepalpha.evaluate.ic.ic_summary`.
    - ``horizon = h > 1``: flat-top kernel ``var = 2·NW(2M − 1)² − NW(M − 1)²`` with
      ``M = max(h, default_nw_lags(n) + 1)``, where ``NW(L)`` is `newey_west_se` with L lags.
      Bartlett weights ``1 − l/(L + 1)`` combine to weight 1 for lags ``l < M`` (every lag
      of the overlap, ``h − 1``, and of the default rule) and ``2 − l/M`` for ``M ≤ l < 2M``,
      so the overlap's autocovariances are not shrunk. The estimate is not positive by
      construction; when ``var <= 0`` (rare: negative autocorrelation at lags M..2M) the
      Bartlett ``NW(2M − 1)`` is used instead.

    Returns
    -------
    (se, lags, kernel)
        ``se`` (NaN for n < 2), ``lags`` the largest lag with non-zero weight (``L``, or
        ``2M − 1``), ``kernel`` ``"bartlett"`` or ``"flat-top"``.
    """
    d = np.asarray(d, dtype=np.float64)
    n = int(d.size)
    m = hac_lags(n, horizon)
    if horizon <= 1:
        return newey_west_se(d, m), m, "bartlett"
    wide = newey_west_se(d, 2 * m - 1)
    var = 2.0 * wide**2 - newey_west_se(d, m - 1) ** 2
    if not var > 0.0:
        return wide, 2 * m - 1, "bartlett"
    return math.sqrt(var), 2 * m - 1, "flat-top"


def block_length(n: int, horizon: int = 1) -> int:
    """Moving-block bootstrap block: ``max(h, ceil(n^(1/3)))`` dates (at least the overlap, and
    the usual ``n^(1/3)`` rate for serial dependence of unknown length)."""
    return max(int(horizon), math.ceil(max(n, 1) ** (1.0 / 3.0) - 1e-12))


def block_bootstrap_means(
    d: np.ndarray, block: int, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Moving-block bootstrap of the mean of ``d float[n]`` -> ``float64[n_boot]``.

    Each replicate glues ``ceil(n/block)`` blocks ``d[s:s + block]`` with starts ``s`` uniform
    on ``0..n − block`` and keeps the first n values (the last block is cut short). Block sums
    come from one cumulative sum, so memory is ``n_boot × ceil(n/block)`` integers.
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    b = min(int(block), n)
    k = -(-n // b)
    last = n - (k - 1) * b  # length of the last (cut) block, 1..b
    c = np.concatenate(([0.0], np.cumsum(d)))
    starts = rng.integers(0, n - b + 1, size=(n_boot, k))
    full = c[starts[:, :-1] + b] - c[starts[:, :-1]]
    tail = c[starts[:, -1] + last] - c[starts[:, -1]]
    return (full.sum(axis=1) + tail) / n


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    *,
    horizon: int = 1,
    periods_per_year: float | None = None,
    n_boot: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired test of ``a − b`` over the dates where both are finite.

    Parameters
    ----------
    a, b : float[T]
        Per-date series of two signals on the same T dates (NaN = no value that date), e.g.
        RankIC per date, or long-short return per period.
    horizon : int
        Label horizon h in dates: the per-date values overlap by h − 1 dates (1 for
        non-overlapping labels and for one-period returns). Sets the HAC kernel (`hac_se`)
        and the minimum bootstrap block.
    periods_per_year : float, optional
        Dates per year of the series, for ``ann_diff`` (return series only; e.g. 252 for
        daily long-short returns). None: ``ann_diff`` is NaN.
    n_boot : int
        Bootstrap replicates.
    seed : int
        Seed of the `numpy.random.Generator` of the bootstrap (same seed, same interval).

    Returns
    -------
    dict
        ``n`` common dates; ``mean_a``, ``mean_b``, ``mean_diff`` (means over those dates, in
        the series' unit); ``win_rate`` share of dates with ``d > 0``; ``t_nw`` HAC t of
        ``mean_diff`` (see `hac_se`), ``nw_lags`` its largest lag, ``nw_kernel``;
        ``ci_low``/``ci_high`` 95 % percentile interval of the moving-block bootstrap mean of
        d, ``block`` its block length; ``ann_diff`` ``mean_diff × periods_per_year``;
        ``horizon``. With fewer than 3 common dates every statistic (lags and block included)
        is NaN and only ``n`` and ``horizon`` are set.

    Raises
    ------
    DataError
        ``a`` and ``b`` are not 1-D of the same length, or horizon/n_boot < 1.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1:
        raise DataError(
            f"paired series must be 1-D [T], got shapes {list(a.shape)} and {list(b.shape)}"
        )
    if a.shape != b.shape:
        raise DataError(f"paired series differ in length: {a.size} != {b.size} dates")
    if horizon < 1:
        raise DataError(f"horizon must be >= 1, got {horizon}", field="horizon")
    if n_boot < 1:
        raise DataError(f"n_boot must be >= 1, got {n_boot}", field="n_boot")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = a - b
    n = int(d.size)
    nan = float("nan")
    out: dict[str, Any] = {
        "n": n,
        "mean_a": nan,
        "mean_b": nan,
        "mean_diff": nan,
        "ann_diff": nan,
        "win_rate": nan,
        "t_nw": nan,
        "nw_lags": nan,
        "nw_kernel": None,
        "ci_low": nan,
        "ci_high": nan,
        "block": nan,
        "horizon": int(horizon),
    }
    if n < MIN_DATES:
        return out
    mean = float(d.mean())
    se, lags, kernel = hac_se(d, horizon)
    blk = block_length(n, horizon)
    boot = block_bootstrap_means(d, blk, n_boot, np.random.default_rng(seed))
    alpha = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    out.update(
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        mean_diff=mean,
        ann_diff=nan if periods_per_year is None else mean * float(periods_per_year),
        win_rate=float((d > 0).mean()),
        t_nw=mean / se if se > 0 else nan,
        nw_lags=lags,
        nw_kernel=kernel,
        ci_low=float(lo),
        ci_high=float(hi),
        block=blk,
    )
    return out
