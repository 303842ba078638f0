"""Factor covariance forecasts: EWMA + Newey-West, eigenfactor risk adjustment, VRA.

Shapes: ``T`` periods, ``K`` factors, ``D`` forecast dates. Factor-return row ``s`` is the return
over ``s -> s+1``, known at ``s+1``; the forecast for date ``d`` therefore uses rows ``s <= d-1``
and is the forecast for row ``d``. Units: per period (daily for the daily model); annualise with
``* 252`` (variance) yourself.

Steps (DESIGN section 3, USE4/CNE6 methodology):

1. Exponentially weighted moments with separate half-lives for volatilities and correlations
   (84 / 504 "responsive", 252 / 756 "stable"), zero mean assumed, Newey-West with Bartlett
   weights ``1 - j / (L + 1)`` over ``L`` lags (default 2):
   ``C = G_0 + sum_j w_j (G_j + G_j')``, ``G_j = sum_s lam^(d-1-s) f_s f_{s-j}' / sum lam^(...)``.
   Volatilities come from the vol-half-life matrix, correlations from the corr-half-life one
   (which may use fewer lags, ``corr_nw_lags``: a long-lag Newey-West correlation matrix is
   noisy in its smallest eigen directions).
2. Eigenfactor risk adjustment (Menchero, Wang & Orr 2011): simulate ``M`` return histories of
   length ``h`` (the effective number of observations of the correlation window,
   ``(sum w)^2 / sum w^2``) from the forecast, measure the bias of each simulated eigenportfolio's variance,
   and scale the eigenvalues by ``gamma_k^2`` with ``gamma_k = a (v_k - 1) + 1`` (a = 1.2).
   Seeded; a = 0 is the identity.
3. Volatility regime adjustment: cross-sectional bias ``B_t^2 = mean_k (f_tk / sigma_tk)^2`` of
   each period's factor returns against the one-period EWMA volatility forecast (lag 0, no
   Newey-West: the NW terms turn a one-period forecast into one for a longer horizon and the
   regime multiplier must not undo them) for that period, then
   ``lambda_d^2 = EWMA_{HL}(B^2)`` over rows ``<= d-1``; the covariance is multiplied by it.
   (USE4 measures B against the eigen-adjusted forecast; we use the EWMA one so that it can be
   computed for every period cheaply.)

The covariance may be produced on a subsample of dates (e.g. month ends) to save memory and
time: the moments are updated every period, only the matrices at the requested dates are
formed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restores the previous setting)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _lam(halflife: float) -> float:
    return 0.5 ** (1.0 / float(halflife))


@dataclass
class _EWMoments:
    """Running exponentially weighted lagged cross-moments ``sum lam^age f_s f_{s-j}'``.

    Missing entries (NaN) are handled pairwise: each moment is divided by the decayed weight of
    the rows where both of its factors were observed, so a factor that starts late (a style
    whose exposures appear after the first years) gets moments from its own history only.
    """

    lam: float
    lags: int
    K: int

    def __post_init__(self) -> None:
        self.S = np.zeros((self.lags + 1, self.K, self.K))
        self.Wp = np.zeros((self.lags + 1, self.K, self.K))
        self.M = np.zeros(self.K)  # decayed sum of returns (for the autocovariances' mean)
        self.Wm = np.zeros(self.K)
        self.W = 0.0
        self.W2 = 0.0
        self.hist: list[tuple[np.ndarray, np.ndarray]] = []

    def update(self, f: np.ndarray) -> None:
        m = np.isfinite(f).astype(np.float64)
        f0 = np.where(m > 0, f, 0.0)
        self.S *= self.lam
        self.Wp *= self.lam
        self.W = self.W * self.lam + 1.0
        self.W2 = self.W2 * self.lam**2 + 1.0
        self.S[0] += np.outer(f0, f0)
        self.Wp[0] += np.outer(m, m)
        self.M = self.M * self.lam + f0
        self.Wm = self.Wm * self.lam + m
        for j in range(1, self.lags + 1):
            if len(self.hist) >= j:
                g0, gm = self.hist[-j]
                self.S[j] += np.outer(f0, g0)
                self.Wp[j] += np.outer(m, gm)
        self.hist.append((f0, m))
        if len(self.hist) > self.lags:
            self.hist.pop(0)

    @property
    def n_eff(self) -> float:
        """Effective number of observations ``(sum w)^2 / sum w^2``."""
        return self.W * self.W / self.W2 if self.W2 > 0 else 0.0

    def lag0_diag(self) -> np.ndarray:
        """Diagonal of the lag-0 moment (EWMA variances without the Newey-West terms)."""
        w = np.diagonal(self.Wp[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w > 0, np.diagonal(self.S[0]) / w, 0.0)

    def newey_west(self, demean: bool = True) -> np.ndarray:
        """``G_0 + sum_j w_j (G_j + G_j')``. The lag-0 moment is about zero (the risk-model
        convention); with `demean` the lagged ones are autocovariances about the EWMA mean
        ``mu``: ``G_j - (mu mu' - G_0 / n_eff)`` (the noise of ``mu`` taken out). A factor with a persistent drift (Liquidity, ShortTermReversal
        in China) otherwise adds ``~ L mu^2`` per lag, i.e. counts its drift as risk -- at a
        21-day horizon that term exceeds its variance."""
        with np.errstate(invalid="ignore", divide="ignore"):
            G = np.where(self.Wp > 0, self.S / self.Wp, 0.0)
            mu = np.where(self.Wm > 0, self.M / self.Wm, 0.0)
        C = G[0].copy()
        # E[mu_hat mu_hat'] = mu mu' + G_0 / n_eff: remove only the part beyond the noise of
        # the mean estimate (else every lag loses ~G_0 / n_eff and long horizons under-forecast)
        mm = np.outer(mu, mu) - G[0] / max(self.n_eff, 1.0) if demean else 0.0
        for j in range(1, self.lags + 1):
            Gj = G[j] - mm
            C += (1.0 - j / (self.lags + 1.0)) * (Gj + Gj.T)
        return 0.5 * (C + C.T)


def nearest_psd(C: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues to 0 (pairwise moments need not be PSD)."""
    d, U = np.linalg.eigh(C)
    if d.min() >= 0:
        return C
    return (U * np.maximum(d, 0.0)) @ U.T


