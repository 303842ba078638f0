"""Real-data evidence behind the fidelity fixes of issue 17 (``../shared/data/cn``; skipped when
absent). Cheap checks on the fundamentals files, no model build."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.realdata]


def _quarterly(cn_path, name):
    from deepalpha.data.fundamentals import is_quarter_end, read_wide_csv

    periods, codes, v = read_wide_csv(cn_path / "fundamentals" / f"{name}.csv")
    q = is_quarter_end(periods)
    return periods[q], codes, v[q]


def test_missing_dividend_yield_behaves_like_no_dividend(cn_path):
    """Item 3 evidence: dv_ratio NaN next to a valid pb is (almost) never a gap inside a payer's
    record, and after a reported value it follows a 0 in most cases -- so it is a zero yield."""
    per, codes, dv = _quarterly(cn_path, "dv_ratio")
    per2, codes2, pb = _quarterly(cn_path, "pb")
    assert (per == per2).all() and (codes == codes2).all()
    valid = np.isfinite(pb)
    nan = valid & ~np.isfinite(dv)
    share = nan.sum() / valid.sum()
    assert 0.1 < share < 0.4  # the 9-38 % of the issue (24 % over all quarters)
    between_payers = nan[1:-1] & (dv[:-2] > 0) & (dv[2:] > 0)
    assert between_payers.sum() < 1e-3 * nan.sum()
    prev = np.full(dv.shape[1], np.nan)
    after_zero = after_any = 0
    for i in range(len(per)):
        m = nan[i] & np.isfinite(prev)
        after_any += int(m.sum())
        after_zero += int((m & (prev == 0)).sum())
        prev = np.where(np.isfinite(dv[i]), dv[i], prev)
    assert after_zero > 0.75 * after_any


def test_report_fields_align_report_periods(cn_path):
    """Item 4: ebit_yoy compares the same report period a year apart and is not usable before
    the publication deadline."""
    from deepalpha.data.fundamentals import to_daily
    from deepalpha.risk.descriptors import period_yoy
    from deepalpha.risk.model import report_fields

    per, codes, ebit = _quarterly(cn_path, "ebit")
    dates = np.array(["2019-04-30", "2019-05-06", "2019-09-02"], dtype="datetime64[D]")
    assets = codes[:200]
    f = report_fields(cn_path, dates, assets)
    g = period_yoy(per, ebit)
    row = {str(p): i for i, p in enumerate(per.astype(str).tolist())}
    # 2019-04-30: Q3 2018 in force (Q1 2019 / annual 2018 due that day, usable the day after)
    exp = g[row["2018-09-30"], :200]
    np.testing.assert_allclose(f["ebit_yoy"][0], exp.astype(np.float32), equal_nan=True)
    np.testing.assert_allclose(
        f["ebit_yoy"][1], g[row["2019-03-31"], :200].astype(np.float32), equal_nan=True
    )
    np.testing.assert_allclose(
        f["ebit_yoy"][2], g[row["2019-06-30"], :200].astype(np.float32), equal_nan=True
    )
    assert np.isfinite(f["ebit_ttm"][2]).mean() > 0.3
    d = to_daily(per, codes, ebit, dates, assets, lagged=True)
    assert np.isfinite(d).any()
