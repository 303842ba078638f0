"""The Triton kernels of the gated linear RNN (``deepalpha.models.scan_triton``).

Three kinds of test:
- always: the module imports and declines every tensor without Triton; CPU tensors never take
  the Triton path.
- Triton installed, no GPU needed: the kernels run under Triton's interpreter
  (``TRITON_INTERPRET=1``, which executes them with numpy on CPU tensors; the module wraps its
  kernels per value of that variable, so setting it with monkeypatch is enough) against the
  float64 Python-loop reference, and compile to sm_90 machine code (``triton.compile`` for a
  named target needs no device).
- a CUDA device (and Triton): the same comparisons on the device, RNN-LIN and DecompGRN forward
  and backward on CUDA against the CPU (C kernels), and no host synchronisation.

CI has no GPU, so the third kind never runs there, and the second only where Triton is
installed (the dev box has it); the CPU kernel tests live in
``tests/test_models_scan_kernels.py``. ``benchmarks/gpu_check.sh`` runs this file on a GPU.
"""

from __future__ import annotations

import copy
import sys

import pytest
import torch
from linrnn_reference import check_against_reference, packed_z, reference

from deepalpha.models import scan_triton
from deepalpha.models.decompgrn import DecompGRN
from deepalpha.models.rnn import RNNLin
from deepalpha.models.scan_triton import available, lin_rnn_triton

HAS_TRITON = scan_triton._triton() is not None
HAS_CUDA = torch.cuda.is_available()
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
needs_gpu = pytest.mark.skipif(
    not (HAS_CUDA and HAS_TRITON), reason="needs a CUDA device and triton"
)


def _compare_to_reference(t, n, hd, gates, device):
    check_against_reference(lin_rnn_triton, t, n, hd, gates, device)


# --- always ---------------------------------------------------------------------------------


def test_cpu_tensors_never_take_the_triton_path():
    assert not available(torch.zeros(3, 2, 4))
    assert not available(torch.zeros(3, 2, 4, dtype=torch.bfloat16))