def ewma_cov(f: np.ndarray, halflife: float) -> np.ndarray:
    """Plain EWMA covariance (zero mean) of all rows of ``f [T, K]``, newest row weight 1.

    The obviously-correct reference for `factor_covariance` with 0 lags. Returns float64[K, K].
    """
    f = np.asarray(f, dtype=np.float64)
    w = _lam(halflife) ** np.arange(f.shape[0] - 1, -1, -1)
    return (f * w[:, None]).T @ f / w.sum()


def combine_vol_corr(C_vol: np.ndarray, C_corr: np.ndarray) -> np.ndarray:
    """Volatilities from ``C_vol``'s diagonal, correlations from ``C_corr`` -> covariance."""
    s = np.sqrt(np.maximum(np.diag(C_vol), 0.0))
    dc = np.sqrt(np.maximum(np.diag(C_corr), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = C_corr / np.outer(dc, dc)
    rho = np.where(np.isfinite(rho), rho, 0.0)
    np.fill_diagonal(rho, 1.0)
    return rho * np.outer(s, s)


def eigen_adjust(
    C: np.ndarray,
    *,
    n_obs: int,
    n_sims: int = 300,
    scale: float = 1.2,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Eigenfactor risk adjustment of one covariance matrix.

    C : float[K, K] PSD forecast; n_obs : length ``h`` of each simulated history; n_sims : M;
    scale : a (0 -> returns C unchanged); rng : seeded generator. Returns float64[K, K].
    """
    C = np.asarray(C, dtype=np.float64)
    if scale == 0.0 or n_sims <= 0:
        return C.copy()
    K = C.shape[0]
    d0, U0 = np.linalg.eigh(C)
    d0 = np.maximum(d0, 0.0)
    rng = rng if rng is not None else np.random.default_rng(0)
    # Simulated histories in C's eigenbasis (returns with covariance diag(d0)), in float32
    # through torch: the M eigen-decompositions dominate the cost and the bias ratios need
    # no more than float32 precision.
    z = torch.from_numpy(
        (rng.standard_normal((n_sims, n_obs, K), dtype=np.float32) * np.sqrt(d0 / d0.max())).astype(
            np.float32
        )
    )
    Cm = torch.bmm(z.transpose(1, 2), z) / n_obs  # simulated covariances (scaled)
    with single_thread():  # many tiny eigh calls: threading costs 20x more than it saves
        dm_t, Um_t = torch.linalg.eigh(Cm)
    dm = dm_t.double().numpy() * d0.max()
    Um = Um_t.double().numpy()
    true_var = np.einsum("mkj,k,mkj->mj", Um, d0, Um)  # U_m' D0 U_m diagonal
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(dm > 0, true_var / dm, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v = np.sqrt(np.nanmean(ratio, axis=0))
    v = np.where(np.isfinite(v), v, 1.0)
    gamma = scale * (v - 1.0) + 1.0
    # the simulated eigenvalues are sorted ascending, as are d0: apply gamma by rank
    return (U0 * (gamma**2 * d0)) @ U0.T


def vra_lambda(bias2: np.ndarray, halflife: float) -> np.ndarray:
    """``lambda_t = sqrt(EWMA of B^2 over rows <= t-1)`` (NaN rows skipped; 1 before any).

    bias2 : float[T] cross-sectional squared bias statistics. Returns float64[T].
    """
    lam = _lam(halflife)
    out = np.ones(len(bias2))
    s = w = 0.0
    for t in range(len(bias2)):
        if w > 0:
            out[t] = np.sqrt(s / w)
        b = bias2[t]
        if np.isfinite(b):
            s = lam * s + b
            w = lam * w + 1.0
    return out


@dataclass(frozen=True)
class CovarianceConfig:
    """Factor-covariance settings (half-lives in periods of the model)."""

    vol_halflife: float = 84
    corr_halflife: float = 504
    nw_lags: int = 2
    corr_nw_lags: int | None = None  # Newey-West lags of the correlation matrix (None: nw_lags)
    eigen_sims: int = 100
    eigen_scale: float = 1.2
    eigen_obs: int | None = None  # simulated history length; default: the correlation
    # window's effective number of observations (sum w)^2 / sum w^2
    vra_halflife: float | None = 21  # None: no volatility regime adjustment
    min_obs: int = 63
    min_factor_obs: int = 21  # per factor (a style that appears late)
    seed: int = 0


def factor_covariance(
    f: np.ndarray,
    cov_idx: np.ndarray,
    config: CovarianceConfig = CovarianceConfig(),
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factor covariance forecasts at the rows ``cov_idx``.

    Parameters
    ----------
    f : float[T, K] factor returns (row s = return over s -> s+1); NaN entries are missing
        (moments are pairwise), all-NaN rows are skipped.
    cov_idx : int[D] increasing row indices d; the forecast at d uses rows ``< d``.
    config : `CovarianceConfig`.

    Returns
    -------
    cov float32[D, K, K] (NaN with fewer than ``min_obs`` rows of history),
    sigma float64[T, K] step-1 (EWMA + NW) volatility forecast for every row,
    vra float64[T] the volatility-regime multiplier lambda (on volatility) for every row.
    """
    f = np.asarray(f, dtype=np.float64)
    T, K = f.shape
    cov_idx = np.asarray(cov_idx, dtype=np.int64)
    cfg = config
    mv = _EWMoments(_lam(cfg.vol_halflife), cfg.nw_lags, K)
    corr_lags = cfg.nw_lags if cfg.corr_nw_lags is None else cfg.corr_nw_lags
    mc = _EWMoments(_lam(cfg.corr_halflife), corr_lags, K)
    sigma = np.full((T, K), np.nan)
    sigma0 = np.full((T, K), np.nan)  # lag-0 EWMA volatility: the VRA's yardstick
    pending: dict[int, tuple[np.ndarray, np.ndarray, int, np.ndarray]] = {}
    want = set(cov_idx.tolist())
    n = 0
    n_k = np.zeros(K, dtype=np.int64)  # observations per factor so far
    for t in range(T + 1):
        if n >= cfg.min_obs:
            Cv = mv.newey_west()
            if t < T:
                sigma[t] = np.sqrt(np.maximum(np.diag(Cv), 0.0))
                sigma0[t] = np.sqrt(np.maximum(mv.lag0_diag(), 0.0))
            if t in want:
                pending[t] = (Cv, mc.newey_west(), round(mc.n_eff), n_k < cfg.min_factor_obs)
        if t == T:
            break
        if np.isfinite(f[t]).any():
            mv.update(f[t])
            mc.update(f[t])
            n += 1
            n_k += np.isfinite(f[t])
    with np.errstate(invalid="ignore", divide="ignore"):
        # one-period returns against the one-period (lag-0) forecast: the Newey-West term is
        # the horizon adjustment and must not be divided out again by the regime multiplier
        z2 = np.where(sigma0 > 0, (f / sigma0) ** 2, np.nan)
        ok = np.isfinite(z2)
        bias2 = np.where(ok.any(axis=1), np.where(ok, z2, 0.0).sum(axis=1) / ok.sum(axis=1), np.nan)
    lam = np.ones(T) if cfg.vra_halflife is None else vra_lambda(bias2, cfg.vra_halflife)
    out = np.full((len(cov_idx), K, K), np.nan, dtype=np.float32)
    for i, d in enumerate(cov_idx.tolist()):
        if d in pending:
            Cv, Cc, n_eff, thin = pending.pop(d)
            C = nearest_psd(combine_vol_corr(Cv, Cc))
            # a factor with (almost) no history has no forecast: 0 row and column, so that it
            # adds no risk (its exposures are 0 until it appears) and bias statistics skip it
            C[thin, :] = 0.0
            C[:, thin] = 0.0
            rng = np.random.default_rng([cfg.seed, d])
            h = int(cfg.eigen_obs or max(n_eff, 2))
            C = eigen_adjust(C, n_obs=h, n_sims=cfg.eigen_sims, scale=cfg.eigen_scale, rng=rng)
            C[thin, :] = 0.0  # again: the eigen rotation leaks round-off into them
            C[:, thin] = 0.0
            lam_d = lam[d] if d < T else lam[-1]
            out[i] = C * lam_d**2
        if progress is not None:
            progress(1)
    return out, sigma, lam
