"""A partial ``rolling:`` block amends the system's own study instead of resetting it to the
generic `RollingConfig` defaults (which would silently swap System B's 84-month yearly study for
a 24-month monthly one)."""

from __future__ import annotations

import pytest

from deepalpha.errors import ConfigError
from deepalpha.workflows.config import parse_config


@pytest.mark.parametrize("system", ["barra_ml", "decompgrn"])
def test_partial_rolling_block_keeps_the_system_defaults(system):
    default = parse_config({"system": system}).rolling.model_dump()
    cfg = parse_config(
        {"system": system, "rolling": {"seeds": [0, 1, 2], "train": {"patience": 3}}}
    )
    got = cfg.rolling.model_dump()
    assert got["seeds"] == [0, 1, 2] and got["train"]["patience"] == 3
    assert got["train"] == {**default["train"], "patience": 3}
    assert {k: v for k, v in got.items() if k not in ("seeds", "train")} == {
        k: v for k, v in default.items() if k not in ("seeds", "train")
    }


def test_lists_are_replaced_whole_and_bad_keys_still_fail():
    cfg = parse_config({"system": "decompgrn", "rolling": {"models": [{"name": "gru"}]}})
    assert [m.name for m in cfg.rolling.models] == ["gru"]
    assert cfg.rolling.windows == [84] and cfg.rolling.frequency == "yearly"
    with pytest.raises(ConfigError, match=r"rolling\.dataset\.lenght"):
        parse_config({"system": "decompgrn", "rolling": {"dataset": {"lenght": 5}}})
