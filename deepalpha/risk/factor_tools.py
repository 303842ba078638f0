"""Tools on a fitted risk model for new signals: orthogonalisation, pure factor return and
residual-return labels.

Shapes: ``T`` model dates, ``N`` assets, ``K`` factors. A signal ``a [T, N]`` is aligned with
``model.dates`` / ``model.assets``; NaN = no value.

- ``orthogonalize``: ``a_perp = (I - X (X'VX)^+ X'V) a`` per date with ``V = diag(weights)``
  (sqrt cap in the estimation universe), fitted on the ESTU and applied to every stock with a
  value, then re-standardised (cap-weighted mean 0, equal-weighted std 1 over the ESTU).
- ``pure_factor_return``: coefficient of ``a`` added as an extra style column to the model's
  constrained regression (same weights; the returns of the period the signal is traded over,
  e.g. `forward_returns` entering at t+1, else the model's ``r = X f + u``). By Frisch-Waugh-Lovell
  it is identical whether or not ``a`` was orthogonalised first (without re-standardisation).
- ``residual_labels``: the forward return over a horizon starting after t, regressed on the
  exposures at t with the model's constrained WLS; the residual is the label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from deepalpha.data.panel import Panel
from deepalpha.errors import ConfigError, DataError
from deepalpha.risk.regression import regress
from deepalpha.risk.standardize import standardize

if TYPE_CHECKING:
    from deepalpha.risk.model import RiskModel


def _check(a: np.ndarray, model: RiskModel) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    T, N = len(model.dates), len(model.assets)
    if a.shape != (T, N):
        raise DataError(
            f"signal must be [T={T}, N={N}] aligned with the model, got {list(a.shape)}"
        )
    return a


def orthogonalize(
    a: np.ndarray,
    model: RiskModel,
    *,
    industries: bool = False,
    restandardize: bool = True,
    chunk: int = 64,
) -> np.ndarray:
    """Remove the part of `a` explained by the model's factors, date by date.

    Parameters
    ----------
    a : float[T, N] signal.
    model : fitted `RiskModel`.
    industries : also project out the industry dummies (else country + styles only).
    restandardize : re-standardise the residual (cap-weighted mean 0, equal-weighted std 1).

    Returns
    -------
    float64[T, N]; NaN where `a` or the stock's exposures are missing.
    """
    a = _check(a, model)
    T = a.shape[0]
    P, S = model.n_industries, len(model.style_names)
    cols = np.r_[
        0, (np.arange(1, 1 + P) if industries else np.array([], dtype=int)), 1 + P + np.arange(S)
    ]
    out = np.full_like(a, np.nan)
    for lo in range(0, T, chunk):
        hi = min(T, lo + chunk)
        X = model.design(lo, hi)[:, :, cols]
        ok = np.isfinite(a[lo:hi]) & np.isfinite(model.styles[lo:hi]).all(axis=2)
        if industries:
            ok &= model.industry_ids[lo:hi] >= 0
        v = np.where(ok, np.asarray(model.weights[lo:hi], dtype=np.float64), 0.0)
        a0 = np.where(ok, a[lo:hi], 0.0)
        Xt = torch.from_numpy(X)
        Xv = Xt * torch.from_numpy(v)[:, :, None]
        A = torch.bmm(Xv.transpose(1, 2), Xt)
        b = torch.bmm(Xv.transpose(1, 2), torch.from_numpy(a0)[:, :, None])
        beta = torch.linalg.pinv(A, hermitian=True) @ b
        res = a0 - torch.bmm(Xt, beta).numpy()[:, :, 0]
        out[lo:hi] = np.where(ok, res, np.nan)
    if restandardize:
        w = np.asarray(model.weights, dtype=np.float64)
        out = standardize(out, w * w, w > 0)
    return out


def model_returns(model: RiskModel, chunk: int = 64) -> np.ndarray:
    """The returns the model regressed, ``r = X f + u`` (float64[T, N], NaN where u is NaN)."""
    T, N = len(model.dates), len(model.assets)
    r = np.full((T, N), np.nan)
    f = np.asarray(model.factor_returns, dtype=np.float64)
    for lo in range(0, T, chunk):
        hi = min(T, lo + chunk)
        X = model.design(lo, hi)
        r[lo:hi] = (
            np.einsum("bnk,bk->bn", X, np.nan_to_num(f[lo:hi])) + model.specific_returns[lo:hi]
        )
    return r


def pure_factor_return(
    a: np.ndarray, model: RiskModel, returns: np.ndarray | None = None, *, chunk: int = 64
) -> np.ndarray:
    """Return ``[T]`` of the pure factor portfolio of `a` (its coefficient as an extra style).

    Timing: row t regresses ``returns[t]`` on the exposures at t (the model's) and ``a[t]``, so
    it is the return of the period the signal of t is traded over. For a signal formed at the
    close of t pass the forward returns that enter at the close of t+1, as the labels do:
    ``forward_returns(panel, rows, "month")`` (enter at the close after the month end, exit at the
    close after the next month end) -- System A does. ``returns=None`` takes the model's own
    returns (``r = X f + u``: close of t to close of t+1, month end to month end for the monthly
    model), which trades at the signal's own close and is right only for a signal known before it.

    Stocks where `a` or the return is NaN leave that date's regression (as any stock with a
    missing exposure), so pass a filled signal for a like-for-like comparison with the model's
    factors. NaN where the period runs past the data (the last date).
    """
    a = _check(a, model)
    r = model_returns(model, chunk) if returns is None else _check(returns, model)
    T = a.shape[0]
    S = len(model.style_names)
    out = np.full(T, np.nan)
    for lo in range(0, T, chunk):
        hi = min(T, lo + chunk)
        st = np.concatenate(
            [np.asarray(model.styles[lo:hi], dtype=np.float64), a[lo:hi, :, None]], axis=2
        )
        res = regress(
            st,
            model.industry_ids[lo:hi],
            model.n_industries,
            r[lo:hi],
            model.weights[lo:hi],
            chunk=chunk,
        )
        out[lo:hi] = res.factor_returns[:, 1 + model.n_industries + S]
    return out


def forward_returns(panel: Panel, rows: np.ndarray, horizon: int | Literal["month"]) -> np.ndarray:
    """Forward return for panel rows `rows`: enter at the close of t+1, exit ``h`` days later
    (``close[t+1+h] / close[t+1] - 1``); ``"month"`` exits at the close of the day after the last
    trading day of the next calendar month. NaN when the exit is past the panel's end or the stock
    is suspended at entry. float64[len(rows), N]."""
    close = panel.field("close").astype(np.float64)
    T = close.shape[0]
    rows = np.asarray(rows, dtype=np.int64)
    entry = rows + 1
    if horizon == "month":
        mon = panel.dates.astype("datetime64[M]")
        last_of = np.r_[np.nonzero(mon[1:] != mon[:-1])[0], T - 1]  # last row of each month
        umon = mon[last_of]
        nxt = mon[rows] + 1
        k = np.minimum(np.searchsorted(umon, nxt), len(umon) - 1)
        # the final month may be cut short by the panel's end: its exit (T) is out of range
        exit_ = np.where(umon[k] == nxt, last_of[k] + 1, T)
    elif isinstance(horizon, int | np.integer) and horizon >= 1:
        exit_ = entry + int(horizon)
    else:
        raise ConfigError(f"horizon must be a positive int or 'month', got {horizon!r}")
    out = np.full((len(rows), close.shape[1]), np.nan)
    ok = exit_ < T
    susp = panel.masks.get("suspended")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = close[np.minimum(exit_, T - 1)] / close[np.minimum(entry, T - 1)] - 1.0
    if susp is not None:
        r[susp[np.minimum(entry, T - 1)]] = np.nan
    out[ok] = r[ok]
    return out


def residual_labels(
    model: RiskModel, panel: Panel, horizon: int | Literal["month"], *, chunk: int = 64
) -> np.ndarray:
    """Forward residual (specific) return ``float32[T, N]`` over the horizon starting after t:
    the forward return (see `forward_returns`) regressed on the exposures at t with the model's
    constrained WLS (weights of t), minus the fit. NaN where there is no return or exposure."""
    pos = np.searchsorted(panel.dates, model.dates)
    if (pos >= len(panel.dates)).any() or (
        panel.dates[np.minimum(pos, len(panel.dates) - 1)] != model.dates
    ).any():
        raise DataError("the model's dates are not all in the panel")
    if (
        len(panel.assets) != len(model.assets)
        or (np.asarray(panel.assets) != np.asarray(model.assets)).any()
    ):
        raise DataError("the model's assets differ from the panel's")
    r = forward_returns(panel, pos, horizon)
    res = regress(
        model.styles, model.industry_ids, model.n_industries, r, model.weights, chunk=chunk
    )
    return res.specific_returns
