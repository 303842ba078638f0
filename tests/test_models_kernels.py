"""Fused C kernels (deepalpha.models.fused / .kernels): equal to the eager torch ops and to float64
references, the eager fallback, and the build / cache / warning behaviour of the loader."""

from __future__ import annotations

import re
import sys
import warnings

import pytest
import torch

from deepalpha.models import fused, kernels
from deepalpha.models.sinkhorn import _prepare, column_error, row_error, sinkhorn_autograd

LEADS = [(1,), (7,), (4096,), (3, 5)]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the eager float64 references are hundreds of tiny ops, each a thread
    barrier that a busy 2-core machine can stall for a scheduler tick. The kernels' OpenMP
    teams are tested in ``test_kernels_agree_across_thread_counts``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fresh_loader():
    """Forget the per-process handle before and after the test."""
    kernels.clear_cache()
    yield
    kernels.clear_cache()


def _randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _grads(out: torch.Tensor, inputs: tuple[torch.Tensor, ...], w: torch.Tensor):
    return torch.autograd.grad((out * w).sum(), inputs)


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5, rel: float = 0.0) -> None:
    """``|a - b| <= atol + rel * max|b|`` elementwise (b may be float64)."""
    err = (a.double() - b.double()).abs().max().item()
    assert err <= atol + rel * b.double().abs().max().item(), err


def _used_kernel(out: torch.Tensor) -> bool:
    """Whether a C-kernel Function made ``out`` (through at most a few view ops)."""
    fn = out.grad_fn
    for _ in range(4):
        if fn is None or "Kernel" in type(fn).__name__:
            break
        fn = fn.next_functions[0][0] if fn.next_functions else None
    return fn is not None and "Kernel" in type(fn).__name__


# ---------------------------------------------------------------------------------------------
# C path vs eager and float64


@pytest.mark.parametrize("lead", LEADS)
@pytest.mark.parametrize("n", [1, 2, 4])
def test_sinkhorn_kernel_matches_autograd(lib, lead, n):
    z = (_randn(*lead, n, n, seed=0, scale=3.0) + 3 * torch.eye(n)).requires_grad_()
    w = _randn(*lead, n, n, seed=1)
    m = fused.sinkhorn_fused(_prepare(z))
    assert _used_kernel(m) and m.shape == z.shape and m.dtype == torch.float32
    ref = sinkhorn_autograd(z)
    # rows exact; columns as close to 1 as 20 rounds get (peaked logits converge slowly)
    assert row_error(m) < 1e-6 and column_error(m) < column_error(ref) + 1e-5 < 0.1
    _close(m, ref, atol=1e-5)
    (g,) = _grads(m, (z,), w)
    (g_ref,) = _grads(ref, (z,), w)
    _close(g, g_ref, atol=1e-7, rel=1e-4)
    z64 = z.detach().double().requires_grad_()
    ref64 = sinkhorn_autograd(z64)
    (g64,) = _grads(ref64, (z64,), w.double())
    _close(m, ref64, atol=1e-5)
    _close(g, g64, atol=1e-6, rel=1e-4)


def test_sinkhorn_kernel_large_n_and_t_max(lib):
    z = _randn(37, 16, 16, seed=2, scale=2.0).requires_grad_()
    w = _randn(37, 16, 16, seed=3)
    for t_max in (0, 1, 50):
        m = fused.sinkhorn_fused(_prepare(z), t_max=t_max)
        assert _used_kernel(m)
        ref = sinkhorn_autograd(z, t_max=t_max)
        _close(m, ref, atol=1e-5)
        _close(_grads(m, (z,), w)[0], _grads(ref, (z,), w)[0], atol=1e-7, rel=1e-4)


def test_sinkhorn_over_max_n_uses_eager(lib):
    z = _randn(3, 17, 17, seed=4).requires_grad_()
    m = fused.sinkhorn_fused(_prepare(z))
    assert not _used_kernel(m)
    _close(m, sinkhorn_autograd(z), atol=1e-6)


# every (leading dims, s, d) with small batches; the 4,096 batch (slow in eager float64) at s = 4
MIX_SHAPES = [(lead, s, d) for lead in LEADS if lead != (4096,) for s in (1, 2, 4) for d in (1, 64)]
MIX_SHAPES += [((4096,), 4, 1), ((4096,), 4, 64)]


