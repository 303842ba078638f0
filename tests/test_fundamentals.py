"""Quarterly fundamentals -> daily fields: publication lags, as-of logic, carried market cap."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_data_errors import tiny_dates, write_tiny_cn

from deepalpha.data import fundamentals as fu
from deepalpha.data.cn import load_cn
from deepalpha.errors import DataError


def D(s):
    return np.datetime64(s, "D")


def test_publication_deadlines():
    p = np.array(["2022-03-31", "2022-06-30", "2022-09-30", "2022-12-31"], dtype="datetime64[D]")
    got = fu.publication_deadline(p)
    want = np.array(["2022-04-30", "2022-08-31", "2022-10-31", "2023-04-30"], dtype="datetime64[D]")
    np.testing.assert_array_equal(got, want)


def _reference(periods, values, dates, lagged):
    """For every day: the latest usable period's row, by brute force (slow, obviously right)."""
    T, M = len(dates), values.shape[1]
    out = np.full((T, M), np.nan, np.float32)
    keep = fu.is_quarter_end(periods) & np.isfinite(values).any(1)
    for t, d in enumerate(dates):
        best = None
        for i, p in enumerate(periods):
            if not keep[i]:
                continue
            usable = d > fu.publication_deadline(np.array([p]))[0] if lagged else d >= p
            if usable and (best is None or p > periods[best]):
                best = i
        if best is not None:
            out[t] = values[best]
    return out


@pytest.mark.parametrize("lagged", [False, True])
def test_to_daily_matches_reference(lagged):
    rng = np.random.default_rng(0)
    periods = np.array(
        ["2019-12-31", "2020-03-31", "2020-06-30", "2020-07-31", "2020-09-30", "2020-12-31"],
        dtype="datetime64[D]",
    )
    vals = rng.normal(size=(6, 5))
    vals[1, 2] = np.nan
    vals[3] = np.nan
    vals[3, 0] = 5.0  # junk month-end row
    dates = tiny_dates(260, "2020-01-02")
    codes = np.array(["SH600000", "SH600001", "SZ000001", "SZ000002", "SZ300001"])
    assets = np.array(["SZ000001", "SH600000", "BJ430017"])  # reordered, one unknown
    got = fu.to_daily(periods, codes, vals, dates, assets, lagged=lagged)
    ref = _reference(periods, vals, dates, lagged)
    cols = [2, 0]
    np.testing.assert_array_equal(got[:, :2], ref[:, cols])
    assert np.isnan(got[:, 2]).all()
    assert not (got == 5.0).any()


def test_report_data_waits_for_the_deadline():
    periods = np.array(["2021-12-31", "2022-12-31"], dtype="datetime64[D]")
    vals = np.array([[1.0], [2.0]])
    dates = tiny_dates(100, "2023-03-20")
    got = fu.to_daily(
        periods, np.array(["SH600000"]), vals, dates, np.array(["SH600000"]), lagged=True
    )
    assert (got[dates <= D("2023-04-30"), 0] == 1.0).all()
    assert (got[dates > D("2023-04-30"), 0] == 2.0).all()
    # market data is known on the period end itself
    got = fu.to_daily(
        periods, np.array(["SH600000"]), vals, dates, np.array(["SH600000"]), lagged=False
    )
    assert (got[:, 0] == 2.0).all()


def test_q1_supersedes_annual_on_the_same_day():
    periods = np.array(["2022-12-31", "2023-03-31"], dtype="datetime64[D]")
    vals = np.array([[10.0], [3.0]])
    dates = tiny_dates(40, "2023-04-20")
    got = fu.to_daily(
        periods, np.array(["SH600000"]), vals, dates, np.array(["SH600000"]), lagged=True
    )
    assert np.isnan(got[dates <= D("2023-04-30"), 0]).all()
    assert (got[dates > D("2023-04-30"), 0] == 3.0).all()


def _mktcap_reference(periods, codes, mv, dates, assets, close):
    T, N = close.shape
    out = np.full((T, N), np.nan)
    keep = fu.is_quarter_end(periods) & np.isfinite(mv).any(1)
    for n, a in enumerate(assets):
        if a not in codes:
            continue
        m = list(codes).index(a)
        for t, d in enumerate(dates):
            cand = [i for i in range(len(periods)) if keep[i] and periods[i] <= d]
            cand = [i for i in cand if np.isfinite(mv[i, m])]
            if not cand:
                continue
            i = max(cand, key=lambda k: periods[k])
            ref = max(int(np.searchsorted(dates, periods[i], "right")) - 1, 0)
            out[t, n] = mv[i, m] * 1e4 * close[t, n] / close[ref, n]
    return out


