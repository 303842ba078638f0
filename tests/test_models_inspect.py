"""`deepalpha models inspect` on a tiny rolling run, per-model trainer settings, seed z-scoring."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from test_train_helpers import make_panel
from typer.testing import CliRunner

from deepalpha.cli import app
from deepalpha.data.panel import Panel
from deepalpha.errors import DataError
from deepalpha.train.rolling import ModelSpec, RollingConfig, run_rolling
from deepalpha.train.trainer import TrainConfig
from deepalpha.workflows.results import predictions_by

runner = CliRunner()


def _tabular_panel() -> Panel:
    p = make_panel(T=120, N=40)
    close = p.field("close")
    label = np.full_like(close, np.nan)
    label[:-1] = close[1:] / close[:-1] - 1
    data = np.concatenate([p.data, label[None]], axis=0)
    return Panel(data, p.dates, p.assets, (*p.fields, "label"), p.masks)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect")
    small = {"dim": 8, "depth": 3}
    cfg = RollingConfig(
        models=[
            ModelSpec(name="mhc_mlp", kwargs=small),
            ModelSpec(name="hc_mlp", kwargs=small),
            ModelSpec(name="linear", train={"weight_decay": 0.01}),
        ],
        windows=[2],
        frequency="monthly",
        start="2020-03-01",
        end="2020-04-10",
        dataset=dict(
            kind="tabular", features=["open", "high", "low", "volume"], label="label",
            label_lag=1, cap_field=None,
        ),
        train=dict(max_epochs=1, progress=False),
    )  # fmt: skip
    run_rolling(_tabular_panel(), cfg, out, progress=False)
    return out


def test_inspect_prints_mixing_per_model_and_writes_json(run_dir, tmp_path):
    js = tmp_path / "mix.json"
    res = runner.invoke(app, ["models", "inspect", str(run_dir), "--rows", "64", "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert "mhc_mlp" in res.output and "hc_mlp" in res.output and "H_res layer 3" in res.output
    rows = json.loads(js.read_text())
    assert {r["model"] for r in rows} == {"mhc_mlp", "hc_mlp"}  # the linear model has no streams
    for r in rows:
        assert len(r["relative_spread"]) == 4  # input + 3 layers
        assert np.asarray(r["h_res_mean"]).shape == (3, 4, 4)
    mhc = [r for r in rows if r["model"] == "mhc_mlp"]
    assert all(abs(r["amax_fwd"] - 1) < 1e-4 for r in mhc)  # doubly stochastic products


def test_inspect_refuses_a_folder_without_a_run(tmp_path):
    res = runner.invoke(app, ["models", "inspect", str(tmp_path)])
    assert res.exit_code != 0
    assert isinstance(res.exception, DataError) and "run.json" in str(res.exception)


def test_model_train_settings_override_the_study_and_are_validated():
    spec = ModelSpec(name="mlp", train={"weight_decay": 0.01})
    tc = spec.train_config(TrainConfig(lr=3e-3), seed=4)
    assert (tc.weight_decay, tc.lr, tc.seed) == (0.01, 3e-3, 4)
    with pytest.raises(ValueError, match="wd"):
        ModelSpec(name="mlp", train={"wd": 0.01})
    with pytest.raises(ValueError, match="weight_decay"):
        ModelSpec(name="mlp", train={"weight_decay": -1})


def test_seed_ensemble_z_scores_each_seed_per_date_before_averaging():
    d = dt.date(2020, 1, 2)
    preds = pl.DataFrame(
        {
            "date": [d] * 6,
            "asset": ["a", "b", "c"] * 2,
            "model": ["m"] * 6,
            "window": [12] * 6,
            "seed": [0, 0, 0, 1, 1, 1],
            # seed 1 has 100x the scale: a raw mean would be seed 1's ranking alone
            "score": [3.0, 2.0, 1.0, 100.0, 200.0, 300.0],
        }
    )
    out = predictions_by(preds, "m", 12).sort("asset")
    z0 = np.array([1.0, 0.0, -1.0])
    # z-scores [1, 0, -1] and [-1, 0, 1] average to 0; a raw mean would rank like seed 1
    np.testing.assert_allclose(out["score"].to_numpy(), np.zeros(3), atol=1e-12)
    one = predictions_by(preds.filter(pl.col("seed") == 1), "m", 12).sort("asset")
    np.testing.assert_allclose(one["score"].to_numpy(), -z0, atol=1e-12)
