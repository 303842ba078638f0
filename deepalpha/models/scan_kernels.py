"""The gated linear RNN on the fused C kernels of ``kernels/linrnn.c`` (CPU, float32).

Legend of dimension letters:
    t  time steps (oldest first)    n  rows (stocks; any leading dims flattened)    h  hidden units

    lin_rnn_kernel(z [t, ..., G*h]) -> h [t, ..., h]                   G = 2: z = [zf | zc]
    lin_rnn_kernel(z [t, ..., 3*h], with_output_gate=True) -> y [t, ..., h]   z = [zf | zc | zo]
    lin_rnn_kernel(z [t, ..., G*h], last_only=True) -> h_T or y_T [..., h]   the last step only

with ``f = sigmoid(zf)``, ``c = SiLU(zc)``, ``h_t = f_t h_{t-1} + (1 - f_t) c_t`` (``h_0 = 0``) and
``y = sigmoid(zo) * h``. With ``last_only`` the scan still runs over every step, but only the last
step is returned, and the backward takes that step's gradient alone (no zero-filled
``[t, n, h]`` gradient is made or read). The kernels keep each (row, unit) recurrence's state in L1 and evaluate
the gates inside the loop, forward and backward: one pass over memory each way, no ``[t, n, h]``
temporaries (see the C file). ``available(z)`` says whether a tensor can take this path (CPU,
float32, kernels built, ``h`` within the kernel's limit); callers fall back to the torch ops of
``deepalpha.models.scan`` otherwise. The backward is ``once_differentiable``.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from deepalpha.models.kernels import library


def available(z: Tensor) -> bool:
    """True when ``z`` can run on the C kernels (CPU float32 strided, kernels loaded)."""
    if z.device.type != "cpu" or z.dtype != torch.float32 or z.layout != torch.strided:
        return False
    lib = library()
    return lib is not None and z.shape[-1] // 2 <= lib.linrnn_max_h()


def _check(rc: int, what: str, shape: tuple[int, ...]) -> None:
    if rc != 0:
        raise ValueError(f"{what} failed (code {rc}) for z of shape {shape}")


class _LinRNNKernel(torch.autograd.Function):
    """``z [t, n, G*h]`` contiguous float32 -> ``h`` (G = 2) or ``y`` (G = 3) ``[t, n, h]``, or
    their last step ``[n, h]`` with ``last_only``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, z: Tensor, gates: int, last_only: bool, lib: ctypes.CDLL
    ) -> Tensor:
        t_len, n, width = z.shape
        hd = width // gates
        hs = z.new_empty((t_len, n, hd))
        y = z.new_empty((t_len, n, hd)) if gates == 3 else None
        rc = lib.linrnn_fwd(
            z.data_ptr(),
            hs.data_ptr(),
            None if y is None else y.data_ptr(),
            t_len,
            n,
            hd,
            gates,
            torch.get_num_threads(),
        )
        _check(rc, "linrnn_fwd", tuple(z.shape))
        ctx.save_for_backward(z, hs)
        ctx.gates, ctx.last_only, ctx.lib = gates, last_only, lib  # type: ignore[attr-defined]
        out = hs if y is None else y
        return out[-1].clone() if last_only else out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        z, hs = ctx.saved_tensors  # type: ignore[attr-defined]
        grad = grad.contiguous()
        dz = torch.empty_like(z)
        t_len, n, hd = hs.shape
        rc = ctx.lib.linrnn_bwd(  # type: ignore[attr-defined]
            z.data_ptr(),
            hs.data_ptr(),
            grad.data_ptr(),
            dz.data_ptr(),
            t_len,
            n,
            hd,
            ctx.gates,  # type: ignore[attr-defined]
            int(ctx.last_only),  # type: ignore[attr-defined]
            torch.get_num_threads(),
        )
        _check(rc, "linrnn_bwd", tuple(z.shape))
        return dz, None, None, None


def lin_rnn_kernel(z: Tensor, with_output_gate: bool = False, last_only: bool = False) -> Tensor:
    """Linear RNN from packed gate pre-activations on the C kernels (see the module docstring).

    ``z [t, ..., G*h] float32`` on the CPU (``G = 3`` with ``with_output_gate``, else 2) ->
    ``[t, ..., h] float32``: ``y = sigmoid(zo) * h`` with the output gate, else ``h``; only the
    last step ``[..., h]`` with ``last_only``.
    Raises ``RuntimeError`` when the kernels are unavailable (check ``available`` first).
    """
    gates = 3 if with_output_gate else 2
    if z.shape[-1] % gates:
        raise ValueError(f"packed gates need a last dim divisible by {gates}, got {z.shape[-1]}")
    lib = library()
    if lib is None:
        raise RuntimeError("the deepalpha C kernels are unavailable (see the earlier warning)")
    lead = z.shape[1:-1]
    flat = z.reshape(z.shape[0], -1, z.shape[-1]).contiguous()
    out = _LinRNNKernel.apply(flat, gates, last_only, lib)
    steps = () if last_only else (z.shape[0],)
    return out.reshape(*steps, *lead, z.shape[-1] // gates)
