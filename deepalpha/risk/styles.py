"""Style exposures (CNE6-like) from a panel's fields: descriptors -> standardised styles.

Shapes: ``T`` dates, ``N`` assets, ``S`` styles. Output ``float32[T, N, S]``: the exposure at
row t uses data known at the close of t.

Default styles and their descriptors (weights in brackets; windows in `descriptors`):

=====================  ===============================================================
Size                   LNCAP (not winsorised: log cap has no outliers to clip, and
                       clipping would tie the largest caps at one exposure)
MidCap                 Size^3 orthogonalised to Size (WLS, sqrt-cap weights), winsorised,
                       standardised
Beta                   BETA (504 days, HL 252, vs the cap-weighted market of our stocks)
ResidualVolatility     DASTD (0.74), CMRA (0.16), HSIGMA (0.10; the residual volatility of
                       the Beta regression); missing values filled, then orthogonalised to
                       Beta, Size and Liquidity
Liquidity              STOM (0.35), STOQ (0.35), STOA (0.15), ATVR (0.15) on turnover =
                       volume / shares
Momentum               RSTR (252 days, HL 126, 11-day mean lagged 11 days)
ShortTermReversal      STREV = -(21-day HL-5 sum of log returns), 3-day mean lagged 1 day
BookToPrice            BTOP = book / cap_t, book = total_mv / pb at the period end
EarningsYield          ETOP = earnings / cap_t (earnings = total_mv / pe) (0.5),
                       EBITTOP = trailing-12-month EBIT / cap (0.5) (field ``ebit_ttm``;
                       year-to-date ``ebit`` without it)
DividendYield          DTOP = dividends / cap_t (dividends = dv_ratio / 100 * total_mv);
                       a missing dv_ratio where pb exists is 0 (no dividend)
Growth                 EGRO = YoY EBIT change / mean |EBIT|, same report period a year
                       earlier (field ``ebit_yoy``; without it 252 trading days apart)
Leverage               DTOA = debt / assets
Profitability          ROE (0.5), ROA (0.5)
LongTermReversal       LTRSTR = -(sum of log returns, 504 days HL 260, lagged 273, 11-day mean),
                       orthogonalised to Momentum
EarningsVariability    VERN = std of annual EBIT over the last 5 fiscal years / mean |EBIT|
                       (field ``ebit_vern``, >= 3 years; without it the std of the YoY EBIT
                       change over 756 days / mean |EBIT|)
=====================  ===============================================================

Deviations from CNE6 (deepalpha/risk/README.md says which are forced by the data and which are
chosen, with the reasons):

- no analyst-forecast descriptors (ETOPF, EGRLF, EGIBS, ...) anywhere (forced);
- Size uses total cap carried daily from quarter ends by the back-adjusted close (no float cap:
  forced);
- Beta and HSIGMA use raw (not excess) returns (a risk-free rate is immaterial at daily
  frequency: chosen);
- Momentum has no HALPHA (relative-strength alpha) descriptor (chosen);
- Liquidity turnover = volume / shares with shares implied by the quarter-end cap, so a share
  issue shows up only at the next quarter end (forced);
- EarningsYield has no cash-earnings (CETOP) and uses EBIT / total cap for EBIT / EV (forced);
- Growth is the YoY change of (year-to-date) EBIT in report-period space, not the 5-year
  slope of EPS and sales (no sales: forced; the EBIT slope is a choice);
- Leverage has only DTOA (no market / book leverage: no long-term debt or preferred equity);
- Profitability uses ROE and ROA only (no asset turnover, gross margin, accruals);
- DividendYield uses the trailing dv_ratio (no forecast dividends);
- LongTermReversal uses a 504-day window (CNE6: 1040) so it exists after three years of data
  (chosen);
- EarningsVariability uses annual EBIT only (CNE6 adds sales, cash-flow and forecast
  variability);
- industries are a static 2026 snapshot (see `industries`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from deepalpha.errors import ConfigError, DataError
from deepalpha.risk import descriptors as d
from deepalpha.risk.standardize import (
    combine,
    fill_missing,
    mad_winsorize,
    standardize,
    winsorize_standardize,
    wls_residual,
)

DEFAULT_STYLES: tuple[str, ...] = (
    "Size",
    "MidCap",
    "Beta",
    "ResidualVolatility",
    "Liquidity",
    "Momentum",
    "ShortTermReversal",
    "BookToPrice",
    "EarningsYield",
    "DividendYield",
    "Growth",
    "Leverage",
    "Profitability",
    "LongTermReversal",
    "EarningsVariability",
)

STYLE_DESCRIPTORS: dict[str, tuple[tuple[str, float], ...]] = {
    "Size": (("LNCAP", 1.0),),
    "Beta": (("BETA", 1.0),),
    "ResidualVolatility": (("DASTD", 0.74), ("CMRA", 0.16), ("HSIGMA", 0.10)),
    "Liquidity": (("STOM", 0.35), ("STOQ", 0.35), ("STOA", 0.15), ("ATVR", 0.15)),
    "Momentum": (("RSTR", 1.0),),
    "ShortTermReversal": (("STREV", 1.0),),
    "BookToPrice": (("BTOP", 1.0),),
    "EarningsYield": (("ETOP", 0.5), ("EBITTOP", 0.5)),
    "DividendYield": (("DTOP", 1.0),),
    "Growth": (("EGRO", 1.0),),
    "Leverage": (("DTOA", 1.0),),
    "Profitability": (("ROE", 0.5), ("ROA", 0.5)),
    "LongTermReversal": (("LTRSTR", 1.0),),
    "EarningsVariability": (("VERN", 1.0),),
}
"""Style -> ((descriptor, weight), ...). MidCap is derived from Size."""


class DescriptorSource:
    """Computes descriptors from raw ``[T, N]`` fields on demand, caching shared inputs
    (returns, log returns, turnover, market return) for the lifetime of one build.

    fields : mapping name -> float[T, N] with close, volume, mktcap, shares (or raw_close),
    pb, pe, dv_ratio, ebit, debt_to_assets, roe, roa. suspended : bool[T, N] or None.
    dates : datetime64[D][T] or None. With dates, the period-end yields BTOP, ETOP and DTOP are
    re-priced to the day's price (`descriptors.reprice_ratio`); without, they are the stale
    period-end values.
    """

    def __init__(
        self,
        fields: Mapping[str, np.ndarray],
        suspended: np.ndarray | None = None,
        dates: np.ndarray | None = None,
    ):
        self.fields = fields
        self.suspended = suspended
        self.dates = None if dates is None else np.asarray(dates, dtype="datetime64[D]")
        self._cache: dict[str, np.ndarray] = {}

    def field(self, name: str) -> np.ndarray:
        if name not in self.fields:
            raise DataError(f"the risk model needs field {name!r}", field=name)
        return self.fields[name]

    def _get(self, key: str, fn: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    @property
    def ret(self) -> np.ndarray:
        return self._get("ret", lambda: d.returns(self.field("close"), self.suspended))

    @property
    def logret(self) -> np.ndarray:
        return self._get("logret", lambda: np.log1p(np.maximum(self.ret, -0.99)))

    @property
    def cap(self) -> np.ndarray:
        return self._get("cap", lambda: np.asarray(self.field("mktcap"), dtype=np.float64))

    @property
    def mkt(self) -> np.ndarray:
        return self._get("mkt", lambda: d.market_return(self.ret, self.cap))

    @property
    def turnover(self) -> np.ndarray:
        def f() -> np.ndarray:
            if "shares" in self.fields:
                sh = np.asarray(self.fields["shares"], dtype=np.float64)
            else:
                sh = d.ratio(self.cap, self.field("raw_close"))
            return d.ratio(self.field("volume"), sh)

        return self._get("turnover", f)

    @property
    def reprice(self) -> np.ndarray | float:
        """``cap_pe / cap_t`` float64[T, N] (1.0 without dates; NaN where unknown -> 1.0)."""
        if self.dates is None:
            return 1.0
        return self._get(
            "reprice",
            lambda: np.nan_to_num(d.reprice_ratio(self.field("close"), self.dates), nan=1.0),
        )

    def compute(self, name: str) -> np.ndarray:
        """One descriptor, float64[T, N]."""
        if name == "LNCAP":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(self.cap > 0, np.log(self.cap), np.nan)
        if name in ("BETA", "HSIGMA"):  # one regression (CNE6: HSIGMA is its residual vol)
            if "beta_reg" not in self._cache:
                b, h = d.ts_regression(self.ret, self.mkt, 504, 252, 126)
                self._cache["beta_reg"] = b
                self._cache["hsigma_reg"] = h
            return self._cache.pop("beta_reg" if name == "BETA" else "hsigma_reg")
        if name == "DASTD":
            return d.ew_std(self.ret, 252, 42, 63)
        if name == "CMRA":
            return d.cmra(self.logret)
        if name == "RSTR":
            return d.momentum(self.logret)
        if name == "STREV":
            return d.short_term_reversal(self.logret)
        if name == "LTRSTR":
            return d.long_term_reversal(self.logret)
        if name == "STOM":
            return d.turnover_log_sum(self.turnover, 21, 1)
        if name == "STOQ":
            return d.turnover_log_sum(self.turnover, 63, 3)
        if name == "STOA":
            return d.turnover_log_sum(self.turnover, 252, 12)
        if name == "ATVR":
            return d.atvr(self.turnover)
        if name == "BTOP":
            return d.inverse_nonzero(self.field("pb")) * self.reprice
        if name == "ETOP":
            return d.inverse_positive(self.field("pe")) * self.reprice
        if name == "EBITTOP":  # trailing twelve months where the loader built them
            return d.ratio(self.fields.get("ebit_ttm", self.field("ebit")), self.cap)
        if name == "DTOP":
            # a missing dv_ratio next to a valid pb means "no dividend in the trailing year"
            # (evidence in deepalpha/risk/README.md): yield 0, not an industry + Size guess
            dv = np.asarray(self.field("dv_ratio"), dtype=np.float64)
            has_val = np.isfinite(np.asarray(self.field("pb"), dtype=np.float64))
            dv = np.where(np.isnan(dv) & has_val, 0.0, dv)
            return dv / 100.0 * self.reprice
        if name == "EGRO":
            if "ebit_yoy" in self.fields:  # report-period space (`model.report_fields`)
                return np.asarray(self.fields["ebit_yoy"], dtype=np.float64)
            return d.yoy_growth(self.field("ebit"))  # fallback: 252 trading days apart
        if name == "DTOA":
            return np.asarray(self.field("debt_to_assets"), dtype=np.float64)
        if name == "ROE":
            return np.asarray(self.field("roe"), dtype=np.float64)
        if name == "ROA":
            return np.asarray(self.field("roa"), dtype=np.float64)
        if name == "VERN":
            if "ebit_vern" in self.fields:  # 5 fiscal years of annual reports
                return np.asarray(self.fields["ebit_vern"], dtype=np.float64)
            return d.earnings_variability(self.field("ebit"))
        raise ConfigError(f"unknown descriptor {name!r}")


def compute_styles(
    source: DescriptorSource,
    *,
    estu: np.ndarray,
    weight: np.ndarray,
    ind_ids: np.ndarray,
    n_ind: int,
    target: np.ndarray,
    styles: Sequence[str] = DEFAULT_STYLES,
    min_coverage: float = 0.3,
    progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Standardised style exposures.

    Parameters
    ----------
    source : `DescriptorSource` over the panel's fields.
    estu : bool[T, N]       estimation universe (statistics and fits).
    weight : float[T, N]    regression weights sqrt(cap) used to orthogonalise and fill.
    ind_ids : int[N]        industry index (-1 none) for the missing-value fill.
    n_ind : int             number of industries.
    target : bool[T, N]     stocks that get an exposure (missing ones are filled).
    styles : style names (order of the output's last axis).
    min_coverage : share of the ESTU a style must cover on a date, else it is 0 that day.
    progress : callable(style name) after each style.

    Returns
    -------
    float32[T, N, S], NaN outside `target`.
    """
    styles = list(styles)
    unknown = [s for s in styles if s not in STYLE_DESCRIPTORS and s != "MidCap"]
    if unknown:
        raise ConfigError(f"unknown styles {unknown}; known: {list(DEFAULT_STYLES)}")
    if len(set(styles)) != len(styles):
        raise ConfigError(f"duplicate styles in {styles}")
    cap = source.cap
    T, N = cap.shape
    out = np.full((T, N, len(styles)), np.nan, dtype=np.float32)
    raw: dict[str, np.ndarray] = {}

    def style(name: str) -> np.ndarray:
        if name in raw:
            return raw[name]
        if name == "MidCap":
            size = style("Size")
            z = wls_residual(size**3, size[:, :, None], weight, estu)
            x = standardize(mad_winsorize(z, estu), cap, estu)
        elif name == "Size":
            x = standardize(source.compute("LNCAP"), cap, estu)
        else:
            parts = [
                winsorize_standardize(source.compute(k), cap, estu)
                for k, _ in STYLE_DESCRIPTORS[name]
            ]
            x = combine(parts, [w for _, w in STYLE_DESCRIPTORS[name]])
            if len(parts) > 1:
                x = standardize(x, cap, estu)
            # ResidualVolatility is orthogonalised after the fill (below), as CNE6 does
            if name == "LongTermReversal" and "Momentum" in styles:
                mom = style("Momentum")[:, :, None]
                y = wls_residual(x, mom, weight, estu)
                x = standardize(np.where(np.isfinite(y), y, x), cap, estu)  # no RSTR: keep
        raw[name] = x
        return x

    keep = {"Size", "Beta", "Liquidity", "Momentum"}  # needed later (orthogonalisation, fill)
    n_estu = estu.sum(axis=1)
    for j, name in enumerate(styles):
        x = style(name)
        # a style observed for under `min_coverage` of the ESTU on a date (a long window not yet
        # filled, fundamentals not yet published) is 0 for everyone that day: filling most
        # stocks from a handful would make it collinear with the industries
        cov = (np.isfinite(x) & estu).sum(axis=1)
        x = np.where((cov >= min_coverage * np.maximum(n_estu, 1))[:, None], x, np.nan)
        out[:, :, j] = x
        for k in [k for k in raw if k not in keep]:
            del raw[k]
        if progress is not None:
            progress(name)
    size = raw["Size"] if "Size" in raw else style("Size")
    filled: dict[str, np.ndarray] = {}

    def fill(name: str, x: np.ndarray) -> np.ndarray:
        if name == "Size":
            x = x.astype(np.float64)
        else:
            x = fill_missing(x, ind_ids, n_ind, size, weight, estu, target)
        x[~target] = np.nan
        return x

    order = sorted(range(len(styles)), key=lambda j: styles[j] == "ResidualVolatility")
    for j in order:
        name = styles[j]
        x = fill(name, out[:, :, j])
        if name in ("Beta", "Size", "Liquidity"):
            filled[name] = x
        if name == "ResidualVolatility" and np.isfinite(x).any():
            # orthogonalise the filled exposure to the filled Beta, Size, Liquidity (CNE6
            # order), so that the filled stocks are orthogonal too
            Z = [
                filled[k] if k in filled else fill(k, raw[k] if k in raw else style(k))
                for k in ("Beta", "Size", "Liquidity")
            ]
            y = wls_residual(x, np.stack(Z, axis=2), weight, estu)
            x = np.where(np.isfinite(y), y, x)
            xs = standardize(x, cap, estu)
            # a date without the style (all filled with one value) has no dispersion: keep it
            x = np.where(np.isfinite(xs).any(axis=1)[:, None], xs, x)
            x[~target] = np.nan
        out[:, :, j] = x
    return out
