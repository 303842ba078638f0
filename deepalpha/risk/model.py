"""Build, save and load the Barra CNE6-style risk model.

Shapes: ``T`` model dates (trading days for ``freq="daily"``, month ends for ``"monthly"``),
``N`` assets, ``S`` styles, ``P`` industries, ``K = 1 + P + S`` factors ``[country, industries,
styles]``, ``D`` covariance dates.

Estimation universe (ESTU): rebalanced at month ends -- listed for at least 252 trading days
(from the list date when given, else from the first listed day in the panel), positive cap, an
industry, traded in the last month -- and held until the next month end (`estimation_universe`);
it does not depend on the day's tradability. Regression weights ``sqrt(cap)`` inside the ESTU.

Daily model: row t regresses the return over ``t -> t+1`` on the exposures at t; stocks
suspended or locked at a price limit on the return day t+1 are left out of that regression
(`regression_mask`); the last row is NaN. Monthly model: dates
are the month ends, row m regresses the compounded return from month end m to month end m+1 on
the exposures at m. Half-lives of the monthly model are the daily ones divided by 21.

Covariance dates (``cov="month_end"`` by default for the daily model, every date for the monthly
one): the forecasts at d use factor / specific returns of rows ``< d`` and forecast row d.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from deepalpha.data.panel import Panel
from deepalpha.errors import ConfigError, DataError
from deepalpha.guards import MIN_RISK_DOF, check_risk_stocks
from deepalpha.risk.covariance import CovarianceConfig, factor_covariance
from deepalpha.risk.industries import industry_ids
from deepalpha.risk.regression import design_chunk, regress
from deepalpha.risk.specific import (
    SpecificConfig,
    bayesian_shrink,
    blending_gamma,
    specific_vra,
    structural_blend,
    ts_specific_var,
)
from deepalpha.risk.styles import DEFAULT_STYLES, DescriptorSource, compute_styles

FORMAT_VERSION = 1
Progress = Callable[[str, float], None]
"""``progress(stage, fraction_done_overall)``."""


@dataclass(frozen=True)
class RiskConfig:
    """Risk-model settings. Half-lives are in trading days (scaled for the monthly model).

    preset "responsive": vol/corr half-lives 84/504, specific 84, VRA 21; "stable": 252/756,
    specific 252, VRA 84 (CNE6 "S").

    horizon: forecast horizon in trading days (1 = next day, 21 = a month). The covariance and
    specific-risk forecasts stay per period (daily variance); Newey-West lags default to
    ``horizon - 1`` (Bartlett weights ``1 - j / horizon``: exactly the per-day variance of an
    ``horizon``-day sum under the estimated autocorrelations), so ``horizon * F`` forecasts the
    ``horizon``-day variance (volatilities; correlations use at most 2 lags). Bias statistics are
    measured on non-overlapping ``horizon``-day returns. The monthly model uses ``max(round(horizon / 21), 1) - 1`` lags. ``nw_lags`` set
    explicitly overrides the default.
    """

    styles: tuple[str, ...] = DEFAULT_STYLES
    min_listed_days: int = 252
    horizon: int = 1
    vol_halflife: float = 84
    corr_halflife: float = 504
    nw_lags: int | None = None
    eigen_sims: int = 100
    eigen_scale: float = 1.2
    vra_halflife: float = 21
    specific_halflife: float = 84
    specific_vra_halflife: float = 21
    shrink_q: float = 0.1
    size_groups: int = 10
    cov: Literal["month_end", "all"] = "month_end"
    min_cov_obs: int = 63
    chunk: int = 64
    seed: int = 0
    min_dof: int = MIN_RISK_DOF  # stocks beyond the K - 1 free factors on one regression date

    @classmethod
    def preset(cls, name: str, **kw: Any) -> RiskConfig:
        if name == "responsive":
            return cls(**kw)
        if name == "stable":
            return cls(
                **{"vol_halflife": 252, "corr_halflife": 756, "vra_halflife": 84,
                   "specific_halflife": 252, "specific_vra_halflife": 84, **kw}
            )  # fmt: skip
        raise ConfigError(f"unknown risk preset {name!r} (responsive, stable)")


@dataclass(eq=False)
class RiskModel:
    """A fitted risk model (see the module docstring for shapes and timing).

    Attributes
    ----------
    dates : datetime64[D][T]; assets : str[N]; style_names : tuple[S]; industry_names : tuple[P];
    factor_names : tuple[K] (``country``, industries, styles);
    styles : float32[T, N, S] standardised exposures at t (NaN: no exposure);
    industry_ids : int16[T, N] (-1: none); weights : float32[T, N] sqrt(cap) in the ESTU else 0;
    factor_returns : float32[T, K] row t = return over t -> t+1 (NaN for the last date);
    specific_returns : float32[T, N]; tstats : float32[T, K]; r2 : float32[T];
    cov_dates : datetime64[D][D]; factor_cov : float32[D, K, K] (per period, forecast for the
    period starting at the cov date); specific_var : float32[D, N]; freq : "daily" | "monthly";
    meta : dict (config, counts, provenance).
    """

    dates: np.ndarray
    assets: np.ndarray
    style_names: tuple[str, ...]
    industry_names: tuple[str, ...]
    styles: np.ndarray
    industry_ids: np.ndarray
    weights: np.ndarray
    factor_returns: np.ndarray
    specific_returns: np.ndarray
    tstats: np.ndarray
    r2: np.ndarray
    cov_dates: np.ndarray
    factor_cov: np.ndarray
    specific_var: np.ndarray
    freq: str = "daily"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return ("country", *self.industry_names, *self.style_names)

    @property
    def n_industries(self) -> int:
        return len(self.industry_names)

    @property
    def periods_per_year(self) -> int:
        return 252 if self.freq == "daily" else 12

    def design(self, lo: int, hi: int) -> np.ndarray:
        """Dense exposures ``float64[hi-lo, N, K]`` for rows ``lo:hi`` (keep the chunk small)."""
        return design_chunk(self.styles[lo:hi], self.industry_ids[lo:hi], self.n_industries)

    def cov_index(self) -> np.ndarray:
        """Row index of each covariance date in `dates`."""
        return np.searchsorted(self.dates, self.cov_dates)

    # ------------------------------------------------------------------ I/O
    _ARRAYS = (
        "styles",
        "industry_ids",
        "weights",
        "specific_returns",
        "factor_cov",
        "specific_var",
    )

    def save(self, path: str | Path) -> Path:
        """Write the model to directory ``path`` atomically (temp dir + rename).

        Layout: ``meta.json``; ``factor_returns.parquet`` and ``tstats.parquet`` (date + one
        column per factor); ``stats.parquet`` (date, r2); ``assets.parquet``;
        ``cov_dates.parquet``; NumPy ``.npy`` for the big arrays (styles, industry_ids,
        weights, specific_returns, factor_cov, specific_var).
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        dates = pl.Series("date", self.dates.astype("datetime64[D]"))
        fr = pl.DataFrame({"date": dates}).with_columns(
            [pl.Series(n, self.factor_returns[:, k]) for k, n in enumerate(self.factor_names)]
        )
        fr.write_parquet(tmp / "factor_returns.parquet")
        ts = pl.DataFrame({"date": dates}).with_columns(
            [pl.Series(n, self.tstats[:, k]) for k, n in enumerate(self.factor_names)]
        )
        ts.write_parquet(tmp / "tstats.parquet")
        pl.DataFrame({"date": dates, "r2": self.r2}).write_parquet(tmp / "stats.parquet")
        pl.DataFrame({"asset": self.assets.astype(str)}).write_parquet(tmp / "assets.parquet")
        pl.DataFrame({"date": pl.Series(self.cov_dates.astype("datetime64[D]"))}).write_parquet(
            tmp / "cov_dates.parquet"
        )
        for name in self._ARRAYS:
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(self, name)))
        meta = {
            "format_version": FORMAT_VERSION,
            "freq": self.freq,
            "style_names": list(self.style_names),
            "industry_names": list(self.industry_names),
            **{k: v for k, v in self.meta.items() if k not in ("style_names", "industry_names")},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
        return out

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True) -> RiskModel:
        """Read a model written by `save` (big arrays memory-mapped when ``mmap``)."""
        p = Path(path)
        mfile = p / "meta.json"
        if not mfile.is_file():
            raise DataError("not a risk model directory (no meta.json)", file=p)
        meta = json.loads(mfile.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"unsupported risk model format {meta.get('format_version')}", file=mfile
            )
        fr = pl.read_parquet(p / "factor_returns.parquet")
        ts = pl.read_parquet(p / "tstats.parquet")
        st = pl.read_parquet(p / "stats.parquet")
        arrays = {n: np.load(p / f"{n}.npy", mmap_mode="r" if mmap else None) for n in cls._ARRAYS}
        fnames = [c for c in fr.columns if c != "date"]
        return cls(
            dates=fr["date"].to_numpy().astype("datetime64[D]"),
            assets=pl.read_parquet(p / "assets.parquet")["asset"].to_numpy().astype("U16"),
            style_names=tuple(meta.pop("style_names")),
            industry_names=tuple(meta.pop("industry_names")),
            factor_returns=fr.select(fnames).to_numpy().astype(np.float32),
            tstats=ts.select(fnames).to_numpy().astype(np.float32),
            r2=st["r2"].to_numpy().astype(np.float32),
            cov_dates=pl.read_parquet(p / "cov_dates.parquet")["date"]
            .to_numpy()
            .astype("datetime64[D]"),
            freq=meta.pop("freq"),
            meta=meta,
            **arrays,
        )


