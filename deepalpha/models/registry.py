"""Registry of the neural scorers: ``name -> ModelSpec`` and ``build_model``.

Every model: ``forward(x, group_ids=None) -> Tensor [n]`` (one score per stock).
Tabular models take ``x [n, f] float32``; sequence models ``x [n, t, f] float32`` (oldest first,
last step = the prediction date). ``group_ids [n]`` (cap groups) is used by DecompGRN only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from deepalpha.errors import ConfigError
from deepalpha.models.common import count_parameters, seeded
from deepalpha.models.decompgrn import DecompGRN
from deepalpha.models.mlp import HCMLP, MHCMLP, ResidualMLP
from deepalpha.models.rnn import GRUModel, RNNLin, RNNLinGLU

Kind = Literal["tabular", "sequence"]

__all__ = ["MODELS", "ModelSpec", "build_model", "count_parameters", "model_kind"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its constructor ``cls(n_features, **options)`` and what it is."""

    name: str
    cls: Callable[..., nn.Module]
    kind: Kind
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """Keyword options the constructor accepts, with their effective defaults."""
        params = inspect.signature(self.cls).parameters
        opts = {k: p.default for k, p in params.items() if k != "n_features"}
        return opts | self.defaults


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("mlp", ResidualMLP, "tabular", "residual MLP, C 64, L 6"),
        ModelSpec("hc_mlp", HCMLP, "tabular", "HC, n 4, C 64, L 6 (ablation)"),
        ModelSpec("mhc_mlp", MHCMLP, "tabular", "mHC, n 4, C 64, L 6"),
        ModelSpec("gru", GRUModel, "sequence", "nn.GRU, 2 layers, H 64"),
        ModelSpec("rnn_lin", RNNLin, "sequence", "RNN-LIN, 2 layers, H 64"),
        ModelSpec("rnn_lin_glu", RNNLinGLU, "sequence", "2 RNN-LIN+SwiGLU blocks, H 64"),
        ModelSpec("decompgrn", DecompGRN, "sequence", "RNN-LIN, cap de-mean, RNN-LIN, H 56"),
    )
}


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def model_kind(name: str) -> Kind:
    """``"tabular"`` (``x [n, f]``) or ``"sequence"`` (``x [n, t, f]``)."""
    return _spec(name).kind


def build_model(name: str, n_features: int, seed: int | None = None, **kwargs: Any) -> nn.Module:
    """Construct the registered model ``name`` for ``n_features`` inputs.

    ``kwargs`` override the defaults (see ``MODELS[name].options()``); an unknown keyword raises
    ``ConfigError`` naming it. ``seed`` makes the initial weights reproducible without touching
    the caller's global RNG. The model is on the CPU in float32; the caller moves it.
    """
    spec = _spec(name)
    if n_features < 1:
        raise ConfigError(f"model {name!r}: n_features must be >= 1, got {n_features}")
    known = spec.options()
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    with seeded(seed):
        return spec.cls(n_features, **(spec.defaults | kwargs))
