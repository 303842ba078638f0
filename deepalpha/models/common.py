"""Small building blocks shared by the models: helpers, RMSNorm, SwiGLU, the residual-MLP branch.

Legend of dimension letters (einops):
    b  batch (stocks of one date, or rows)     d  features of the residual stream
    e  hidden width of a feed-forward branch
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def exists(v: object) -> bool:
    """True when ``v`` is not None."""
    return v is not None


def default(v: object, d: object) -> object:
    """``v`` unless it is None, else ``d``."""
    return v if exists(v) else d


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's CPU RNG seeded, restoring the caller's RNG state afterwards.

    ``seed=None`` leaves the global RNG untouched and uses it as is.
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last dimension with a learnable gain.

    ``x [..., d] -> x / sqrt(mean(x**2) + eps) * g``; scale-invariant up to ``eps``, so inputs
    scaled by 1e3 give the same output. Computed in float32 even under autocast.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        rms = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * rms).to(x.dtype) * self.gain


class FeedForward(nn.Module):
    """Residual-MLP branch ``RMSNorm -> Linear -> SiLU -> (Dropout) -> Linear``: ``[..., d] -> [..., d]``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            RMSNorm(dim),
            nn.Linear(dim, hidden),
            nn.SiLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(hidden, dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SwiGLU(nn.Module):
    """Gated feed-forward ``(SiLU(z W) * z V) W2`` without biases: ``[..., d] -> [..., d]``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(dim, 2 * hidden, bias=False)  # W and V in one matmul
        self.proj_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, z: Tensor) -> Tensor:
        gate, value = self.proj_in(z).chunk(2, dim=-1)
        return self.proj_out(F.silu(gate) * value)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
