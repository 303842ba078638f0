"""CNE6-style descriptors as pure functions on ``[T, N]`` arrays (all dates at once).

Shapes: ``T`` trading days (rows), ``N`` assets. Inputs are float arrays with NaN = missing;
outputs are float64 ``[T, N]``. A value at row t uses data up to and including row t only
(trailing windows), so no descriptor looks ahead.

Time-series windows use exponential weights ``0.5 ** (s / halflife)`` for lag ``s = 0..W-1``
computed with a first-order recursion (``E_t = lam E_{t-1} + x_t``; window sum
``E_t - lam**W E_{t-W}``), so a 504-day window costs the same as a 21-day one. Missing
observations get zero weight; a descriptor is NaN when fewer than ``min_obs`` observations are
in its window.

Descriptor catalogue (window W, half-life HL, in trading days):

============  ==============================================================  =================
LNCAP         ln(total market cap)                                            -
BETA          time-series WLS slope of r_i on the cap-weighted market return  W 504, HL 252
HSIGMA        residual std of that regression (shorter window)                W 252, HL 63
DASTD         exponentially weighted std of daily returns                     W 252, HL 42
CMRA          max - min of cumulative log returns over the last 1..12 months  12 x 21 days
RSTR          sum of log returns, then 11-day mean lagged 11 days             W 252, HL 126
STREV         -(sum of log returns), 3-day mean lagged 1 day                  W 21, HL 5
LTRSTR        minus the sum of log returns lagged 273 days, 11-day mean       W 504, HL 260
STOM/Q/A      ln of summed turnover per month over 1 / 3 / 12 months          21 / 63 / 252
ATVR          exponentially weighted sum of turnover                          W 252, HL 63
BTOP          1 / pb at the period end, re-priced daily (`reprice_ratio`)     -
ETOP          1 / pe (pe > 0) at the period end, re-priced daily              -
EBITTOP       EBIT / market cap (negative for loss makers)                    -
DTOP          dividend yield dv_ratio / 100 at the period end, re-priced      -
EGRO          YoY EBIT change / mean(|EBIT now|, |EBIT a year ago|), same     report periods
              report period a year earlier (`period_yoy`), mapped to days
DTOA          debt to assets                                                  -
ROE, ROA      return on equity / assets                                       -
VERN          std of annual EBIT over 5 fiscal years / mean |EBIT|            5 years (>= 3)
              (`annual_variability`; fallback: std of the YoY change over 756 days)
============  ==============================================================  =================
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def _lam(halflife: float | None) -> float:
    return 1.0 if halflife is None else 0.5 ** (1.0 / float(halflife))


def ew_sum(x: np.ndarray, window: int, halflife: float | None = None) -> np.ndarray:
    """Trailing window sum ``sum_{s=0}^{W-1} lam^s x_{t-s}`` along axis 0 (NaN counts as 0).

    x : float[T, ...]; window : W; halflife : None for equal weights. Returns float64[T, ...].
    """
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lam = _lam(halflife)
    if lam == 1.0:
        e = np.cumsum(x, axis=0)
    else:
        e = lfilter([1.0], [1.0, -lam], x, axis=0)
    out = e.copy()
    if window < x.shape[0]:
        out[window:] -= lam**window * e[:-window]
    return out


def lag(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` shifted down by ``k`` rows (row t holds ``x[t-k]``), NaN-padded. float64."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full_like(x, np.nan)
    if k < x.shape[0]:
        out[k:] = x[: x.shape[0] - k] if k > 0 else x
    return out


def rolling_mean(x: np.ndarray, window: int, min_obs: int | None = None) -> np.ndarray:
    """Equal-weight trailing mean of the finite values in the last ``window`` rows."""
    ok = np.isfinite(x)
    s = ew_sum(np.where(ok, x, 0.0), window)
    n = ew_sum(ok.astype(np.float64), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= (min_obs or window), s / n, np.nan)


def returns(close: np.ndarray, suspended: np.ndarray | None = None) -> np.ndarray:
    """Daily simple returns ``close[t] / close[t-1] - 1`` (row 0 NaN), NaN on suspended days.

    close : float[T, N] back-adjusted prices; suspended : bool[T, N] (price carried forward).
    """
    c = np.asarray(close, dtype=np.float64)
    r = np.full_like(c, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[1:] = c[1:] / c[:-1] - 1.0
    r[~np.isfinite(r)] = np.nan
    if suspended is not None:
        r[suspended] = np.nan
    return r


def market_return(r: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Cap-weighted mean return ``[T]`` with caps at t-1 (known before the return)."""
    w = lag(cap, 1)
    ok = np.isfinite(r) & np.isfinite(w) & (w > 0)
    w = np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * np.where(ok, r, 0.0)).sum(axis=1) / w.sum(axis=1)


