"""Static report figures: matplotlib's object API (``Figure`` + Agg canvas, no pyplot state),
small consistent figures (9 in wide, ~90 dpi) returned as PNG bytes by `png`.

Every function takes plain data (numpy arrays, lists of `Line`) and returns a `Figure`; the
oracle (planted signal on synthetic data) is drawn as a black dashed line labelled planted.
Series conventions: ``dates`` is ``datetime64[D][T]``, per-period values are simple returns or
ICs; NaN periods count as 0 in cumulative curves.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.dates as mdates  # also registers the datetime64 converter
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

WIDTH = 9.0  # inches
DPI = 100
FS = 8  # base font size
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#aec7e8", "#ff9896", "#98df8a", "#ffbb78", "#c5b0d5", "#c49c94",
)  # fmt: skip
ORACLE_COLOR = "#111111"
POS, NEG = "#3b75af", "#c8553d"


@dataclass
class Line:
    """One labelled series to draw (``oracle`` lines are dashed black: the planted signal)."""

    label: str
    dates: np.ndarray
    values: np.ndarray
    oracle: bool = False
    color: str | None = None


# ------------------------------------------------------------------------------ helpers
def png(fig: Figure, dpi: int = DPI, palette: bool = True) -> bytes:
    """Render ``fig`` to PNG bytes (Agg canvas; no software/URL metadata in the file).

    With ``palette`` the image is reduced to 256 colours (median cut, no dithering): plots have
    few colours, and the file is about 3x smaller with no visible change."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, facecolor="white")
    if not palette:
        return buf.getvalue()
    from PIL import Image

    buf.seek(0)
    im = Image.open(buf).convert("RGB")
    q = im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    q.save(out, format="PNG", optimize=True)
    return out.getvalue()


def new_figure(height: float, width: float = WIDTH) -> Figure:
    """A white figure with constrained layout."""
    return Figure(figsize=(width, height), layout="constrained", facecolor="white")


def style(ax: Axes, title: str | None = None, ylabel: str | None = None) -> Axes:
    """The report's axes look: light grid, no top/right spines, small fonts."""
    ax.grid(True, color="#e3e3e3", linewidth=0.6)
    ax.set_axisbelow(True)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    ax.tick_params(labelsize=FS - 1, length=3)
    if title:
        ax.set_title(title, fontsize=FS + 1, loc="left", fontweight="bold")
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=FS)
    return ax


def date_axis(ax: Axes) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def legend(ax: Axes, n: int | None = None, outside: bool = False) -> None:
    """A small legend (outside on the right when ``outside``); none without labelled artists."""
    if not ax.get_legend_handles_labels()[0]:
        return
    kw = {"fontsize": FS - 1, "frameon": False, "handlelength": 1.6}
    if outside:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), **kw)
    else:
        ax.legend(ncol=1 if (n or 0) <= 4 else 2, **kw)


def no_data(ax: Axes, text: str = "not available for this run") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=FS, color="#888",
            transform=ax.transAxes)  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])


def colors(lines: Sequence[Line]) -> list[Line]:
    """Give every line without a colour one from the palette (oracle: black)."""
    out, i = [], 0
    for ln in lines:
        if ln.color is None:
            if ln.oracle:
                ln = Line(ln.label, ln.dates, ln.values, True, ORACLE_COLOR)
            else:
                ln = Line(ln.label, ln.dates, ln.values, False, PALETTE[i % len(PALETTE)])
                i += 1
        out.append(ln)
    return out


def cum_sum(x: np.ndarray) -> np.ndarray:
    return np.cumsum(np.where(np.isfinite(x), x, 0.0))


def nav(r: np.ndarray) -> np.ndarray:
    """Compounded NAV (starts at 1 + r[0]) of per-period returns; NaN periods flat."""
    return np.cumprod(1.0 + np.where(np.isfinite(r), r, 0.0))


