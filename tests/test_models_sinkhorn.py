"""Sinkhorn-Knopp: doubly stochastic output, float32 under autocast, exact custom backward."""

from __future__ import annotations

import pytest
import torch

from deepalpha.models.sinkhorn import (
    amax_gains,
    column_error,
    row_error,
    sinkhorn_autograd,
    sinkhorn_knopp,
    sinkhorn_log,
)


def _logits(*shape: int, scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_nonnegative_rows_exact_columns_close(n):
    m = sinkhorn_knopp(_logits(64, n, n))
    assert m.dtype == torch.float32
    assert (m >= 0).all()
    assert row_error(m) < 1e-6
    assert column_error(m) < 1e-4


def test_batched_leading_dims():
    z = _logits(3, 5, 4, 4)
    m = sinkhorn_knopp(z)
    assert m.shape == z.shape
    torch.testing.assert_close(m[1, 2], sinkhorn_knopp(z[1, 2]))


def test_matches_log_domain_reference():
    z = _logits(32, 4, 4, scale=2.0)
    torch.testing.assert_close(sinkhorn_knopp(z).double(), sinkhorn_log(z), atol=1e-6, rtol=0)


def test_identity_leaning_logits_are_symmetric_and_diagonal_heavy():
    m = sinkhorn_knopp(torch.eye(4))
    torch.testing.assert_close(m, m.T)
    assert (m.diagonal() > m.sum(0).max() / 4).all()


def test_custom_backward_equals_autograd_through_the_iteration():
    z = _logits(128, 4, 4, scale=3.0).requires_grad_()
    w = _logits(128, 4, 4, seed=1)
    (g_fast,) = torch.autograd.grad((sinkhorn_knopp(z) * w).sum(), z)
    (g_ref,) = torch.autograd.grad((sinkhorn_autograd(z) * w).sum(), z)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-5, rtol=1e-4)


def test_gradcheck_float64():
    z = _logits(3, 4, 4).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: sinkhorn_knopp(t, t_max=5), (z,))


@pytest.mark.parametrize("seed", range(5))
def test_gradient_finite_for_extreme_logits(seed):
    g = torch.Generator().manual_seed(seed)
    z = (100 * torch.rand(256, 4, 4, generator=g) - 50).requires_grad_()
    # adversarial: a column far below every row's maximum
    z.data[0] = torch.tensor([[50.0, 50, 50, -50]] * 4)
    m = sinkhorn_knopp(z)
    assert torch.isfinite(m).all() and row_error(m) < 1e-5
    (grad,) = torch.autograd.grad((m * torch.randn(256, 4, 4, generator=g)).sum(), z)
    assert torch.isfinite(grad).all()


def test_float32_under_autocast():
    z = _logits(16, 4, 4).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m = sinkhorn_knopp(z)
    assert m.dtype == torch.float32
    assert row_error(m) < 1e-6


def test_amax_gains_of_doubly_stochastic_products_is_one():
    maps = sinkhorn_knopp(_logits(6, 32, 4, 4))
    fwd, bwd = amax_gains(maps)
    assert abs(fwd - 1) < 1e-5 and abs(bwd - 1) < 1e-4


def test_amax_gains_matches_explicit_norms():
    maps = _logits(3, 4, 4)
    prod = maps[2] @ maps[1] @ maps[0]
    fwd, bwd = amax_gains(maps)
    assert fwd == pytest.approx(torch.linalg.matrix_norm(prod.double(), ord=float("inf")).item())
    assert bwd == pytest.approx(torch.linalg.matrix_norm(prod.double(), ord=1).item())
