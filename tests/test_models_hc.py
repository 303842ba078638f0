"""Hyper-connections: the layer against an einsum reference, n = 1 is a residual block,
mHC's residual products stay doubly stochastic, Amax gain of HC vs mHC before and after training."""

from __future__ import annotations

import pytest
import torch
from einops import einsum, rearrange
from torch import nn

from deepalpha.models.common import FeedForward
from deepalpha.models.hyperconnections import HyperConnection, ManifoldHyperConnection
from deepalpha.models.mlp import HCMLP, MHCMLP
from deepalpha.models.sinkhorn import column_error


def _state(b=32, n=4, d=8, seed=0) -> torch.Tensor:
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def _reference_layer(layer, x):
    """DESIGN section 4 written out literally with einsum and an explicit RMSNorm."""
    n = layer.n_streams
    flat = rearrange(x, "b s d -> b (s d)")
    xn = flat / torch.sqrt(flat.pow(2).mean(-1, keepdim=True) + layer.eps)
    dyn = xn @ layer.phi.weight.T
    pre, post, res = (
        dyn[:, :n],
        dyn[:, n : 2 * n],
        rearrange(dyn[:, 2 * n :], "b (i j) -> b i j", i=n),
    )
    h_pre, h_post, h_res = layer._activate(pre, post, res)
    y = layer.branch(einsum(h_pre, x, "b s, b s d -> b d"))
    return einsum(h_res, x, "b i j, b j d -> b i d") + einsum(h_post, y, "b s, b d -> b s d")


@pytest.mark.parametrize("cls", [ManifoldHyperConnection, HyperConnection])
def test_layer_matches_reference(cls):
    torch.manual_seed(0)
    layer = cls(8, 4, FeedForward(8, 16))
    with torch.no_grad():  # make the dynamic terms matter
        layer.alpha_pre.fill_(0.7), layer.alpha_post.fill_(-0.4), layer.alpha_res.fill_(1.3)
    x = _state()
    torch.testing.assert_close(layer(x), _reference_layer(layer, x), atol=1e-5, rtol=1e-5)


def test_layer_accepts_extra_leading_dims():
    torch.manual_seed(0)
    layer = ManifoldHyperConnection(8, 4, FeedForward(8, 16))
    x = torch.randn(3, 5, 4, 8)
    torch.testing.assert_close(layer(x)[1], layer(x[1]))


def test_mhc_with_one_stream_is_an_ordinary_residual_block():
    torch.manual_seed(0)
    branch = FeedForward(8, 16)
    layer = ManifoldHyperConnection(8, 1, branch, post_bias=0.0)
    x = _state(n=1)
    with torch.no_grad():
        _, _, h_res = layer.maps(x)
        assert (h_res == 1).all()  # a 1x1 doubly stochastic matrix
        for a in (layer.alpha_pre, layer.alpha_post, layer.alpha_res):
            a.zero_()
    # H_post = 2 sigmoid(0) = 1, H_res = 1, and F starts with RMSNorm, so the H_pre scale drops out
    expected = x + branch(x[:, 0]).unsqueeze(1)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_mhc_preserves_the_mean_over_streams_of_the_residual_path():
    torch.manual_seed(0)
    layer = ManifoldHyperConnection(8, 4, FeedForward(8, 16))
    with torch.no_grad():
        layer.alpha_res.fill_(2.0)
    x = _state()
    _, _, h_res = layer.maps(x)
    # exact for a doubly stochastic H_res; Sinkhorn's columns are within column_error of 1
    tol = column_error(h_res) * x.abs().max().item() + 1e-5
    assert ((h_res @ x).mean(1) - x.mean(1)).abs().max() <= tol


