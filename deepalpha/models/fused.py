"""Fused CPU ops of a hyper-connection layer: Sinkhorn-Knopp, the pre-mix and the post-mix.

Legend of dimension letters (einops):
    s, i, j  residual streams (n of them; rows i = output stream, columns j = input stream)
    d        features per stream (C)
    ...      any leading dims (batch, time); flattened to one batch dim b for the kernels

Each op runs the C kernels of ``deepalpha/models/kernels/mhc.c`` (through ctypes, one OpenMP team
of ``torch.get_num_threads()`` threads over the batch) when every tensor is on the CPU, float32,
the leading dims agree exactly (no broadcasting) and the kernels are available
(``deepalpha.models.kernels.library()``; ``DEEPALPHA_KERNELS=0`` turns them off). Otherwise it
runs the eager torch ops of the same name with the suffix ``_eager`` (float64, CUDA, broadcasting
inputs, autograd of any order). The kernels' backwards are ``once_differentiable``.

    sinkhorn(logits [..., n, n], t_max, eps) -> [..., n, n]   (= sinkhorn_knopp, fused)
    sinkhorn_fused(logits [..., n, n], t_max, eps) -> [..., n, n]   (prepared logits)
    pre_mix(x [..., s, d], h_pre [..., s]) -> [..., d]
    post_mix(x [..., s, d], h_res [..., s, s], h_post [..., s], y [..., d]) -> [..., s, d]
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from deepalpha.models.kernels import library
from deepalpha.models.sinkhorn import EPS, _prepare, _SinkhornFn

MAX_N = 16  # largest n the Sinkhorn kernel takes (mhc.c MAX_N)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _kernel_ready(*tensors: Tensor) -> ctypes.CDLL | None:
    """The library when every tensor is a strided float32 CPU tensor, else None (eager)."""
    for t in tensors:
        if t.device.type != "cpu" or t.dtype != torch.float32 or t.layout != torch.strided:
            return None
    return library()


def _empty(needed: bool, *shape: int) -> Tensor | None:
    return torch.empty(*shape, dtype=torch.float32) if needed else None


# ----------------------------------------------------------------------------------------------
# Sinkhorn-Knopp


def sinkhorn_eager(logits: Tensor, t_max: int = 20, eps: float = EPS) -> Tensor:
    """Eager Sinkhorn on prepared logits ``[..., n, n]`` (``_SinkhornFn`` of ``sinkhorn.py``)."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        return _SinkhornFn.apply(logits, t_max, eps)


