"""Look-ahead at a retrain date, for both systems, with mutation checks.

For D = a retrain date and D = the day before it, every input strictly after D is scrambled
(prices, volumes, caps, fundamentals, masks -- and so every label and exposure derived from them)
and the rolling study is re-run from scratch. Every prediction dated <= D must be bitwise equal,
and so must the weights of every model retrained on or before D (the model trained at the close of
D must not have seen a label that ends after D). The scrambling must reach the predictions after
D (the check can fail).

Mutation checks run the same comparison on deliberately leaky variants and assert it catches them:

- System B (sequence models, h-day label entering at the t+1 close): the label window shifted one
  day later (``price[t+2+h] / price[t+2]``, still treated as known at ``t+1+h``) changes the model
  trained at D; inputs read one day late (the panel shifted so that day t holds day t+1's data)
  change the predictions at D and at the day before.
- System A (monthly tabular MLP on the risk model's exposures, label = next month's residual
  return from the close after the month end): ``label_lag=1`` (the label treated as known at the
  next month end, one trading day before its exit close) changes the model trained at D. At the
  day before a month-end retrain no System A prediction is dated, and a one-day leak reaches none
  of the earlier ones: the check is asserted to pass there for the leaky variant too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from test_risk_model import CFG as RISK_CFG
from test_risk_model import make_panel as risk_panel
from test_train_helpers import make_panel, small_rolling_config

import deepalpha.train.datasets as datasets
from deepalpha.data.panel import Panel
from deepalpha.features.labels import forward_return
from deepalpha.risk.factor_tools import residual_labels
from deepalpha.risk.model import build_risk_model
from deepalpha.train.rolling import ModelSpec, RollingConfig, job_dir, run_rolling
from deepalpha.workflows.barra_ml import monthly_panel


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def scramble_after(panel: Panel, D: np.datetime64, seed: int = 7) -> Panel:
    """Every field and mask strictly after ``D`` scrambled (dates <= D untouched)."""
    cut = int(np.searchsorted(panel.dates, D, "right"))
    rng = np.random.default_rng(seed)
    data = panel.data.copy()
    data[:, cut:] *= rng.uniform(0.5, 2.0, data[:, cut:].shape).astype(np.float32)
    masks = {k: v.copy() for k, v in panel.masks.items()}
    for k in ("tradable", "suspended"):
        if k in masks:
            masks[k][cut:] = rng.random(masks[k][cut:].shape) < (0.8 if k == "tradable" else 0.05)
    if "tradable" in masks and "suspended" in masks:
        masks["tradable"][cut:] &= ~masks["suspended"][cut:]
    return Panel(data, panel.dates, panel.assets, panel.fields, masks)


def read_one_day_late(panel: Panel) -> Panel:
    """Mutation: day t holds day t+1's data (the last day repeated) -- a one-day data leak."""
    data = np.concatenate([panel.data[:, 1:], panel.data[:, -1:]], axis=1)
    masks = {k: np.concatenate([v[1:], v[-1:]]) for k, v in panel.masks.items()}
    return Panel(data, panel.dates, panel.assets, panel.fields, masks)


def leaky_forward_return(price: np.ndarray, horizon: int = 10) -> np.ndarray:
    """Mutation: the label window one day later than `forward_return` (enter at t+2)."""
    out = np.full(price.shape, np.nan, np.float32)
    out[:-1] = forward_return(price, horizon)[1:]
    return out


def compare_up_to(a, b, D: np.datetime64) -> dict[str, bool]:
    """Which of (predictions <= D, models retrained <= D) are bitwise equal in two runs."""
    before = pl.col("date") <= pl.lit(D.astype("datetime64[D]").item())
    pa, pb = a.predictions.filter(before), b.predictions.filter(before)
    assert pa.height > 0
    jobs = [j for j in a.jobs if np.datetime64(j.retrain) <= D]
    assert jobs and jobs == [j for j in b.jobs if np.datetime64(j.retrain) <= D]
    models = all(
        (job_dir(a.run_dir, j) / "model.pt").read_bytes()
        == (job_dir(b.run_dir, j) / "model.pt").read_bytes()
        for j in jobs
    )
    return {"predictions": pa.equals(pb), "models": models}


def changed_after(a, b, D: np.datetime64) -> bool:
    after = pl.col("date") > pl.lit(D.astype("datetime64[D]").item())
    return not a.predictions.filter(after).equals(b.predictions.filter(after))


# ----------------------------------------------------------------------------- System B

B_RETRAIN = np.datetime64("2020-07-01")  # the second retrain of the study below


def _b_config(valid: float | None):
    return small_rolling_config(start="2020-06-01", end="2020-07-10", valid_fraction=valid)


@pytest.fixture(scope="module")
def b_panel():
    return make_panel()


def _run_b(panel: Panel, run_dir: Path, monkeypatch=None, label_leak: bool = False, valid=None):
    """The small sequence study; ``valid=None``: no validation split, so every sample with a
    known label is trained on (a leaked label then moves the weights, not just the epoch)."""
    if label_leak:
        monkeypatch.setattr(datasets, "forward_return", leaky_forward_return)
    try:
        return run_rolling(panel, _b_config(valid), run_dir, progress=False)
    finally:
        if label_leak:
            monkeypatch.undo()


