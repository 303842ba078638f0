"""`deepalpha backtest` on a synthetic market: the planted signal beats the index, noise does
not (beyond noise and costs); outputs are written; bad options fail with one line."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from deepalpha.cli import app

pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from deepalpha.data.synth import write_market

    root = tmp_path_factory.mktemp("portfolio_synth")
    mkt = write_market(root / "cn", stocks=400, start="2019-01-01", end="2021-06-30", seed=3)
    truth = pl.read_parquet(mkt / "truth" / "alpha_pv.parquet").rename({"alpha": "score"})
    truth = truth.select("date", "asset", pl.col("score").cast(pl.Float64))
    truth.write_parquet(root / "truth.parquet")
    rng = np.random.default_rng(0)
    truth.with_columns(pl.Series("score", rng.standard_normal(truth.height))).write_parquet(
        root / "random.parquet"
    )
    return root, mkt


def run(root, mkt, name, *extra):
    out = root / f"out_{name}"
    res = runner.invoke(
        app,
        ["backtest", str(root / f"{name}.parquet"), "--data", str(mkt), "--index", "csi500",
         "--max-outside", "60", "--out", str(out), *extra],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads((out / "metrics.json").read_text())["metrics"], out


def test_truth_beats_index_and_random_does_not(synth):
    mt, out = run(*synth, "truth")
    mr, _ = run(*synth, "random")
    assert mt["excess_return"] > 0.08 and mt["information_ratio"] > 1.5
    assert mt["excess_return"] > mr["excess_return"] + 0.08
    years = mr["days"] / 252
    gross = mr["excess_return"] + mr["cost_annual"]
    assert abs(gross) < 3 * mr["tracking_error"] / np.sqrt(years)
    # ~35 bps a round trip (2.5 commission + 10 slippage a side + stamp) x ~12 turnovers a year
    assert 0.02 < mr["cost_annual"] < 0.08
    nav = pl.read_parquet(out / "nav.parquet")
    assert {"nav", "bench_nav", "proxy_nav", "tr_nav", "price_nav", "excess_nav", "costs"} <= set(
        nav.columns
    )
    costs = pl.read_csv(out / "costs.csv")
    assert costs["slippage_bps"].to_list() == [0.0, 5.0, 10.0, 20.0]
    assert (np.diff(costs["excess_return"].to_numpy()) < 0).all()
    assert mt["excess_return"] == costs.filter(pl.col("slippage_bps") == 10.0)["excess_return"][0]
    rec = pl.read_parquet(out / "rebalances.parquet")
    assert (rec["index_share"] >= 0.8 - 1e-6).all()
    ok = rec.filter(pl.col("status") == "optimal")
    assert (ok["ex_ante_te"] <= 0.05 + 1e-6).all()
    w = pl.read_parquet(out / "weights.parquet")
    sums = w.group_by("date").agg(pl.col("weight").sum())["weight"]
    # blocked buys (limit up, suspended) leave cash until the next rebalance
    assert (sums <= 1 + 1e-6).all() and (sums > 0.9).all() and sums.median() > 0.99


def test_bad_option_is_one_line_error(synth):
    root, mkt = synth
    res = runner.invoke(
        app, ["backtest", str(root / "truth.parquet"), "--data", str(mkt), "--index", "csi42"]
    )
    assert res.exit_code != 0
    assert "index" in str(res.output) + str(res.exception)


def test_risk_scaling_default_and_alignment_needs_a_risk_model(synth):
    root, mkt = synth
    m, out = run(root, mkt, "truth", "--start", "2020-06-01")  # scaling is the default
    reb = pl.read_parquet(out / "rebalances.parquet")
    lam = reb["risk_scale"].to_numpy()
    assert lam[0] == 1.0 and np.isfinite(lam).all() and (lam > 0).all()
    assert np.isfinite(m["te_ratio"])
    bad = root / "out_aaf"
    res = runner.invoke(
        app,
        ["backtest", str(root / "truth.parquet"), "--data", str(mkt), "--index", "csi500",
         "--alpha-alignment", "--out", str(bad)],
    )  # fmt: skip
    assert res.exit_code != 0
    assert "--risk" in str(res.output) + str(res.exception)
    assert not bad.exists()
