"""Fundamentals perturbed after their publication date: no day before publication may change.

A report's value is usable from the day after its publication deadline (Q1 by 04-30, H1 by 08-31,
Q3 by 10-31, annual by 04-30 of the next year; `fundamentals.publication_deadline`). Each check
changes one report's values and asserts

- every day on or before the deadline is unchanged (bitwise), and
- some day after it changes (so the check can fail);

the mutation checks run the same comparison with the data made usable one day early (deadline
shifted by a day, or market-data timing: usable from the period end) and assert it is caught.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data_errors import write_tiny_cn

from deepalpha.data import fundamentals as fu
from deepalpha.data.cn import load_cn

PERIODS = np.array(
    ["2019-12-31", "2020-03-31", "2020-06-30", "2020-09-30", "2020-12-31"], dtype="datetime64[D]"
)
DEADLINES = {
    "2019-12-31": "2020-04-30",
    "2020-03-31": "2020-04-30",
    "2020-06-30": "2020-08-31",
    "2020-09-30": "2020-10-31",
    "2020-12-31": "2021-04-30",
}
CODES = np.array(["SH600000", "SZ000001", "SZ300001"])
DATES = np.arange(np.datetime64("2020-01-01"), np.datetime64("2021-07-01"), dtype="datetime64[D]")


def _values(i: int) -> np.ndarray:
    v = np.random.default_rng(0).normal(10, 3, (len(PERIODS), len(CODES)))
    v[2, 1] = np.nan  # a missing H1 cell is NaN after 08-31, not the Q1 value
    if i == 0:
        v[1] = np.nan  # no Q1 2020 rows (else Q1 supersedes the annual report on the same day)
    return v


def _perturbed_days(i: int, *, lagged: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(changed before-or-on-deadline days, changed after-deadline days) when report ``i`` moves."""
    v = _values(i)
    w = v.copy()
    w[i] = np.where(np.isfinite(w[i]), w[i] * 1.5 + 1.0, np.nan)
    base = fu.to_daily(PERIODS, CODES, v, DATES, CODES, lagged=lagged)
    pert = fu.to_daily(PERIODS, CODES, w, DATES, CODES, lagged=lagged)
    changed = ~((base == pert) | (np.isnan(base) & np.isnan(pert))).all(axis=1)
    dl = np.datetime64(DEADLINES[str(PERIODS[i])])
    return DATES[changed & (DATES <= dl)], DATES[changed & (DATES > dl)]


@pytest.mark.parametrize("i", range(len(PERIODS)), ids=[str(p) for p in PERIODS])
def test_report_invisible_until_its_deadline(i):
    assert str(fu.publication_deadline(PERIODS[i : i + 1])[0]) == DEADLINES[str(PERIODS[i])]
    early, late = _perturbed_days(i)
    assert early.size == 0, early[:5]
    # the change reaches the day after the deadline (the check can fail)
    dl = np.datetime64(DEADLINES[str(PERIODS[i])])
    assert late.size > 0 and late[0] == dl + 1


@pytest.mark.parametrize("i", range(len(PERIODS)), ids=[str(p) for p in PERIODS])
def test_mutation_one_day_early_is_caught(i, monkeypatch):
    """The same check fails when reports are usable one day before they must be."""
    real = fu.publication_deadline
    monkeypatch.setattr(fu, "publication_deadline", lambda p: real(p) - np.timedelta64(1, "D"))
    early, _ = _perturbed_days(i)
    assert early.size > 0 and early[0] == np.datetime64(DEADLINES[str(PERIODS[i])])
    monkeypatch.undo()
    early, _ = _perturbed_days(i, lagged=False)  # market-data timing: usable at the period end
    assert early.size > 0 and early[0] == max(PERIODS[i], DATES[0])


def _perturb_csv(src: Path, dst: Path, field: str, period: str) -> None:
    """Copy the CN layout, multiplying the ``period`` row of ``fundamentals/<field>.csv``."""
    import shutil

    shutil.copytree(src, dst)
    f = dst / "fundamentals" / f"{field}.csv"
    out, hit = [], 0
    for ln in f.read_text().splitlines():
        if ln.startswith(period + ","):
            cells = ln.split(",")
            cells[1:] = [f"{float(c) * 3 + 7:.4f}" if c.strip() else "" for c in cells[1:]]
            ln, hit = ",".join(cells), hit + 1
        out.append(ln)
    assert hit == 1
    f.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize(
    ("period", "deadline"), [("20200630", "2020-08-31"), ("20200930", "2020-10-31")]
)
def test_loader_report_fields_wait_for_publication(tmp_path, period, deadline):
    """Through `load_cn`: a report row changed after publication moves no earlier day's value
    of any report field, and does move the days after publication."""
    base_root = write_tiny_cn(tmp_path / "base")
    fields = ["roe", "roa", "debt_to_assets", "ebit"]
    base = load_cn(base_root, cache=False, fields=fields)
    dl = np.datetime64(deadline)
    for f in fields:
        pert_root = tmp_path / f"pert_{f}"
        _perturb_csv(base_root, pert_root, f, period)
        pert = load_cn(pert_root, cache=False, fields=fields)
        before = base.dates <= dl
        assert before.any() and (~before).any()
        np.testing.assert_array_equal(pert.data[:, before], base.data[:, before], err_msg=f)
        after = pert[f][~before]
        assert not np.allclose(after, base[f][~before], equal_nan=True), f
