"""Portfolio risk decomposition on a factor model, never forming the ``N x N`` covariance.

Shapes: ``N`` assets, ``K = 1 + P + S`` factors ``[country, industries, styles]``.

Model on one date: exposures ``X float64[N, K]``, factor covariance ``F float64[K, K]`` and
specific variances ``d float64[N]``, both per model period (one trading day for the daily model);
the asset covariance is ``V = X F X' + diag(d)`` but only ``X``, ``F`` and ``d`` are used::

    x = X' p                           exposures of the weights p      [K]
    var = x' F x + sum_i p_i^2 d_i      (annualised: x periods_per_year)
    factor var = x' F x,  specific var = sum_i p_i^2 d_i
    marginal to risk (per asset)   m_i = (X F x + d * p)_i / sigma        [N]
    marginal to risk (per factor)  g_k = (F x)_k / sigma                  [K]
    contribution                   p_i m_i (assets), x_k g_k (factors), sum_i p_i^2 d_i / sigma
                                   (specific); each set sums to sigma (Euler), percent = / sigma.

``p`` is the portfolio (total risk) or the active weights ``w - b`` (active risk = ex-ante
tracking error). Predicted beta of ``w`` on a benchmark ``b``: ``cov(w, b) / var(b)`` with
``cov(w, b) = x_w' F x_b + sum_i w_i b_i d_i``; without a benchmark, on the model's cap-weighted
estimation universe (the "market").

Everything is a pure function on arrays (`decompose`); `read_snapshot` pulls one date's
``X, F, d`` out of a saved risk model directory without loading the whole model (it reads the
layout of `deepalpha.risk.model.RiskModel.save`; memory-mapped arrays, no torch import), and
`snapshot` does the same from a loaded `RiskModel`.

Missing risk data of an asset (as the optimiser, `deepalpha.portfolio.enhance`): styles 0 (the
cap-weighted mean), no industry (country only), specific variance = the median over the model's
assets with one on that date; `Snapshot.filled` flags those assets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepalpha.errors import DataError

if TYPE_CHECKING:
    from deepalpha.risk.model import RiskModel

__all__ = [
    "Breakdown",
    "Decomposition",
    "Snapshot",
    "decompose",
    "group_table",
    "read_snapshot",
    "snapshot",
]

FORMAT_VERSION = 1  # of the saved model layout read by `read_snapshot` (RiskModel.save)


@dataclass(frozen=True)
class Snapshot:
    """One date of a risk model, aligned to ``assets``.

    Attributes
    ----------
    date : datetime64[D]      the date asked for.
    exposure_date : datetime64[D]   the model row the exposures come from (last ``<= date``).
    cov_date : datetime64[D]  the covariance forecast used (last finite one ``<= date``).
    assets : str[N]
    X : float64[N, K]         exposures (missing -> see the module docstring).
    F : float64[K, K]         factor covariance per model period.
    d : float64[N]            specific variance per model period.
    filled : bool[N]          the asset's exposures or specific variance were filled.
    market : float64[N]       cap weights of the model's estimation universe on the exposure
                              date, for the default beta (normalised over all the model's
                              assets: they sum to 1 only when ``assets`` covers the ESTU).
    factor_names : tuple[K]; n_industries : int; periods_per_year : float
    """

    date: np.datetime64
    exposure_date: np.datetime64
    cov_date: np.datetime64
    assets: np.ndarray
    X: np.ndarray
    F: np.ndarray
    d: np.ndarray
    filled: np.ndarray
    market: np.ndarray
    factor_names: tuple[str, ...]
    n_industries: int
    periods_per_year: float

    @property
    def kinds(self) -> np.ndarray:
        """``str[K]``: "country", "industry" or "style" per factor."""
        K = len(self.factor_names)
        k = np.full(K, "style", dtype=object)
        k[0] = "country"
        k[1 : 1 + self.n_industries] = "industry"
        return k


def design_row(styles: np.ndarray, ind: np.ndarray, n_ind: int) -> np.ndarray:
    """``float64[N, 1 + P + S]`` from ``styles float[N, S]`` (NaN -> 0) and ``ind int[N]``
    (-1 = none: country only)."""
    n, S = styles.shape
    X = np.zeros((n, 1 + n_ind + S))
    X[:, 0] = 1.0
    ind = np.asarray(ind, np.int64)
    has = ind >= 0
    X[np.nonzero(has)[0], 1 + ind[has]] = 1.0
    X[:, 1 + n_ind :] = np.nan_to_num(np.asarray(styles, np.float64), nan=0.0)
    return X


def _pick_rows(
    date: np.datetime64, dates: np.ndarray, cov_dates: np.ndarray, cov_ok: np.ndarray, where: str
) -> tuple[int, int]:
    row = int(np.searchsorted(dates, date, side="right")) - 1
    good = np.nonzero(cov_ok & (cov_dates <= date))[0]
    if row < 0 or good.size == 0:
        first = cov_dates[np.nonzero(cov_ok)[0][0]] if cov_ok.any() else "none"
        raise DataError(
            f"the risk model has no forecast on {date} (its first finite covariance is "
            f"{first}, its dates run {dates[0]}..{dates[-1]})",
            file=where,
            date=date,
        )
    if date > dates[-1] + np.timedelta64(31, "D"):
        raise DataError(
            f"{date} is more than a month after the risk model's last date {dates[-1]}",
            file=where,
            date=date,
        )
    return row, int(good[-1])


def _assemble(
    date: np.datetime64,
    row: int,
    cov_row: int,
    model_assets: np.ndarray,
    assets: np.ndarray | None,
    styles_row: np.ndarray,
    ind_row: np.ndarray,
    weights_row: np.ndarray,
    F: np.ndarray,
    svar_row: np.ndarray,
    dates: np.ndarray,
    cov_dates: np.ndarray,
    factor_names: tuple[str, ...],
    n_ind: int,
    ppy: float,
    where: str,
) -> Snapshot:
    model_assets = np.asarray(model_assets).astype(str)
    if assets is None:
        cols = np.arange(model_assets.size)
        assets = model_assets
    else:
        assets = np.asarray(assets).astype(str)
        pos = {a: i for i, a in enumerate(model_assets.tolist())}
        cols = np.array([pos.get(a, -1) for a in assets.tolist()], np.int64)
        if (cols < 0).any():
            bad = assets[cols < 0]
            raise DataError(
                f"{bad.size} asset(s) are not in the risk model: {', '.join(bad[:10].tolist())}"
                + (" ..." if bad.size > 10 else ""),
                file=where,
            )
    st = np.asarray(styles_row, np.float64)
    ind = np.asarray(ind_row, np.int64)
    sv = np.asarray(svar_row, np.float64)
    ok_sv = np.isfinite(sv) & (sv > 0)
    med = float(np.median(sv[ok_sv])) if ok_sv.any() else 0.02**2
    st, ind, sv = st[cols], ind[cols], sv[cols]
    miss_x = ~np.isfinite(st).all(axis=1) | (ind < 0)
    miss_d = ~(np.isfinite(sv) & (sv > 0))
    X = design_row(st, ind, n_ind)
    d = np.where(miss_d, med, sv)
    cap = np.asarray(weights_row, np.float64) ** 2
    cap = np.where(np.isfinite(cap), cap, 0.0)
    mk = cap[cols] / cap.sum() if cap.sum() > 0 else np.zeros(cols.size)
    Fm = np.asarray(F, np.float64)
    return Snapshot(
        date=date,
        exposure_date=dates[row],
        cov_date=cov_dates[cov_row],
        assets=assets,
        X=X,
        F=0.5 * (Fm + Fm.T),
        d=d,
        filled=miss_x | miss_d,
        market=mk,
        factor_names=factor_names,
        n_industries=n_ind,
        periods_per_year=ppy,
    )


def _finite_cov(fc: np.ndarray) -> np.ndarray:
    return np.array([bool(np.isfinite(fc[i]).all()) for i in range(fc.shape[0])])


def snapshot(model: RiskModel, date: Any, assets: np.ndarray | None = None) -> Snapshot:
    """`Snapshot` of a loaded `RiskModel` on ``date`` for ``assets`` (default: all of the
    model's). Exposures from the last model row ``<= date``, covariance and specific variance
    from the last covariance date ``<= date`` with a finite forecast (as the backtest's
    optimiser)."""
    date = np.datetime64(date, "D")
    dates = np.asarray(model.dates, "datetime64[D]")
    cdates = np.asarray(model.cov_dates, "datetime64[D]")
    row, crow = _pick_rows(date, dates, cdates, _finite_cov(model.factor_cov), "risk model")
    return _assemble(
        date, row, crow, model.assets, assets, model.styles[row], model.industry_ids[row],
        model.weights[row], model.factor_cov[crow], model.specific_var[crow], dates, cdates,
        tuple(model.factor_names), model.n_industries, float(model.periods_per_year), "risk model",
    )  # fmt: skip


def read_snapshot(path: str | Path, date: Any, assets: np.ndarray | None = None) -> Snapshot:
    """`Snapshot` on ``date`` read straight from a directory written by `RiskModel.save`.

    Reads ``meta.json``, the date columns and one row of each memory-mapped array, so it costs
    milliseconds whatever the model's size; a damaged or foreign folder is a `DataError` naming
    it."""
    import polars as pl

    p = Path(path)
    mfile = p / "meta.json"
    if not mfile.is_file():
        raise DataError("not a risk model directory (no meta.json)", file=p)
    try:
        meta = json.loads(mfile.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"unsupported risk model format {meta.get('format_version')}", file=mfile
            )
        dates = (
            pl.read_parquet(p / "factor_returns.parquet", columns=["date"])["date"]
            .to_numpy()
            .astype("datetime64[D]")
        )
        cdates = pl.read_parquet(p / "cov_dates.parquet")["date"].to_numpy().astype("datetime64[D]")
        massets = pl.read_parquet(p / "assets.parquet")["asset"].to_numpy().astype(str)
        arr = {
            n: np.load(p / f"{n}.npy", mmap_mode="r")
            for n in ("styles", "industry_ids", "weights", "factor_cov", "specific_var")
        }
        styles_names = list(meta["style_names"])
        ind_names = list(meta["industry_names"])
        freq = meta.get("freq", "daily")
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        raise DataError(
            f"damaged risk model directory ({type(e).__name__}: {msg})", file=p
        ) from None
    date = np.datetime64(date, "D")
    fc = arr["factor_cov"]
    row, crow = _pick_rows(date, dates, cdates, _finite_cov(fc), str(p))
    return _assemble(
        date, row, crow, massets, assets, arr["styles"][row], arr["industry_ids"][row],
        arr["weights"][row], fc[crow], arr["specific_var"][crow], dates, cdates,
        ("country", *ind_names, *styles_names), len(ind_names),
        252.0 if freq == "daily" else 12.0, str(p),
    )  # fmt: skip


# ---------------------------------------------------------------------------- decomposition


@dataclass(frozen=True)
class Breakdown:
    """Risk of one weight vector ``p`` (portfolio or active), annualised.

    Attributes
    ----------
    risk, factor_risk, specific_risk : float   volatilities (sqrt of the variances).
    exposures : float64[K]                      ``X' p``.
    factor_marginal, factor_contrib, factor_pct : float64[K]
    specific_contrib, specific_pct : float
    asset_marginal, asset_contrib, asset_pct : float64[N]
    ``sum(factor_contrib) + specific_contrib == sum(asset_contrib) == risk``; pct = / risk.
    """

    risk: float
    factor_risk: float
    specific_risk: float
    exposures: np.ndarray
    factor_marginal: np.ndarray
    factor_contrib: np.ndarray
    factor_pct: np.ndarray
    specific_contrib: float
    specific_pct: float
    asset_marginal: np.ndarray
    asset_contrib: np.ndarray
    asset_pct: np.ndarray


@dataclass(frozen=True)
class Decomposition:
    """`decompose` output: ``portfolio`` (total risk of w), ``active`` (w - b; None without a
    benchmark), ``benchmark`` (risk of b; None without one), ``beta`` of w on b (or on the
    market), ``beta_on`` naming what beta is measured against."""

    portfolio: Breakdown
    active: Breakdown | None
    benchmark: Breakdown | None
    beta: float
    beta_on: str
    factor_names: tuple[str, ...] = ()
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(0, object))

    @property
    def target(self) -> Breakdown:
        """The breakdown a report leads with: active when there is a benchmark."""
        return self.active if self.active is not None else self.portfolio


def _breakdown(p: np.ndarray, X: np.ndarray, F: np.ndarray, d: np.ndarray) -> Breakdown:
    x = X.T @ p  # [K]
    Fx = F @ x
    fvar = float(x @ Fx)
    dp = d * p
    svar = float(p @ dp)
    var = max(fvar + svar, 0.0)
    s = np.sqrt(var)
    inv = 1.0 / s if s > 0 else np.nan
    g = Fx * inv
    m = (X @ Fx + dp) * inv
    fc = x * g
    ac = p * m
    sc = svar * inv
    return Breakdown(
        risk=float(s),
        factor_risk=float(np.sqrt(max(fvar, 0.0))),
        specific_risk=float(np.sqrt(max(svar, 0.0))),
        exposures=x,
        factor_marginal=g,
        factor_contrib=fc,
        factor_pct=fc * inv,
        specific_contrib=float(sc),
        specific_pct=float(sc * inv),
        asset_marginal=m,
        asset_contrib=ac,
        asset_pct=ac * inv,
    )


def decompose(
    w: np.ndarray,
    X: np.ndarray,
    F: np.ndarray,
    d: np.ndarray,
    bench: np.ndarray | None = None,
    *,
    market: np.ndarray | None = None,
    periods_per_year: float = 252.0,
    factor_names: tuple[str, ...] = (),
    kinds: np.ndarray | None = None,
) -> Decomposition:
    """Total, factor, specific and active risk with marginal and percent contributions.

    Parameters
    ----------
    w : float[N] portfolio weights (fractions of NAV; cash = 1 - sum).
    X : float[N, K] exposures; F : float[K, K] factor covariance per period;
    d : float[N] specific variance per period (all finite).
    bench : float[N], optional benchmark weights (active = w - bench).
    market : float[N], optional weights beta is measured on when there is no benchmark.
    periods_per_year : annualisation of F and d (252 for the daily model).
    factor_names, kinds : labels carried along for reports (see `group_table`).

    Returns
    -------
    `Decomposition`; volatilities and contributions annualised (fractions, 0.05 = 5 %).
    """
    w = np.asarray(w, np.float64)
    X = np.asarray(X, np.float64)
    N, K = X.shape
    if w.shape != (N,):
        raise DataError(f"weights {w.shape} must be [N={N}] like the exposures {X.shape}")
    F = np.asarray(F, np.float64) * periods_per_year
    d = np.asarray(d, np.float64) * periods_per_year
    if F.shape != (K, K) or d.shape != (N,):
        raise DataError(f"F {F.shape} must be [{K}, {K}] and d {d.shape} [{N}]")
    if not (np.isfinite(X).all() and np.isfinite(F).all() and np.isfinite(d).all()):
        raise DataError("exposures, factor covariance and specific variances must be finite")
    if not np.isfinite(w).all():
        raise DataError("weights must be finite")
    port = _breakdown(w, X, F, d)
    act = bm = None
    ref = bench if bench is not None else market
    beta, on = float("nan"), "none"
    if bench is not None:
        b = np.asarray(bench, np.float64)
        if b.shape != (N,) or not np.isfinite(b).all():
            raise DataError(f"benchmark weights {b.shape} must be finite [N={N}]")
        act = _breakdown(w - b, X, F, d)
        bm = _breakdown(b, X, F, d)
        on = "benchmark"
    elif market is not None:
        on = "market (cap-weighted estimation universe)"
    if ref is not None:
        r = np.asarray(ref, np.float64)
        xr = X.T @ r
        vr = float(xr @ F @ xr + r @ (d * r))
        cov = float(port.exposures @ F @ xr + w @ (d * r))
        beta = cov / vr if vr > 0 else float("nan")
    return Decomposition(
        portfolio=port,
        active=act,
        benchmark=bm,
        beta=beta,
        beta_on=on,
        factor_names=tuple(factor_names),
        kinds=np.asarray(kinds if kinds is not None else np.zeros(0), dtype=object),
    )


def decompose_snapshot(
    snap: Snapshot, w: np.ndarray, bench: np.ndarray | None = None
) -> Decomposition:
    """`decompose` with a `Snapshot`'s ``X, F, d`` (weights aligned to ``snap.assets``)."""
    return decompose(
        w, snap.X, snap.F, snap.d, bench, market=snap.market,
        periods_per_year=snap.periods_per_year, factor_names=snap.factor_names, kinds=snap.kinds,
    )  # fmt: skip


def group_table(dec: Decomposition, b: Breakdown | None = None) -> dict[str, dict[str, float]]:
    """Risk contributions grouped by factor kind: ``{"country"|"industry"|"style"|"specific"|
    "total": {"contrib", "pct"}}`` of breakdown ``b`` (default ``dec.target``); ``contrib`` sums
    to the risk and ``pct`` to 1 over the first four groups (Euler)."""
    b = b or dec.target
    kinds = dec.kinds
    out: dict[str, dict[str, float]] = {}
    for g in ("country", "industry", "style"):
        sel = kinds == g
        out[g] = {
            "contrib": float(b.factor_contrib[sel].sum()),
            "pct": float(b.factor_pct[sel].sum()),
        }
    out["specific"] = {"contrib": b.specific_contrib, "pct": b.specific_pct}
    out["total"] = {"contrib": b.risk, "pct": 1.0 if b.risk > 0 else float("nan")}
    return out
