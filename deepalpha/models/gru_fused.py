"""PyTorch's GRU (the ``nn.GRU`` equations) on the fused C recurrence of ``kernels/gru.c`` (CPU,
float32).

Legend of dimension letters:
    t  time steps (oldest first)    n  rows (stocks)    f  input features of a layer
    h  hidden units                 g  gates r, z, n (in nn.GRU's order)

One layer, ``x [t, n, f] -> hs [t, n, h]`` (``h_0 = 0``), exactly ``nn.GRU``'s::

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr),  z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),  h' = (1 - z) * n + z * h

Forward: the input projection of all steps is one GEMM (torch), ``gi [t, n, 3h]``, with
``b_hr, b_hz`` folded into its bias; the recurrence runs in C (per step and tile of stocks the
recurrent GEMM ``h W_hh^T`` and the gates while the tile is hot) and saves ``hs`` and the gates
``[t, n, 4h] = [r | z | n | hn]`` for the backward. Backward: the BPTT in C gives the gate
gradients ``da [t, n, 4h] = [da_r | da_z | da_n | da_n r]``; then every weight gradient and the
input gradient are single GEMMs over all steps (torch): ``dW_ih = d gi^T x``,
``dW_hh = sum_t d gh_t^T h_{t-1}``, ``dx = d gi W_ih``. Weights are read from an ``nn.GRU``
(same parameters, so ``state_dict`` and checkpoints are those of ``nn.GRU``).

``available(rnn, x)`` says whether a module and input can take this path (CPU float32, no
autocast, unidirectional with biases and no projection, the C kernels loaded, ``h`` within the
kernel's limit); callers use ``nn.GRU`` otherwise (``deepalpha.models.rnn.GRUModel`` does).
The backward is ``once_differentiable``.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn import functional as F

from deepalpha.models.kernels import library

VW = 16  # gru.c's SIMD width in floats: the gate width is padded to a multiple of it


def _padded(hd: int) -> int:
    return -(-hd // VW) * VW


def available(rnn: nn.GRU, x: Tensor) -> bool:
    """True when ``rnn`` applied to ``x`` can run on the C kernels: CPU float32 strided input and
    weights, no CPU autocast, ``bias=True``, one direction, no ``proj_size``, kernels loaded."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.layout != torch.strided:
        return False
    if not rnn.bias or rnn.bidirectional or rnn.proj_size or rnn.mode != "GRU":
        return False
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in rnn.parameters()):
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    lib = library()
    return lib is not None and _padded(rnn.hidden_size) <= lib.gru_max_h()


def _check(rc: int, what: str, shape: tuple[int, ...]) -> None:
    if rc != 0:
        raise ValueError(f"{what} failed (code {rc}) for x of shape {shape}")


