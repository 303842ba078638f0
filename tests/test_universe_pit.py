"""The `all` universe is point in time: a stock counts from its first index membership when the
folder holds only stocks selected on index membership (issue 14, item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.data.cn import load_cn
from deepalpha.data.universe import all_universe_mask, folder_is_selected, index_history
from deepalpha.errors import ConfigError, DataError


def test_index_history_is_cumulative_and_causal():
    m = np.zeros((6, 3), bool)
    m[2, 0] = True
    m[4, 1] = True
    h = index_history(m)
    np.testing.assert_array_equal(h[:, 0], [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(h[:, 1], [0, 0, 0, 0, 1, 1])
    assert not h[:, 2].any()
    # a future membership change leaves every earlier row as it was
    m2 = m.copy()
    m2[5, 2] = True
    np.testing.assert_array_equal(index_history(m2)[:5], h[:5])


def test_all_universe_rules():
    all_share = np.ones((4, 2), bool)
    union = np.zeros((4, 2), bool)
    union[2, 1] = True
    np.testing.assert_array_equal(all_universe_mask(all_share, union, "csiall"), all_share)
    pit = all_universe_mask(all_share, union, "index_history")
    np.testing.assert_array_equal(pit, [[0, 0], [0, 0], [0, 1], [0, 1]])
    with pytest.raises(DataError):
        all_universe_mask(all_share, union, "everything")


def test_folder_is_selected_needs_both_signs():
    listed = np.ones((3, 4), bool)
    members = np.zeros((3, 4), bool)
    members[1, :] = True  # every stock an index member at some time
    assets = np.array(["A", "B", "C", "D"])
    few = np.array(["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"])  # folder has 40 %
    assert folder_is_selected(members, listed, few, assets)
    # the folder holds (nearly) every CSI All Share code: a whole market, not a selection
    assert not folder_is_selected(members, listed, assets, assets)
    # stocks never in an index: not a selection on membership
    members[:, 2:] = False
    assert not folder_is_selected(members, listed, few, assets)


def test_bad_rule_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="all_universe"):
        load_cn(tmp_path, all_universe="every")  # type: ignore[arg-type]


@pytest.mark.realdata
def test_real_all_excludes_stocks_before_their_first_membership(cn_path):
    p = load_cn(cn_path, fields=["close"])
    assert p.meta["all_universe"] == "index_history"
    m = p.masks
    union = m["csi300"] | m["csi500"] | m["csi800"] | m["csi1000"]
    first = np.where(union.any(axis=0), np.argmax(union, axis=0), p.dates.size)
    # CSI All Share members (any day before their first index membership) that join later
    t17 = int(np.searchsorted(p.dates, np.datetime64("2017-01-03")))
    late = np.nonzero(first > t17 + 250)[0]
    assert late.size > 50
    for j in late[:200]:
        assert not m["all"][: first[j], j].any(), p.assets[j]
    # ... and they do count once they have been members (when CSI All Share holds them)
    j = late[0]
    raw = load_cn(cn_path, fields=["close"], all_universe="csiall").masks["all"]
    np.testing.assert_array_equal(m["all"][first[j] :, j], raw[first[j] :, j])
    # 3-7 % of the old 'all' on a 2017-2023 date was there only because it joins later
    for day in ("2017-06-30", "2020-06-30", "2023-06-30"):
        t = int(np.searchsorted(p.dates, np.datetime64(day)))
        share = 1 - m["all"][t].sum() / raw[t].sum()
        assert 0.01 < share < 0.10, (day, share)
