"""Hyper-connections around any block F: unconstrained (HC) and manifold-constrained (mHC).

Legend of dimension letters (einops):
    s, i, j  residual streams (n of them)        d  features per stream (C)
    ...      any leading dims (batch, time)

The residual state is ``x [..., s, d]``. One layer (DESIGN section 4) computes, from
``x' = RMSNorm(vec(x))`` (one statistic over all n*C values; no gain, since phi absorbs it,
and applied after the matmul, which is the same and cheaper),

    H~pre  = a_pre  * (x' phi_pre)      + b_pre        [..., s]
    H~post = a_post * (x' phi_post)     + b_post       [..., s]
    H~res  = a_res  * mat(x' phi_res)   + b_res        [..., s, s]
    x <- H_res x + H_post^T F(H_pre x)

mHC:  H_pre = sigmoid(H~pre), H_post = 2 sigmoid(H~post), H_res = SinkhornKnopp(H~res).
HC:   the dynamic terms pass through tanh and nothing is constrained:
      H_pre = a_pre tanh(.) + b_pre, H_post = a_post tanh(.) + b_post, H_res = a_res tanh(.) + b_res.

``F`` is any module mapping ``[..., d] -> [..., d]`` (an MLP branch here, an RNN or attention block
elsewhere). The alphas are learnable scalars initialised to ``alpha_init`` (0.01).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from deepalpha.models.sinkhorn import sinkhorn_knopp

Maps = tuple[Tensor, Tensor, Tensor]  # H_pre [..., s], H_post [..., s], H_res [..., s, s]


class _HyperConnectionBase(nn.Module):
    """Shared machinery; subclasses turn raw dynamic terms into the three mappings."""

    def __init__(self, dim: int, n_streams: int, branch: nn.Module, alpha_init: float) -> None:
        super().__init__()
        n = n_streams
        self.dim, self.n_streams, self.branch = dim, n, branch
        self.eps = 1e-6
        self.phi = nn.Linear(n * dim, 2 * n + n * n, bias=False)  # phi_pre | phi_post | phi_res
        self.alpha_pre = nn.Parameter(torch.tensor(float(alpha_init)))
        self.alpha_post = nn.Parameter(torch.tensor(float(alpha_init)))
        self.alpha_res = nn.Parameter(torch.tensor(float(alpha_init)))

    def _activate(self, pre: Tensor, post: Tensor, res: Tensor) -> Maps:
        raise NotImplementedError

    def maps(self, x: Tensor) -> Maps:
        """Mappings for the state ``x [..., s, d]``: ``H_pre [..., s], H_post [..., s], H_res [..., s, s]``."""
        n = self.n_streams
        flat = rearrange(x, "... s d -> ... (s d)").float()
        # RMSNorm without gain (phi absorbs it), applied after the matmul: phi(x / rms) = phi(x) / rms
        inv_rms = torch.rsqrt(flat.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        pre, post, res = (self.phi(flat) * inv_rms).split([n, n, n * n], dim=-1)
        return self._activate(pre, post, rearrange(res, "... (i j) -> ... i j", i=n))

    def static_maps(self) -> Maps:
        """The mappings with the dynamic terms at zero (biases only): ``[s], [s], [s, s]``."""
        n, w = self.n_streams, self.phi.weight
        return self._activate(w.new_zeros(n), w.new_zeros(n), w.new_zeros(n, n))

    def forward(self, x: Tensor, return_res: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``x [..., s, d] -> x' [..., s, d]`` (and ``H_res [..., s, s]`` when ``return_res``)."""
        h_pre, h_post, h_res = self.maps(x)
        # H_pre x: a weighted sum over streams; H_res x + H_post^T y: a batched matmul plus an
        # outer product fused into one addcmul (cheaper than einsum's tiny bmm on CPU)
        y = self.branch((x * h_pre.to(x.dtype).unsqueeze(-1)).sum(dim=-2))
        mixed = torch.matmul(h_res.to(x.dtype), x)
        out = torch.addcmul(mixed, h_post.to(y.dtype).unsqueeze(-1), y.unsqueeze(-2))
        return (out, h_res) if return_res else out


class ManifoldHyperConnection(_HyperConnectionBase):
    """mHC: ``H_res`` projected onto doubly stochastic matrices by Sinkhorn-Knopp.

    Biases (logits): ``b_pre = pre_bias`` (0 -> H_pre = 0.5), ``b_post = post_bias``
    (0 -> H_post = 1), ``b_res = res_bias * I`` (identity-leaning; 1.0 keeps Sinkhorn's gradient
    alive, very large values make H_res a hard permutation and kill it).
    """

    def __init__(
        self,
        dim: int,
        n_streams: int,
        branch: nn.Module,
        *,
        t_max: int = 20,
        alpha_init: float = 0.01,
        res_bias: float = 1.0,
        pre_bias: float = 0.0,
        post_bias: float = 0.0,
    ) -> None:
        super().__init__(dim, n_streams, branch, alpha_init)
        n = n_streams
        self.t_max = t_max
        self.b_pre = nn.Parameter(torch.full((n,), float(pre_bias)))
        self.b_post = nn.Parameter(torch.full((n,), float(post_bias)))
        self.b_res = nn.Parameter(res_bias * torch.eye(n))

    def _activate(self, pre: Tensor, post: Tensor, res: Tensor) -> Maps:
        h_pre = torch.sigmoid(self.alpha_pre * pre + self.b_pre)
        h_post = 2 * torch.sigmoid(self.alpha_post * post + self.b_post)
        h_res = sinkhorn_knopp(self.alpha_res * res + self.b_res, self.t_max)
        return h_pre, h_post, h_res


class HyperConnection(_HyperConnectionBase):
    """HC (unconstrained): tanh dynamic terms plus free static biases, no Sinkhorn.

    Biases start where mHC's mappings start for pre/post (``H_pre = 0.5``, ``H_post = 1``) and at
    ``H_res = I`` (the hyper-connections paper's choice), so the ablation differs only in the
    constraint.
    """

    def __init__(
        self,
        dim: int,
        n_streams: int,
        branch: nn.Module,
        *,
        alpha_init: float = 0.01,
        pre_bias: float = 0.5,
        post_bias: float = 1.0,
    ) -> None:
        super().__init__(dim, n_streams, branch, alpha_init)
        n = n_streams
        self.b_pre = nn.Parameter(torch.full((n,), float(pre_bias)))
        self.b_post = nn.Parameter(torch.full((n,), float(post_bias)))
        self.b_res = nn.Parameter(torch.eye(n))

    def _activate(self, pre: Tensor, post: Tensor, res: Tensor) -> Maps:
        h_pre = self.alpha_pre * torch.tanh(pre) + self.b_pre
        h_post = self.alpha_post * torch.tanh(post) + self.b_post
        h_res = self.alpha_res * torch.tanh(res) + self.b_res
        return h_pre, h_post, h_res
