import pytest

from deepalpha.data.codes import board_of, normalize_code, normalize_codes, to_qlib_dir, to_tushare
from deepalpha.errors import DataError


@pytest.mark.parametrize(
    "raw, want",
    [
        ("SH600000", "SH600000"),
        ("sh600000", "SH600000"),
        ("600000.SH", "SH600000"),
        ("sh.600000", "SH600000"),
        ("000001.SZ", "SZ000001"),
        ("sz.000001", "SZ000001"),
        ("430017.BJ", "BJ430017"),
        (" SZ300750 ", "SZ300750"),
    ],
)
def test_normalize(raw, want):
    assert normalize_code(raw) == want


@pytest.mark.parametrize("bad", ["600000", "XX600000", "600000.HK", "SH60000", ""])
def test_unknown_style_names_code_and_file(bad):
    with pytest.raises(DataError, match="unknown stock-code style") as e:
        normalize_code(bad, file="x.csv")
    assert "file=x.csv" in str(e.value)


def test_round_trips_and_boards():
    assert list(normalize_codes(["600000.SH", "sz.000001"])) == ["SH600000", "SZ000001"]
    assert to_tushare("sh600000") == "600000.SH"
    assert to_qlib_dir("600000.SH") == "sh600000"
    assert [board_of(c) for c in ("SH600000", "SZ300750", "SH688981", "BJ430017")] == [
        "main",
        "chinext",
        "star",
        "bj",
    ]
