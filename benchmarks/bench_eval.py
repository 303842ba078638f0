"""Benchmark: our IC + RankIC + quantile evaluation vs alphalens-reloaded on the real CN panel.

Factor: 20-day reversal ``-(close[t] / close[t-20] - 1)`` on the forward-filled back-adjusted
close of all 3,199 stocks x 3,401 days. Forward returns the alphalens way
(``ffill().pct_change(h).shift(-h)``, i.e. close t -> close t+h) for h in ``--periods``.

Both sides compute, for every period: per-date Spearman IC, per-date 10-quantile assignment,
per-date mean forward return by quantile. We also compute the per-date Pearson IC (alphalens has
none). Timed: from dense prices to those numbers (alphalens: ``get_clean_factor_and_forward_returns``
+ ``factor_information_coefficient`` + ``mean_return_by_quantile(by_date=True)``; us: forward
returns + masks + `rank_ic_many` + `ic` + `quantile_groups` + `group_mean`). Then checks they agree.

Usage::

    python benchmarks/bench_eval.py [--data ../shared/data/cn] [--al-dates 0] [--periods 1 5 10]
    python benchmarks/bench_eval.py --full-eval     # time evaluate_signal on 4 universes

``--al-dates K`` runs alphalens on the last K dates only and extrapolates its time linearly to
the full panel (say so when quoting the ratio); 0 = full panel.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from deepalpha.evaluate.groups import group_mean, quantile_groups
from deepalpha.evaluate.ic import ic, rank_ic_many

REPO = Path(__file__).resolve().parents[1]


def load_close(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(float32[T, N] close, dates, assets, how)`` from `load_cn` or the raw .bin files."""
    try:
        from deepalpha.data.cn import load_cn

        p = load_cn(path, fields=["close"])
        return p.field("close"), p.dates, p.assets, "deepalpha.data.cn.load_cn"
    except ImportError:
        pass
    from deepalpha.data.codes import is_index_code, normalize_code
    from deepalpha.data.qlib_bin import read_bin, read_calendar, read_instruments

    root = path / "prices"
    dates = read_calendar(root)
    codes = [normalize_code(c) for c, _, _ in read_instruments(root)]
    codes = sorted(c for c in codes if not is_index_code(c))
    close = np.full((len(dates), len(codes)), np.nan, dtype=np.float32)
    for n, c in enumerate(codes):
        s, v = read_bin(root / "features" / c.lower() / "close.day.bin", len(dates), code=c)
        close[s : s + len(v), n] = v
    return close, dates, np.array(codes), "deepalpha.data.qlib_bin"


