"""Shared helpers for the training tests: a tiny market with a planted price-volume signal.

Also runnable as a script (``python tests/test_train_helpers.py RUN_DIR``): runs the small rolling
study of `small_rolling_config` with the local executor; the resume test kills it with SIGKILL.
"""

from __future__ import annotations

import sys

import numpy as np

from deepalpha.data.panel import Panel

FIELDS = ("open", "high", "low", "close", "volume", "mktcap")


def make_panel(T: int = 260, N: int = 60, seed: int = 0, k: float = 0.6) -> Panel:
    """Daily log prices that revert to their 20-day mean: ``E[r_{t+1}] = k/10 * (ma20_t - p_t)``.

    The oracle score at ``t`` is ``ma20_t - p_t`` (`oracle_score`), visible in the price window.
    About 3 % of stock-days are untradable; caps are lognormal with a few missing.
    """
    rng = np.random.default_rng(seed)
    logp = np.zeros((T, N))
    logp[0] = rng.normal(3, 0.5, N)
    for t in range(1, T):
        ma = logp[max(0, t - 20) : t].mean(0)
        logp[t] = logp[t - 1] + k * (ma - logp[t - 1]) / 10 + rng.normal(0, 0.02, N)
    close = np.exp(logp)
    open_ = close * np.exp(rng.normal(0, 0.005, (T, N)))
    high = np.maximum(close, open_) * (1 + rng.uniform(0, 0.01, (T, N)))
    low = np.minimum(close, open_) * (1 - rng.uniform(0, 0.01, (T, N)))
    volume = np.exp(rng.normal(10, 1, (T, N)))
    cap = close * np.exp(rng.normal(5, 1, N))
    cap[:, :2] = np.nan
    data = np.stack([open_, high, low, close, volume, cap]).astype(np.float32)
    dates = np.datetime64("2020-01-01") + np.arange(T)
    assets = np.array([f"SH{600000 + i}" for i in range(N)])
    tradable = rng.random((T, N)) > 0.03
    masks = {"tradable": tradable, "all": np.ones((T, N), dtype=bool)}
    return Panel(data, dates.astype("datetime64[D]"), assets, FIELDS, masks)


def oracle_score(panel: Panel) -> np.ndarray:
    """``ma20_t - log p_t``: float[T, N] (NaN for the first 20 days)."""
    logp = np.log(panel.field("close").astype(np.float64))
    out = np.full(logp.shape, np.nan)
    for t in range(20, logp.shape[0]):
        out[t] = logp[t - 19 : t + 1].mean(0) - logp[t]
    return out


def small_rolling_config(executor: str = "local", **kw):
    from deepalpha.train.rolling import ModelSpec, RollingConfig

    base = dict(
        models=[ModelSpec(name="linear")],
        windows=[3],
        window_unit="months",
        frequency="monthly",
        start="2020-05-01",
        end="2020-08-20",
        dataset=dict(length=10, horizon=3),
        train=dict(max_epochs=4, patience=10, lr=1e-2, progress=False),
        executor=executor,
        workers=2,
    )
    base.update(kw)
    return RollingConfig(**base)


if __name__ == "__main__":
    from deepalpha.train.rolling import run_rolling

    run_rolling(make_panel(), small_rolling_config(), sys.argv[1], progress=False)
