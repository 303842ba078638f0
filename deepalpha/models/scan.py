"""Linear-recurrence scan ``h_t = a_t * h_{t-1} + b_t`` (elementwise), time-major.

Legend of dimension letters:
    t  time steps (oldest first)     ...  any other dims (stocks n, hidden h), broadcast elementwise

Every function takes ``a, b [t, ...]`` (same shape and dtype) and an optional start ``h0 [...]``
(zeros when None) and returns ``h [t, ...]``. ``b`` may have any sign (it is ``(1 - f) * SiLU(.)``
in RNN-LIN), so everything here works in linear space.

Backends (``linear_scan(..., backend=...)``):
- ``"loop"`` (default): custom autograd Function; forward is one fused ``addcmul`` per step
  writing into a preallocated output, backward is the same scan run in reverse
  (``g_t = dL/dh_t + a_{t+1} g_{t+1}``, ``dL/db_t = g_t``, ``dL/da_t = g_t h_{t-1}``,
  ``dL/dh0 = a_1 g_1``). Exact for any sign of ``b``; memory: only ``h`` is saved.
- ``"chunked"``: blocked scan: steps of a chunk of length K are combined with a log2(K)-step
  Hillis-Steele scan (in linear space: products of a, no division), chunks then chained by a short
  loop over T/K carries. Fewer, larger ops than the loop; autograd through plain ops.
- ``scan_reference``: a plain Python loop with autograd; the slow reference for the tests.

``lin_rnn_fused`` goes one step further for RNN-LIN: it takes the gate pre-activations and
evaluates ``sigmoid``/``SiLU`` inside the time loop (forward and reverse-loop backward), so no
``[t, n, h]``-sized temporaries are materialised besides ``h`` and the gradient; each step works
on one cache-resident ``[n, h]`` slab.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

Backend = Literal["fused", "loop", "chunked", "reference"]


def scan_reference(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """Obviously correct reference: ``h_t = a_t h_{t-1} + b_t`` step by step, autograd through it."""
    h = torch.zeros_like(b[0]) if h0 is None else h0
    out = []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


def _scan_loop(a: Tensor, b: Tensor, h0: Tensor | None, out: Tensor) -> Tensor:
    """In-place forward loop into ``out [t, ...]`` (no autograd)."""
    h = h0
    for t in range(a.shape[0]):
        if h is None:
            out[t].copy_(b[t])
        else:
            torch.addcmul(b[t], a[t], h, out=out[t])
        h = out[t]
    return out


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:  # type: ignore[override]
        a, b = a.contiguous(), b.contiguous()
        h = _scan_loop(a, b, h0, torch.empty_like(b))
        ctx.save_for_backward(a, h, h0 if h0 is not None else h.new_zeros(()))
        ctx.has_h0 = h0 is not None
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: Tensor):  # type: ignore[override]
        a, h, h0 = ctx.saved_tensors
        grad_h = grad_h.contiguous()
        # g_t = grad_t + a_{t+1} g_{t+1}: the same scan run backwards in time
        g = torch.empty_like(grad_h)
        g[-1].copy_(grad_h[-1])
        for t in range(a.shape[0] - 2, -1, -1):
            torch.addcmul(grad_h[t], a[t + 1], g[t + 1], out=g[t])
        grad_a = torch.empty_like(a)
        torch.mul(g[1:], h[:-1], out=grad_a[1:])
        if ctx.has_h0:
            torch.mul(g[0], h0, out=grad_a[0])
            grad_h0 = a[0] * g[0]
        else:
            grad_a[0].zero_()
            grad_h0 = None
        return grad_a, g, grad_h0


def _combine_shift(a: Tensor, b: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """One Hillis-Steele step along dim 1 of ``[c, K, ...]``: element i absorbs element i-k."""
    a_new = torch.cat([a[:, :k], a[:, k:] * a[:, :-k]], dim=1)
    b_new = torch.cat([b[:, :k], torch.addcmul(b[:, k:], a[:, k:], b[:, :-k])], dim=1)
    return a_new, b_new


def scan_chunked(a: Tensor, b: Tensor, h0: Tensor | None = None, chunk: int = 16) -> Tensor:
    """Blocked scan: Hillis-Steele within chunks of ``chunk`` steps, a loop over chunk carries.

    Linear space throughout (``A = prod a``, no division), so exact for any sign of ``b`` up to
    float rounding. Autograd through plain ops.
    """
    t_len = a.shape[0]
    pad = (-t_len) % chunk
    if pad:  # pad with identity steps (a = 1, b = 0) at the end
        a = torch.cat([a, a.new_ones((pad, *a.shape[1:]))])
        b = torch.cat([b, b.new_zeros((pad, *b.shape[1:]))])
    a = a.reshape(-1, chunk, *a.shape[1:])
    b = b.reshape(-1, chunk, *b.shape[1:])
    k = 1
    while k < chunk:  # within-chunk inclusive scan: A_i = prod a, B_i = h_i given h_start = 0
        a, b = _combine_shift(a, b, k)
        k *= 2
    h = torch.zeros_like(b[0, 0]) if h0 is None else h0
    outs = []
    for c in range(a.shape[0]):  # chain chunks: h_i = A_i h_start + B_i
        hc = torch.addcmul(b[c], a[c], h)
        outs.append(hc)
        h = hc[-1]
    return torch.cat(outs)[:t_len]


def linear_scan(
    a: Tensor, b: Tensor, h0: Tensor | None = None, backend: Backend = "loop"
) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` over dim 0: ``a, b [t, ...] -> h [t, ...]`` (same dtype).

    ``h0 [...]`` is the state before the first step (zeros when None).
    """
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if backend in ("loop", "fused"):  # "fused" only differs for RNN-LIN gates (lin_rnn)
        return _LinearScan.apply(a, b, h0)
    if backend == "chunked":
        return scan_chunked(a, b, h0)
    if backend == "reference":
        return scan_reference(a, b, h0)
    raise ValueError(f"unknown scan backend {backend!r}; use 'loop', 'chunked' or 'reference'")


