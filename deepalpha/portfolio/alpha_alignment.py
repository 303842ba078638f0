"""Alpha-alignment factor (AAF): the part of the signal the risk model cannot see, priced as one
extra factor in the optimiser's risk.

Shapes: ``T`` panel dates, ``N`` panel assets, ``n`` stocks of one date, ``K`` risk factors.

Why: an optimiser that maximises ``α'w`` under a factor-model TE limit loads on the part of
``α`` orthogonal to the exposures. The model calls that part diversifiable specific risk, but
the stocks a signal picks share more than the styles say (on the real data 31-45 % of the
enhanced portfolios' realised specific variance is covariance between the held names), so the
realised TE runs above the ex-ante one (``te_ratio`` 1.2-1.3, `deepalpha/risk/README.md`). The
AAF (Ceria, Saxena and Stubbs, 2012) adds that direction as a factor; here its variance is
*estimated* from the signal's own history instead of set by hand::

    g_s  = resid(z_s ~ X_s) / std        z_s: the candidates' z-scored scores at s (NaN -> 0),
                                        regressed on the exposures (OLS over the candidates)
    X'   = [X | g_s],   F' = diag(F, σ²_s),   factor kind 0 (no bound: it is priced, not capped)

    σ²_s = EWMA, half-life h, of f_τ² over τ <= s - 1, where f_τ is the return of the signal's
           residual factor: the regression-weighted (w = the risk model's √cap in its ESTU)
           slope of the specific returns u_τ (τ -> τ+1) on the same residual g_τ, unit
           weighted std, over the stocks with a score, a weight and a specific return at τ.

Timing: ``u_τ`` is known at the close of ``τ + 1``, so the forecast at ``s`` uses rows
``τ <= s - 1`` only (no look-ahead; `tests/test_alpha_alignment.py` perturbs the future). The
variance is a raw second moment (the factor's mean return, the alpha, is ignored as the risk
model ignores factor means) in the risk model's units (daily). Specific variances are left as
they are: the AAF's share of them is small and counting it twice errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deepalpha.signal.combine import zscore

__all__ = ["AlignmentRisk", "augment", "factor_return", "residual_exposure"]


def residual_exposure(
    scores: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """The scores' component orthogonal to the exposures, scaled to unit (weighted) std.

    ``scores float[n]`` (NaN = no view -> 0 after z-scoring), ``X float[n, K]``, ``weights
    float[n] >= 0`` (None: equal). Returns ``g float[n]``; all zeros when nothing is left (the
    scores are spanned by the factors or constant).
    """
    z = np.nan_to_num(zscore(np.asarray(scores, np.float64)[None])[0], nan=0.0)
    w = np.ones(z.shape[0]) if weights is None else np.asarray(weights, np.float64)
    X = np.asarray(X, np.float64)
    # weighted least squares through the K x K Gram matrix; its pseudo-inverse handles the
    # country = sum-of-industries collinearity (50x faster than an SVD of the n x K matrix)
    Xw = X * w[:, None]
    beta = np.linalg.pinv(Xw.T @ X, rcond=1e-12, hermitian=True) @ (Xw.T @ z)
    g = z - X @ beta
    wsum = w.sum()
    sd = np.sqrt((w * g * g).sum() / wsum) if wsum > 0 else 0.0
    return g / sd if sd > 1e-12 * max(1.0, np.sqrt((z * z).mean())) else np.zeros_like(g)


def factor_return(
    scores: np.ndarray, X: np.ndarray, specific: np.ndarray, weights: np.ndarray
) -> float:
    """Return of the signal's residual factor on one day: the weighted slope of ``specific
    float[n]`` (τ -> τ+1) on ``residual_exposure(scores, X, weights)``; NaN when fewer than
    ``K + 10`` stocks have a score, a positive weight and a finite specific return."""
    s, u, w = (np.asarray(a, np.float64) for a in (scores, specific, weights))
    ok = np.isfinite(s) & np.isfinite(u) & np.isfinite(w) & (w > 0)
    if ok.sum() < X.shape[1] + 10:
        return float("nan")
    g = residual_exposure(s[ok], np.asarray(X, np.float64)[ok], w[ok])
    den = float((w[ok] * g * g).sum())
    return float((w[ok] * g * u[ok]).sum() / den) if den > 0 else float("nan")


def augment(
    X: np.ndarray, F: np.ndarray, kind: np.ndarray, g: np.ndarray, var: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X [n, K+1], F [K+1, K+1], kind [K+1])``: the exposures with ``g`` appended, ``F`` with
    ``var`` on the new diagonal (uncorrelated with the factors), kind 0 (unbounded)."""
    K = F.shape[0]
    F2 = np.zeros((K + 1, K + 1))
    F2[:K, :K] = F
    F2[K, K] = var
    return np.column_stack([X, g]), F2, np.r_[np.asarray(kind), 0].astype(np.int8)


class AlignmentRisk:
    """The AAF's variance forecast on a panel, from the signal and the risk model's specific
    returns.

    Parameters
    ----------
    scores : float[T, N]
        The signal (NaN = no score), known at each date's close.
    exposures : callable(t, idx) -> float[n, K]
        The risk model's exposures of panel assets ``idx`` at date ``t``.
    specific : callable(t, idx) -> (u float[n], w float[n])
        Specific returns of row ``t`` (``t -> t+1``) and regression weights (0 outside the ESTU).
    halflife : float
        EWMA half-life in days.
    min_obs : int
        Days of factor returns needed before a forecast (else NaN: no AAF that day).

    ``variance(s)`` computes the daily factor returns it needs once, in date order, and caches
    them, so a backtest costs one regression per day.
    """

    def __init__(
        self,
        scores: np.ndarray,
        exposures: Callable[[int, np.ndarray], np.ndarray],
        specific: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]],
        halflife: float = 84.0,
        min_obs: int = 21,
    ) -> None:
        self.scores = np.asarray(scores, np.float64)
        self.exposures, self.specific = exposures, specific
        self.halflife, self.min_obs = float(halflife), int(min_obs)
        self.returns_ = np.full(self.scores.shape[0], np.nan)
        self._done = np.zeros(self.scores.shape[0], bool)

    def factor_return(self, t: int) -> float:
        """``f_t`` (``t -> t+1``), cached; NaN where the day has no usable cross-section."""
        if not self._done[t]:
            idx = np.nonzero(np.isfinite(self.scores[t]))[0]
            f = float("nan")
            if idx.size:
                u, w = self.specific(t, idx)
                keep = np.isfinite(u) & (w > 0)
                if keep.sum() > 0:
                    idx, u, w = idx[keep], u[keep], w[keep]
                    f = factor_return(self.scores[t, idx], self.exposures(t, idx), u, w)
            self.returns_[t] = f
            self._done[t] = True
        return float(self.returns_[t])

    def variance(self, s: int) -> float:
        """σ²_s from ``f_τ``, ``τ <= s - 1`` (EWMA of ``f²`` over up to 4 half-lives); NaN with
        fewer than ``min_obs`` finite returns."""
        lo = max(0, s - int(4 * self.halflife))
        f = np.array([self.factor_return(t) for t in range(lo, s)])
        ok = np.isfinite(f)
        if ok.sum() < self.min_obs:
            return float("nan")
        age = (s - 1 - np.arange(lo, s))[ok]
        wt = 0.5 ** (age / self.halflife)
        return float((wt * f[ok] ** 2).sum() / wt.sum())
