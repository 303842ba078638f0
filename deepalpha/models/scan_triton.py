"""The gated linear RNN as Triton kernels (CUDA; float32, bfloat16 or float16 in, float32 math).

Legend of dimension letters:
    t  time steps (oldest first)    n  rows (stocks; any leading dims flattened)    h  hidden units

    lin_rnn_triton(z [t, ..., G*h]) -> h [t, ..., h]                   G = 2: z = [zf | zc]
    lin_rnn_triton(z [t, ..., 3*h], with_output_gate=True) -> y [t, ..., h]   z = [zf | zc | zo]

Same op as ``scan_kernels.lin_rnn_kernel`` (the C kernels; their header comment has the math,
forward and backward): ``f = sigmoid(zf)``, ``c = SiLU(zc)``, ``h_t = f_t h_{t-1} + (1 - f_t) c_t``
(``h_0 = 0``), ``y = sigmoid(zo) * h``. Each (row, unit) pair is an independent recurrence, so the
``n * h`` pairs ("lanes") are cut into blocks of ``BLOCK``; one program owns a block and walks
through time inside the kernel with the state in registers, reading ``z[t]`` of its lanes and
writing ``h[t]`` (and ``y[t]``) each step: two launches per layer (forward, backward) instead of
several per time step. The backward walks time in reverse, recomputing the gates from ``z`` and
carrying ``f_{t+1} g_{t+1}``; it writes ``dz [t, n, G*h]`` in ``z``'s dtype. Outputs and the saved
``h`` are float32. The backward is ``once_differentiable``.

Triton is imported lazily (importing this module costs nothing without it or on the CPU). The
kernels are plain functions below, wrapped by ``triton.jit`` on first use; the wrapping is cached
per value of ``TRITON_INTERPRET``, because Triton picks its interpreter (which runs kernels on
CPU tensors, for tests without a GPU) when a function is wrapped, not when it is launched. For the
same reason the kernels call only builtins of ``triton.language`` (``exp``, not ``tl.sigmoid``,
which is itself a jitted function, wrapped once when ``triton.language`` is imported): that keeps
the interpreter usable in a process that imported Triton before setting the variable.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from types import ModuleType
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

tl: Any = None  # triton.language, bound by _kernels() before the kernels are wrapped
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@functools.cache
def _triton() -> ModuleType | None:
    try:
        import triton
        import triton.language
    except ImportError:
        return None
    return triton


def available(z: Tensor) -> bool:
    """True when ``z`` can take the Triton path: a strided CUDA float32, bfloat16 or float16
    tensor (half precision comes from autocast) and Triton importable."""
    return z.is_cuda and z.dtype in _DTYPES and z.layout == torch.strided and _triton() is not None


def _fwd_kernel(
    z_ptr,  # [t, lanes / h, G*h]
    h_ptr,  # [t, lanes] float32
    y_ptr,  # [t, lanes] float32 (G = 3 only)
    t_len,
    lanes,  # n * h
    hd,
    z_step,  # n * G * h
    GATES: tl.constexpr,
    BLOCK: tl.constexpr,
):
    lane = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = lane < lanes
    row = lane // hd
    zp = z_ptr + row * (GATES * hd) + (lane - row * hd)  # zf of (row, unit) at step 0
    hp = h_ptr + lane
    yp = y_ptr + lane
    h = tl.full([BLOCK], 0.0, tl.float32)
    for _ in range(t_len):
        f = 1.0 / (1.0 + tl.exp(-tl.load(zp, mask=mask, other=0.0).to(tl.float32)))
        zc = tl.load(zp + hd, mask=mask, other=0.0).to(tl.float32)
        c = zc / (1.0 + tl.exp(-zc))
        h = c + f * (h - c)
        tl.store(hp, h, mask=mask)
        if GATES == 3:
            zo = tl.load(zp + 2 * hd, mask=mask, other=0.0).to(tl.float32)
            tl.store(yp, h / (1.0 + tl.exp(-zo)), mask=mask)
            yp += lanes
        zp += z_step
        hp += lanes


def _bwd_kernel(
    z_ptr,  # [t, lanes / h, G*h]
    h_ptr,  # [t, lanes] float32
    g_ptr,  # [t, lanes]: dL/dh (G = 2) or dL/dy (G = 3)
    dz_ptr,  # [t, lanes / h, G*h], z's dtype
    t_len,
    lanes,
    hd,
    z_step,
    z_last,  # (t - 1) * z_step: offset of the last step in z (int64 when large)
    h_last,  # (t - 1) * lanes
    GATES: tl.constexpr,
    BLOCK: tl.constexpr,
):
    lane = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = lane < lanes
    row = lane // hd
    zoff = row * (GATES * hd) + (lane - row * hd)
    zp = z_ptr + z_last + zoff
    dzp = dz_ptr + z_last + zoff
    hp = h_ptr + h_last + lane
    gp = g_ptr + h_last + lane
    fg = tl.full([BLOCK], 0.0, tl.float32)  # f_{t+1} g_{t+1}
    for i in range(t_len):  # step t = t_len - 1 - i
        zf = tl.load(zp, mask=mask, other=0.0).to(tl.float32)
        zc = tl.load(zp + hd, mask=mask, other=0.0).to(tl.float32)
        gout = tl.load(gp, mask=mask, other=0.0).to(tl.float32)
        if GATES == 3:
            o = 1.0 / (1.0 + tl.exp(-tl.load(zp + 2 * hd, mask=mask, other=0.0).to(tl.float32)))
            h = tl.load(hp, mask=mask, other=0.0)
            tl.store(dzp + 2 * hd, gout * h * o * (1.0 - o), mask=mask)
            gout = gout * o
        g = gout + fg
        f = 1.0 / (1.0 + tl.exp(-zf))
        s = 1.0 / (1.0 + tl.exp(-zc))
        c = zc * s
        # h_{t-1} (h_0 = 0); `where`, not `mask & scalar`, which the interpreter mistypes
        prev = tl.load(hp - lanes, mask=tl.where(i < t_len - 1, mask, False), other=0.0)
        omf = 1.0 - f
        tl.store(dzp, g * (prev - c) * f * omf, mask=mask)
        tl.store(dzp + hd, g * omf * s * (1.0 + zc * (1.0 - s)), mask=mask)
        fg = f * g
        zp -= z_step
        dzp -= z_step
        hp -= lanes
        gp -= lanes


@functools.cache
def _kernels(interpret: bool) -> tuple[Any, Any]:
    """``(forward, backward)`` wrapped by ``triton.jit`` (interpreted when ``interpret``)."""
    global tl
    import triton

    tl = triton.language
    return triton.jit(_fwd_kernel), triton.jit(_bwd_kernel)


def _launch_config(lanes: int) -> tuple[int, int]:
    """``(BLOCK, num_warps)``: 4 warps of 32 threads; two lanes per thread when there are many
    lanes (more independent work per thread), one otherwise (more programs to fill the SMs)."""
    return (256, 4) if lanes >= 1 << 16 else (128, 4)


def _grid(lanes: int, block: int) -> tuple[int]:
    return (-(-lanes // block),)


def _on_device(z: Tensor) -> contextlib.AbstractContextManager:
    """Launch on ``z``'s GPU (Triton launches on the current device); nothing for CPU tensors."""
    return torch.cuda.device(z.device) if z.is_cuda else contextlib.nullcontext()


