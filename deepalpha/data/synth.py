"""A synthetic A-share market written in the on-disk layout of ``../shared/data/cn``.

``write_market(out, stocks=3000, start=..., end=..., seed=0)`` simulates a market and writes::

    prices/calendars/day.txt               weekday calendar minus Chinese holidays
    prices/instruments/all.txt             CODE<TAB>first<TAB>last (4 indices + stocks)
    prices/features/<code>/<field>.day.bin open high low close volume factor (Qlib .bin)
    index_membership/csi{300,500,800,1000,all}.txt
    fundamentals/{total_mv,pe,pb,ps,dv_ratio,roe,roa,debt_to_assets,ebit}.csv
    industry/stock_basic.csv, industry/csrc_industry.csv
    truth/                                 planted factors, exposures and alphas (see its README)

so that `deepalpha.data.cn.load_cn` reads it like the real data. The model, in one paragraph:
daily log returns are ``country + industry + X . styles + specific + planted drift``; factor
returns switch between a calm and a turbulent volatility regime (2-state Markov chain);
specific returns are Student-t (nu = 4) with stock-level volatility (smaller and
high-ResidualVolatility stocks more volatile). Raw prices move in 0.01 CNY ticks inside the
board's price limit; a move beyond the limit is locked at the limit and 70 % of the excess is
carried to the next day. Suspended days carry the price, have volume 0 and accumulate the
missed return. Volume = turnover x shares with a persistent stock-level turnover, an AR(1)
component and spikes on big moves. Fundamentals are quarterly latent processes (sales growth,
margin, book, leverage, dividends) priced at each period end. Style exposures (15 CNE6-like
styles) are recomputed at every month end from data known at that close and apply to the next
month. Everything is vectorised over stocks; the day loop is plain Python.

Units: prices CNY (back-adjusted = raw x factor), volume shares, returns log returns unless said.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from deepalpha.data import synth_alpha as sa
from deepalpha.data.qlib_bin import write_calendar, write_instruments
from deepalpha.errors import ConfigError
from deepalpha.risk.industries import SW_L1

STYLES = sa.STYLES
INDEX_CODES = {
    "csi300": "SH000300",
    "csi500": "SH000905",
    "csi1000": "SH000852",
    "csi800": "SH000906",
}
CHINEXT_20PCT_FROM = np.datetime64("2020-08-24")
STAR_FROM = np.datetime64("2019-07-22")
BJ_FROM = np.datetime64("2021-11-15")
FULL_MARKET = 3000  # stocks at which the CSI sizes are used unscaled
CSI_SIZES = {"csi300": 300, "csi500": 500, "csi1000": 1000}

# Spring Festival (lunar new year) dates; the exchange closes the week around it.
_SPRING = {
    2005: "02-09", 2006: "01-29", 2007: "02-18", 2008: "02-07", 2009: "01-26", 2010: "02-14",
    2011: "02-03", 2012: "01-23", 2013: "02-10", 2014: "01-31", 2015: "02-19", 2016: "02-08",
    2017: "01-28", 2018: "02-16", 2019: "02-05", 2020: "01-25", 2021: "02-12", 2022: "02-01",
    2023: "01-22", 2024: "02-10", 2025: "01-29", 2026: "02-17", 2027: "02-06", 2028: "01-26",
    2029: "02-13", 2030: "02-03",
}  # fmt: skip


@dataclass(frozen=True)
class SynthParams:
    """Model parameters (daily units unless said). Recorded in ``truth/meta.json``."""

    p_calm_to_turbulent: float = 0.012
    p_turbulent_to_calm: float = 0.04
    turbulent_factor_vol: float = 2.0  # factor-vol multiplier in the turbulent regime
    turbulent_specific_vol: float = 1.4
    country_mu: float = 0.0004
    country_vol: float = 0.011
    industry_vol: float = 0.0055
    beta_loading: float = 0.25  # Beta factor return = beta_loading * country + noise
    specific_vol: float = 0.016  # median stock's specific vol (calm)
    specific_nu: float = 4.0
    limit_carry: float = 0.7  # share of a beyond-limit move carried to the next day
    p_suspend: float = 0.0024  # daily chance a trading stock is suspended
    p_stay_suspended: float = 0.9
    listed_at_start: float = 0.72  # share of stocks listed before the calendar starts
    delisted: float = 0.04  # share of stocks delisted inside the calendar
    style_alpha: float = 0.048  # cross-sectional std of planted (a), log return per month
    pv_alpha: float = 0.0033  # cross-sectional std of a day's planted (b), log return over 10 days
    pv_horizon: int = 10
    cap_groups: int = 20
    trait_persistence: float = 0.985  # monthly AR(1) of latent traits
    size_premium: float = 0.0005  # minus the Size factor's mean daily return
    group_volume_vol: float = 0.3  # daily shock of the log turnover common to a cap group
    penny_days: int = 20  # delisted after this many closes below 1 CNY (the 1-yuan rule)
    split_above: float = 50.0  # a stock above this raw price issues 10-for-10 bonus shares


# ------------------------------------------------------------------------------ calendar
def trading_calendar(start: str, end: str) -> np.ndarray:
    """Weekdays in ``[start, end]`` minus New Year, Spring Festival week, Labour Day (05-01..03)
    and National Day week (10-01..07) -> ``datetime64[D][T]``."""
    s, e = np.datetime64(start, "D"), np.datetime64(end, "D")
    if e <= s:
        raise ConfigError(f"end {e} must be after start {s}")
    days = np.arange(s, e + 1, dtype="datetime64[D]")
    days = days[np.is_busday(days)]
    years = range(int(str(s)[:4]), int(str(e)[:4]) + 1)
    hol = []
    for y in years:
        hol += [f"{y}-01-01", f"{y}-05-01", f"{y}-05-02", f"{y}-05-03"]
        hol += [f"{y}-10-0{d}" for d in range(1, 8)]
        sf = np.datetime64(f"{y}-{_SPRING.get(y, '02-05')}")
        hol += [str(sf + k) for k in range(-1, 6)]
    return days[~np.isin(days, np.array(hol, dtype="datetime64[D]"))]


def _last_trading_index(dates: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Index of the last trading day ``<= when`` (-1 when before the calendar)."""
    return np.searchsorted(dates, when, "right") - 1


def month_end_indices(dates: np.ndarray) -> np.ndarray:
    """Indices of the last trading day of each month -> ``int64[M]``."""
    m = dates.astype("datetime64[M]")
    return np.flatnonzero(np.r_[m[1:] != m[:-1], True])


# ------------------------------------------------------------------------------ universe
@dataclass
class Universe:
    """Static stock attributes; arrays are ``[N]`` in sorted canonical-code order."""

    codes: np.ndarray  # str  SH600000
    board: np.ndarray  # str  main/chinext/star/bj
    industry: np.ndarray  # int  index into SW_L1
    list_date: np.ndarray  # datetime64[D]
    first: np.ndarray  # int  first calendar index with a bar
    last: np.ndarray  # int  last calendar index with a bar (T-1 unless delisted)
    logcap0: np.ndarray  # log CNY cap at the first bar
    price0: np.ndarray  # raw price at the first bar
    factor0: np.ndarray  # adjustment factor at the first bar
    beta: np.ndarray  # latent traits, N(0, 1)
    resvol: np.ndarray
    liq: np.ndarray
    growth: np.ndarray
    evar: np.ndarray
    quality: np.ndarray
    lev: np.ndarray  # long-run debt/assets
    payout: np.ndarray  # dividend payout ratio (0 for non-payers)


