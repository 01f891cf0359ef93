"""turboiqa::histogram_intersection (the spatial-pyramid histogram step of dnn_features) against its PyTorch twin and
an independent torch.minimum transcription, forward and backward, both memory formats, thread-count independence,
argument errors, and CUDA against CPU where a GPU is present."""
import pytest
import torch
from turboiqa import _ops
from turboiqa.reference import histogram as ref

pytestmark = pytest.mark.skipif(not _ops._has_op("histogram_intersection"),
                                reason="compiled histogram_intersection op not available")

# (N, K, H, W, levels): one cell, odd sizes, sizes that do not divide into the cells, thin maps, batch > 1.
CASES = [(1, 1, 1, 1, 1), (2, 3, 5, 7, 2), (3, 17, 9, 4, 3), (1, 5, 2, 9, 2), (2, 33, 13, 11, 4), (2, 8, 16, 16, 5)]
FORMATS = ["contiguous", "channels_last", "strided"]
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-13), torch.float32: dict(rtol=1e-5, atol=2e-6)}


def features(shape, dtype, fmt="contiguous", seed=0, device="cpu", zeros=True):
    """ReLU-like maps (many zeros), the second a perturbation of the first; with ``zeros`` the top-left 2×2 block
    of both maps is zero (empty cells at fine levels: both-empty) and of the second map's last row (one empty)."""
    g = torch.Generator().manual_seed(seed)
    n, k, h, w = shape
    base = torch.randn(shape, generator=g, dtype=torch.float64)
    f0 = torch.relu(base)
    f1 = torch.relu(base + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64))
    if zeros and h >= 4 and w >= 4:
        f0[:, :, :2, :2] = 0
        f1[:, :, :2, :2] = 0
        f1[:, :, -1:, :] = 0
    f0, f1 = f0.to(dtype).to(device), f1.to(dtype).to(device)
    if fmt == "channels_last":
        f0, f1 = f0.to(memory_format=torch.channels_last), f1.to(memory_format=torch.channels_last)
    elif fmt == "strided":
        f0, f1 = torch.cat([f0, f0], dim=3)[..., ::2], torch.cat([f1, f1], dim=3)[..., ::2]
    return f0, f1


