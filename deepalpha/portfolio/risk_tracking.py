"""Risk views of a finished enhancement backtest: active exposures over time, return
attribution and ex-ante against realised tracking error, all against the member proxy.

Shapes: ``T`` panel days, ``N`` assets, ``K`` factors ``[country, industries, styles]``, ``n``
the assets held or in the benchmark on a day.

Row ``t`` (each day of the window but its last): the held weights at the close of ``t``
(``BacktestResult.weights[t]``, after that day's trades) against the proxy's weights of ``t``
(the cap-weighted members, which earn ``t -> t+1`` in `benchmark.proxy_returns`); the risk
source's exposures and forecast known at ``t`` (``risk.inputs(t, idx)``, the optimiser's own
view, missing data filled the same way); the realised active return over ``t -> t+1`` from the
NAVs, ``e = r_p - r_proxy`` (after costs).

- exposures: ``X' w``, ``X' b`` and their difference per factor and day;
- ex-ante TE of the held weights ``sqrt(252 (x' F x + sum a^2 d))`` each day, its factor and
  specific parts, and the bias statistic ``std(e / sigma_t)``;
- per calendar year (of the day the return is earned): realised TE ``std(e) sqrt(252)`` against
  the optimiser's mean ex-ante TE at the year's rebalances (``te_ratio``) and against the
  held weights' ex-ante TE (``te_ratio_held``, root mean square of the daily forecasts);
- attribution (`deepalpha.risk.attribution`) when the risk source carries factor returns (our
  risk model, through `enhance.ModelRisk`): factor parts by factor, specific and the residual
  (costs, execution price), reconciled to ``e`` on every day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from deepalpha.risk.attribution import Attribution, attribute_returns

__all__ = ["RiskTracking", "track_risk", "write_tracking"]


@dataclass
class RiskTracking:
    """Outputs of `track_risk`.

    Attributes
    ----------
    exposures : long frame ``date, factor, kind, portfolio, benchmark, active`` (one row per day
        of the window and factor; ``date`` = the day the weights are held at the close).
    attribution : wide daily frame (`Attribution.frame`; ``date`` = the day the return is
        earned) or None without factor returns.
    daily : frame ``date, active_return, ex_ante_te, ex_ante_factor_te, ex_ante_specific_te, z``
        (``date`` = the day the return is earned; TEs annualised).
    yearly : frame per year and ``all`` (see the module docstring).
    summary : the ``all`` row as a dict.
    """

    exposures: pl.DataFrame
    attribution: pl.DataFrame | None
    daily: pl.DataFrame
    yearly: pl.DataFrame
    summary: dict[str, float]


def _factor_names(risk: Any, K: int, kind: np.ndarray) -> list[str]:
    model = getattr(risk, "model", None)
    names = list(getattr(model, "factor_names", ()) or ())
    if len(names) == K:
        return names
    out, ni, ns = [], 0, 0
    for k in kind.tolist():
        if k == 0:
            out.append("country")
        elif k == 1:
            out.append(f"industry{ni}")
            ni += 1
        else:
            out.append(f"style{ns}")
            ns += 1
    return out


def _factor_returns(risk: Any, dates: np.ndarray, rows: np.ndarray, K: int) -> np.ndarray | None:
    """Model factor returns for panel rows ``rows`` (row t: ``t -> t+1``), NaN where the panel
    day is not a model day; None when the risk source has none."""
    model = getattr(risk, "model", None)
    fr = getattr(model, "factor_returns", None)
    if fr is None or np.shape(fr)[1] != K:
        return None
    md = np.asarray(model.dates, "datetime64[D]")
    j = np.searchsorted(md, dates[rows])
    ok = (j < md.size) & (md[np.minimum(j, md.size - 1)] == dates[rows])
    out = np.full((rows.size, K), np.nan)
    out[ok] = np.asarray(fr, np.float64)[j[ok]]
    return out


def track_risk(
    bt: Any,
    bench_w: np.ndarray,
    risk: Any,
    t0: int,
    t1: int,
    close: np.ndarray,
    rebalance_dates: np.ndarray | None = None,
    rebalance_te: np.ndarray | None = None,
) -> RiskTracking:
    """Exposures, ex-ante vs realised TE and attribution of backtest ``bt`` over days
    ``t0..t1`` (inclusive; returns ``t -> t+1`` for ``t0 <= t < t1``).

    Parameters
    ----------
    bt : `BacktestResult` (weights, nav, proxy_nav, dates).
    bench_w : float[T, N] proxy weights (rows sum to 1).
    risk : a risk source with ``inputs(t, idx) -> (X, F, delta, kind)`` and
        ``periods_per_year`` (`enhance.ModelRisk`, `enhance.ArrayRisk`).
    close : float[T, N] back-adjusted close (stock returns for the attribution).
    rebalance_dates, rebalance_te : datetime64[D][R], float[R] the optimiser's ex-ante TE at each
        rebalance (signal date), for ``te_ratio``.
    """
    dates = np.asarray(bt.dates, "datetime64[D]")
    W = np.asarray(bt.weights)
    bw = np.nan_to_num(np.asarray(bench_w, np.float64), nan=0.0)
    ppy = float(getattr(risk, "periods_per_year", 252.0))
    rows = np.arange(t0, t1)
    n = rows.size
    nav = np.asarray(bt.nav, np.float64)
    bnav = bt.proxy_nav if bt.proxy_nav is not None else bt.bench_nav
    bnav = np.asarray(bnav, np.float64)
    rp = nav[rows + 1] / nav[rows] - 1.0
    rb = bnav[rows + 1] / bnav[rows] - 1.0
    e = rp - rb
    K = None
    xp = xb = None
    var_f = np.full(n, np.nan)
    var_s = np.full(n, np.nan)
    kind = None
    for i, t in enumerate(rows.tolist()):
        w = W[t].astype(np.float64)
        idx = np.nonzero((w > 0) | (bw[t] > 0))[0]
        if idx.size == 0:
            continue
        X, F, delta, kd = risk.inputs(t, idx)
        if K is None:
            K = X.shape[1]
            kind = np.asarray(kd)
            xp = np.full((n, K), np.nan)
            xb = np.full((n, K), np.nan)
        a = w[idx] - bw[t, idx]
        xp[i] = X.T @ w[idx]
        xb[i] = X.T @ bw[t, idx]
        xa = xp[i] - xb[i]
        var_f[i] = float(xa @ F @ xa)
        var_s[i] = float(a @ (delta * a))
    if K is None:  # nothing held and no benchmark: nothing to report
        K, kind = 0, np.zeros(0, np.int8)
        xp = xb = np.zeros((n, 0))
    names = _factor_names(risk, K, kind)
    kinds = np.array(["country", "industry", "style"], dtype=object)[np.clip(kind, 0, 2)]
    sig = np.sqrt(var_f + var_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = e / sig
    end = dates[rows + 1]
    daily = pl.DataFrame(
        {
            "date": end,
            "active_return": e,
            "ex_ante_te": sig * np.sqrt(ppy),
            "ex_ante_factor_te": np.sqrt(var_f * ppy),
            "ex_ante_specific_te": np.sqrt(var_s * ppy),
            "z": z,
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    held = dates[rows]
    exposures = pl.DataFrame(
        {
            "date": np.repeat(held, K),
            "factor": np.tile(np.asarray(names, dtype=object), n).astype(str),
            "kind": np.tile(kinds, n).astype(str),
            "portfolio": xp.ravel(),
            "benchmark": xb.ravel(),
            "active": (xp - xb).ravel(),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    att = None
    fr = _factor_returns(risk, dates, rows, K) if K else None
    if fr is not None:
        c = np.asarray(close, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = c[rows + 1] / c[rows] - 1.0
        active = W[rows].astype(np.float64) - bw[rows]
        P = int((kind == 1).sum())
        att = attribute_returns(active, r, xp - xb, fr, total=e, factor_names=tuple(names), n_ind=P)
    yearly = _yearly(end, e, var_f, var_s, z, ppy, rebalance_dates, rebalance_te, att)
    summary = yearly.row(yearly.height - 1, named=True) if yearly.height else {}
    return RiskTracking(
        exposures=exposures,
        attribution=None if att is None else att.frame(end),
        daily=daily,
        yearly=yearly,
        summary={k: v for k, v in summary.items() if k != "year"},
    )


def _yearly(
    end: np.ndarray,
    e: np.ndarray,
    var_f: np.ndarray,
    var_s: np.ndarray,
    z: np.ndarray,
    ppy: float,
    rdates: np.ndarray | None,
    rte: np.ndarray | None,
    att: Attribution | None,
) -> pl.DataFrame:
    years = end.astype("datetime64[Y]").astype(int) + 1970
    ry = None if rdates is None else np.asarray(rdates, "datetime64[Y]").astype(int) + 1970
    rte = None if rte is None else np.asarray(rte, np.float64)
    out = []
    groups = [(str(y), years == y) for y in np.unique(years)] + [("all", np.ones(e.size, bool))]
    for label, sel in groups:
        ok = sel & np.isfinite(var_f) & np.isfinite(var_s) & np.isfinite(e)
        zz = z[ok & np.isfinite(z)]
        if ok.sum() < 2:
            continue
        real = float(np.std(e[ok], ddof=1) * np.sqrt(ppy))
        held = float(np.sqrt(np.mean(var_f[ok] + var_s[ok]) * ppy))
        opt = float("nan")
        if ry is not None and rte is not None:
            rs = (ry == int(label)) if label != "all" else np.ones(ry.size, bool)
            rs &= np.isfinite(rte)
            opt = float(np.mean(rte[rs])) if rs.any() else float("nan")
        row = {
            "year": label,
            "days": int(ok.sum()),
            "proxy_realised_te": real,
            "ex_ante_te": opt,
            "ex_ante_te_held": held,
            "te_ratio": real / opt if opt > 0 else float("nan"),
            "te_ratio_held": real / held if held > 0 else float("nan"),
            "bias_stat": float(np.std(zz, ddof=1)) if zz.size > 1 else float("nan"),
            "ex_ante_factor_te": float(np.sqrt(np.mean(var_f[ok]) * ppy)),
            "ex_ante_specific_te": float(np.sqrt(np.mean(var_s[ok]) * ppy)),
        }
        if att is not None:
            f = att.factor.sum(axis=1)
            row["realised_factor_te"] = float(np.std(f[ok], ddof=1) * np.sqrt(ppy))
            row["realised_specific_te"] = float(np.std(att.specific[ok], ddof=1) * np.sqrt(ppy))
            row["realised_residual_te"] = float(np.std(att.residual[ok], ddof=1) * np.sqrt(ppy))
            row["factor_return"] = float(f[ok].sum())
            row["specific_return"] = float(att.specific[ok].sum())
            row["residual_return"] = float(att.residual[ok].sum())
            row["active_return"] = float(e[ok].sum())
        out.append(row)
    return pl.DataFrame(out, infer_schema_length=None)


def write_tracking(tr: RiskTracking, out: Any) -> list[Any]:
    """Write ``exposures.parquet``, ``attribution.parquet`` (when there is one),
    ``risk_daily.parquet`` and ``risk_yearly.csv`` into folder ``out`` atomically; returns the
    paths."""
    from pathlib import Path

    from deepalpha.atomic import atomic_path

    out = Path(out)
    files = []
    frames = [("exposures.parquet", tr.exposures), ("attribution.parquet", tr.attribution),
              ("risk_daily.parquet", tr.daily), ("risk_yearly.csv", tr.yearly)]  # fmt: skip
    for name, df in frames:
        if df is None:
            continue
        with atomic_path(out / name) as tmp:
            if name.endswith(".csv"):
                df.write_csv(tmp)
            else:
                df.write_parquet(tmp)
        files.append(out / name)
    return files
