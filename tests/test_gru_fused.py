"""The fused C GRU (deepalpha.models.gru_fused, kernels/gru.c): forward and every gradient equal
to nn.GRU's with the same weights, the nn.GRU fallback when the kernels are missing, state_dict
compatibility of GRUModel's backends, determinism."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepalpha.models import build_model, gru_fused
from deepalpha.models.rnn import GRUModel, time_major

TOL = 2e-5  # max |fused - nn.GRU| relative to max |nn.GRU|; measured about 5e-7


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: nn.GRU is hundreds of tiny ops, each a thread barrier that a busy 2-core
    machine can stall (test_deterministic_and_thread_independent sets its own counts)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    scale = want.abs().max().clamp_min(1e-12)
    return ((got - want).abs().max() / scale).item()


def grads(rnn: nn.GRU, x: torch.Tensor) -> list[torch.Tensor]:
    return [x.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]


def reset(rnn: nn.GRU, x: torch.Tensor) -> None:
    rnn.zero_grad(set_to_none=True)
    x.grad = None


# (stocks, steps, features, hidden, layers): odd stocks, T = 1, one stock, hidden not a
# multiple of the SIMD width, partial tiles, more features than hidden units
SHAPES = [(7, 5, 6, 64, 2), (33, 1, 6, 64, 1), (50, 13, 3, 20, 2), (1, 4, 6, 64, 2),
          (101, 9, 5, 17, 1), (61, 3, 2, 64, 3), (26, 4, 70, 40, 2)]  # fmt: skip


@pytest.mark.parametrize("last_only", [False, True])
@pytest.mark.parametrize(("n", "t", "f", "h", "layers"), SHAPES)
def test_fused_equals_nn_gru(lib, n, t, f, h, layers, last_only):
    g = torch.Generator().manual_seed(n * 1000 + t)
    torch.manual_seed(n + t + f + h)
    rnn = nn.GRU(f, h, layers, batch_first=True)
    with torch.no_grad():  # non-zero biases everywhere (b_hn inside r * (...) matters)
        for p in rnn.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    x = torch.randn(n, t, f, generator=g, requires_grad=True)
    out = rnn(x)[0]
    out = out[:, -1] if last_only else time_major(out)
    w = torch.randn(out.shape, generator=g)
    (out * w).sum().backward()
    want = grads(rnn, x)
    reset(rnn, x)
    assert gru_fused.available(rnn, x)
    got_out = gru_fused.gru_fused(rnn, time_major(x), last_only=last_only)
    (got_out * w).sum().backward()
    got = grads(rnn, x)
    assert rel_err(got_out, out.detach()) < TOL
    names = ["x"] + [name for name, _ in rnn.named_parameters()]
    for name, a, b in zip(names, got, want, strict=True):
        if t == 1 and name.startswith("weight_hh"):  # h_0 = 0: no gradient reaches W_hh
            assert a.abs().max() == 0 and b.abs().max() == 0
            continue
        assert rel_err(a, b) < TOL, name
    with torch.no_grad():  # the inference path (nothing saved) gives the same forward
        assert torch.equal(gru_fused.gru_fused(rnn, time_major(x), last_only=last_only), got_out)


def test_model_backends_agree_and_share_state_dict(lib):
    torch.manual_seed(0)
    fused = build_model("gru", 6, seed=3)
    plain = build_model("gru", 6, seed=4, backend="torch")
    assert list(fused.state_dict()) == list(plain.state_dict())
    reference = GRUModel(6)  # the pre-backend module layout: rnn.* (nn.GRU) and head.*
    assert list(fused.state_dict()) == list(reference.state_dict())
    plain.load_state_dict(fused.state_dict())  # checkpoints move between backends
    x = torch.randn(45, 20, 6)
    assert fused.uses_fused(x) and not plain.uses_fused(x)
    y = torch.randn(45)
    losses = []
    for model in (fused, plain):
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        losses.append(loss.detach())
    assert rel_err(losses[0], losses[1]) < TOL
    for (name, a), b in zip(fused.named_parameters(), plain.parameters(), strict=True):
        assert rel_err(a.grad, b.grad) < TOL, name


def test_fallback_without_the_library(lib, monkeypatch):
    torch.manual_seed(0)
    model = build_model("gru", 6, seed=0)
    x = torch.randn(9, 7, 6)
    with_kernels = model(x)
    monkeypatch.setattr(gru_fused, "library", lambda: None)
    assert not gru_fused.available(model.rnn, x) and not model.uses_fused(x)
    out = model(x)  # nn.GRU
    out.sum().backward()
    assert rel_err(out, with_kernels.detach()) < TOL
    with pytest.raises(RuntimeError, match="unavailable"):
        gru_fused.gru_layer(time_major(x), *gru_fused._layer_weights(model.rnn, 0))
    monkeypatch.undo()
    monkeypatch.setenv("DEEPALPHA_KERNELS", "0")
    assert not model.uses_fused(x)
    assert rel_err(model(x), with_kernels.detach()) < TOL


def test_other_inputs_fall_back(lib):
    model = build_model("gru", 6, seed=0)
    x = torch.randn(5, 4, 6)
    assert model.uses_fused(x)
    assert not model.uses_fused(x.double())  # float64: nn.GRU (after model.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not model.uses_fused(x)
    big = GRUModel(6, hidden=lib.gru_max_h() + 1)
    assert not big.uses_fused(x)
    wide = GRUModel(lib.gru_max_h() + 1, hidden=8)
    assert not wide.uses_fused(torch.randn(5, 4, lib.gru_max_h() + 1))
    with pytest.raises(ValueError, match="backend"):
        GRUModel(6, backend="cuda")


class _Narrow:
    """The loaded kernels, reporting 128-bit vectors (a build without AVX)."""

    def __init__(self, lib) -> None:
        self._lib = lib

    def __getattr__(self, name: str):
        return getattr(self._lib, name)

    def gru_simd_width(self) -> int:
        return 4


def test_narrow_simd_builds_keep_nn_gru(lib, monkeypatch):
    model = build_model("gru", 6, seed=0)
    x = torch.randn(5, 4, 6)
    monkeypatch.setattr(gru_fused, "library", lambda: _Narrow(lib))
    assert gru_fused.MIN_SIMD_WIDTH == 8 and not model.uses_fused(x)


def test_dropout_between_layers(lib):
    torch.manual_seed(0)
    model = build_model("gru", 6, seed=0, dropout=0.5)
    plain = build_model("gru", 6, seed=0, dropout=0.5, backend="torch")
    x = torch.randn(30, 8, 6)
    model.eval(), plain.eval()  # no dropout in eval: equal
    assert rel_err(model(x), plain(x)) < TOL
    model.train()
    a, b = model(x), model(x)  # dropout active between the layers: different draws
    assert not torch.equal(a, b)
    torch.manual_seed(1)
    c = model(x)
    torch.manual_seed(1)
    assert torch.equal(c, model(x))


def test_deterministic_and_thread_independent(lib):
    """Bitwise the same forward and gradients on every run and for 1 or 2 threads: each row and
    each tile is computed by the same instructions, and the per-tile weight-gradient sums are
    added in tile order."""
    torch.manual_seed(0)
    rnn = nn.GRU(6, 64, 2)
    x = torch.randn(12, 150, 6)  # [t, n, f]: several tiles and a partial one
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 2):
            torch.set_num_threads(threads)
            xr = x.clone().requires_grad_()
            rnn.zero_grad(set_to_none=True)
            out = gru_fused.gru_fused(rnn, xr)
            out.square().sum().backward()
            runs.append([out.detach(), xr.grad] + [p.grad for p in rnn.parameters()])
    finally:
        torch.set_num_threads(before)
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            assert torch.equal(a, b)
