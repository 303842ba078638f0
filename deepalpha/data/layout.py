"""Where the files of a data folder are: the deepalpha CN layout or a plain Qlib provider folder.

Two layouts are read in place:

==================  ==========================================  ===============================
what                deepalpha (``cn``)                           Qlib provider (``qlib``)
==================  ==========================================  ===============================
calendar            ``prices/calendars/day.txt``                ``calendars/day.txt``
stock list          ``prices/instruments/all.txt``              ``instruments/all.txt``
bars                ``prices/features/<code>/<f>.day.bin``      ``features/<code>/<f>.day.bin``
membership spells   ``index_membership/csi300.txt`` ...         ``instruments/csi300.txt`` ...
fundamentals        ``fundamentals/*.csv`` (optional)            same, beside ``features/``
industries          ``industry/stock_basic.csv`` (optional)      same, beside ``features/``
==================  ==========================================  ===============================

A Qlib folder keeps Qlib's conventions (``$volume`` adjusted = shares / ``$factor``); the loader
converts them (see `deepalpha.data.cn`). The ``prices/`` folder of a deepalpha layout is itself a
Qlib folder; named directly, it is read as the deepalpha layout of its parent (so that its
membership, fundamentals and volume convention are not lost).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deepalpha.errors import DataError

LayoutKind = Literal["cn", "qlib"]

#: universe name -> spell file name (in ``index_membership/`` or Qlib's ``instruments/``)
UNIVERSE_FILES = {
    "csi300": "csi300.txt",
    "csi500": "csi500.txt",
    "csi800": "csi800.txt",
    "csi1000": "csi1000.txt",
    "all": "csiall.txt",
}


@dataclass(frozen=True)
class Layout:
    """Paths of one data folder.

    ``root`` is the folder the user named (after resolving a ``prices/`` folder to its parent),
    ``prices`` the folder holding ``calendars/``, ``instruments/`` and ``features/``, and
    ``membership`` the folder of index spell files. ``note`` says how the folder was read when
    that is not obvious (a caveat for reports).
    """

    root: Path
    kind: LayoutKind
    prices: Path
    membership: Path
    note: str | None = None

    @property
    def fundamentals(self) -> Path:
        return self.root / "fundamentals"

    @property
    def industry(self) -> Path:
        return self.root / "industry"

    @property
    def instruments_file(self) -> Path:
        return self.prices / "instruments" / "all.txt"

    def bin(self, code: str, field: str) -> str:
        """Path of one ``.bin`` as a string (called once per file: cheaper than ``Path``)."""
        return f"{os.fspath(self.prices)}/features/{code.lower()}/{field}.day.bin"

    def universe_file(self, name: str) -> Path:
        """Spell file of universe ``name`` (a key of `UNIVERSE_FILES`)."""
        return self.membership / UNIVERSE_FILES[name]


def detect_layout(path: str | Path) -> Layout:
    """The `Layout` of the folder at ``path``.

    * ``prices/`` inside -> the deepalpha layout (its own file errors name the missing file);
    * ``calendars/day.txt`` or ``features/`` inside -> a plain Qlib provider folder, unless the
      folder is the ``prices/`` folder of a deepalpha layout (a sibling ``index_membership/``):
      then the parent is read, with a note;
    * otherwise `DataError` naming both expected layouts.
    """
    root = Path(path).expanduser().resolve()
    if (root / "prices").is_dir():
        return Layout(root, "cn", root / "prices", root / "index_membership")
    if (root / "calendars" / "day.txt").is_file() or (root / "features").is_dir():
        if root.name == "prices" and (root.parent / "index_membership").is_dir():
            parent = root.parent
            note = f"{root} is the prices/ folder of a deepalpha data folder: read {parent}"
            return Layout(parent, "cn", root, parent / "index_membership", note)
        return Layout(root, "qlib", root, root / "instruments")
    if not root.is_dir():
        raise DataError("data folder not found", file=root)
    raise DataError(
        "not a data folder: expected prices/calendars/day.txt (deepalpha layout) or "
        "calendars/day.txt, instruments/ and features/ (a Qlib provider folder)",
        file=root,
    )


def as_layout(path: str | Path | Layout) -> Layout:
    """``path`` as a `Layout` (a `Layout` passes through)."""
    return path if isinstance(path, Layout) else detect_layout(path)
