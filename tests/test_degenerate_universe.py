"""Minimum stocks per universe: an evaluation (IC, groups) over a universe that never holds three
stocks with a finite signal and label is refused naming the universe (it used to return a table
of NaN); a run checks its universes against the data before training."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.errors import ConfigError, DataError
from deepalpha.evaluate.summary import evaluate_signal
from deepalpha.guards import check_universe_size
from deepalpha.workflows.config import parse_config
from deepalpha.workflows.run import check_universes

T, N = 40, 12


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    sig = rng.standard_normal((T, N))
    lab = 0.1 * sig + rng.standard_normal((T, N))
    return sig, lab, lab * 0.1


def _ev(sig, lab, mask, ret=None):
    return evaluate_signal(sig, lab, mask, ret, horizon=1, periods_per_year=12, n_groups=5,
                           decay_horizons=())  # fmt: skip


def test_small_universe_is_refused_by_name():
    sig, lab, ret = _inputs()
    two = np.zeros((T, N), bool)
    two[:, :2] = True
    with pytest.raises(DataError, match=r"universe 'csi300' has at most 2 usable stock"):
        _ev(sig, lab, {"all": np.ones((T, N), bool), "csi300": two}, ret)


@pytest.mark.parametrize("kind", ["all_nan_signal", "all_nan_label", "empty_mask"])
def test_nothing_to_evaluate_is_refused(kind):
    sig, lab, ret = _inputs()
    mask = np.ones((T, N), bool)
    if kind == "all_nan_signal":
        sig[:] = np.nan
    elif kind == "all_nan_label":
        lab[:] = np.nan
    else:
        mask[:] = False
    match = "signal has no finite value" if kind == "all_nan_signal" else "at most 0 usable"
    with pytest.raises(DataError, match=match):
        _ev(sig, lab, mask, ret)


def test_no_dates_is_refused():
    sig, lab, ret = _inputs()
    with pytest.raises(DataError, match="no dates to evaluate"):
        _ev(sig[:0], lab[:0], None, ret[:0])


@pytest.mark.parametrize("fill", [0.0, 1e30, -1e30])
def test_constant_and_extreme_signals_give_finite_or_nan(fill):
    sig, lab, ret = _inputs()
    sig[:, :] = fill
    sig[::3, 0] = 1.0  # a few dates where one stock differs
    res = _ev(sig, lab, np.ones((T, N), bool), ret)
    for k in ("ic", "rank_ic"):
        s = res[f"{k}_series"]
        assert not np.isinf(s).any() and (np.abs(s[np.isfinite(s)]) <= 1).all()
    gr = res["groups"]["returns"]
    assert not np.isinf(gr).any()


def test_one_date_with_enough_stocks_passes():
    sig, lab, ret = _inputs()
    m = np.zeros((T, N), bool)
    m[:, :2] = True
    m[7, :5] = True
    res = _ev(sig, lab, m, ret)
    assert np.isfinite(res["ic_series"][7]) and np.isnan(res["ic_series"][6])


def test_check_universe_size_counts_per_date():
    v = np.zeros((3, 10), bool)
    v[1, :4] = True
    check_universe_size(v, "u", need=4)
    with pytest.raises(DataError, match=r"universe 'u' has at most 4.*at least 5"):
        check_universe_size(v, "u", need=5, what="groups")


class _Panel:
    def __init__(self, masks):
        self.masks = masks


def test_run_preflight_checks_universes():
    m = np.zeros((30, 50), bool)
    m[:, :40] = True
    small = np.zeros((30, 50), bool)
    small[:, :6] = True
    panel = _Panel({"all": m, "csi300": small, "tradable": m})
    b = parse_config({"system": "decompgrn", "evaluate": {"universes": ["all", "csi300"]}})
    with pytest.raises(DataError, match=r"'csi300' has at most 6.*10 groups"):
        check_universes(b, panel)
    ok = parse_config({"system": "decompgrn", "evaluate": {"universes": ["all", "csi300"],
                                                            "n_groups": 5}})  # fmt: skip
    check_universes(ok, panel)
    a = parse_config({"system": "barra_ml", "evaluate": {"universes": ["csi1000"]}})
    with pytest.raises(ConfigError, match="no universe 'csi1000'"):
        check_universes(a, panel)