class _SinkhornKernel(torch.autograd.Function):
    """``logits [b, n, n] float32`` contiguous -> ``[b, n, n]``; saves the row softmax."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, logits: Tensor, t_max: int, eps: float, lib: ctypes.CDLL
    ) -> Tensor:
        b, n = logits.shape[0], logits.shape[-1]
        out = torch.empty_like(logits)
        soft = torch.empty_like(logits) if ctx.needs_input_grad[0] else None
        rc = lib.mhc_sinkhorn_fwd(
            _ptr(logits), _ptr(out), _ptr(soft), b, n, t_max, eps, torch.get_num_threads()
        )
        if rc != 0:
            raise ValueError(f"mhc_sinkhorn_fwd failed (code {rc}) for n={n}, t_max={t_max}")
        if soft is not None:
            ctx.save_for_backward(soft)
        ctx.t_max, ctx.eps, ctx.lib = t_max, eps, lib  # type: ignore[attr-defined]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        (soft,) = ctx.saved_tensors  # type: ignore[attr-defined]
        grad = grad.float().contiguous()
        b, n = soft.shape[0], soft.shape[-1]
        out = torch.empty_like(soft)
        rc = ctx.lib.mhc_sinkhorn_bwd(  # type: ignore[attr-defined]
            _ptr(soft),
            _ptr(grad),
            _ptr(out),
            b,
            n,
            ctx.t_max,
            ctx.eps,
            torch.get_num_threads(),  # type: ignore[attr-defined]
        )
        if rc == -2:
            raise MemoryError("mhc_sinkhorn_bwd could not allocate its workspace")
        if rc != 0:
            raise ValueError(f"mhc_sinkhorn_bwd failed (code {rc})")
        return out, None, None, None


def sinkhorn_fused(logits: Tensor, t_max: int = 20, eps: float = EPS) -> Tensor:
    """Sinkhorn-Knopp of prepared logits ``[..., n, n] float32 -> [..., n, n] float32``.

    ``logits`` must already be floored as ``deepalpha.models.sinkhorn._prepare`` does (the caller
    keeps that step, and its gradient, in torch). Row softmax, then ``t_max`` rounds of column
    normalisation (``+eps`` on the column sums) and row normalisation; the backward is the exact
    gradient of that unrolled iteration (as ``sinkhorn_autograd``). C kernel for float32 CPU
    inputs with ``1 <= n <= 16``, else ``sinkhorn_eager``.
    """
    n = logits.shape[-1]
    lib = _kernel_ready(logits)
    if (
        lib is None
        or not 1 <= n <= MAX_N
        or logits.shape[-2] != n
        or logits.numel() == 0
        or t_max < 0
    ):
        return sinkhorn_eager(logits, t_max, eps)
    flat = logits.reshape(-1, n, n).contiguous()
    return _SinkhornKernel.apply(flat, int(t_max), float(eps), lib).reshape(logits.shape)


def sinkhorn(logits: Tensor, t_max: int = 20, eps: float = EPS) -> Tensor:
    """``deepalpha.models.sinkhorn.sinkhorn_knopp`` on the fused kernel: logits ``[..., n, n]``
    (any float dtype, also under autocast) -> ``[..., n, n] float32`` (float64 stays float64)."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        return sinkhorn_fused(_prepare(logits), t_max, eps)


# ----------------------------------------------------------------------------------------------
# pre-mix: the branch input u = sum_s H_pre[s] x[s, :]


def pre_mix_eager(x: Tensor, h_pre: Tensor) -> Tensor:
    """``x [..., s, d], h_pre [..., s] -> [..., d]``: ``sum_s h_pre[s] x[s, :]`` in torch."""
    return (x * h_pre.unsqueeze(-1)).sum(dim=-2)


class _PreMixKernel(torch.autograd.Function):
    """``x [b, s, d], h_pre [b, s]`` float32 contiguous -> ``u [b, d]``."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, h_pre: Tensor, lib: ctypes.CDLL) -> Tensor:  # type: ignore[override]
        b, s, d = x.shape
        u = torch.empty(b, d, dtype=torch.float32)
        lib.mhc_pre_mix_fwd(_ptr(x), _ptr(h_pre), _ptr(u), b, s, d, torch.get_num_threads())
        ctx.save_for_backward(x, h_pre)
        ctx.lib = lib  # type: ignore[attr-defined]
        return u

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        x, h_pre = ctx.saved_tensors  # type: ignore[attr-defined]
        b, s, d = x.shape
        need_x, need_h, _ = ctx.needs_input_grad  # type: ignore[attr-defined]
        grad = grad.float().contiguous()
        gx, gh = _empty(need_x, b, s, d), _empty(need_h, b, s)
        ctx.lib.mhc_pre_mix_bwd(  # type: ignore[attr-defined]
            _ptr(x), _ptr(h_pre), _ptr(grad), _ptr(gx), _ptr(gh), b, s, d, torch.get_num_threads()
        )
        return gx, gh, None


def pre_mix(x: Tensor, h_pre: Tensor) -> Tensor:
    """Branch input ``x [..., s, d], h_pre [..., s] -> [..., d]``: ``sum_s h_pre[s] x[s, :]``.

    C kernel when both are float32 CPU tensors with the same leading dims, else ``pre_mix_eager``
    (which broadcasts)."""
    lib = _kernel_ready(x, h_pre)
    if lib is None or x.dim() < 2 or h_pre.shape != x.shape[:-1] or x.numel() == 0:
        return pre_mix_eager(x, h_pre)
    s, d = x.shape[-2:]
    u = _PreMixKernel.apply(
        x.reshape(-1, s, d).contiguous(), h_pre.reshape(-1, s).contiguous(), lib
    )
    return u.reshape(*x.shape[:-2], d)


# ----------------------------------------------------------------------------------------------
# post-mix: the new state H_res x + H_post^T y


def post_mix_eager(x: Tensor, h_res: Tensor, h_post: Tensor, y: Tensor) -> Tensor:
    """``x [..., s, d], h_res [..., s, s], h_post [..., s], y [..., d] -> [..., s, d]``:
    ``H_res x + H_post^T y`` in torch (a batched matmul plus an outer product in one addcmul),
    autocast off."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return torch.addcmul(torch.matmul(h_res, x), h_post.unsqueeze(-1), y.unsqueeze(-2))


