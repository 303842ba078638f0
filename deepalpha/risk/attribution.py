"""Exposures over time and return attribution of a held portfolio against a benchmark.

Shapes: ``T`` days, ``N`` assets, ``S`` styles, ``P`` industries, ``K = 1 + P + S`` factors
``[country, industries, styles]``.

Timing (the daily risk model's row convention): row ``t`` holds the active weights at the close
of ``t`` (``a = w - b``, after that day's trades), the exposures at ``t``, the factor returns of
the model's row ``t`` (the regression of the return over ``t -> t+1`` on the exposures at ``t``)
and the stock returns over ``t -> t+1``. Nothing of ``t+1`` enters the weights or exposures.

Per row::

    x_t = X_t' a_t                                       active exposures          [K]
    stock-level active return  sum_i a_i r_i  =  sum_k x_k f_k   +   sum_i a_i (r_i - X_i f)
                                                 (factor, by factor)  (specific)
    residual = total - sum_i a_i r_i                     (costs, execution price vs the close,
                                                          cash timing: whatever the NAVs saw
                                                          that held weights times close-to-close
                                                          returns do not)

so ``factor + specific + residual == total`` to rounding (1e-12) on every day. Stocks without
exposures get styles 0 and country only (as the optimiser); a row whose factor returns are
missing (the model's last date, a date outside the model) puts the whole stock-level return in
``specific`` and is counted in ``Attribution.unattributed``. Missing stock returns count as 0 (the
backtest freezes such positions).

Cumulative figures: arithmetic sums of the daily parts (which add up exactly), and the Carino
linking (`carino_link`) that makes the parts add up to the compounded active return
``prod(1 + r_p) - prod(1 + r_b)`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from deepalpha.errors import DataError

__all__ = ["Attribution", "attribute_returns", "carino_link", "exposure_path"]


def exposure_path(
    weights: np.ndarray,
    styles: np.ndarray,
    industry_ids: np.ndarray,
    n_ind: int,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    chunk: int = 64,
) -> np.ndarray:
    """Factor exposures ``X_t' w_t`` for every row, without forming ``X`` for all dates.

    Parameters
    ----------
    weights : float[T, N] (portfolio, benchmark or active weights; NaN = 0).
    styles : float[T_m, N_m, S] model exposures (memory-mapped is fine; NaN -> 0).
    industry_ids : int[T_m, N_m] (-1 = none: country only).
    n_ind : int ``P``.
    rows : int[T] model row of each weight row (-1: no exposures that day -> NaN); default
        ``arange(T)``.
    cols : int[N] model column of each asset (-1: not in the model -> country only); default
        ``arange(N)``.

    Returns
    -------
    float64[T, K] exposures ``[country, industries, styles]`` (NaN rows where ``rows == -1``).
    """
    w = np.nan_to_num(np.asarray(weights, np.float64), nan=0.0)
    T, N = w.shape
    S = styles.shape[2]
    K = 1 + n_ind + S
    rows = np.arange(T) if rows is None else np.asarray(rows, np.int64)
    cols = np.arange(N) if cols is None else np.asarray(cols, np.int64)
    if rows.shape != (T,) or cols.shape != (N,):
        raise DataError(f"rows {rows.shape} / cols {cols.shape} must be [{T}] / [{N}]")
    inm = cols >= 0
    cm = cols[inm]
    out = np.full((T, K), np.nan)
    for lo in range(0, T, chunk):
        hi = min(T, lo + chunk)
        rr = rows[lo:hi]
        ok = rr >= 0
        if not ok.any():
            continue
        B = hi - lo
        wc = w[lo:hi]
        st = np.zeros((B, N, S))
        ind = np.full((B, N), -1, np.int64)
        ri = rr[ok]
        st_m = np.asarray(styles[ri], np.float64)[:, cm]  # [b, n_in, S]
        st[np.ix_(np.nonzero(ok)[0], np.nonzero(inm)[0])] = np.nan_to_num(st_m, nan=0.0)
        ind[np.ix_(np.nonzero(ok)[0], np.nonzero(inm)[0])] = np.asarray(industry_ids[ri], np.int64)[
            :, cm
        ]
        x = np.zeros((B, K))
        x[:, 0] = wc.sum(axis=1)
        has = ind >= 0
        flat = (np.arange(B)[:, None] * n_ind + np.where(has, ind, 0))[has]
        x[:, 1 : 1 + n_ind] = np.bincount(flat, weights=wc[has], minlength=B * n_ind).reshape(
            B, n_ind
        )
        x[:, 1 + n_ind :] = np.einsum("bn,bns->bs", wc, st)
        x[~ok] = np.nan
        out[lo:hi] = x
    return out


@dataclass(frozen=True)
class Attribution:
    """Daily attribution (row t: held over ``t -> t+1``; see the module docstring).

    Attributes
    ----------
    factor : float64[T, K]   ``x_k f_k`` per factor (0 where unattributed).
    specific : float64[T]
    residual : float64[T]    ``total - (factor.sum(1) + specific)``.
    total : float64[T]       the active return the parts explain (``stock`` when not given).
    stock : float64[T]       ``sum_i a_i r_i``.
    exposures : float64[T, K] active exposures.
    unattributed : bool[T]   rows without factor returns.
    factor_names : tuple[K]; kinds : str[K] ("country" | "industry" | "style").
    """

    factor: np.ndarray
    specific: np.ndarray
    residual: np.ndarray
    total: np.ndarray
    stock: np.ndarray
    exposures: np.ndarray
    unattributed: np.ndarray
    factor_names: tuple[str, ...]
    kinds: np.ndarray

    def by_kind(self) -> dict[str, np.ndarray]:
        """Daily ``{"country", "industry", "style", "factor", "specific", "residual",
        "total"}`` float64[T] (the first three add up to ``factor``)."""
        out = {
            k: self.factor[:, self.kinds == k].sum(axis=1) for k in ("country", "industry", "style")
        }
        out.update(
            factor=self.factor.sum(axis=1),
            specific=self.specific,
            residual=self.residual,
            total=self.total,
        )
        return out

    def frame(self, dates: np.ndarray) -> pl.DataFrame:
        """Wide daily frame: ``date`` (the day the return is earned, ``t+1``), ``total, factor,
        specific, residual, country, industry, style`` and one column per factor (industries
        prefixed ``industry:``, styles ``style:``)."""
        dates = np.asarray(dates, "datetime64[D]")
        if dates.shape != self.total.shape:
            raise DataError(f"dates {dates.shape} must be [T={self.total.shape[0]}]")
        k = self.by_kind()
        cols = {"date": dates, **{n: k[n] for n in (
            "total", "factor", "specific", "residual", "country", "industry", "style")}}  # fmt: skip
        for j, n in enumerate(self.factor_names):
            if self.kinds[j] != "country":
                cols[f"{self.kinds[j]}:{n}"] = self.factor[:, j]
        return pl.DataFrame(cols).with_columns(pl.col("date").cast(pl.Date))


def attribute_returns(
    active: np.ndarray,
    returns: np.ndarray,
    exposures: np.ndarray,
    factor_returns: np.ndarray,
    *,
    total: np.ndarray | None = None,
    factor_names: tuple[str, ...] = (),
    n_ind: int = 0,
) -> Attribution:
    """Split the active return of each row into factor parts, specific and residual.

    Parameters
    ----------
    active : float[T, N] active weights at the close of t (NaN = 0).
    returns : float[T, N] stock returns over ``t -> t+1`` (NaN = 0).
    exposures : float[T, K] active exposures ``X_t' a_t`` (`exposure_path` of ``active``).
    factor_returns : float[T, K] the model's row t (``t -> t+1``); a row with any NaN is
        unattributed.
    total : float[T], optional the active return to reconcile to (e.g. from the NAVs:
        ``r_p - r_b`` over ``t -> t+1``); default the stock-level ``sum_i a_i r_i``.
    factor_names : tuple[K] labels; n_ind : int ``P`` (for the kinds).

    Returns
    -------
    `Attribution`.
    """
    a = np.nan_to_num(np.asarray(active, np.float64), nan=0.0)
    r = np.nan_to_num(np.asarray(returns, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    x = np.asarray(exposures, np.float64)
    f = np.asarray(factor_returns, np.float64)
    T, N = a.shape
    if r.shape != (T, N) or x.ndim != 2 or x.shape[0] != T or f.shape != x.shape:
        raise DataError(
            f"active {a.shape}, returns {r.shape}, exposures {x.shape} and factor returns "
            f"{f.shape} must be [T, N], [T, N], [T, K], [T, K]"
        )
    K = x.shape[1]
    stock = np.einsum("tn,tn->t", a, r)
    bad = ~(np.isfinite(f).all(axis=1) & np.isfinite(x).all(axis=1))
    contrib = np.where(bad[:, None], 0.0, np.nan_to_num(x) * np.nan_to_num(f))
    spec = stock - contrib.sum(axis=1)
    tot = stock.copy() if total is None else np.asarray(total, np.float64)
    if tot.shape != (T,):
        raise DataError(f"total {tot.shape} must be [T={T}]")
    resid = tot - (contrib.sum(axis=1) + spec)
    kinds = np.full(K, "style", dtype=object)
    kinds[0] = "country"
    kinds[1 : 1 + n_ind] = "industry"
    names = tuple(factor_names) if factor_names else tuple(f"f{k}" for k in range(K))
    return Attribution(
        factor=contrib,
        specific=spec,
        residual=resid,
        total=tot,
        stock=stock,
        exposures=x,
        unattributed=bad,
        factor_names=names,
        kinds=kinds,
    )


def carino_link(parts: np.ndarray, rp: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Carino-linked totals of daily additive parts.

    Parameters
    ----------
    parts : float[T, P] daily parts with ``parts.sum(1) == rp - rb``.
    rp, rb : float[T] daily portfolio and benchmark returns.

    Returns
    -------
    float64[P] whose sum is ``prod(1 + rp) - prod(1 + rb)`` (the compounded active return).
    """
    parts = np.asarray(parts, np.float64)
    rp = np.asarray(rp, np.float64)
    rb = np.asarray(rb, np.float64)
    Rp, Rb = np.prod(1 + rp) - 1, np.prod(1 + rb) - 1

    def k(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        same = np.abs(a - b) < 1e-12
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (np.log1p(a) - np.log1p(b)) / (a - b)
        return np.where(same, 1.0 / (1.0 + a), v)

    kt = k(rp, rb)
    K_ = float(k(Rp, Rb))
    return (parts * (kt / K_)[:, None]).sum(axis=0)
