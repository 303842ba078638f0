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

Static initialisation (``static_logits``; the hyper-connections paper's design, Zhu et al. 2024,
carried over to mHC's activations): layer ``k`` reads mainly its *home stream* ``k mod n``
(``H_pre`` = sigmoid(+pre_logit) there, sigmoid(-pre_logit) elsewhere), writes its output to every
stream (``H_post = 1``), and mixes the streams with a strongly identity-leaning ``H_res``
(Sinkhorn of ``res_logit * I``: diagonal 0.87 at the default 3.0, so stream differences shrink by
only ~0.17 a layer and Sinkhorn's gradient stays alive). Because each layer reads a different
stream, what ``H_res`` moves between streams changes every later branch's input: the mixing matters
from the first step. HC starts from exactly the same mappings (its biases are mHC's activated
biases), so the HC / mHC ablation differs only in the constraint.

Precision: the mappings (RMSNorm, phi, Sinkhorn) and the stream mixing ``H_res x + H_post^T y`` run
in float32 even under autocast; the residual state stays float32. Only the branch ``F`` autocasts.

Speed: Sinkhorn, the pre-mix ``H_pre x`` and the post-mix run as fused C kernels on CPU
(``deepalpha.models.fused``; eager torch on CUDA, for other dtypes, or with
``DEEPALPHA_KERNELS=0``).

``F`` is any module mapping ``[..., d] -> [..., d]`` (an MLP branch here, an RNN or attention block
elsewhere). The alphas are learnable scalars initialised to ``alpha_init`` (0.01).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F

from deepalpha.models.fused import post_mix, pre_mix, sinkhorn
from deepalpha.models.sinkhorn import sinkhorn_knopp

Maps = tuple[Tensor, Tensor, Tensor]  # H_pre [..., s], H_post [..., s], H_res [..., s, s]

PRE_LOGIT = 3.0  # home stream: sigmoid(3) = 0.95, the others sigmoid(-3) = 0.05
RES_LOGIT = 3.0  # b_res = 3 I: Sinkhorn diagonal 0.870, off-diagonal 0.043 (n = 4)


def static_logits(
    n: int, layer_index: int, pre_logit: float = PRE_LOGIT, res_logit: float = RES_LOGIT
) -> tuple[Tensor, Tensor, Tensor]:
    """mHC bias logits of layer ``layer_index``: ``b_pre [s], b_post [s], b_res [s, s]`` float32.

    ``b_pre`` is ``+pre_logit`` on the home stream ``layer_index mod n`` and ``-pre_logit``
    elsewhere; ``b_post`` is 0 (``H_post = 1``, every stream receives the output); ``b_res`` is
    ``res_logit * I``. With ``n = 1`` the layer is ``x + F(c x)`` with ``c = sigmoid(pre_logit)``,
    and a branch that starts with RMSNorm ignores ``c``: the plain residual block.
    """
    home = layer_index % n
    b_pre = torch.full((n,), -float(pre_logit))
    b_pre[home] = float(pre_logit)
    return b_pre, torch.zeros(n), float(res_logit) * torch.eye(n)


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

    def no_weight_decay(self) -> set[str]:
        """Local names of the parameters an optimizer must not decay: the mapping biases and the
        alphas (decay would pull ``H_pre``/``H_post`` to 0.5/1 and ``H_res`` to uniform)."""
        return {"b_pre", "b_post", "b_res", "alpha_pre", "alpha_post", "alpha_res"}

    def _activate(self, pre: Tensor, post: Tensor, res: Tensor) -> Maps:
        raise NotImplementedError

    def maps(self, x: Tensor) -> Maps:
        """Mappings for the state ``x [..., s, d]``: ``H_pre [..., s], H_post [..., s],
        H_res [..., s, s]``, all float32 (also under autocast)."""
        n = self.n_streams
        with torch.autocast(device_type=x.device.type, enabled=False):
            flat = rearrange(x, "... s d -> ... (s d)").float()
            # RMSNorm without gain (phi absorbs it), after the matmul: phi(x / rms) = phi(x) / rms
            inv_rms = torch.rsqrt(flat.pow(2).mean(dim=-1, keepdim=True) + self.eps)
            dyn = F.linear(flat, self.phi.weight.float()) * inv_rms
            pre, post, res = dyn.split([n, n, n * n], dim=-1)
            return self._activate(pre, post, rearrange(res, "... (i j) -> ... i j", i=n))

    def static_maps(self) -> Maps:
        """The mappings with the dynamic terms at zero (biases only): ``[s], [s], [s, s]``."""
        n, w = self.n_streams, self.phi.weight
        return self._activate(w.new_zeros(n), w.new_zeros(n), w.new_zeros(n, n))

    def forward(self, x: Tensor, return_res: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``x [..., s, d] -> x' [..., s, d] float32`` (and ``H_res [..., s, s]`` when
        ``return_res``)."""
        h_pre, h_post, h_res = self.maps(x)
        x = x.float()
        y = self.branch(pre_mix(x, h_pre))
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = post_mix(x, h_res, h_post, y.float())  # H_res x + H_post^T y, fused on CPU
        return (out, h_res) if return_res else out


class ManifoldHyperConnection(_HyperConnectionBase):
    """mHC: ``H_res`` projected onto doubly stochastic matrices by Sinkhorn-Knopp.

    ``layer_index`` picks the home stream; ``pre_logit`` / ``res_logit`` set the static biases
    (see ``static_logits``); ``post_bias`` is the ``b_post`` logit (0: ``H_post = 1``).
    """

    def __init__(
        self,
        dim: int,
        n_streams: int,
        branch: nn.Module,
        *,
        layer_index: int = 0,
        t_max: int = 20,
        alpha_init: float = 0.01,
        pre_logit: float = PRE_LOGIT,
        res_logit: float = RES_LOGIT,
        post_bias: float = 0.0,
    ) -> None:
        super().__init__(dim, n_streams, branch, alpha_init)
        self.t_max = t_max
        b_pre, b_post, b_res = static_logits(n_streams, layer_index, pre_logit, res_logit)
        self.b_pre = nn.Parameter(b_pre)
        self.b_post = nn.Parameter(b_post + float(post_bias))
        self.b_res = nn.Parameter(b_res)

    def _activate(self, pre: Tensor, post: Tensor, res: Tensor) -> Maps:
        h_pre = torch.sigmoid(self.alpha_pre * pre + self.b_pre)
        h_post = 2 * torch.sigmoid(self.alpha_post * post + self.b_post)
        h_res = sinkhorn(self.alpha_res * res + self.b_res, self.t_max)
        return h_pre, h_post, h_res


class HyperConnection(_HyperConnectionBase):
    """HC (unconstrained): tanh dynamic terms plus free static biases, no Sinkhorn.

    The biases are mHC's mappings at init (``sigmoid(b_pre)``, ``2 sigmoid(b_post) = 1``,
    ``Sinkhorn(b_res)`` of the same ``static_logits``), so at init HC and mHC compute the same
    function and the ablation differs only in the constraint.
    """

    def __init__(
        self,
        dim: int,
        n_streams: int,
        branch: nn.Module,
        *,
        layer_index: int = 0,
        alpha_init: float = 0.01,
        pre_logit: float = PRE_LOGIT,
        res_logit: float = RES_LOGIT,
        t_max: int = 20,
    ) -> None:
        super().__init__(dim, n_streams, branch, alpha_init)
        pre, post, res = static_logits(n_streams, layer_index, pre_logit, res_logit)
        self.b_pre = nn.Parameter(torch.sigmoid(pre))
        self.b_post = nn.Parameter(2 * torch.sigmoid(post))
        self.b_res = nn.Parameter(sinkhorn_knopp(res, t_max).detach())

    def _activate(self, pre: Tensor, post: Tensor, res: Tensor) -> Maps:
        h_pre = self.alpha_pre * torch.tanh(pre) + self.b_pre
        h_post = self.alpha_post * torch.tanh(post) + self.b_post
        h_res = self.alpha_res * torch.tanh(res) + self.b_res
        return h_pre, h_post, h_res
