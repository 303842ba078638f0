"""One training loop for every model (tabular or sequence): date batches, AdamW, early stopping.

Contract with the models (``deepalpha.models.registry``): ``forward(x, group_ids=None) -> [n]``
with ``x`` ``float32[n, F]`` or ``float32[n, L, F]``.

Reproducibility: `fit` and `make_model` run inside ``torch.random.fork_rng`` seeded from the
config, shuffling uses a local ``torch.Generator``, and the intra-op thread count can be pinned
(``num_threads``) and is restored afterwards, so nothing leaks between jobs and a CPU run is
bitwise repeatable.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from scipy.stats import rankdata
from torch import nn

from deepalpha.config import Strict
from deepalpha.errors import ConfigError
from deepalpha.train.allocator import retain_freed_memory
from deepalpha.train.datasets import Batch, CrossSectionDataset
from deepalpha.train.losses import get_loss
from deepalpha.train.optim import make_optimizer


class TrainConfig(Strict):
    """Trainer settings (all defaults here)."""

    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(
        0.0, ge=0, description="AdamW decay of weight matrices (never biases, gains, mHC maps)"
    )
    max_epochs: int = Field(30, ge=1)
    patience: int = Field(5, ge=1, description="epochs without a better validation RankIC")
    grad_clip: float | None = Field(1.0, gt=0, description="max global grad norm; None = off")
    loss: Literal["ic", "mse", "wmse", "ccc"] = "ic"
    seed: int = 0
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    amp: bool = Field(False, description="bfloat16 autocast on CUDA; ignored on CPU")
    progress: bool = True
    min_stocks: int = Field(10, ge=2, description="skip training dates with fewer labels")
    num_threads: int | None = Field(
        None, ge=1, description="torch intra-op threads during the fit (None: leave as is)"
    )
    cache_mb: float = Field(2048.0, ge=0, description="memory for caching date batches")
    stocks_per_date: int | None = Field(
        None,
        ge=2,
        description="train on a random subset of this many stocks per date (None: all); "
        "cap groups keep their full-universe ids, so DecompGRN de-means within the subset",
    )
    dates_per_step: int = Field(
        1,
        ge=1,
        description="dates stacked into one optimiser step; the loss is the mean of the "
        "per-date losses and cap groups (or, without them, the whole cross-section) stay per "
        "date, so cross-sectional models see each date apart; larger steps use the cores "
        "better on small universes",
    )


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"bad device {name!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return dev


class LinearBaseline(nn.Module):
    """Sanity baseline: a linear score of the features (sequences: last step and window mean)."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.lin2 = nn.Linear(n_features, 1)
        self.lin3 = nn.Linear(2 * n_features, 1)

    def forward(self, x: torch.Tensor, group_ids: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim == 3:
            return self.lin3(torch.cat([x[:, -1], x.mean(dim=1)], dim=-1)).squeeze(-1)
        return self.lin2(x).squeeze(-1)


def make_model(name: str, n_features: int, seed: int = 0, **kwargs: Any) -> nn.Module:
    """Build a model with a seeded initialisation that leaves the global RNG untouched.

    ``name``: ``linear`` (`LinearBaseline`), ``package.module:factory`` (called as
    ``factory(n_features, **kwargs)``), or a registry name (``deepalpha.models.registry``).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "linear":
            return LinearBaseline(n_features, **kwargs)
        if ":" in name:
            mod, _, attr = name.partition(":")
            try:
                factory = getattr(importlib.import_module(mod), attr)
            except (ImportError, AttributeError) as e:
                raise ConfigError(f"cannot import model factory {name!r}: {e}") from None
            return factory(n_features, **kwargs)
        try:
            from deepalpha.models.registry import build_model
        except ImportError as e:
            raise ConfigError(f"model registry unavailable for {name!r}: {e}") from None
        return build_model(name, n_features, **kwargs)


def model_call(model: nn.Module, x: torch.Tensor, group_ids: torch.Tensor | None) -> torch.Tensor:
    out = model(x) if group_ids is None else model(x, group_ids=group_ids)
    return out.reshape(-1)


@contextlib.contextmanager
def pinned_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def rank_ic(pred: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation over finite pairs (NaN when fewer than 3 or constant)."""
    ok = np.isfinite(pred) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    return pearson(rankdata(pred[ok]), rankdata(y[ok]))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return float("nan")
    a = a[ok] - a[ok].mean()
    b = b[ok] - b[ok].mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


class _BatchCache:
    """Date batches, cached up to a memory budget (the rest are rebuilt on demand)."""

    def __init__(self, dataset: CrossSectionDataset, budget_mb: float) -> None:
        self.dataset = dataset
        self.budget = budget_mb * 2**20
        self.used = 0.0
        self.store: dict[int, Batch | None] = {}

    def get(self, t: int) -> Batch | None:
        if t in self.store:
            return self.store[t]
        b = self.dataset.batch(int(t))
        size = 0 if b is None else b.x.numel() * 4 + b.y.numel() * 12
        if self.used + size <= self.budget:
            self.store[t] = b
            self.used += size
        return b


@dataclass
class FitResult:
    """What `fit` learned: the model holds the best weights when it returns."""

    best_epoch: int
    best_rank_ic: float
    epochs: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def _to(b: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    g = None if b.group_ids is None else b.group_ids.to(device, non_blocking=True)
    return b.x.to(device, non_blocking=True), b.y.to(device, non_blocking=True), g


def _subsample(b: Batch, k: int | None, gen: torch.Generator) -> Batch:
    """``b`` restricted to ``k`` random stocks (drawn with ``gen``); ``b`` itself if it has <= k."""
    n = len(b.idx)
    if k is None or n <= k:
        return b
    keep = torch.randperm(n, generator=gen)[:k].sort().values
    g = None if b.group_ids is None else b.group_ids[keep]
    return Batch(t=b.t, idx=b.idx[keep.numpy()], x=b.x[keep], y=b.y[keep], group_ids=g)


def _stack(parts: list[Batch]) -> tuple[Batch, list[int]]:
    """Dates stacked into one batch: ``x`` and ``y`` concatenated, group ids offset per date
    (a date without ids gets one id of its own), and the per-date sizes. One date: itself."""
    sizes = [len(b.idx) for b in parts]
    if len(parts) == 1:
        return parts[0], sizes
    ids, offset = [], 0
    for b, n in zip(parts, sizes, strict=True):
        g = b.group_ids if b.group_ids is not None else torch.zeros(n, dtype=torch.long)
        ids.append(g + offset)
        offset += int(g.max()) + 1 if n else 0
    stacked = Batch(
        t=parts[0].t,
        idx=np.concatenate([b.idx for b in parts]),
        x=torch.cat([b.x for b in parts]),
        y=torch.cat([b.y for b in parts]),
        group_ids=torch.cat(ids),
    )
    return stacked, sizes


def _step_loss(loss_fn, p: torch.Tensor, y: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """The loss of one step: ``loss_fn`` per date, averaged over the step's dates."""
    if len(sizes) == 1:
        return loss_fn(p, y)
    return torch.stack(
        [loss_fn(pi, yi) for pi, yi in zip(p.split(sizes), y.split(sizes), strict=True)]
    ).mean()


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def _scores(
    model: nn.Module,
    cache: _BatchCache,
    dates: np.ndarray,
    device: torch.device,
    amp: bool,
) -> Iterator[tuple[Batch, np.ndarray]]:
    model.eval()
    for t in dates:
        b = cache.get(int(t))
        if b is None:
            continue
        x, _, g = _to(b, device)
        with _autocast(device, amp):
            p = model_call(model, x, g)
        yield b, p.float().cpu().numpy()


def evaluate(
    model: nn.Module,
    dataset: CrossSectionDataset,
    dates: np.ndarray,
    *,
    loss: str = "ic",
    device: str | torch.device = "auto",
    amp: bool = False,
    _cache: _BatchCache | None = None,
) -> dict[str, float]:
    """Mean per-date loss, IC and RankIC of ``model`` on ``dates`` (labels of the batch)."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    cache = _cache or _BatchCache(dataset, 0)
    fn = get_loss(loss)
    ics, rics, losses = [], [], []
    for b, p in _scores(model, cache, dates, dev, amp):
        y = b.y.numpy()
        if np.isfinite(y).sum() < 3:
            continue
        ics.append(pearson(p, y))
        rics.append(rank_ic(p, y))
        losses.append(float(fn(torch.from_numpy(p), b.y)))
    return {
        "loss": float(np.nanmean(losses)) if losses else float("nan"),
        "ic": float(np.nanmean(ics)) if ics else float("nan"),
        "rank_ic": float(np.nanmean(rics)) if rics else float("nan"),
        "n_dates": len(rics),
    }


def predict(
    model: nn.Module,
    dataset: CrossSectionDataset,
    dates: np.ndarray,
    *,
    device: str | torch.device = "auto",
    amp: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of every batch stock on ``dates``.

    Returns
    -------
    t : int64[k] date indices; idx : int64[k] asset indices; score : float32[k].
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model = model.to(dev)
    ts, ids, sc = [], [], []
    for b, p in _scores(model, _BatchCache(dataset, 0), dates, dev, amp):
        ts.append(np.full(len(b.idx), b.t, dtype=np.int64))
        ids.append(b.idx.astype(np.int64))
        sc.append(p.astype(np.float32))
    if not ts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(ts), np.concatenate(ids), np.concatenate(sc)


def _progress(enabled: bool, total: int):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    prog = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not enabled,
        transient=True,
    )
    return prog, total


def fit(
    model: nn.Module,
    dataset: CrossSectionDataset,
    train_dates: np.ndarray,
    valid_dates: np.ndarray | None = None,
    config: TrainConfig | None = None,
    *,
    log_path: str | Path | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` in place on date batches of ``dataset``.

    One step = one date (its whole cross-section); dates are shuffled each epoch by a local
    generator seeded from ``config.seed``. After each epoch the validation RankIC (mean over
    ``valid_dates``) is computed; training stops after ``patience`` epochs without improvement and
    the best weights are restored. Without validation dates all ``max_epochs`` run and the last
    weights are kept. Each epoch's metrics are appended to ``log_path`` (JSON lines) when given,
    and passed to ``on_epoch(record)`` (progress display) when given.
    """
    cfg = config or TrainConfig()
    dev = resolve_device(cfg.device)
    retain_freed_memory()  # reuse the step's large blocks instead of re-faulting them
    loss_fn = get_loss(cfg.loss)
    train_dates = np.asarray(train_dates, dtype=np.int64)
    valid_dates = (
        np.zeros(0, np.int64) if valid_dates is None else np.asarray(valid_dates, np.int64)
    )
    if train_dates.size == 0:
        raise ConfigError("no training dates")
    log = Path(log_path) if log_path is not None else None
    devices = [dev.index or 0] if dev.type == "cuda" else []
    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    with pinned_threads(cfg.num_threads), torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model.to(dev)
        opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
        cache = _BatchCache(dataset, cfg.cache_mb)
        best_state: dict[str, torch.Tensor] | None = None
        best, best_epoch, bad = -math.inf, 0, 0
        prog, _ = _progress(cfg.progress, cfg.max_epochs)
        with prog:
            task = prog.add_task("train", total=cfg.max_epochs, info="")
            for epoch in range(1, cfg.max_epochs + 1):
                t0 = time.perf_counter()
                model.train()
                order = train_dates[torch.randperm(len(train_dates), generator=gen).numpy()]
                tot, steps, n_dates, stocks = 0.0, 0, 0, 0
                k = cfg.dates_per_step
                for chunk in (order[i : i + k] for i in range(0, len(order), k)):
                    parts = []
                    for t in chunk:
                        b = cache.get(int(t))
                        if b is None or int(b.label_mask.sum()) < cfg.min_stocks:
                            continue
                        parts.append(_subsample(b, cfg.stocks_per_date, gen))
                    if not parts:
                        continue
                    batch, sizes = _stack(parts)
                    x, y, g = _to(batch, dev)
                    with _autocast(dev, cfg.amp):
                        p = model_call(model, x, g)
                    loss = _step_loss(loss_fn, p.float(), y, sizes)
                    if not torch.isfinite(loss):
                        continue
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
                    tot += float(loss.detach())
                    steps += 1
                    n_dates += len(parts)
                    stocks += len(y)
                rec: dict[str, Any] = {
                    "epoch": epoch,
                    "train_loss": tot / steps if steps else float("nan"),
                    "train_dates": n_dates,
                    "train_steps": steps,
                    "train_stock_days": stocks,
                }
                if valid_dates.size:
                    m = evaluate(model, dataset, valid_dates, loss=cfg.loss, device=dev,
                                 amp=cfg.amp, _cache=cache)  # fmt: skip
                    rec.update({f"valid_{k}": v for k, v in m.items()})
                    score = m["rank_ic"]
                else:
                    score = -rec["train_loss"]
                if hasattr(model, "amax_gain") and steps:
                    # HC / mHC: composite gain of the residual mixing over depth, on the last
                    # training batch (dynamic + static mappings)
                    model.eval()
                    rec["amax_gain"] = float(model.amax_gain(x))
                if hasattr(model, "stream_spread") and steps:
                    # how distinct the streams still are after the last layer (0 = copies)
                    rec["stream_spread"] = float(model.stream_spread(x)[1][-1])
                rec["seconds"] = time.perf_counter() - t0
                improved = math.isfinite(score) and score > best
                if improved or not valid_dates.size:
                    best, best_epoch, bad = score, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad += 1
                rec["best_epoch"] = best_epoch
                history.append(rec)
                if log is not None:
                    log.parent.mkdir(parents=True, exist_ok=True)
                    with log.open("a") as fh:
                        fh.write(json.dumps(rec, allow_nan=True) + "\n")
                if on_epoch is not None:
                    on_epoch(rec)
                info = f"loss {rec['train_loss']:.4f}"
                if valid_dates.size:
                    info += (
                        f"  val RankIC {rec['valid_rank_ic']:.4f} (best {best:.4f}@{best_epoch})"
                    )
                prog.update(task, advance=1, info=info)
                if valid_dates.size and bad >= cfg.patience:
                    break
        if best_state is not None:  # else no finite validation score: keep the last weights
            model.load_state_dict(best_state)
    return FitResult(
        best_epoch=best_epoch,
        best_rank_ic=float(best) if valid_dates.size and math.isfinite(best) else float("nan"),
        epochs=len(history),
        seconds=time.perf_counter() - start,
        history=history,
    )
