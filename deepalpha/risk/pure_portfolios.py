"""Pure factor portfolios: the holdings behind each factor return of the risk model.

Shapes: ``N`` assets, ``K = 1 + P + S`` factors ``[country, industries, styles]``, ``n`` stocks
in the regression of a date.

The daily regression (`deepalpha.risk.regression`) estimates ``f = Omega r`` with::

    Omega = R (R'X'VXR)^-1 R'X'V      (K x N; V = diag(sqrt cap) over the estimation universe)

so row k of ``Omega`` is a portfolio whose return is the factor return ``f_k``: the *pure factor
portfolio*. Its exposures ``Omega X`` satisfy ``Omega X R = R``: equal to the unit vector ``e_k``
up to the direction the industry constraint leaves free (cap-weighted industry sum), which earns
nothing because every ``f`` satisfies the constraint. Concretely:

- style k: exposure 1 to style k and exactly 0 to every other factor (a dollar-neutral
  long-short portfolio with no net industry bet);
- industry j: exposure ``1 - w_j`` to industry j, ``-w_i`` to every other industry ``i`` and 0
  to the country and the styles (``w`` the industries' cap shares): long industry j, short the
  cap-weighted market, dollar neutral;
- country: exposure 1 to the country, ``w_i`` to each industry, 0 to the styles (a fully
  invested cap-weighted industry mix).

Holdings on date t use the information of t: the exposures at t and the estimation-universe
weights of t (the model's ``weights[t]``). The regression row t additionally leaves out stocks
without a return over t -> t+1 (suspended at t+1), so ``h_k . r(t -> t+1) == f_k[t]`` exactly
when no estimation-universe stock lacks that return.

Turnover between two dates is one-sided ``sum_i |h_new - h_old| / 2`` of the rebalanced pure
portfolios (no drift: each is rebuilt from scratch on each date), reported next to the gross
exposure ``sum_i |h|`` that sets its scale.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from deepalpha.errors import DataError
from deepalpha.risk.decompose import design_row
from deepalpha.risk.regression import restriction_matrix

if TYPE_CHECKING:
    from deepalpha.risk.model import RiskModel

__all__ = [
    "PurePortfolios",
    "pure_factor_holdings",
    "pure_factor_portfolios",
    "pure_factor_turnover",
]


def pure_factor_holdings(X: np.ndarray, v: np.ndarray, n_ind: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the constrained ``Omega`` for one date.

    Parameters
    ----------
    X : float[N, K] exposures ``[country, industries, styles]`` (rows with ``v == 0`` ignored).
    v : float[N] regression weights (sqrt cap in the estimation universe, 0 outside).
    n_ind : int ``P``.

    Returns
    -------
    H : float64[K, N] holdings (row k: pure portfolio of factor k; 0 where ``v == 0``);
    degenerate : bool[K] factors the date cannot estimate (an empty industry, an all-zero
    style): their rows are 0, as their factor return is fixed at 0 by the regression.
    """
    X = np.asarray(X, np.float64)
    v = np.where(np.isfinite(v), np.asarray(v, np.float64), 0.0)
    N, K = X.shape
    S = K - 1 - n_ind
    sel = np.nonzero(v > 0)[0]
    if sel.size <= K - 1:
        raise DataError(f"{sel.size} stocks in the regression cannot identify {K} factors")
    Xs, vs = X[sel], v[sel]
    ind_w = (Xs[:, 1 : 1 + n_ind] * (vs * vs)[:, None]).sum(axis=0)
    R, _ = restriction_matrix(ind_w[None], S)
    R = R[0]
    XR = Xs @ R  # [n, K-1]
    M = XR.T @ (vs[:, None] * XR)
    dg = np.diagonal(M)
    fixed = dg <= 1e-12 * max(float(dg.max()), 1e-300)
    M = M + np.diag(fixed.astype(np.float64))
    G = np.linalg.solve(M, (XR * vs[:, None]).T)  # [K-1, n]
    G[fixed] = 0.0
    H = np.zeros((K, N))
    H[:, sel] = R @ G
    degenerate = (np.abs(R) @ fixed.astype(np.float64)) > 0
    return H, degenerate


