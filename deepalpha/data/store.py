"""On-disk cache of assembled panels.

Layout of one entry (a folder named by the key)::

    <cache_dir>/panel-<key>/
        data.npy     float32[F, T, N]  (uncompressed, loaded memory-mapped copy-on-write)
        masks.npy    bool[M, T, N]
        dates.npy    datetime64[D][T]
        assets.npy   <U8[N]
        meta.json    {"fields": [...], "masks": [...], "meta": {...}}

The key is a SHA-256 over the source files' (path, size, mtime_ns) and the load options, so any
change of a source file or option misses the cache. An entry is written to a temporary folder and
renamed into place, so a crash never leaves a half-written entry that could be read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.data.panel import Panel


def default_cache_dir() -> Path:
    """``$DEEPALPHA_CACHE`` or ``~/.cache/deepalpha``."""
    env = os.environ.get("DEEPALPHA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "deepalpha"


def cache_key(files: Iterable[str | Path], options: dict[str, Any]) -> str:
    """Hex key from each file's (path, size, mtime_ns) -- absent files count as absent -- and the
    JSON of ``options``."""
    h = hashlib.sha256()
    for f in files:
        p = str(f)
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{p}\0absent\n".encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def digest(files: Iterable[str | Path]) -> str:
    """SHA-256 (hex, 16 chars) of the contents of small files (e.g. the loader's source)."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def save_panel(panel: Panel, folder: str | Path) -> Path:
    """Write ``panel`` to ``folder`` atomically (temp folder + rename). Returns the folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        np.save(tmp / "data.npy", np.ascontiguousarray(panel.data), allow_pickle=False)
        names = sorted(panel.masks)
        T, N, _ = panel.shape
        m = np.empty((len(names), T, N), dtype=bool)
        for i, k in enumerate(names):
            m[i] = panel.masks[k]
        np.save(tmp / "masks.npy", m, allow_pickle=False)
        np.save(tmp / "dates.npy", panel.dates.astype("datetime64[D]"), allow_pickle=False)
        np.save(tmp / "assets.npy", np.asarray(panel.assets).astype("U8"), allow_pickle=False)
        (tmp / "meta.json").write_text(
            json.dumps(
                {"fields": list(panel.fields), "masks": names, "meta": panel.meta},
                default=str,
                ensure_ascii=False,
            )
        )
        try:
            os.replace(tmp, folder)  # atomic on POSIX when folder is absent or empty
        except OSError:
            # Another process won the race: keep its entry.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_panel(folder: str | Path, *, mmap: bool = True) -> Panel:
    """Read a folder written by `save_panel`. With ``mmap`` the data and masks are memory-mapped
    copy-on-write (in-place edits stay private to the process and never touch the cache)."""
    folder = Path(folder)
    mode = "c" if mmap else None
    info = json.loads((folder / "meta.json").read_text())
    data = np.load(folder / "data.npy", mmap_mode=mode, allow_pickle=False)
    m = np.load(folder / "masks.npy", mmap_mode=mode, allow_pickle=False)
    # plain ndarray views of the maps, so results of arithmetic are not np.memmap objects
    data, m = np.asarray(data), np.asarray(m)
    masks = {k: m[i] for i, k in enumerate(info["masks"])}
    dates = np.load(folder / "dates.npy", allow_pickle=False)
    assets = np.load(folder / "assets.npy", allow_pickle=False)
    meta = dict(info["meta"])
    meta["cache"] = str(folder)
    return Panel(data, dates, assets, tuple(info["fields"]), masks, meta)


def entry(key: str, cache_dir: str | Path | None = None) -> Path:
    """Folder of the cache entry for ``key``."""
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def load_cached(key: str, cache_dir: str | Path | None = None) -> Panel | None:
    """The cached panel for ``key``, or None when absent or unreadable (then it is rebuilt)."""
    folder = entry(key, cache_dir) / f"panel-{key}"
    if not (folder / "meta.json").is_file():
        return None
    try:
        panel = load_panel(folder)
    except (OSError, ValueError, KeyError):
        return None
    try:
        os.utime(folder)  # recently used entries survive `prune`
    except OSError:
        pass
    return panel


def save_cached(
    key: str, panel: Panel, cache_dir: str | Path | None = None, *, keep: int | None = None
) -> Path | None:
    """Store ``panel`` under ``key``, then keep only the ``keep`` most recently written entries
    (default ``$DEEPALPHA_CACHE_KEEP`` or 6; a full CN panel is ~0.9 GB). A cache that cannot be
    written is skipped silently (returns None) so a read-only home never breaks a load."""
    try:
        out = save_panel(panel, entry(key, cache_dir) / f"panel-{key}")
    except OSError:
        return None
    prune(entry(key, cache_dir), keep=keep, protect=out)
    return out


def prune(cache_dir: str | Path, *, keep: int | None = None, protect: Path | None = None) -> int:
    """Delete the oldest ``panel-*`` entries beyond ``keep``; returns how many were removed.
    (Deleting an entry another process has memory-mapped is safe on POSIX.)"""
    if keep is None:
        keep = int(os.environ.get("DEEPALPHA_CACHE_KEEP", "6"))
    try:
        entries = [p for p in Path(cache_dir).iterdir() if p.name.startswith("panel-")]
    except OSError:
        return 0
    entries.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    removed = 0
    for p in entries[max(keep, 1) :]:
        if protect is not None and p == protect:
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed += 1
    return removed
