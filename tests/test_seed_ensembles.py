"""Seed ensembles (issue 16): per-seed signals are z-scored per date before averaging, each seed
is evaluated beside the ensemble, `seed_ensembles` reports what averaging adds (checked against a
hand computation), per-model seeds override the study's, and jobs run seed-major."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from deepalpha.train.rolling import ModelSpec, RollingConfig, plan_jobs
from deepalpha.workflows.results import (
    markdown_seed_table,
    member_key,
    predictions_by,
    seed_ensembles,
    seed_predictions,
    seeds_of,
)


def _preds(seed_scales: dict[int, float], n_dates: int = 3, n_assets: int = 5) -> pl.DataFrame:
    """Long predictions of model 'm', window 12: seed s scores = scale_s * base + s."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n_dates, n_assets))
    rows = []
    for s, scale in seed_scales.items():
        for t in range(n_dates):
            for a in range(n_assets):
                rows.append(
                    {
                        "date": date(2020, 1, 1) + timedelta(days=t),
                        "asset": f"A{a}",
                        "model": "m",
                        "window": 12,
                        "seed": s,
                        "score": scale * base[t, a] + s + 0.3 * s * (a == 0),
                    }
                )
    return pl.DataFrame(rows)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std(ddof=1)


def test_seed_signal_is_that_seeds_per_date_zscore():
    preds = _preds({0: 1.0, 1: 50.0, 2: 0.01})
    assert seeds_of(preds, "m") == [0, 1, 2]
    for s in (0, 1, 2):
        one = seed_predictions(preds, "m", s).sort(["date", "asset"])
        raw = preds.filter(pl.col("seed") == s).sort(["date", "asset"])
        for d in one["date"].unique():
            got = one.filter(pl.col("date") == d)["score"].to_numpy()
            want = _z(raw.filter(pl.col("date") == d)["score"].to_numpy())
            np.testing.assert_allclose(got, want, atol=1e-12)


def test_ensemble_is_mean_of_seed_zscores_not_of_raw_scores():
    preds = _preds({0: 1.0, 1: 50.0})
    ens = predictions_by(preds, "m").sort(["date", "asset"])
    z = [seed_predictions(preds, "m", s).sort(["date", "asset"])["score"] for s in (0, 1)]
    np.testing.assert_allclose(ens["score"].to_numpy(), (z[0] + z[1]).to_numpy() / 2, atol=1e-12)
    raw_mean = preds.group_by(["date", "asset"]).agg(pl.col("score").mean()).sort(["date", "asset"])
    assert not np.allclose(ens["score"].to_numpy(), raw_mean["score"].to_numpy())


def _record(rank_ic: float, icir: float, members: list[str] | None = None) -> dict:
    rec = {
        "summary": {
            "all": {"rank_ic": rank_ic, "rank_icir": icir, "rank_ic_win": 0.6},
            "csi300": {"rank_ic": rank_ic / 2, "rank_icir": None, "rank_ic_win": 0.5},
        }
    }
    if members is not None:
        rec["members"] = members
    return rec


def test_seed_ensembles_against_hand_computation():
    members = [member_key("gru", s) for s in (0, 1, 2)]
    assert members == ["gru/s0", "gru/s1", "gru/s2"]
    metrics = {
        "models": {
            "gru": _record(0.090, 0.80, members),
            "gru/s0": _record(0.070, 0.60),
            "gru/s1": _record(0.080, 0.70),
            "gru/s2": _record(0.075, 0.50),
            "oracle (truth)": _record(0.5, 5.0),
        }
    }
    out = seed_ensembles(metrics)
    assert list(out) == ["gru"]  # the oracle and the members are no ensembles
    ic = out["gru"]["all"]["rank_ic"]
    v = np.array([0.070, 0.080, 0.075])
    assert ic["ensemble"] == pytest.approx(0.090)
    assert ic["mean"] == pytest.approx(0.075)
    assert ic["std"] == pytest.approx(np.sqrt(((v - 0.075) ** 2).sum() / 2))
    assert (ic["min"], ic["max"]) == (pytest.approx(0.070), pytest.approx(0.080))
    assert ic["gain"] == pytest.approx(0.015)
    assert out["gru"]["all"]["n_seeds"] == 3
    assert out["gru"]["all"]["rank_icir"]["gain"] == pytest.approx(0.80 - 0.60)
    assert "rank_icir" not in out["gru"]["csi300"]  # None in the ensemble: left out, not 0
    assert out["gru"]["csi300"]["rank_ic"]["gain"] == pytest.approx(0.045 - 0.0375)
    md = markdown_seed_table(metrics, "all")
    assert "| gru | 3 | 0.090 | 0.075 ± 0.005 | +0.0150 |" in md
    assert markdown_seed_table({"models": {"x": _record(0.1, 1.0)}}, "all") == ""


