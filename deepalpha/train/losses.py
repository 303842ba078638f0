"""Per-date masked losses on one cross-section.

Every loss takes ``pred: float[n]``, ``y: float[n]`` (NaN = unknown label) and an optional
``mask: bool[n]`` (default: finite ``y``), and returns a scalar tensor; entries outside the mask
never touch the result or its gradient. Fewer than 2 valid entries give a zero loss that still
carries a (zero) gradient to ``pred``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deepalpha.errors import ConfigError

LossFn = Callable[..., torch.Tensor]


def _up(x: torch.Tensor) -> torch.Tensor:
    """Half precision (autocast outputs) -> float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _select(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.isfinite(y) if mask is None else (mask & torch.isfinite(y))
    return _up(pred[m]), _up(y[m])


def pearson_ic(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Pearson correlation of ``pred`` and ``y`` over the mask (0 when undefined)."""
    p, t = _select(pred, y, mask)
    if p.numel() < 2:
        return pred.sum() * 0.0
    p = p - p.mean()
    t = t - t.mean()
    den = torch.sqrt((p * p).sum() * (t * t).sum())
    return (p * t).sum() / den.clamp_min(1e-12)


def ic_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Negative Pearson IC (the default)."""
    return -pearson_ic(pred, y, mask)


def mse_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the mask."""
    p, t = _select(pred, y, mask)
    if p.numel() == 0:
        return pred.sum() * 0.0
    return ((p - t) ** 2).mean()


def weighted_mse_loss(
    pred: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum w (p - y)^2 / sum w``; default ``w = 1 + |y|`` (the tails, which decide the top and
    bottom groups, weigh more on a rank-normalised label)."""
    m = torch.isfinite(y) if mask is None else (mask & torch.isfinite(y))
    p, t = _up(pred[m]), _up(y[m])
    if p.numel() == 0:
        return pred.sum() * 0.0
    w = (1.0 + t.abs()) if weight is None else _up(weight[m])
    return (w * (p - t) ** 2).sum() / w.sum().clamp_min(1e-12)


def ccc_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - CCC``, concordance correlation ``2 cov / (var_p + var_y + (mu_p - mu_y)^2)``
    (population moments)."""
    p, t = _select(pred, y, mask)
    if p.numel() < 2:
        return pred.sum() * 0.0
    mp, mt = p.mean(), t.mean()
    cov = ((p - mp) * (t - mt)).mean()
    den = p.var(unbiased=False) + t.var(unbiased=False) + (mp - mt) ** 2
    return 1.0 - 2.0 * cov / den.clamp_min(1e-12)


LOSSES: dict[str, LossFn] = {
    "ic": ic_loss,
    "mse": mse_loss,
    "wmse": weighted_mse_loss,
    "ccc": ccc_loss,
}


def get_loss(name: str) -> LossFn:
    """Loss by name: ``ic`` (default), ``mse``, ``wmse``, ``ccc``."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