def _boards_for(list_dates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(len(list_dates))
    b = np.where(u < 0.42, "main_sh", np.where(u < 0.72, "main_sz", "chinext")).astype("U8")
    recent = list_dates >= STAR_FROM
    star = recent & (rng.random(len(b)) < 0.3)
    b[star] = "star"
    bj = (list_dates >= BJ_FROM) & ~star & (rng.random(len(b)) < 0.08)
    b[bj] = "bj"
    b[(b == "chinext") & (list_dates < np.datetime64("2009-10-30"))] = "main_sz"
    return b


def _codes_for(board: np.ndarray, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unique codes by board, increasing with list date (``order`` = stocks by list date)."""
    pools = {
        "main_sh": ("SH", np.r_[600000:606000]),
        "main_sz": ("SZ", np.r_[1:4000]),
        "chinext": ("SZ", np.r_[300001:302000]),
        "star": ("SH", np.r_[688001:689000]),
        "bj": ("BJ", np.r_[430001:430999, 830001:839999, 870001:873999]),
    }
    codes = np.empty(len(board), dtype="U8")
    for b, (ex, pool) in pools.items():
        idx = order[board[order] == b]
        if len(idx) == 0:
            continue
        if len(idx) > len(pool):
            raise ConfigError(f"too many stocks for board {b}: {len(idx)}")
        nums = np.sort(rng.choice(pool, size=len(idx), replace=False))
        codes[idx] = [f"{ex}{n:06d}" for n in nums]
    return codes


def make_universe(stocks: int, dates: np.ndarray, p: SynthParams, rng: np.random.Generator):
    """Draw the stocks: codes, boards, industries, listing/delisting, caps and traits."""
    T, N = len(dates), stocks
    pre = rng.random(N) < p.listed_at_start
    ipo_idx = rng.integers(1, max(2, T - 40), size=N)
    first = np.where(pre, 0, ipo_idx)
    age_days = rng.integers(120, 7000, size=N)
    list_date = np.where(pre, dates[0] - age_days, dates[first])
    list_date = list_date.astype("datetime64[D]")
    board = _boards_for(list_date, rng)
    order = np.lexsort((np.arange(N), list_date))
    codes = _codes_for(board, order, rng)
    srt = np.argsort(codes)
    codes, board, list_date, first = codes[srt], board[srt], list_date[srt], first[srt]
    board = np.where(np.char.startswith(board, "main"), "main", board)

    last = np.full(N, T - 1)
    span_ok = (T - 1 - first) > 300
    dl = span_ok & (rng.random(N) < p.delisted)
    last[dl] = rng.integers(first[dl] + 250, T - 1)

    w = rng.gamma(1.2, 1.0, size=len(SW_L1))
    industry = rng.choice(len(SW_L1), size=N, p=w / w.sum())
    ind_cap = rng.normal(0, 0.35, size=len(SW_L1))
    ind_lev = np.clip(rng.normal(0.42, 0.12, size=len(SW_L1)), 0.12, 0.75)
    keys = [k for k, _ in SW_L1]
    ind_lev[keys.index("banks")] = 0.92
    ind_lev[keys.index("non_bank_finance")] = 0.75
    ind_lev[keys.index("real_estate")] = 0.72
    ind_cap[keys.index("banks")] += 1.2

    ipo = first > 0
    young = np.isin(board, ["chinext", "star", "bj"])
    logcap0 = (
        np.log(6e9) + ind_cap[industry] + rng.normal(0, 0.95, size=N) - 0.6 * ipo - 0.3 * young
    )
    price0 = np.clip(np.exp(rng.normal(np.log(13.0), 0.65, size=N)), 2.5, 400.0)
    price0 = np.round(price0, 2)
    factor0 = np.where(ipo, 1.0, np.round(np.exp(rng.uniform(0, 1.6, size=N)), 6))
    payer = rng.random(N) < 0.7
    return Universe(
        codes=codes,
        board=board.astype("U8"),
        industry=industry,
        list_date=list_date,
        first=first,
        last=last,
        logcap0=logcap0,
        price0=price0,
        factor0=factor0,
        beta=rng.standard_normal(N),
        resvol=rng.standard_normal(N),
        liq=rng.standard_normal(N),
        growth=rng.standard_normal(N),
        evar=rng.standard_normal(N),
        quality=rng.standard_normal(N),
        lev=np.clip(ind_lev[industry] + rng.normal(0, 0.12, size=N), 0.04, 0.95),
        payout=np.where(payer, rng.uniform(0.1, 0.6, size=N), 0.0),
    )


# ------------------------------------------------------------------------------ fundamentals
@dataclass
class Fundamentals:
    """Quarterly latent accounts ``[Q, N]`` (CNY, ratios as fractions) at period ends ``[Q]``."""

    period_end: np.ndarray  # datetime64[D]
    pidx: np.ndarray  # last trading index <= period end (-1 before the calendar)
    published: np.ndarray  # datetime64[D] publication deadline
    sales_ttm: np.ndarray
    earn_ttm: np.ndarray
    book: np.ndarray
    lev: np.ndarray
    roe_ytd: np.ndarray  # %
    roa_ytd: np.ndarray  # %
    ebit_ytd: np.ndarray  # CNY
    qnum: np.ndarray  # 1..4 quarter of the year  [Q]
    dividend: dict  # year -> total cash dividend [N] paid in that year (CNY)


def _period_ends(start: np.datetime64, end: np.datetime64, pre: int = 5) -> np.ndarray:
    first = np.datetime64(str(start)[:4] + "-01-01", "M") - 3 * pre
    months = np.arange(first, np.datetime64(end, "M") + 1, dtype="datetime64[M]")
    months = months[(months.astype(int) % 12) % 3 == 2]
    pe = (months + 1).astype("datetime64[D]") - 1
    return pe[pe <= end]


def _deadline(pe: np.ndarray) -> np.ndarray:
    y = pe.astype("datetime64[Y]").astype(int) + 1970
    md = np.array([str(d)[5:] for d in pe])
    out = []
    for yy, m in zip(y, md, strict=True):
        dl = {"03-31": f"{yy}-04-30", "06-30": f"{yy}-08-31", "09-30": f"{yy}-10-31"}
        out.append(dl.get(m, f"{yy + 1}-04-30"))
    return np.array(out, dtype="datetime64[D]")


def simulate_fundamentals(
    uni: Universe, dates: np.ndarray, p: SynthParams, rng: np.random.Generator
) -> Fundamentals:
    """Quarterly sales (growth trait), margin (quality, earnings-variability traits), book
    (retained earnings minus dividends), leverage; YTD roe/roa/ebit as Tushare reports them."""
    pe = _period_ends(dates[0], dates[-1])
    Q, N = len(pe), len(uni.codes)
    cap = np.exp(uni.logcap0)
    sales = cap / np.exp(rng.normal(np.log(3.0), 0.6, size=N))
    book = cap / np.exp(rng.normal(np.log(2.4), 0.8, size=N))
    book0 = book.copy()
    mu_m = 0.07 + 0.05 * uni.quality
    sd_m = 0.02 * np.exp(0.5 * uni.evar)
    margin = mu_m + sd_m * rng.standard_normal(N)
    lev = uni.lev.copy()
    hist = [margin * sales / 4] * 3
    out = {k: np.full((Q, N), np.nan) for k in ("s", "e", "b", "l", "roe", "roa", "ebit")}
    qnum = np.array([(int(str(d)[5:7]) // 3) for d in pe])
    ytd_e = np.zeros(N)
    ytd_ebit = np.zeros(N)
    b_soy = book.copy()
    a_soy = book / (1 - lev)
    year_e = (qnum[0] - 1) * hist[0]  # quarters of the first year before the first one
    dividend: dict[int, np.ndarray] = {}
    for q in range(Q):
        year = int(str(pe[q])[:4])
        if qnum[q] == 1:
            ytd_e[:] = 0
            ytd_ebit[:] = 0
            b_soy = book.copy()
            a_soy = book / (1 - lev)
            dividend[year] = uni.payout * np.maximum(year_e, 0)
            year_e = np.zeros(N)
        g = 0.06 + 0.10 * uni.growth + 0.05 * rng.standard_normal(N)
        sales = sales * np.exp(g / 4 + 0.03 * rng.standard_normal(N))
        margin = mu_m + 0.75 * (margin - mu_m) + sd_m * rng.standard_normal(N)
        e = margin * sales / 4
        paid = dividend.get(year, 0.0) if qnum[q] == 3 else 0.0
        book = np.maximum(book + e - paid, 0.05 * book0)
        lev = np.clip(uni.lev + 0.85 * (lev - uni.lev) + 0.015 * rng.standard_normal(N), 0.03, 0.96)
        assets = book / (1 - lev)
        ebit = np.where(e > 0, e / 0.75, e) + 0.045 / 4 * lev * assets
        ytd_e += e
        ytd_ebit += ebit
        year_e += e
        hist = [*hist[-3:], e]
        out["s"][q], out["e"][q], out["b"][q], out["l"][q] = sales, sum(hist[-4:]), book, lev
        out["roe"][q] = 100 * ytd_e / ((b_soy + book) / 2)
        out["roa"][q] = 100 * ytd_e / ((a_soy + assets) / 2)
        out["ebit"][q] = ytd_ebit
    return Fundamentals(
        period_end=pe,
        pidx=_last_trading_index(dates, pe),
        published=_deadline(pe),
        sales_ttm=out["s"],
        earn_ttm=out["e"],
        book=out["b"],
        lev=out["l"],
        roe_ytd=out["roe"],
        roa_ytd=out["roa"],
        ebit_ytd=out["ebit"],
        qnum=qnum,
        dividend=dividend,
    )


# ------------------------------------------------------------------------------ simulation
@dataclass
class Market:
    """Simulated daily arrays ``[T, N]`` (raw prices in CNY) plus truth."""

    raw_open: np.ndarray
    raw_high: np.ndarray
    raw_low: np.ndarray
    raw_close: np.ndarray
    volume: np.ndarray
    factor: np.ndarray
    shares: np.ndarray
    suspended: np.ndarray
    logret: np.ndarray  # realised log total return (NaN where no return)
    specific: np.ndarray  # realised log return minus the factor part
    alpha_pv_new: np.ndarray  # each day's pv innovation (log return over the next 10 days)
    alpha_pv_ok: np.ndarray  # bool: the pattern was defined that day
    pv_raw: np.ndarray  # the pattern before the cap-group de-meaning (diagnostics)
    last: np.ndarray  # int[N] last bar (planned delistings and the 1-yuan rule)
    factor_returns: np.ndarray  # [T, 1 + 31 + 15]
    regime: np.ndarray  # bool[T] turbulent
    expo_idx: np.ndarray  # exposure dates (indices)
    exposures: np.ndarray  # [E, N, 15]
    alpha_style: np.ndarray  # [E, N]
    mv: np.ndarray  # [Q, N] CNY at period ends (NaN where not listed / before calendar)
    dv_ttm: np.ndarray  # [Q, N] CNY cash dividends paid in the year up to the period end


def _regimes(T: int, p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(T)
    out = np.zeros(T, dtype=bool)
    s = False
    for t in range(T):
        s = (u[t] >= p.p_turbulent_to_calm) if s else (u[t] < p.p_calm_to_turbulent)
        out[t] = s
    return out


def _style_vols() -> np.ndarray:
    v = {
        "Size": 0.0050, "MidCap": 0.0040, "Beta": 0.0040, "ResidualVolatility": 0.0035,
        "Liquidity": 0.0035, "Momentum": 0.0048, "ShortTermReversal": 0.0048,
        "BookToPrice": 0.0030, "EarningsYield": 0.0045, "DividendYield": 0.0025,
        "Growth": 0.0025, "Leverage": 0.0040, "Profitability": 0.0045,
        "LongTermReversal": 0.0032, "EarningsVariability": 0.0025,
    }  # fmt: skip
    return np.array([v[s] for s in STYLES])


def _window_sum(a: np.ndarray, lo: int, hi: int, min_count: int) -> np.ndarray:
    """Sum of ``a[lo:hi]`` over days with finite values; NaN when fewer than ``min_count``."""
    lo = max(lo, 0)
    if hi <= lo:
        return np.full(a.shape[1], np.nan)
    w = a[lo:hi]
    ok = np.isfinite(w)
    s = np.where(ok, w, 0).sum(axis=0, dtype=np.float64)
    return np.where(ok.sum(axis=0) >= min_count, s, np.nan)


def _exposures(
    t: int,
    dates: np.ndarray,
    cap: np.ndarray,
    listed: np.ndarray,
    logret: np.ndarray,
    turnover: np.ndarray,
    traits: dict,
    fu: Fundamentals,
    mv: np.ndarray,
    dv: np.ndarray,
    list_date: np.ndarray,
) -> np.ndarray:
    """Standardised exposures ``[N, 15]`` from data known at the close of day ``t``."""
    N = len(cap)
    raw = np.full((N, len(STYLES)), np.nan)
    S = sa.S
    lc = np.log(cap)
    raw[:, S["Size"]] = lc
    raw[:, S["Beta"]] = traits["beta"]
    raw[:, S["ResidualVolatility"]] = traits["resvol"]
    raw[:, S["EarningsVariability"]] = traits["evar"]
    with np.errstate(invalid="ignore", divide="ignore"), sa._quiet():
        to = turnover[max(0, t - 20) : t + 1]
        cnt = np.isfinite(to).sum(axis=0)
        raw[:, S["Liquidity"]] = np.where(cnt >= 5, np.log(np.nanmean(to, axis=0)), np.nan)
    raw[:, S["Momentum"]] = _window_sum(logret, t - 251, t - 20, 42)
    raw[:, S["ShortTermReversal"]] = _window_sum(logret, t - 20, t + 1, 10)
    raw[:, S["LongTermReversal"]] = -_window_sum(logret, t - 755, t - 251, 126)
    # valuation: last period end <= t (market data); reports: last published by dates[t]
    qs = int(np.searchsorted(fu.pidx, t, "right") - 1)
    qp = int(np.searchsorted(fu.published, dates[t], "right") - 1)
    if qs >= 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            m = mv[qs]
            raw[:, S["BookToPrice"]] = fu.book[qs] / m
            raw[:, S["EarningsYield"]] = fu.earn_ttm[qs] / m
            raw[:, S["DividendYield"]] = dv[qs] / m
            if qs >= 4:
                raw[:, S["Growth"]] = np.log(fu.sales_ttm[qs] / fu.sales_ttm[qs - 4])
    if qp >= 0:
        raw[:, S["Leverage"]] = fu.lev[qp]
        raw[:, S["Profitability"]] = fu.roe_ytd[qp] * 4 / fu.qnum[qp]
        unlisted = list_date > fu.period_end[qp]  # written as empty in the CSVs
        raw[unlisted, S["Leverage"]] = np.nan
        raw[unlisted, S["Profitability"]] = np.nan
    X = np.full_like(raw, np.nan)
    for k, name in enumerate(STYLES):
        if name == "MidCap":
            continue
        X[:, k] = sa.standardize(raw[:, k], cap, listed)
    size = X[:, S["Size"]]
    ones = np.ones(N)
    mid = sa.residualize(size**3, np.c_[ones, size], cap, listed)
    X[:, S["MidCap"]] = sa.standardize(mid, cap, listed)
    return X


def simulate_market(
    uni: Universe, fu: Fundamentals, dates: np.ndarray, p: SynthParams, seed: int
) -> Market:
    """Run the day loop. Deterministic for ``seed``."""
    ss = np.random.SeedSequence([seed, 2])
    rf, rs, re_, rv, rc = (np.random.default_rng(s) for s in ss.spawn(5))
    T, N = len(dates), len(uni.codes)
    K_IND, K_STY = len(SW_L1), len(STYLES)
    # ---- factor returns (industry constraint applied in the loop)
    regime = _regimes(T, p, rf)
    mult = np.where(regime, p.turbulent_factor_vol, 1.0)
    fc = p.country_mu + p.country_vol * mult * rf.standard_normal(T)
    ind_scale = rf.uniform(0.7, 1.5, size=K_IND)
    fi = p.industry_vol * mult[:, None] * ind_scale * rf.standard_normal((T, K_IND))
    sty_mu = rf.normal(0, 0.00015, size=K_STY)
    sty_mu[sa.S["Size"]] = -p.size_premium  # small caps earn a premium: keeps caps lognormal
    fs = sty_mu + _style_vols() * mult[:, None] * rf.standard_normal((T, K_STY))
    fs[:, sa.S["Beta"]] += p.beta_loading * (fc - p.country_mu)
    spec_mult = np.where(regime, p.turbulent_specific_vol, 1.0)
    limit = np.where(uni.board == "bj", 0.30, np.where(uni.board == "star", 0.20, 0.10))
    chinext = uni.board == "chinext"

    # ---- state and history
    f32 = np.float32
    raw_o, raw_h, raw_l, raw_c = (np.full((T, N), np.nan, f32) for _ in range(4))
    vol = np.zeros((T, N), f32)
    factor = np.full((T, N), np.nan)
    shares_h = np.full((T, N), np.nan)
    susp_h = np.zeros((T, N), dtype=bool)
    logret = np.full((T, N), np.nan, f32)
    specific = np.full((T, N), np.nan, f32)
    turnover = np.full((T, N), np.nan, f32)
    gap = np.full((T, N), np.nan, f32)
    alpha_new = np.zeros((T, N), f32)
    pv_ok = np.zeros((T, N), dtype=bool)
    pv_raw = np.full((T, N), np.nan, f32)
    pv_drift = np.zeros((T + p.pv_horizon + 1, N))
    mv = np.full((len(fu.period_end), N), np.nan)
    dv = np.full((len(fu.period_end), N), np.nan)
    div_events: list[tuple[np.datetime64, np.ndarray, np.ndarray]] = []  # (ex-date, who, CNY)

    close = uni.price0.copy()
    shares = np.exp(uni.logcap0) / close
    fac = uni.factor0.copy()
    susp = np.zeros(N, dtype=bool)
    pending = np.zeros(N)
    vol_ar = 0.4 * rv.standard_normal(N)
    grp_ar = np.zeros(p.cap_groups)  # AR(1) turnover flow common to each log-cap group
    grp = sa.cap_groups(np.log(close * shares), uni.first == 0, p.cap_groups)
    traits = {"beta": uni.beta.copy(), "resvol": uni.resvol.copy(), "evar": uni.evar.copy()}
    liq_base = np.log(0.012) + 0.45 * uni.liq
    # dividend / bonus-share schedule: one ex-day a year (mid-June .. July) per payer
    years = sorted(fu.dividend)
    sched: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for y in years:
        day = np.datetime64(f"{y}-06-15") + rc.integers(0, 45, size=N)
        idx = np.searchsorted(dates, day)
        bonus = np.where(rc.random(N) < 0.05, rc.choice([0.2, 0.3, 0.5, 1.0], size=N), 0.0)
        for d in np.unique(day[day < dates[0]]):  # paid before the calendar: only for dv_ratio
            who = np.flatnonzero((day == d) & (uni.list_date < d) & (fu.dividend[y] > 0))
            div_events.append((d, who, fu.dividend[y][who]))
        idx[day < dates[0]] = T
        for t in np.unique(idx[idx < T]):
            who = np.flatnonzero(idx == t)
            sched.setdefault(int(t), []).append((who, fu.dividend[y][who], bonus[who]))
    pend_div = np.zeros(N)
    pend_bonus = np.zeros(N)
    pend_flag = np.zeros(N, dtype=bool)

    me = month_end_indices(dates)
    expo_idx = np.unique(np.r_[0, me[me < T - 1]])
    expo_set = {int(t): k for k, t in enumerate(expo_idx)}
    next_expo = np.r_[expo_idx[1:], T - 1]
    X_all = np.full((len(expo_idx), N, K_STY), np.nan, f32)
    A_style = np.full((len(expo_idx), N), np.nan, f32)
    q_at = {int(t): q for q, t in enumerate(fu.pidx) if t >= 0}
    ind_onehot = np.eye(K_IND)[uni.industry]
    delist_drift = np.zeros(N)

    def record_quarters(t: int, cap: np.ndarray, listed: np.ndarray) -> None:
        for q in range(len(fu.period_end)):
            if fu.pidx[q] == t or (t == 0 and fu.pidx[q] < 0):
                m = np.where(listed & (uni.list_date <= fu.period_end[q]), cap, np.nan)
                if t == 0 and fu.pidx[q] < 0:
                    m = np.where(uni.list_date <= fu.period_end[q], cap, np.nan)
                mv[q] = m
                lo = fu.period_end[q] - 365
                tot = np.zeros(N)
                for de, who, amt in div_events:
                    if lo < de <= fu.period_end[q]:
                        tot[who] += amt
                dv[q] = np.where(np.isfinite(m), tot, np.nan)

    def new_month(t: int, cap: np.ndarray, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = expo_set[t]
        if t > 0:
            rho = p.trait_persistence
            for v in traits.values():
                v *= rho
                v += np.sqrt(1 - rho**2) * rs.standard_normal(N)
        X = _exposures(t, dates, cap, listed, logret, turnover, traits, fu, mv, dv, uni.list_date)
        X_all[k] = X
        g = sa.style_alpha_raw(np.nan_to_num(X))
        design = np.c_[np.ones(N), ind_onehot, np.nan_to_num(X)]
        gr = sa.residualize(g, design, np.sqrt(cap), listed)
        a = p.style_alpha * sa.zscore(gr, listed)
        A_style[k] = a
        n_days = max(int(next_expo[k] - t), 1)
        return np.nan_to_num(X), np.nan_to_num(a) / n_days

    # ---- day 0 (and IPO days): a first bar without a return
    def first_bar(t: int, who: np.ndarray) -> None:
        c = close[who]
        spread = np.abs(rv.normal(0, 0.01, size=len(who)))
        raw_c[t, who] = c
        raw_o[t, who] = c
        raw_h[t, who] = np.round(c * (1 + spread), 2)
        raw_l[t, who] = np.round(c * (1 - spread), 2)
        to = np.exp(liq_base[who]) * (1.0 if t == 0 else 20.0)
        vol[t, who] = np.maximum(np.round(to * shares[who] / 100), 1) * 100
        turnover[t, who] = vol[t, who] / shares[who]
        gap[t, who] = (c - (raw_h[t, who] + raw_l[t, who] + c) / 3) / c

    lst0 = uni.first == 0
    first_bar(0, np.flatnonzero(lst0))
    factor[0], shares_h[0] = np.where(lst0, fac, np.nan), np.where(lst0, shares, np.nan)
    cap = close * shares
    record_quarters(0, cap, lst0)
    X, style_drift = new_month(0, cap, lst0)
    last = uni.last.copy()
    dl = last < T - 1
    penny = np.zeros(N, dtype=np.int64)
    fac_ret = np.zeros((T, 1 + K_IND + K_STY))

    for t in range(1, T):
        active = (uni.first < t) & (t <= last)
        new = uni.first == t
        listed = active | new
        # industry returns: cap-weighted mean zero over the active market (Barra constraint)
        w_ind = np.bincount(uni.industry[active], weights=cap[active], minlength=K_IND)
        f_ind = fi[t] - np.dot(w_ind, fi[t]) / max(w_ind.sum(), 1e-12)
        fac_ret[t] = np.r_[fc[t], f_ind, fs[t]]
        sys_r = fc[t] + f_ind[uni.industry] + X @ fs[t]
        sig = p.specific_vol * np.exp(-0.22 * X[:, 0] + 0.3 * traits["resvol"]) * spec_mult[t]
        sig = np.clip(sig, 0.006, 0.06)
        eps = np.clip(re_.standard_t(p.specific_nu, size=N) / np.sqrt(2.0), -8, 8)
        spec = sig * eps
        delist_drift[:] = 0
        delist_drift[dl & (last - t < 120)] = -0.0015
        drift = style_drift + pv_drift[t] + delist_drift
        # suspensions
        u = rs.random(N)
        susp = active & np.where(susp, u < p.p_stay_suspended, u < p.p_suspend)
        trade = active & ~susp
        # corporate actions (executed on the first trading day >= the scheduled day)
        for who, amt, bonus in sched.get(t, []):
            on = active[who]  # a stock not yet listed (or gone) pays nothing
            pend_div[who[on]] += amt[on]
            pend_bonus[who[on]] = np.maximum(pend_bonus[who[on]], bonus[on])
            pend_flag[who[on]] = True
        act = trade & pend_flag
        pend_bonus = np.where(
            act & (close > p.split_above), np.maximum(pend_bonus, 1.0), pend_bonus
        )
        dps = np.where(act, np.minimum(pend_div / shares, 0.1 * close), 0.0)
        ref = (close - dps) / (1 + np.where(act, pend_bonus, 0.0))
        if act.any():
            div_events.append((dates[t], np.flatnonzero(act), (dps * shares)[act]))
            shares = np.where(act, shares * (1 + pend_bonus), shares)
            fac = np.where(act, fac * close / ref, fac)
            pend_div[act] = 0
            pend_bonus[act] = 0
            pend_flag[act] = False
        # price inside the limit, 0.01 CNY ticks
        lim = np.where(chinext & (dates[t] >= CHINEXT_20PCT_FROM), 0.20, limit)
        up = np.floor(ref * (1 + lim) * 100 + 0.5) / 100
        dn = np.maximum(np.floor(ref * (1 - lim) * 100 + 0.5) / 100, 0.01)
        r_target = sys_r + spec + drift + pending
        c_new = np.clip(np.floor(ref * np.exp(r_target) * 100 + 0.5) / 100, dn, up)
        c_new = np.maximum(c_new, 0.01)
        hit_up = trade & (c_new >= up - 1e-9)
        hit_dn = trade & (c_new <= dn + 1e-9)
        r_real = np.log(c_new / ref)
        pending = np.where(
            trade, np.where(hit_up | hit_dn, p.limit_carry * (r_target - r_real), 0.0), pending
        )
        pending = np.where(susp, pending + sys_r + spec + drift, pending)
        # OHLC
        o_log = 0.35 * r_real + 0.3 * sig * rv.standard_normal(N)
        o_new = np.clip(np.floor(ref * np.exp(o_log) * 100 + 0.5) / 100, dn, up)
        hi = np.maximum(o_new, c_new) * np.exp(np.abs(rv.standard_normal(N)) * 0.5 * sig)
        lo = np.minimum(o_new, c_new) * np.exp(-np.abs(rv.standard_normal(N)) * 0.5 * sig)
        hi = np.clip(np.floor(hi * 100 + 0.5) / 100, np.maximum(o_new, c_new), up)
        lo = np.clip(np.floor(lo * 100 + 0.5) / 100, dn, np.minimum(o_new, c_new))
        locked = (hit_up | hit_dn) & (rv.random(N) < 0.5)
        o_new = np.where(locked, c_new, o_new)
        hi = np.where(locked, c_new, hi)
        lo = np.where(locked, c_new, lo)
        # volume: persistent turnover, AR(1), spikes on big moves; locked days trade little
        vol_ar = 0.92 * vol_ar + 0.22 * rv.standard_normal(N)
        grp_ar = 0.85 * grp_ar + p.group_volume_vol * rv.standard_normal(p.cap_groups)
        news = rv.random(N) < 0.02
        vol_ar = vol_ar + news * rv.normal(0.7, 0.2, size=N)
        z = np.abs(r_real) / sig
        flow = np.where(grp >= 0, grp_ar[np.maximum(grp, 0)], 0.0)
        lt = liq_base + vol_ar + flow + 0.25 * np.minimum(z, 6) + 0.3 * regime[t] - 0.12 * X[:, 0]
        to = np.minimum(np.exp(lt) * np.where(locked, 0.15, 1.0), 0.5)
        v_new = np.maximum(np.round(to * shares / 100), 1) * 100

        close = np.where(trade, c_new, close)
        raw_c[t] = np.where(listed, close, np.nan)
        raw_o[t] = np.where(trade, o_new, raw_c[t])
        raw_h[t] = np.where(trade, hi, raw_c[t])
        raw_l[t] = np.where(trade, lo, raw_c[t])
        vol[t] = np.where(trade, v_new, 0.0)
        turnover[t] = np.where(trade, v_new / shares, np.nan)
        gap[t] = np.where(trade, (c_new - (hi + lo + c_new) / 3) / c_new, np.nan)
        logret[t] = np.where(trade, r_real, np.where(susp, 0.0, np.nan))
        specific[t] = np.where(trade, r_real - sys_r, np.nan)
        susp_h[t] = susp
        if new.any():
            first_bar(t, np.flatnonzero(new))
        factor[t] = np.where(listed, fac, np.nan)
        shares_h[t] = np.where(listed, shares, np.nan)
        cap = close * shares
        grp = sa.cap_groups(np.log(cap), listed, p.cap_groups)
        penny = np.where(trade, np.where(close < 1.0, penny + 1, 0), penny)
        gone = active & (penny >= p.penny_days) & (last > t)
        last[gone] = t  # the 1-yuan delisting rule: today is the last bar
        if t in q_at:
            record_quarters(t, cap, listed)
        # planted (b): today's pv pattern, de-meaned within cap groups, pays over t+1..t+10
        if t >= 20:
            ok = trade & (t - uni.first >= 20)
            pat = sa.pv_pattern(
                logret[t - 19 : t + 1], turnover[t - 19 : t + 1], gap[t - 19 : t + 1], ok
            )
            d = sa.cap_group_demean(pat, np.log(cap), ok, p.cap_groups)
            pv_raw[t] = pat
            a = p.pv_alpha * sa.zscore(d, ok)
            a = np.nan_to_num(a)
            alpha_new[t] = a
            pv_ok[t] = ok
            pv_drift[t + 1 : t + 1 + p.pv_horizon] += a / p.pv_horizon
        if t in expo_set:
            X, style_drift = new_month(t, cap, listed)
        elif new.any():
            X[new] = 0.0  # a new listing has neutral exposures until the next month end
            style_drift[new] = 0.0
        X[~listed] = 0.0
    return Market(
        raw_open=raw_o,
        raw_high=raw_h,
        raw_low=raw_l,
        raw_close=raw_c,
        volume=vol,
        factor=factor,
        shares=shares_h,
        suspended=susp_h,
        logret=logret,
        specific=specific,
        alpha_pv_new=alpha_new,
        alpha_pv_ok=pv_ok,
        pv_raw=pv_raw,
        last=last,
        factor_returns=fac_ret,
        regime=regime,
        expo_idx=expo_idx,
        exposures=X_all,
        alpha_style=A_style,
        mv=mv,
        dv_ttm=dv,
    )


# ------------------------------------------------------------------------------ universes
def rebalance_indices(dates: np.ndarray) -> np.ndarray:
    """Day 0 plus the last trading day of every June and December -> ``int64[R]``."""
    me = month_end_indices(dates)
    mon = dates[me].astype("datetime64[M]").astype(int) % 12 + 1
    return np.unique(np.r_[0, me[(mon == 6) | (mon == 12)]])


def csi_sizes(stocks: int) -> dict[str, int]:
    """CSI 300 / 500 / 1000 sizes scaled by ``min(1, stocks / 3000)`` (at least 1 each)."""
    k = min(1.0, stocks / FULL_MARKET)
    return {name: max(1, round(n * k)) for name, n in CSI_SIZES.items()}


def index_memberships(
    dates: np.ndarray, uni: Universe, cap: np.ndarray, stocks: int, min_age: int = 63
) -> dict[str, list[tuple[int, int, int]]]:
    """Point-in-time spells ``(stock, first index, last index)`` per universe.

    At each rebalance day r (`rebalance_indices`) the eligible stocks (listed at r for at least
    ``min_age`` trading days, or listed before the calendar) are ranked by their mean total cap
    over the last 63 trading days: CSI 300 = the top n300, CSI 500 = the next n500, CSI 800 =
    both, CSI 1000 = the next n1000, CSI All = every eligible stock (sizes from `csi_sizes`). A
    spell runs to the day before the next rebalance, or to the stock's last bar.
    """
    T = len(dates)
    R = rebalance_indices(dates)
    sizes = csi_sizes(stocks)
    n3, n5, n10 = sizes["csi300"], sizes["csi500"], sizes["csi1000"]
    spells: dict[str, list[tuple[int, int, int]]] = {
        k: [] for k in ("csi300", "csi500", "csi800", "csi1000", "all")
    }
    for j, r in enumerate(R):
        end = (R[j + 1] - 1) if j + 1 < len(R) else T - 1
        age_ok = (uni.first == 0) | (r - uni.first >= min_age)
        elig = (uni.first <= r) & (r <= uni.last) & age_ok
        with np.errstate(invalid="ignore"), sa._quiet():
            avg = np.nanmean(cap[max(0, r - 62) : r + 1], axis=0)
        idx = np.flatnonzero(elig & np.isfinite(avg))
        idx = idx[np.lexsort((idx, -avg[idx]))]
        groups = {
            "csi300": idx[:n3],
            "csi500": idx[n3 : n3 + n5],
            "csi800": idx[: n3 + n5],
            "csi1000": idx[n3 + n5 : n3 + n5 + n10],
            "all": idx,
        }
        for name, who in groups.items():
            for i in np.sort(who):
                spells[name].append((int(i), int(r), int(min(end, uni.last[i]))))
    return spells


def spells_mask(spells: list[tuple[int, int, int]], T: int, N: int) -> np.ndarray:
    """``bool[T, N]`` membership from ``(stock, first, last)`` spells."""
    m = np.zeros((T, N), dtype=bool)
    for i, a, b in spells:
        m[a : b + 1, i] = True
    return m


def member_returns(mk: Market) -> dict[str, np.ndarray]:
    """Each stock's open/high/low/close relative to its previous (ex-adjusted) close, minus 1:
    ``{open, high, low, close}`` of ``float64[T, N]`` (0 without a previous close) and ``ok``
    (bool[T, N], a previous close exists)."""
    f = mk.factor
    prev = np.full(f.shape, np.nan)
    prev[1:] = mk.raw_close[:-1] * (f[:-1] / f[1:])
    ok = np.isfinite(prev) & np.isfinite(mk.raw_close)
    out: dict[str, np.ndarray] = {"ok": ok}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in ("open", "high", "low", "close"):
            out[k] = np.where(ok, getattr(mk, f"raw_{k}") / prev - 1, 0.0)
    return out


def index_bars(
    member: np.ndarray,
    rets: dict[str, np.ndarray],
    volume: np.ndarray,
    cap_prev: np.ndarray,
    base: float = 1000.0,
) -> dict[str, np.ndarray]:
    """Cap-weighted index bars ``{open, high, low, close, volume}`` (each ``[T]``).

    ``member`` bool[T, N] membership, ``rets`` from `member_returns`, ``cap_prev`` yesterday's
    caps (CNY). Weights are yesterday's caps of today's members; suspended members count with
    0 return; the level starts at ``base`` on day 0.
    """
    ok = member & rets["ok"] & np.isfinite(cap_prev)
    w = np.where(ok, cap_prev, 0.0)
    ws = w.sum(axis=1)
    den = np.where(ws > 0, ws, 1.0)
    r = {k: np.einsum("tn,tn->t", w, rets[k]) / den for k in ("open", "high", "low", "close")}
    level = base * np.cumprod(1 + r["close"])
    prev_level = np.r_[base, level[:-1]]
    bars = {k: prev_level * (1 + r[k]) for k in ("open", "high", "low")}
    bars["close"] = level
    bars["high"] = np.maximum.reduce([bars["high"], bars["open"], level])
    bars["low"] = np.minimum.reduce([bars["low"], bars["open"], level])
    bars["volume"] = np.where(member, volume, 0).sum(axis=1, dtype=np.float64)
    return bars


# ------------------------------------------------------------------------------ writers
_CSRC = {
    "agriculture": "A01农业", "basic_chemicals": "C26化学原料和化学制品制造业",
    "steel": "C31黑色金属冶炼和压延加工业", "nonferrous_metals": "C32有色金属冶炼和压延加工业",
    "electronics": "C39计算机、通信和其他电子设备制造业", "home_appliances": "C38电气机械和器材制造业",
    "food_beverage": "C15酒、饮料和精制茶制造业", "textiles_apparel": "C18纺织服装、服饰业",
    "light_manufacturing": "C22造纸和纸制品业", "pharma_biotech": "C27医药制造业",
    "utilities": "D44电力、热力生产和供应业", "transportation": "G54道路运输业",
    "real_estate": "K70房地产业", "retail": "F52零售业", "social_services": "L72商务服务业",
    "conglomerates": "S90综合", "building_materials": "C30非金属矿物制品业",
    "construction": "E48土木工程建筑业", "power_equipment": "C38电气机械和器材制造业",
    "defense": "C37铁路、船舶、航空航天和其他运输设备制造业", "computers": "I65软件和信息技术服务业",
    "media": "R86新闻和出版业", "telecom": "I63电信、广播电视和卫星传输服务",
    "banks": "J66货币金融服务", "non_bank_finance": "J67资本市场服务", "autos": "C36汽车制造业",
    "machinery": "C35专用设备制造业", "coal": "B06煤炭开采和洗选业",
    "petrochemicals": "B07石油和天然气开采业", "environmental": "N77生态保护和环境治理业",
    "beauty_care": "C26化学原料和化学制品制造业",
}  # fmt: skip
_NAME_CHARS = "华中国金海东方新泰安宏盛天信达科源通瑞恒兴鑫祥长江南北山川明光立德"
_SUFFIX = ("股份", "科技", "实业", "集团", "控股", "电子", "药业", "能源", "材料", "智能")
_PROVINCES = ("北京", "上海", "广东", "深圳", "浙江", "江苏", "山东", "四川", "湖北", "福建", "安徽", "河南")  # fmt: skip
_OWNERS = ("民营企业", "地方国有企业", "中央企业", "外资", "其他")
_BOARD_CN = {"main": "主板", "chinext": "创业板", "star": "科创板", "bj": "北交所"}
_EXCH = {"SH": "SSE", "SZ": "SZSE", "BJ": "BSE"}


def _tushare(codes: np.ndarray) -> list[str]:
    return [f"{c[2:]}.{c[:2]}" for c in codes]


def _write_industry(root: Path, uni: Universe, cap_last: np.ndarray, T: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 7])
    big = cap_last >= np.nanquantile(cap_last, 0.6)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["股票代码", "股票名称", "地区", "行业", "公司全称", "英文名称", "拼音缩写", "市场类型",
                "交易所代码", "交易货币", "上市状态", "上市日期", "是否沪深港通标的", "实控人名称", "企业性质"])  # fmt: skip
    names = []
    ts_codes = _tushare(uni.codes)
    rows = []
    for i, (c, ts) in enumerate(zip(uni.codes, ts_codes, strict=True)):
        a, b = rng.choice(len(_NAME_CHARS), size=2)
        name = _NAME_CHARS[a] + _NAME_CHARS[b] + _SUFFIX[rng.integers(len(_SUFFIX))]
        names.append(name)
        ex = c[:2]
        hk = ("H" if ex == "SH" else "S") if (big[i] and ex != "BJ") else "N"
        rows.append([
            ts, name, _PROVINCES[rng.integers(len(_PROVINCES))], SW_L1[uni.industry[i]][1],
            f"{name}股份有限公司", f"Synthetic {c} Co., Ltd.", f"SYN{i:04d}",
            _BOARD_CN[uni.board[i]], _EXCH[ex], "CNY", "D" if uni.last[i] < T - 1 else "L",
            f"{uni.list_date[i]} 00:00:00", hk, "合成数据", _OWNERS[rng.integers(len(_OWNERS))],
        ])  # fmt: skip
    w.writerows(sorted(rows))  # Tushare order: 000001.SZ, ..., 600000.SH, ...
    (root / "stock_basic.csv").write_bytes(buf.getvalue().encode("utf-8-sig"))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["updateDate", "code", "code_name", "industry", "industryClassification"])
    for i, c in enumerate(uni.codes):
        key = SW_L1[uni.industry[i]][0]
        w.writerow(
            ["2024-01-02", f"{c[:2].lower()}.{c[2:]}", names[i], _CSRC[key], "证监会行业分类"]
        )
    (root / "csrc_industry.csv").write_text(buf.getvalue(), encoding="utf-8")


def _wide_csv(
    path: Path, periods: np.ndarray, cols: list[str], values: np.ndarray, nd: int
) -> None:
    """Write a Tushare-style wide CSV: first column (empty header) = YYYYMMDD, CRLF lines."""
    v = np.round(values, nd)
    df = pl.from_numpy(v, schema=cols)
    df = df.with_columns(pl.all().fill_nan(None))
    df.insert_column(0, pl.Series("date", [str(p).replace("-", "") for p in periods]))
    text = df.write_csv(line_terminator="\r\n")
    path.write_text("," + text.split(",", 1)[1])


def _write_fundamentals(root: Path, uni: Universe, fu: Fundamentals, mk: Market) -> None:
    ts = _tushare(uni.codes)
    order = np.argsort(ts)
    cols = [ts[i] for i in order]
    pe_end = fu.period_end
    alive = (uni.list_date[None, :] <= pe_end[:, None]) & (
        (uni.last[None, :] >= fu.pidx[:, None]) | (fu.pidx[:, None] < 0)
    )
    market = alive & np.isfinite(mk.mv)  # before the calendar: priced at the day-0 close
    mv = np.where(market, mk.mv, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        fields = {
            "total_mv": (mv / 1e4, 4),
            "pe": (np.where(fu.earn_ttm > 0, mv / fu.earn_ttm, np.nan), 4),
            "pb": (mv / fu.book, 4),
            "ps": (mv / fu.sales_ttm, 4),
            "dv_ratio": (100 * mk.dv_ttm / mv, 4),
            "roe": (np.where(alive, fu.roe_ytd, np.nan), 4),
            "roa": (np.where(alive, fu.roa_ytd, np.nan), 4),
            "debt_to_assets": (np.where(alive, 100 * fu.lev, np.nan), 4),
            "ebit": (np.where(alive, fu.ebit_ytd, np.nan), 2),
        }
    for name, (vals, nd) in fields.items():
        _wide_csv(root / f"{name}.csv", pe_end, cols, vals[:, order], nd)


def _write_prices(root: Path, dates: np.ndarray, uni: Universe, mk: Market, idx: dict) -> None:
    write_calendar(root, dates)
    rows = [(c, str(dates[0]), str(dates[-1])) for c in sorted(idx)]
    rows += [
        (c, str(dates[uni.first[i]]), str(dates[uni.last[i]])) for i, c in enumerate(uni.codes)
    ]
    write_instruments(root, sorted(rows))
    feats = root / "features"
    cols = {
        "open": mk.raw_open, "high": mk.raw_high, "low": mk.raw_low, "close": mk.raw_close,
    }  # fmt: skip
    fT = np.ascontiguousarray(mk.factor.T)
    adjT = {k: np.ascontiguousarray((v.astype(np.float64) * mk.factor).T) for k, v in cols.items()}
    volT = np.ascontiguousarray(mk.volume.T)
    for i, c in enumerate(uni.codes):
        a, b = int(uni.first[i]), int(uni.last[i]) + 1
        series = {k: adjT[k][i, a:b] for k in ("open", "high", "low", "close")}
        series.update(volume=volT[i, a:b], factor=fT[i, a:b])
        _write_bins(feats / c.lower(), a, series)
    for code, bars in idx.items():
        series = {k: bars[k] for k in ("open", "high", "low", "close", "volume")}
        _write_bins(feats / code.lower(), 0, {**series, "factor": np.ones(len(dates))})


def _write_bins(folder: Path, start: int, series: dict[str, np.ndarray]) -> None:
    """Write ``<field>.day.bin`` files into a new ``folder``: the bytes of
    `deepalpha.data.qlib_bin.write_bin` (little-endian float32, element 0 = ``start``) without its
    per-file temp-and-rename, which costs ~1 ms a file; the whole market is renamed at once."""
    folder.mkdir(parents=True)
    for name, values in series.items():
        out = np.empty(len(values) + 1, dtype="<f4")
        out[0] = start
        out[1:] = values
        out.tofile(folder / f"{name}.day.bin")


def _write_membership(root: Path, dates: np.ndarray, uni: Universe, spells: dict) -> None:
    files = {
        "csi300": "csi300",
        "csi500": "csi500",
        "csi800": "csi800",
        "csi1000": "csi1000",
        "all": "csiall",
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, fname in files.items():
        lines = [f"{uni.codes[i]}\t{dates[a]}\t{dates[b]}\n" for i, a, b in spells[name]]
        (root / f"{fname}.txt").write_text("".join(lines))


# ------------------------------------------------------------------------------ truth
def _forward_sum(x: np.ndarray, h: int) -> np.ndarray:
    """``out[t] = sum(x[t+1 : t+1+h])`` with NaN where the window runs past the end or a value
    is NaN. ``x`` is ``[T, N]``."""
    T = x.shape[0]
    c = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(np.nan_to_num(x, nan=0.0), axis=0)])
    bad = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(np.isnan(x), axis=0)])
    out = np.full(x.shape, np.nan)
    if T > h:
        out[: T - h] = c[1 + h :] - c[1 : T - h + 1]
        nb = bad[1 + h :] - bad[1 : T - h + 1]
        out[: T - h][nb > 0] = np.nan
    return out


def pv_expectation(alpha_new: np.ndarray, h: int) -> np.ndarray:
    """Expected log return over ``t+1..t+h`` known at t: ``sum_l alpha_new[t-l] (h-l)/h``."""
    out = np.zeros(alpha_new.shape)
    for l in range(h):
        out[l:] += alpha_new[: alpha_new.shape[0] - l] * ((h - l) / h)
    return out


def _ic_summary(ic: np.ndarray, periods_per_year: float) -> dict:
    ic = ic[np.isfinite(ic)]
    if len(ic) < 2:
        return {"mean": float("nan"), "std": float("nan"), "icir_ann": float("nan"), "n": len(ic)}
    m, s = float(ic.mean()), float(ic.std(ddof=1))
    return {
        "mean": round(m, 4),
        "std": round(s, 4),
        "icir_ann": round(m / s * np.sqrt(periods_per_year), 3) if s > 0 else float("nan"),
        "win_rate": round(float((ic > 0).mean()), 3),
        "n": len(ic),
    }


def oracle_ics(mk: Market, alpha_pv: np.ndarray, p: SynthParams) -> dict:
    """RankICs of the planted signals against what they predict (see ``truth/README.md``)."""
    T = mk.logret.shape[0]
    E = mk.expo_idx
    ends = np.r_[E[1:], T - 1]
    spec = mk.specific.astype(np.float64)
    cs = np.vstack([np.zeros((1, spec.shape[1])), np.cumsum(np.nan_to_num(spec), axis=0)])
    cnt = np.vstack([np.zeros((1, spec.shape[1])), np.cumsum(np.isfinite(spec), axis=0)])
    lr = mk.logret.astype(np.float64)
    cl = np.vstack([np.zeros((1, lr.shape[1])), np.cumsum(np.nan_to_num(lr), axis=0)])
    res, tot = [], []
    for k in range(len(E)):
        a, b = E[k] + 1, ends[k] + 1  # days a..b-1
        if b - a < 5:
            res.append(np.full(spec.shape[1], np.nan))
            tot.append(res[-1])
            continue
        n = cnt[b] - cnt[a]
        res.append(np.where(n >= 0.5 * (b - a), cs[b] - cs[a], np.nan))
        tot.append(np.where(n >= 0.5 * (b - a), cl[b] - cl[a], np.nan))
    A = mk.alpha_style.astype(np.float64)
    h = p.pv_horizon
    fwd = _forward_sum(lr, h)
    adj = mk.raw_close.astype(np.float64) * mk.factor
    label = np.full(adj.shape, np.nan)
    label[: T - h - 1] = adj[1 + h :] / adj[1 : T - h] - 1
    apv = np.where(mk.alpha_pv_ok, alpha_pv, np.nan)
    new = np.where(mk.alpha_pv_ok, mk.alpha_pv_new, np.nan)
    raw = np.where(mk.alpha_pv_ok, mk.pv_raw, np.nan)
    ev = slice(0, T, 5)  # every 5th day is enough for the mean and keeps this fast
    return {
        "style_vs_next_month_residual": _ic_summary(sa.rank_ic(A, np.array(res)), 12),
        "style_vs_next_month_total": _ic_summary(sa.rank_ic(A, np.array(tot)), 12),
        "pv_vs_next_10d_return": _ic_summary(sa.rank_ic(apv[ev], fwd[ev]), 252 / h),
        "pv_vs_label_t1_to_t11": _ic_summary(sa.rank_ic(apv[ev], label[ev]), 252 / h),
        "pv_innovation_vs_label": _ic_summary(sa.rank_ic(new[ev], label[ev]), 252 / h),
        "pv_raw_pattern_vs_label": _ic_summary(sa.rank_ic(raw[ev], label[ev]), 252 / h),
    }


def _long(dates: np.ndarray, codes: np.ndarray, vals: dict, mask: np.ndarray) -> pl.DataFrame:
    ti, ni = np.nonzero(mask)
    cols = {"date": dates[ti], "asset": codes[ni]}
    cols.update({k: v[ti, ni] for k, v in vals.items()})
    return pl.DataFrame(cols).with_columns(pl.col("date").cast(pl.Date))


def _write_truth(
    root: Path,
    dates: np.ndarray,
    uni: Universe,
    mk: Market,
    alpha_pv: np.ndarray,
    meta: dict,
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    codes = uni.codes
    keys = [k for k, _ in SW_L1]
    fr = {"date": dates, "country": mk.factor_returns[:, 0]}
    fr.update({k: mk.factor_returns[:, 1 + j] for j, k in enumerate(keys)})
    fr.update({s: mk.factor_returns[:, 1 + len(keys) + j] for j, s in enumerate(STYLES)})
    pl.DataFrame(fr).with_columns(pl.col("date").cast(pl.Date)).write_parquet(
        root / "factor_returns.parquet"
    )
    pl.DataFrame({"date": dates, "turbulent": mk.regime}).with_columns(
        pl.col("date").cast(pl.Date)
    ).write_parquet(root / "regimes.parquet")
    E = mk.expo_idx
    listed_e = np.isfinite(mk.exposures[:, :, 0])
    ex = {s: mk.exposures[:, :, j] for j, s in enumerate(STYLES)}
    ex["industry"] = np.broadcast_to(np.array(keys)[uni.industry], listed_e.shape)
    df = _long(dates[E], codes, ex, listed_e)
    df.select(["date", "asset", "industry", *STYLES]).write_parquet(root / "exposures.parquet")
    ok = np.isfinite(mk.alpha_style)
    _long(dates[E], codes, {"alpha": mk.alpha_style}, ok).write_parquet(
        root / "alpha_style.parquet"
    )
    _long(dates, codes, {"alpha": alpha_pv.astype(np.float32)}, mk.alpha_pv_ok).write_parquet(
        root / "alpha_pv.parquet"
    )
    adj = mk.raw_close.astype(np.float64) * mk.factor
    ret = np.full(adj.shape, np.nan, np.float32)
    ret[1:] = adj[1:] / adj[:-1] - 1
    np.save(root / "raw_close.npy", mk.raw_close)
    np.save(root / "total_return.npy", ret)
    np.save(root / "specific_return.npy", mk.specific)
    np.save(root / "suspended.npy", mk.suspended)
    np.save(root / "shares.npy", mk.shares.astype(np.float32))
    (root / "assets.txt").write_text("".join(f"{c}\n" for c in codes))
    (root / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    (root / "README.md").write_text(TRUTH_README)


# ------------------------------------------------------------------------------ public API
def build_market(
    stocks: int, start: str, end: str, seed: int, params: SynthParams | None = None
) -> tuple[np.ndarray, Universe, Fundamentals, Market]:
    """Simulate without writing: ``(dates, universe, fundamentals, market)``."""
    p = params or SynthParams()
    if stocks < 30:
        raise ConfigError(f"--stocks must be >= 30, got {stocks}")
    dates = trading_calendar(start, end)
    if len(dates) < 120:
        raise ConfigError(f"calendar {start}..{end} has {len(dates)} trading days; need >= 120")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    uni = make_universe(stocks, dates, p, rng)
    fu = simulate_fundamentals(uni, dates, p, rng)
    mk = simulate_market(uni, fu, dates, p, seed)
    uni = replace(uni, last=mk.last)
    return dates, uni, fu, mk


def write_market(
    out: str | Path,
    *,
    stocks: int = 3000,
    start: str = "2014-01-01",
    end: str = "2023-12-31",
    seed: int = 0,
    params: SynthParams | None = None,
    overwrite: bool = False,
) -> Path:
    """Simulate a market and write it at ``out`` in the CN layout plus ``truth/``.

    Everything is written into a temporary folder next to ``out`` and renamed at the end, so a
    failure leaves nothing half-written. Same arguments -> identical bytes in every file.
    Raises `ConfigError` when ``out`` exists and is not empty (unless ``overwrite``).
    """
    out = Path(out)
    p = params or SynthParams()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ConfigError(f"output folder exists and is not empty: {out} (pass --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        dates, uni, fu, mk = build_market(stocks, start, end, seed, p)
        T, N = mk.raw_close.shape
        cap = mk.raw_close.astype(np.float64) * mk.shares
        spells = index_memberships(dates, uni, cap, stocks)
        cap_prev = np.vstack([np.full((1, N), np.nan), cap[:-1]])
        rets = member_returns(mk)
        idx = {}
        for name, code in INDEX_CODES.items():
            member = spells_mask(spells[name], T, N)
            idx[code] = index_bars(member, rets, mk.volume, cap_prev)
        alpha_pv = pv_expectation(mk.alpha_pv_new.astype(np.float64), p.pv_horizon)
        _write_prices(tmp / "prices", dates, uni, mk, idx)
        _write_membership(tmp / "index_membership", dates, uni, spells)
        (tmp / "fundamentals").mkdir()
        _write_fundamentals(tmp / "fundamentals", uni, fu, mk)
        (tmp / "industry").mkdir()
        _write_industry(tmp / "industry", uni, np.nanmax(cap, axis=0), T, seed)
        listed = np.isfinite(mk.raw_close)
        meta = {
            "generator": "deepalpha.data.synth",
            "stocks": stocks,
            "start": str(dates[0]),
            "end": str(dates[-1]),
            "seed": seed,
            "trading_days": T,
            "params": asdict(p),
            "csi_sizes": csi_sizes(stocks),
            "styles": list(STYLES),
            "industries": [k for k, _ in SW_L1],
            "stats": {
                "listed_stock_days": int(listed.sum()),
                "suspended_share": round(float(mk.suspended.sum() / listed.sum()), 4),
                "turbulent_share": round(float(mk.regime.mean()), 4),
                "ipos_in_sample": int((uni.first > 0).sum()),
                "delisted_in_sample": int((uni.last < T - 1).sum()),
            },
            "oracle_rank_ic": oracle_ics(mk, alpha_pv, p),
        }
        _write_truth(tmp / "truth", dates, uni, mk, alpha_pv, meta)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


TRUTH_README = """# truth/ -- what was planted in this synthetic market

Written by `deepalpha.data.synth.write_market`; parameters and measured oracle RankICs are in
`meta.json`. Dates are the calendar in `../prices/calendars/day.txt`; `assets.txt` lists the
stock codes (canonical `SH600000` form) in the column order of every `.npy` file.

## Return model (daily, log returns)
    r[t, i] = country[t] + industry[t, ind(i)] + sum_s X[m, i, s] * style[t, s]
              + specific[t, i] + style_drift[t, i] + pv_drift[t, i]
* `X[m]` are the exposures stamped at the exposure date m = the last exposure date before t
  (day 0 and every month end): exposures apply to the days *after* their date, up to and
  including the next month end. A stock listed after m has all exposures 0 until the next
  month end.
* Factor returns switch between a calm and a turbulent regime (`regimes.parquet`, 2-state Markov
  chain; factor vol x2, specific vol x1.4 when turbulent). Industry returns satisfy the Barra
  constraint sum_k w_k f_k = 0 with w = yesterday's industry caps (active stocks). The Beta
  factor return contains `beta_loading * (country - mean)`, so a high Beta exposure means a
  high beta to the market. The Size factor has a mean of `-size_premium` a day (small caps earn
  a premium), which keeps the cross-section of log caps from spreading out over a decade.
* Corporate actions: one ex-date a year (mid-June to July) per stock: a cash dividend
  (payout x last year's earnings) and sometimes bonus shares (always 10-for-10 when the raw price
  is above `split_above`); the factor absorbs both. A stock that closes below 1 CNY on
  `penny_days` trading days in a row is delisted (the 1-yuan rule), besides the planned
  delistings.
* Volume = turnover x shares; log turnover = stock level (Liquidity trait, smaller caps trade
  more) + stock AR(1) + a flow common to the stock's log-cap group (AR(1), one of 20 groups)
  + 0.25 |return| / vol (spikes on big moves) + news spikes; limit-locked days trade little.
* Specific returns: Student-t (nu = 4) scaled to unit variance, times a stock volatility
  `specific_vol * exp(-0.22 Size + 0.3 resvol_trait)` (clipped to 0.6 %..6 %).
* Prices: raw closes in 0.01 CNY ticks, clipped at the board's limit (10 % main; ChiNext 10 %,
  20 % from 2020-08-24; STAR 20 %; BJ 30 %); 70 % of a move beyond the limit is carried to the
  next day; about half of the limit days are one-price bars. Suspended days (volume 0) carry
  the price and accumulate the missed return. Realised returns therefore differ from the
  formula on limit, suspension and ex-dividend days; `specific_return.npy` is the *realised*
  residual `log(close/prev close, adjusted) - factor part` (planted drifts included).

## Files
| file | content |
|---|---|
| `factor_returns.parquet` | date, `country`, 31 industry keys (`deepalpha.risk.industries.SW_L1`), 15 styles: the planted daily factor returns (log) |
| `regimes.parquet` | date, `turbulent` (bool) |
| `exposures.parquet` | long: date (exposure date: day 0 and month ends), asset, industry key, 15 standardised styles |
| `alpha_style.parquet` | long: date (exposure date), asset, `alpha` = planted (a): expected residual log return over the days after `date` up to the next month end |
| `alpha_pv.parquet` | long: every trading day, stocks with a defined pattern, `alpha` = planted (b): expected log return over t+1..t+10 known at the close of t |
| `raw_close.npy` | float32[T, N] raw close, CNY (NaN when not listed) |
| `total_return.npy` | float32[T, N] simple total return from the back-adjusted close (0 on suspended days, NaN on a first bar) |
| `specific_return.npy` | float32[T, N] realised residual log return (NaN when suspended or not trading) |
| `suspended.npy` | bool[T, N] |
| `shares.npy` | float32[T, N] total shares (bonus issues raise it) |

## Style exposures (standardised: MAD-winsorised, cap-weighted mean 0, equal-weighted std 1
## over listed stocks; a missing raw value becomes 0)
| style | raw descriptor at exposure date m (only data known at the close of m) |
|---|---|
| Size | log(raw close x total shares) at m (the loader's `mktcap`) |
| MidCap | Size^3 residual on [1, Size] (cap-weighted), re-standardised |
| Beta | latent trait (monthly AR(1), rho 0.985); drives the loading on the market (see above) |
| ResidualVolatility | latent trait; drives specific volatility |
| Liquidity | log mean daily turnover (volume / shares) over the last 21 trading days |
| Momentum | sum of daily log returns over days m-251 .. m-21 (>= 42 days) |
| ShortTermReversal | sum of log returns over the last 21 days (>= 10 days) |
| BookToPrice | 1 / pb at the last period end <= m |
| EarningsYield | TTM earnings / total_mv at the last period end (negative for loss makers, whose `pe` is empty) |
| DividendYield | dv_ratio / 100 at the last period end |
| Growth | log(TTM sales / TTM sales 4 quarters earlier), TTM sales = total_mv x 1e4 / ps |
| Leverage | debt_to_assets of the last *published* report (deadlines Q1 04-30, H1 08-31, Q3 10-31, annual 04-30) |
| Profitability | roe (YTD, %) of the last published report x 4 / quarter number |
| LongTermReversal | minus the sum of log returns over days m-755 .. m-252 (>= 126 days) |
| EarningsVariability | latent trait; scales the quarterly margin noise |

Period ends before the calendar are written too: their market fields (total_mv, pe, pb, ps,
dv_ratio) are priced at the day-0 close (the loader's reference for such period ends), so the
valuation descriptors are observable from the first day.

## Planted alpha
(a) `alpha_style`: g = tanh(1.5 BookToPrice)[Size<0] + 0.6 clip(Momentum x Profitability, +-3)
- 1.5 [Leverage>0.8][Profitability<0] + 0.8 max(EarningsYield,0)[Size>0.5]
- 1.2 [Size<-0.5][BookToPrice<-0.5]; g is residualised on [1, industries, styles]
(WLS, sqrt-cap weights) so it is orthogonal to every risk factor, z-scored, and scaled to a
cross-sectional std of `params.style_alpha`; it is added evenly over the next month's days.

(b) `alpha_pv`: at each close t the pattern p = -z(r5) (1 + 1.5 tanh(2 max(surge, 0)))
+ 0.8 z(surge) - 0.6 z(gap5) with r5 the 5-day log return, surge = log(mean turnover 5 d / mean turnover 20 d),
gap5 the 5-day mean of (close - (high+low+close)/3) / close; then d = p - mean of p within the
stock's group of 20 log-cap quantiles of that date; the innovation a_t = `params.pv_alpha` z(d)
is added evenly over t+1..t+10. `alpha` in the file is the full expectation known at t:
sum_{l=0..9} a_{t-l} (10 - l) / 10.

## Oracle RankICs (`meta.json` -> `oracle_rank_ic`)
Spearman per date; `style_vs_next_month_residual`: alpha_style vs the summed realised residual
(`specific_return`) over the following month (stocks trading at least half of its days);
`pv_vs_next_10d_return`: alpha_pv vs the summed log return over t+1..t+10;
`pv_vs_label_t1_to_t11`: alpha_pv vs the DESIGN label close[t+11]/close[t+1]-1;
`pv_innovation_vs_label`: the same for today's de-meaned pattern alone (what a model that sees
the last 20 days and the cap groups can reach); `pv_raw_pattern_vs_label`: the pattern *before*
the cap-group de-meaning (roughly what a per-stock sequence model without cap information can
reach).
The pv RankICs are measured on every 5th trading day (overlapping 10-day windows). ICIR is
annualised (x sqrt(12) monthly, x sqrt(25.2) for 10-day).

## Index membership
At day 0 and the last trading day of every June and December, eligible stocks (listed >= 63
trading days, or before the calendar) are ranked by mean total cap over the last 63 days:
CSI 300 = top n300, CSI 500 = next n500, CSI 800 = both, CSI 1000 = next n1000, CSI All = every
eligible stock, with n = (300, 500, 1000) x min(1, stocks / 3000) (`meta.json` -> `csi_sizes`).
One spell per member and period, ending the day before the next rebalance or at delisting.
Index bars (SH000300, SH000905, SH000852, SH000906) are cap-weighted member returns (weights =
yesterday's caps), base 1000 on day 0.
"""