def test_model_seeds_override_and_seed_major_order():
    cfg = RollingConfig(
        models=[ModelSpec(name="gru"), ModelSpec(name="rnn_lin_glu", seeds=[7])],
        windows=[12],
        seeds=[0, 1, 2],
        frequency="yearly",
        start="2020-01-01",
    )
    dates = np.arange(np.datetime64("2018-01-01"), np.datetime64("2021-12-31"))
    dates = dates[np.is_busday(dates)]
    jobs = plan_jobs(dates, cfg)
    per = {(j.model, j.seed) for j in jobs}
    assert per == {("gru", 0), ("gru", 1), ("gru", 2), ("rnn_lin_glu", 7)}
    retrains = sorted({j.retrain for j in jobs})
    assert len(jobs) == 4 * len(retrains)
    order = [(j.model, j.seed) for j in jobs]
    k = len(retrains)
    assert order[: 2 * k] == [("gru", 0)] * k + [("rnn_lin_glu", 7)] * k  # first seeds first
    assert order[2 * k :] == [("gru", 1)] * k + [("gru", 2)] * k
    with pytest.raises(ValueError):
        ModelSpec(name="gru", seeds=[])


def test_system_b_run_evaluates_each_seed_beside_the_ensemble(tmp_path):
    from deepalpha.data.synth import write_market
    from deepalpha.workflows.config import parse_config
    from deepalpha.workflows.results import load_metrics
    from deepalpha.workflows.run import run_config

    data = write_market(tmp_path / "m", stocks=60, start="2017-01-01", end="2018-12-31", seed=1)
    cfg = parse_config(
        {
            "system": "decompgrn",
            "name": "seeds",
            "data": {"path": str(data)},
            "rolling": {
                "models": [{"name": "rnn_lin", "kwargs": {"hidden": 8}}],
                "windows": [12],
                "valid_periods": 3,
                "frequency": "yearly",
                "start": "2018-01-01",
                "seeds": [0, 1],
                "dataset": {"kind": "sequence", "length": 10, "horizon": 5, "sample_stride": 5},
                "train": {"max_epochs": 1, "patience": 1, "progress": False},
                "executor": "local",
            },
            "evaluate": {"universes": ["all"]},
            "portfolio": {"enabled": False},
        }
    )
    run_config(cfg, tmp_path / "run", progress=False)
    m = load_metrics(tmp_path / "run")
    assert m["models"]["rnn_lin"]["members"] == ["rnn_lin/s0", "rnn_lin/s1"]
    for s in (0, 1):
        rec = m["models"][f"rnn_lin/s{s}"]
        assert rec["member_of"] == "rnn_lin" and rec["seed"] == s
        assert rec["first_date"] == m["models"]["rnn_lin"]["first_date"]
    ens = m["seed_ensembles"]["rnn_lin"]["all"]["rank_ic"]
    single = [m["models"][f"rnn_lin/s{s}"]["summary"]["all"]["rank_ic"] for s in (0, 1)]
    assert ens["mean"] == pytest.approx(np.mean(single))
    assert ens["ensemble"] == pytest.approx(m["models"]["rnn_lin"]["summary"]["all"]["rank_ic"])
    series = pl.read_parquet(tmp_path / "run" / "series.parquet")
    assert {"rnn_lin", "rnn_lin/s0", "rnn_lin/s1"} <= set(series["key"].unique().to_list())
    from typer.testing import CliRunner

    from deepalpha.cli import app

    res = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["compare", str(tmp_path / "run"), "--markdown"]
    )
    assert res.exit_code == 0, res.output
    assert "seeds — all: seed ensembles vs single seeds" in res.output
    assert f"| rnn_lin | 2 | {ens['ensemble']:.3f} | {ens['mean']:.3f} ± " in res.output