def _compiled() -> tuple[Any, Any]:
    """The kernels for the current ``TRITON_INTERPRET`` (read through ``triton.knobs`` where
    that exists; older Triton versions compare the variable with "1")."""
    triton = _triton()
    if triton is None:
        raise RuntimeError("triton is not installed (check scan_triton.available first)")
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return _kernels(bool(knobs.runtime.interpret))
    return _kernels(os.environ.get("TRITON_INTERPRET", "0") == "1")


class _LinRNNTriton(torch.autograd.Function):
    """``z [t, n, G*h]`` contiguous -> ``h`` (G = 2) or ``y`` (G = 3) ``[t, n, h]`` float32."""

    @staticmethod
    def forward(ctx: FunctionCtx, z: Tensor, gates: int) -> Tensor:  # type: ignore[override]
        t_len, n, width = z.shape
        hd = width // gates
        hs = z.new_empty((t_len, n, hd), dtype=torch.float32)
        y = torch.empty_like(hs) if gates == 3 else hs
        lanes = n * hd
        if t_len and lanes:
            fwd, _ = _compiled()
            block, warps = _launch_config(lanes)
            with _on_device(z):
                fwd[_grid(lanes, block)](
                    z, hs, y, t_len, lanes, hd, n * width, GATES=gates, BLOCK=block, num_warps=warps
                )
        ctx.save_for_backward(z, hs)
        ctx.gates = gates  # type: ignore[attr-defined]
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        z, hs = ctx.saved_tensors  # type: ignore[attr-defined]
        gates = ctx.gates  # type: ignore[attr-defined]
        grad = grad.contiguous()
        t_len, n, hd = hs.shape
        lanes = n * hd
        dz = torch.empty_like(z)
        if t_len and lanes:
            _, bwd = _compiled()
            block, warps = _launch_config(lanes)
            z_step = n * gates * hd
            with _on_device(z):
                bwd[_grid(lanes, block)](
                    z,
                    hs,
                    grad,
                    dz,
                    t_len,
                    lanes,
                    hd,
                    z_step,
                    (t_len - 1) * z_step,
                    (t_len - 1) * lanes,
                    GATES=gates,
                    BLOCK=block,
                    num_warps=warps,
                )
        return dz, None


def lin_rnn_triton(z: Tensor, with_output_gate: bool = False) -> Tensor:
    """Linear RNN from packed gate pre-activations in Triton (see the module docstring).

    ``z [t, ..., G*h]`` float32, bfloat16 or float16 on a CUDA device (or on the CPU under
    ``TRITON_INTERPRET=1``; ``G = 3`` with ``with_output_gate``, else 2) -> ``[t, ..., h] float32``:
    ``y = sigmoid(zo) * h`` with the output gate, else ``h``. Raises ``RuntimeError`` without
    Triton (check ``available`` first).
    """
    gates = 3 if with_output_gate else 2
    if z.shape[-1] % gates:
        raise ValueError(f"packed gates need a last dim divisible by {gates}, got {z.shape[-1]}")
    if z.dtype not in _DTYPES:
        raise TypeError(f"z must be float32, bfloat16 or float16, got {z.dtype}")
    lead = z.shape[1:-1]
    flat = z.reshape(z.shape[0], math.prod(lead), z.shape[-1]).contiguous()
    out = _LinRNNTriton.apply(flat, gates)
    return out.reshape(z.shape[0], *lead, z.shape[-1] // gates)
