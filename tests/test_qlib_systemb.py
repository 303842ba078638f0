"""System B on a Qlib provider folder: a small synthetic market exported as a plain Qlib folder
gives the same sequence-model predictions as the original (features and labels agree), and
DecompGRN trains on it with cap groups from the size proxy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from deepalpha.data.cn import load_cn, load_indices
from deepalpha.data.export import export_qlib
from deepalpha.data.synth import write_market
from deepalpha.train.rolling import ModelSpec, RollingConfig, run_rolling

pytestmark = pytest.mark.slow


def _cfg(model: str, epochs: int = 1, **kw) -> RollingConfig:
    return RollingConfig(
        models=[ModelSpec(name=model, kwargs=kw)],
        windows=[6],
        window_unit="months",
        frequency="yearly",
        start="2020-01-01",
        end="2020-04-30",
        dataset=dict(length=10, horizon=5, universe=None, tradable=None),
        train=dict(max_epochs=epochs, patience=5, lr=1e-2, progress=False),
        executor="local",
    )


@pytest.fixture(scope="module")
def markets(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sysb")
    cn = write_market(d / "cn", stocks=60, start="2019-01-01", end="2020-06-30", seed=5)
    q = export_qlib(load_cn(cn, cache=False), d / "qlib", indices=load_indices(cn))
    shutil.copytree(cn / "industry", q / "industry")
    return cn, q


def test_same_predictions_on_the_qlib_export(markets, tmp_path):
    # one epoch: with more, a float32-rounding difference in volume can flip early stopping's
    # choice between two near-equal epochs (then the whole score surface shifts)
    cn, q = markets
    a = run_rolling(load_cn(cn, cache=False), _cfg("linear"), tmp_path / "a", progress=False)
    b = run_rolling(load_cn(q, cache=False), _cfg("linear"), tmp_path / "b", progress=False)
    pa = a.predictions.sort("date", "asset")
    pb = b.predictions.sort("date", "asset")
    assert pa.height > 0 and pa["asset"].to_list() == pb["asset"].to_list()
    diff = pb["score"].to_numpy() - pa["score"].to_numpy()
    # the same cross-sections up to a constant: Qlib's volume (shares / factor, float32) comes
    # back rounded, which moves the fitted intercept a little; ranks and spreads are unchanged
    assert np.std(diff) < 1e-3 * np.std(pa["score"].to_numpy()), np.std(diff)
    assert abs(np.mean(diff)) < 0.1


def test_decompgrn_trains_on_the_size_proxy(markets, tmp_path):
    _, q = markets
    p = load_cn(q, cache=False)
    assert p.has("size_proxy") and not p.has("mktcap")
    res = run_rolling(p, _cfg("decompgrn", epochs=2, hidden=8), tmp_path / "d", progress=False)
    assert res.predictions.height > 0
    assert np.isfinite(res.predictions["score"].to_numpy()).all()


TINY_B = {
    "system": "decompgrn",
    "name": "tiny_b_qlib",
    "rolling": {
        "models": [{"name": "decompgrn", "kwargs": {"hidden": 8}}],
        "windows": [18],
        "valid_periods": 4,
        "frequency": "yearly",
        "start": "2018-01-01",
        "dataset": {"kind": "sequence", "length": 20, "horizon": 5, "sample_stride": 10},
        "train": {"max_epochs": 1, "patience": 1, "progress": False},
    },
    "evaluate": {"universes": ["all"]},
    "portfolio": {"enabled": True, "indices": ["csi1000"], "backtest": {"freq": "monthly"}},
}


def test_deepalpha_run_system_b_and_a_on_a_bare_qlib_folder(tmp_path):
    """`deepalpha run` on a Qlib folder without fundamentals or industries: System B trains,
    evaluates and backtests (simple risk model, size-proxy weights); System A stops at once
    with one error listing the missing inputs."""
    import json

    from deepalpha.errors import DataError
    from deepalpha.workflows.config import parse_config
    from deepalpha.workflows.run import run_config

    cn = write_market(tmp_path / "cn", stocks=80, start="2016-01-01", end="2019-06-30", seed=3)
    q = export_qlib(load_cn(cn, cache=False), tmp_path / "qlib", indices=load_indices(cn))
    cfg = parse_config({**TINY_B, "data": {"path": str(q), "cache": False}})
    metrics = run_config(cfg, tmp_path / "run_b", progress=False)
    data = json.loads((tmp_path / "run_b" / "data.json").read_text())
    assert data["kind"] == "Qlib provider folder"
    assert any("size_proxy" in c for c in data["caveats"])
    port = metrics["portfolio"]["decompgrn"]["csi1000"]
    assert "simple" in port["risk_model"] and np.isfinite(port["excess_return"])
    a = parse_config(
        {
            "system": "barra_ml",
            "name": "tiny_a_qlib",
            "data": {"path": str(q), "cache": False},
            "rolling": {"models": [{"name": "mlp"}], "start": "2018-01-01"},
        }
    )
    with pytest.raises(DataError, match=r"System A .*total_mv\.csv.*industr"):
        run_config(a, tmp_path / "run_a", progress=False)