@pytest.mark.parametrize(
    ("lead", "s", "d"),
    MIX_SHAPES,
    ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v),
)
def test_mix_kernels_match_eager_and_float64(lib, lead, s, d):
    x = _randn(*lead, s, d, seed=0).requires_grad_()
    h_pre = _rand(*lead, s, seed=1).requires_grad_()
    h_res = _rand(*lead, s, s, seed=2).requires_grad_()
    h_post = (2 * _rand(*lead, s, seed=3)).requires_grad_()
    y = _randn(*lead, d, seed=4).requires_grad_()
    inputs = (x, h_res, h_post, y)
    inputs64 = tuple(t.detach().double().requires_grad_() for t in inputs)
    x64 = inputs64[0]
    h_pre64 = h_pre.detach().double().requires_grad_()

    u = fused.pre_mix(x, h_pre)
    assert _used_kernel(u) and u.shape == (*lead, d)
    w_u = _randn(*lead, d, seed=5)
    u_eager, u64 = fused.pre_mix_eager(x, h_pre), fused.pre_mix_eager(x64, h_pre64)
    _close(u, u_eager, atol=1e-5)
    _close(u, u64, atol=1e-5)
    for g, ge, g64 in zip(
        _grads(u, (x, h_pre), w_u),
        _grads(u_eager, (x, h_pre), w_u),
        _grads(u64, (x64, h_pre64), w_u.double()),
        strict=True,
    ):
        _close(g, ge, atol=1e-5)
        _close(g, g64, atol=1e-5)

    out = fused.post_mix(*inputs)
    assert _used_kernel(out) and out.shape == x.shape
    w_o = _randn(*lead, s, d, seed=6)
    out_eager, out64 = fused.post_mix_eager(*inputs), fused.post_mix_eager(*inputs64)
    _close(out, out_eager, atol=1e-5)
    _close(out, out64, atol=1e-5)
    for g, ge, g64 in zip(
        _grads(out, inputs, w_o),
        _grads(out_eager, inputs, w_o),
        _grads(out64, inputs64, w_o.double()),
        strict=True,
    ):
        _close(g, ge, atol=1e-5, rel=1e-6)
        _close(g, g64, atol=1e-5, rel=1e-6)


def test_mix_kernels_any_subset_requires_grad(lib):
    x, h_res, h_post, y = (
        _randn(9, 4, 8, seed=0),
        _rand(9, 4, 4, seed=1),
        _rand(9, 4, seed=2),
        _randn(9, 8, seed=3),
    )
    w = _randn(9, 4, 8, seed=4)
    for mask in [(0, 0, 0, 1), (1, 0, 0, 0), (0, 1, 1, 0), (1, 1, 1, 1)]:
        inputs = tuple(
            t.clone().requires_grad_(bool(k))
            for t, k in zip((x, h_res, h_post, y), mask, strict=True)
        )
        out = fused.post_mix(*inputs)
        assert _used_kernel(out)
        (out * w).sum().backward()
        ref_in = tuple(
            t.clone().requires_grad_(bool(k))
            for t, k in zip((x, h_res, h_post, y), mask, strict=True)
        )
        (fused.post_mix_eager(*ref_in) * w).sum().backward()
        for t, r in zip(inputs, ref_in, strict=True):
            assert (t.grad is None) == (r.grad is None)
            if r.grad is not None:
                _close(t.grad, r.grad, atol=1e-5)
    h_pre = _rand(9, 4, seed=5).requires_grad_()
    u = fused.pre_mix(x, h_pre)  # x without grad
    (g,) = torch.autograd.grad(u.sum(), h_pre)
    _close(g, x.sum(-1), atol=1e-5)


def test_kernels_without_grad_and_non_contiguous_inputs(lib):
    z = _randn(8, 6, 4, 4, seed=0).transpose(0, 1)  # [6, 8, 4, 4], not contiguous
    with torch.no_grad():
        m = fused.sinkhorn_fused(_prepare(z))
    _close(m, sinkhorn_autograd(z), atol=1e-5)
    x = _randn(5, 64, 4, seed=1).transpose(-1, -2)  # [5, 4, 64]
    h = _rand(4, 5, seed=2).T
    _close(fused.pre_mix(x, h), fused.pre_mix_eager(x, h), atol=1e-5)


