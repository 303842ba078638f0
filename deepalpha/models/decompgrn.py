"""DecompGRN (DESIGN section 8): two linear-RNN layers with a cross-sectional decomposition.

Legend of dimension letters (einops):
    n  stocks of one date (the whole cross-section: the de-meaning needs it)
    t  time steps (oldest first)     f  input features     h  hidden units     g  cap groups

    layer 1:    y1 = RNNLIN(x)                                     [t, n, h]
    decompose:  d_t(i) = y1_t(i) - mean_{j in g(i)} y1_t(j)         per step, within cap groups
    layer 2:    f = sigmoid(y1 W_f + d U_f + b_f),  o = sigmoid(y1 W_o + d U_o + b_o),
                c = SiLU(y1 W_c + b_c),  h_t = f_t h_{t-1} + (1 - f_t) c_t
    score     = Linear(o_T * h_T)                                   [n]

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

from deepalpha.models.rnn import RNNLinLayer, lin_rnn, time_major
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


def group_demean(y: Tensor, group_ids: Tensor | None) -> Tensor:
    """``y [t, n, h]`` minus its mean within each group of stocks, per step and unit.

    One ``index_add_`` pass gives every group's sum at every step at once. ``group_ids [n]``
    (any non-negative ids; None = one group). Returns ``[t, n, h]``.
    """
    if group_ids is None:
        return y - y.mean(dim=1, keepdim=True)
    n_groups = int(group_ids.max()) + 1
    sums = y.new_zeros(y.shape[0], n_groups, y.shape[2]).index_add_(1, group_ids, y)
    counts = torch.bincount(group_ids, minlength=n_groups).clamp_min(1).to(y.dtype)
    return y - (sums / counts[:, None])[:, group_ids]


class DecompGRN(nn.Module):
    """DecompGRN scorer: ``x [n, t, f]`` (one date's cross-section), ``group_ids [n]`` -> ``[n]``.

    Defaults: ``hidden`` 56 for both layers (see the module docstring for the parameter ratio),
    ``backend`` "fused" (gates evaluated inside the custom-Function scan loop; "loop",
    "chunked" and "reference" are the alternatives, see ``deepalpha.models.scan``).
    """

    def __init__(self, n_features: int, hidden: int = 56, backend: Backend = "fused") -> None:
        super().__init__()
        self.hidden, self.backend = hidden, backend
        self.layer1 = RNNLinLayer(n_features, hidden, backend)
        self.w2 = nn.Linear(hidden, 3 * hidden)  # W_f | W_c | W_o with b_f, b_c, b_o
        self.u2 = nn.Linear(hidden, 2 * hidden, bias=False)  # U_f | U_o
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, group_ids: Tensor | None = None) -> Tensor:
        hd = self.hidden
        y1 = self.layer1(time_major(x))
        d = group_demean(y1, group_ids)
        w, b = self.w2.weight.split([2 * hd, hd]), self.w2.bias.split([2 * hd, hd])
        u = self.u2.weight.split([hd, hd])
        z = F.linear(y1, w[0], b[0])  # [zf | zc] from y1
        z[..., :hd] += F.linear(d, u[0])  # the forget gate also sees d
        h = lin_rnn(z, self.backend)
        o_last = torch.sigmoid(F.linear(y1[-1], w[1], b[1]) + F.linear(d[-1], u[1]))
        return self.head(o_last * h[-1]).squeeze(-1)
