"""`deepalpha risk explain` (issue 17 item 7): works on a backtest's weights file, refuses bad
input with one line naming the file / column / date, and leaves files unchanged."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from cli_main import assert_one_line_error, run_main
from risk_toy import toy_model
from test_data_errors import write_tiny_cn

from deepalpha.risk.decompose import decompose, snapshot
from deepalpha.risk.explain import benchmark_weights, explain


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    m = toy_model()
    m.save(root / "risk")
    rng = np.random.default_rng(5)
    rows = []
    for t in (12, 21):  # two rebalance dates, as a backtest's weights.parquet
        sel = rng.choice(len(m.assets), 40, replace=False)
        w = rng.dirichlet(np.ones(40)) * 0.98
        rows.append(
            pl.DataFrame({"date": np.full(40, m.dates[t]), "asset": m.assets[sel], "weight": w})
        )
    pl.concat(rows).with_columns(pl.col("date").cast(pl.Date)).write_parquet(
        root / "weights.parquet"
    )
    b = rng.dirichlet(np.ones(len(m.assets)))
    pl.DataFrame({"asset": m.assets, "weight": b}).write_csv(root / "bench.csv")
    return root, m


def test_explain_matches_the_decomposition(saved, tmp_path, capsys):
    root, m = saved
    out = tmp_path / "ex.json"
    r = run_main(
        ["risk", "explain", root, "--risk", root / "risk", "--benchmark", root / "bench.csv",
         "--out", out, "--top", "3"], capsys)  # fmt: skip
    assert r.code == 0, r.err
    res = json.loads(out.read_text())
    assert res["date"] == str(m.dates[21]) and res["n_holdings"] == 40
    w = pl.read_parquet(root / "weights.parquet").filter(pl.col("date") == m.dates[21])
    b = pl.read_csv(root / "bench.csv")
    wv = np.zeros(len(m.assets))
    pos = {a: i for i, a in enumerate(m.assets.tolist())}
    wv[[pos[a] for a in w["asset"]]] = w["weight"].to_numpy()
    s = snapshot(m, m.dates[21])
    dec = decompose(wv, s.X, s.F, s.d, b["weight"].to_numpy())
    assert res["active_risk"] == pytest.approx(dec.active.risk, rel=1e-12)
    assert res["total_risk"] == pytest.approx(dec.portfolio.risk, rel=1e-12)
    assert res["beta"] == pytest.approx(dec.beta, rel=1e-12)
    assert sum(g["pct"] for k, g in res["groups"].items() if k != "total") == pytest.approx(1.0)
    assert len(res["top_assets"]) == 3
    assert "active risk (ex-ante TE)" in r.out
    # --date picks the other portfolio; the API gives the same as the CLI
    ex = explain(root / "weights.parquet", root / "risk", date=str(m.dates[12]))
    assert ex.snap.exposure_date == m.dates[12] and ex.dec.active is None
    assert np.isfinite(ex.dec.beta) and ex.dec.beta_on.startswith("market")
    assert ex.seconds["total"] > 0  # its speed is a benchmark figure (README), not a test bound


def _bad_inputs(root, m, tmp):
    ok = ["--risk", root / "risk"]
    (tmp / "nocol.csv").write_text("date,asset,w\n2020-01-13,SH600000,0.5\n")
    (tmp / "nan.csv").write_text(f"date,asset,weight\n2020-01-13,{m.assets[1]},nan\n")
    (tmp / "dup.csv").write_text(
        f"date,asset,weight\n2020-01-13,{m.assets[1]},0.1\n2020-01-13,{m.assets[1]},0.2\n"
    )
    (tmp / "unknown.csv").write_text("date,asset,weight\n2020-01-13,SZ000001,0.1\n")
    (tmp / "code.csv").write_text("date,asset,weight\n2020-01-13,ABC,0.1\n")
    (tmp / "baddate.csv").write_text(f"date,asset,weight\n2020-13-45,{m.assets[1]},0.1\n")
    (tmp / "w.xlsx").write_text("x")
    (tmp / "early.csv").write_text(f"date,asset,weight\n2020-01-03,{m.assets[1]},0.1\n")
    return [
        ([tmp / "missing.parquet", *ok], ["weights file not found", "missing.parquet"]),
        ([tmp / "nocol.csv", *ok], ["lacks column(s) weight", "nocol.csv"]),
        ([tmp / "nan.csv", *ok], ["non-finite weight", "field=weight", "date=2020-01-13"]),
        ([tmp / "dup.csv", *ok], ["listed twice", "dup.csv"]),
        ([tmp / "unknown.csv", *ok], ["not in the risk model: SZ000001"]),
        ([tmp / "code.csv", *ok], ["unknown stock-code style", "code=ABC"]),
        ([tmp / "baddate.csv", *ok], ["not YYYY-MM-DD", "field=date"]),
        ([tmp / "w.xlsx", *ok], [".parquet or .csv", "w.xlsx"]),
        ([tmp / "early.csv", *ok], ["no forecast on 2020-01-03"]),
        (
            [root / "weights.parquet", *ok, "--date", "2020-01-02"],
            ["no weights on 2020-01-02", "nearest"],
        ),
        ([root / "weights.parquet", *ok, "--date", "13.01.2020"], ["--date must be YYYY-MM-DD"]),
        ([root / "weights.parquet", "--risk", tmp], ["not a risk model directory"]),
        ([root / "weights.parquet", *ok, "--benchmark", "csi9"], ["--benchmark must be one of"]),
        ([root / "weights.parquet", *ok, "--benchmark", "csi500"], ["needs the data folder"]),
    ]


def test_bad_input_is_one_line_and_files_stay(saved, tmp_path, capsys):
    root, m = saved
    out = tmp_path / "keep.json"
    out.write_text("old")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for args, needles in _bad_inputs(root, m, tmp_path):
        r = run_main(["risk", "explain", *args, "--out", out], capsys)
        assert_one_line_error(r, *needles)
        assert out.read_text() == "old"
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_index_benchmark_is_the_member_proxy(tmp_path):
    from deepalpha.data.cn import load_cn
    from deepalpha.portfolio.benchmark import cap_weights

    root = write_tiny_cn(tmp_path / "cn")
    p = load_cn(root, fields=["close", "mktcap"], cache=False)
    t = 30
    a, w, label = benchmark_weights("csi800", p.dates[t], root)
    c = p.field("close")[t]
    px = np.isfinite(c) & (c > 0)
    want = cap_weights(np.where(px, p.field("mktcap")[t], np.nan), p.mask("csi800")[t] & px)
    np.testing.assert_allclose(w, want[want > 0])
    assert list(a) == list(np.asarray(p.assets)[want > 0]) and "member proxy" in label