def test_carry_mktcap_matches_reference():
    rng = np.random.default_rng(2)
    dates = tiny_dates(200, "2020-01-02")
    periods = np.array(
        ["2019-12-31", "2020-03-31", "2020-06-30", "2020-08-31", "2020-09-30"],
        dtype="datetime64[D]",
    )
    codes = np.array(["SH600000", "SZ000001", "SZ300001"])
    mv = rng.uniform(1e5, 1e6, (5, 3))
    mv[2, 1] = np.nan  # a gap: carry the previous period
    mv[0, 2] = np.nan  # no value before 2020-03-31
    mv[3] = np.nan
    assets = np.array(["SZ300001", "SH600000", "SZ000001", "SZ000002"])
    close = np.exp(np.cumsum(rng.normal(0, 0.02, (200, 4)), 0)).astype(np.float32)
    close[:30, 0] = np.nan  # listed late
    got = fu.carry_mktcap(periods, codes, mv, dates, assets, close)
    ref = _mktcap_reference(periods, codes, mv, dates, assets, close)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert np.isnan(got[:, 3]).all()
    t = int(np.searchsorted(dates, D("2020-06-30"), "right")) - 1
    assert got[t, 1] == pytest.approx(mv[2, 0] * 1e4, rel=1e-6)  # on the period end: the source


def test_read_wide_csv_errors(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(",600000.SH,000001.SZ\n20200331,1,2\n2020-06-30,3,4\n")
    with pytest.raises(DataError, match="YYYYMMDD") as e:
        fu.read_wide_csv(p)
    assert e.value.file == str(p)
    p.write_text(",600000.SH,000001.SZ\n20200331,1,abc\n")
    with pytest.raises(DataError, match="non-numeric"):
        fu.read_wide_csv(p)
    p.write_text(",600000.SH,60000X.SH\n20200331,1,2\n")
    with pytest.raises(DataError, match="unknown stock-code style") as e:
        fu.read_wide_csv(p)
    assert e.value.code == "60000X.SH"
    with pytest.raises(DataError, match="missing fundamentals"):
        fu.read_wide_csv(tmp_path / "nope.csv")


def test_loader_fundamentals_on_tiny_layout(tmp_path):
    root = write_tiny_cn(tmp_path / "cn")
    p = load_cn(root, cache=False, fields=["pe", "roe", "mktcap", "close"])
    per, codes, vals = fu.read_wide_csv(root / "fundamentals" / "roe.csv")
    d = p.dates
    j = list(p.assets).index("SH600000")
    m = list(codes).index("SH600000")
    # 2020-06-01..2020-06-30: Q1 2020 report (deadline 04-30) is usable
    assert p["roe"][0, j] == pytest.approx(vals[list(per).index(D("2020-03-31")), m], rel=1e-6)
    # H1 2020 only from the first trading day after 2020-08-31
    h1 = vals[list(per).index(D("2020-06-30")), m]
    assert not np.isclose(p["roe"][d <= D("2020-08-31"), j], h1).any()
    assert np.allclose(p["roe"][(d > D("2020-08-31")) & (d <= D("2020-10-31")), j], h1)
    # pe of SZ300001 is empty in 2020-06-30 (a loss maker): NaN, not last quarter's value
    k = list(p.assets).index("SZ300001")
    assert np.isnan(p["pe"][(d >= D("2020-06-30")) & (d < D("2020-09-30")), k]).all()
    # the junk 2020-07-31 row (9e12) is ignored
    assert np.nanmax(p["mktcap"]) < 1e15 and np.nanmax(p["roe"]) < 1e12


@pytest.mark.realdata
@pytest.mark.slow
def test_real_annual_roe_not_visible_before_deadline(cn_path, tmp_path):
    """Perturb the 2022 annual ROE row; nothing on or before 2023-04-30 may change."""
    root = tmp_path / "cn"
    root.mkdir()
    for sub in ("prices", "index_membership", "industry"):
        os.symlink(cn_path / sub, root / sub)
    (root / "fundamentals").mkdir()
    for f in Path(cn_path / "fundamentals").iterdir():
        if f.name != "roe.csv":
            os.symlink(f, root / "fundamentals" / f.name)
    lines = (cn_path / "fundamentals" / "roe.csv").read_text().splitlines()
    out, hit = [], 0
    for ln in lines:
        if ln.startswith("20221231,"):
            cells = ln.split(",")
            cells[1:] = ["123456" if c.strip() else "" for c in cells[1:]]
            ln, hit = ",".join(cells), hit + 1
        out.append(ln)
    assert hit == 1
    (root / "fundamentals" / "roe.csv").write_text("\n".join(out) + "\n")

    base = load_cn(cn_path, fields=["roe"], cache=False)
    pert = load_cn(root, fields=["roe"], cache=False)
    before = base.dates <= D("2023-04-30")
    np.testing.assert_array_equal(base["roe"][before], pert["roe"][before])
    assert not (pert["roe"][before] == 123456).any()
    # after the deadline the perturbed value shows wherever Q1 2023 is missing, never elsewhere
    after = ~before
    changed = ~np.isclose(base["roe"][after], pert["roe"][after], equal_nan=True)
    assert (pert["roe"][after][changed] == 123456).all()
