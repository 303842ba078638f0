"""Trained models of a rolling run, rebuilt from ``rolling/run.json`` and each job's ``model.pt``.

Layout (``deepalpha.train.rolling``): ``<rolling>/jobs/<model>/w<window>/<retrain>/s<seed>/``
holding ``model.pt`` (a state dict) and ``metrics.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deepalpha.errors import DataError
from deepalpha.train.rolling import ModelSpec
from deepalpha.train.trainer import make_model


@dataclass(frozen=True)
class TrainedJob:
    """One finished job's model, with where it came from."""

    model_key: str
    window: int
    retrain: str
    seed: int
    path: Path
    model: nn.Module


def rolling_dir(run_dir: str | Path) -> Path:
    """``run_dir/rolling`` (a run folder) or ``run_dir`` itself (a rolling folder)."""
    p = Path(run_dir)
    for cand in (p / "rolling", p):
        if (cand / "run.json").is_file():
            return cand
    raise DataError("not a run folder: no rolling/run.json", file=str(p))


def model_specs(rolling: Path) -> dict[str, ModelSpec]:
    """The study's models by key, from ``run.json``."""
    settings = json.loads((rolling / "run.json").read_text()).get("settings", {})
    specs = [ModelSpec.model_validate(m) for m in settings.get("models", [])]
    return {s.key: s for s in specs}


def _n_features(state: dict[str, torch.Tensor], path: Path) -> int:
    """Input width: the second dim of the first weight matrix (every model reads its inputs
    through a linear map first: ``proj_in``, a GRU's ``weight_ih_l0``, ...)."""
    for w in state.values():
        if w.ndim == 2:
            return int(w.shape[1])
    raise DataError("cannot tell the model's input width from its state dict", file=str(path))


def trained_jobs(run_dir: str | Path, models: list[str] | None = None) -> Iterator[TrainedJob]:
    """Every finished job's model (eval mode, CPU) in ``run_dir``, optionally only ``models``."""
    rolling = rolling_dir(run_dir)
    specs = model_specs(rolling)
    for f in sorted((rolling / "jobs").glob("*/w*/*/s*/model.pt")):
        key, window, retrain, seed = f.parent.relative_to(rolling / "jobs").parts
        if (models and key not in models) or key not in specs:
            continue
        state = torch.load(f, map_location="cpu", weights_only=True)
        spec = specs[key]
        model = make_model(spec.name, _n_features(state, f), **spec.kwargs)
        model.load_state_dict(state)
        yield TrainedJob(key, int(window[1:]), retrain, int(seed[1:]), f.parent, model.eval())