class _FusedLinRNN(torch.autograd.Function):
    """``h_t = f_t h_{t-1} + (1 - f_t) c_t`` with ``f = sigmoid(zf)``, ``c = SiLU(zc)``, ``h_0 = 0``,
    from packed pre-activations ``z = [zf | zc]`` ``[t, ..., 2h]``; gates evaluated step by step;
    saves only ``z`` and ``h``; the gradient is written straight into one packed ``dz``."""

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:  # type: ignore[override]
        hd = z.shape[-1] // 2
        h = z.new_empty((*z.shape[:-1], hd))
        tmp = torch.empty_like(h[0])
        for t in range(z.shape[0]):
            f, c = torch.sigmoid(z[t, ..., :hd]), F.silu(z[t, ..., hd:])
            if t == 0:
                torch.addcmul(c, f, c, value=-1, out=h[0])  # (1 - f) c
            else:  # c + f (h_{t-1} - c)
                torch.sub(h[t - 1], c, out=tmp)
                torch.addcmul(c, f, tmp, out=h[t])
        ctx.save_for_backward(z, h)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: Tensor):  # type: ignore[override]
        z, h = ctx.saved_tensors
        hd = h.shape[-1]
        dz = torch.empty_like(z)
        g, f_next = None, None
        for t in range(z.shape[0] - 1, -1, -1):
            # g_t = dL/dh_t (direct) + f_{t+1} g_{t+1}
            g = grad_h[t].clone() if g is None else torch.addcmul(grad_h[t], f_next, g)
            zc = z[t, ..., hd:]
            f, sc = torch.sigmoid(z[t, ..., :hd]), torch.sigmoid(zc)
            one_minus_f = 1 - f
            c = zc * sc
            diff = h[t - 1] - c if t > 0 else -c
            # dh_t/dzf = (h_{t-1} - c) f (1 - f);  dh_t/dzc = (1 - f) SiLU'(zc)
            torch.mul(g * diff, f * one_minus_f, out=dz[t, ..., :hd])
            silu_grad = sc * (1 + zc * (1 - sc))
            torch.mul(g * one_minus_f, silu_grad, out=dz[t, ..., hd:])
            f_next = f
        return dz


def lin_rnn_packed(z: Tensor) -> Tensor:
    """RNN-LIN hidden states from packed gate pre-activations ``z = [zf | zc]`` ``[t, ..., 2h]``:
    ``h [t, ..., h]``. Same as ``linear_scan(sigmoid(zf), (1 - sigmoid(zf)) * SiLU(zc))``, h_0 = 0.
    """
    if z.shape[-1] % 2:
        raise ValueError(f"packed gates need an even last dim, got {z.shape[-1]}")
    return _FusedLinRNN.apply(z.contiguous())


def lin_rnn_fused(zf: Tensor, zc: Tensor) -> Tensor:
    """``lin_rnn_packed`` for separate ``zf, zc [t, ...]`` (one concatenation): ``h [t, ...]``."""
    if zf.shape != zc.shape:
        raise ValueError(
            f"zf and zc must have the same shape, got {tuple(zf.shape)}, {tuple(zc.shape)}"
        )
    return lin_rnn_packed(torch.cat([zf, zc], dim=-1))
