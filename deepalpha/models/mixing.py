"""What a trained HC / mHC model does with its streams: diversity by depth, ``H_res``, Amax gain.

Legend: ``l`` layers (L), ``b`` rows of the probe batch, ``s, i, j`` streams (n).

``mixing_summary(model, x)`` works on any model with ``stream_spread`` and ``residual_maps``
(``HCMLP``, ``MHCMLP``); everything is float64 numpy for printing and JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from deepalpha.models.sinkhorn import amax_gains


def has_streams(model: nn.Module) -> bool:
    """True for multi-stream models (HC-MLP, mHC-MLP)."""
    return all(hasattr(model, k) for k in ("stream_spread", "residual_maps"))


@torch.no_grad()
def mixing_summary(model: nn.Module, x: Tensor) -> dict[str, Any]:
    """Stream mixing of ``model`` on the probe batch ``x [b, f]``.

    Returns
    -------
    dict with
        ``spread [l+1]``: RMS deviation of the streams from their mean after the input projection
        (entry 0) and after each layer; ``relative_spread [l+1]``: the same over the state's RMS;
        ``h_res_static [l, s, s]``: each layer's ``H_res`` from its biases alone;
        ``h_res_mean [l, s, s]``: each layer's ``H_res`` averaged over the batch (dynamic terms
        in); ``h_res_offdiag [l]``: mean off-diagonal mass per row of ``h_res_mean`` (0 = no
        mixing, (n-1)/n = uniform); ``amax_static``, ``amax_fwd``, ``amax_bwd``: Amax gains of
        the product over depth (bias-only, and the batch maxima forward / backward).
    """
    model.eval()
    absolute, relative = model.stream_spread(x)
    dyn = model.residual_maps(x).double()  # [l, b, s, s]
    static = model.residual_maps().double()  # [l, s, s]
    mean = dyn.mean(dim=1)
    n = mean.shape[-1]
    off = (mean.sum(dim=(-2, -1)) - mean.diagonal(dim1=-2, dim2=-1).sum(-1)) / n
    fwd, bwd = amax_gains(dyn)  # the maps just computed, not another pass through the model
    return {
        "spread": absolute.double().numpy(),
        "relative_spread": relative.double().numpy(),
        "h_res_static": static.numpy(),
        "h_res_mean": mean.numpy(),
        "h_res_offdiag": off.numpy(),
        "amax_static": max(amax_gains(static)),
        "amax_fwd": float(fwd),
        "amax_bwd": float(bwd),
    }


def probe_batch(n_features: int, rows: int = 2048, seed: int = 0) -> Tensor:
    """``[rows, n_features] float32`` standard normal rows: the scale of standardised style
    exposures, which is what System A's models see."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, n_features, generator=g)


def format_matrix(m: np.ndarray, digits: int = 2) -> str:
    """``[s, s]`` as rows of fixed-width numbers, one line per output stream."""
    return "\n".join(" ".join(f"{v:.{digits}f}" for v in row) for row in m)
