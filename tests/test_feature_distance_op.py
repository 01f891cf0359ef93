"""The feature-distance ops (lpips_distance, dists_layer, swd_distance) against their PyTorch twins, forward and
backward, on random and ReLU-like features, both memory formats, and CUDA against CPU where a GPU is present."""
import pytest
import torch
from turboiqa import _ops
from turboiqa.reference import feature_distance as ref

pytestmark = pytest.mark.skipif(not _ops._has_op("swd_distance"), reason="compiled feature-distance ops not available")

# (N, C, H, W): 1x1, C not a multiple of the vector width, odd sizes, maps thinner than the SWD neighbourhood,
# more positions than one CPU chunk (128) and, for DISTS, than one strip (16384).
SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (3, 17, 9, 4), (1, 5, 2, 1), (2, 33, 1, 6), (2, 64, 13, 11)]
FORMATS = ["contiguous", "channels_last", "strided"]
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-5, atol=1e-6)}


def features(shape, dtype, fmt="contiguous", seed=0, device="cpu", kind="random"):
    """Two feature maps and the three per-channel vectors. 'relu': ReLU of smoothed noise (many zeros, including
    all-zero positions), the second map a perturbation of the first, like backbone taps of an image pair."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    if kind == "relu":
        base = torch.nn.functional.avg_pool2d(torch.randn(n, c, h + 2, w + 2, generator=g, dtype=torch.float64), 3, 1)
        f0 = torch.relu(base - 0.1)
        f1 = torch.relu(base + 0.05 * torch.randn(base.shape, generator=g, dtype=torch.float64) - 0.1)
        f0[:, :, 0, 0] = 0  # an all-zero position in each map
        f1[:, :, -1, -1] = 0
    else:
        f0 = torch.randn(shape, generator=g, dtype=torch.float64)
        f1 = torch.randn(shape, generator=g, dtype=torch.float64)
    weights = [torch.rand(c, generator=g, dtype=torch.float64) / c for _ in range(3)]
    f0, f1 = f0.to(dtype).to(device), f1.to(dtype).to(device)
    if fmt == "channels_last":
        f0, f1 = f0.to(memory_format=torch.channels_last), f1.to(memory_format=torch.channels_last)
    elif fmt == "strided":  # a non-contiguous view of a wider map
        f0 = torch.cat([f0, f0], dim=3)[..., ::2]
        f1 = torch.cat([f1, f1], dim=3)[..., ::2]
    return f0, f1, [v.to(dtype).to(device) for v in weights]


CASES = [("lpips", None), ("dists", None), ("swd", 0), ("swd", 1), ("swd", 2)]


def run(op, radius, f0, f1, w, backend):
    if op == "lpips":
        return _ops.lpips_distance(f0, f1, w[0], 1e-10, backend=backend)
    if op == "dists":
        return _ops.dists_layer(f0, f1, w[1], w[2], 1e-6, 1e-6, backend=backend)
    return _ops.swd_distance(f0, f1, w[0], radius, 1e-10, backend=backend)


@pytest.mark.parametrize("op,radius", CASES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_matches_reference(op, radius, fmt, dtype):
    for i, shape in enumerate(SHAPES):
        for kind in ("random", "relu"):
            f0, f1, w = features(shape, dtype, fmt, seed=i, kind=kind)
            got, want = run(op, radius, f0, f1, w, "native"), run(op, radius, f0, f1, w, "reference")
            assert got.shape == (shape[0],) and got.dtype == dtype
            torch.testing.assert_close(got, want, **TOL[dtype], msg=lambda m: f"{shape} {kind}: {m}")


def gradients(op, radius, f0, f1, w, backend, seed=0):
    f0, f1 = f0.detach().requires_grad_(), f1.detach().requires_grad_()
    out = run(op, radius, f0, f1, w, backend)
    upstream = torch.rand(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(out)
    return torch.autograd.grad(out, (f0, f1), upstream)


@pytest.mark.parametrize("op,radius", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_matches_reference(op, radius, dtype):
    for i, (shape, fmt) in enumerate(zip(SHAPES, FORMATS * 2)):
        for kind in ("random", "relu"):
            f0, f1, w = features(shape, dtype, fmt, seed=10 + i, kind=kind)
            got, want = gradients(op, radius, f0, f1, w, "native"), gradients(op, radius, f0, f1, w, "reference")
            for g, r in zip(got, want):
                assert g.dtype == dtype and g.shape == r.shape and g.stride() == torch.empty_like(f0).stride()
                scale = max(r.abs().max().item(), 1e-8)
                tol = 1e-11 if dtype == torch.float64 else 2e-5
                torch.testing.assert_close(g, r, rtol=tol, atol=tol * scale, msg=lambda m: f"{shape} {kind}: {m}")


def test_weight_gradients():
    f0, f1, w = features((2, 6, 5, 4), torch.float64, seed=3)
    for op, radius in CASES:
        leaves = [v.clone().requires_grad_() for v in w]
        want_leaves = [v.clone().requires_grad_() for v in w]
        got = torch.autograd.grad(run(op, radius, f0, f1, leaves, "native").sum(), leaves, allow_unused=True)
        want = torch.autograd.grad(run(op, radius, f0, f1, want_leaves, "reference").sum(), want_leaves,
                                   allow_unused=True)
        for g, r in zip(got, want):
            assert (g is None) == (r is None)
            if g is not None:
                torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op,radius", CASES)
def test_gradcheck(op, radius):
    f0, f1, w = features((2, 4, 4, 3), torch.float64, "channels_last" if radius == 1 else "contiguous", seed=5)
    f0, f1 = f0.requires_grad_(), f1.requires_grad_()
    w = [v.requires_grad_() for v in w]
    assert torch.autograd.gradcheck(lambda a, b, *v: run(op, radius, a, b, v, "native"), (f0, f1, *w))


def test_opcheck():
    f0, f1, w = features((2, 3, 4, 5), torch.float64, seed=6)
    samples = [(torch.ops.turboiqa.lpips_distance.default, (f0, f1, w[0], 1e-10)),
               (torch.ops.turboiqa.dists_layer.default, (f0, f1, w[1], w[2], 1e-6, 1e-6)),
               (torch.ops.turboiqa.swd_distance.default, (f0, f1, w[0], 1, 1e-10))]
    for op, args in samples:
        # Without requires_grad the cheap checks (the compiled-graph one is the same as below, minus the backward).
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
        grad_args = tuple(a.detach().clone().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
        torch.library.opcheck(op, grad_args)
    cl = [a.to(memory_format=torch.channels_last) for a in (f0, f1)]
    torch.library.opcheck(torch.ops.turboiqa.swd_distance.default,
                          (cl[0].requires_grad_(), cl[1].requires_grad_(), w[0], 2, 1e-10),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


def test_swd_radius_zero_is_lpips_and_grows_monotone():
    f0, f1, w = features((2, 9, 7, 8), torch.float32, seed=7, kind="relu")
    lp = _ops.lpips_distance(f0, f1, w[0])
    torch.testing.assert_close(_ops.swd_distance(f0, f1, w[0], 0), lp, rtol=1e-6, atol=0)
    d = [_ops.swd_distance(f0, f1, w[0], r) for r in range(4)]
    assert all((a >= b).all() for a, b in zip(d, d[1:]))  # a larger neighbourhood can only lower the minimum


def test_swd_ties_go_to_first_offset_in_raster_order():
    # Constant reference features: every neighbour is at the same distance, so the gradient must land on the
    # first neighbour in raster order (di, then dj, from -radius up) inside the map.
    fd = torch.rand(1, 4, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    fr = torch.ones(1, 4, 3, 4, dtype=torch.float64)
    w = torch.ones(4, dtype=torch.float64)
    for backend in ("native", "reference"):
        b = fr.clone().requires_grad_()
        (g,) = torch.autograd.grad(_ops.swd_distance(fd, b, w, 1, backend=backend).sum(), b)
        if backend == "native":
            got = g
        else:
            want = g
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    # Position (1, 1)'s first neighbour is (0, 0); (0, 0)'s own first neighbour is itself: (0,0) collects four.
    sources = (got.abs().sum(dim=1)[0] > 0)
    assert sources[0, 0] and sources[0, 1] and sources[0, 2] and sources[1, 0]
    assert not sources[2].any() and not sources[:, 3].any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32(dtype):
    f0, f1, w = features((2, 10, 6, 5), dtype, seed=9, kind="relu")
    for op, radius in CASES:
        got, want = run(op, radius, f0, f1, w, "native"), run(op, radius, f0, f1, w, "reference")
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=2e-5, atol=1e-6)
        g0, _ = gradients(op, radius, f0, f1, w, "native")
        assert g0.dtype == dtype


def test_thread_count_independent():
    f0, f1, w = features((2, 24, 150, 131), torch.float32, seed=11, kind="relu")
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, max(2, threads)):
            torch.set_num_threads(n)
            results.append([run(op, r, f0, f1, w, "native") for op, r in CASES]
                           + list(gradients("swd", 1, f0[:, :, :40], f1[:, :, :40], w, "native")))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_empty_batch_and_errors():
    f0, f1, w = features((2, 3, 4, 5), torch.float32)
    assert _ops.lpips_distance(f0[:0], f1[:0], w[0], backend="native").shape == (0,)
    with pytest.raises(RuntimeError, match="same shape"):
        torch.ops.turboiqa.lpips_distance(f0, f1[:, :, 1:], w[0], 1e-10)
    with pytest.raises(RuntimeError, match="C = 3 values"):
        torch.ops.turboiqa.swd_distance(f0, f1, w[0][:2], 1, 1e-10)
    with pytest.raises(RuntimeError, match="radius must be >= 0"):
        torch.ops.turboiqa.swd_distance(f0, f1, w[0], -1, 1e-10)
    with pytest.raises(RuntimeError, match="N x C x H x W"):
        torch.ops.turboiqa.dists_layer(f0[0], f1[0], w[1], w[2], 1e-6, 1e-6)
    with pytest.raises(RuntimeError, match="beta must hold"):
        torch.ops.turboiqa.dists_layer(f0, f1, w[1], w[2][:1], 1e-6, 1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fmt", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(fmt, dtype):
    for i, shape in enumerate(SHAPES + [(2, 24, 150, 131)]):
        f0, f1, w = features(shape, dtype, fmt, seed=20 + i, kind="relu")
        wc = [v.cuda() for v in w]
        for op, radius in CASES:
            cpu = run(op, radius, f0, f1, w, "native")
            gpu = run(op, radius, f0.cuda(), f1.cuda(), wc, "native")
            torch.testing.assert_close(gpu.cpu(), cpu, **TOL[dtype])
            if shape[2] * shape[3] < 5000:
                for g, c in zip(gradients(op, radius, f0.cuda(), f1.cuda(), wc, "native"),
                                gradients(op, radius, f0, f1, w, "native")):
                    scale = max(c.abs().max().item(), 1e-8)
                    tol = 1e-11 if dtype == torch.float64 else 2e-5
                    torch.testing.assert_close(g.cpu(), c, rtol=tol, atol=tol * scale)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_opcheck_and_determinism():
    f0, f1, w = features((2, 5, 6, 7), torch.float64, seed=30, device="cuda")
    torch.library.opcheck(torch.ops.turboiqa.swd_distance.default,
                          (f0.requires_grad_(), f1.requires_grad_(), w[0], 1, 1e-10))
    torch.library.opcheck(torch.ops.turboiqa.dists_layer.default, (f0, f1, w[1], w[2], 1e-6, 1e-6))
    torch.library.opcheck(torch.ops.turboiqa.lpips_distance.default, (f0, f1, w[0], 1e-10))
    big = features((2, 64, 200, 300), torch.float32, seed=31, device="cuda")
    for op, radius in CASES:
        assert torch.equal(run(op, radius, *big[:2], big[2], "native"), run(op, radius, *big[:2], big[2], "native"))


def test_swd_radius_is_checked_and_bounded_by_the_map():
    # Issue 11 #6: radius = -2^63 was the internal "no radius" sentinel (returned inf); scratch grew with
    # (2r+1)² whatever the map (4 GiB per thread at r = 1024 on a 5×6 map).
    g = torch.Generator().manual_seed(1)
    f0, f1 = (torch.randn(2, 8, 5, 6, generator=g, dtype=torch.float64) for _ in range(2))
    w = torch.rand(8, generator=g, dtype=torch.float64)
    for bad in (-(2**63), -1):
        with pytest.raises(RuntimeError, match="radius must be >= 0"):
            torch.ops.turboiqa.swd_distance(f0, f1, w, bad, 1e-10)
    whole_map = torch.ops.turboiqa.swd_distance(f0, f1, w, 5, 1e-10)
    for radius in (6, 1024, 2**40):  # every offset past the map is outside it: the same minimum
        assert torch.equal(torch.ops.turboiqa.swd_distance(f0, f1, w, radius, 1e-10), whole_map)
    torch.testing.assert_close(whole_map, ref.swd_distance(f0, f1, w, 5, 1e-10), rtol=1e-12, atol=0)
    big0, big1 = torch.randn(1, 2, 400, 400, generator=g), torch.randn(1, 2, 400, 400, generator=g)
    with pytest.raises(RuntimeError, match="MiB of scratch per thread"):
        torch.ops.turboiqa.swd_distance(big0, big1, torch.ones(2), 300, 1e-10)


def test_dists_twin_on_high_mean_low_spread_features():
    # Issue 11 #7: float32 features of mean 1e3 and std 1e-3 were 1e-3 off (relative) in the twin.
    g = torch.Generator().manual_seed(5)
    f0 = (1e3 + 1e-3 * torch.randn(2, 6, 17, 19, generator=g)).float()  # the values float32 can hold ...
    f1 = (1e3 + 1e-3 * torch.randn(2, 6, 17, 19, generator=g)).float()
    alpha, beta = torch.rand(6, generator=g), torch.rand(6, generator=g)
    want = ref.dists_layer(f0.double(), f1.double(), alpha.double(), beta.double(), 1e-6, 1e-6)  # ... in float64
    twin = ref.dists_layer(f0, f1, alpha, beta, 1e-6, 1e-6)
    native = torch.ops.turboiqa.dists_layer(f0, f1, alpha, beta, 1e-6, 1e-6)
    torch.testing.assert_close(twin.double(), want, rtol=1e-5, atol=0)
    torch.testing.assert_close(native.double(), want, rtol=1e-5, atol=0)
