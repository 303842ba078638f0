"""The float64 reference of the gated linear RNN, shared by the C-kernel and Triton tests.

``z [t, n, G*h]`` packs ``[zf | zc]`` (G = 2) or ``[zf | zc | zo]`` (G = 3); see
``deepalpha/models/kernels/linrnn.c``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from deepalpha.models.scan import scan_reference


def reference(z: torch.Tensor, gates: int) -> torch.Tensor:
    """``h`` (gates 2) or ``sigmoid(zo) h`` (gates 3) step by step, from packed ``z``."""
    hd = z.shape[-1] // gates
    zf, zc = z[..., :hd], z[..., hd : 2 * hd]
    h = scan_reference(torch.sigmoid(zf), (1 - torch.sigmoid(zf)) * F.silu(zc))
    return h if gates == 2 else torch.sigmoid(z[..., 2 * hd :]) * h


def packed_z(t, n, width, seed=0, scale=3.0, device="cpu") -> torch.Tensor:
    """Random float64 ``[t, n, width]`` pre-activations (scale 3: gates reach saturation)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(t, n, width, generator=g, dtype=torch.float64) * scale).to(device)


def check_against_reference(
    fn: Callable[..., torch.Tensor], t: int, n: int, hd: int, gates: int, device: str = "cpu"
) -> None:
    """Forward and ``dz`` of ``fn(z float32, with_output_gate=...)`` against float64 autograd
    through ``reference`` (forward within 2e-5, gradient within 5e-5)."""
    z64 = packed_z(t, n, gates * hd, device=device)
    w = packed_z(t, n, hd, seed=1, scale=1.0, device=device)
    ref_leaf = z64.clone().requires_grad_()
    ref = reference(ref_leaf, gates)
    (ref * w).sum().backward()
    leaf = z64.float().requires_grad_()
    out = fn(leaf, with_output_gate=gates == 3)
    (out * w.float()).sum().backward()
    assert out.dtype == torch.float32 and out.shape == (t, n, hd)
    assert leaf.grad.dtype == torch.float32 and leaf.grad.shape == z64.shape
    torch.testing.assert_close(out.double(), ref.detach(), atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(leaf.grad.double(), ref_leaf.grad, atol=5e-5, rtol=5e-5)
