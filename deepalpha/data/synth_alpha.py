"""Cross-sectional helpers and the planted signals of the synthetic market.

Pure functions on arrays. Shapes: ``N`` stocks, ``L`` days of a look-back window, ``D`` dates,
``K`` regressors. Returns and alphas are in log-return units (``0.01`` = 1 %).

The two planted signals (DESIGN section 2):

* `style_alpha_raw` -- (a) a non-linear function of the standardised style exposures at a month
  end (thresholds and interactions); `residualize` then removes its linear projection on
  ``[country, industries, styles]`` so it is a pure *residual* return signal.
* `pv_pattern` + `cap_group_demean` -- (b) a 5/20-day price-volume pattern (a short-term reversal
  whose strength rises with a volume surge, plus a close-vs-typical-price gap); what predicts the
  next 10 days is the pattern *minus its mean within the stock's market-cap group* (20 quantile
  groups of log cap on that date).
"""

from __future__ import annotations

import numpy as np

STYLES: tuple[str, ...] = (
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
S = {name: k for k, name in enumerate(STYLES)}


def mad_winsorize(x: np.ndarray, mask: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Clip ``x [N]`` to median +- k * 1.4826 * MAD computed over ``mask & finite``."""
    ok = mask & np.isfinite(x)
    if ok.sum() < 3:
        return x.copy()
    v = x[ok]
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    if mad <= 0:
        return x.copy()
    return np.clip(x, med - k * mad, med + k * mad)


def standardize(x: np.ndarray, cap: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Barra-style standardisation of one raw descriptor ``x [N]``.

    MAD-winsorise, then cap-weighted mean 0 and equal-weighted std 1 over ``mask``; missing values
    of masked stocks become 0 (the cap-weighted mean); stocks outside ``mask`` get NaN.
    """
    x = mad_winsorize(x, mask)
    ok = mask & np.isfinite(x)
    out = np.full(x.shape, np.nan)
    if ok.sum() < 3:
        out[mask] = 0.0
        return out
    w = cap[ok]
    mu = float(np.sum(w * x[ok]) / np.sum(w))
    sd = float(np.std(x[ok]))
    sd = sd if sd > 0 else 1.0
    out[mask] = 0.0
    out[ok] = (x[ok] - mu) / sd
    return out


def residualize(y: np.ndarray, X: np.ndarray, w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """WLS residual of ``y [N]`` on ``X [N, K]`` with weights ``w [N]`` over ``mask``.

    ``y - X (X'WX)^+ X'W y``; NaN outside ``mask``.
    """
    out = np.full(y.shape, np.nan)
    Xm, ym, wm = X[mask], y[mask], w[mask]
    XtW = Xm.T * wm
    beta = np.linalg.pinv(XtW @ Xm) @ (XtW @ ym)
    out[mask] = ym - Xm @ beta
    return out


def zscore(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Equal-weighted z-score over ``mask & finite`` (NaN elsewhere)."""
    ok = mask & np.isfinite(x)
    out = np.full(x.shape, np.nan)
    if ok.sum() < 2:
        return out
    v = x[ok]
    sd = v.std()
    out[ok] = (v - v.mean()) / (sd if sd > 0 else 1.0)
    return out


def style_alpha_raw(X: np.ndarray) -> np.ndarray:
    """Planted non-linear style signal ``g [N]`` from standardised exposures ``X [N, 15]``.

    Terms (columns named by `STYLES`):

    * value works only in small caps: ``tanh(1.5 BookToPrice) * [Size < 0]``
    * quality momentum: ``clip(Momentum * Profitability, -3, 3)``
    * distressed decliners: ``-[Leverage > 0.8] * [Growth < 0]`` (x 1.5)
    * cheap earners among large caps: ``max(EarningsYield, 0) * [Size > 0.5]``
    * crowded lottery stocks: ``-[Liquidity > 1] * [ResidualVolatility > 0.5]``
    """
    s = {name: X[:, k] for name, k in S.items()}
    g = (
        1.0 * np.tanh(1.5 * s["BookToPrice"]) * (s["Size"] < 0)
        + 0.6 * np.clip(s["Momentum"] * s["Profitability"], -3, 3)
        - 1.5 * ((s["Leverage"] > 0.8) & (s["Growth"] < 0))
        + 0.8 * np.maximum(s["EarningsYield"], 0) * (s["Size"] > 0.5)
        - 1.2 * ((s["Liquidity"] > 1.0) & (s["ResidualVolatility"] > 0.5))
    )
    return g.astype(np.float64)


def pv_pattern(
    logret: np.ndarray, turnover: np.ndarray, gap: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Planted price-volume pattern ``p [N]`` from the last ``L >= 20`` days.

    Parameters
    ----------
    logret : float[L, N]
        Daily log total returns (0 on suspended days), last row = today.
    turnover : float[L, N]
        Daily turnover (volume / shares); NaN on suspended days.
    gap : float[L, N]
        ``(close - (high + low + close) / 3) / close``; NaN on suspended days.
    mask : bool[N]
        Stocks for which the pattern is defined.

    Returns ``-z(r5) * (1 + 1.5 tanh(2 max(surge, 0))) - 0.6 z(gap5)`` with ``r5`` the 5-day return,
    ``surge = log(mean turnover 5 d / mean turnover 20 d)`` and ``gap5`` the 5-day mean gap.
    """
    r5 = logret[-5:].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        t5 = np.nanmean(turnover[-5:], axis=0)
        t20 = np.nanmean(turnover[-20:], axis=0)
        surge = np.log(t5 / t20)
        g5 = np.nanmean(gap[-5:], axis=0)
    ok = mask & np.isfinite(r5) & np.isfinite(surge) & np.isfinite(g5)
    p = -zscore(r5, ok) * (1.0 + 1.5 * np.tanh(2.0 * np.maximum(surge, 0.0))) - 0.6 * zscore(g5, ok)
    p[~ok] = np.nan
    return p


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings (all-NaN columns are expected)."""

    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._w.__exit__(*exc)


def cap_groups(logcap: np.ndarray, mask: np.ndarray, n_groups: int = 20) -> np.ndarray:
    """Quantile group ``0..n_groups-1`` of ``logcap [N]`` among ``mask``; -1 elsewhere."""
    g = np.full(logcap.shape, -1, dtype=np.int64)
    ok = mask & np.isfinite(logcap)
    n = int(ok.sum())
    if n == 0:
        return g
    order = np.argsort(logcap[ok], kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    g[ok] = ranks * n_groups // n
    return g


def cap_group_demean(
    x: np.ndarray, logcap: np.ndarray, mask: np.ndarray, n_groups: int = 20
) -> np.ndarray:
    """``x - mean of x within its log-cap quantile group`` (groups over ``mask & finite x``)."""
    ok = mask & np.isfinite(x)
    g = cap_groups(logcap, ok, n_groups)
    out = np.full(x.shape, np.nan)
    gi = g[ok]
    sums = np.bincount(gi, weights=x[ok], minlength=n_groups)
    cnt = np.bincount(gi, minlength=n_groups)
    out[ok] = x[ok] - sums[gi] / np.maximum(cnt[gi], 1)
    return out


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks of a 1-d array (ties share their mean rank)."""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    r = np.empty(len(v))
    # tie groups
    starts = np.r_[0, np.flatnonzero(np.diff(sv)) + 1]
    ends = np.r_[starts[1:], len(v)]
    avg = (starts + ends - 1) / 2.0
    r[order] = np.repeat(avg, ends - starts)
    return r


def rank_ic(a: np.ndarray, b: np.ndarray, min_count: int = 20) -> np.ndarray:
    """Spearman correlation per row of ``a, b [D, N]`` over pairs where both are finite.

    Rows with fewer than ``min_count`` pairs give NaN. Returns ``float[D]``.
    """
    out = np.full(a.shape[0], np.nan)
    for d in range(a.shape[0]):
        ok = np.isfinite(a[d]) & np.isfinite(b[d])
        if ok.sum() < min_count:
            continue
        ra, rb = _ranks(a[d, ok]), _ranks(b[d, ok])
        ra -= ra.mean()
        rb -= rb.mean()
        den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
        out[d] = (ra * rb).sum() / den if den > 0 else np.nan
    return out
