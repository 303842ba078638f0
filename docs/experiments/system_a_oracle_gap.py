"""Experiment: how close System A gets to the synthetic oracle under variants of the planted style
signal (the generator is patched in this process only; nothing in the package changes).

    python docs/experiments/system_a_oracle_gap.py OUT   # the demo's market and System A
    python docs/experiments/system_a_oracle_gap.py OUT --variant v4 --strength 0.5 --seeds 0,1,2

Prints each System A model's RankIC on all stocks as a fraction of the oracle's, the
"ceiling": the exact planted function applied to *our* risk model's exposures (residualised on
them) against our next-month residual label, and how closely each of our styles tracks the
generator's (mean cross-sectional correlation over month ends). ``--strength`` multiplies the package's
`SynthParams.style_alpha`. Session 2 measured the variants here with the old default
(strength 0.016); "v3" at 3x that strength is what the generator now plants ("current", 0.048).
The runs use the demo's System A config, including its ``orthogonalize`` setting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import deepalpha.data.synth_alpha as sa
from deepalpha.data.synth import SynthParams, write_market


def _terms(X: np.ndarray) -> dict[str, np.ndarray]:
    s = {n: X[:, k] for n, k in sa.S.items()}
    return {
        "value_small": np.tanh(1.5 * s["BookToPrice"]) * (s["Size"] < 0),
        "quality_mom": np.clip(s["Momentum"] * s["Profitability"], -3, 3),
        "quality_value": np.clip(s["BookToPrice"] * s["Profitability"], -3, 3),
        "distressed": ((s["Leverage"] > 0.8) & (s["Profitability"] < 0)) * 1.0,
        "cheap_large": np.maximum(s["EarningsYield"], 0) * (s["Size"] > 0.5),
        "crowded_small": ((s["Liquidity"] > 1.0) & (s["Size"] < 0)) * 1.0,
        "expensive_small": ((s["Size"] < -0.5) & (s["BookToPrice"] < -0.5)) * 1.0,
    }


#: planted functions on observable styles (weights per term); "current" = the package's
VARIANTS = {
    "v2": {"value_small": 1.0, "quality_mom": 0.6, "distressed": -1.5, "cheap_large": 0.8,
           "crowded_small": -1.2},
    "v3": {"value_small": 1.0, "quality_mom": 0.6, "distressed": -1.5, "cheap_large": 0.8,
           "expensive_small": -1.2},
    "v4": {"value_small": 1.0, "quality_value": 0.6, "distressed": -1.5, "cheap_large": 0.8,
           "expensive_small": -1.2},
}  # fmt: skip


def planted(variant: str):
    if variant == "current":
        return sa.style_alpha_raw
    w = VARIANTS[variant]

    def f(X: np.ndarray) -> np.ndarray:
        t = _terms(X)
        return sum(c * t[k] for k, c in w.items()).astype(np.float64)

    return f


def ceiling(run: Path, market: Path, f, start: str) -> float:
    from deepalpha.risk.factor_tools import residual_labels
    from deepalpha.risk.model import RiskModel
    from deepalpha.workflows.config import DataSpec
    from deepalpha.workflows.data import load_panel

    rm = RiskModel.load(run / "risk_monthly")
    y = residual_labels(rm, load_panel(market, DataSpec(path=str(market))), "month")
    cols = [rm.style_names.index(s) for s in sa.STYLES]
    ics = []
    for t in np.nonzero(rm.dates >= np.datetime64(start))[0][:-1]:
        X = rm.styles[t][:, cols].astype(float)
        ok = np.isfinite(X).all(1) & np.isfinite(y[t]) & (rm.weights[t] > 0)
        ind = np.eye(rm.n_industries)[rm.industry_ids[t][ok]]
        design = np.c_[np.ones(ok.sum()), ind, X[ok]]
        g = sa.residualize(
            f(X[ok]), design, rm.weights[t][ok].astype(float), np.ones(ok.sum(), bool)
        )
        ics.append(sa.rank_ic(g[None], y[t][ok][None], 10)[0])
    return float(np.nanmean(ics))


def exposure_fidelity(run: Path, market: Path, start: str) -> dict[str, float]:
    """Mean over month ends >= ``start`` of corr(our risk model's style, the generator's)."""
    import polars as pl

    from deepalpha.risk.model import RiskModel

    rm = RiskModel.load(run / "risk_monthly")
    truth = pl.read_parquet(market / "truth" / "exposures.parquet")
    col = {a: j for j, a in enumerate(rm.assets)}
    out: dict[str, list[float]] = {s: [] for s in sa.STYLES}
    for t in np.nonzero(rm.dates >= np.datetime64(start))[0]:
        e = truth.filter(pl.col("date") == rm.dates[t].astype("datetime64[D]").item())
        ours = rm.styles[t][[col[a] for a in e["asset"]]].astype(float)
        ok = np.isfinite(ours).all(1)
        if ok.sum() < 3:
            continue
        for s in sa.STYLES:
            x, y = ours[ok, rm.style_names.index(s)], e[s].to_numpy()[ok]
            if x.std() > 0 and y.std() > 0:
                out[s].append(float(np.corrcoef(x, y)[0, 1]))
    return {s: float(np.mean(v)) for s, v in out.items() if v}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--variant", default="current", choices=["current", *VARIANTS])
    ap.add_argument("--strength", type=float, default=1.0, help="x the default style_alpha")
    ap.add_argument("--start", default="2012-01-01")
    ap.add_argument("--windows", default="36,72")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stocks", type=int, default=400)
    ap.add_argument(
        "--lr", type=float, default=None, help="trainer learning rate (default: config)"
    )
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--wd", type=float, default=None, help="trainer weight decay")
    ap.add_argument(
        "--kw", default="{}", help="JSON kwargs for every model, e.g. '{\"dropout\": 0.3}'"
    )
    a = ap.parse_args()
    f = planted(a.variant)
    sa.style_alpha_raw = f  # the generator looks it up at call time
    market = a.out / "market"
    if not (market / "truth").exists():
        p = SynthParams()
        write_market(market, stocks=a.stocks, start=a.start, end="2021-12-31", seed=7,
                     params=SynthParams(style_alpha=a.strength * p.style_alpha))  # fmt: skip
    from deepalpha.workflows.demo import demo_configs
    from deepalpha.workflows.run import run_config

    cfg = next(c for c in demo_configs(market) if c.name == "demo_barra")
    cfg.rolling.windows = [int(w) for w in a.windows.split(",")]
    cfg.rolling.train.max_epochs = a.epochs
    cfg.rolling.seeds = [int(s) for s in a.seeds.split(",")]
    cfg.rolling.workers = a.workers
    if a.lr is not None:
        cfg.rolling.train.lr = a.lr
    if a.patience is not None:
        cfg.rolling.train.patience = a.patience
    if a.wd is not None:
        cfg.rolling.train.weight_decay = a.wd
    for m in cfg.rolling.models:
        m.kwargs.update(json.loads(a.kw))
    run = a.out / "demo_barra"
    run_config(cfg, run, progress=False)
    m = json.loads((run / "metrics.json").read_text())["models"]
    r = {k: v["summary"]["all"]["rank_ic"] for k, v in m.items()}
    oracle = r.pop("oracle (truth)")
    for k, v in r.items():
        print(f"{k:16s} RankIC {v:.4f}  {v / oracle:.2f} x oracle")
    c = ceiling(run, market, f, "2019-01-01")
    print(f"oracle {oracle:.4f}; planted function on our exposures {c:.4f} ({c / oracle:.2f} x)")
    fid = exposure_fidelity(run, market, "2015-01-01")
    print("corr(our style, generator's), month ends 2015-2021:")
    print("  " + ", ".join(f"{k} {v:.2f}" for k, v in fid.items()))


if __name__ == "__main__":
    main()