def _input_gates(x: Tensor, w_ih: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """``gi [t, n, 3h] = x W_ih^T + b_ih + [b_hr | b_hz | 0]``, one GEMM over all steps."""
    t_len, n, f = x.shape
    hd = b_hh.shape[0] // 3
    bias = torch.cat([b_ih[: 2 * hd] + b_hh[: 2 * hd], b_ih[2 * hd :]])
    return torch.addmm(bias, x.reshape(t_len * n, f), w_ih.t()).view(t_len, n, 3 * hd)


def _pack_forward(w_hh: Tensor) -> Tensor:
    """``W_hh [3h, h] -> wt [h, 3hp]``: ``W_hh^T`` with gate g in columns ``[g hp, g hp + h)``."""
    hd = w_hh.shape[1]
    hp = _padded(hd)
    wt = w_hh.new_zeros(hd, 3, hp)
    wt[:, :, :hd] = w_hh.view(3, hd, hd).permute(2, 0, 1)
    return wt.view(hd, 3 * hp)


def _pack_backward(w_hh: Tensor) -> Tensor:
    """``W_hh [3h, h] -> w [3hp, hp]``: gate g's rows at ``[g hp, g hp + h)``, zero padding."""
    hd = w_hh.shape[1]
    hp = _padded(hd)
    w = w_hh.new_zeros(3, hp, hp)
    w[:, :hd, :hd] = w_hh.view(3, hd, hd)
    return w.view(3 * hp, hp)


def _recurrence(
    lib: ctypes.CDLL, gi: Tensor, w_hh: Tensor, b_hh: Tensor, save: bool
) -> tuple[Tensor, Tensor | None]:
    """The C forward: ``gi [t, n, 3h] -> hs [t, n, h]`` and (``save``) gates ``[t, n, 4h]``."""
    t_len, n, width = gi.shape
    hd = width // 3
    wt = _pack_forward(w_hh)
    bhn = b_hh[2 * hd :].contiguous()
    hs = gi.new_empty((t_len, n, hd))
    gates = gi.new_empty((t_len, n, 4 * hd)) if save else None
    rc = lib.gru_fwd(
        gi.data_ptr(),
        wt.data_ptr(),
        bhn.data_ptr(),
        hs.data_ptr(),
        None if gates is None else gates.data_ptr(),
        t_len,
        n,
        hd,
        _padded(hd),
        torch.get_num_threads(),
    )
    _check(rc, "gru_fwd", tuple(gi.shape))
    return hs, gates


class _GRULayer(torch.autograd.Function):
    """One GRU layer, ``x [t, n, f]`` contiguous float32 -> ``hs [t, n, h]``, or its last step
    ``[n, h]`` with ``last_only`` (the backward then takes that step's gradient alone)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        last_only: bool,
        lib: ctypes.CDLL,
    ) -> Tensor:
        gi = _input_gates(x, w_ih, b_ih, b_hh)
        hs, gates = _recurrence(lib, gi, w_hh, b_hh, save=True)
        del gi
        ctx.save_for_backward(x, w_ih, w_hh, hs, gates)
        ctx.last_only, ctx.lib = last_only, lib  # type: ignore[attr-defined]
        return hs[-1].clone() if last_only else hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        x, w_ih, w_hh, hs, gates = ctx.saved_tensors  # type: ignore[attr-defined]
        t_len, n, hd = hs.shape
        grad = grad.contiguous()
        w = _pack_backward(w_hh)
        da = hs.new_empty((t_len, n, 4 * hd))
        rc = ctx.lib.gru_bwd(  # type: ignore[attr-defined]
            gates.data_ptr(),
            hs.data_ptr(),
            grad.data_ptr(),
            w.data_ptr(),
            da.data_ptr(),
            t_len,
            n,
            hd,
            _padded(hd),
            int(ctx.last_only),  # type: ignore[attr-defined]
            torch.get_num_threads(),
        )
        _check(rc, "gru_bwd", tuple(x.shape))
        d2 = da.view(t_len * n, 4 * hd)
        d_gi = d2[:, : 3 * hd]  # [t n, 3h]: da_r, da_z, da_n
        need = ctx.needs_input_grad  # type: ignore[attr-defined]
        dx = d_gi.mm(w_ih).view(x.shape) if need[0] else None
        dw_ih = d_gi.t().mm(x.reshape(t_len * n, -1)) if need[1] else None
        dw_hh = None
        if need[2]:  # d gh = [da_r | da_z | da_n r]; the first step has h_0 = 0
            dw_hh = w_hh.new_zeros(3 * hd, hd)
            if t_len > 1:
                prev, d_next = hs[:-1].reshape((t_len - 1) * n, hd), d2[n:]
                torch.mm(d_next[:, : 2 * hd].t(), prev, out=dw_hh[: 2 * hd])
                torch.mm(d_next[:, 3 * hd :].t(), prev, out=dw_hh[2 * hd :])
        sums = d2.sum(0)
        db_ih = sums[: 3 * hd] if need[3] else None
        db_hh = torch.cat([sums[: 2 * hd], sums[3 * hd :]]) if need[4] else None
        return dx, dw_ih, dw_hh, db_ih, db_hh, None, None


def _layer_weights(rnn: nn.GRU, layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return tuple(  # type: ignore[return-value]
        getattr(rnn, f"{name}_l{layer}")
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )


def gru_layer(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    last_only: bool = False,
) -> Tensor:
    """One GRU layer on the C kernels (``h_0 = 0``): ``x [t, n, f] float32`` with ``nn.GRU``'s
    weights ``w_ih [3h, f]``, ``w_hh [3h, h]``, ``b_ih, b_hh [3h]`` -> ``hs [t, n, h] float32``,
    or the last step ``[n, h]`` with ``last_only``. Without autograd (no grad mode, or nothing
    requiring grad) nothing is saved for a backward.
    Raises ``RuntimeError`` when the kernels are unavailable (check ``available`` first)."""
    lib = library()
    if lib is None:
        raise RuntimeError("the deepalpha C kernels are unavailable (see the earlier warning)")
    x = x.contiguous()
    tensors = (x, w_ih, w_hh, b_ih, b_hh)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _GRULayer.apply(*tensors, last_only, lib)
    with torch.no_grad():
        hs, _ = _recurrence(lib, _input_gates(x, w_ih, b_ih, b_hh), w_hh, b_hh, save=False)
    return hs[-1].clone() if last_only else hs


def gru_fused(rnn: nn.GRU, x: Tensor, last_only: bool = False) -> Tensor:
    """``rnn``'s stack (its parameters, its dropout between layers in training) on the C kernels:
    ``x [t, n, f]`` time-major float32 -> the top layer's ``hs [t, n, h]``, or its last step
    ``[n, h]`` with ``last_only``. ``h_0 = 0``. Check ``available(rnn, x)`` first."""
    h = x
    for layer in range(rnn.num_layers):
        top = layer == rnn.num_layers - 1
        h = gru_layer(h, *_layer_weights(rnn, layer), last_only=top and last_only)
        if not top and rnn.dropout and rnn.training:
            h = F.dropout(h, rnn.dropout, training=True)
    return h
