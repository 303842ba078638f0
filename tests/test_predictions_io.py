"""Prediction files: long <-> dense, Parquet, Qlib pred.pkl and alphalens factor round trips."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from deepalpha.data.predictions import (
    dense_to_long,
    from_alphalens_factor,
    from_qlib_frame,
    long_to_dense,
    read_parquet,
    read_predictions,
    read_qlib_pickle,
    to_alphalens_factor,
    to_qlib_frame,
    write_parquet,
    write_predictions,
)
from deepalpha.errors import DataError

DATES = np.array(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"], dtype="datetime64[D]")
ASSETS = np.array(["SH600000", "SZ000001", "SZ300750", "BJ430017"])


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(len(DATES), len(ASSETS)))
    s[1, 2] = np.nan
    s[3, :] = np.nan  # an empty date
    return s


def _same_dense(df, scores):
    x, d, a = long_to_dense(df, DATES, ASSETS)
    np.testing.assert_array_equal(d, DATES)
    np.testing.assert_array_equal(a, ASSETS)
    np.testing.assert_array_equal(x, scores)  # bit-exact, NaN in the same places


def test_dense_long_round_trip(scores):
    df = dense_to_long(scores, DATES, ASSETS)
    assert df.columns == ["date", "asset", "score"]
    assert df.schema["date"] == pl.Date and df.schema["score"] == pl.Float64
    assert df.height == np.isfinite(scores).sum()
    assert df.equals(df.sort(["date", "asset"]))
    _same_dense(df, scores)
    # default grid = what the frame has (empty date and sorted assets)
    _, d, a = long_to_dense(df)
    assert len(d) == 3 and list(a) == sorted(ASSETS)
    # mask drops cells
    m = np.ones(scores.shape, bool)
    m[0, 0] = False
    assert dense_to_long(scores, DATES, ASSETS, m).height == df.height - 1


def test_parquet_round_trip(tmp_path, scores):
    df = dense_to_long(scores, DATES, ASSETS)
    p = write_parquet(df, tmp_path / "sub" / "pred.parquet")
    back = read_parquet(p)
    assert back.equals(df)
    assert read_predictions(p).equals(df)
    assert not list((tmp_path / "sub").glob(".*tmp*"))  # atomic write leaves no temp file


def test_qlib_pickle_round_trip(tmp_path, scores):
    pd = pytest.importorskip("pandas")
    df = dense_to_long(scores, DATES, ASSETS)
    frame = to_qlib_frame(df)
    assert list(frame.index.names) == ["datetime", "instrument"]
    assert list(frame.columns) == ["score"]
    assert isinstance(frame.index.get_level_values("datetime"), pd.DatetimeIndex)
    p = write_predictions(df, tmp_path / "pred.pkl")
    raw = pd.read_pickle(p)  # what Qlib reads
    pd.testing.assert_frame_equal(raw, frame)
    assert read_qlib_pickle(p).equals(df)
    # instrument-first index order and a bare Series are accepted too
    swapped = frame.swaplevel().sort_index()
    assert from_qlib_frame(swapped).equals(df)
    assert from_qlib_frame(frame["score"]).equals(df)
    _same_dense(read_predictions(p), scores)


def test_alphalens_round_trip(scores):
    pytest.importorskip("pandas")
    df = dense_to_long(scores, DATES, ASSETS)
    f = to_alphalens_factor(df)
    assert list(f.index.names) == ["date", "asset"] and f.name == "factor"
    assert from_alphalens_factor(f).equals(df)
    # a factor_data frame (with forward returns) works too
    fd = f.to_frame().assign(**{"1D": 0.0})
    assert from_alphalens_factor(fd).equals(df)


@pytest.mark.filterwarnings("ignore:The inplace keyword", "ignore:DatetimeIndex.dayofweek")
def test_alphalens_accepts_our_factor():
    pd = pytest.importorskip("pandas")
    al = pytest.importorskip("alphalens")
    T = 30
    dates = np.array(pd.bdate_range("2021-01-04", periods=T).values.astype("datetime64[D]"))
    rng = np.random.default_rng(1)
    s = rng.normal(size=(T, len(ASSETS)))
    prices = pd.DataFrame(
        np.exp(np.cumsum(0.01 * rng.normal(size=(T, len(ASSETS))), axis=0)),
        index=pd.DatetimeIndex(dates.astype("datetime64[ns]")),
        columns=list(ASSETS),
    )
    f = to_alphalens_factor(dense_to_long(s, dates, ASSETS))
    fd = al.utils.get_clean_factor_and_forward_returns(f, prices, quantiles=2, periods=(1,))
    assert len(fd) == (T - 1) * len(ASSETS)


def test_codes_are_normalised():
    df = pl.DataFrame(
        {
            "date": ["2020-01-02", "2020-01-02"],
            "asset": ["600000.SH", "sz000001"],
            "score": [1.0, 2.0],
        }
    ).with_columns(pl.col("date").str.to_date())
    x, _, a = long_to_dense(df)
    assert list(a) == ["SH600000", "SZ000001"]
    np.testing.assert_array_equal(x, [[1.0, 2.0]])


def test_bad_input_raises(tmp_path, scores):
    df = dense_to_long(scores, DATES, ASSETS)
    with pytest.raises(DataError, match="lacks column 'score'"):
        write_parquet(df.drop("score"), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="duplicate") as e:
        write_parquet(pl.concat([df, df.head(1)]), tmp_path / "x.parquet")
    assert "BJ430017" in str(e.value) and "2020-01-02" in str(e.value)  # names the row
    with pytest.raises(DataError, match="not in the target grid"):
        long_to_dense(df, DATES, ASSETS[:2])
    x, _, _ = long_to_dense(df, DATES, ASSETS[:2], strict=False)
    np.testing.assert_array_equal(x, scores[:, :2])
    with pytest.raises(DataError, match="missing prediction file"):
        read_parquet(tmp_path / "nope.parquet")
    with pytest.raises(DataError, match="unknown prediction format"):
        write_predictions(df, tmp_path / "x.csv")
    with pytest.raises(DataError, match="shape"):
        dense_to_long(scores[:, :2], DATES, ASSETS)
    bad = df.with_columns(pl.lit("XX1").alias("asset"))
    with pytest.raises(DataError, match="stock-code"):
        long_to_dense(bad)