def minimum_transcription(fd, fr, levels):
    """Written independently of the twin: explicit cell loops and Σ min(h, h') with torch.minimum."""
    out = torch.empty(fd.shape[0], levels, dtype=fd.dtype)
    for n in range(fd.shape[0]):
        for v in range(levels):
            m, sims = 2**v, []
            for ci in range(m):
                for cj in range(m):
                    rows = slice(ci * fd.shape[2] // m, (ci + 1) * fd.shape[2] // m)
                    cols = slice(cj * fd.shape[3] // m, (cj + 1) * fd.shape[3] // m)
                    s, t = fd[n, :, rows, cols].sum(dim=(1, 2)), fr[n, :, rows, cols].sum(dim=(1, 2))
                    if s.sum() == 0 or t.sum() == 0:
                        sims.append(torch.tensor(float(s.sum() == 0 and t.sum() == 0), dtype=fd.dtype))
                    else:
                        sims.append(torch.minimum(s / s.sum(), t / t.sum()).sum())
            out[n, v] = torch.stack(sims).mean()
    return out


def gradients(fd, fr, levels, backend, seed=0):
    fd, fr = fd.detach().requires_grad_(), fr.detach().requires_grad_()
    out = _ops.histogram_intersection(fd, fr, levels, backend=backend)
    upstream = torch.rand(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(out)
    return torch.autograd.grad(out, (fd, fr), upstream)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_matches_twin_and_minimum_transcription(fmt, dtype):
    for i, (*shape, levels) in enumerate(CASES):
        fd, fr = features(shape, dtype, fmt, seed=i)
        got = _ops.histogram_intersection(fd, fr, levels, backend="native")
        want = _ops.histogram_intersection(fd, fr, levels, backend="reference")
        assert got.shape == (shape[0], levels) and got.dtype == dtype
        torch.testing.assert_close(got, want, **TOL[dtype], msg=lambda m: f"{shape}: {m}")
        torch.testing.assert_close(got.double(), minimum_transcription(fd.double(), fr.double(), levels),
                                   rtol=0, atol=1e-12 if dtype == torch.float64 else 3e-6)
        assert (got <= 1).all() and (got >= 0).all()


def test_hand_checked_values():
    # 1×2 map, two channels, one level: channel sums (4, 2) vs (4, 4) -> h = (2/3, 1/3), h' = (1/2, 1/2) -> 5/6.
    fd = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]], dtype=torch.float64)
    fr = torch.tensor([[[[2.0, 2.0]], [[2.0, 2.0]]]], dtype=torch.float64)
    assert torch.ops.turboiqa.histogram_intersection(fd, fr, 1).item() == pytest.approx(5 / 6, abs=1e-15)
    # 2×2 map, two channels, two levels. Level 1 (one position per cell), channel sums: (1,0) vs (0,1) -> 0;
    # (1,1) vs (1,1) -> 1; (0,0) vs (0,0) both empty -> 1; (2,0) vs (0,0) one empty -> 0: mean 1/2.
    # Level 0: (4,1) vs (1,2) -> min(4/5, 1/3) + min(1/5, 2/3) = 1/3 + 1/5.
    fd = torch.tensor([[[[1.0, 1.0], [0.0, 2.0]], [[0.0, 1.0], [0.0, 0.0]]]], dtype=torch.float64)
    fr = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]]], dtype=torch.float64)
    got = torch.ops.turboiqa.histogram_intersection(fd, fr, 2)
    torch.testing.assert_close(got, torch.tensor([[1 / 3 + 1 / 5, 0.5]], dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(ref.histogram_intersection(fd, fr, 2), got, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_maps_give_exactly_one(dtype):
    fd, _ = features((2, 64, 23, 31), dtype, seed=3)
    for backend in ("native", "reference"):
        assert torch.equal(_ops.histogram_intersection(fd, fd.clone(), 3, backend=backend),
                           torch.ones(2, 3, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_matches_twin_and_minimum_transcription(dtype):
    for i, ((*shape, levels), fmt) in enumerate(zip(CASES, FORMATS * 2)):
        fd, fr = features(shape, dtype, fmt, seed=10 + i)
        got, want = gradients(fd, fr, levels, "native"), gradients(fd, fr, levels, "reference")
        a, b = fd.double().requires_grad_(), fr.double().requires_grad_()
        up = torch.rand(shape[0], levels, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        up = up.to(dtype).double()
        total = (minimum_transcription(a, b, levels) * up).sum()  # constant where every cell is empty
        mins = torch.autograd.grad(total, (a, b), allow_unused=True) if total.requires_grad else (None, None)
        for g, r, m, f in zip(got, want, mins, (fd, fr)):
            assert g.dtype == dtype and g.shape == f.shape and g.stride() == torch.empty_like(f).stride()
            scale = max(r.abs().max().item(), 1e-8)
            tol = 1e-11 if dtype == torch.float64 else 2e-5
            torch.testing.assert_close(g, r, rtol=tol, atol=tol * scale, msg=lambda s: f"{shape}: {s}")
            m = torch.zeros_like(f, dtype=torch.float64) if m is None else m
            torch.testing.assert_close(g.double(), m, rtol=tol, atol=tol * scale, msg=lambda s: f"{shape} min: {s}")


def test_tie_gradient_is_split_half_half():
    # Equal histograms in one channel (h_0 = h'_0) with different other bins: the min form's ½–½ split.
    fd = torch.tensor([[[[2.0]], [[1.0]], [[1.0]]]], dtype=torch.float64)
    fr = torch.tensor([[[[2.0]], [[0.5]], [[1.5]]]], dtype=torch.float64)
    got = gradients(fd, fr, 1, "native")
    a, b = fd.clone().requires_grad_(), fr.clone().requires_grad_()
    sim = torch.minimum(a / a.sum(), b / b.sum()).sum()
    up = torch.rand(1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = torch.autograd.grad(sim * up[0, 0], (a, b))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-13, atol=1e-15)


def test_gradcheck():
    fd, fr = features((2, 4, 5, 6), torch.float64, seed=5, zeros=False)
    fd, fr = fd + 0.1, fr + 0.05  # no ties, no zero cells: the function is smooth around the point
    assert torch.autograd.gradcheck(lambda a, b: _ops.histogram_intersection(a, b, 2, backend="native"),
                                    (fd.requires_grad_(), fr.requires_grad_()))
    cl = [t.detach().to(memory_format=torch.channels_last).requires_grad_() for t in (fd, fr)]
    assert torch.autograd.gradcheck(lambda a, b: _ops.histogram_intersection(a, b, 3, backend="native"), tuple(cl))


def test_opcheck():
    fd, fr = features((2, 3, 4, 5), torch.float64, seed=6, zeros=False)
    op = torch.ops.turboiqa.histogram_intersection.default
    torch.library.opcheck(op, (fd, fr, 2), test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    torch.library.opcheck(op, (fd.clone().requires_grad_(), fr.clone().requires_grad_(), 2))
    cl = [t.to(memory_format=torch.channels_last).requires_grad_() for t in (fd, fr)]
    torch.library.opcheck(op, (*cl, 3), test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    grad = torch.rand(2, 2, dtype=torch.float64)
    torch.library.opcheck(torch.ops.turboiqa._histogram_intersection_backward.default, (grad, fd, fr, 2))


def test_thread_count_independent():
    fd, fr = features((2, 24, 95, 127), torch.float32, seed=11)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append([_ops.histogram_intersection(fd, fr, 3, backend="native"),
                            _ops.histogram_intersection(*(t.to(memory_format=torch.channels_last) for t in (fd, fr)),
                                                        3, backend="native"),
                            *gradients(fd, fr, 3, "native")])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_empty_batch_and_errors():
    fd, fr = features((2, 3, 4, 5), torch.float32)
    assert _ops.histogram_intersection(fd[:0], fr[:0], 2, backend="native").shape == (0, 2)
    op = torch.ops.turboiqa.histogram_intersection
    bad = [((fd, fr[:, :, 1:], 1), "same shape"), ((fd[0], fr[0], 1), "N x K x H x W"),
           ((fd, fr.double(), 1), "fr must have fd's dtype"), ((fd.half(), fr.half(), 1), "float32 or float64"),
           ((fd, fr, 0), "levels must be in"), ((fd, fr, 4), "finer than the 4 x 5"),
           ((fd, fr.to("meta"), 1), "same device|one device")]
    for args, match in bad:
        with pytest.raises(RuntimeError, match=match):
            op(*args)
        if args[0].device.type == "cpu" and args[1].device.type == "cpu":  # the Meta kernel runs the same check
            with pytest.raises(RuntimeError, match=match):
                op(args[0].to("meta"), args[1].to("meta"), args[2])
        with pytest.raises((ValueError, TypeError), match=match.split("|")[0] if "meta" not in str(args[1].device)
                           else "same device"):
            ref.histogram_intersection(*args)
    with pytest.raises(RuntimeError, match=r"grad must have shape \(N, levels\)"):
        torch.ops.turboiqa._histogram_intersection_backward(torch.ones(2, 3), fd, fr, 2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fmt", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(fmt, dtype):
    for i, (*shape, levels) in enumerate(CASES + [(2, 64, 95, 127, 3)]):
        fd, fr = features(shape, dtype, fmt, seed=20 + i)
        cpu = _ops.histogram_intersection(fd, fr, levels, backend="native")
        gpu = _ops.histogram_intersection(fd.cuda(), fr.cuda(), levels, backend="native")
        torch.testing.assert_close(gpu.cpu(), cpu, **TOL[dtype])
        for g, c in zip(gradients(fd.cuda(), fr.cuda(), levels, "native"), gradients(fd, fr, levels, "native")):
            scale = max(c.abs().max().item(), 1e-8)
            tol = 1e-11 if dtype == torch.float64 else 2e-5
            torch.testing.assert_close(g.cpu(), c, rtol=tol, atol=tol * scale)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_opcheck_errors_and_determinism():
    fd, fr = features((2, 5, 6, 7), torch.float64, seed=30, device="cuda", zeros=False)
    torch.library.opcheck(torch.ops.turboiqa.histogram_intersection.default,
                          (fd.clone().requires_grad_(), fr.clone().requires_grad_(), 2))
    with pytest.raises(RuntimeError, match="finer than the 6 x 7"):
        torch.ops.turboiqa.histogram_intersection(fd, fr, 4)
    with pytest.raises(RuntimeError, match="same device"):
        torch.ops.turboiqa.histogram_intersection(fd, fr.cpu(), 1)
    big = features((2, 64, 269, 479), torch.float32, seed=31, device="cuda")
    assert torch.equal(_ops.histogram_intersection(*big, 3), _ops.histogram_intersection(*big, 3))