def drawdown(nav_: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(np.maximum(nav_, 1e-12))
    return nav_ / peak - 1.0


def monthly_mean(dates: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calendar-month means of a per-date series (dates = first day of each month)."""
    m = np.asarray(dates, "datetime64[M]")
    months, inv = np.unique(m, return_inverse=True)
    ok = np.isfinite(x)
    s = np.bincount(inv, np.where(ok, x, 0.0), len(months))
    n = np.bincount(inv, ok.astype(float), len(months))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return months.astype("datetime64[D]"), mean


def rolling_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Trailing mean over the last ``k`` finite values in each window (NaN when none)."""
    ok = np.isfinite(x)
    s = np.cumsum(np.where(ok, x, 0.0))
    n = np.cumsum(ok.astype(float))
    s[k:] = s[k:] - s[:-k].copy()
    n[k:] = n[k:] - n[:-k].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _plot(ax: Axes, ln: Line, y: np.ndarray, lw: float = 1.2) -> None:
    ax.plot(ln.dates, y, label=ln.label + (" (planted)" if ln.oracle else ""), color=ln.color,
            linestyle="--" if ln.oracle else "-", linewidth=lw)  # fmt: skip


def _pct_axis(ax: Axes, decimals: int = 0) -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


# ------------------------------------------------------------------------------ per model
def model_detail(
    *,
    ic: tuple[np.ndarray, np.ndarray] | None,
    rank_ic: tuple[np.ndarray, np.ndarray] | None,
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
    long_short: tuple[np.ndarray, np.ndarray] | None,
    decay: Mapping[str, float] | None,
    turnover: Sequence[float] | None,
    monthly: bool,
    group_annual: Sequence[float | None] | None = None,
    oracle: bool = False,
) -> Figure:
    """One signal in one universe: cumulative IC and RankIC, monthly IC bars, quantile-group
    NAVs, long-short NAV with its drawdown, IC decay (when computed), annual return and
    turnover per group."""
    fig = new_figure(7.6)
    gs = fig.add_gridspec(3, 2)
    a = style(fig.add_subplot(gs[0, 0]), "Cumulative IC and RankIC", "sum of per-period IC")
    if ic is None and rank_ic is None:
        no_data(a)
    for name, s, c in (("IC", ic, PALETTE[0]), ("RankIC", rank_ic, PALETTE[1])):
        if s is not None:
            a.plot(s[0], cum_sum(s[1]), color=c, linewidth=1.2, label=name)
    a.axhline(0, color="#999", linewidth=0.6)
    date_axis(a)
    legend(a)

    b = style(fig.add_subplot(gs[0, 1]),
              "Monthly RankIC" if monthly else "RankIC, monthly mean of daily values")  # fmt: skip
    src = rank_ic or ic
    if src is None:
        no_data(b)
    else:
        d, v = src if monthly else monthly_mean(*src)
        v0 = np.where(np.isfinite(v), v, 0.0)
        b.bar(d, v0, width=20, color=np.where(v0 >= 0, POS, NEG), linewidth=0)
        if len(v) >= 6:
            k = 6 if len(v) < 36 else 12
            roll = np.convolve(v0, np.ones(k) / k, mode="full")[: len(v0)]
            roll[: k - 1] = np.nan
            b.plot(d, roll, color="#333", linewidth=1.0, label=f"{k}-month mean")
            legend(b)
        b.axhline(0, color="#999", linewidth=0.6)
        date_axis(b)

    c = style(fig.add_subplot(gs[1, 0]), "Quantile-group NAV (equal weight)", "NAV")
    if not groups:
        no_data(c)
    cmap = matplotlib.colormaps["viridis"]
    G = len(groups)
    for g, (d, r) in enumerate(groups):
        lab = f"G{g + 1}" + (" (bottom)" if g == 0 else " (top)" if g == G - 1 else "")
        c.plot(d, nav(r), color=cmap(g / max(G - 1, 1)), linewidth=1.6 if g in (0, G - 1) else 0.9,
               label=lab if g in (0, G - 1) or G <= 5 else None)  # fmt: skip
    if groups:
        date_axis(c)
        legend(c)

    sub = gs[1, 1].subgridspec(2, 1, height_ratios=[2, 1], hspace=0.05)
    e1 = style(fig.add_subplot(sub[0]), "Long-short (top − bottom) NAV and drawdown", "NAV")
    e2 = style(fig.add_subplot(sub[1], sharex=e1), None, "drawdown")
    if long_short is None:
        no_data(e1)
        no_data(e2)
    else:
        n_ = nav(long_short[1])
        col = ORACLE_COLOR if oracle else PALETTE[0]
        e1.plot(long_short[0], n_, color=col, linewidth=1.2)
        e1.axhline(1, color="#999", linewidth=0.6)
        e1.tick_params(labelbottom=False)
        dd = drawdown(n_)
        e2.fill_between(long_short[0], dd, 0, color=NEG, alpha=0.35, linewidth=0)
        e2.plot(long_short[0], dd, color=NEG, linewidth=0.8)
        _pct_axis(e2)
        date_axis(e2)

    hs = sorted(((int(h), v) for h, v in (decay or {}).items() if v is not None),
                key=lambda t: t[0])  # fmt: skip
    bottom = gs[2, :].subgridspec(1, 3 if hs else 2, wspace=0.08)
    if hs:
        f = style(fig.add_subplot(bottom[0]), "IC decay by horizon", "IC")
        x = np.arange(len(hs))
        vals = [v for _, v in hs]
        f.bar(x, vals, color=[POS if v >= 0 else NEG for v in vals], width=0.6)
        f.set_xticks(x, [f"{h}" for h, _ in hs])
        f.set_xlabel(f"horizon ({'months' if monthly else 'days'})", fontsize=FS)
        f.axhline(0, color="#999", linewidth=0.6)

    ga = style(fig.add_subplot(bottom[-2]), "Annual return by group", None)
    ar = [np.nan if v is None else float(v) for v in (group_annual or [])]
    if not ar or not np.isfinite(ar).any():
        no_data(ga)
    else:
        x = np.arange(1, len(ar) + 1)
        ga.bar(x, ar, color=[POS if v >= 0 else NEG for v in np.nan_to_num(ar)], width=0.7)
        ga.set_xticks(x, [f"G{i}" for i in x])
        ga.axhline(0, color="#999", linewidth=0.6)
        _pct_axis(ga)

    t = style(fig.add_subplot(bottom[-1]), "Turnover per rebalance", "one-sided")
    tv = [np.nan if v is None else float(v) for v in (turnover or [])]
    if not tv or not np.isfinite(tv).any():
        no_data(t)
    else:
        x = np.arange(1, len(tv) + 1)
        t.bar(x, tv, color=[cmap(i / max(len(tv) - 1, 1)) for i in range(len(tv))], width=0.7)
        t.set_xticks(x, [f"G{i}" for i in x])
        _pct_axis(t)
    return fig


# ------------------------------------------------------------------------------ overlays
def overlay(
    rank_ic: Sequence[Line],
    long_short: Sequence[Line],
    top: Sequence[Line],
    group_returns: Mapping[str, Sequence[float]],
    title: str = "",
    ric_ylabel: str = "sum of per-period RankIC",
) -> Figure:
    """Models overlaid: cumulative RankIC, long-short NAV, top-group NAV, annual return by
    group (the monotonicity profile). Lines with the same label share a colour."""
    fig = new_figure(6.4)
    axs = fig.subplots(2, 2)
    labels = list(dict.fromkeys([ln.label for ln in (*rank_ic, *long_short, *top)]))
    oracle = {ln.label for ln in (*rank_ic, *long_short, *top) if ln.oracle}
    cmap = {ln.label: ln.color for ln in colors([Line(lab, np.array([]), np.array([]),
                                                      lab in oracle) for lab in labels])}  # fmt: skip

    def draw(ax: Axes, lines: Sequence[Line], transform, ttl: str, ylab: str) -> None:
        style(ax, ttl, ylab)
        if not lines:
            no_data(ax)
            return
        for ln in lines:
            ln = Line(ln.label, ln.dates, ln.values, ln.oracle, cmap[ln.label])
            _plot(ax, ln, transform(ln.values))
        date_axis(ax)

    draw(axs[0, 0], rank_ic, cum_sum, "Cumulative RankIC", ric_ylabel)
    axs[0, 0].axhline(0, color="#999", linewidth=0.6)
    draw(axs[0, 1], long_short, nav, "Long-short NAV (top − bottom)", "NAV")
    draw(axs[1, 0], top, nav, "Top-group NAV", "NAV")
    g = style(axs[1, 1], "Annual return by quantile group", None)
    if not group_returns:
        no_data(g)
    for lab, ar in group_returns.items():
        y = np.array([np.nan if v is None else v for v in ar], dtype=float)
        g.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=3, color=cmap.get(lab),
               linestyle="--" if lab in oracle else "-", linewidth=1.1)  # fmt: skip
    if group_returns:
        g.set_xlabel("group (1 = bottom)", fontsize=FS)
        _pct_axis(g)
    handles, labs = axs[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labs, loc="outside lower center", ncol=min(len(labs), 4),
                   fontsize=FS, frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=FS + 2, x=0.01, ha="left")
    return fig


def pure_factor(lines: Sequence[Line], stats: Mapping[str, Mapping[str, float | None]]) -> Figure:
    """Cumulative (compounded) pure factor return per model, and its t-stats (plain and NW)."""
    fig = new_figure(3.4)
    a, b = fig.subplots(1, 2, width_ratios=[1.7, 1])
    style(a, "Pure factor return, cumulative", None)
    lines = colors(lines)
    for ln in lines:
        _plot(a, ln, nav(ln.values) - 1.0)
    if lines:
        _pct_axis(a)
        date_axis(a)
        a.axhline(0, color="#999", linewidth=0.6)
        legend(a, len(lines))
    else:
        no_data(a)
    style(b, "t-stat of the mean pure factor return", None)
    names = [ln.label for ln in lines if ln.label in stats]
    if names:
        y = np.arange(len(names))
        t = [stats[n].get("t_stat") for n in names]
        tnw = [stats[n].get("t_nw") for n in names]
        b.barh(y - 0.18, [np.nan if v is None else v for v in t], height=0.36, color=POS,
               label="t")  # fmt: skip
        b.barh(y + 0.18, [np.nan if v is None else v for v in tnw], height=0.36, color="#9ab8d6",
               label="t (Newey-West)")  # fmt: skip
        b.set_yticks(y, names)
        b.invert_yaxis()
        for v in (-2, 2):
            b.axvline(v, color=NEG, linewidth=0.8, linestyle=":")
        b.axvline(0, color="#999", linewidth=0.6)
        legend(b)
    else:
        no_data(b)
    return fig


def amax_gain(curves: Mapping[str, Sequence[np.ndarray]]) -> Figure:
    """Amax gain of the composite residual mapping per epoch (median and range over jobs),
    one line per model (HC vs mHC): mHC's doubly-stochastic maps keep it near 1."""
    fig = new_figure(3.2)
    ax = style(fig.add_subplot(), "Amax gain over training (median and range over jobs)",
               "Amax gain")  # fmt: skip
    for i, (model, cs) in enumerate(curves.items()):
        L = max(len(c) for c in cs)
        m = np.full((len(cs), L), np.nan)
        for j, c in enumerate(cs):
            m[j, : len(c)] = c
        x = np.arange(1, L + 1)
        col = PALETTE[i % len(PALETTE)]
        with np.errstate(all="ignore"):
            ax.fill_between(x, np.nanmin(m, 0), np.nanmax(m, 0), color=col, alpha=0.18,
                            linewidth=0)  # fmt: skip
            ax.plot(x, np.nanmedian(m, 0), color=col, marker="o", markersize=3, linewidth=1.3,
                    label=f"{model} ({len(cs)} jobs)")  # fmt: skip
    ax.axhline(1, color="#999", linewidth=0.6)
    ax.set_xlabel("epoch", fontsize=FS)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    vals = np.concatenate([np.asarray(c, float) for cs in curves.values() for c in cs] or [[1.0]])
    fin = vals[np.isfinite(vals) & (vals > 0)]
    if fin.size and fin.max() / max(fin.min(), 1e-12) > 20:
        ax.set_yscale("log")
    legend(ax)
    return fig


# ------------------------------------------------------------------------------ risk model
def risk_model(
    dates: np.ndarray, r2: np.ndarray, style_names: Sequence[str], style_returns: np.ndarray,
    freq: str,
) -> Figure:  # fmt: skip
    """R² of the cross-sectional regressions over time, and cumulative (compounded) style
    factor returns."""
    fig = new_figure(6.6)
    a, b = fig.subplots(2, 1, height_ratios=[1, 1.7])
    style(a, f"Risk model ({freq}): cross-sectional R²", "R²")
    a.plot(dates, r2, color="#9ab8d6", linewidth=0.8, label="per period")
    k = 12 if freq == "monthly" else 63
    if len(r2) > k:
        roll = rolling_mean(r2, k)
        a.plot(dates, roll, color=PALETTE[0], linewidth=1.4,
               label=f"{k}-{'month' if freq == 'monthly' else 'day'} mean")  # fmt: skip
    _pct_axis(a)
    date_axis(a)
    legend(a)
    style(b, "Style factor returns, cumulative", None)
    for j, name in enumerate(style_names):
        b.plot(dates, nav(style_returns[:, j]) - 1.0, color=PALETTE[j % len(PALETTE)],
               linewidth=1.1, linestyle="-" if j < 10 else "--", label=name)  # fmt: skip
    b.axhline(0, color="#999", linewidth=0.6)
    _pct_axis(b)
    date_axis(b)
    legend(b, outside=True)
    return fig


def risk_r2_overlay(lines: Sequence[Line]) -> Figure:
    """R² over time of several runs' risk models."""
    fig = new_figure(2.8)
    ax = style(fig.add_subplot(), "Risk model R² over time", "R²")
    for ln in colors(lines):
        _plot(ax, ln, ln.values, lw=1.0)
    _pct_axis(ax)
    date_axis(ax)
    legend(ax, len(lines))
    return fig


# ------------------------------------------------------------------------------ portfolio
def portfolio(
    dates: np.ndarray,
    nav_: np.ndarray,
    bench: np.ndarray,
    excess: np.ndarray,
    proxy: np.ndarray | None = None,
    index: str = "index",
    price: np.ndarray | None = None,
) -> Figure:
    """Index enhancement: NAV vs the index (``bench``; also the member ``proxy`` and the
    ``price`` index without dividends when given), excess NAV, drawdown of the excess NAV.
    Every series is ``float[T]`` on ``dates``."""
    fig = new_figure(6.0)
    a, b, c = fig.subplots(3, 1, sharex=True, height_ratios=[1.5, 1, 0.8])
    style(a, f"NAV vs {index}", "NAV")
    a.plot(dates, nav_, color=PALETTE[0], linewidth=1.3, label="portfolio")
    a.plot(dates, bench, color="#555", linewidth=1.1, label=index)
    if proxy is not None and np.isfinite(proxy).any():
        a.plot(dates, proxy, color="#999", linewidth=0.9, linestyle=":", label="member proxy")
    if price is not None and np.isfinite(price).any():
        a.plot(dates, price, color="#777", linewidth=0.9, linestyle="--", label="price index")
    legend(a)
    style(b, "Excess NAV (portfolio / index)", "excess NAV")
    b.plot(dates, excess, color=PALETTE[2], linewidth=1.3)
    b.axhline(1, color="#999", linewidth=0.6)
    style(c, "Drawdown of the excess NAV", None)
    dd = drawdown(np.asarray(excess, float))
    c.fill_between(dates, dd, 0, color=NEG, alpha=0.35, linewidth=0)
    c.plot(dates, dd, color=NEG, linewidth=0.8)
    _pct_axis(c)
    date_axis(c)
    for ax in (a, b):
        ax.tick_params(labelbottom=False)
    return fig


def excess_overlay(lines: Sequence[Line]) -> Figure:
    """Excess NAVs of several portfolios."""
    fig = new_figure(3.0)
    ax = style(fig.add_subplot(), "Excess NAV (portfolio / index)", "excess NAV")
    for ln in colors(lines):
        _plot(ax, ln, ln.values)
    ax.axhline(1, color="#999", linewidth=0.6)
    date_axis(ax)
    legend(ax, len(lines))
    return fig