def ts_regression(
    r: np.ndarray, m: np.ndarray, window: int, halflife: float, min_obs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling exponentially weighted regression ``r_i = a + b m + e`` for every stock.

    r : float[T, N] stock returns; m : float[T] market return. Returns (beta, residual std),
    both float64[T, N], NaN with fewer than `min_obs` observations.
    """
    ok = np.isfinite(r) & np.isfinite(m)[:, None]
    y = np.where(ok, r, 0.0)
    x = np.where(ok, np.nan_to_num(m)[:, None], 0.0)
    w = ok.astype(np.float64)
    Sw = ew_sum(w, window, halflife)
    Sx = ew_sum(x, window, halflife)
    Sy = ew_sum(y, window, halflife)
    Sxx = ew_sum(x * x, window, halflife)
    Sxy = ew_sum(x * y, window, halflife)
    Syy = ew_sum(y * y, window, halflife)
    n = ew_sum(w, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        cxx = Sxx - Sx * Sx / Sw
        cxy = Sxy - Sx * Sy / Sw
        cyy = Syy - Sy * Sy / Sw
        beta = cxy / cxx
        rv = np.maximum(cyy - beta * cxy, 0.0) / Sw
    bad = (n < min_obs) | ~(cxx > 0)
    beta[bad] = np.nan
    rv[bad] = np.nan
    return beta, np.sqrt(rv)


def ew_std(r: np.ndarray, window: int, halflife: float, min_obs: int) -> np.ndarray:
    """Exponentially weighted std (around the weighted mean) of ``r`` over a trailing window."""
    ok = np.isfinite(r)
    y = np.where(ok, r, 0.0)
    Sw = ew_sum(ok.astype(np.float64), window, halflife)
    Sy = ew_sum(y, window, halflife)
    Syy = ew_sum(y * y, window, halflife)
    n = ew_sum(ok.astype(np.float64), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.maximum(Syy / Sw - (Sy / Sw) ** 2, 0.0)
    return np.where(n >= min_obs, np.sqrt(v), np.nan)


def cmra(logret: np.ndarray, months: int = 12, days: int = 21) -> np.ndarray:
    """``max_k Z_k - min_k Z_k``, ``Z_k`` = cumulative log return over the last ``k`` months.

    NaN until ``months * days`` rows of history and when more than a third of the window is
    missing."""
    ok = np.isfinite(logret)
    c = np.cumsum(np.where(ok, logret, 0.0), axis=0)
    T = c.shape[0]
    zs = []
    for k in range(1, months + 1):
        zs.append(c - lag(c, days * k))
    Z = np.stack(zs)
    out = Z.max(axis=0) - Z.min(axis=0)
    n = ew_sum(ok.astype(np.float64), months * days)
    out[(n < months * days * 2 / 3) | (np.arange(T) < months * days)[:, None]] = np.nan
    return out


def momentum(
    logret: np.ndarray,
    window: int = 252,
    halflife: float = 126,
    lag_days: int = 11,
    avg: int = 11,
    min_obs: int = 126,
) -> np.ndarray:
    """RSTR: exponentially weighted sum of log returns over ``window`` days, averaged over
    ``avg`` consecutive window ends, the most recent ``lag_days`` before t."""
    ok = np.isfinite(logret)
    s = ew_sum(np.where(ok, logret, 0.0), window, halflife)
    s[ew_sum(ok.astype(np.float64), window) < min_obs] = np.nan
    return rolling_mean(lag(s, lag_days), avg)


def short_term_reversal(
    logret: np.ndarray,
    window: int = 21,
    halflife: float = 5,
    avg: int = 3,
    min_obs: int = 10,
    lag_days: int = 1,
) -> np.ndarray:
    """STREV: minus the exponentially weighted 21-day sum of log returns (HL 5), averaged over
    ``avg`` = 3 consecutive window ends, the most recent ``lag_days`` = 1 before t.

    Sign: a reversal exposure, positive for recent losers (as LongTermReversal); the lag keeps
    the last day's bid-ask bounce and limit effects out (as RSTR's 11-day lag)."""
    return -momentum(logret, window, halflife, lag_days, avg, min_obs)


def long_term_reversal(
    logret: np.ndarray,
    window: int = 504,
    halflife: float = 260,
    lag_days: int = 273,
    avg: int = 11,
    min_obs: int = 252,
) -> np.ndarray:
    """LTRSTR: minus the exponentially weighted sum of log returns over ``window`` days lagged
    ``lag_days``, averaged over ``avg`` days."""
    return -momentum(logret, window, halflife, lag_days, avg, min_obs)


def turnover_log_sum(turnover: np.ndarray, window: int, months: int) -> np.ndarray:
    """STOM/STOQ/STOA: ``ln( sum_{window} turnover / months )`` (NaN with under half the
    window observed or a zero sum)."""
    ok = np.isfinite(turnover)
    s = ew_sum(np.where(ok, turnover, 0.0), window)
    n = ew_sum(ok.astype(np.float64), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log(s / months)
    out[(n < window / 2) | ~(s > 0)] = np.nan
    return out


def atvr(turnover: np.ndarray, window: int = 252, halflife: float = 63) -> np.ndarray:
    """ATVR: exponentially weighted sum of daily turnover (NaN with under half the window)."""
    ok = np.isfinite(turnover)
    s = ew_sum(np.where(ok, turnover, 0.0), window, halflife)
    n = ew_sum(ok.astype(np.float64), window)
    return np.where(n >= window / 2, s, np.nan)


def inverse_positive(x: np.ndarray) -> np.ndarray:
    """``1 / x`` where ``x > 0``, else NaN (E/P from P/E)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x > 0, 1.0 / x, np.nan)


