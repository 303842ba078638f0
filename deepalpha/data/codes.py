"""One normalisation for the three stock-code styles found in A-share data.

Canonical form: exchange prefix in upper case + 6 digits, e.g. ``SH600000``, ``SZ000001``,
``BJ430017``. Accepted inputs: ``SH600000`` / ``sh600000`` (Qlib), ``600000.SH`` (Tushare),
``sh.600000`` (baostock).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from deepalpha.errors import DataError

EXCHANGES = ("SH", "SZ", "BJ")
_PREFIX = re.compile(r"^(SH|SZ|BJ)\.?(\d{6})$")
_SUFFIX = re.compile(r"^(\d{6})\.(SH|SZ|BJ)$")


def normalize_code(code: str, *, file: str | None = None) -> str:
    """Return the canonical ``SH600000`` form of one code; raise `DataError` on an unknown style."""
    s = str(code).strip().upper()
    m = _PREFIX.match(s)
    if m:
        return m.group(1) + m.group(2)
    m = _SUFFIX.match(s)
    if m:
        return m.group(2) + m.group(1)
    raise DataError(
        "unknown stock-code style (expected SH600000, 600000.SH or sh.600000)",
        file=file,
        code=str(code),
    )


def normalize_codes(codes: Iterable[str], *, file: str | None = None) -> np.ndarray:
    """Vectorised `normalize_code`: ``str[N]`` in, canonical ``str[N]`` (numpy unicode) out."""
    return np.array([normalize_code(c, file=file) for c in codes], dtype="U8")


def to_tushare(code: str) -> str:
    """``SH600000`` -> ``600000.SH``."""
    c = normalize_code(code)
    return f"{c[2:]}.{c[:2]}"


def to_qlib_dir(code: str) -> str:
    """``SH600000`` -> ``sh600000`` (folder name under ``prices/features``)."""
    return normalize_code(code).lower()


def board_of(code: str) -> str:
    """Board of a canonical code: ``main``, ``chinext`` (SZ300/301), ``star`` (SH688/689) or ``bj``."""
    c = normalize_code(code)
    if c.startswith("BJ"):
        return "bj"
    if c.startswith("SH68"):
        return "star"
    if c.startswith("SZ30"):
        return "chinext"
    return "main"


def is_index_code(code: str) -> bool:
    """True for the index series stored among the prices (SH000xxx, SZ399xxx)."""
    c = normalize_code(code)
    return c.startswith("SH000") or c.startswith("SZ399")
