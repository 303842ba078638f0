"""`deepalpha compare --paired BASE RUN_DIR...` on tiny fake run directories: the figures are
`paired_difference` of the aligned series with the recorded horizon; bad keys fail in one line."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from deepalpha.cli import app
from deepalpha.errors import ConfigError
from deepalpha.evaluate.paired import paired_difference
from deepalpha.workflows.paired import aligned, paired_frame

runner = CliRunner(env={"COLUMNS": "200"})
T = 120
DATES = [date(2020, 1, 1) + timedelta(days=i) for i in range(T)]


def write_run(path, keys, *, horizon=10, seed=0, drop=()):
    """A run dir with series.parquet (ic, rank_ic, long_short, group_0 per key and universe,
    plus a '-' universe series) and metrics.json recording ``horizon`` (None: not recorded)."""
    rng = np.random.default_rng(seed)
    frames, models = [], {}
    for j, key in enumerate(keys):
        detail = {}
        for u in ("all", "csi300"):
            conv = {"horizon": horizon, "return_periods_per_year": 252.0, "periods_per_year": 25.2}
            detail[u] = {"conventions": conv} if horizon is not None else {}
            for metric, scale in (("ic", 0.05), ("rank_ic", 0.05), ("long_short", 0.01),
                                  ("group_0", 0.01)):  # fmt: skip
                v = 0.01 * j + scale * rng.standard_normal(T)
                keep = [i for i in range(T) if (key, i) not in drop]
                v[rng.random(T) < 0.05] = np.nan
                frames.append(
                    pl.DataFrame(
                        {
                            "key": key,
                            "universe": u,
                            "date": [DATES[i] for i in keep],
                            "metric": metric,
                            "value": v[keep],
                        }
                    )
                )
        frames.append(
            pl.DataFrame(
                {
                    "key": key,
                    "universe": "-",
                    "date": DATES,
                    "metric": "pure",
                    "value": rng.standard_normal(T),
                }
            )
        )
        models[key] = {"summary": {}, "detail": detail}
    path.mkdir()
    pl.concat(frames).write_parquet(path / "series.parquet")
    (path / "metrics.json").write_text(json.dumps({"system": "decompgrn", "name": path.name,
                                                   "models": models}))  # fmt: skip
    return path


def series(run, key, universe, metric):
    s = pl.read_parquet(run / "series.parquet")
    return s.filter(
        (pl.col("key") == key) & (pl.col("universe") == universe) & (pl.col("metric") == metric)
    ).select("date", "value")


@pytest.fixture
def sysb(tmp_path):
    drop = {("mhc", i) for i in range(0, T, 7)} | {("mlp", i) for i in range(3, T, 11)}
    return write_run(tmp_path / "sysb", ["mlp", "mhc", "oracle (truth)"], drop=drop)


def test_frame_is_paired_difference_of_aligned_series(sysb):
    df = paired_frame([sysb], "mlp", n_boot=500, seed=3)
    assert set(df["key"]) == {"mhc", "oracle (truth)"} and set(df["base"]) == {"mlp"}
    assert set(df["universe"]) == {"all", "csi300"}
    assert set(df["metric"]) == {"rank_ic", "ic", "long_short"}
    for metric, h, ppy in (("rank_ic", 10, None), ("long_short", 1, 252.0)):
        a, b = aligned(series(sysb, "mhc", "csi300", metric), series(sysb, "mlp", "csi300", metric))
        both_gone = {i for i in range(T) if i % 7 == 0 and i % 11 == 3}  # 14, 91
        assert a.size == T - len(both_gone) == 118  # union of dates; one side's gaps are NaN
        want = paired_difference(a, b, horizon=h, periods_per_year=ppy, n_boot=500, seed=3)
        row = df.filter(
            (pl.col("key") == "mhc")
            & (pl.col("universe") == "csi300")
            & (pl.col("metric") == metric)
        ).row(0, named=True)
        assert row["horizon"] == h and row["n"] == want["n"] < T - 20
        for k in ("mean_diff", "win_rate", "t_nw", "ci_low", "ci_high"):
            assert row[k] == pytest.approx(want[k], rel=1e-12), k
        assert row["mean"] == pytest.approx(want["mean_a"])
        assert row["mean_base"] == pytest.approx(want["mean_b"])
        assert row["nw_lags"] == want["nw_lags"] and row["block"] == want["block"]
        if ppy is None:
            assert math.isnan(row["ann_diff"])
        else:
            assert row["ann_diff"] == pytest.approx(want["mean_diff"] * 252)


def test_cli_markdown_and_table_show_the_figures(sysb):
    a, b = aligned(series(sysb, "mhc", "all", "rank_ic"), series(sysb, "mlp", "all", "rank_ic"))
    w = paired_difference(a, b, horizon=10, n_boot=200, seed=5)
    cells = [f"{w['mean_a']:.4f}", f"{w['mean_b']:.4f}", f"{w['mean_diff']:.4f}", "-",
             f"{100 * w['win_rate']:.1f}%", f"{w['t_nw']:.2f}",
             f"[{w['ci_low']:.4f}, {w['ci_high']:.4f}]", str(w["n"]), "10", str(w["nw_lags"])]  # fmt: skip
    args = ["compare", "--paired", "mlp", str(sysb), "--n-boot", "200", "--seed", "5"]
    res = runner.invoke(app, [*args, "--markdown"])
    assert res.exit_code == 0, res.output
    assert "mhc vs mlp — all" in res.output and "oracle (truth) vs mlp — csi300" in res.output
    assert "| metric | mhc | mlp | diff |" in res.output
    assert "| rank_ic | " + " | ".join(cells) + " |" in res.output
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "mhc vs mlp — all" in res.output
    line = next(s for s in res.output.splitlines() if s.strip().startswith("rank_ic"))
    assert line.split()[1:] == [c for x in cells for c in x.split()]


def test_unknown_or_ambiguous_key_is_one_line_error(sysb, tmp_path):
    res = runner.invoke(app, ["compare", "--paired", "nope/ic", str(sysb)])
    assert res.exit_code == 2
    assert "unknown signal key 'nope/ic'" in res.output
    assert "known keys: mlp, mhc, oracle (truth)" in res.output
    assert "Traceback" not in res.output
    with pytest.raises(ConfigError, match="nope"):
        paired_frame([sysb], "nope")
    other = write_run(tmp_path / "rerun", ["mlp", "mhc"], seed=1)
    res = runner.invoke(app, ["compare", "--paired", "mlp", str(sysb), str(other)])
    assert res.exit_code == 2 and "several runs" in res.output
    assert "sysb:mlp, rerun:mlp" in res.output
    res = runner.invoke(app, ["compare", "--paired", "sysb:mlp", str(sysb), str(other),
                              "--universe", "all", "--markdown", "--n-boot", "50"])  # fmt: skip
    assert res.exit_code == 0, res.output
    for t in ("sysb:mhc vs sysb:mlp — all", "rerun:mlp vs sysb:mlp — all",
              "rerun:mhc vs sysb:mlp — all", "oracle (truth) vs sysb:mlp — all"):  # fmt: skip
        assert t in res.output
    assert "csi300" not in res.output


def test_horizon_from_metrics_or_option(tmp_path):
    run = write_run(tmp_path / "sysa", ["mlp/ic", "mlp/equal"], horizon=None)
    df = paired_frame([run], "mlp/equal", n_boot=50)
    assert set(df.filter(pl.col("metric") != "long_short")["horizon"]) == {1}
    assert df.filter(pl.col("metric") == "long_short")["ann_diff"].is_nan().all()
    df = paired_frame([run], "mlp/equal", n_boot=50, horizon=5)
    assert set(df.filter(pl.col("metric") != "long_short")["horizon"]) == {5}
    assert set(df.filter(pl.col("metric") == "long_short")["horizon"]) == {1}
    res = runner.invoke(app, ["compare", "--paired", "mlp/equal", str(run), "--horizon", "0"])
    assert res.exit_code == 2


def test_html_page_has_the_paired_section(sysb, tmp_path):
    a, b = aligned(series(sysb, "mhc", "all", "rank_ic"), series(sysb, "mlp", "all", "rank_ic"))
    w = paired_difference(a, b, horizon=10, n_boot=200, seed=5)
    out = tmp_path / "cmp.html"
    args = ["compare", "--paired", "mlp", str(sysb), "--n-boot", "200", "--seed", "5"]
    res = runner.invoke(app, [*args, "--html", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert 'id="paired"' in page and "Paired vs mlp" in page
    assert "RankIC: every signal against the base" in page
    assert "mhc vs mlp — all" in page and "oracle (truth) vs mlp — csi300" in page
    row = ["all", "mhc", "mlp", f"{w['mean_a']:.4f}", f"{w['mean_b']:.4f}",
           f"{w['mean_diff']:.4f}", f"{100 * w['win_rate']:.1f}%", f"{w['t_nw']:.2f}",
           f"[{w['ci_low']:.4f}, {w['ci_high']:.4f}]", str(w["n"])]  # fmt: skip
    cells = "".join(
        f'<td class="l">{c}</td>' if i < 3 else f'<td class="neg">{c}</td>'
        if c.startswith("-") and len(c) > 1 else f"<td>{c}</td>"
        for i, c in enumerate(row)
    )  # fmt: skip
    assert cells in page
