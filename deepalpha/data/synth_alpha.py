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

from deepalpha.risk.styles import DEFAULT_STYLES

STYLES: tuple[str, ...] = DEFAULT_STYLES  # the 15 styles, in the risk model's order
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

    ``y - X b`` with ``b`` minimising ``sum w (y - X b)^2``; collinear columns (e.g. a constant
    next to a full set of industry dummies) are fine: the normal equations get a ridge of
    ``1e-10 x mean diagonal``, which leaves the residual unchanged to ~1e-9. NaN outside
    ``mask``. Small dense algebra without BLAS threads (einsum + LU solve) so it stays fast on a
    busy machine.
    """
    out = np.full(y.shape, np.nan)
    sw = np.sqrt(w[mask])
    A = X[mask] * sw[:, None]
    G = np.einsum("ni,nj->ij", A, A)
    rhs = np.einsum("ni,n->i", A, y[mask] * sw)
    ridge = 1e-10 * max(float(np.trace(G)) / len(G), 1e-300)
    beta = np.linalg.solve(G + ridge * np.eye(len(G)), rhs)
    out[mask] = y[mask] - np.einsum("nk,k->n", X[mask], beta)
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
    * quality momentum: ``clip(Momentum * Profitability, -3, 3)`` (x 0.6)
    * unprofitable levered firms: ``-[Leverage > 0.8] * [Profitability < 0]`` (x 1.5)
    * cheap earners among large caps: ``max(EarningsYield, 0) * [Size > 0.5]`` (x 0.8)
    * expensive small caps: ``-[Size < -0.5] * [BookToPrice < -0.5]`` (x 1.2)

    Every term uses styles that a Barra-style risk model measures closely from prices and
    reported fundamentals (Size, BookToPrice, EarningsYield, Momentum, Profitability, Leverage),
    so a model fed a risk model's own exposures can learn most of it.
    """
    s = {name: X[:, k] for name, k in S.items()}
    g = (
        1.0 * np.tanh(1.5 * s["BookToPrice"]) * (s["Size"] < 0)
        + 0.6 * np.clip(s["Momentum"] * s["Profitability"], -3, 3)
        - 1.5 * ((s["Leverage"] > 0.8) & (s["Profitability"] < 0))
        + 0.8 * np.maximum(s["EarningsYield"], 0) * (s["Size"] > 0.5)
        - 1.2 * ((s["Size"] < -0.5) & (s["BookToPrice"] < -0.5))
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

    Returns ``-z(r5) (1 + 1.5 tanh(2 max(surge, 0))) + 0.8 z(surge) - 0.6 z(gap5)`` with ``r5`` the
    5-day return,
    ``surge = log(mean turnover 5 d / mean turnover 20 d)`` and ``gap5`` the 5-day mean gap.
    """
    r5 = logret[-5:].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        surge = np.log(_nanmean0(turnover[-5:]) / _nanmean0(turnover[-20:]))
        g5 = _nanmean0(gap[-5:])
    ok = mask & np.isfinite(r5) & np.isfinite(surge) & np.isfinite(g5)
    h = 1.0 + 1.5 * np.tanh(2.0 * np.maximum(surge, 0.0))
    p = -zscore(r5, ok) * h + 0.8 * zscore(surge, ok) - 0.6 * zscore(g5, ok)
    p[~ok] = np.nan
    return p


def _nanmean0(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN (NaN where a column has no finite value)."""
    ok = np.isfinite(a)
    c = ok.sum(axis=0)
    s = np.where(ok, a, 0).sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / c, np.nan)


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


def rank_ic(a: np.ndarray, b: np.ndarray, min_count: int = 20) -> np.ndarray:
    """Spearman correlation per row of ``a, b [D, N]`` over pairs where both are finite.

    Ties get their average rank. Rows with fewer than ``min_count`` pairs give NaN.
    Returns ``float64[D]``.
    """
    ok = np.isfinite(a) & np.isfinite(b)
    ra = row_ranks(np.where(ok, a, np.nan))
    rb = row_ranks(np.where(ok, b, np.nan))
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ra = ra - _row_mean(ra, ok, n)[:, None]
        rb = rb - _row_mean(rb, ok, n)[:, None]
        ra, rb = np.where(ok, ra, 0.0), np.where(ok, rb, 0.0)
        den = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
        ic = np.where(den > 0, (ra * rb).sum(axis=1) / den, np.nan)
    return np.where(n >= min_count, ic, np.nan)


def _row_mean(x: np.ndarray, ok: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x, 0.0).sum(axis=1) / n


def row_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) along axis 1 of ``x [D, N]``; NaN entries get NaN."""
    D, N = x.shape
    order = np.argsort(x, axis=1)  # NaN last; tie order is irrelevant
    s = np.take_along_axis(x, order, axis=1)
    p = np.broadcast_to(np.arange(N), (D, N))
    start = np.ones((D, N), dtype=bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    end = np.ones((D, N), dtype=bool)
    end[:, :-1] = start[:, 1:]
    first = np.maximum.accumulate(np.where(start, p, 0), axis=1)
    last = np.minimum.accumulate(np.where(end, p, N)[:, ::-1], axis=1)[:, ::-1]
    r = np.empty((D, N))
    np.put_along_axis(r, order, (first + last) / 2.0 + 1.0, axis=1)
    r[np.isnan(x)] = np.nan
    return r
