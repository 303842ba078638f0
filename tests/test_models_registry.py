"""Every registered model: builds by name, forward and backward, finite at x*1e3, seeded,
device-agnostic; the registry's errors; RNN-LIN against its equations; `deepalpha models list`."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from deepalpha.errors import ConfigError
from deepalpha.models import MODELS, build_model, cap_groups, count_parameters, model_kind
from deepalpha.models.rnn import RNNLin, RNNLinGLUBlock, RNNLinLayer, time_major

N, T, F_SEQ, F_TAB = 24, 7, 6, 15
SMALL = {  # small sizes keep the test fast; defaults are covered by the parameter counts
    "mlp": {"dim": 8, "depth": 2},
    "hc_mlp": {"dim": 8, "depth": 2},
    "mhc_mlp": {"dim": 8, "depth": 2},
    "gru": {"hidden": 8},
    "rnn_lin": {"hidden": 8},
    "rnn_lin_glu": {"hidden": 8},
    "decompgrn": {"hidden": 8},
}


def _inputs(name, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    if model_kind(name) == "tabular":
        x = torch.randn(N, F_TAB, generator=g)
    else:
        x = torch.randn(N, T, F_SEQ, generator=g)
    return scale * x, cap_groups(torch.randn(N, generator=g), 4)


def _build(name, seed=0, **kw):
    n_feat = F_TAB if model_kind(name) == "tabular" else F_SEQ
    return build_model(name, n_feat, seed=seed, **(SMALL[name] | kw))


def test_registry_names_and_kinds():
    assert set(MODELS) == {"mlp", "hc_mlp", "mhc_mlp", "gru", "rnn_lin", "rnn_lin_glu", "decompgrn"}
    assert {n for n in MODELS if model_kind(n) == "tabular"} == {"mlp", "hc_mlp", "mhc_mlp"}


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_backward(name):
    model = _build(name)
    x, groups = _inputs(name)
    out = model(x, groups)
    assert out.shape == (N,) and out.dtype == torch.float32
    out.pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", list(MODELS))
def test_finite_for_inputs_scaled_1e3_and_zero_filled_stocks(name):
    model = _build(name)
    x, groups = _inputs(name, scale=1e3)
    x[:5] = 0.0  # missing stocks arrive zero-filled
    x = x.requires_grad_()
    out = model(x, groups)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_output(name):
    x, groups = _inputs(name)
    a, b, c = _build(name, seed=1), _build(name, seed=1), _build(name, seed=2)
    for m in (a, b, c):
        m.eval()
    torch.testing.assert_close(a(x, groups), b(x, groups), atol=0, rtol=0)
    assert not torch.equal(a(x, groups), c(x, groups))


def test_seed_leaves_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_model("mlp", 4, seed=123)
    torch.testing.assert_close(torch.rand(3), expected)


def test_registry_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_model("nope", 4)
    with pytest.raises(ConfigError, match="hiden"):
        build_model("gru", 6, hiden=32)
    with pytest.raises(ConfigError, match="unknown model"):
        model_kind("nope")
    with pytest.raises(ConfigError, match="n_features"):
        build_model("mlp", 0)


def test_kwargs_override_defaults():
    assert (
        count_parameters(build_model("gru", 6, hidden=16, layers=1))
        == 3 * (6 * 16 + 16 * 16 + 32) + 17
    )
    assert len(build_model("mhc_mlp", 15, depth=3).layers) == 3


def test_default_parameter_counts():
    counts = {
        n: count_parameters(build_model(n, F_TAB if model_kind(n) == "tabular" else F_SEQ))
        for n in MODELS
    }
    assert counts["gru"] == 38_849
    assert counts["rnn_lin"] == (6 * 192 + 192) + (64 * 192 + 192) + 65
    assert counts["decompgrn"] == 17_081
    assert 0.4 <= counts["decompgrn"] / counts["gru"] <= 0.6
    assert counts["hc_mlp"] == counts["mhc_mlp"]


def test_rnn_lin_layer_matches_its_equations():
    torch.manual_seed(0)
    layer = RNNLinLayer(5, 6)
    x = torch.randn(9, 4, 5)  # [t, n, f]
    wf, wo, wc = None, None, None
    w, b = layer.gates.weight, layer.gates.bias
    wf, wc, wo = w.split(6)
    bf, bc, bo = b.split(6)
    h, ys = torch.zeros(4, 6), []
    for t in range(9):
        f = torch.sigmoid(x[t] @ wf.T + bf)
        h = f * h + (1 - f) * F.silu(x[t] @ wc.T + bc)
        ys.append(torch.sigmoid(x[t] @ wo.T + bo) * h)
    torch.testing.assert_close(layer(x), torch.stack(ys), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(layer(x, last_only=True), ys[-1], atol=1e-6, rtol=1e-5)


def test_rnn_lin_backends_agree():
    x = torch.randn(10, 12, 6)
    backends = ("fused", "loop", "chunked", "reference")
    outs = [build_model("rnn_lin", 6, seed=0, hidden=8, backend=b)(x) for b in backends]
    for out in outs[:-1]:
        torch.testing.assert_close(out, outs[-1], atol=1e-6, rtol=1e-5)


def test_glu_block_last_only_is_last_step_of_full():
    torch.manual_seed(0)
    block = RNNLinGLUBlock(8, 16)
    h = torch.randn(6, 5, 8)
    torch.testing.assert_close(block(h, last_only=True), block(h)[-1])


def test_rnn_lin_uses_only_past_and_present():
    torch.manual_seed(0)
    model = RNNLin(6, hidden=8)
    x = torch.randn(4, 10, 6)
    layer = model.layers[0]
    y = layer(time_major(x))
    x2 = x.clone()
    x2[:, 6:] += 1.0
    torch.testing.assert_close(layer(time_major(x2))[:6], y[:6], atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(MODELS))
def test_cuda_matches_cpu(name):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = _build(name).eval()
    x, groups = _inputs(name)
    expected = model(x, groups)
    got = model.to("cuda")(x.cuda(), groups.cuda())
    torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-4)


def test_cli_models_list():
    from typer.testing import CliRunner

    from deepalpha.cli import app

    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for name in MODELS:
        assert name in result.output
    assert "38,849" in result.output and "17,081" in result.output
    assert "= 0.44" in result.output