# ---------------------------------------------------------------------- build helpers


def model_rows(panel_dates: np.ndarray, model_dates: np.ndarray) -> np.ndarray:
    """Row of each model date in the panel's dates -> int64[T_model]."""
    return np.searchsorted(np.asarray(panel_dates), np.asarray(model_dates))


def month_end_rows(dates: np.ndarray) -> np.ndarray:
    """Rows that are the last trading day of their calendar month (the last row included)."""
    m = np.asarray(dates, dtype="datetime64[M]")
    return np.nonzero(np.r_[m[1:] != m[:-1], True])[0]


def listed_age(listed: np.ndarray, dates: np.ndarray, list_dates: np.ndarray | None) -> np.ndarray:
    """Trading days since listing ``int32[T, N]`` (from `list_dates` where known, else from the
    first listed day in the panel). Days before the panel's first date are counted as weekdays
    (``np.busday_count``), a slight over-count of trading days that only matters for stocks
    listed less than about a year before the panel starts."""
    age = np.cumsum(listed, axis=0, dtype=np.int32)
    if list_dates is not None and len(dates):
        ld = np.asarray(list_dates, dtype="datetime64[D]")
        known = ~np.isnat(ld)
        first = np.searchsorted(dates, ld[known])  # row of the listing day (0 if before)
        before = np.maximum(np.busday_count(ld[known], dates[0]), 0)
        rows = np.arange(len(dates))[:, None]
        age_k = (rows - first[None, :] + 1 + before[None, :]).astype(np.int32)
        age[:, known] = np.where(listed[:, known], age_k, 0)
    return age


