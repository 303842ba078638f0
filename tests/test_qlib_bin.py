import numpy as np
import pytest

from deepalpha.data.qlib_bin import (
    read_bin,
    read_calendar,
    read_instruments,
    write_bin,
    write_calendar,
)
from deepalpha.errors import DataError


def test_bin_round_trip(tmp_path):
    v = np.array([1.5, 2.5, np.nan], dtype=np.float32)
    write_bin(tmp_path / "features/sh600000/close.day.bin", 7, v)
    start, got = read_bin(tmp_path / "features/sh600000/close.day.bin", 10)
    assert start == 7
    np.testing.assert_array_equal(got, v)


def test_bin_longer_than_calendar(tmp_path):
    write_bin(tmp_path / "c.day.bin", 8, np.ones(3, np.float32))
    with pytest.raises(DataError, match="disagrees with the calendar") as e:
        read_bin(tmp_path / "c.day.bin", 10, code="SH600000")
    assert "code=SH600000" in str(e.value) and "c.day.bin" in str(e.value)


def test_calendar_errors(tmp_path):
    with pytest.raises(DataError, match="missing calendar"):
        read_calendar(tmp_path)
    write_calendar(tmp_path, np.array(["2020-01-02", "2020-01-03"], dtype="datetime64[D]"))
    assert len(read_calendar(tmp_path)) == 2
    (tmp_path / "calendars/day.txt").write_text("2020-01-03\n2020-01-02\n")
    with pytest.raises(DataError, match="unsorted date") as e:
        read_calendar(tmp_path)
    assert "2020-01-02" in str(e.value)
    (tmp_path / "calendars/day.txt").write_text("2020-01-02\n2020-01-02\n")
    with pytest.raises(DataError, match="duplicate date"):
        read_calendar(tmp_path)
    with pytest.raises(DataError, match="missing instruments"):
        read_instruments(tmp_path)