def test_product_of_six_mhc_maps_stays_doubly_stochastic():
    torch.manual_seed(0)
    model = MHCMLP(5, dim=8, depth=6, n_streams=4)
    with torch.no_grad():
        for layer in model.layers:
            layer.alpha_res.fill_(3.0)  # strongly input-dependent mappings
    maps = model.residual_maps(torch.randn(64, 5))
    assert maps.shape == (6, 64, 4, 4)
    prod = maps[0]
    for h in maps[1:]:
        prod = h @ prod
    assert (prod >= 0).all()
    col_tol = 6 * column_error(maps) + 1e-5  # each factor's columns are within column_error
    torch.testing.assert_close(prod.sum(-1), torch.ones(64, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(prod.sum(-2), torch.ones(64, 4), atol=col_tol, rtol=0)
    assert torch.linalg.matrix_norm(prod, ord=2).max() <= 1 + col_tol


def _train(model, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 6, generator=g)
    y = (
        torch.tanh(x[:, 0] * x[:, 1])
        + 0.5 * x[:, 2].clamp(min=0)
        + 0.1 * torch.randn(128, generator=g)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x, loss.item()


@pytest.fixture
def one_thread():
    """Tiny ops run fastest on one thread (and do not fight other processes for the second)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_amax_gain_hc_vs_mhc_before_and_after_training(record_property, capsys, one_thread):
    gains = {}
    for name, cls in (("mhc", MHCMLP), ("hc", HCMLP)):
        torch.manual_seed(0)
        model = cls(6, dim=8, depth=6, n_streams=4)
        gains[name, "init"] = model.amax_gains(torch.randn(128, 6))
        x, loss = _train(model, 200)
        gains[name, "trained"] = model.amax_gains(x)
        gains[name, "trained_static"] = model.amax_gains()
        assert loss < 0.1  # it did learn
    for (name, stage), (fwd, bwd) in gains.items():
        record_property(f"amax_gain_{name}_{stage}", f"fwd {fwd:.6f} bwd {bwd:.6f}")
    with capsys.disabled():
        print("\nAmax gain (fwd, bwd) of prod H_res over 6 layers:", gains)
    for stage in ("init", "trained", "trained_static"):
        fwd, bwd = gains["mhc", stage]
        assert abs(fwd - 1) < 1e-5  # rows are normalised last: exact
        assert abs(bwd - 1) < 5e-3  # columns: Sinkhorn after t_max = 20 rounds
        assert max(gains["hc", stage]) - 1 > 10 * (max(fwd, bwd) - 1)


def test_amax_gain_of_static_maps_at_init():
    torch.manual_seed(0)
    assert MHCMLP(6, dim=8, depth=6).amax_gain() == pytest.approx(1, abs=1e-5)
    assert HCMLP(6, dim=8, depth=6).amax_gain() == pytest.approx(1, abs=1e-6)  # b_res = I


def test_mhc_is_finite_under_bfloat16_autocast():
    torch.manual_seed(0)
    model = MHCMLP(6, dim=8, depth=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(16, 6))
    assert torch.isfinite(out.float()).all()


# ----------------------------------------------------------------------------- init that mixes
def _batch(b=512, f=15, seed=1):
    return torch.randn(b, f, generator=torch.Generator().manual_seed(seed))


def test_redrawing_b_res_at_init_moves_the_mhc_output():
    """With a mean readout and equal H_pre the output ignored any doubly stochastic H_res (a
    0.5 % move); with home streams and a learned readout the mixing matters from step one."""
    x = _batch()
    torch.manual_seed(0)
    base = MHCMLP(15)
    out = base(x).detach()
    moves = []
    for s in range(3):
        torch.manual_seed(0)
        other = MHCMLP(15)
        g = torch.Generator().manual_seed(100 + s)
        with torch.no_grad():
            for layer in other.layers:
                layer.b_res.copy_(3 * torch.randn(layer.b_res.shape, generator=g))
        moves.append(((other(x) - out).norm() / out.norm()).item())
    assert min(moves) >= 0.05, moves


@pytest.mark.parametrize("cls", [MHCMLP, HCMLP])
def test_streams_stay_distinct_through_depth_at_init(cls):
    torch.manual_seed(0)
    absolute, relative = cls(15).stream_spread(_batch())
    assert absolute.shape == relative.shape == (7,)
    assert absolute[-1] >= 0.10 * absolute[1], absolute


def test_b_res_gradients_reach_every_layer_at_init():
    torch.manual_seed(0)
    model = MHCMLP(15)
    x = _batch()
    y = torch.randn(len(x), generator=torch.Generator().manual_seed(2))
    nn.functional.mse_loss(model(x), y).backward()
    norms = torch.tensor([layer.b_res.grad.norm().item() for layer in model.layers])
    assert (norms > 0).all()
    assert norms.max() / norms.min() <= 100, norms


def test_hc_and_mhc_start_from_the_same_mappings_and_function():
    torch.manual_seed(0)
    mhc = MHCMLP(15)
    torch.manual_seed(0)
    hc = HCMLP(15)
    for a, b in zip(mhc.layers, hc.layers, strict=True):
        for m_a, m_b in zip(a.static_maps(), b.static_maps(), strict=True):
            torch.testing.assert_close(m_a, m_b, atol=1e-6, rtol=0)
    # home streams: layer l reads stream l mod n
    homes = [int(layer.static_maps()[0].argmax()) for layer in mhc.layers]
    assert homes == [0, 1, 2, 3, 0, 1]
    with torch.no_grad():  # without the dynamic terms the two are the same network
        for layer in (*mhc.layers, *hc.layers):
            for a in (layer.alpha_pre, layer.alpha_post, layer.alpha_res):
                a.zero_()
    x = _batch(64)
    torch.testing.assert_close(mhc(x), hc(x), atol=1e-5, rtol=1e-5)


def test_mappings_and_mixing_are_float32_under_autocast(monkeypatch):
    import deepalpha.models.hyperconnections as hcmod

    seen = []
    real = hcmod.sinkhorn

    def spy(logits, *a, **k):
        seen.append(logits.dtype)
        return real(logits, *a, **k)

    monkeypatch.setattr(hcmod, "sinkhorn", spy)
    torch.manual_seed(0)
    layer = ManifoldHyperConnection(8, 4, FeedForward(8, 16))
    x = _state().to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h_pre, h_post, h_res = layer.maps(x)
        out, h_res2 = layer(x, return_res=True)
    assert seen and all(d == torch.float32 for d in seen)
    assert {h_pre.dtype, h_post.dtype, h_res.dtype, h_res2.dtype} == {torch.float32}
    assert out.dtype == torch.float32  # the residual state stays float32


def test_weight_decay_spares_mapping_biases_alphas_and_gains():
    from deepalpha.train.optim import make_optimizer

    torch.manual_seed(0)
    model = MHCMLP(6, dim=8, depth=3)
    with torch.no_grad():
        for layer in model.layers:  # away from 0 so that decay would show
            layer.b_post.fill_(0.5)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = make_optimizer(model, lr=0.1, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # Adam's step is 0: only decoupled decay moves anything
    opt.step()
    spared = ("b_pre", "b_post", "b_res", "alpha_pre", "alpha_post", "alpha_res", "gain", "bias")
    for name, p in model.named_parameters():
        if name.rsplit(".", 1)[-1] in spared:
            assert torch.equal(p, before[name]), name
        else:  # weight matrices decay by lr * wd
            torch.testing.assert_close(p, before[name] * (1 - 0.1 * 0.5))
