"""Return-series statistics: NAV, drawdown, annualised figures, pure-factor-return summary.

Inputs are 1-D period return series ``float[T]`` (simple returns, 0.01 = 1 %). A NaN period is a
period without a position: it counts as 0 in the NAV and is left out of means and deviations.

Conventions (DESIGN section 6): annualised return is compounded,
``NAV_T^(periods_per_year / n) − 1``; volatility ``std(ddof=1) × √periods_per_year``; Sharpe is
``mean / std × √periods_per_year`` with a zero risk-free rate; max drawdown is reported as a
positive fraction (0.25 = the NAV fell 25 % from its running peak).
"""

from __future__ import annotations

import numpy as np

from deepalpha.errors import DataError
from deepalpha.evaluate.ic import default_nw_lags, newey_west_se


def _series(x: np.ndarray, name: str = "returns") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise DataError(f"{name} must be 1-D [T], got shape {list(x.shape)}", field=name)
    return x


def nav(returns: np.ndarray, start: float = 1.0) -> np.ndarray:
    """Net asset value after each period: ``start × Π (1 + r)``; NaN counts as 0. ``float64[T]``."""
    r = _series(returns)
    return start * np.cumprod(1.0 + np.nan_to_num(r, nan=0.0))


def drawdown(returns: np.ndarray) -> np.ndarray:
    """Drawdown after each period, ``1 − NAV / running max(NAV, 1)`` (>= 0). ``float64[T]``."""
    v = nav(returns)
    peak = np.maximum.accumulate(np.maximum(v, 1.0)) if v.size else v
    return 1.0 - v / peak


def max_drawdown(returns: np.ndarray) -> float:
    """Largest drawdown (positive fraction; 0 when the NAV never falls below a previous peak)."""
    d = drawdown(returns)
    return float(d.max()) if d.size else float("nan")


def annualised_return(returns: np.ndarray, periods_per_year: float) -> float:
    """Compounded: ``NAV_T^(periods_per_year / n) − 1`` with n the number of finite periods."""
    r = _series(returns)
    n = int(np.isfinite(r).sum())
    if n == 0:
        return float("nan")
    total = float(np.prod(1.0 + r[np.isfinite(r)]))
    if total <= 0:
        return -1.0
    return total ** (periods_per_year / n) - 1.0


def performance(returns: np.ndarray, periods_per_year: float = 252) -> dict[str, float]:
    """Summary of a period return series ``float[T]``.

    Returns
    -------
    dict
        ``cumulative_return`` (NAV_T − 1), ``annual_return`` (compounded), ``annual_vol``,
        ``sharpe`` (mean/std·√ppy, rf = 0), ``max_drawdown`` (positive), ``calmar``
        (annual_return / max_drawdown), ``win_rate`` (share of periods > 0), ``n``,
        ``periods_per_year``.
    """
    if periods_per_year <= 0:
        raise DataError(f"periods_per_year must be > 0, got {periods_per_year}")
    r = _series(returns)
    f = r[np.isfinite(r)]
    n = int(f.size)
    nan = float("nan")
    ann = np.sqrt(periods_per_year)
    std = float(f.std(ddof=1)) if n > 1 else nan
    mdd = max_drawdown(r) if n else nan
    ar = annualised_return(r, periods_per_year)
    return {
        "cumulative_return": float(np.prod(1.0 + f) - 1.0) if n else nan,
        "annual_return": ar,
        "annual_vol": std * ann,
        "sharpe": float(f.mean()) / std * ann if n > 1 and std > 0 else nan,
        "max_drawdown": mdd,
        "calmar": ar / mdd if n and mdd > 0 else nan,
        "win_rate": float((f > 0).mean()) if n else nan,
        "n": n,
        "periods_per_year": float(periods_per_year),
    }


def pure_factor_summary(
    factor_returns: np.ndarray,
    periods_per_year: float,
    t_values: np.ndarray | None = None,
    nw_lags: int | None = None,
) -> dict[str, float]:
    """Summary of a pure-factor-return series ``float[T]`` (one cross-sectional regression
    coefficient per date), as the Barra-style factor report shows it.

    Parameters
    ----------
    factor_returns : float[T]
        Per-date pure factor returns (NaN dates skipped).
    periods_per_year : float
        12 for monthly regressions, 252 for daily.
    t_values : float[T], optional
        Per-date regression t-values of the factor; adds ``mean_abs_t`` and ``share_abs_t_gt_2``.
    nw_lags : int, optional
        Newey-West lags for ``t_nw`` (default ``floor(4 (n/100)^(2/9))``).

    Returns
    -------
    dict
        ``cumulative_return`` (compounded), ``annual_return``, ``mean``, ``std``, ``ir``
        (mean/std per period, the IC_IR-style ratio), ``ir_annualised``, ``t_stat``
        (mean/std·√n), ``t_nw``, ``win_rate``, ``max_drawdown``, ``n``, ``periods_per_year``
        and the t-value figures when given.
    """
    r = _series(factor_returns, "factor_returns")
    f = r[np.isfinite(r)]
    n = int(f.size)
    nan = float("nan")
    mean = float(f.mean()) if n else nan
    std = float(f.std(ddof=1)) if n > 1 else nan
    ir = mean / std if n > 1 and std > 0 else nan
    lags = default_nw_lags(n) if nw_lags is None else int(nw_lags)
    se = newey_west_se(f, lags) if n > 1 else nan
    out = {
        "cumulative_return": float(np.prod(1.0 + f) - 1.0) if n else nan,
        "annual_return": annualised_return(r, periods_per_year),
        "mean": mean,
        "std": std,
        "ir": ir,
        "ir_annualised": ir * float(np.sqrt(periods_per_year)),
        "t_stat": ir * float(np.sqrt(n)),
        "t_nw": mean / se if se > 0 else nan,
        "nw_lags": lags,
        "win_rate": float((f > 0).mean()) if n else nan,
        "max_drawdown": max_drawdown(r) if n else nan,
        "n": n,
        "periods_per_year": float(periods_per_year),
    }
    if t_values is not None:
        t = _series(t_values, "t_values")
        t = np.abs(t[np.isfinite(t)])
        out["mean_abs_t"] = float(t.mean()) if t.size else nan
        out["share_abs_t_gt_2"] = float((t > 2).mean()) if t.size else nan
    return out
