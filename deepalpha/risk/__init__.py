"""Barra CNE6-style equity risk model for A-shares.

Modules (one job each; pure functions on arrays at the core):

- `industries`: Tushare / CSRC names -> 31 SW2021-like groups.
- `descriptors`: CNE6-like descriptors on ``[T, N]`` arrays (windows, half-lives documented there).
- `standardize`: MAD winsorisation, cap-weighted mean / equal-weighted std, orthogonalisation,
  missing-value fill.
- `styles`: descriptors -> the 15 default styles (list of deviations from CNE6 there).
- `regression`: batched constrained cross-sectional WLS (restriction matrix R).
- `covariance`: EWMA + Newey-West factor covariance, eigenfactor adjustment, VRA.
- `specific`: specific risk (EWMA + NW, structural model, Bayesian shrinkage, VRA).
- `bias`: bias statistics of factor, eigen and random portfolios.
- `factor_tools`: orthogonalise a signal, pure factor return, residual-return labels.
- `model`: `RiskConfig`, `RiskModel` (save / load), `build_risk_model`, `load_inputs`.

Heavy imports stay inside the submodules; import what you need from them, e.g.
``from deepalpha.risk.model import build_risk_model, RiskModel``.
"""
