"""Sinkhorn-Knopp projection of ``[..., n, n]`` logits onto (nearly) doubly stochastic matrices.

Legend: ``n`` streams (rows = output stream, columns = input stream).

``sinkhorn_knopp`` is the fast linear-domain version the models use; ``sinkhorn_log`` is the slow,
obviously-stable log-domain reference the tests compare it with.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-8  # guards column sums of very peaked matrices; 1/EPS**2 stays a normal float32


LOGIT_RANGE = 30.0  # logits below (row max - 30) are raised to it: entries < e^-30 of the max


def _prepare(logits: Tensor) -> Tensor:
    """float32 (float64 stays) logits with each row floored at ``row max - LOGIT_RANGE``.

    The floor changes entries smaller than ``e^-30`` times the row maximum (their gradient becomes
    0); without it a column of ~e^-100 entries needs many rounds of ``1/(c + eps)`` ~ 1e8 scaling
    and its gradient overflows float32.
    """
    z = logits if logits.dtype == torch.float64 else logits.float()
    floor = z.detach().amax(dim=-1, keepdim=True) - LOGIT_RANGE
    return torch.maximum(z, floor)


class _SinkhornFn(torch.autograd.Function):
    """Unrolled Sinkhorn with a hand-written reverse-loop backward (exactly the gradient of the
    unrolled iteration). Works batch-last, ``[i, j, b]``, so every normalisation is a
    contiguous vector op over the batch instead of many tiny strided ones."""

    @staticmethod
    def forward(ctx, logits: Tensor, t_max: int, eps: float) -> Tensor:  # type: ignore[override]
        lead, n = logits.shape[:-2], logits.shape[-1]
        s = torch.softmax(logits.reshape(-1, n, n), dim=-1).permute(1, 2, 0).contiguous()
        m, saved = s, [s]
        for _ in range(t_max):
            c = m.sum(dim=0) + eps  # column sums [j, b]
            m = m / c
            r = m.sum(dim=1, keepdim=True)  # row sums [i, 1, b]
            m = m / r
            saved += [c, m, r]
        ctx.save_for_backward(*saved)
        ctx.t_max, ctx.shape = t_max, logits.shape
        # contiguous batch-first: a strided [b, n, n] sends torch.matmul to a per-sample slow path
        return m.permute(2, 0, 1).contiguous().reshape(*lead, n, n)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        s, *rest = ctx.saved_tensors
        n = ctx.shape[-1]
        g = grad.reshape(-1, n, n).permute(1, 2, 0).to(s.dtype).contiguous()
        for k in reversed(range(ctx.t_max)):
            c, m_row, r = rest[3 * k : 3 * k + 3]
            g = (g - (g * m_row).sum(dim=1, keepdim=True)) / r  # through m_row = m_col / r
            m_col = m_row * r
            g = (g - (g * m_col).sum(dim=0)) / c  # through m_col = m / (c + eps)
        g = s * (g - (g * s).sum(dim=1, keepdim=True))  # through the row softmax
        return g.permute(2, 0, 1).contiguous().reshape(ctx.shape), None, None


def sinkhorn_knopp(logits: Tensor, t_max: int = 20, eps: float = EPS) -> Tensor:
    """Project logits ``[..., n, n]`` onto doubly stochastic matrices ``[..., n, n] float32``.

    Starts from ``M = softmax(logits, -1)`` (max-subtracted, so any logits are safe; rows sum to
    1; logits more than 30 below their row's max are floored there, see ``_prepare``), then ``t_max`` rounds of column then row normalisation (column sums get ``+eps``). The
    last step is a row normalisation, so rows sum to 1 to float rounding; columns approach 1 (see
    ``column_error``). Computed in float32 (float64 stays float64), also under autocast. The backward is a
    hand-written reverse loop equal to autograd through the unrolled iteration
    (``sinkhorn_autograd``), several times faster on CPU.
    """
    with torch.autocast(device_type=logits.device.type, enabled=False):
        return _SinkhornFn.apply(_prepare(logits), t_max, eps)


def sinkhorn_autograd(logits: Tensor, t_max: int = 20, eps: float = EPS) -> Tensor:
    """Reference: the same unrolled iteration written with plain ops (autograd backward)."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        m = torch.softmax(_prepare(logits), dim=-1)
        for _ in range(t_max):
            m = m / (m.sum(dim=-2, keepdim=True) + eps)
            m = m / m.sum(dim=-1, keepdim=True)
    return m


def sinkhorn_log(logits: Tensor, t_max: int = 20) -> Tensor:
    """Reference: the same iteration in log space (logsumexp normalisations), float64.

    Mathematically equal to ``sinkhorn_knopp`` with ``eps=0``: row softmax, then ``t_max`` rounds of
    column and row normalisation. ``[..., n, n] -> [..., n, n] float64``.
    """
    z = logits.double()
    z = z - z.logsumexp(dim=-1, keepdim=True)
    for _ in range(t_max):
        z = z - z.logsumexp(dim=-2, keepdim=True)
        z = z - z.logsumexp(dim=-1, keepdim=True)
    return z.exp()


def column_error(m: Tensor) -> float:
    """Largest ``|column sum - 1|`` over a batch of matrices ``[..., n, n]``."""
    return (m.sum(dim=-2) - 1).abs().max().item()


def row_error(m: Tensor) -> float:
    """Largest ``|row sum - 1|`` over a batch of matrices ``[..., n, n]``."""
    return (m.sum(dim=-1) - 1).abs().max().item()


def amax_gains(maps: Tensor) -> tuple[float, float]:
    """Forward and backward gain of the composite of ``L`` residual mappings.

    ``maps [L, ..., n, n]`` are the ``H_res`` of layers 1..L (per sample); the composite is
    ``P = H_L ... H_1``. Forward gain = max absolute row sum of P (the inf-norm: how much the
    residual path can amplify a signal going forward), backward gain = max absolute column sum
    (the 1-norm: the same for gradients going back). Maxima over all samples.
    """
    prod = maps[0].double()
    for h in maps[1:]:
        prod = h.double() @ prod
    fwd = prod.abs().sum(dim=-1).max().item()
    bwd = prod.abs().sum(dim=-2).max().item()
    return fwd, bwd
