"""End to end on the synthetic market: load_cn -> sequence dataset -> registry model -> trainer.

The planted price-volume signal (``truth/alpha_pv.parquet``) gives the oracle RankIC against our
label (10-day forward return from the t+1 close); a small model trained for a few epochs must
reach more than half of it on the validation dates.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from deepalpha.train.datasets import SequenceDataset
from deepalpha.train.trainer import TrainConfig, evaluate, fit, make_model, rank_ic

FIELDS = ["open", "high", "low", "close", "volume", "vwap", "mktcap"]


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    synth = pytest.importorskip("deepalpha.data.synth")
    from deepalpha.data.cn import load_cn

    root = tmp_path_factory.mktemp("synth") / "market"
    synth.write_market(root, stocks=400, start="2019-01-01", end="2020-06-30", seed=3)
    panel = load_cn(root, fields=FIELDS, cache=False)
    truth = pl.read_parquet(root / "truth" / "alpha_pv.parquet")
    alpha = np.full(panel.field("close").shape, np.nan)
    ti = np.searchsorted(panel.dates, truth["date"].to_numpy().astype("datetime64[D]"))
    pos = {a: i for i, a in enumerate(panel.assets.tolist())}
    ni = np.array([pos.get(a, -1) for a in truth["asset"].to_list()])
    ok = (ni >= 0) & (ti < len(panel.dates))
    alpha[ti[ok], ni[ok]] = truth["alpha"].to_numpy()[ok]
    return panel, alpha


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gru", "decompgrn"])
def test_registry_model_learns_half_the_oracle(market, name):
    pytest.importorskip("deepalpha.models.registry")
    from deepalpha.models.registry import model_kind

    assert model_kind(name) == "sequence"
    panel, alpha = market
    ds = SequenceDataset(panel, window=20, horizon=10)
    sd = ds.sample_dates()
    sd = sd[ds.label_known[sd] < len(ds.dates)]
    n_val = int(0.35 * len(sd))
    train, valid = sd[: -n_val - 11], sd[-n_val:]  # purge: train labels end before validation
    oracle = np.nanmean(
        [rank_ic(alpha[t, b.idx], b.y.numpy()) for t in valid if (b := ds.batch(int(t)))]
    )
    assert oracle > 0.02, f"the planted signal is too weak to test against ({oracle:.3f})"
    model = make_model(name, ds.n_features, seed=0, hidden=16)
    before = evaluate(model, ds, valid)["rank_ic"]
    cfg = TrainConfig(max_epochs=4, patience=2, lr=3e-3, progress=False, seed=0, num_threads=1)
    res = fit(model, ds, train[::2], valid[::2], cfg)  # a small budget: every 2nd date
    assert res.best_rank_ic > 0.5 * oracle, (name, res.best_rank_ic, oracle, before)