def estimation_universe(
    panel: Panel, ind: np.ndarray, min_days: int, list_dates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(``estu bool[T, N]``, ``target bool[T, N]``).

    target = listed with a positive cap, a price and an industry (stocks that get exposures).
    estu = the slowly-rebalanced estimation universe used for standardisation, orthogonalisation,
    filling and (after the return-day filter of `regression_mask`) the regression: membership is
    decided on each month's last trading day m -- in `target`, listed >= `min_days` trading days,
    traded (volume > 0) at least once in the 21 trading days up to m -- and held on the days
    after m up to the next month end (rows before the first month end use their own day's rule).
    A member must still be in `target` on the day. Day-t tradability (suspension, price limits)
    does not enter: a market-wide limit day no longer empties the universe.
    """
    cap = panel.field("mktcap")
    close = panel.field("close")
    listed = panel.masks.get("listed", np.isfinite(close))
    susp = _suspended(panel)
    target = listed & np.isfinite(cap) & (cap > 0) & (ind >= 0)[None, :] & np.isfinite(close)
    age = listed_age(listed, panel.dates, list_dates)
    traded = listed & ~susp
    recent = np.cumsum(traded, axis=0, dtype=np.int32)
    recent[21:] -= recent[:-21].copy()
    candidate = target & (age >= min_days) & (recent > 0)
    T = len(panel.dates)
    ends = month_end_rows(panel.dates)
    src = np.arange(T)  # row whose candidate rule applies on each day
    k = np.searchsorted(ends, np.arange(T), side="right") - 1  # latest month end <= t
    src[k >= 0] = ends[k[k >= 0]]
    estu = candidate[src] & target
    return estu, target


def regression_mask(panel: Panel) -> np.ndarray:
    """``bool[T, N]``: may the return over ``t -> t+1`` enter row t's regression?

    False when the stock is suspended on the return day t+1 (no return) or closes locked at a
    price limit on t+1 (``limit_up`` / ``limit_down`` masks: the return is censored, the rest
    of the move shows up later). The last row is all False (no return day). Closing at a limit
    on t itself does not matter: the t -> t+1 return is a real, uncensored price change.
    """
    susp = _suspended(panel)
    bad = susp.copy()
    for k in ("limit_up", "limit_down"):
        if k in panel.masks:
            bad |= panel.masks[k]
    ok = np.zeros_like(bad)
    ok[:-1] = ~bad[1:]
    return ok


def _suspended(panel: Panel) -> np.ndarray:
    if "suspended" in panel.masks:
        return panel.masks["suspended"]
    if panel.has("volume"):
        v = panel.field("volume")
        return np.isfinite(v) & (v <= 0)
    return np.zeros(panel.field("close").shape, dtype=bool)


def horizon_periods(cfg: RiskConfig, freq: str) -> int:
    """The forecast horizon in model periods (days for the daily model, months for monthly)."""
    h = int(cfg.horizon)
    if h < 1:
        raise ConfigError(f"horizon must be >= 1 trading day, got {cfg.horizon}")
    return h if freq == "daily" else max(round(h / 21), 1)


def nw_lags(cfg: RiskConfig, freq: str) -> int:
    """Newey-West lags: `RiskConfig.nw_lags` when set, else horizon (in periods) - 1."""
    if cfg.nw_lags is not None:
        if cfg.nw_lags < 0:
            raise ConfigError(f"nw_lags must be >= 0, got {cfg.nw_lags}")
        return int(cfg.nw_lags)
    return horizon_periods(cfg, freq) - 1


def _scaled(cfg: RiskConfig, freq: str) -> tuple[CovarianceConfig, SpecificConfig]:
    s = 1.0 if freq == "daily" else 1.0 / 21.0
    lags = nw_lags(cfg, freq)
    cc = CovarianceConfig(
        vol_halflife=max(cfg.vol_halflife * s, 1.0),
        corr_halflife=max(cfg.corr_halflife * s, 1.0),
        nw_lags=lags,
        # correlations: at most 2 lags (USE4's choice); 20-lag correlation matrices are noisy in
        # their smallest eigen directions (eigen bias 1.95 vs 1.18 at horizon 21, README)
        corr_nw_lags=min(lags, 2),
        eigen_sims=cfg.eigen_sims,
        eigen_scale=cfg.eigen_scale,
        vra_halflife=max(cfg.vra_halflife * s, 1.0),
        # monthly: 47 factors need a few years of months before the sample covariance has full
        # rank (with 12 months its small eigenvalues are pure noise)
        min_obs=cfg.min_cov_obs if freq == "daily" else 36,
        min_factor_obs=21 if freq == "daily" else 3,
        seed=cfg.seed,
    )
    sc = SpecificConfig(
        halflife=max(cfg.specific_halflife * s, 1.0),
        nw_lags=lags,
        window=252 if freq == "daily" else 24,
        h_min=60 if freq == "daily" else 6,
        h_ramp=120 if freq == "daily" else 12,
        shrink_q=cfg.shrink_q,
        n_groups=cfg.size_groups,
        vra_halflife=max(cfg.specific_vra_halflife * s, 1.0),
    )
    return cc, sc


def specific_variance(
    u: np.ndarray,
    styles: np.ndarray,
    ind_ids: np.ndarray,
    n_ind: int,
    weights: np.ndarray,
    cov_idx: np.ndarray,
    cfg: SpecificConfig,
    progress: Callable[[int], None] | None = None,
    cap_all: np.ndarray | None = None,
) -> np.ndarray:
    """Specific variance forecasts ``float32[D, N]`` at rows `cov_idx` (see `specific`).

    cap_all : float[T, N] market cap of every stock (non-ESTU stocks are shrunk toward their
    cap decile too); None: only ESTU stocks (cap = weight squared) are shrunk.
    """
    T, N = u.shape
    sig_ts = np.sqrt(ts_specific_var(u, cfg.halflife, cfg.nw_lags))
    cap = np.asarray(weights, dtype=np.float64) ** 2
    estu = weights > 0
    # the regime multiplier compares one-period returns with the one-period (lag-0) forecast
    sig0 = sig_ts if cfg.nw_lags == 0 else np.sqrt(ts_specific_var(u, cfg.halflife, 0))
    lam = specific_vra(u, sig0, cap, estu, cfg.vra_halflife)
    del sig0
    out = np.full((len(cov_idx), N), np.nan, dtype=np.float32)
    for i, d in enumerate(np.asarray(cov_idx).tolist()):
        if d >= T:
            continue
        gamma = blending_gamma(
            u[max(0, d - cfg.window) : d].astype(np.float64), cfg.h_min, cfg.h_ramp
        )
        X = design_chunk(styles[d : d + 1], ind_ids[d : d + 1], n_ind)[0]
        X[~np.isfinite(styles[d]).all(axis=1)] = np.nan
        s = structural_blend(
            sig_ts[d], gamma, X, np.asarray(weights[d], dtype=np.float64), e0=cfg.e0
        )
        s[~(ind_ids[d] >= 0)] = np.nan
        c_d = cap[d] if cap_all is None else np.asarray(cap_all[d], dtype=np.float64)
        s = bayesian_shrink(s, c_d, q=cfg.shrink_q, n_groups=cfg.n_groups, estu=estu[d])
        out[i] = (s * lam[d]) ** 2
        if progress is not None:
            progress(1)
    return out


def build_risk_model(
    panel: Panel,
    industries: np.ndarray,
    *,
    freq: Literal["daily", "monthly"] = "daily",
    config: RiskConfig | None = None,
    progress: Progress | None = None,
    list_dates: np.ndarray | None = None,
) -> RiskModel:
    """Fit the risk model on a panel.

    Parameters
    ----------
    panel : `Panel` with close, volume, mktcap, shares (or raw_close), pb, pe, dv_ratio, ebit,
        debt_to_assets, roe, roa; masks listed, suspended, tradable (optional).
    industries : str[N] group keys (see `industries.map_industries`), None/"" for unknown.
    freq : "daily" or "monthly".
    config : `RiskConfig` (default: responsive preset).
    progress : callable(stage, fraction) for progress bars.
    list_dates : datetime64[D][N] listing dates (NaT unknown) for the 252-day ESTU rule.
    """
    cfg = config or RiskConfig()
    if freq not in ("daily", "monthly"):
        raise ConfigError(f"freq must be 'daily' or 'monthly', got {freq!r}")
    T, N, _ = panel.shape
    industries = np.asarray(industries, dtype=object)
    if industries.shape != (N,):
        raise DataError(f"industries must have one entry per asset ({N}), got {industries.shape}")
    ind, ind_names = industry_ids(industries)
    P = len(ind_names)

    def report(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    estu, target = estimation_universe(panel, ind, cfg.min_listed_days, list_dates)
    reg_rows = np.arange(T) if freq == "daily" else month_end_rows(panel.dates)
    # one date with enough stocks for the regression, else the model is meaningless (guards.py)
    check_risk_stocks(
        estu[reg_rows].sum(axis=1),
        panel.dates[reg_rows],
        1 + P + len(cfg.styles),
        file=panel.meta.get("path"),
        min_dof=cfg.min_dof,
    )
    cap = panel.field("mktcap").astype(np.float64)
    weights = np.where(estu, np.sqrt(np.where(estu, cap, 0.0)), 0.0).astype(np.float32)
    fields = {k: panel.field(k) for k in panel.fields}
    src = DescriptorSource(fields, _suspended(panel), panel.dates)
    done = [0]

    def style_step(name: str) -> None:
        done[0] += 1
        report(f"styles: {name}", 0.55 * done[0] / len(cfg.styles))

    report("styles", 0.0)
    styles = compute_styles(
        src, estu=estu, weight=weights, ind_ids=ind, n_ind=P, target=target,
        styles=cfg.styles, progress=style_step,
    )  # fmt: skip
    ret = src.ret
    del src
    ind_tn = np.where(target, ind[None, :], -1).astype(np.int16)
    if freq == "daily":
        rows = np.arange(T)
        r_next = np.full((T, N), np.nan)
        r_next[:-1] = ret[1:]
        reg_w = np.where(regression_mask(panel), weights, 0.0).astype(np.float32)
    else:
        rows = month_end_rows(panel.dates)
        close = panel.field("close").astype(np.float64)
        c0 = close[rows]
        c1 = np.full_like(c0, np.nan)
        c1[:-1] = close[rows[1:]]
        with np.errstate(invalid="ignore", divide="ignore"):
            r_next = c1 / c0 - 1.0
        styles = styles[rows]
        weights = weights[rows]
        ind_tn = ind_tn[rows]
        reg_w = weights
    del ret
    Tm = len(rows)
    nd = [0]

    def reg_step(n: int) -> None:
        nd[0] += n
        report("regression", 0.55 + 0.2 * nd[0] / Tm)

    res = regress(styles, ind_tn, P, r_next, reg_w, chunk=cfg.chunk, progress=reg_step)
    del r_next
    dates = panel.dates[rows]
    cov_idx = (
        month_end_rows(dates) if (freq == "daily" and cfg.cov == "month_end") else np.arange(Tm)
    )
    cc, sc = _scaled(cfg, freq)
    nc = [0]

    def cov_step(n: int) -> None:
        nc[0] += n
        report("factor covariance", 0.75 + 0.15 * nc[0] / len(cov_idx))

    # a factor fixed at 0 on a date (empty industry, all-zero style) was not observed: leave it
    # out of its moments rather than feeding zeros (which would shrink its volatility forecast)
    f_obs = np.where(
        np.isnan(res.tstats) & np.isfinite(res.factor_returns), np.nan, res.factor_returns
    )
    fcov, _, _ = factor_covariance(f_obs, cov_idx, cc, progress=cov_step)
    ns = [0]

    def spec_step(n: int) -> None:
        ns[0] += n
        report("specific risk", 0.9 + 0.1 * ns[0] / len(cov_idx))

    svar = specific_variance(
        res.specific_returns,
        styles,
        ind_tn,
        P,
        weights,
        cov_idx,
        sc,
        progress=spec_step,
        cap_all=cap if freq == "daily" else cap[rows],
    )
    report("done", 1.0)
    meta = {
        "config": asdict(cfg),
        "horizon": horizon_periods(cfg, freq),
        "nw_lags": nw_lags(cfg, freq),
        "panel": {k: str(v) for k, v in panel.meta.items()},
        "n_estu_mean": float(estu[rows].sum(axis=1).mean()),
        "n_obs_mean": float(res.n_obs.mean()),
    }
    return RiskModel(
        dates=dates,
        assets=np.asarray(panel.assets),
        style_names=tuple(cfg.styles),
        industry_names=ind_names,
        styles=styles,
        industry_ids=ind_tn,
        weights=weights,
        factor_returns=res.factor_returns.astype(np.float32),
        specific_returns=res.specific_returns,
        tstats=res.tstats,
        r2=res.r2,
        cov_dates=dates[cov_idx],
        factor_cov=fcov,
        specific_var=svar,
        freq=freq,
        meta=meta,
    )


__all__ = [
    "RiskConfig",
    "RiskModel",
    "build_risk_model",
    "estimation_universe",
    "month_end_rows",
    "regression_mask",
]


RISK_FIELDS = (
    "close",
    "volume",
    "mktcap",
    "shares",
    "pb",
    "pe",
    "dv_ratio",
    "ebit",
    "debt_to_assets",
    "roe",
    "roa",
)
"""Panel fields the default styles read."""


def load_inputs(path: str | Path, *, cache: bool = True) -> tuple[Panel, np.ndarray, np.ndarray]:
    """Read a CN-layout folder (real or synthetic) for `build_risk_model`.

    Returns (panel with `RISK_FIELDS`, industry group keys ``str[N]``, list dates
    ``datetime64[D][N]``). Stocks with no industry entry at all raise `DataError` naming them.
    """
    from deepalpha.data.cn import load_cn
    from deepalpha.data.inputs import require_risk_inputs
    from deepalpha.data.stockinfo import list_dates_for, load_stock_info
    from deepalpha.risk.industries import map_industries

    require_risk_inputs(path, "the risk model")
    panel = load_cn(path, fields=list(RISK_FIELDS), cache=cache)
    info = load_stock_info(path)
    rows = dict(
        zip(
            info["asset"].to_list(),
            zip(info["industry"].to_list(), info["csrc"].to_list(), strict=True),
            strict=True,
        )
    )
    missing = [a for a in panel.assets.tolist() if a not in rows]
    if missing:
        raise DataError(
            f"{len(missing)} stocks have no industry entry: {missing[:10]}",
            file=Path(path) / "industry",
        )
    names = [rows[a][0] for a in panel.assets.tolist()]
    csrc = [rows[a][1] for a in panel.assets.tolist()]
    groups = map_industries(names, csrc, file=str(Path(path) / "industry" / "stock_basic.csv"))
    extra = report_fields(path, panel.dates, panel.assets)
    if extra:
        panel = panel.with_fields(**extra)
    return panel, groups, list_dates_for(info, panel.assets)


def report_fields(path: str | Path, dates: np.ndarray, assets: np.ndarray) -> dict[str, np.ndarray]:
    """Daily fields computed in report-period space from ``fundamentals/ebit.csv``.

    ``ebit_yoy``: year-over-year change of year-to-date EBIT against the same report period a
    year earlier (`descriptors.period_yoy`); ``ebit_ttm``: trailing-twelve-month EBIT
    (`descriptors.ttm_from_ytd`); ``ebit_vern``: std / mean |.| of annual EBIT over the last 5
    fiscal years (`descriptors.annual_variability`, from the annual report's deadline). All are
    mapped to trading days from the day after the
    publication deadline of the period (as the report fields themselves), so no value is used
    before the reports it needs are out. float32[T, N] each; {} when the file is absent.
    """
    from deepalpha.data.fundamentals import is_quarter_end, read_wide_csv, to_daily
    from deepalpha.risk.descriptors import annual_variability, period_yoy, ttm_from_ytd

    f = Path(path) / "fundamentals" / "ebit.csv"
    if not f.is_file():
        return {}
    periods, codes, vals = read_wide_csv(f)
    q = is_quarter_end(periods)
    periods, vals = periods[q], vals[q]
    ap, vern = annual_variability(periods, vals)
    return {
        "ebit_yoy": to_daily(periods, codes, period_yoy(periods, vals), dates, assets, lagged=True),
        "ebit_ttm": to_daily(
            periods, codes, ttm_from_ytd(periods, vals), dates, assets, lagged=True
        ),
        "ebit_vern": to_daily(ap, codes, vern, dates, assets, lagged=True),
    }
