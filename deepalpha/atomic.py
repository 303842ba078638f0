"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A crash, a refusal or a full disk therefore leaves either the old file or the new one, never a
half-written one; an ``OSError`` while writing becomes a `DataError` naming the target file and
the temporary file is removed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deepalpha.errors import ConfigError, DataError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was; an ``OSError``
    (disk full, read-only folder) is re-raised as `DataError` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise DataError(f"cannot write: {e.strerror or e}", file=path) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(p: Path) -> None:
    try:
        p.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see `atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` (and parents) and prove a file can be written there; `ConfigError`
    naming the folder otherwise. The probe file is removed."""
    folder = Path(folder)
    probe = folder / f".write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"probe")
    except OSError as e:
        raise ConfigError(
            f"cannot write to the output folder {folder}: {e.strerror or e}"
        ) from None
    finally:
        _unlink(probe)
    return folder
