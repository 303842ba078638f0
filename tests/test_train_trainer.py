"""Trainer: learns a planted signal, early stopping restores the best weights, CPU runs are bitwise
repeatable and leave the global RNG alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_train_helpers import make_panel, oracle_score
from torch import nn

from deepalpha.errors import ConfigError
from deepalpha.train.datasets import SequenceDataset, TabularDataset
from deepalpha.train.trainer import (
    TrainConfig,
    evaluate,
    fit,
    make_model,
    predict,
    rank_ic,
    resolve_device,
)


@pytest.fixture(scope="module")
def seq_ds():
    return SequenceDataset(make_panel(T=240, N=80), window=20, horizon=5)


def _split(ds):
    sd = ds.sample_dates()
    return sd[:150], sd[160:215]


def test_learns_planted_signal(seq_ds, tmp_path):
    train, valid = _split(seq_ds)
    oracle = oracle_score(seq_ds.panel)
    oracle_ric = np.nanmean(
        [rank_ic(oracle[t, b.idx], b.y.numpy()) for t in valid if (b := seq_ds.batch(t))]
    )
    assert oracle_ric > 0.1
    model = make_model("linear", seq_ds.n_features, seed=0)
    before = evaluate(model, seq_ds, valid)["rank_ic"]
    cfg = TrainConfig(max_epochs=8, patience=3, lr=1e-2, progress=False)
    res = fit(model, seq_ds, train, valid, cfg, log_path=tmp_path / "log.jsonl")
    assert res.best_rank_ic > 0.5 * oracle_ric, (res.best_rank_ic, oracle_ric)
    assert res.best_rank_ic > before + 0.05
    # best weights restored: evaluating now reproduces the best epoch's validation RankIC
    after = evaluate(model, seq_ds, valid)
    best = res.history[res.best_epoch - 1]
    assert after["rank_ic"] == pytest.approx(best["valid_rank_ic"], abs=1e-9)
    assert res.best_rank_ic == max(h["valid_rank_ic"] for h in res.history)
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, res.epochs + 1))
    assert {"train_loss", "valid_rank_ic", "valid_ic", "seconds", "best_epoch"} <= set(lines[0])


def test_early_stopping_stops_after_patience(seq_ds):
    train, valid = _split(seq_ds)
    model = make_model("linear", seq_ds.n_features, seed=1)
    # lr 0: the validation RankIC never improves after epoch 1
    res = fit(
        model,
        seq_ds,
        train[:20],
        valid,
        TrainConfig(lr=1e-12, max_epochs=20, patience=2, progress=False),
    )
    assert res.epochs <= 1 + 2 + 1 and res.best_epoch <= 2


def test_cpu_runs_are_bitwise_repeatable_and_isolated(seq_ds):
    train, valid = _split(seq_ds)
    cfg = TrainConfig(max_epochs=3, lr=1e-2, seed=7, progress=False)

    def run(seed):
        m = make_model("linear", seq_ds.n_features, seed=seed)
        fit(m, seq_ds, train[:60], valid[:20], cfg.model_copy(update={"seed": seed}))
        return m, predict(m, seq_ds, valid[:5])[2]

    torch.manual_seed(123)
    state = torch.get_rng_state()
    m1, p1 = run(7)
    assert torch.equal(torch.get_rng_state(), state), "fit leaked into the global RNG"
    torch.manual_seed(999)  # global state must not matter
    m2, p2 = run(7)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert p1.tobytes() == p2.tobytes()
    _, p3 = run(8)
    assert p3.tobytes() != p1.tobytes()


class _GroupProbe(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.lin = nn.Linear(n_features, 1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x, group_ids=None):
        self.seen.append(group_ids)
        return self.lin(x[:, -1]).squeeze(-1)


def test_group_ids_reach_the_model_and_predict_covers_batches(seq_ds):
    m = _GroupProbe(seq_ds.n_features)
    t, idx, score = predict(m, seq_ds, np.array([30, 31]), device="cpu")
    b = seq_ds.batch(30)
    assert torch.equal(m.seen[0], b.group_ids)
    assert len(t) == len(seq_ds.batch(30).idx) + len(seq_ds.batch(31).idx)
    np.testing.assert_array_equal(idx[t == 30], b.idx)
    assert score.dtype == np.float32 and np.isfinite(score).all()


def test_tabular_training_without_validation_runs_all_epochs():
    rng = np.random.default_rng(0)
    T, N, F = 40, 100, 4
    X = rng.normal(size=(T, N, F)).astype(np.float32)
    y = (np.tanh(X[..., 0]) * (X[..., 1] > 0) + 0.5 * rng.normal(size=(T, N))).astype(np.float32)
    ds = TabularDataset(X, y, np.datetime64("2020-01-31") + np.arange(T), np.arange(N).astype(str))
    m = make_model("linear", F, seed=0)
    res = fit(m, ds, np.arange(30), None, TrainConfig(max_epochs=4, lr=5e-2, progress=False))
    assert res.epochs == 4 and res.best_epoch == 4 and np.isnan(res.best_rank_ic)
    assert evaluate(m, ds, np.arange(30, 40))["rank_ic"] > 0.1


def test_model_factory_paths_and_devices():
    m = make_model("torch.nn:Linear", 3, seed=0, out_features=1)
    assert isinstance(m, nn.Linear) and m.in_features == 3
    a = make_model("linear", 5, seed=3).state_dict()
    b = make_model("linear", 5, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError):
        make_model("nosuch.module:thing", 3)
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")
    with pytest.raises(ConfigError):
        fit(make_model("linear", 6), SequenceDataset(make_panel(T=40, N=10), window=5), [], None)


@pytest.mark.gpu
def test_cuda_amp_trains(seq_ds):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    train, valid = _split(seq_ds)
    m = make_model("linear", seq_ds.n_features, seed=0)
    res = fit(
        m,
        seq_ds,
        train,
        valid,
        TrainConfig(max_epochs=3, lr=1e-2, amp=True, device="cuda", progress=False),
    )
    assert res.best_rank_ic > 0.05


def test_validation_without_labels_keeps_the_last_weights(seq_ds):
    sd = seq_ds.sample_dates()
    valid = sd[-3:]  # labels not yet known: no validation score at all
    m = make_model("linear", seq_ds.n_features, seed=0)
    res = fit(m, seq_ds, sd[:20], valid, TrainConfig(max_epochs=2, lr=1e-2, progress=False))
    assert np.isnan(res.best_rank_ic) and res.epochs == 2
    init = make_model("linear", seq_ds.n_features, seed=0)
    assert not torch.equal(m.lin3.weight, init.lin3.weight)


def test_stocks_per_date_subsamples_rows_consistently(seq_ds):
    """Each step sees k random stocks of the date with their own x, y and cap group."""
    from deepalpha.train.trainer import _subsample

    b = seq_ds.batch(int(seq_ds.sample_dates()[50]))
    gen = torch.Generator().manual_seed(0)
    s = _subsample(b, 30, gen)
    assert len(s.idx) == 30 and len(set(s.idx.tolist())) == 30
    pos = np.searchsorted(b.idx, s.idx)
    np.testing.assert_array_equal(b.idx[pos], s.idx)
    assert torch.equal(s.x, b.x[torch.from_numpy(pos)])
    assert torch.allclose(s.y, b.y[torch.from_numpy(pos)], equal_nan=True)
    assert torch.equal(s.group_ids, b.group_ids[torch.from_numpy(pos)])
    assert _subsample(b, len(b.idx), gen) is b and _subsample(b, None, gen) is b

    m = _GroupProbe(seq_ds.n_features)
    train, _ = _split(seq_ds)
    res = fit(m, seq_ds, train[:20], None, TrainConfig(max_epochs=1, progress=False,
                                                       stocks_per_date=25))  # fmt: skip
    assert {len(g) for g in m.seen} == {25}
    assert res.history[0]["train_stock_days"] == 25 * res.history[0]["train_dates"]


def test_dates_per_step_keeps_each_date_apart(seq_ds):
    """Stacked dates: DecompGRN's scores equal its per-date scores (groups offset per date, and
    dates without groups get one of their own), and the loss is the mean of per-date losses."""
    from deepalpha.train.losses import get_loss
    from deepalpha.train.trainer import _stack, _step_loss

    torch.manual_seed(0)
    model = make_model("decompgrn", seq_ds.n_features, seed=0, hidden=8)
    parts = [seq_ds.batch(int(t)) for t in seq_ds.sample_dates()[40:43]]
    for with_groups in (True, False):
        ps = parts if with_groups else [
            type(b)(t=b.t, idx=b.idx, x=b.x, y=b.y, group_ids=None) for b in parts
        ]  # fmt: skip
        batch, sizes = _stack(ps)
        assert sizes == [len(b.idx) for b in ps] and len(batch.idx) == sum(sizes)
        with torch.no_grad():
            together = model(batch.x, batch.group_ids).split(sizes)
            apart = [model(b.x, b.group_ids) for b in ps]
        for a, b in zip(together, apart, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    loss_fn = get_loss("ic")
    p = torch.randn(sum(sizes))
    want = torch.stack([loss_fn(pi, b.y) for pi, b in zip(p.split(sizes), parts, strict=True)])
    torch.testing.assert_close(_step_loss(loss_fn, p, batch.y, sizes), want.mean())
    assert _stack(parts[:1])[0] is parts[0]


def test_dates_per_step_counts_dates_and_steps(seq_ds):
    train, _ = _split(seq_ds)
    cfg = TrainConfig(max_epochs=1, progress=False, dates_per_step=4, seed=3)
    res = fit(make_model("gru", seq_ds.n_features, seed=0), seq_ds, train[:22], None, cfg)
    rec = res.history[0]
    assert rec["train_dates"] == 22 and rec["train_steps"] == 6  # 4 + 4 + 4 + 4 + 4 + 2
    assert np.isfinite(rec["train_loss"])