@pytest.fixture(scope="module")
def b_base(b_panel, tmp_path_factory):
    out = {}
    for valid in (None, 0.25):
        res = _run_b(b_panel, tmp_path_factory.mktemp("b_base"), valid=valid)
        assert [j.retrain for j in res.jobs] == ["2020-06-01", "2020-07-01"]
        out[valid] = res
    return out


@pytest.mark.parametrize("valid", [None, 0.25], ids=["no_valid", "valid"])
@pytest.mark.parametrize("before", [0, 1], ids=["D=retrain", "D=day_before"])
def test_system_b_nothing_up_to_D_sees_the_future(b_panel, b_base, tmp_path, before, valid):
    D = B_RETRAIN - before
    pert = _run_b(scramble_after(b_panel, D), tmp_path / "pert", valid=valid)
    base = b_base[valid]
    same = compare_up_to(base, pert, D)
    assert all(same.values()), same
    assert changed_after(base, pert, D)


@pytest.mark.parametrize("before", [0, 1], ids=["D=retrain", "D=day_before"])
def test_system_b_mutation_label_one_day_late(b_panel, tmp_path, monkeypatch, before):
    """A label window one day later is caught at the retrain (the model trained at D moves);
    at the day before it, no prediction <= D used that label, so nothing moves."""
    D = B_RETRAIN - before
    a = _run_b(b_panel, tmp_path / "a", monkeypatch, label_leak=True)
    b = _run_b(scramble_after(b_panel, D), tmp_path / "b", monkeypatch, label_leak=True)
    same = compare_up_to(a, b, D)
    if before == 0:
        assert not same["models"] and not same["predictions"], same
    else:
        assert all(same.values()), same


@pytest.mark.parametrize("before", [0, 1], ids=["D=retrain", "D=day_before"])
def test_system_b_mutation_data_one_day_late(b_panel, tmp_path, before):
    """Inputs read one day late are caught at both dates."""
    D = B_RETRAIN - before
    a = _run_b(read_one_day_late(b_panel), tmp_path / "a")
    b = _run_b(read_one_day_late(scramble_after(b_panel, D)), tmp_path / "b")
    same = compare_up_to(a, b, D)
    assert not same["predictions"], same
    if before == 0:
        assert not same["models"], same  # the model trained at D read D+1's prices


# ----------------------------------------------------------------------------- System A


@pytest.fixture(scope="module")
def a_market():
    panel, groups = risk_panel(T=300, N=80)
    model = build_risk_model(panel, groups, freq="monthly", config=RISK_CFG)
    return panel, groups, model.dates


def _run_a(panel: Panel, groups, run_dir: Path, label_lag: int = 2, valid=None):
    """System A's pipeline on a daily panel: monthly risk model -> residual label -> rolling
    tabular MLP on the 15 exposures (as `run_barra_ml`)."""
    model = build_risk_model(panel, groups, freq="monthly", config=RISK_CFG)
    mpanel = monthly_panel(panel, model, residual_labels(model, panel, "month"))
    cfg = RollingConfig(
        models=[ModelSpec(name="mlp", kwargs={"depth": 2, "dim": 16})],
        windows=[6],
        valid_fraction=valid,
        frequency="monthly",
        start=str(model.dates[11]),
        end=str(model.dates[13]),
        dataset=dict(
            kind="tabular", universe=None, features=list(model.style_names), label="label",
            label_lag=label_lag, cap_field="mktcap",
        ),
        train=dict(max_epochs=2, patience=1, progress=False),
    )  # fmt: skip
    return run_rolling(mpanel, cfg, run_dir, progress=False)


def _a_D(panel: Panel, month_ends: np.ndarray, before: int) -> np.datetime64:
    """The retrain at month end 12, or the trading day before it."""
    i = int(np.searchsorted(panel.dates, month_ends[12]))
    return panel.dates[i - before]


@pytest.mark.parametrize("label_lag", [2, 1], ids=["honest", "mutation_label_lag_1"])
@pytest.mark.parametrize("before", [0, 1], ids=["D=retrain", "D=day_before"])
def test_system_a_nothing_up_to_D_sees_the_future(a_market, tmp_path, before, label_lag):
    panel, groups, month_ends = a_market
    D = _a_D(panel, month_ends, before)
    a = _run_a(panel, groups, tmp_path / "a", label_lag)
    assert [np.datetime64(j.retrain) for j in a.jobs] == list(month_ends[11:14])
    b = _run_a(scramble_after(panel, D), groups, tmp_path / "b", label_lag)
    same = compare_up_to(a, b, D)
    if label_lag == 2 or before == 1:
        assert all(same.values()), same
        assert changed_after(a, b, D)
    else:
        # the label of the previous month end exits at the close after D: seen by the model at D
        assert not same["models"] and not same["predictions"], same