@pytest.fixture
def without_triton(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` raise ImportError
    scan_triton._triton.cache_clear()
    yield
    scan_triton._triton.cache_clear()


def test_without_triton_nothing_is_available_and_calls_say_why(without_triton):
    assert scan_triton._triton() is None
    assert not available(torch.zeros(3, 2, 4))
    with pytest.raises(RuntimeError, match="triton is not installed"):
        lin_rnn_triton(torch.zeros(3, 2, 4))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="divisible by 3"):
        lin_rnn_triton(torch.zeros(4, 2, 8), with_output_gate=True)
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        lin_rnn_triton(torch.zeros(4, 2, 8, dtype=torch.float64))


# --- Triton interpreter (CPU tensors) --------------------------------------------------------


@pytest.fixture
def interpret(monkeypatch):
    if not HAS_TRITON:
        pytest.skip("triton is not installed (pip install triton to run its interpreter)")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.mark.slow
@pytest.mark.parametrize("gates", [2, 3])
def test_interpreted_forward_and_gradient_match_float64_reference(interpret, gates):
    # odd n and h: the lanes of a block straddle rows; 481 lanes = 4 blocks, the last partial
    _compare_to_reference(50, 37, 13, gates, "cpu")


def _check_extremes_one_step_leading_dims_empty(device):
    z = torch.tensor([[[-500.0, 500.0]], [[500.0, -500.0]], [[0.0, 40.0]]], device=device)
    leaf = z.clone().requires_grad_()  # [t 3, n 1, 2h]
    h = lin_rnn_triton(leaf)
    h[-1].sum().backward()
    assert torch.isfinite(h).all() and torch.isfinite(leaf.grad).all()
    # f = 0 takes c = 500; then f = 1 keeps it; then f = 1/2 averages with SiLU(40) = 40
    torch.testing.assert_close(h.flatten().cpu(), torch.tensor([500.0, 500.0, 270.0]))
    z = packed_z(5, 12, 3 * 4, device=device).float().reshape(5, 3, 4, 12)
    out = lin_rnn_triton(z, with_output_gate=True)
    torch.testing.assert_close(out.reshape(5, 12, 4), reference(z.reshape(5, 12, 12), 3))
    one = z[:1, ..., :8]  # t = 1, G = 2
    torch.testing.assert_close(lin_rnn_triton(one), reference(one, 2))
    assert lin_rnn_triton(z.new_zeros(0, 3, 4)).shape == (0, 3, 2)
    assert lin_rnn_triton(z.new_zeros(4, 0, 4)).shape == (4, 0, 2)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")  # exp(500)
def test_interpreted_extremes_one_step_leading_dims_empty(interpret):
    _check_extremes_one_step_leading_dims_empty("cpu")


def test_interpreted_bfloat16_reads_as_float32(interpret):
    z = packed_z(6, 5, 3 * 4).bfloat16().requires_grad_()
    z32 = z.detach().float().requires_grad_()
    y, y32 = lin_rnn_triton(z, True), lin_rnn_triton(z32, True)
    y.sum().backward()
    y32.sum().backward()
    assert y.dtype == torch.float32 and z.grad.dtype == torch.bfloat16
    torch.testing.assert_close(y, y32, atol=0, rtol=0)  # same values, same float32 math
    # dz is computed in float32 and rounded to bfloat16 on store (within one unit of 2^-7)
    torch.testing.assert_close(z.grad.float(), z32.grad, atol=1e-6, rtol=2**-7)


def _model_and_batch(name):
    """A small RNN-LIN (3 layers: two full-sequence layers with the output gate in the scan, one
    last-step layer) or DecompGRN, odd hidden size, and a batch ``x [45, 30, 6]``, groups."""
    torch.manual_seed(0)
    model = RNNLin(6, hidden=13, layers=3) if name == "rnn_lin" else DecompGRN(6, hidden=13)
    x = torch.randn(45, 30, 6)
    groups = torch.randint(0, 5, (45,)) if name == "decompgrn" else None
    return model, x, groups


def _scores_and_grads(model, x, groups, device):
    """Scores and parameter gradients (of a weighted sum of the scores) of a copy of ``model``
    on ``device``, returned on the CPU."""
    m = copy.deepcopy(model).to(device)
    scores = m(x.to(device), None if groups is None else groups.to(device))
    (scores * torch.linspace(-1, 1, len(scores), device=device)).sum().backward()
    return scores.detach().cpu(), {k: p.grad.cpu() for k, p in m.named_parameters()}


def _assert_same(got, expected):
    torch.testing.assert_close(got[0], expected[0], atol=1e-4, rtol=1e-4)
    for k, grad in expected[1].items():
        torch.testing.assert_close(got[1][k], grad, atol=1e-4, rtol=1e-3, msg=k)


@pytest.fixture
def triton_calls(monkeypatch) -> list[bool]:
    """Records ``with_output_gate`` of every ``lin_rnn_triton`` call the models make."""
    calls, kernel = [], scan_triton.lin_rnn_triton

    def counted(z, with_output_gate=False):
        calls.append(with_output_gate)
        return kernel(z, with_output_gate)

    monkeypatch.setattr(scan_triton, "lin_rnn_triton", counted)
    return calls


@pytest.mark.parametrize("name", ["rnn_lin", "decompgrn"])
def test_interpreted_models_match_c_kernels(interpret, triton_calls, monkeypatch, name):
    """The dispatch of ``rnn.py`` without a GPU: CPU tensors declared available run the models'
    scans on the interpreted kernels; scores and gradients equal those of the C kernels."""
    model, x, groups = _model_and_batch(name)
    expected = _scores_and_grads(model, x, groups, "cpu")
    assert not triton_calls
    monkeypatch.setattr(scan_triton, "available", lambda z: z.dtype in scan_triton._DTYPES)
    got = _scores_and_grads(model, x, groups, "cpu")
    assert triton_calls == ([True, True, False] if name == "rnn_lin" else [True, False])
    _assert_same(got, expected)


@needs_triton
@pytest.mark.skipif(HAS_CUDA, reason="with a GPU the CUDA tests below compile for the device")
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION is unset")
def test_kernels_compile_for_sm90_without_a_device():
    """The path the interpreter does not check: Triton's compiler (front end, MLIR, LLVM,
    ptxas) accepts both kernels; the ``triton.compile`` call is that of Triton 3.9."""
    import triton
    from triton.backends.compiler import GPUTarget

    fwd, bwd = scan_triton._kernels(False)
    scalars = {"t_len": "i32", "lanes": "i32", "hd": "i32", "z_step": "i32"}
    for gates, zty in [(2, "*fp32"), (3, "*bf16")]:
        consts = {"GATES": gates, "BLOCK": 256}
        sig_f = {"z_ptr": zty, "h_ptr": "*fp32", "y_ptr": "*fp32"} | scalars
        sig_b = {"z_ptr": zty, "h_ptr": "*fp32", "g_ptr": "*fp32", "dz_ptr": zty} | scalars
        sig_b |= {"z_last": "i64", "h_last": "i32"}
        for fn, sig in [(fwd, sig_f), (bwd, sig_b)]:
            src = triton.compiler.ASTSource(fn, sig | dict.fromkeys(consts, "constexpr"), consts)
            compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
            assert compiled.asm["cubin"]


# --- CUDA ------------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("gates", [2, 3])
@pytest.mark.parametrize("t, n, hd", [(50, 37, 13), (60, 1500, 56)])  # 1 lane/thread; 2 lanes
def test_cuda_forward_and_gradient_match_float64_reference(gates, t, n, hd):
    _compare_to_reference(t, n, hd, gates, "cuda")


@pytest.mark.gpu
@needs_gpu
def test_cuda_extremes_one_step_leading_dims_empty():
    _check_extremes_one_step_leading_dims_empty("cuda")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_half_inputs_read_as_float32(dtype):
    z = packed_z(40, 33, 3 * 7, device="cuda").to(dtype).requires_grad_()
    z32 = z.detach().float().requires_grad_()
    y, y32 = lin_rnn_triton(z, True), lin_rnn_triton(z32, True)
    y.sum().backward()
    y32.sum().backward()
    assert y.dtype == torch.float32 and z.grad.dtype == dtype
    torch.testing.assert_close(y, y32, atol=0, rtol=0)
    ulp = 2**-7 if dtype == torch.bfloat16 else 2**-10  # dz rounded to dtype on store
    torch.testing.assert_close(z.grad.float(), z32.grad, atol=1e-6, rtol=ulp)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("name", ["rnn_lin", "decompgrn"])
def test_cuda_models_match_cpu_forward_and_backward(name, triton_calls):
    model, x, groups = _model_and_batch(name)
    on_cpu = _scores_and_grads(model, x, groups, "cpu")  # C kernels
    on_gpu = _scores_and_grads(model, x, groups, "cuda")
    assert triton_calls == ([True, True, False] if name == "rnn_lin" else [True, False])
    _assert_same(on_gpu, on_cpu)


@pytest.mark.gpu
@needs_gpu
def test_cuda_kernels_do_not_sync_with_the_host():
    z = packed_z(30, 20, 3 * 8, device="cuda").float().requires_grad_()
    lin_rnn_triton(z, True).sum().backward()  # compile (and cache) both kernels first
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        lin_rnn_triton(z, True).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("with_groups", [False, True])
def test_cuda_decompgrn_forward_does_not_sync_with_the_host(with_groups):
    torch.manual_seed(0)
    model = DecompGRN(6, hidden=13).cuda()
    x = torch.randn(45, 30, 6, device="cuda")
    groups = torch.randint(0, 5, (45,), device="cuda") if with_groups else None
    model(x, groups)  # warm up: Triton compiles, cuBLAS initialises
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(x, groups)
    finally:
        torch.cuda.set_sync_debug_mode("default")
