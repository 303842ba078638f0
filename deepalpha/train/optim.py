"""AdamW with parameter groups: weight decay only where it is a regulariser.

Decayed: weight matrices (``ndim >= 2``). Not decayed: biases, norm gains and scalars
(``ndim < 2``), and whatever a module lists in ``no_weight_decay()`` by local name (the
hyper-connections' mapping biases ``b_pre / b_post / b_res`` and their alphas: decay would pull
``H_pre`` and ``H_post`` towards 0.5 / 1 and ``H_res`` towards the uniform matrix, i.e. make the
streams copies of each other).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """``[{"params": decayed, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0}]``
    (empty groups dropped), each parameter once, in ``named_parameters`` order."""
    exempt: set[str] = set()
    for prefix, module in model.named_modules():
        names = getattr(module, "no_weight_decay", None)
        if callable(names):
            exempt |= {f"{prefix}.{n}" if prefix else n for n in names()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name in exempt else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``param_groups(model, weight_decay)``."""
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