def inverse_nonzero(x: np.ndarray) -> np.ndarray:
    """``1 / x`` where ``x != 0`` and finite (B/P from P/B keeps negative book), else NaN."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(x) & (x != 0), 1.0 / x, np.nan)


def period_end_ref_rows(dates: np.ndarray) -> np.ndarray:
    """For each trading day t, the row of the last trading day on or before the latest calendar
    quarter end ``<= dates[t]`` -> ``int64[T]`` (-1 when that quarter end precedes the first date).

    Period-end market ratios (pb, pe, dv_ratio) are stamped at the quarter end and used from the
    first trading day on or after it (`deepalpha.data.fundamentals.to_daily`); they were computed
    at the close of this reference row, which is never after t (no look-ahead).
    """
    d = np.asarray(dates, dtype="datetime64[D]")
    if d.size == 0:
        return np.zeros(0, dtype=np.int64)
    months = d.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    qmonth = months - (months % 3)  # first month of the day's quarter
    # the quarter end on or before t is the last day of the month before the quarter start,
    # unless t is itself the last calendar day of its quarter
    q_start = qmonth.astype("datetime64[M]").astype("datetime64[D]")
    q_end_prev = q_start - np.timedelta64(1, "D")
    q_end_this = (qmonth + 3).astype("datetime64[M]").astype("datetime64[D]") - np.timedelta64(
        1, "D"
    )
    qe = np.where(d >= q_end_this, q_end_this, q_end_prev)
    return np.searchsorted(d, qe, side="right").astype(np.int64) - 1


def reprice_ratio(close: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """``close[ref(t)] / close[t]`` -> float64[T, N] (`period_end_ref_rows`; NaN where unknown).

    A period-end yield ``Y = V / cap_pe`` (book, earnings or dividends over the period-end
    cap ``total_mv``) re-priced to day t is ``V / cap_t = Y * cap_pe / cap_t``; the daily cap is
    the period-end cap carried by the back-adjusted close (`carry_mktcap`), so
    ``cap_pe / cap_t = close[ref] / close[t]``. close : float[T, N] back-adjusted.
    """
    c = np.asarray(close, dtype=np.float64)
    ref = period_end_ref_rows(dates)
    out = np.full_like(c, np.nan)
    ok = ref >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = c[ref[ok]] / c[ok]
    out[~np.isfinite(out) | ~(out > 0)] = np.nan
    return out


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` where ``b > 0``, else NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / b, np.nan)


def yoy_growth(x: np.ndarray, days: int = 252) -> np.ndarray:
    """``(x_t - x_{t-days}) / mean(|x_t|, |x_{t-days}|)``, in [-2, 2]; NaN when both are 0."""
    x = np.asarray(x, dtype=np.float64)
    p = lag(x, days)
    d = 0.5 * (np.abs(x) + np.abs(p))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, (x - p) / d, np.nan)


def earnings_variability(x: np.ndarray, window: int = 756, days: int = 252, min_obs: int = 252):
    """VERN proxy: trailing std of the YoY change of ``x`` divided by trailing mean ``|x|``."""
    x = np.asarray(x, dtype=np.float64)
    dx = x - lag(x, days)
    ok = np.isfinite(dx) & np.isfinite(x)
    d0 = np.where(ok, dx, 0.0)
    n = ew_sum(ok.astype(np.float64), window)
    s1 = ew_sum(d0, window)
    s2 = ew_sum(d0 * d0, window)
    ma = ew_sum(np.where(ok, np.abs(x), 0.0), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0.0))
        out = sd / (ma / n)
    out[(n < min_obs) | ~(ma > 0)] = np.nan
    return out


# ---------------------------------------------------------------- report-period space
# Report data (year-to-date EBIT, ...) is quarterly; comparisons across time belong in
# report-period space (Q3 2020 vs Q3 2019), computed there and then mapped to trading days with
# the publication lag (`deepalpha.data.fundamentals.to_daily(lagged=True)`). Shapes: ``P``
# quarter-end periods (sorted, unique), ``M`` stocks.


def _period_rows(periods: np.ndarray, years_back: int, month_day: str | None = None) -> np.ndarray:
    """Row of the period ``years_back`` years earlier (same month-day, or `month_day` of that
    year) for each period -> int64[P], -1 when absent."""
    p = np.asarray(periods, dtype="datetime64[D]")
    pos = {str(x): i for i, x in enumerate(p.tolist())}
    out = np.full(len(p), -1, dtype=np.int64)
    for i, x in enumerate(p.astype(str).tolist()):
        y, md = int(x[:4]) - years_back, x[5:] if month_day is None else month_day
        out[i] = pos.get(f"{y:04d}-{md}", -1)
    return out


def period_yoy(periods: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Year-over-year change in report-period space -> float64[P, M].

    ``(x_p - x_{p-1y}) / mean(|x_p|, |x_{p-1y}|)`` (in [-2, 2]) with ``p-1y`` the same report
    period a year earlier (year-to-date values compare like with like); NaN when that period is
    absent or both values are 0. periods : datetime64[D][P] sorted quarter ends; values [P, M].
    """
    v = np.asarray(values, dtype=np.float64)
    prev = _period_rows(periods, 1)
    out = np.full_like(v, np.nan)
    ok = prev >= 0
    a, b = v[ok], v[prev[ok]]
    d = 0.5 * (np.abs(a) + np.abs(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = np.where(d > 0, (a - b) / d, np.nan)
    return out


def ttm_from_ytd(periods: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Trailing-twelve-month values from year-to-date reports -> float64[P, M].

    Annual (12-31) periods: the annual value. Other quarters: ``YTD_p + annual_{y-1} -
    YTD_{p-1y}`` (NaN when a term is missing). Every term is published by the deadline of p, so
    the TTM value can be used from the same day as the report of p.
    """
    v = np.asarray(values, dtype=np.float64)
    p = np.asarray(periods, dtype="datetime64[D]").astype(str)
    annual_now = np.array([x[5:] == "12-31" for x in p.tolist()])
    prev_same = _period_rows(periods, 1)
    prev_annual = _period_rows(periods, 1, "12-31")
    out = np.full_like(v, np.nan)
    out[annual_now] = v[annual_now]
    ok = ~annual_now & (prev_same >= 0) & (prev_annual >= 0)
    out[ok] = v[ok] + v[prev_annual[ok]] - v[prev_same[ok]]
    return out


def annual_variability(
    periods: np.ndarray, values: np.ndarray, years: int = 5, min_years: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """CNE6-style VERN on annual reports -> (``annual periods datetime64[D][A]``, ``float64[A, M]``).

    For each fiscal year y (the 12-31 rows of year-to-date `values`): the standard deviation of
    the annual values of years ``y - years + 1 .. y`` divided by the mean of their absolute
    values; NaN with fewer than `min_years` values or a zero mean. Map to days with the annual
    report's publication lag (`to_daily(lagged=True)` on the annual rows only).
    """
    p = np.asarray(periods, dtype="datetime64[D]")
    annual = np.array([x[5:] == "12-31" for x in p.astype(str).tolist()], dtype=bool)
    ap = p[annual]
    v = np.asarray(values, dtype=np.float64)[annual]
    yr = ap.astype("datetime64[Y]").astype(np.int64)
    out = np.full_like(v, np.nan)
    for i in range(len(ap)):
        rows = np.nonzero((yr > yr[i] - years) & (yr <= yr[i]))[0]
        w = v[rows]
        ok = np.isfinite(w)
        n = ok.sum(axis=0)
        w0 = np.where(ok, w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = w0.sum(axis=0) / n
            sd = np.sqrt((np.where(ok, w - mean, 0.0) ** 2).sum(axis=0) / np.maximum(n - 1, 1))
            mabs = np.abs(w0).sum(axis=0) / n
            out[i] = np.where((n >= min_years) & (mabs > 0), sd / mabs, np.nan)
    return ap, out
