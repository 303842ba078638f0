"""Backtest inputs that are well-formed but degenerate: an empty benchmark membership on the
rebalance dates, NaN/inf scores (refused, or dropped and counted with --drop-nonfinite), an
empty prediction file. Each is one error line naming the file, index or date; exit code 2."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from cli_main import assert_one_line_error, run_main
from test_data_errors import tiny_dates, write_tiny_cn
from test_portfolio_enhance import CFG, run, synthetic_market

from deepalpha.errors import DataError
from deepalpha.guards import check_members, finite_scores


@pytest.fixture(scope="module")
def small():
    return synthetic_market(T=80, N=30, P=3, n_index=10)


def test_empty_membership_is_refused(small):
    m = dict(small)
    m["members"] = np.zeros_like(m["members"])
    with pytest.raises(DataError, match="csi500 has no members with a price") as e:
        run(m, m["truth"], CFG)
    assert e.value.date is not None


def test_check_members_names_first_empty_date():
    dates = tiny_dates(10)
    n = np.array([5, 5, 0, 5, 0, 5, 5, 5, 5, 5])
    check_members(n, dates, np.array([0, 1, 3]), "csi300")
    with pytest.raises(DataError, match=r"on 2 of 3 rebalance") as e:
        check_members(n, dates, np.array([1, 2, 4]), "csi300", file="m.txt")
    assert e.value.date == str(dates[2]) and e.value.file == "m.txt"


def test_infinite_scores_are_refused_by_the_engine(small):
    s = small["truth"].copy()
    s[5, 3] = np.inf
    with pytest.raises(DataError, match="1 infinite score"):
        run(small, s, CFG)


def _preds(scores):
    d = tiny_dates(len(scores))
    return pl.DataFrame(
        {"date": d, "asset": ["SH600000"] * len(scores), "score": scores},
        schema={"date": pl.Date, "asset": pl.String, "score": pl.Float64},
    )


def test_finite_scores_refuse_or_drop_and_count():
    df = _preds([1.0, np.inf, np.nan, -np.inf, 2.0])
    with pytest.raises(DataError, match=r"3 of 5 scores are NaN or infinite.*--drop-nonfinite"):
        finite_scores(df, file="p.parquet")
    kept, n = finite_scores(df, drop=True)
    assert n == 3 and kept["score"].to_list() == [1.0, 2.0]
    same, n0 = finite_scores(_preds([1e30, -1e30]))
    assert n0 == 0 and same.height == 2
    with pytest.raises(DataError, match="every one of the 2 scores"):
        finite_scores(_preds([np.nan, np.inf]), drop=True)
    with pytest.raises(DataError, match="no rows"):
        finite_scores(_preds([]))


# ------------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("bt")
    cn = write_tiny_cn(root / "cn")
    d = tiny_dates(120)
    codes = ["SH600000", "SZ300001", "SH688001", "SZ000002"]
    rng = np.random.default_rng(0)
    base = pl.DataFrame(
        {"date": np.repeat(d[20:100], len(codes)), "asset": np.tile(codes, 80)},
        schema={"date": pl.Date, "asset": pl.String},
    )
    rows = range(base.height)
    ok = base.with_columns(pl.Series("score", rng.standard_normal(len(rows))))
    ok.write_parquet(root / "ok.parquet")
    inf = ok.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(np.inf).otherwise("score").alias("score")
    )
    inf.write_parquet(root / "inf.parquet")
    ok.with_columns(pl.lit(np.nan).alias("score")).write_parquet(root / "nan.parquet")
    ok.head(0).write_parquet(root / "empty.parquet")
    return root, cn


def test_cli_inf_scores(tiny, capsys):
    root, cn = tiny
    r = run_main(["backtest", root / "inf.parquet", "--data", cn], capsys)
    assert_one_line_error(
        r, "1 of 320 scores are NaN or infinite", "--drop-nonfinite", "inf.parquet"
    )


@pytest.mark.parametrize("flag", [[], ["--drop-nonfinite"]])
def test_cli_nan_only_scores(tiny, capsys, flag):
    root, cn = tiny
    r = run_main(["backtest", root / "nan.parquet", "--data", cn, *flag], capsys)
    assert_one_line_error(r, "every one of the 320 scores is NaN or infinite", "nan.parquet")


def test_cli_empty_prediction_file(tiny, capsys):
    root, cn = tiny
    r = run_main(["backtest", root / "empty.parquet", "--data", cn], capsys)
    assert_one_line_error(r, "no rows", "empty.parquet")


def test_cli_empty_membership_file(tiny, tmp_path, capsys):
    import shutil

    root, cn = tiny
    cn2 = tmp_path / "cn"
    shutil.copytree(cn, cn2)
    (cn2 / "index_membership" / "csi500.txt").write_text("")
    out = tmp_path / "out"
    r = run_main(
        ["backtest", root / "ok.parquet", "--data", cn2, "--index", "csi500", "--out", out],
        capsys,
    )
    assert_one_line_error(r, "csi500 has no members", "csi500.txt")
    assert not any(out.iterdir())  # nothing written


def test_cli_start_after_end(tiny, capsys):
    root, cn = tiny
    r = run_main(
        ["backtest", root / "ok.parquet", "--data", cn, "--start", "2020-09-01", "--end",
         "2020-08-01"],
        capsys,
    )  # fmt: skip
    assert_one_line_error(r, "--start 2020-09-01 is after --end 2020-08-01")


def test_cli_drop_nonfinite_counts_and_runs(tiny, tmp_path, capsys):
    root, cn = tiny
    out = tmp_path / "out"
    r = run_main(
        ["backtest", root / "inf.parquet", "--data", cn, "--drop-nonfinite", "--out", out], capsys
    )
    err = " ".join(r.err.split())
    assert r.code == 0, r.err
    assert "dropped 1 NaN/inf score(s)" in err and "Traceback" not in err
    assert (out / "metrics.json").is_file() and not list(out.glob(".*tmp*"))
