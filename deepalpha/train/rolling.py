"""Rolling retraining with crash-safe resume.

Schedule: retrain dates are the first trading day of every month / quarter / year between
``start`` and ``end``. At retrain date index ``r`` (data known at the close of ``r``):

* the training window is the sample dates in ``(R - window, R]`` (calendar months, or the last
  ``window`` trading days);
* a sample ``s`` is usable only if its label is known: ``label_known[s] <= r`` (for an h-day label
  from the t+1 close, ``s + 1 + h <= r``) -- the look-ahead trap of rolling studies;
* validation = the last ``valid_fraction`` of those samples, or the samples in the last
  ``valid_periods`` units of the window; with ``purge`` the training samples whose labels reach
  into the validation period are dropped too;
* predictions are made for every date from ``r`` up to (not including) the next retrain date (the
  last span ends at ``end``).

Each (model, window, retrain date, seed) is one `Job`: a pure function of (config, data, job) whose
outputs -- ``predictions.parquet`` (date, asset, score), ``model.pt`` (state dict),
``metrics.json``, ``train_log.jsonl`` -- are written into a temporary folder that is renamed to
``jobs/<model>/w<window>/<date>/s<seed>`` at the end. A job is finished iff that folder exists, so
re-running skips finished jobs and a crash loses only the jobs in flight. When every job is done
the spans are concatenated into ``predictions.parquet`` (date, asset, model, window, seed, score).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field, field_validator, model_validator

from deepalpha.config import Strict
from deepalpha.data.panel import Panel
from deepalpha.data.size_proxy import cap_field_for
from deepalpha.errors import ConfigError, DataError
from deepalpha.features.sequences import SEQ_FIELDS
from deepalpha.progress import make_reporter
from deepalpha.train.datasets import CrossSectionDataset, SequenceDataset, TabularDataset
from deepalpha.train.executors import make_executor
from deepalpha.train.job_progress import JobProgressWatcher, JobProgressWriter
from deepalpha.train.trainer import TrainConfig, fit, make_model, predict

PRED_FILE = "predictions.parquet"


# ----------------------------------------------------------------------------- config
class ModelSpec(Strict):
    """A model of the study: registry ``name`` (or ``module:factory``, or ``linear``), a ``tag``
    naming its output folder (default: the name), constructor ``kwargs``, and ``train``: trainer
    settings for this model only, over the study's ``train`` (e.g. the plain MLP's weight decay)."""

    name: str
    tag: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] | None = Field(
        None, min_length=1, description="this model's seeds (None: the study's `seeds`)"
    )

    @field_validator("train")
    @classmethod
    def _train_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        TrainConfig.model_validate(v)  # unknown keys and bad values fail here, by name
        return v

    def train_config(self, base: TrainConfig, **update: Any) -> TrainConfig:
        """``base`` with this model's ``train`` settings and ``update`` applied (validated)."""
        return TrainConfig.model_validate(base.model_dump() | self.train | update)

    @property
    def key(self) -> str:
        return self.tag or self.name.replace(":", "_").replace(".", "_")