def ffill(x: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs down the date axis of ``[T, N]`` (leading NaNs stay)."""
    out = np.array(x, copy=True)
    for t in range(1, out.shape[0]):
        row = out[t]
        np.copyto(row, out[t - 1], where=np.isnan(row))
    return out


def ours(close: np.ndarray, periods: list[int], n_groups: int, workers: int = 1) -> dict:
    """Our side, from dense prices; ``out["cpu"]`` holds the CPU seconds of each step."""
    cpu: dict[str, float] = {}
    c = time.process_time()

    def lap(name: str) -> None:
        nonlocal c
        now = time.process_time()
        cpu[name] = cpu.get(name, 0.0) + now - c
        c = now

    p = ffill(close.astype(np.float64))
    T = p.shape[0]
    fac = np.full_like(p, np.nan)
    fac[20:] = -(p[20:] / p[:-20] - 1.0)
    labels = {}
    for h in periods:
        lab = np.full_like(p, np.nan)
        lab[: T - h] = p[h:] / p[: T - h] - 1.0
        labels[h] = lab
    # alphalens keeps a row only when the factor and every forward return are finite
    mask = np.isfinite(fac) & np.isfinite(close)
    for lab in labels.values():
        mask &= np.isfinite(lab)
    lap("factor+forward returns")
    groups = quantile_groups(fac, mask, n_groups, workers=workers)
    lap("quantile_groups")
    out = {"factor": fac, "labels": labels, "mask": mask, "groups": groups, "cpu": cpu}
    ric = rank_ic_many(
        fac, list(labels.values()), mask, workers=workers
    )  # ranks the factor once per date
    lap("rank_ic_many")
    for k, (h, lab) in enumerate(labels.items()):
        out[f"rank_ic_{h}"] = ric[k]
        out[f"ic_{h}"] = ic(fac, lab, mask, workers=workers)
        lap("ic (Pearson)")
        out[f"qmean_{h}"] = group_mean(groups, np.where(mask, lab, np.nan), n_groups)
        lap("group_mean")
    return out


def alphalens_run(close, dates, assets, fac, mask, periods, n_groups, t0_idx):
    import alphalens as al
    import pandas as pd

    idx = pd.DatetimeIndex(dates.astype("datetime64[ns]"))
    # prices from the first evaluated date on: forward returns need only later prices, so a
    # subset run costs alphalens in proportion to its dates and extrapolates linearly
    prices = pd.DataFrame(
        close[t0_idx:].astype(np.float64), index=idx[t0_idx:], columns=list(assets)
    )
    sub = np.zeros_like(mask)
    sub[t0_idx:] = mask[t0_idx:]
    ti, ni = np.nonzero(sub)
    factor = pd.Series(
        fac[ti, ni],
        index=pd.MultiIndex.from_arrays([idx[ti], np.asarray(assets)[ni]], names=["date", "asset"]),
    )
    t, c = time.perf_counter(), time.process_time()
    fd = al.utils.get_clean_factor_and_forward_returns(
        factor,
        prices,
        quantiles=n_groups,
        periods=tuple(periods),
        max_loss=1.0,
        filter_zscore=None,  # its default (20) blanks >20-sigma forward returns: look-ahead
    )
    t_clean = time.perf_counter() - t
    icdf = al.performance.factor_information_coefficient(fd)
    mr, _ = al.performance.mean_return_by_quantile(fd, by_date=True, demeaned=False)
    total = time.perf_counter() - t
    return fd, icdf, mr, total, t_clean, time.process_time() - c


def full_eval(path: Path) -> None:
    """Time `evaluate_signal` on the full panel: 20-day reversal, 10-day label from the t+1
    close, csi300/500/1000/all (each & tradable), 10 groups, decay (1, 5, 10, 20)."""
    from deepalpha.data.cn import load_cn
    from deepalpha.evaluate.ic import forward_returns
    from deepalpha.evaluate.summary import evaluate_signal, format_summary

    p = load_cn(path, fields=["close"])
    c = p.field("close").astype(np.float64)
    T, N = c.shape
    r1 = np.full((T, N), np.nan)
    r1[:-2] = c[2:] / c[1:-1] - 1.0  # label-aligned: position formed at t enters at the t+1 close
    fac = np.full((T, N), np.nan)
    fac[20:] = -(c[20:] / c[:-20] - 1.0)
    h = 10
    lab = forward_returns(r1, h)
    masks = {u: p.mask(u) & p.mask("tradable") for u in ("csi300", "csi500", "csi1000", "all")}
    print(f"load: {os.getloadavg()[0]:.2f}, cpus {os.cpu_count()}")
    t, c0 = time.perf_counter(), time.process_time()
    res = evaluate_signal(
        fac, lab, masks, r1, horizon=h, periods_per_year=252 / h, return_periods_per_year=252
    )
    print(
        f"evaluate_signal, {len(masks)} universes, {N} stocks x {T} days: wall "
        f"{time.perf_counter() - t:.1f}s, CPU {time.process_time() - c0:.1f}s"
    )
    print(format_summary(res, "20-day reversal, 10-day label from the t+1 close"))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("DEEPALPHA_CN_DATA", REPO.parent / "shared" / "data" / "cn")),
    )
    ap.add_argument(
        "--al-dates", type=int, default=0, help="alphalens on the last K dates (0 = all)"
    )
    ap.add_argument("--periods", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="repeats of our side (best taken)")
    ap.add_argument("--workers", type=int, default=2, help="threads for our second timing")
    ap.add_argument(
        "--full-eval",
        action="store_true",
        help="only time evaluate_signal (4 universes, 10-day label, groups, decay) and print it",
    )
    a = ap.parse_args()
    if a.full_eval:
        full_eval(a.data)
        return

    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), cpus {os.cpu_count()}"
    )
    t = time.perf_counter()
    close, dates, assets, how = load_close(a.data)
    print(
        f"panel: {close.shape[1]} stocks x {close.shape[0]} days via {how} in {time.perf_counter() - t:.1f}s"
    )

    times, cpus = [], []
    for _ in range(a.repeat):
        t, c = time.perf_counter(), time.process_time()
        res = ours(close, a.periods, a.groups)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    t_ours, c_ours = min(times), min(cpus)
    mask = res["mask"]
    print(
        f"ours: wall {t_ours:.2f}s, CPU {c_ours:.2f}s (best of {a.repeat}; wall "
        f"{', '.join(f'{x:.2f}' for x in times)}); {int(mask.sum()):,} stock-days, "
        f"periods {a.periods}, {a.groups} groups"
    )

    wall_w = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        ours(close, a.periods, a.groups, workers=a.workers)
        wall_w.append(time.perf_counter() - t)
    t_ours_w = min(wall_w)
    print(f"ours with workers={a.workers}: wall {t_ours_w:.2f}s (best of {a.repeat})")
    print(
        "  ours by step (CPU s, last run): "
        + ", ".join(f"{k} {v:.2f}" for k, v in res["cpu"].items())
    )
    c_same = c_ours - res["cpu"]["ic (Pearson)"]

    T = close.shape[0]
    t0_idx = 0 if a.al_dates <= 0 else max(0, T - a.al_dates)
    fd, icdf, mr, t_al, t_clean, c_al = alphalens_run(
        close, dates, assets, res["factor"], mask, a.periods, a.groups, t0_idx
    )
    n_al_dates = int(mask[t0_idx:].any(axis=1).sum())
    n_all_dates = int(mask.any(axis=1).sum())
    scale = n_all_dates / max(n_al_dates, 1)
    note = (
        ""
        if scale == 1
        else f"; ran {n_al_dates} of {n_all_dates} dates, extrapolated x{scale:.2f}"
    )
    print(
        f"alphalens-reloaded: wall {t_al:.2f}s (get_clean_factor_and_forward_returns "
        f"{t_clean:.2f}s), CPU {c_al:.2f}s{note}"
    )
    print(
        f"full panel, wall: alphalens {t_al * scale:.1f}s  ours {t_ours:.2f}s  "
        f"speed-up {t_al * scale / t_ours:.1f}x"
    )
    print(
        f"full panel, wall, ours with {a.workers} threads: {t_ours_w:.2f}s  speed-up "
        f"{t_al * scale / t_ours_w:.1f}x"
    )
    print(
        f"full panel, CPU:  alphalens {c_al * scale:.1f}s  ours {c_ours:.2f}s  "
        f"speed-up {c_al * scale / c_ours:.1f}x  (CPU time is the fairer figure under load)"
    )
    print(
        f"same work as alphalens (no Pearson IC), CPU: ours {c_same:.2f}s  speed-up "
        f"{c_al * scale / c_same:.1f}x"
    )

    # ---- same numbers?
    import pandas as pd

    didx = pd.DatetimeIndex(dates.astype("datetime64[ns]"))
    ti = didx.get_indexer(fd.index.get_level_values("date"))
    ni = pd.Index(list(assets)).get_indexer(fd.index.get_level_values("asset"))
    q_ours = res["groups"][ti, ni] + 1
    q_al = fd["factor_quantile"].to_numpy()
    keep_dates = np.unique(ti)
    print(f"rows compared: {len(fd):,}; quantile assignments equal: {np.mean(q_ours == q_al):.6%}")
    for h in a.periods:
        col = f"{h}D"
        got = icdf[col].reindex(didx).to_numpy()
        mine = res[f"rank_ic_{h}"]
        ok = np.isfinite(got)
        d_ic = np.max(np.abs(mine[ok] - got[ok]))
        m = mr[col]
        qi = m.index.get_level_values("factor_quantile").to_numpy().astype(int) - 1
        di = didx.get_indexer(m.index.get_level_values("date"))
        d_q = np.max(np.abs(res[f"qmean_{h}"][di, qi] - m.to_numpy()))
        print(
            f"  {col}: RankIC dates {int(ok.sum())}, max |diff| {d_ic:.2e}; mean RankIC ours "
            f"{np.nanmean(mine[keep_dates]):.4f} alphalens {np.nanmean(got):.4f}; "
            f"Pearson IC {np.nanmean(res[f'ic_{h}'][keep_dates]):.4f}; "
            f"quantile mean return max |diff| {d_q:.2e}"
        )
    n_dropped = int(mask.sum()) - len(fd)
    print(
        f"alphalens dropped {n_dropped:,} of our {int(mask.sum()):,} stock-days (dates whose qcut "
        "edges are not unique; we keep those dates with tied values in one group)"
    )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
