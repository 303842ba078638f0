"""Our panel out again: a plain Qlib provider folder (for users who then run Qlib) and long
Parquet tables (the input shape of `deepalpha data import`).

Qlib folder (`export_qlib`): ``calendars/day.txt``; ``instruments/all.txt`` (each stock's listed
span) and ``instruments/{csi300,csi500,csi800,csi1000,csiall}.txt`` spells from the panel's
point-in-time masks (``csiall`` = the panel's ``all`` universe); ``features/<code>/<field>.day.bin``
for ``open, high, low, close, vwap, factor`` (back-adjusted) and ``volume`` in Qlib's convention
(shares / factor), plus index bars when given. Long tables (`export_long`): ``bars.parquet``
(``date, code, open, high, low, close, volume, factor[, vwap, mktcap, ...]``, back-adjusted,
volume in shares) and ``membership.parquet`` (``index, code, start, end``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from deepalpha.data.panel import Panel
from deepalpha.data.qlib_bin import write_calendar
from deepalpha.errors import ConfigError

QLIB_FIELDS = ("open", "high", "low", "close", "vwap", "factor", "volume")
UNIVERSE_OUT = {
    "csi300": "csi300",
    "csi500": "csi500",
    "csi800": "csi800",
    "csi1000": "csi1000",
    "all": "csiall",
}


def mask_to_spells(
    mask: np.ndarray, dates: np.ndarray, assets: np.ndarray
) -> list[tuple[str, np.datetime64, np.datetime64]]:
    """``bool[T, N]`` -> inclusive spells ``(code, first day, last day)`` of consecutive trading
    days, sorted by code and start (the inverse of `universe.spells_to_mask` on ``dates``)."""
    m = np.asarray(mask, bool)
    pad = np.zeros((1, m.shape[1]), bool)
    d = np.diff(np.vstack([pad, m, pad]).astype(np.int8), axis=0)
    a, t0 = np.nonzero(d.T == 1)  # transposed: sorted by asset, then time
    _, t1 = np.nonzero(d.T == -1)
    assets = np.asarray(assets)
    return [
        (str(assets[k]), dates[s], dates[e - 1])
        for k, s, e in zip(a.tolist(), t0.tolist(), t1.tolist(), strict=True)
    ]


def _prepare(out: Path, overwrite: bool) -> Path:
    out = Path(out).expanduser().resolve()
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it")
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _finish(tmp: Path, out: Path) -> Path:
    out = Path(out).expanduser().resolve()
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def export_qlib(
    panel: Panel, out: str | Path, *, indices: Panel | None = None, overwrite: bool = False
) -> Path:
    """Write ``panel`` (fields ``open, high, low, close, volume, factor``; ``vwap`` optional)
    and optional index bars as a Qlib provider folder at ``out``; returns it."""
    tmp = _prepare(Path(out), overwrite)
    try:
        write_calendar(tmp, panel.dates)
        listed = panel.mask("listed")
        rows = []
        for p, is_index in ((panel, False), (indices, True)):
            if p is None:
                continue
            lst = np.isfinite(p.field("close")) if is_index else listed
            names = [f for f in QLIB_FIELDS if p.has(f)]
            for n, code in enumerate(p.assets.tolist()):
                t = np.flatnonzero(lst[:, n])
                if t.size == 0:
                    continue
                s, e = int(t[0]), int(t[-1])
                rows.append(f"{code}\t{p.dates[s]}\t{p.dates[e]}\n")
                d = tmp / "features" / code.lower()
                d.mkdir(parents=True)
                for f in names:
                    v = p.field(f)[s : e + 1, n].astype(np.float64)
                    if f == "volume" and p.has("factor"):
                        v = v / p.field("factor")[s : e + 1, n]
                    buf = np.empty(v.size + 1, dtype="<f4")
                    buf[0] = s
                    buf[1:] = v
                    buf.tofile(d / f"{f}.day.bin")
        (tmp / "instruments").mkdir()
        (tmp / "instruments" / "all.txt").write_text("".join(sorted(rows)))
        for k, name in UNIVERSE_OUT.items():
            if k in panel.masks:
                sp = mask_to_spells(panel.mask(k), panel.dates, panel.assets)
                (tmp / "instruments" / f"{name}.txt").write_text(
                    "".join(f"{c}\t{s}\t{e}\n" for c, s, e in sp)
                )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _finish(tmp, Path(out))


def export_long(panel: Panel, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``bars.parquet`` (listed stock-days, every field) and ``membership.parquet``
    (spells of the universe masks) into folder ``out``; returns it."""
    tmp = _prepare(Path(out), overwrite)
    try:
        listed = panel.mask("listed").reshape(-1)
        df = panel.to_long(dropna=False).filter(pl.Series(listed))
        df.rename({"asset": "code"}).write_parquet(tmp / "bars.parquet")
        mem = [
            (name, c, s, e)
            for k, name in UNIVERSE_OUT.items()
            if k in panel.masks
            for c, s, e in mask_to_spells(panel.mask(k), panel.dates, panel.assets)
        ]
        pl.DataFrame(
            {
                "index": [m[0] for m in mem],
                "code": [m[1] for m in mem],
                "start": np.array([m[2] for m in mem], dtype="datetime64[D]"),
                "end": np.array([m[3] for m in mem], dtype="datetime64[D]"),
            },
            schema={"index": pl.String, "code": pl.String, "start": pl.Date, "end": pl.Date},
        ).write_parquet(tmp / "membership.parquet")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _finish(tmp, Path(out))