def test_kernels_agree_across_thread_counts(lib):
    lead, s, d = (4096,), 4, 64
    z = _randn(*lead, s, s, seed=0, scale=2.0).requires_grad_()
    x, y = _randn(*lead, s, d, seed=1).requires_grad_(), _randn(*lead, d, seed=2).requires_grad_()
    h_pre, h_post = (
        _rand(*lead, s, seed=3).requires_grad_(),
        _rand(*lead, s, seed=4).requires_grad_(),
    )
    inputs = (z, x, y, h_pre, h_post)

    def run():
        m = fused.sinkhorn_fused(_prepare(z))
        outs = (m, fused.pre_mix(x, h_pre), fused.post_mix(x, m, h_post, y))
        loss = sum(((o - 0.5) ** 2).sum() for o in outs)
        return outs + torch.autograd.grad(loss, inputs)

    one = run()
    torch.set_num_threads(2)
    for a, b in zip(one, run(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)  # per-sample work: bitwise equal


def test_broadcasting_and_float64_use_eager(lib):
    x, h_res = _randn(6, 4, 8, seed=0), _rand(4, 4, seed=1)  # h_res shared by the batch
    h_post, y = _rand(6, 4, seed=2), _randn(6, 8, seed=3)
    out = fused.post_mix(x.requires_grad_(), h_res, h_post, y)
    assert not _used_kernel(out)
    _close(out, fused.post_mix_eager(x, h_res, h_post, y), atol=0)
    u = fused.pre_mix(x.double(), h_post.double())
    assert u.dtype == torch.float64 and not _used_kernel(u)


# ---------------------------------------------------------------------------------------------
# eager path


def test_gradcheck_float64_eager_path():
    z = _randn(3, 4, 4, seed=0).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: fused.sinkhorn_fused(_prepare(t), t_max=5), (z,))
    x = _randn(2, 2, 3, 4, seed=1).double().requires_grad_()
    h_pre = _rand(2, 2, 3, seed=2).double().requires_grad_()
    h_res = _rand(2, 2, 3, 3, seed=3).double().requires_grad_()
    h_post = _rand(2, 2, 3, seed=4).double().requires_grad_()
    y = _randn(2, 2, 4, seed=5).double().requires_grad_()
    assert torch.autograd.gradcheck(fused.pre_mix, (x, h_pre))
    assert torch.autograd.gradcheck(fused.post_mix, (x, h_res, h_post, y))


def _all_ops(seed: int = 0):
    """Outputs and input gradients of the three ops on float32 inputs [7, 3, n, ...]."""
    z = _randn(7, 3, 4, 4, seed=seed, scale=2.0).requires_grad_()
    x = _randn(7, 3, 4, 16, seed=seed + 1).requires_grad_()
    h_pre, h_post = _rand(7, 3, 4, seed=seed + 2), _rand(7, 3, 4, seed=seed + 3)
    y = _randn(7, 3, 16, seed=seed + 4).requires_grad_()
    m = fused.sinkhorn_fused(_prepare(z))
    u = fused.pre_mix(x, h_pre.requires_grad_())
    out = fused.post_mix(x, m, h_post.requires_grad_(), y)
    loss = (m**2).sum() + (u**2).sum() + (out**2).sum()
    grads = torch.autograd.grad(loss, (z, x, h_pre, h_post, y))
    return (m, u, out), grads, any(_used_kernel(t) for t in (m, u, out))


def test_fallback_paths_give_the_same_results(lib, monkeypatch):
    outs, grads, used = _all_ops()
    assert used
    monkeypatch.setattr(fused, "library", lambda: None)
    outs_none, grads_none, used = _all_ops()
    assert not used
    monkeypatch.undo()
    monkeypatch.setenv("DEEPALPHA_KERNELS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the disabled path does not warn
        outs_off, grads_off, used = _all_ops()
    assert not used
    for a, b, c in zip(outs + grads, outs_none + grads_none, outs_off + grads_off, strict=True):
        torch.testing.assert_close(b, c, atol=0, rtol=0)
        _close(a, b, atol=1e-5, rel=1e-5)


@pytest.mark.parametrize(
    "cc",
    ["/nonexistent/deepalpha-no-such-cc", f"{sys.executable} -c 'raise SystemExit(1)'"],
    ids=["missing-compiler", "compile-error"],
)
def test_bad_compiler_falls_back_with_one_warning(cc, tmp_path, monkeypatch, fresh_loader):
    monkeypatch.setenv("DEEPALPHA_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", cc)
    monkeypatch.delenv("DEEPALPHA_KERNELS", raising=False)
    with pytest.warns(RuntimeWarning, match="fused C kernels unavailable"):
        *_, used = _all_ops()
    assert not used
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per process
        _all_ops()
    assert not list((tmp_path / "kernels").glob("*.tmp"))


def test_no_compiler_on_path_falls_back_with_a_warning(tmp_path, monkeypatch, fresh_loader):
    monkeypatch.setenv("DEEPALPHA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no cc, no gcc
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("DEEPALPHA_KERNELS", raising=False)
    with pytest.warns(RuntimeWarning, match="no C compiler found"):
        assert kernels.library() is None


# ---------------------------------------------------------------------------------------------
# cache


def test_build_is_cached_under_a_source_keyed_name(lib):
    path = kernels.build()
    assert path.parent == kernels.cache_dir() / "kernels"
    assert re.fullmatch(r"deepalpha-[0-9a-f]{16}-[^/]+\.so", path.name)
    mtime = path.stat().st_mtime_ns
    assert kernels.build() == path and path.stat().st_mtime_ns == mtime  # not rebuilt
    assert kernels.library_path(b"other source") != path


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPALPHA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernels.cache_dir() == tmp_path / "xdg" / "deepalpha"
    monkeypatch.setenv("DEEPALPHA_CACHE", str(tmp_path / "own"))
    assert kernels.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("DEEPALPHA_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kernels.cache_dir() == tmp_path / "home" / ".cache" / "deepalpha"
