"""Sequence scorers: GRU baseline, RNN-LIN and the RNN-LIN-GLU block stack.

Legend of dimension letters (einops):
    n  stocks of one date     t  time steps (oldest first, last = prediction date)
    f  input features         h  hidden units          e  SwiGLU hidden units

Every model maps ``x [n, t, f] float32 -> scores [n]`` and ignores ``group_ids``. Internally the
linear RNNs run time-major (``[t, n, h]``) so each scan step touches one contiguous slab.

RNN-LIN (DESIGN section 5): gates depend on ``x_t`` only, so all of them come from one matmul
over the whole sequence and the recurrence is a scan::

    f_t = sigmoid(x_t W_f), o_t = sigmoid(x_t W_o), c_t = SiLU(x_t W_c)
    h_t = f_t * h_{t-1} + (1 - f_t) * c_t,   y_t = o_t * h_t
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F

from deepalpha.models import gru_fused, scan_kernels, scan_triton
from deepalpha.models.common import RMSNorm, SwiGLU, default
from deepalpha.models.scan import Backend, lin_rnn_packed, linear_scan


def time_major(x: Tensor) -> Tensor:
    """``[n, t, f] -> [t, n, f]`` contiguous."""
    return rearrange(x, "n t f -> t n f").contiguous()


def lin_rnn(z: Tensor, backend: Backend = "fused") -> Tensor:
    """Hidden states of the linear RNN from packed gate pre-activations ``z = [zf | zc]``
    ``[t, n, 2h]``.

    ``h_t = f_t h_{t-1} + (1 - f_t) c_t`` with ``f = sigmoid(zf)``, ``c = SiLU(zc)``, ``h_0 = 0``.
    ``backend="fused"`` evaluates the gates inside the scan loop: the Triton kernels of
    ``scan_triton`` on CUDA (when Triton is installed), the C kernels of ``scan_kernels`` on the
    CPU when they are available, else ``lin_rnn_packed`` (torch ops per step); the others form
    ``a = f`` and ``b = sigmoid(-zf) * c`` (``1 - f`` without cancellation) and call
    ``linear_scan``. Computed in float32 (also under autocast). Returns ``h [t, n, h] float32``.
    """
    if backend == "fused":
        out = _kernel_scan(z)
        return lin_rnn_packed(z.float()) if out is None else out
    z = z.float()  # the scan runs in float32 also under autocast
    zf, zc = z.chunk(2, dim=-1)
    return linear_scan(torch.sigmoid(zf), torch.sigmoid(-zf) * F.silu(zc), backend=backend)


def lin_rnn_last(z: Tensor, backend: Backend = "fused") -> Tensor:
    """The last step of ``lin_rnn(z, backend)``: ``z [t, n, 2h] -> h_T [n, h] float32``.

    On the C kernels the backward then takes the last step's gradient alone (no zero-filled
    ``[t, n, h]`` gradient); elsewhere it is ``lin_rnn(z, backend)[-1]``.
    """
    out = _kernel_scan(z, last_only=True) if backend == "fused" else None
    return lin_rnn(z, backend)[-1] if out is None else out


def _kernels_apply(t: Tensor) -> bool:
    """Whether ``_kernel_scan`` has a kernel for tensors like ``t`` (Triton on CUDA, C on CPU)."""
    return scan_triton.available(t) or scan_kernels.available(t.float())


def _kernel_scan(
    z: Tensor, *, with_output_gate: bool = False, last_only: bool = False
) -> Tensor | None:
    """The fused scan of packed gates ``z`` on a kernel: Triton on CUDA (reads half precision as
    is), C on the CPU (float32); None when neither applies. Returns ``[t, n, h]`` float32, or the
    last step ``[n, h]`` with ``last_only``."""
    if scan_triton.available(z):
        out = scan_triton.lin_rnn_triton(z, with_output_gate=with_output_gate)
        return out[-1] if last_only else out
    z = z.float()  # the scan runs in float32 also under autocast
    if scan_kernels.available(z):
        return scan_kernels.lin_rnn_kernel(
            z, with_output_gate=with_output_gate, last_only=last_only
        )
    return None


class RNNLinLayer(nn.Module):
    """One RNN-LIN layer: ``x [t, n, d_in] -> y [t, n, h]`` (or ``y_T [n, h]`` when ``last_only``).

    ``W_f, W_c, W_o`` (with biases, in that order) are one ``Linear(d_in, 3h)``. With ``last_only``
    the output gate is evaluated at the last step only (the scan itself still runs over all
    steps); otherwise, on the Triton (CUDA) or C (CPU) kernels, it is applied inside the scan (no
    temporaries).
    """

    def __init__(self, dim_in: int, hidden: int, backend: Backend = "fused") -> None:
        super().__init__()
        self.hidden, self.backend = hidden, backend
        self.gates = nn.Linear(dim_in, 3 * hidden)

    def forward(self, x: Tensor, last_only: bool = False) -> Tensor:
        hd = self.hidden
        if not last_only and self.backend == "fused" and _kernels_apply(x):
            out = _kernel_scan(self.gates(x), with_output_gate=True)
            if out is not None:
                return out
        w_fc, w_o = self.gates.weight.split([2 * hd, hd]), self.gates.bias.split([2 * hd, hd])
        z = F.linear(x, w_fc[0], w_o[0])
        if last_only:
            return torch.sigmoid(F.linear(x[-1], w_fc[1], w_o[1])) * lin_rnn_last(z, self.backend)
        h = lin_rnn(z, self.backend)
        return torch.sigmoid(F.linear(x, w_fc[1], w_o[1])) * h


GRUBackend = Literal["auto", "torch"]


class GRUModel(nn.Module):
    """GRU baseline (Qlib Alpha360 style): ``nn.GRU`` (2 layers, hidden 64), Linear head on the
    last step. ``x [n, t, f] -> [n]``.

    ``backend="auto"`` runs the ``nn.GRU``'s own weights on the fused C recurrence of
    ``deepalpha.models.gru_fused`` (the same equations; float32 rounding apart, the same outputs
    and gradients) when the input is CPU float32 and the kernels load (``gru_fused.available``),
    else ``nn.GRU`` itself; ``"torch"`` always uses ``nn.GRU``. The parameters are those of the
    ``nn.GRU`` either way (``state_dict`` keys ``rnn.weight_ih_l0``, ...), so checkpoints move
    between backends.
    """

    def __init__(
        self,
        n_features: int,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.0,
        backend: GRUBackend = "auto",
    ) -> None:
        super().__init__()
        if backend not in ("auto", "torch"):
            raise ValueError(f"GRU backend must be 'auto' or 'torch', got {backend!r}")
        self.backend = backend
        self.rnn = nn.GRU(n_features, hidden, layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, 1)

    def uses_fused(self, x: Tensor) -> bool:
        """Whether ``forward(x)`` takes the fused C path."""
        return self.backend == "auto" and gru_fused.available(self.rnn, x)

    def forward(self, x: Tensor, group_ids: Tensor | None = None) -> Tensor:
        if self.uses_fused(x):
            last = gru_fused.gru_fused(self.rnn, time_major(x), last_only=True)
        else:
            last = self.rnn(x)[0][:, -1]
        return self.head(last).squeeze(-1)


class RNNLin(nn.Module):
    """Stacked RNN-LIN (``layers`` 2, ``hidden`` 64), Linear head on the last step.
    ``x [n, t, f] -> [n]``. ``backend`` picks the scan (see ``deepalpha.models.scan``)."""

    def __init__(
        self, n_features: int, hidden: int = 64, layers: int = 2, backend: Backend = "fused"
    ) -> None:
        super().__init__()
        dims = [n_features] + [hidden] * layers
        self.layers = nn.ModuleList(
            RNNLinLayer(d_in, d_out, backend) for d_in, d_out in pairwise(dims)
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, group_ids: Tensor | None = None) -> Tensor:
        h = time_major(x)
        *body, last = self.layers
        for layer in body:
            h = layer(h)
        return self.head(last(h, last_only=True)).squeeze(-1)


class RNNLinGLUBlock(nn.Module):
    """DESIGN section 8 block: ``u = x + RNNLIN(RMSNorm x)``; ``out = u + SwiGLU(RMSNorm u)``.

    ``x [t, n, h] -> [t, n, h]``, or ``[n, h]`` (the last step) when ``last_only``: the SwiGLU is
    per step, so only the last step's is computed then.
    """

    def __init__(self, dim: int, glu_hidden: int, backend: Backend = "fused") -> None:
        super().__init__()
        self.norm_rnn, self.rnn = RMSNorm(dim), RNNLinLayer(dim, dim, backend)
        self.norm_ff, self.ff = RMSNorm(dim), SwiGLU(dim, glu_hidden)

    def forward(self, x: Tensor, last_only: bool = False) -> Tensor:
        u = (x[-1] if last_only else x) + self.rnn(self.norm_rnn(x), last_only=last_only)
        return u + self.ff(self.norm_ff(u))


class RNNLinGLU(nn.Module):
    """RNN-LIN-GLU: ``Linear(f, h)``, ``blocks`` (2) RNN-LIN-GLU blocks of width ``hidden`` (64)
    with SwiGLU width ``glu_hidden`` (default 2*hidden), final RMSNorm, Linear head on the last
    step. ``x [n, t, f] -> [n]``."""

    def __init__(
        self,
        n_features: int,
        hidden: int = 64,
        blocks: int = 2,
        glu_hidden: int | None = None,
        backend: Backend = "fused",
    ) -> None:
        super().__init__()
        glu_hidden = default(glu_hidden, 2 * hidden)
        self.proj_in = nn.Linear(n_features, hidden)
        self.blocks = nn.ModuleList(
            RNNLinGLUBlock(hidden, glu_hidden, backend) for _ in range(blocks)
        )
        self.norm_out = RMSNorm(hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, group_ids: Tensor | None = None) -> Tensor:
        h = self.proj_in(time_major(x))
        *body, last = self.blocks
        for block in body:
            h = block(h)
        return self.head(self.norm_out(last(h, last_only=True))).squeeze(-1)