class DatasetConfig(Strict):
    """How to cut batches from the panel (see `deepalpha.train.datasets`)."""

    kind: Literal["sequence", "tabular"] = "sequence"
    universe: str | None = "all"
    tradable: str | None = "tradable"
    cap_field: str | None = "mktcap"
    n_groups: int = Field(20, ge=1)
    clip: float | None = 3.0
    min_valid_frac: float = Field(0.9, ge=0, le=1)
    sample_stride: int = Field(1, ge=1, description="use every k-th trading day as a sample")
    # sequence
    length: int = Field(60, ge=1, description="days per sequence")
    horizon: int = Field(10, ge=1, description="label horizon h in trading days")
    fields: list[str] = Field(default_factory=lambda: list(SEQ_FIELDS))
    label_price: Literal["close", "vwap"] = "close"
    # tabular
    features: list[str] = Field(default_factory=list)
    label: str | None = None
    label_lag: int | None = Field(
        None, description="days until a tabular label is known (None: the next sample date)"
    )
    normalize: Literal["zscore", "rank"] | None = "zscore"

    def needed_fields(self, panel: Panel) -> list[str]:
        if self.kind == "sequence":
            want = [f for f in self.fields if f != "vwap" or panel.has("vwap")]
            if "vwap" in self.fields and not panel.has("vwap"):
                want += ["high", "low", "close"]
            if "turnover" in self.fields and not panel.has("turnover"):
                want = [f for f in want if f != "turnover"] + ["volume", "shares"]
            want += ["close", "volume"]
        else:
            if self.label is None or not self.features:
                raise ConfigError("tabular dataset needs 'features' and 'label'")
            want = [*self.features, self.label]
        if self.cap_field is not None:  # no market cap in the data: the size proxy
            want.append(cap_field_for(panel.fields, self.cap_field))
        return list(dict.fromkeys(want))


