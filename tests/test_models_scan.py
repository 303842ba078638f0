"""Linear-recurrence scan: every backend against the Python-loop reference, forward and backward."""

from __future__ import annotations

import pytest
import torch

from deepalpha.models.scan import lin_rnn_fused, linear_scan, scan_chunked, scan_reference


def _ab(t, *shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(t, *shape, generator=g, dtype=torch.float64)  # forget gates in (0, 1)
    b = torch.randn(t, *shape, generator=g, dtype=torch.float64)  # any sign
    h0 = torch.randn(*shape, generator=g, dtype=torch.float64)
    return a.to(dtype), b.to(dtype), h0.to(dtype)


def test_reference_is_the_recurrence():
    a, b, h0 = _ab(3, 2, dtype=torch.float64)
    h = scan_reference(a, b, h0)
    torch.testing.assert_close(h[0], a[0] * h0 + b[0])
    torch.testing.assert_close(h[2], a[2] * (a[1] * (a[0] * h0 + b[0]) + b[1]) + b[2])


@pytest.mark.parametrize("backend", ["loop", "chunked"])
@pytest.mark.parametrize("with_h0", [False, True])
def test_forward_float32_t150_matches_float64_reference(backend, with_h0):
    a, b, h0 = _ab(150, 40, 8)
    h0 = h0 if with_h0 else None
    ref = scan_reference(a.double(), b.double(), None if h0 is None else h0.double())
    out = linear_scan(a, b, h0, backend=backend)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["loop", "chunked"])
def test_gradcheck_float64(backend):
    a, b, h0 = (v.requires_grad_() for v in _ab(7, 3, 2, dtype=torch.float64))
    assert torch.autograd.gradcheck(
        lambda a, b, h: linear_scan(a, b, h, backend=backend), (a, b, h0)
    )
    assert torch.autograd.gradcheck(lambda a, b: linear_scan(a, b, backend=backend), (a, b))


@pytest.mark.parametrize("backend", ["loop", "chunked"])
def test_gradients_float32_t150_match_reference(backend):
    a, b, h0 = _ab(150, 40, 8)
    w = torch.randn(150, 40, 8, generator=torch.Generator().manual_seed(1))

    def grads(fn, dtype):
        leaves = [v.detach().to(dtype).clone().requires_grad_() for v in (a, b, h0)]
        (fn(*leaves) * w.to(dtype)).sum().backward()
        return [v.grad.double() for v in leaves]

    ref = grads(scan_reference, torch.float64)
    got = grads(lambda a, b, h: linear_scan(a, b, h, backend=backend), torch.float32)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def test_chunked_handles_lengths_not_multiple_of_chunk():
    a, b, h0 = _ab(37, 5, dtype=torch.float64)
    torch.testing.assert_close(scan_chunked(a, b, h0, chunk=8), scan_reference(a, b, h0))
    torch.testing.assert_close(
        scan_chunked(a[:3], b[:3], h0, chunk=8), scan_reference(a[:3], b[:3], h0)
    )


def test_saturated_gates_stay_finite():
    a, b, _ = _ab(150, 10, 4)
    a = torch.where(a > 0.5, torch.ones_like(a), torch.zeros_like(a))  # sigmoid of +-1e3 inputs
    b = b * 1e3
    for backend in ("loop", "chunked"):
        aa, bb = a.clone().requires_grad_(), b.clone().requires_grad_()
        h = linear_scan(aa, bb, backend=backend)
        h.sum().backward()
        assert (
            torch.isfinite(h).all()
            and torch.isfinite(aa.grad).all()
            and torch.isfinite(bb.grad).all()
        )


def test_bad_inputs_raise():
    a, b, _ = _ab(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        linear_scan(a, b[:, :2])
    with pytest.raises(ValueError, match="backend"):
        linear_scan(a, b, backend="nope")


def _gates(zf, zc):
    f = torch.sigmoid(zf)
    return f, (1 - f) * torch.nn.functional.silu(zc)


def test_fused_gates_scan_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    zf, zc = (
        torch.randn(7, 3, 2, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2)
    )
    assert torch.autograd.gradcheck(lin_rnn_fused, (zf, zc))


def test_fused_gates_scan_float32_t150_matches_float64_reference():
    g = torch.Generator().manual_seed(0)
    zf, zc, w = (3 * torch.randn(150, 40, 8, generator=g, dtype=torch.float64) for _ in range(3))

    def run(fn, dtype):
        leaves = [v.detach().to(dtype).clone().requires_grad_() for v in (zf, zc)]
        h = fn(*leaves)
        (h * w.to(dtype)).sum().backward()
        return [h.double()] + [v.grad.double() for v in leaves]

    ref = run(lambda a, b: scan_reference(*_gates(a, b)), torch.float64)
    got = run(lin_rnn_fused, torch.float32)
    for r, x in zip(ref, got, strict=True):
        torch.testing.assert_close(x, r, atol=1e-5, rtol=1e-5)


def test_fused_gates_scan_saturated_inputs_finite():
    g = torch.Generator().manual_seed(0)
    zf, zc = (1e3 * torch.randn(20, 4, 3, generator=g) for _ in range(2))
    zf.requires_grad_(), zc.requires_grad_()
    h = lin_rnn_fused(zf, zc)
    h.sum().backward()
    assert (
        torch.isfinite(h).all() and torch.isfinite(zf.grad).all() and torch.isfinite(zc.grad).all()
    )