@dataclass(frozen=True)
class PurePortfolios:
    """Pure factor portfolios of one date.

    Attributes
    ----------
    date : datetime64[D]; assets : str[N]; factor_names : tuple[K]
    holdings : float64[K, N]   row k: weights of the pure portfolio of factor k.
    exposures : float64[K, K]  row k: ``X' h_k`` (see the module docstring).
    degenerate : bool[K]       factors not estimable on the date (holdings 0).
    """

    date: np.datetime64
    assets: np.ndarray
    factor_names: tuple[str, ...]
    holdings: np.ndarray
    exposures: np.ndarray
    degenerate: np.ndarray

    def frame(self, factors: tuple[str, ...] | None = None, tol: float = 0.0) -> pl.DataFrame:
        """Long ``factor, asset, weight`` frame (weights with ``|w| > tol``)."""
        names = list(self.factor_names)
        ks = range(len(names)) if factors is None else [_factor_index(names, f) for f in factors]
        parts = []
        for k in ks:
            h = self.holdings[k]
            nz = np.nonzero(np.abs(h) > tol)[0]
            parts.append(
                pl.DataFrame(
                    {"factor": [names[k]] * nz.size, "asset": self.assets[nz], "weight": h[nz]}
                )
            )
        return pl.concat(parts) if parts else pl.DataFrame()


def _factor_index(names: list[str], f: str) -> int:
    if f not in names:
        raise DataError(f"unknown factor {f!r} (the model has {', '.join(names)})")
    return names.index(f)


def _row(model: RiskModel, date: Any) -> int:
    d = np.datetime64(date, "D")
    dates = np.asarray(model.dates, "datetime64[D]")
    i = int(np.searchsorted(dates, d))
    if i >= dates.size or dates[i] != d:
        raise DataError(f"{d} is not a date of the risk model", date=d)
    return i


def _holdings_at(model: RiskModel, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    st = np.asarray(model.styles[row], np.float64)
    ind = np.asarray(model.industry_ids[row], np.int64)
    valid = np.isfinite(st).all(axis=1) & (ind >= 0)
    X = design_row(st, ind, model.n_industries)
    v = np.where(valid, np.asarray(model.weights[row], np.float64), 0.0)
    H, deg = pure_factor_holdings(X, v, model.n_industries)
    return H, deg, X


def pure_factor_portfolios(model: RiskModel, date: Any) -> PurePortfolios:
    """The pure factor portfolios of every factor on model date ``date`` (exposures and
    estimation-universe weights of that date)."""
    row = _row(model, date)
    H, deg, X = _holdings_at(model, row)
    return PurePortfolios(
        date=np.datetime64(model.dates[row], "D"),
        assets=np.asarray(model.assets).astype(str),
        factor_names=tuple(model.factor_names),
        holdings=H,
        exposures=H @ X,
        degenerate=deg,
    )


def pure_factor_turnover(
    model: RiskModel,
    dates: Any,
    factors: tuple[str, ...] | None = None,
) -> pl.DataFrame:
    """Turnover of the pure factor portfolios rebuilt on each of ``dates`` (model dates,
    increasing; e.g. the month ends).

    Returns a long frame ``date, factor, turnover, gross`` with one-sided turnover
    ``sum |h_t - h_prev| / 2`` against the previous date in ``dates`` (null on the first) and the
    gross exposure ``sum |h_t|``; a degenerate factor has gross 0."""
    rows = [_row(model, d) for d in np.atleast_1d(np.asarray(dates, "datetime64[D]"))]
    if any(b <= a for a, b in itertools.pairwise(rows)):
        raise DataError("dates must be increasing")
    names = list(model.factor_names)
    ks = (
        np.arange(len(names))
        if factors is None
        else np.array([_factor_index(names, f) for f in factors], np.int64)
    )
    out: dict[str, list[Any]] = {"date": [], "factor": [], "turnover": [], "gross": []}
    prev: np.ndarray | None = None
    for r in rows:
        H, _, _ = _holdings_at(model, r)
        H = H[ks]
        tv = np.full(ks.size, np.nan) if prev is None else 0.5 * np.abs(H - prev).sum(axis=1)
        out["date"] += [model.dates[r]] * ks.size
        out["factor"] += [names[k] for k in ks]
        out["turnover"] += tv.tolist()
        out["gross"] += np.abs(H).sum(axis=1).tolist()
        prev = H
    out["date"] = np.asarray(out["date"], "datetime64[D]")  # type: ignore[assignment]
    df = pl.DataFrame(out).with_columns(pl.col("date").cast(pl.Date))
    return df.with_columns(pl.col("turnover").fill_nan(None))