class RollingConfig(Strict):
    """A rolling study: models x windows x retrain dates x seeds."""

    models: list[ModelSpec] = Field(default_factory=lambda: [ModelSpec(name="gru")])
    windows: list[int] = Field(default_factory=lambda: [24], min_length=1)
    window_unit: Literal["months", "days"] = "months"
    valid_fraction: float | None = Field(0.2, gt=0, lt=1)
    valid_periods: int | None = Field(None, ge=1, description="last k window units validate")
    purge: bool = True
    frequency: Literal["monthly", "quarterly", "yearly"] = "yearly"
    start: date | None = Field(None, description="first retrain date (default: first full window)")
    end: date | None = Field(None, description="last prediction date (default: last date)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    executor: Literal["local", "process", "ray"] = "local"
    workers: int = Field(2, ge=1)
    address: str = "local"
    threads_per_job: int = Field(1, ge=1, description="torch threads inside each job")

    @model_validator(mode="after")
    def _check(self) -> RollingConfig:
        keys = [m.key for m in self.models]
        if len(set(keys)) != len(keys):
            raise ValueError(f"model tags must be unique, got {keys}")
        return self

    def result_settings(self) -> dict[str, Any]:
        """The settings that change results (not the executor or progress bars), as JSON."""
        return _result_settings(self.model_dump(mode="json"))

    def result_fingerprint(self) -> str:
        """Hash of `result_settings`."""
        return settings_fingerprint(self.model_dump(mode="json"))


def settings_fingerprint(settings: dict[str, Any]) -> str:
    """16-hex hash of the result-changing part of a `RollingConfig` dump (as run.json stores)."""
    d = _result_settings(settings)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _result_settings(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without the settings that do not change results (executor, workers, progress)."""
    d = {k: v for k, v in d.items() if k not in ("executor", "workers", "address")}
    if isinstance(d.get("train"), dict):
        d["train"] = {k: v for k, v in d["train"].items() if k != "progress"}
    return d


# ----------------------------------------------------------------------------- schedule
_PERIOD = {"monthly": 1, "quarterly": 3, "yearly": 12}


def _months(d: np.ndarray) -> np.ndarray:
    return d.astype("datetime64[M]").astype(np.int64)


def retrain_indices(
    dates: np.ndarray, frequency: str, start: Any = None, end: Any = None
) -> np.ndarray:
    """Date indices of the retrains: the first trading day of each period in ``[start, end]``
    (and ``start`` itself when it falls inside a period)."""
    dates = np.asarray(dates, dtype="datetime64[D]")
    step = _PERIOD[frequency]
    m = _months(dates)
    period = m // step
    first = np.r_[True, period[1:] != period[:-1]]
    lo = 0 if start is None else int(np.searchsorted(dates, np.datetime64(start, "D"), "left"))
    hi = (
        len(dates) if end is None else int(np.searchsorted(dates, np.datetime64(end, "D"), "right"))
    )
    idx = np.flatnonzero(first)
    idx = idx[(idx >= lo) & (idx < hi)]
    if lo < hi and (idx.size == 0 or idx[0] != lo):
        idx = np.r_[lo, idx]
    return idx.astype(np.int64)


def window_start(dates: np.ndarray, r: int, window: int, unit: str) -> int:
    """First date index of the training window ending at ``r`` (inclusive)."""
    if unit == "days":
        return max(0, r - window + 1)
    R = np.datetime64(dates[r], "D")
    offset = R - R.astype("datetime64[M]").astype("datetime64[D]")
    lo = (R.astype("datetime64[M]") - window).astype("datetime64[D]") + offset
    return int(np.searchsorted(dates, lo, "right"))


@dataclass(frozen=True)
class Split:
    """Date indices for one job."""

    train: np.ndarray
    valid: np.ndarray
    predict: np.ndarray


def split_for(
    dataset: CrossSectionDataset, r: int, r_next: int, window: int, cfg: RollingConfig
) -> Split:
    """Train / validation / prediction dates for the retrain at ``r`` (next retrain ``r_next``)."""
    dates = dataset.dates
    samples = dataset.sample_dates()
    stride = cfg.dataset.sample_stride
    if stride > 1:
        samples = samples[samples % stride == 0]
    lo = window_start(dates, r, window, cfg.window_unit)
    s = samples[(samples >= lo) & (samples <= r)]
    s = s[dataset.label_known[s] <= r]  # labels must be known at the retrain date
    if s.size == 0:
        return Split(s, s, np.arange(r, r_next, dtype=np.int64))
    if cfg.valid_periods is not None:
        vlo = window_start(dates, r, cfg.valid_periods, cfg.window_unit)
        is_val = s >= vlo
    elif cfg.valid_fraction is not None:
        k = round(len(s) * cfg.valid_fraction)
        is_val = np.arange(len(s)) >= len(s) - k
    else:
        is_val = np.zeros(len(s), dtype=bool)
    train, valid = s[~is_val], s[is_val]
    if cfg.purge and valid.size:
        train = train[dataset.label_known[train] <= valid[0]]
    return Split(train, valid, np.arange(r, r_next, dtype=np.int64))


# ----------------------------------------------------------------------------- jobs
@dataclass(frozen=True, order=True)
class Job:
    """One independent training job."""

    model: str
    window: int
    retrain: str  # ISO date of the retrain
    seed: int
    r: int  # retrain date index
    r_next: int  # end (exclusive) of the prediction span

    @property
    def key(self) -> str:
        return f"{self.model}/w{self.window}/{self.retrain}/s{self.seed}"


@dataclass
class JobResult:
    t: np.ndarray
    idx: np.ndarray
    score: np.ndarray
    state: bytes
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def plan_jobs(dates: np.ndarray, cfg: RollingConfig, first_sample: int = 0) -> list[Job]:
    """Every job of the study, in a deterministic order."""
    end = (
        len(dates)
        if cfg.end is None
        else int(np.searchsorted(dates, np.datetime64(cfg.end, "D"), "right"))
    )
    start = cfg.start
    if start is None:
        w = max(cfg.windows)
        if cfg.window_unit == "days":
            start = dates[min(len(dates) - 1, first_sample + w)]
        else:
            start = (np.datetime64(dates[first_sample], "M") + w).astype("datetime64[D]")
    rs = retrain_indices(dates, cfg.frequency, start, dates[end - 1] if end else None)
    if rs.size == 0:
        raise ConfigError(f"no retrain date between {start} and {cfg.end or dates[-1]}")
    nxt = np.r_[rs[1:], end]
    # seed-major: every model's first seed before any second seed, so a run stopped part-way
    # (and resumed later) has complete single-seed results first
    seeds = {m.key: list(m.seeds or cfg.seeds) for m in cfg.models}
    jobs = []
    for k in range(max(len(v) for v in seeds.values())):
        for m in cfg.models:
            if k >= len(seeds[m.key]):
                continue
            for w in cfg.windows:
                for r, rn in zip(rs, nxt, strict=True):
                    seed = seeds[m.key][k]
                    jobs.append(Job(m.key, int(w), str(dates[r]), int(seed), int(r), int(rn)))
    return jobs


def build_dataset(panel: Panel, d: DatasetConfig) -> CrossSectionDataset:
    if d.kind == "sequence":
        return SequenceDataset(
            panel,
            window=d.length,
            horizon=d.horizon,
            fields=tuple(d.fields),
            universe=d.universe,
            tradable=d.tradable,
            cap_field=d.cap_field,
            n_groups=d.n_groups,
            clip=d.clip,
            min_valid_frac=d.min_valid_frac,
            label_price=d.label_price,
        )
    assert d.label is not None
    return TabularDataset.from_panel(
        panel,
        d.features,
        d.label,
        universe=d.universe,
        tradable=d.tradable,
        label_lag=d.label_lag,
        cap_field=d.cap_field,
        normalize=d.normalize,
        clip=d.clip,
        min_valid_frac=d.min_valid_frac,
        n_groups=d.n_groups,
    )


def run_job(
    cfg: RollingConfig,
    panel: Panel,
    job: Job,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> JobResult:
    """Train and predict one job: a pure function of (config, data, job).

    ``on_epoch(record)``: called after every epoch with the trainer's record plus ``max_epochs``
    (progress display only; it does not change results)."""
    t0 = time.perf_counter()
    spec = next(m for m in cfg.models if m.key == job.model)
    ds = build_dataset(panel, cfg.dataset)
    sp = split_for(ds, job.r, job.r_next, job.window, cfg)
    tcfg = spec.train_config(
        cfg.train, seed=job.seed, progress=False, num_threads=cfg.threads_per_job
    )
    metrics: dict[str, Any] = {
        "job": job.key,
        "retrain": job.retrain,
        "n_train_dates": len(sp.train),
        "n_valid_dates": len(sp.valid),
        "train_first": str(ds.dates[sp.train[0]]) if len(sp.train) else None,
        "train_last": str(ds.dates[sp.train[-1]]) if len(sp.train) else None,
        "valid_first": str(ds.dates[sp.valid[0]]) if len(sp.valid) else None,
        "valid_last": str(ds.dates[sp.valid[-1]]) if len(sp.valid) else None,
        "predict_first": str(ds.dates[sp.predict[0]]),
        "predict_last": str(ds.dates[sp.predict[-1]]),
    }
    if len(sp.train) == 0:
        raise DataError(f"job {job.key}: no training sample with a known label", date=job.retrain)
    with torch.random.fork_rng(devices=[]):
        model = make_model(spec.name, ds.n_features, seed=job.seed, **spec.kwargs)
        res = fit(model, ds, sp.train, sp.valid, tcfg, on_epoch=_with_max_epochs(on_epoch, tcfg))
        t, idx, score = predict(model, ds, sp.predict, device=tcfg.device)
    buf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buf)
    metrics.update(
        {
            "best_epoch": res.best_epoch,
            "best_valid_rank_ic": res.best_rank_ic,
            "epochs": res.epochs,
            "n_params": sum(p.numel() for p in model.parameters()),
            "seconds": time.perf_counter() - t0,
        }
    )
    return JobResult(t, idx, score, buf.getvalue(), metrics, res.history)


def _with_max_epochs(
    on_epoch: Callable[[dict[str, Any]], None] | None, tcfg: TrainConfig
) -> Callable[[dict[str, Any]], None] | None:
    if on_epoch is None:
        return None
    return lambda rec: on_epoch({**rec, "max_epochs": tcfg.max_epochs})


def _run_job_entry(
    cfg_json: str, panel: Panel, job: Job, progress_dir: str | None = None
) -> JobResult:
    cfg = RollingConfig.model_validate_json(cfg_json)
    if progress_dir is None:
        return run_job(cfg, panel, job)
    with JobProgressWriter(progress_dir, job.key) as w:  # epochs -> a file the parent tails
        return run_job(cfg, panel, job, on_epoch=w.epoch)


# ----------------------------------------------------------------------------- run directory
def job_dir(run_dir: Path, job: Job) -> Path:
    return run_dir / "jobs" / job.key


def is_finished(run_dir: Path, job: Job) -> bool:
    return (job_dir(run_dir, job) / "metrics.json").is_file()


def _predictions_frame(panel: Panel, job: Job, res: JobResult) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": panel.dates[res.t].astype("datetime64[D]"),
            "asset": panel.assets[res.idx].astype(str),
            "score": res.score.astype(np.float32),
        }
    ).sort(["date", "asset"])


def write_job(run_dir: Path, panel: Panel, job: Job, res: JobResult) -> Path:
    """Write a job's outputs atomically: a temp folder renamed into place."""
    final = job_dir(run_dir, job)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    _predictions_frame(panel, job, res).write_parquet(tmp / PRED_FILE)
    (tmp / "model.pt").write_bytes(res.state)
    with (tmp / "train_log.jsonl").open("w") as fh:
        for rec in res.history:
            fh.write(json.dumps(rec) + "\n")
    (tmp / "metrics.json").write_text(json.dumps(res.metrics, indent=1))
    for f in tmp.iterdir():
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
    try:
        os.rename(tmp, final)
    except OSError:
        if not is_finished(run_dir, job):
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another runner finished it first
    return final


def _clean_stale(run_dir: Path) -> None:
    jobs = run_dir / "jobs"
    if jobs.is_dir():
        for p in jobs.rglob(".*.tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def data_fingerprint(panel: Panel) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(panel.data).view(np.uint8).reshape(-1))
    h.update(panel.dates.astype("datetime64[D]").astype(np.int64).tobytes())
    h.update("\n".join(panel.assets.astype(str)).encode())
    h.update("\n".join(panel.fields).encode())
    for k in sorted(panel.masks):
        h.update(k.encode())
        h.update(np.packbits(panel.masks[k]).tobytes())
    return h.hexdigest()


def _model_key(m: dict[str, Any]) -> str:
    return ModelSpec.model_validate(m).key


def _study_parts(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split result settings into (the study's shared settings, {model key: spec without seeds}).

    Stored settings are first re-read with today's defaults (a run made before a setting existed
    still matches while the new setting is at its default); unreadable ones are used as stored.
    """
    try:
        settings = RollingConfig.model_validate(settings).model_dump(mode="json")
    except (TypeError, ValueError):
        pass
    shared = _result_settings(settings)
    models = shared.pop("models", []) or []
    shared.pop("seeds", None)
    specs = {}
    for m in models:
        specs[_model_key(m)] = {k: v for k, v in m.items() if k != "seeds"}
    return shared, specs


def _model_seeds(settings: dict[str, Any]) -> dict[str, list[int]]:
    """{model key: its seeds} (a model's own ``seeds``, else the study's)."""
    out = {}
    for m in settings.get("models", []) or []:
        out[_model_key(m)] = list(m.get("seeds") or settings.get("seeds") or [0])
    return out


def study_mismatch(stored: dict[str, Any], cfg: RollingConfig) -> list[str]:
    """Why ``cfg`` cannot resume or extend a run made with ``stored`` settings ([] when it can).

    A run may add models and seeds, or run a subset of them: each job's result depends on the
    shared settings and its own model's spec only. What it may not change is a shared setting
    (windows, dataset, training budget, ...) or the spec (kwargs, train) of a model the folder
    already holds. Entries read ``key (old -> new)``.
    """
    shared_a, specs_a = _study_parts(stored)
    shared_b, specs_b = _study_parts(cfg.model_dump(mode="json"))
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}" if path else k)
        elif a != b:
            out.append(f"{path} ({a!r} -> {b!r})")

    walk(shared_a, shared_b, "")
    for key in sorted(set(specs_a) & set(specs_b)):
        walk(specs_a[key], specs_b[key], f"models[{key}]")
    return out


def merged_study(stored: dict[str, Any], cfg: RollingConfig) -> dict[str, Any]:
    """Settings of the study a folder holds after ``cfg`` ran in it: ``cfg``'s settings with the
    stored models it lacks kept, and each model's seeds the union of old and new (explicit)."""
    new = cfg.model_dump(mode="json")
    seeds_a, seeds_b = _model_seeds(stored), _model_seeds(new)
    models = []
    keys_b = {_model_key(m) for m in new["models"]}
    for m in stored.get("models", []) or []:
        if _model_key(m) not in keys_b:
            models.append({**m, "seeds": seeds_a[_model_key(m)]})
    for m in new["models"]:
        k = _model_key(m)
        seeds = list(dict.fromkeys([*seeds_a.get(k, []), *seeds_b[k]]))
        models.append({**m, "seeds": seeds})
    return {**new, "models": models}


def check_study(rolling_dir: Path, cfg: RollingConfig) -> None:
    """Refuse (`ConfigError`) ``cfg`` in a rolling folder whose ``run.json`` it cannot resume or
    extend (see `study_mismatch`). Reads only; a folder without ``run.json`` passes."""
    meta = rolling_dir / "run.json"
    if not meta.is_file():
        return
    have = json.loads(meta.read_text())
    stored = have.get("settings")
    if isinstance(stored, dict):
        diffs = study_mismatch(stored, cfg)
    else:  # no stored settings: only an identical config resumes
        diffs = [] if have.get("config") == cfg.result_fingerprint() else ["settings (unknown)"]
    if diffs:
        raise ConfigError(
            f"{rolling_dir}: existing run has a different config fingerprint "
            f"({have.get('config')} != {cfg.result_fingerprint()}): differs at "
            f"{', '.join(diffs[:6])}{f' and {len(diffs) - 6} more' if len(diffs) > 6 else ''}; "
            "a run may add models or seeds to a folder, not change its settings; "
            "use a new run directory"
        )


def _check_run_dir(run_dir: Path, cfg: RollingConfig, fp: str) -> None:
    """Create ``run_dir/run.json``, or check that the existing run can be resumed or extended by
    ``cfg`` (`check_study`) on the same data, and record the merged study (`merged_study`)."""
    meta = run_dir / "run.json"
    if meta.is_file():
        check_study(run_dir, cfg)
        have = json.loads(meta.read_text())
        if have.get("data") != fp:
            raise ConfigError(
                f"{run_dir}: existing run has a different data fingerprint "
                f"({have.get('data')} != {fp}); use a new run directory"
            )
        stored = have.get("settings")
        if not isinstance(stored, dict):
            return
        merged = merged_study(stored, cfg)
        if _model_seeds(merged) == _model_seeds(stored):
            return  # the same study: resume
        settings = merged
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        settings = cfg.model_dump(mode="json")
    want = {"config": settings_fingerprint(settings), "data": fp}
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps({**want, "settings": settings}, indent=1))
    os.replace(tmp, meta)


@dataclass
class RollingResult:
    run_dir: Path
    jobs: list[Job]
    trained: list[Job]
    skipped: list[Job]
    predictions: pl.DataFrame


def _select_panel(panel: Panel, cfg: RollingConfig) -> Panel:
    fields = cfg.dataset.needed_fields(panel)
    for f in fields:
        if not panel.has(f):
            raise DataError(f"panel lacks field {f!r} needed by the dataset", field=f)
    masks = [m for m in (cfg.dataset.universe, cfg.dataset.tradable) if m is not None]
    for m in masks:
        panel.mask(m)
    sel = panel.sel(fields=fields)
    return Panel(
        np.ascontiguousarray(sel.data),
        sel.dates,
        sel.assets,
        sel.fields,
        {m: np.ascontiguousarray(panel.masks[m]) for m in masks},
    )


def combine_predictions(run_dir: Path, jobs: list[Job]) -> pl.DataFrame:
    """Concatenate finished jobs' spans: date, asset, model, window, seed, score."""
    frames = []
    for j in jobs:
        f = pl.read_parquet(job_dir(run_dir, j) / PRED_FILE)
        frames.append(
            f.with_columns(
                pl.lit(j.model).alias("model"),
                pl.lit(j.window, pl.Int32).alias("window"),
                pl.lit(j.seed, pl.Int32).alias("seed"),
            ).select("date", "asset", "model", "window", "seed", "score")
        )
    if not frames:
        return pl.DataFrame(
            schema={
                "date": pl.Date,
                "asset": pl.Utf8,
                "model": pl.Utf8,
                "window": pl.Int32,
                "seed": pl.Int32,
                "score": pl.Float32,
            }
        )
    return pl.concat(frames).sort(["model", "window", "seed", "date", "asset"])


def run_rolling(
    panel: Panel,
    cfg: RollingConfig,
    run_dir: str | Path,
    *,
    progress: bool = True,
    reporter: Any = None,
) -> RollingResult:
    """Run (or resume) a rolling study under ``run_dir``; returns the combined predictions.

    Finished jobs are skipped; the config and data must match the run directory's (else
    ConfigError). Predictions are written to ``run_dir/predictions.parquet`` when every job is
    finished.

    ``reporter``: receives the jobs' progress (`deepalpha.progress`; epochs from worker
    processes arrive through `deepalpha.train.job_progress` files); default: a live display on a
    terminal, plain lines otherwise, nothing when ``progress`` is False.
    """
    run_dir = Path(run_dir)
    data = _select_panel(panel, cfg)
    _check_run_dir(run_dir, cfg, data_fingerprint(data))
    _clean_stale(run_dir)
    ds = build_dataset(data, cfg.dataset)
    sd = ds.sample_dates()
    jobs = plan_jobs(data.dates, cfg, int(sd[0]) if sd.size else 0)
    todo = [j for j in jobs if not is_finished(run_dir, j)]
    skipped = [j for j in jobs if j not in todo]
    ex = make_executor(
        cfg.executor, workers=cfg.workers, address=cfg.address, scratch=run_dir / "data"
    )
    if reporter is None:
        reporter = make_reporter(quiet=not progress)
    workers = 1 if cfg.executor == "local" else cfg.workers
    reporter.jobs_begin(len(jobs), len(todo), workers, f"rolling ({cfg.executor})")
    live = getattr(reporter, "enabled", True) and bool(todo)
    folder = run_dir / "jobs" / f".progress.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    fn = functools.partial(
        _run_job_entry, cfg.model_dump_json(), progress_dir=str(folder) if live else None
    )
    trained = []
    watcher = JobProgressWatcher(folder, reporter)
    try:
        if live:
            watcher.start()
        for job, res in ex.run(fn, data, todo):
            write_job(run_dir, data, job, res)
            trained.append(job)
            if live:
                watcher.finished(job.key, res.metrics)
    finally:
        if live:
            watcher.stop()
        reporter.jobs_end()
    preds = combine_predictions(run_dir, jobs)
    tmp = run_dir / f".{PRED_FILE}.tmp-{os.getpid()}"
    preds.write_parquet(tmp)
    os.replace(tmp, run_dir / PRED_FILE)
    shutil.rmtree(run_dir / "data", ignore_errors=True)
    return RollingResult(run_dir, jobs, trained, skipped, preds)
