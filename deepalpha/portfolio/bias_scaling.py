"""Strategy-level risk scaling: the optimiser's covariance times the strategy's own past bias.

Shapes: ``T`` panel dates, ``N`` panel assets, ``n`` candidates of a rebalance.

A risk model is calibrated on factor and random portfolios; an optimiser's portfolio is neither
(it is built from the model's blind spots, `alpha_alignment`), so its realised TE runs above the
forecast by an amount that changes with the market (`deepalpha/risk/README.md`: 1.0-1.5 by year
on the real data). A desk measures that bias on its own book and scales the forecast; this does
the same with data known at each rebalance ``s``::

    e_τ  = a_k' r_{τ -> τ+1}            active return of the k-th past target (active weights
                                       a_k vs the member proxy, held fixed) on the days
                                       s_k <= τ < s_{k+1} with τ + 1 <= s
    z_τ  = e_τ / σ_k                    σ_k: the daily ex-ante TE of a_k before scaling
    λ²_s = EWMA(z_τ², half-life h)      clipped to ``bounds``; 1 before ``min_obs`` days

and the optimiser at ``s`` uses ``λ²_s F`` and ``λ²_s Δ`` (the TE limit then binds on the
scaled forecast, which is what the backtest records as ``ex_ante_te``). A bias statistic of the
held book's *raw* model forecast stays in ``te_ratio_held`` (`risk_tracking`). Returns are
close-to-close price returns (NaN -> 0); the targets' drift over a rebalance period is ignored.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BiasScaling"]


class BiasScaling:
    """λ² forecasts from the strategy's past targets.

    Parameters
    ----------
    close : float[T, N]
        Prices (back-adjusted); returns ``r_{τ -> τ+1} = close[τ+1] / close[τ] - 1``.
    halflife : float
        EWMA half-life in days.
    min_obs : int
        Days of ``z`` needed before scaling (else λ² = 1).
    bounds : (float, float)
        Clip of λ².

    ``record(s, idx, active, sigma)`` after each solve (``sigma``: daily ex-ante TE of
    ``active`` under the unscaled model); ``scale(s)`` before the next. ``z_`` holds the
    standardised active returns seen so far (index: day τ).
    """

    def __init__(
        self,
        close: np.ndarray,
        halflife: float = 63.0,
        min_obs: int = 21,
        bounds: tuple[float, float] = (0.25, 4.0),
    ) -> None:
        c = np.asarray(close, np.float64)
        r = np.zeros_like(c)
        with np.errstate(divide="ignore", invalid="ignore"):
            r[:-1] = c[1:] / c[:-1] - 1.0
        self.returns = np.where(np.isfinite(r), r, 0.0)  # row τ: τ -> τ+1
        self.halflife, self.min_obs, self.bounds = float(halflife), int(min_obs), bounds
        self._targets: list[tuple[int, np.ndarray, np.ndarray, float]] = []
        self.z_: dict[int, float] = {}

    def record(self, s: int, idx: np.ndarray, active: np.ndarray, sigma: float) -> None:
        """The target solved at ``s``: panel assets ``idx``, active weights ``active float[n]``,
        daily ex-ante TE ``sigma`` (unscaled model)."""
        if np.isfinite(sigma) and sigma > 0:
            self._targets.append((int(s), np.asarray(idx), np.asarray(active, np.float64), sigma))

    def _update(self, s: int) -> None:
        """Fill ``z_`` for every day whose return is known at ``s`` (τ + 1 <= s)."""
        for k, (sk, idx, a, sig) in enumerate(self._targets):
            end = self._targets[k + 1][0] if k + 1 < len(self._targets) else s
            for tau in range(sk, min(end, s)):
                if tau not in self.z_:
                    self.z_[tau] = float(a @ self.returns[tau, idx]) / sig

    def scale(self, s: int) -> float:
        """λ²_s from the days ``τ <= s - 1``; 1.0 with fewer than ``min_obs``."""
        self._update(s)
        taus = np.array([t for t in self.z_ if t < s], np.int64)
        if taus.size < self.min_obs:
            return 1.0
        z = np.array([self.z_[int(t)] for t in taus])
        wt = 0.5 ** ((s - 1 - taus) / self.halflife)
        lam2 = float((wt * z * z).sum() / wt.sum())
        return float(np.clip(lam2, *self.bounds))
