"""PyTorch's GRU (the ``nn.GRU`` equations) on the fused C recurrence of ``kernels/gru.c`` (CPU,
float32).

Legend of dimension letters:
    t  time steps (oldest first)    n  rows (stocks)    f  input features of a layer
    h  hidden units                 g  gates r, z, n (in nn.GRU's order)

One layer, ``x [t, n, f] -> hs [t, n, h]`` (``h_0 = 0``), exactly ``nn.GRU``'s::

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr),  z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),  h' = (1 - z) * n + z * h

Everything runs in C, per tile of 24 stocks walking through time (see ``kernels/gru.c``).
Forward: per step, the input and recurrent products (``x_t W_ih^T``, ``h W_hh^T``) on a
register-blocked micro-kernel and the gates while the tile is hot; no ``[t, n, 3h]``
pre-activation is stored, only ``hs`` and the gates ``[t, n, 4h] = [r | z | n | hn]`` for the
backward. Backward: the BPTT per tile and step, with ``dL/dh_{t-1}``, ``dx_t = d gi_t W_ih`` and
the sums ``dW_hh += d gh_t^T h_{t-1}``, ``dW_ih += d gi_t^T x_t``, ``db`` on the same
micro-kernel; each tile's weight-gradient sums are added up here over tiles, so results are
bitwise the same for any thread count. On this project's box (AMD EPYC, AVX-512) the products
ran at about 170-190 GFLOP/s on one core, where MKL's sgemm gave about 90 on the same shapes,
which is why no GEMM is left to torch. Weights are read from an ``nn.GRU`` and padded per call
(same parameters, so ``state_dict`` and checkpoints are those of ``nn.GRU``).

``available(rnn, x)`` says whether a module and input should take this path (CPU float32, no
autocast, unidirectional with biases and no projection, the C kernels loaded with vectors of
8 floats or more, widths within the kernel's limit); callers use ``nn.GRU`` otherwise
(``deepalpha.models.rnn.GRUModel`` does). The backward is ``once_differentiable``.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn import functional as F

from deepalpha.models.kernels import library


def _padded(width: int, vw: int) -> int:
    """``width`` rounded up to a multiple of the kernels' SIMD width ``vw`` (``gru_simd_width``)."""
    return -(-width // vw) * vw


MIN_SIMD_WIDTH = 8  # floats: builds with narrower vectors are slower than nn.GRU (see below)


def available(rnn: nn.GRU, x: Tensor) -> bool:
    """True when ``rnn`` applied to ``x`` should run on the C kernels: CPU float32 strided input
    and weights, no CPU autocast, ``bias=True``, one direction, no ``proj_size``, kernels loaded
    with vectors of at least ``MIN_SIMD_WIDTH`` floats (AVX or AVX-512: a 2-layer H 64 train step
    measured 2-3x faster than ``nn.GRU``; a 128-bit build, e.g. without ``-march=native``, was
    slower than MKL's), padded hidden and input widths within the kernel's limit."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.layout != torch.strided:
        return False
    if not rnn.bias or rnn.bidirectional or rnn.proj_size or rnn.mode != "GRU":
        return False
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in rnn.parameters()):
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    lib = library()
    if lib is None or (vw := lib.gru_simd_width()) < MIN_SIMD_WIDTH:
        return False
    return _padded(max(rnn.hidden_size, rnn.input_size), vw) <= lib.gru_max_h()


def _check(rc: int, what: str, shape: tuple[int, ...]) -> None:
    if rc != 0:
        raise ValueError(f"{what} failed (code {rc}) for x of shape {shape}")


def _gates_first(w: Tensor, rows: int, cols: int) -> Tensor:
    """``W [3h, c] -> [3, hp, cols]`` zero-padded: gate g's rows at ``[g, :h, :c]``."""
    hd = w.shape[0] // 3
    out = w.new_zeros(3, rows, cols)
    out[:, :hd, : w.shape[1]] = w.view(3, hd, -1)
    return out


def _pack(
    w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, vw: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The padded operands of ``gru.c`` (gate g at offset ``g hp``, zeros in the padding):
    ``wit [f, 3hp] = W_ih^T``, ``wht [h, 3hp] = W_hh^T``, ``wi [3hp, fp] = W_ih``,
    ``wh [3hp, hp] = W_hh``, ``bias [4hp] = [b_ir + b_hr | b_iz + b_hz | b_in | b_hn]``."""
    hd, f = w_hh.shape[1], w_ih.shape[1]
    hp, fp = _padded(hd, vw), _padded(f, vw)
    with torch.no_grad():
        wi = _gates_first(w_ih, hp, fp)  # [3, hp, fp]
        wh = _gates_first(w_hh, hp, hp)  # [3, hp, hp]
        wit = wi[:, :, :f].permute(2, 0, 1).reshape(f, 3 * hp).contiguous()
        wht = wh[:, :, :hd].permute(2, 0, 1).reshape(hd, 3 * hp).contiguous()
        b_i, b_h = _gates_first(b_ih[:, None], hp, 1)[..., 0], _gates_first(b_hh[:, None], hp, 1)
        bias = torch.cat([b_i[:2] + b_h[:2, :, 0], b_i[2:], b_h[2:, :, 0]]).reshape(4 * hp)
    return wit, wht, wi.view(3 * hp, fp), wh.view(3 * hp, hp), bias


def _forward(
    lib: ctypes.CDLL, x: Tensor, packed: tuple[Tensor, ...], hd: int, save: bool
) -> tuple[Tensor, Tensor | None]:
    """The C forward: ``x [t, n, f]`` contiguous -> ``hs [t, n, h]`` and (``save``) the gates
    ``[t, n, 4h]``."""
    t_len, n, f = x.shape
    vw = lib.gru_simd_width()
    wit, wht, _, _, bias = packed
    hs = x.new_empty((t_len, n, hd))
    gates = x.new_empty((t_len, n, 4 * hd)) if save else None
    rc = lib.gru_fwd(
        x.data_ptr(),
        wit.data_ptr(),
        wht.data_ptr(),
        bias.data_ptr(),
        hs.data_ptr(),
        None if gates is None else gates.data_ptr(),
        t_len,
        n,
        f,
        hd,
        _padded(hd, vw),
        _padded(f, vw),
        torch.get_num_threads(),
    )
    _check(rc, "gru_fwd", tuple(x.shape))
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
        packed = _pack(w_ih, w_hh, b_ih, b_hh, lib.gru_simd_width())
        hs, gates = _forward(lib, x, packed, w_hh.shape[1], save=True)
        ctx.save_for_backward(x, hs, gates, *packed[2:4])
        ctx.last_only, ctx.lib = last_only, lib  # type: ignore[attr-defined]
        return hs[-1].clone() if last_only else hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor):  # type: ignore[override]
        x, hs, gates, wi, wh = ctx.saved_tensors  # type: ignore[attr-defined]
        lib = ctx.lib  # type: ignore[attr-defined]
        t_len, n, hd = hs.shape
        f = x.shape[-1]
        vw = lib.gru_simd_width()
        hp, fp = _padded(hd, vw), _padded(f, vw)
        grad = grad.contiguous()
        need = ctx.needs_input_grad  # type: ignore[attr-defined]
        dx = torch.empty_like(x) if need[0] else None
        slot = 3 * hp * hp + 3 * hp * fp + 4 * hp
        partial = x.new_empty((lib.gru_tiles(n), slot))
        rc = lib.gru_bwd(
            x.data_ptr(),
            gates.data_ptr(),
            hs.data_ptr(),
            grad.data_ptr(),
            wi.data_ptr(),
            wh.data_ptr(),
            None if dx is None else dx.data_ptr(),
            partial.data_ptr(),
            t_len,
            n,
            f,
            hd,
            hp,
            fp,
            int(ctx.last_only),  # type: ignore[attr-defined]
            torch.get_num_threads(),
        )
        _check(rc, "gru_bwd", tuple(x.shape))
        sums = partial.sum(0)  # over tiles: an order fixed by the shape, not by the threads
        dw_hh = sums[: 3 * hp * hp].view(3, hp, hp)[:, :hd, :hd].reshape(3 * hd, hd)
        dw_ih = sums[3 * hp * hp : slot - 4 * hp].view(3, hp, fp)[:, :hd, :f].reshape(3 * hd, f)
        db = sums[slot - 4 * hp :].view(4, hp)[:, :hd]  # [da_r, da_z, da_n, da_n r] summed
        db_ih, db_hh = db[:3].reshape(3 * hd), db[[0, 1, 3]].reshape(3 * hd)
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
        packed = _pack(w_ih, w_hh, b_ih, b_hh, lib.gru_simd_width())
        hs, _ = _forward(lib, x, packed, w_hh.shape[1], save=False)
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
