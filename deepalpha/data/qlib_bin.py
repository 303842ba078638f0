"""Qlib ``.day.bin`` files: little-endian float32, element 0 = calendar index of the first row,
then one value per consecutive trading day.

Layout of a Qlib-style folder::

    calendars/day.txt                   one YYYY-MM-DD a line
    instruments/all.txt                 CODE<TAB>start<TAB>end
    features/<code>/<field>.day.bin     <code> lower case, e.g. sh600000
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepalpha.errors import DataError


def read_calendar(root: str | Path) -> np.ndarray:
    """Read ``calendars/day.txt`` -> ``datetime64[D][T]``; checks sorted and unique."""
    path = Path(root) / "calendars" / "day.txt"
    if not path.is_file():
        raise DataError("missing calendar file", file=path)
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    try:
        dates = np.array(lines, dtype="datetime64[D]")
    except ValueError as e:
        raise DataError(f"unparseable date in calendar: {e}", file=path) from None
    if len(dates) == 0:
        raise DataError("empty calendar", file=path)
    d = np.diff(dates).astype(np.int64)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0)) + 1
        what = "duplicate" if d[i - 1] == 0 else "unsorted"
        raise DataError(f"{what} date in calendar", file=path, date=dates[i])
    return dates


def read_instruments(
    root: str | Path, name: str = "all"
) -> list[tuple[str, np.datetime64, np.datetime64]]:
    """Read ``instruments/<name>.txt`` -> list of ``(code, start, end)`` with codes as written."""
    path = Path(root) / "instruments" / f"{name}.txt"
    if not path.is_file():
        raise DataError("missing instruments file", file=path)
    out = []
    for i, ln in enumerate(path.read_text().splitlines(), 1):
        if not ln.strip():
            continue
        parts = ln.split("\t")
        if len(parts) < 3:
            raise DataError(f"line {i}: expected CODE<TAB>start<TAB>end", file=path)
        try:
            out.append(
                (
                    parts[0].strip(),
                    np.datetime64(parts[1].strip(), "D"),
                    np.datetime64(parts[2].strip(), "D"),
                )
            )
        except ValueError:
            raise DataError(f"line {i}: unparseable date", file=path, code=parts[0]) from None
    return out


def read_bin(
    path: str | Path, n_calendar: int, *, code: str | None = None
) -> tuple[int, np.ndarray]:
    """Read one ``.day.bin`` -> ``(start_index, float32[L])``.

    Raises `DataError` when the file is missing, empty, has a bad start index, or runs past the
    calendar (``start + L > n_calendar``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("missing .bin file", file=path, code=code)
    raw = np.fromfile(path, dtype="<f4")
    if raw.size < 1:
        raise DataError("empty .bin file", file=path, code=code)
    start = raw[0]
    if not np.isfinite(start) or start < 0 or start != int(start):
        raise DataError(f"bad start index {start!r}", file=path, code=code)
    start = int(start)
    values = raw[1:]
    if start + values.size > n_calendar:
        raise DataError(
            f".bin length disagrees with the calendar: start {start} + {values.size} rows > {n_calendar} days",
            file=path,
            code=code,
        )
    return start, values


def write_bin(path: str | Path, start: int, values: np.ndarray) -> None:
    """Write one ``.day.bin`` (``start`` = calendar index of ``values[0]``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.empty(len(values) + 1, dtype="<f4")
    out[0] = start
    out[1:] = values
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    out.tofile(tmp)
    os.replace(tmp, path)


def write_calendar(root: str | Path, dates: np.ndarray) -> None:
    p = Path(root) / "calendars" / "day.txt"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(f"{d}\n" for d in np.asarray(dates, dtype="datetime64[D]")))


def write_instruments(
    root: str | Path, rows: list[tuple[str, object, object]], name: str = "all"
) -> None:
    p = Path(root) / "instruments" / f"{name}.txt"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in rows))
