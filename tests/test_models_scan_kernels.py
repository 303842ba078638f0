"""The C kernels of the gated linear RNN against the float64 Python-loop reference."""

from __future__ import annotations

import pytest
import torch
from linrnn_reference import check_against_reference, packed_z

from deepalpha.models import build_model, cap_groups, kernels
from deepalpha.models.scan import lin_rnn_packed
from deepalpha.models.scan_kernels import available, lin_rnn_kernel

pytestmark = pytest.mark.skipif(kernels.library() is None, reason="C kernels unavailable")


@pytest.mark.parametrize("gates", [2, 3])
@pytest.mark.parametrize("n, hd", [(5, 3), (70, 8), (200, 13)])  # one thread, tiles, odd h
def test_forward_and_gradient_match_float64_reference_t150(gates, n, hd):
    check_against_reference(lin_rnn_kernel, 150, n, hd, gates)


def test_extreme_preactivations_stay_finite_and_saturate():
    z = torch.tensor([[[-500.0, 500.0]], [[500.0, -500.0]], [[0.0, 40.0]]])  # [t 3, n 1, 2h]
    leaf = z.clone().requires_grad_()
    h = lin_rnn_kernel(leaf)
    h[-1].sum().backward()
    assert torch.isfinite(h).all() and torch.isfinite(leaf.grad).all()
    # f = 0 takes c = 500; then f = 1 keeps it; then f = 1/2 averages with SiLU(40) = 40
    torch.testing.assert_close(h.flatten(), torch.tensor([500.0, 500.0, 270.0]))


def test_leading_dims_are_flattened_and_restored():
    z = packed_z(20, 12, 3 * 4).float().reshape(20, 3, 4, 12)
    out = lin_rnn_kernel(z, with_output_gate=True)
    assert out.shape == (20, 3, 4, 4)
    flat = lin_rnn_kernel(z.reshape(20, 12, 12), with_output_gate=True)
    torch.testing.assert_close(out.reshape(20, 12, 4), flat)


def test_same_result_at_one_and_two_threads():
    z = packed_z(60, 300, 2 * 16).float()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = lin_rnn_kernel(z)
        torch.set_num_threads(2)
        two = lin_rnn_kernel(z)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)  # rows are independent: bitwise equal


def test_bad_packed_width_is_refused():
    with pytest.raises(ValueError, match="divisible by 3"):
        lin_rnn_kernel(torch.zeros(4, 2, 8), with_output_gate=True)


def test_available_only_for_cpu_float32():
    assert available(torch.zeros(2, 2, 4))
    assert not available(torch.zeros(2, 2, 4, dtype=torch.float64))


@pytest.mark.parametrize("name", ["rnn_lin", "rnn_lin_glu", "decompgrn"])
def test_models_agree_with_and_without_the_kernels(name, monkeypatch):
    """The fused backend on the C kernels equals the torch per-step Function (DEEPALPHA_KERNELS=0),
    forward and every parameter gradient."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(90, 40, 6, generator=g)
    groups = cap_groups(torch.randn(90, generator=g), 5)

    def run():
        model = build_model(name, 6, seed=0, hidden=16)
        out = model(x, groups)
        (out * torch.linspace(-1, 1, 90)).sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    out_k, grads_k = run()
    monkeypatch.setenv("DEEPALPHA_KERNELS", "0")
    out_t, grads_t = run()
    torch.testing.assert_close(out_k, out_t, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads_k, grads_t, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_torch_fallback_is_the_same_recurrence():
    z = packed_z(30, 20, 2 * 5).float()
    torch.testing.assert_close(lin_rnn_kernel(z), lin_rnn_packed(z), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gates", [2, 3])
def test_last_only_equals_the_last_step_of_the_full_scan(gates):
    z = packed_z(40, 90, gates * 7).float()
    w = torch.randn(90, 7, generator=torch.Generator().manual_seed(2))
    full_leaf, last_leaf = z.clone().requires_grad_(), z.clone().requires_grad_()
    full = lin_rnn_kernel(full_leaf, with_output_gate=gates == 3)
    (full[-1] * w).sum().backward()
    last = lin_rnn_kernel(last_leaf, with_output_gate=gates == 3, last_only=True)
    (last * w).sum().backward()
    assert last.shape == (90, 7)
    assert torch.equal(last, full[-1])
    assert torch.equal(last_leaf.grad, full_leaf.grad)
