"""The Panel: a dense stock x date x field cube with boolean masks.

Shapes: ``T`` trading days, ``N`` assets, ``F`` fields.

The cube is stored field-major (``float32[F, T, N]``, C-contiguous) so that ``panel.field("close")``
is a contiguous ``[T, N]`` array with no copy, which is what every cross-sectional operation wants.
``panel.values`` exposes the DESIGN's ``[T, N, F]`` axis order as a (strided) view of the same
memory. Missing values are NaN.

Masks are ``bool[T, N]`` keyed by name: ``listed``, ``tradable`` and one per universe
(``csi300``, ``csi500``, ``csi800``, ``csi1000``, ``all``), point in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import DataError

UNIVERSES = ("csi300", "csi500", "csi800", "csi1000", "all")


def _as_index(labels: np.ndarray, wanted: Sequence[Any] | np.ndarray, what: str) -> np.ndarray:
    pos = {v: i for i, v in enumerate(labels.tolist())}
    out = []
    for w in np.asarray(wanted).tolist():
        if w not in pos:
            raise DataError(f"unknown {what}: {w}")
        out.append(pos[w])
    return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Panel:
    """Dense panel.

    Attributes
    ----------
    data : float32[F, T, N]
        Field-major storage; see `values` for the ``[T, N, F]`` view.
    dates : datetime64[D][T]
        Sorted, unique trading days.
    assets : str[N]
        Canonical codes (``SH600000``).
    fields : tuple[str, ...]
        ``F`` field names.
    masks : dict[str, bool[T, N]]
        ``listed``, ``tradable``, universes.
    meta : dict
        Free-form provenance (source path, caveats, options).
    """

    data: np.ndarray
    dates: np.ndarray
    assets: np.ndarray
    fields: tuple[str, ...]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        F, T, N = self.data.shape
        if self.data.dtype != np.float32:
            raise DataError(f"panel data must be float32, got {self.data.dtype}")
        if len(self.fields) != F or len(self.dates) != T or len(self.assets) != N:
            raise DataError(
                f"panel shape {self.data.shape} disagrees with fields {len(self.fields)}, "
                f"dates {len(self.dates)}, assets {len(self.assets)}"
            )
        if len(set(self.fields)) != F:
            raise DataError(f"duplicate field names: {self.fields}")
        if T > 1:
            d = np.diff(self.dates.astype("datetime64[D]").astype(np.int64))
            if (d <= 0).any():
                i = int(np.argmax(d <= 0)) + 1
                raise DataError("dates are unsorted or duplicated", date=self.dates[i])
        if len(np.unique(self.assets)) != N:
            u, c = np.unique(self.assets, return_counts=True)
            raise DataError("duplicate asset codes", code=str(u[c > 1][0]))
        for k, m in self.masks.items():
            if m.shape != (T, N) or m.dtype != np.bool_:
                raise DataError(f"mask {k!r} must be bool[{T}, {N}], got {m.dtype}{list(m.shape)}")

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, N, F)``."""
        F, T, N = self.data.shape
        return T, N, F

    @property
    def values(self) -> np.ndarray:
        """``float32[T, N, F]`` view (no copy) of `data`."""
        return self.data.transpose(1, 2, 0)

    def field(self, name: str) -> np.ndarray:
        """``float32[T, N]`` contiguous view of one field."""
        try:
            return self.data[self.fields.index(name)]
        except ValueError:
            raise DataError(
                f"unknown field {name!r}; have {list(self.fields)}", field=name
            ) from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.field(name)

    def has(self, name: str) -> bool:
        return name in self.fields

    def mask(self, name: str) -> np.ndarray:
        """``bool[T, N]`` mask by name (``listed``, ``tradable``, ``csi300``, ...)."""
        if name not in self.masks:
            raise DataError(f"unknown mask {name!r}; have {sorted(self.masks)}")
        return self.masks[name]

    # -------------------------------------------------------------- selection
    def sel(
        self,
        *,
        dates: slice | Sequence[Any] | np.ndarray | None = None,
        assets: Sequence[str] | np.ndarray | None = None,
        fields: Sequence[str] | None = None,
    ) -> Panel:
        """Select by labels. A date ``slice(start, stop)`` (inclusive labels) returns views;
        lists of labels return copies. Masks follow the selection."""
        t_idx: slice | np.ndarray = slice(None)
        n_idx: slice | np.ndarray = slice(None)
        f_idx: slice | np.ndarray = slice(None)
        if isinstance(dates, slice):
            lo = (
                0
                if dates.start is None
                else int(np.searchsorted(self.dates, np.datetime64(dates.start, "D"), "left"))
            )
            hi = (
                len(self.dates)
                if dates.stop is None
                else int(np.searchsorted(self.dates, np.datetime64(dates.stop, "D"), "right"))
            )
            t_idx = slice(lo, hi)
        elif dates is not None:
            t_idx = _as_index(self.dates, np.asarray(dates, dtype="datetime64[D]"), "date")
        if assets is not None:
            n_idx = _as_index(self.assets, assets, "asset")
        if fields is not None:
            f_idx = _as_index(np.asarray(self.fields, dtype=object), list(fields), "field")
        # Basic (view) indexing when everything is a slice; fancy indexing otherwise.
        data = self.data[f_idx][:, t_idx][:, :, n_idx]
        masks = {k: m[t_idx][:, n_idx] for k, m in self.masks.items()}
        flds = self.fields if fields is None else tuple(self.fields[i] for i in f_idx)
        return Panel(
            data,
            self.dates[t_idx],
            self.assets[n_idx],
            flds,
            masks,
            dict(self.meta),
        )

    def with_fields(self, **new: np.ndarray) -> Panel:
        """Return a panel with extra (or replaced) ``[T, N]`` fields."""
        T, N, _ = self.shape
        names = list(self.fields)
        arrays = [self.data[i] for i in range(len(names))]
        for k, v in new.items():
            v = np.asarray(v, dtype=np.float32)
            if v.shape != (T, N):
                raise DataError(f"field {k!r} must be [{T}, {N}], got {list(v.shape)}", field=k)
            if k in names:
                arrays[names.index(k)] = v
            else:
                names.append(k)
                arrays.append(v)
        return Panel(
            np.stack(arrays),
            self.dates,
            self.assets,
            tuple(names),
            dict(self.masks),
            dict(self.meta),
        )

    def with_masks(self, **new: np.ndarray) -> Panel:
        return Panel(
            self.data, self.dates, self.assets, self.fields, {**self.masks, **new}, dict(self.meta)
        )

    # ------------------------------------------------------------ long format
    def to_long(self, *, dropna: bool = True, masks: bool = False) -> pl.DataFrame:
        """Long Polars frame ``date, asset, <fields...>[, <masks...>]``; rows with all fields NaN
        are dropped when ``dropna``."""
        T, N, _ = self.shape
        cols: dict[str, Any] = {
            "date": np.repeat(self.dates.astype("datetime64[D]"), N),
            "asset": np.tile(self.assets.astype(str), T),
        }
        for i, f in enumerate(self.fields):
            cols[f] = self.data[i].reshape(-1)
        if masks:
            for k, m in self.masks.items():
                cols[f"mask_{k}"] = m.reshape(-1)
        df = pl.DataFrame(cols)
        if dropna and self.fields:
            keep = ~np.all(np.isnan(self.data.reshape(len(self.fields), -1)), axis=0)
            df = df.filter(pl.Series(keep))
        return df

    @classmethod
    def from_long(
        cls,
        df: pl.DataFrame,
        *,
        fields: Sequence[str] | None = None,
        dates: np.ndarray | None = None,
        assets: np.ndarray | None = None,
    ) -> Panel:
        """Build a panel from a long frame with ``date``, ``asset`` and field columns
        (``mask_<name>`` boolean columns become masks). Duplicate (date, asset) rows raise."""
        for c in ("date", "asset"):
            if c not in df.columns:
                raise DataError(f"long frame lacks column {c!r}", field=c)
        dup = df.select(["date", "asset"]).is_duplicated()
        if dup.any():
            row = df.filter(dup).row(0, named=True)
            raise DataError("duplicate (date, asset) row", code=row["asset"], date=row["date"])
        mask_cols = [c for c in df.columns if c.startswith("mask_")]
        if fields is None:
            fields = [c for c in df.columns if c not in ("date", "asset") and c not in mask_cols]
        d = df["date"].cast(pl.Date).to_numpy().astype("datetime64[D]")
        a = df["asset"].to_numpy().astype(str)
        udates = np.unique(d) if dates is None else np.asarray(dates, dtype="datetime64[D]")
        uassets = np.unique(a) if assets is None else np.asarray(assets)
        ti = np.searchsorted(udates, d)
        ni = np.searchsorted(uassets, a) if assets is None else _as_index(uassets, a, "asset")
        T, N = len(udates), len(uassets)
        data = np.full((len(fields), T, N), np.nan, dtype=np.float32)
        for k, f in enumerate(fields):
            data[k, ti, ni] = df[f].cast(pl.Float32).to_numpy()
        masks = {}
        for c in mask_cols:
            m = np.zeros((T, N), dtype=bool)
            m[ti, ni] = df[c].fill_null(False).to_numpy()
            masks[c[5:]] = m
        return cls(
            data,
            udates,
            uassets.astype("U8") if uassets.dtype.kind == "U" else uassets,
            tuple(fields),
            masks,
        )

    # ------------------------------------------------------------------ misc
    def date_index(self, date: Any) -> int:
        """Index of the last trading day ``<= date``; raises if before the first date."""
        i = int(np.searchsorted(self.dates, np.datetime64(date, "D"), "right")) - 1
        if i < 0:
            raise DataError("date before the panel's first date", date=date)
        return i

    def __repr__(self) -> str:
        T, N, F = self.shape
        span = f"{self.dates[0]}..{self.dates[-1]}" if T else "empty"
        return f"Panel(T={T}, N={N}, F={F}, {span}, fields={list(self.fields)}, masks={sorted(self.masks)})"
