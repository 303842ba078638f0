"""Tabular scorers: plain residual MLP, HC-MLP and mHC-MLP (same width C and depth L).

Legend of dimension letters (einops):
    b  stocks (rows of one batch)     f  input features      s  residual streams (n)
    d  features per stream (C)        l  layers (depth L)

Every model maps ``x [b, f] float32 -> scores [b]`` and ignores ``group_ids``.

- ``ResidualMLP``: ``x = Linear(x)``; L times ``x = x + FF(x)``; ``Linear -> scalar``, with
  ``FF = RMSNorm -> Linear(C, hidden) -> SiLU -> Dropout -> Linear(hidden, C)``.
- ``MHCMLP`` / ``HCMLP``: each stream gets its own input projection (one ``Linear(f, n*C)``),
  the same FF branch inside an mHC / HC layer whose home stream is ``l mod n``, and a learned
  readout over all streams (``Linear(n*C, 1)``: a mean readout would make the output blind to any
  doubly stochastic mixing). They also report ``amax_gain`` of the composite residual mapping
  ``H_res^L ... H_res^1`` and the streams' spread by layer (``stream_spread``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from deepalpha.models.common import FeedForward, default
from deepalpha.models.hyperconnections import (
    PRE_LOGIT,
    RES_LOGIT,
    HyperConnection,
    ManifoldHyperConnection,
    _HyperConnectionBase,
)
from deepalpha.models.sinkhorn import amax_gains


class ResidualMLP(nn.Module):
    """Plain pre-norm residual MLP baseline: ``x [b, f] -> [b]``.

    Parameters: ``dim`` residual width C (64), ``depth`` blocks L (6), ``hidden`` branch width
    (default 4*C), ``dropout`` inside each branch (0.1, the baseline's usual regulariser).
    """

    def __init__(
        self,
        n_features: int,
        dim: int = 64,
        depth: int = 6,
        hidden: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        hidden = default(hidden, 4 * dim)
        self.proj_in = nn.Linear(n_features, dim)
        self.blocks = nn.ModuleList(FeedForward(dim, hidden, dropout) for _ in range(depth))
        self.head = nn.Linear(dim, 1)

    def forward(self, x: Tensor, group_ids: Tensor | None = None) -> Tensor:
        h = self.proj_in(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h).squeeze(-1)


class _HyperMLP(nn.Module):
    """Shared body of HC-MLP and mHC-MLP; subclasses choose the layer type."""

    layers: nn.ModuleList

    def __init__(self, n_features: int, dim: int, n_streams: int) -> None:
        super().__init__()
        self.n_streams = n_streams
        self.proj_in = nn.Linear(n_features, n_streams * dim)  # each stream its own projection
        self.head = nn.Linear(n_streams * dim, 1)  # learned readout over streams

    def _stack(
        self, layer: Callable[..., nn.Module], dim: int, depth: int, hidden: int, dropout: float,
        **kwargs: Any,
    ) -> nn.ModuleList:  # fmt: skip
        """``depth`` hyper-connection layers around FF branches; layer ``k``'s home stream is
        ``k mod n``."""
        return nn.ModuleList(
            layer(dim, self.n_streams, FeedForward(dim, hidden, dropout), layer_index=k, **kwargs)
            for k in range(depth)
        )

    def _streams(self, x: Tensor) -> Tensor:
        return rearrange(self.proj_in(x), "b (s d) -> b s d", s=self.n_streams)

    def forward(self, x: Tensor, group_ids: Tensor | None = None) -> Tensor:
        h = self._streams(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(rearrange(h, "b s d -> b (s d)")).squeeze(-1)

    @torch.no_grad()
    def stream_states(self, x: Tensor) -> Tensor:
        """Residual state after the input projection and after every layer: ``[l+1, b, s, d]``."""
        h = self._streams(x).float()
        states = [h]
        for layer in self.layers:
            h = layer(h)
            states.append(h)
        return torch.stack(states)

    @torch.no_grad()
    def stream_spread(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """How distinct the streams are, by depth, on the batch ``x [b, f]``.

        Returns ``(absolute [l+1], relative [l+1])`` float32: the RMS over rows and features of
        each stream's deviation from the mean stream, and that divided by the RMS of the state
        itself. Entry 0 is after the input projection, entry ``l`` after layer ``l``. Near 0
        means the streams have collapsed into copies (a one-stream MLP).
        """
        states = self.stream_states(x)
        dev = states - states.mean(dim=-2, keepdim=True)
        absolute = dev.pow(2).mean(dim=(1, 2, 3)).sqrt()
        return absolute, absolute / states.pow(2).mean(dim=(1, 2, 3)).sqrt()

    def residual_maps(self, x: Tensor | None = None) -> Tensor:
        """``H_res`` of every layer: ``[l, b, s, s]`` for a batch ``x [b, f]``; ``[l, s, s]``
        from the biases alone (dynamic terms at zero) when ``x`` is None."""
        layers: list[_HyperConnectionBase] = list(self.layers)  # type: ignore[arg-type]
        if x is None:
            return torch.stack([layer.static_maps()[2] for layer in layers])
        maps, h = [], self._streams(x)
        for layer in layers:
            h, h_res = layer(h, return_res=True)
            maps.append(h_res)
        return torch.stack(maps)

    @torch.no_grad()
    def amax_gains(self, x: Tensor | None = None) -> tuple[float, float]:
        """(forward, backward) gain of ``prod_l H_res^l``: max abs row sum, max abs column sum."""
        return amax_gains(self.residual_maps(x))

    @torch.no_grad()
    def amax_gain(self, x: Tensor | None = None) -> float:
        """Composite "Amax gain": max of the forward and backward gains of the product of
        ``H_res`` over depth, on the batch ``x [b, f]`` (max over rows) or, when ``x`` is None,
        on the bias-only mappings. mHC keeps it at 1; HC is free to grow."""
        return max(self.amax_gains(x))


class MHCMLP(_HyperMLP):
    """mHC-MLP (DESIGN section 4): ``x [b, f] -> [b]``.

    Defaults: ``n_streams`` 4, ``dim`` C 64, ``depth`` L 6, branch ``hidden`` 4*C, Sinkhorn
    ``t_max`` 20, ``alpha_init`` 0.01, static biases from ``static_logits`` (home stream
    ``pre_logit`` 3, ``b_res = res_logit * I`` with ``res_logit`` 3), no dropout (the constraint is
    the regulariser).
    """

    def __init__(
        self,
        n_features: int,
        dim: int = 64,
        depth: int = 6,
        n_streams: int = 4,
        hidden: int | None = None,
        t_max: int = 20,
        alpha_init: float = 0.01,
        pre_logit: float = PRE_LOGIT,
        res_logit: float = RES_LOGIT,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(n_features, dim, n_streams)
        hidden = default(hidden, 4 * dim)
        self.layers = self._stack(
            ManifoldHyperConnection, dim, depth, hidden, dropout,
            t_max=t_max, alpha_init=alpha_init, pre_logit=pre_logit, res_logit=res_logit,
        )  # fmt: skip


class HCMLP(_HyperMLP):
    """HC-MLP, the unconstrained ablation of ``MHCMLP`` (same sizes and the same mappings at
    init): ``x [b, f] -> [b]``."""

    def __init__(
        self,
        n_features: int,
        dim: int = 64,
        depth: int = 6,
        n_streams: int = 4,
        hidden: int | None = None,
        alpha_init: float = 0.01,
        pre_logit: float = PRE_LOGIT,
        res_logit: float = RES_LOGIT,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(n_features, dim, n_streams)
        hidden = default(hidden, 4 * dim)
        self.layers = self._stack(
            HyperConnection, dim, depth, hidden, dropout,
            alpha_init=alpha_init, pre_logit=pre_logit, res_logit=res_logit,
        )  # fmt: skip
