"""A small random `RiskModel` (with covariance and specific risk) for the risk-tool tests."""

from __future__ import annotations

import numpy as np

from deepalpha.risk.industries import GROUP_KEYS
from deepalpha.risk.model import RiskModel
from deepalpha.risk.regression import design_chunk, regress


def toy_model(T: int = 30, N: int = 120, P: int = 4, S: int = 3, seed: int = 0) -> RiskModel:
    """Random exposures, sqrt-cap weights (20 stocks outside the ESTU), returns ``X f + u``,
    factor returns from the model's own regression, a random positive-definite covariance and
    specific variances at every 10th date (from date 10 on)."""
    rng = np.random.default_rng(seed)
    ind = np.broadcast_to(rng.integers(0, P, N), (T, N)).astype(np.int16)
    styles = rng.standard_normal((T, N, S)).astype(np.float32)
    cap = np.exp(rng.normal(3, 1, (T, N)))
    w = np.sqrt(cap).astype(np.float32)
    w[:, :20] = 0.0
    K = 1 + P + S
    X = design_chunk(styles, ind, P)
    r = np.einsum("tnk,tk->tn", X, rng.normal(0, 0.01, (T, K))) + rng.normal(0, 0.02, (T, N))
    r[:, -1] = np.nan  # one stock without returns
    res = regress(styles, ind, P, r, w)
    cov_idx = np.arange(10, T, 10)
    D = cov_idx.size
    fc = np.zeros((D, K, K), np.float32)
    for j in range(D):
        A = rng.normal(0, 0.01, (K, K))
        fc[j] = A @ A.T + np.diag(rng.uniform(1e-5, 4e-5, K))
    sv = rng.uniform(1e-4, 9e-4, (D, N)).astype(np.float32)
    dates = np.datetime64("2020-01-01") + np.arange(T)
    return RiskModel(
        dates=dates, assets=np.array([f"SH6{i:05d}" for i in range(N)]),
        style_names=tuple("ABCDEFG"[:S]), industry_names=tuple(GROUP_KEYS[:P]), styles=styles,
        industry_ids=ind, weights=w, factor_returns=res.factor_returns.astype(np.float32),
        specific_returns=res.specific_returns, tstats=res.tstats, r2=res.r2,
        cov_dates=dates[cov_idx], factor_cov=fc, specific_var=sv,
    )  # fmt: skip