class _PostMixKernel(torch.autograd.Function):
    """``x [b, s, d], h_res [b, s, s], h_post [b, s], y [b, d]`` float32 contiguous ->
    ``[b, s, d]``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, x: Tensor, h_res: Tensor, h_post: Tensor, y: Tensor, lib: ctypes.CDLL
    ) -> Tensor:
        b, s, d = x.shape
        out = torch.empty(b, s, d, dtype=torch.float32)
        lib.mhc_post_mix_fwd(
            _ptr(x), _ptr(h_res), _ptr(h_post), _ptr(y), _ptr(out), b, s, d, torch.get_num_threads()
        )
        ctx.save_for_backward(x, h_res, h_post, y)
        ctx.lib = lib  # type: ignore[attr-defined]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        x, h_res, h_post, y = ctx.saved_tensors  # type: ignore[attr-defined]
        b, s, d = x.shape
        need = ctx.needs_input_grad  # type: ignore[attr-defined]
        grad = grad.float().contiguous()
        gx, gr = _empty(need[0], b, s, d), _empty(need[1], b, s, s)
        gp, gy = _empty(need[2], b, s), _empty(need[3], b, d)
        ctx.lib.mhc_post_mix_bwd(  # type: ignore[attr-defined]
            *map(_ptr, (x, h_res, h_post, y, grad, gx, gr, gp, gy)),
            b,
            s,
            d,
            torch.get_num_threads(),
        )
        return gx, gr, gp, gy, None


def post_mix(x: Tensor, h_res: Tensor, h_post: Tensor, y: Tensor) -> Tensor:
    """New residual state ``out[..., i, :] = sum_j h_res[..., i, j] x[..., j, :] + h_post[..., i]
    y[..., :]``: ``x [..., s, d], h_res [..., s, s], h_post [..., s], y [..., d] -> [..., s, d]``.

    C kernel when all four are float32 CPU tensors with the same leading dims (pass ``y.float()``
    for a branch output computed under autocast), else ``post_mix_eager`` (which broadcasts)."""
    lib = _kernel_ready(x, h_res, h_post, y)
    if lib is None or x.dim() < 2 or x.numel() == 0:
        return post_mix_eager(x, h_res, h_post, y)
    *lead, s, d = x.shape
    lead_ok = h_res.shape == (*lead, s, s) and h_post.shape == (*lead, s)
    if not lead_ok or y.shape != (*lead, d):
        return post_mix_eager(x, h_res, h_post, y)
    out = _PostMixKernel.apply(
        x.reshape(-1, s, d).contiguous(),
        h_res.reshape(-1, s, s).contiguous(),
        h_post.reshape(-1, s).contiguous(),
        y.reshape(-1, d).contiguous(),
        lib,
    )
    return out.reshape(x.shape)
