"""Date-batched datasets: one batch = one date's whole cross-section of tradable universe stocks.

Two kinds, one interface (`CrossSectionDataset`):

* `TabularDataset`: features ``[T, N, F]`` at sample dates (e.g. 15 style exposures at month ends)
  -> label ``[T, N]`` (e.g. next-month residual return). Batch ``x``: ``float32[n, F]``.
* `SequenceDataset`: Alpha360 windows ``[n, L, F]`` ending at ``t`` (`deepalpha.features.sequences`),
  label = h-day forward return from the t+1 close, rank-normalised over the batch; plus cap-group
  ids (quantile buckets of log cap at ``t``; NaN cap = its own bucket) for DecompGRN.

Missing data policy (the same for both kinds):

* a stock is in date ``t``'s batch iff it is in the universe and tradable at ``t`` (masks), its
  last-step price/volume are valid (sequences), and at least ``min_valid_frac`` of its feature
  entries are finite; everything else is *dropped* from the batch;
* the remaining missing feature entries are *zero-filled after normalisation* (0 = the date's
  median);
* missing labels are *masked*, not filled: ``y`` is NaN there, losses and metrics skip them, and
  the stock still takes part in the forward pass (group de-meaning needs the whole cross-section).

``label_known[t]`` is the index of the first date at whose close the label of ``t`` is known;
rolling retraining at date index ``r`` may train only on samples with ``label_known <= r``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch

from deepalpha.data.panel import Panel
from deepalpha.data.size_proxy import cap_field_for
from deepalpha.errors import ConfigError, DataError
from deepalpha.features.labels import forward_return, label_known_index
from deepalpha.features.preprocess import fill_missing, rank_normalize, robust_zscore
from deepalpha.features.sequences import SEQ_FIELDS, SequenceSource, normalize_window

NEVER = np.iinfo(np.int64).max // 4


@dataclass
class Batch:
    """One date's cross-section.

    Attributes
    ----------
    t : date index into the dataset's ``dates``.
    idx : int64[n] asset indices into the dataset's ``assets``.
    x : float32[n, F] (tabular) or float32[n, L, F] (sequence), finite.
    y : float32[n] label; NaN where unknown (masked).
    group_ids : int64[n] cap-group ids in ``[0, n_groups]`` or None.
    """

    t: int
    idx: np.ndarray
    x: torch.Tensor
    y: torch.Tensor
    group_ids: torch.Tensor | None = None

    @property
    def label_mask(self) -> torch.Tensor:
        return torch.isfinite(self.y)


class CrossSectionDataset(Protocol):
    kind: str
    dates: np.ndarray
    assets: np.ndarray
    n_features: int
    label_known: np.ndarray

    def sample_dates(self) -> np.ndarray: ...

    def batch(self, t: int) -> Batch | None: ...


def cap_groups(cap: np.ndarray, n_groups: int = 20) -> np.ndarray:
    """Quantile buckets of log market cap: int64[n] in ``[0, n_groups - 1]``, ``n_groups`` for NaN.

    Bucket ``g = floor(rank * n_groups / m)`` with ``rank`` the 0-based ordinal rank of the stock's
    cap among the ``m`` stocks with a positive finite cap (ties broken by position).
    """
    cap = np.asarray(cap, dtype=np.float64)
    ok = np.isfinite(cap) & (cap > 0)
    out = np.full(cap.shape, n_groups, dtype=np.int64)
    m = int(ok.sum())
    if m:
        order = np.argsort(np.log(cap[ok]), kind="stable")
        rank = np.empty(m, dtype=np.int64)
        rank[order] = np.arange(m)
        out[ok] = rank * n_groups // m
    return out


def _mask_or_true(panel: Panel, name: str | None, T: int, N: int) -> np.ndarray:
    if name is None:
        return np.ones((T, N), dtype=bool)
    return panel.mask(name)


def _batch_tensors(
    t: int, idx: np.ndarray, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None
) -> Batch:
    return Batch(
        t=t,
        idx=idx,
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        y=torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
        group_ids=None if groups is None else torch.from_numpy(groups),
    )


class SequenceDataset:
    """Alpha360 windows -> rank-normalised h-day forward return (DESIGN section 8).

    Parameters
    ----------
    panel : Panel with the ``fields`` (``vwap`` may be absent: typical price), ``label_price``
        and, when ``cap_field`` is set, the cap field.
    window : L, days per sequence (60 default, 150 option).
    horizon : h, label holding period in trading days.
    universe, tradable : mask names (None: everything).
    cap_field : field for the cap groups (None: no group ids).
    n_groups : number of cap quantile buckets.
    clip : z-score clip.
    min_valid_frac : drop stocks with a smaller fraction of finite window entries.
    label_price : ``close`` (default) or ``vwap``: entry/exit price of the label.
    """

    kind = "sequence"

    def __init__(
        self,
        panel: Panel,
        *,
        window: int = 60,
        horizon: int = 10,
        fields: tuple[str, ...] = SEQ_FIELDS,
        universe: str | None = "all",
        tradable: str | None = "tradable",
        cap_field: str | None = "mktcap",
        n_groups: int = 20,
        clip: float | None = 3.0,
        min_valid_frac: float = 0.9,
        label_price: str = "close",
        cache: bool = False,
    ) -> None:
        T, N, _ = panel.shape
        if window < 1 or window > T:
            raise ConfigError(f"window {window} must be in [1, T={T}]")
        self.panel = panel
        self.dates = panel.dates
        self.assets = panel.assets
        self.window = int(window)
        self.horizon = int(horizon)
        self.source = SequenceSource.from_panel(panel, tuple(fields))
        self.fields = self.source.fields
        self.n_features = len(self.fields)
        self.universe = _mask_or_true(panel, universe, T, N)
        self.tradable = _mask_or_true(panel, tradable, T, N)
        cap_field = cap_field_for(panel.fields, cap_field)  # no market cap: the size proxy
        if cap_field is not None and not panel.has(cap_field):
            raise DataError(
                f"cap field {cap_field!r} missing (needed for cap groups; set cap_field=None)",
                field=cap_field,
            )
        self.cap = None if cap_field is None else panel.field(cap_field)
        self.n_groups = int(n_groups)
        self.clip = clip
        self.min_valid_frac = float(min_valid_frac)
        if label_price == "vwap":
            price = self.source.arrays[self.fields.index("vwap")] if "vwap" in self.fields else None
            if price is None:
                raise ConfigError("label_price='vwap' needs 'vwap' among the sequence fields")
        else:
            price = panel.field(label_price)
        self.label_raw = forward_return(price, self.horizon)
        self.label_known = label_known_index(np.arange(T, dtype=np.int64), self.horizon)
        self._close = panel.field("close")
        self._volume = panel.field("volume")
        self._cache: dict[int, Batch | None] | None = {} if cache else None

    def sample_dates(self) -> np.ndarray:
        """Date indices with a full window: ``int64[k]``."""
        return np.arange(self.window - 1, len(self.dates), dtype=np.int64)

    def members(self, t: int) -> np.ndarray:
        """Asset indices eligible at ``t`` before the finite-fraction filter."""
        c, v = self._close[t], self._volume[t]
        with np.errstate(invalid="ignore"):
            ok = self.universe[t] & self.tradable[t] & (c > 0) & (v > 0)
        return np.flatnonzero(ok)

    def batch(self, t: int) -> Batch | None:
        """The batch of date index ``t`` or None when no stock qualifies."""
        if self._cache is not None and t in self._cache:
            return self._cache[t]
        b = self._make(int(t))
        if self._cache is not None:
            self._cache[t] = b
        return b

    def _make(self, t: int) -> Batch | None:
        if t < self.window - 1:
            return None
        idx = self.members(t)
        if idx.size == 0:
            return None
        raw = self.source.raw_window(t, self.window, idx)
        frac = np.isfinite(raw).reshape(len(idx), -1).mean(axis=1)
        keep = frac >= self.min_valid_frac
        if not keep.all():
            idx, raw = idx[keep], raw[keep]
        if idx.size == 0:
            return None
        x, _ = normalize_window(raw, self.fields, self.clip)
        x = fill_missing(x, 0.0)
        y = rank_normalize(self.label_raw[t, idx], axis=0)
        groups = None if self.cap is None else cap_groups(self.cap[t, idx], self.n_groups)
        return _batch_tensors(t, idx, x, y, groups)


class TabularDataset:
    """Cross-sections of precomputed features -> label.

    Parameters
    ----------
    features : float[T, N, F]
    labels : float[T, N]; NaN = unknown.
    dates : datetime64[D][T]; assets : str[N].
    mask : bool[T, N] universe & tradable (None: all).
    label_known : int[T] index of the date whose close reveals the label of each date (None:
        the next sample date, i.e. a label that spans to the next rebalance).
    normalize : ``"zscore"`` (robust, clipped), ``"rank"`` or ``None``: per-date feature transform.
    label_transform : ``"rank"``, ``"zscore"`` or ``None``: per-date label transform.
    cap : float[T, N] or None: for cap-group ids.
    """

    kind = "tabular"

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        dates: np.ndarray,
        assets: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        label_known: np.ndarray | None = None,
        normalize: Literal["zscore", "rank"] | None = "zscore",
        label_transform: Literal["rank", "zscore"] | None = "rank",
        clip: float | None = 3.0,
        min_valid_frac: float = 0.5,
        cap: np.ndarray | None = None,
        n_groups: int = 20,
    ) -> None:
        features = np.asarray(features)
        T, N, F = features.shape
        if labels.shape != (T, N):
            raise DataError(f"labels must be [{T}, {N}], got {list(labels.shape)}", field="label")
        if len(dates) != T or len(assets) != N:
            raise DataError("dates/assets disagree with the feature shape")
        self.features = features
        self.labels = labels
        self.dates = np.asarray(dates, dtype="datetime64[D]")
        self.assets = np.asarray(assets)
        self.n_features = F
        self.mask = np.ones((T, N), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.normalize = normalize
        self.label_transform = label_transform
        self.clip = clip
        self.min_valid_frac = float(min_valid_frac)
        self.cap = cap
        self.n_groups = int(n_groups)
        has = (np.isfinite(features).any(axis=2) & self.mask).any(axis=1)
        self._samples = np.flatnonzero(has).astype(np.int64)
        if label_known is None:
            label_known = np.full(T, NEVER, dtype=np.int64)
            label_known[self._samples[:-1]] = self._samples[1:]
        self.label_known = np.asarray(label_known, dtype=np.int64)

    @classmethod
    def from_panel(
        cls,
        panel: Panel,
        features: list[str],
        label: str,
        *,
        universe: str | None = "all",
        tradable: str | None = "tradable",
        label_lag: int | None = None,
        cap_field: str | None = None,
        **kw,
    ) -> TabularDataset:
        """Features and label from panel fields; ``label_lag`` days until the label is known
        (None: the next sample date)."""
        T, N, _ = panel.shape
        X = np.stack([panel.field(f) for f in features], axis=-1)
        m = _mask_or_true(panel, universe, T, N) & _mask_or_true(panel, tradable, T, N)
        known = None if label_lag is None else np.arange(T, dtype=np.int64) + int(label_lag)
        cap = None if cap_field is None else panel.field(cap_field)
        return cls(
            X,
            panel.field(label),
            panel.dates,
            panel.assets,
            mask=m,
            label_known=known,
            cap=cap,
            **kw,
        )

    def sample_dates(self) -> np.ndarray:
        return self._samples

    def batch(self, t: int) -> Batch | None:
        t = int(t)
        idx = np.flatnonzero(self.mask[t])
        if idx.size == 0:
            return None
        x = np.asarray(self.features[t, idx], dtype=np.float32)
        frac = np.isfinite(x).mean(axis=1)
        keep = frac >= self.min_valid_frac
        idx, x = idx[keep], x[keep]
        if idx.size == 0:
            return None
        if self.normalize == "zscore":
            x = robust_zscore(x, axis=0, clip=self.clip)
        elif self.normalize == "rank":
            x = rank_normalize(x, axis=0)
        x = fill_missing(x, 0.0)
        y = np.asarray(self.labels[t, idx], dtype=np.float32)
        if self.label_transform == "rank":
            y = rank_normalize(y, axis=0)
        elif self.label_transform == "zscore":
            y = robust_zscore(y, axis=0, clip=self.clip)
        groups = None if self.cap is None else cap_groups(self.cap[t, idx], self.n_groups)
        return _batch_tensors(t, idx, x, y, groups)


@dataclass
class DateSplit:
    """Date indices of a train / validation / prediction split."""

    train: np.ndarray
    valid: np.ndarray
    predict: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
