"""DecompGRN (DESIGN section 8): two linear-RNN layers with a cross-sectional decomposition.

Legend of dimension letters (einops):
    n  stocks of one date (the whole cross-section: the de-meaning needs it)
    t  time steps (oldest first)     f  input features     h  hidden units     g  cap groups

    layer 1:    y1 = RNNLIN(x)                                     [t, n, h]
    decompose:  d_t(i) = y1_t(i) - mean_{j in g(i)} y1_t(j)         per step, within cap groups
    layer 2:    f = sigmoid(y1 W_f + d U_f + b_f),  o = sigmoid(y1 W_o + d U_o + b_o),
                c = SiLU(y1 W_c + b_c),  h_t = f_t h_{t-1} + (1 - f_t) c_t
    score     = Linear(o_T * h_T)                                   [n]

Computed without forming ``d``: by linearity ``y1 W_f + d U_f = y1 (W_f + U_f) - m U_f`` with
``m [t, g, h]`` the group means, so layer 2 is one GEMM on ``y1`` plus a ``[t, g, h]`` product
gathered to the stocks (``index_select``), instead of a de-meaned ``[t, n, h]`` copy and a
second GEMM on it.

``group_ids [n]`` are the market-cap groups of the prediction date (``cap_groups``); None means one
group (plain cross-sectional de-meaning). Parameters: ``3h(f+1)`` (layer 1) ``+ 5h^2 + 3h``
(layer 2) ``+ h + 1`` (head). Default ``hidden = 56`` gives 17,081 parameters for f = 6, i.e.
0.44 x the 2-layer hidden-64 GRU (38,849), next to the report's 43 % (an assumption: the report
does not publish its sizes; hidden 64 would give 0.57).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from deepalpha.models.rnn import RNNLinLayer, lin_rnn_last, time_major
from deepalpha.models.scan import Backend


def cap_groups(log_cap: Tensor, n_groups: int = 20) -> Tensor:
    """Quantile buckets of log market cap: ``log_cap [n] -> LongTensor [n]`` in ``0..n_groups``.

    Finite caps go to ``n_groups`` equal-count buckets by rank (0 = smallest; ties share the
    bucket of their lowest rank); NaN/inf caps form their own bucket ``n_groups``. On the input's
    device.
    """
    finite = torch.isfinite(log_cap)
    groups = torch.full(log_cap.shape, n_groups, dtype=torch.long, device=log_cap.device)
    vals = log_cap[finite]
    if vals.numel():
        sorted_vals = torch.sort(vals).values
        rank = torch.searchsorted(sorted_vals, vals, side="left")
        groups[finite] = rank * n_groups // vals.numel()
    return groups


def group_means(y: Tensor, group_ids: Tensor, n_groups: int | None = None) -> Tensor:
    """Mean of ``y [t, n, h]`` within each group of stocks, per step and unit: ``[t, g, h]``.

    One ``index_add_`` pass gives every group's sum at every step at once. ``group_ids [n]`` are
    non-negative ids below ``n_groups``; ``n_groups=None`` reads ``max + 1`` off the ids (a host
    sync on CUDA: pass a bound there). Empty groups get mean 0.
    """
    if n_groups is None:
        n_groups = int(group_ids.max()) + 1
    sums = y.new_zeros(y.shape[0], n_groups, y.shape[2]).index_add_(1, group_ids, y)
    # counted with index_add_ too: torch.bincount reads the largest id on the host on CUDA
    ones = y.new_ones(group_ids.shape[0])
    counts = y.new_zeros(n_groups).index_add_(0, group_ids, ones).clamp_min(1)
    return sums / counts[:, None]


def group_demean(y: Tensor, group_ids: Tensor | None, n_groups: int | None = None) -> Tensor:
    """``y [t, n, h]`` minus its mean within each group of stocks, per step and unit.

    ``group_ids [n]`` (non-negative ids; None = one group), ``n_groups`` as in ``group_means``.
    Returns ``[t, n, h]``.
    """
    if group_ids is None:
        return y - y.mean(dim=1, keepdim=True)
    return y - group_means(y, group_ids, n_groups).index_select(1, group_ids)


class DecompGRN(nn.Module):
    """DecompGRN scorer: ``x [n, t, f]`` (one date's cross-section), ``group_ids [n]`` -> ``[n]``.

    Defaults: ``hidden`` 56 for both layers (see the module docstring for the parameter ratio),
    ``backend`` "fused" (gates evaluated inside the scan loop: C kernels on the CPU; "loop",
    "chunked" and "reference" are the alternatives, see ``deepalpha.models.scan``).
    ``max_groups`` bounds the group ids on CUDA, where reading the largest id would stall the
    device (on the CPU it is read off the ids).
    """

    def __init__(
        self, n_features: int, hidden: int = 56, backend: Backend = "fused", max_groups: int = 64
    ) -> None:
        super().__init__()
        self.hidden, self.backend, self.max_groups = hidden, backend, max_groups
        self.layer1 = RNNLinLayer(n_features, hidden, backend)
        self.w2 = nn.Linear(hidden, 3 * hidden)  # W_f | W_c | W_o with b_f, b_c, b_o
        self.u2 = nn.Linear(hidden, 2 * hidden, bias=False)  # U_f | U_o
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, group_ids: Tensor | None = None) -> Tensor:
        hd = self.hidden
        y1 = self.layer1(time_major(x))  # [t, n, h]
        if group_ids is None:
            m = y1.mean(dim=1, keepdim=True)  # [t, 1, h]
            group_ids = torch.zeros(y1.shape[1], dtype=torch.long, device=y1.device)
        else:
            bound = self.max_groups if y1.is_cuda else None
            m = group_means(y1, group_ids, bound)  # [t, g, h]
        w, b = self.w2.weight.split([2 * hd, hd]), self.w2.bias.split([2 * hd, hd])
        u_f, u_o = self.u2.weight.split([hd, hd])
        # y1 W_f + d U_f = y1 (W_f + U_f) - m U_f: one GEMM on y1, the group term on [t, g, h]
        w_fc = torch.cat([w[0][:hd] + u_f, w[0][hd:]])
        z = F.linear(y1, w_fc, b[0])  # [zf | zc]
        z[..., :hd] -= F.linear(m, u_f).index_select(1, group_ids)
        h_last = lin_rnn_last(z, self.backend)  # [n, h]
        d_last = y1[-1] - m[-1].index_select(0, group_ids)  # [n, h]
        o_last = torch.sigmoid(F.linear(y1[-1], w[1], b[1]) + F.linear(d_last, u_o))
        return self.head(o_last * h_last).squeeze(-1)
