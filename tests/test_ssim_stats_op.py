"""The native ssim_stats operator against its pure-PyTorch twin: forward, backward, registration."""
import pytest
import torch
from turboiqa import _ops
from turboiqa.reference.ssim_stats import ssim_stats as reference
from turboiqa.window import gaussian_window, uniform_window

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="compiled extension not available")

PADDINGS = ["valid", "zeros", "symmetric", "reflect", "replicate"]
SHAPES = [(1, 1, 11, 11), (2, 3, 37, 41), (3, 1, 64, 33), (1, 2, 70, 131), (1, 1, 16, 300)]
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def pair(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 255
    y = (x + 25 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 255)
    if dtype == torch.uint8:
        x, y = x.round(), y.round()
    return x.to(dtype).to(device), y.to(dtype).to(device)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.uint8])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(device, padding, dtype, shape):
    x, y = pair(shape, dtype, device)
    w = gaussian_window(11, 1.5)
    got = _ops.ssim_stats(x, y, w, C1, C2, padding)
    want = reference(x.double(), y.double(), w, C1, C2, padding)  # float64 truth
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    for g_, w_ in zip(got, want):
        assert g_.shape == shape[:2]
        assert g_.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
        torch.testing.assert_close(g_.double(), w_, atol=tol, rtol=0)


@pytest.mark.parametrize("window", [gaussian_window(3, 0.8), gaussian_window(7, 1.5), gaussian_window(15, 2.5),
                                    uniform_window(7)])
@pytest.mark.parametrize("cov_norm", [1.0, 49 / 48])
def test_windows_and_covariance(device, window, cov_norm):
    x, y = pair((2, 2, 29, 35), torch.float64, device, seed=1)
    got = _ops.ssim_stats(x, y, window, C1, C2, "symmetric", cov_norm)
    want = reference(x, y, window, C1, C2, "symmetric", cov_norm)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_small_images_with_same_padding(device):
    for shape in [(1, 1, 1, 1), (1, 1, 5, 7), (2, 1, 3, 40), (1, 1, 33, 1)]:
        x, y = pair(shape, torch.float64, device)
        for padding in PADDINGS[1:]:
            torch.testing.assert_close(_ops.ssim_stats(x, y, gaussian_window(), C1, C2, padding),
                                       reference(x, y, gaussian_window(), C1, C2, padding), atol=1e-12, rtol=0)


def test_float32_bright_content_has_no_cancellation(device):
    # E[x²] - μ² cancels catastrophically on bright flat content in float32 unless the kernel centres the data.
    g = torch.Generator().manual_seed(3)
    x = 250 + 3 * torch.rand(1, 1, 96, 96, generator=g, dtype=torch.float64)
    y = (x + torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 255)
    got = _ops.ssim_stats(x.float().to(device), y.float().to(device), gaussian_window(), C1, C2, "valid")
    want = reference(x, y, gaussian_window(), C1, C2, "valid")
    torch.testing.assert_close(got[0].double().cpu(), want[0], atol=1e-5, rtol=0)


def test_noncontiguous_and_channels_last(device):
    x, y = pair((2, 3, 40, 52), torch.float32, device)
    want = _ops.ssim_stats(x, y, gaussian_window(), C1, C2, "valid")
    cl = _ops.ssim_stats(x.to(memory_format=torch.channels_last), y.to(memory_format=torch.channels_last),
                         gaussian_window(), C1, C2, "valid")
    torch.testing.assert_close(cl, want, atol=0, rtol=0)
    xs, ys = x[..., ::2], y[..., ::2]  # strided view
    torch.testing.assert_close(_ops.ssim_stats(xs, ys, gaussian_window(), C1, C2, "valid"),
                               _ops.ssim_stats(xs.contiguous(), ys.contiguous(), gaussian_window(), C1, C2, "valid"))


def test_half_precision_inputs(device):
    x, y = pair((1, 2, 30, 30), torch.float32, device)
    x, y = x / 255, y / 255
    for dt in (torch.float16, torch.bfloat16):
        got = _ops.ssim_stats(x.to(dt), y.to(dt), gaussian_window(), 1e-4, 9e-4, "valid")
        want = reference(x.to(dt).double(), y.to(dt).double(), gaussian_window(), 1e-4, 9e-4, "valid")
        torch.testing.assert_close(got[0].double(), want[0], atol=1e-5, rtol=0)


def test_result_independent_of_thread_count():
    x, y = pair((2, 1, 300, 257), torch.float32, "cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _ops.ssim_stats(x, y, gaussian_window(), C1, C2, "valid")
        torch.set_num_threads(max(2, threads))
        many = _ops.ssim_stats(x, y, gaussian_window(), C1, C2, "valid")
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, many, atol=0, rtol=0)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_backward_matches_reference(device, padding, dtype):
    x, y = pair((2, 2, 23, 19), dtype, device, seed=4)
    x, y = (x / 255).requires_grad_(), (y / 255).requires_grad_()
    w = gaussian_window(7, 1.5)
    g = torch.Generator().manual_seed(5)
    gs, gc = torch.randn(2, 2, generator=g, dtype=dtype).to(device), torch.randn(2, 2, generator=g, dtype=dtype).to(device)
    got = _ops.ssim_stats(x, y, w, 1e-4, 9e-4, padding)
    dx, dy = torch.autograd.grad((got[0] * gs + got[1] * gc).sum(), (x, y))
    xd, yd = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    want = reference(xd, yd, w, 1e-4, 9e-4, padding)
    ex, ey = torch.autograd.grad((want[0] * gs.double() + want[1] * gc.double()).sum(), (xd, yd))
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    scale = ex.abs().max().item()
    assert dx.dtype == dtype
    torch.testing.assert_close(dx.double(), ex, atol=tol * scale, rtol=0)
    torch.testing.assert_close(dy.double(), ey, atol=tol * scale, rtol=0)


def mixed_pair(shape, dtype, device, seed=7):
    """y tracks x on the right and is its negative on the left: the cs map is negative on about a third of it."""
    x, y = pair(shape, torch.float64, device, seed)
    split = shape[-1] // 3
    y[..., :split] = 255 - x[..., :split]
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("padding", ["valid", "symmetric", "zeros"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.uint8])
def test_nonnegative_cs_matches_reference(device, padding, dtype):
    """pyiqa's per-pixel clamp of cs at 0 (nonnegative_cs): forward on every input dtype, backward on floats."""
    x, y = mixed_pair((2, 3, 37, 61), dtype, device)
    w = gaussian_window(11, 1.5)
    plain = _ops.ssim_stats(x, y, w, C1, C2, padding)
    got = _ops.ssim_stats(x, y, w, C1, C2, padding, nonnegative_cs=True)
    want = reference(x.double(), y.double(), w, C1, C2, padding, nonnegative_cs=True)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    for g_, w_, p_ in zip(got, want, plain):
        torch.testing.assert_close(g_.double(), w_, atol=tol, rtol=0)
        assert (g_ > p_ + 1e-3).all()  # the clamp changed every plane's mean
    if dtype == torch.uint8:
        return
    x, y = (x / 255).requires_grad_(), (y / 255).requires_grad_()
    xd, yd = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    got = _ops.ssim_stats(x, y, w, 1e-4, 9e-4, padding, nonnegative_cs=True)
    want = reference(xd, yd, w, 1e-4, 9e-4, padding, nonnegative_cs=True)
    dx, dy = torch.autograd.grad((got[0] + 0.5 * got[1]).sum(), (x, y))
    ex, ey = torch.autograd.grad((want[0] + 0.5 * want[1]).sum(), (xd, yd))
    scale = ex.abs().max().item()
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    torch.testing.assert_close(dx.double(), ex, atol=tol * scale, rtol=0)
    torch.testing.assert_close(dy.double(), ey, atol=tol * scale, rtol=0)


@pytest.mark.parametrize("padding", ["valid", "symmetric", "zeros"])
def test_gradcheck(device, padding):
    x, y = pair((1, 2, 9, 10), torch.float64, device, seed=6)
    x, y = (x / 255).requires_grad_(), (y / 255).requires_grad_()
    fn = lambda a, b: _ops.ssim_stats(a, b, gaussian_window(5, 1.0), 1e-4, 9e-4, padding)
    assert torch.autograd.gradcheck(fn, (x, y))


def test_gradient_only_for_one_input(device):
    x, y = pair((1, 1, 20, 20), torch.float64, device)
    x = x.requires_grad_()
    s, _ = _ops.ssim_stats(x, y, gaussian_window(), C1, C2, "valid")
    (dx,) = torch.autograd.grad(s.sum(), (x,))
    assert dx.shape == x.shape and torch.isfinite(dx).all()


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(device, requires_grad):
    x, y = pair((2, 2, 14, 13), torch.float64, device)
    x, y = (x / 255).requires_grad_(requires_grad), (y / 255).requires_grad_(requires_grad)
    torch.library.opcheck(torch.ops.turboiqa.ssim_stats.default,
                          (x, y, gaussian_window(5, 1.0), 1e-4, 9e-4, "symmetric", 1.0))
    if not requires_grad:
        xu, yu = pair((1, 3, 12, 15), torch.uint8, device)
        torch.library.opcheck(torch.ops.turboiqa.ssim_stats.default,
                              (xu, yu, gaussian_window(), C1, C2, "valid", 1.0))
    torch.library.opcheck(torch.ops.turboiqa.ssim_stats.default,
                          (x, y, gaussian_window(5, 1.0), 1e-4, 9e-4, "valid", 1.0, True))


def test_op_errors():
    x = torch.rand(1, 1, 20, 20)
    with pytest.raises(RuntimeError, match="same shape"):
        torch.ops.turboiqa.ssim_stats(x, torch.rand(1, 1, 20, 21), gaussian_window(), 1e-4, 9e-4, "valid", 1.0)
    with pytest.raises(RuntimeError, match="odd"):
        torch.ops.turboiqa.ssim_stats(x, x, [0.5, 0.5], 1e-4, 9e-4, "valid", 1.0)
    with pytest.raises(RuntimeError, match="smaller than the 11x11 window"):
        torch.ops.turboiqa.ssim_stats(x[..., :8], x[..., :8], gaussian_window(), 1e-4, 9e-4, "valid", 1.0)
    with pytest.raises(RuntimeError, match="padding must be"):
        torch.ops.turboiqa.ssim_stats(x, x, gaussian_window(), 1e-4, 9e-4, "mirror", 1.0)
    with pytest.raises(RuntimeError, match="N x C x H x W"):
        torch.ops.turboiqa.ssim_stats(x[0], x[0], gaussian_window(), 1e-4, 9e-4, "valid", 1.0)


@pytest.mark.parametrize("sizes", [(0, 2), (1, 2), (2, 0), (2, 5)])
def test_backward_rejects_gradients_of_the_wrong_size(sizes):
    # Issue 11 #3: the CPU entry read one value per plane without checking (size 0: SIGSEGV; size 1: |dx| ~ 1e26).
    x, y = torch.rand(1, 2, 20, 20, dtype=torch.float64), torch.rand(1, 2, 20, 20, dtype=torch.float64)
    grads = [torch.ones(n, dtype=torch.float64) for n in sizes]
    with pytest.raises(RuntimeError, match="expected 2 gradient values"):
        torch.ops.turboiqa._ssim_stats_backward(*grads, x, y, gaussian_window(), 1e-4, 9e-4, "valid", 1.0)
    with pytest.raises(RuntimeError, match="gradients must be floating point"):
        torch.ops.turboiqa._ssim_stats_backward(torch.ones(2, dtype=torch.long), torch.ones(2), x, y,
                                                gaussian_window(), 1e-4, 9e-4, "valid", 1.0)


def test_torch_compile_fullgraph():
    import turboiqa

    x, y = pair((2, 1, 40, 40), torch.float32, "cpu")
    fn = torch.compile(lambda a, b: _ops.ssim_stats(a, b, gaussian_window(), C1, C2, "valid")[0], fullgraph=True,
                       backend="eager")
    torch.testing.assert_close(fn(x, y), _ops.ssim_stats(x, y, gaussian_window(), C1, C2, "valid")[0])
    assert turboiqa.HAVE_NATIVE


def test_reference_twin_uses_shifted_moments():
    # Issue 11 #7: the float32 twin formed E[x²] - μ² on raw samples (1e-5 off on bright, nearly flat content, and
    # SSIM > 1 in some cases); like the kernels it now subtracts a representative level first.
    from turboiqa.reference.ssim_stats import ssim_stats as reference

    g = torch.Generator().manual_seed(0)
    for peak in (1.0, 255.0, 65535.0):
        x = (0.9 + 1e-3 * torch.rand(2, 1, 64, 64, generator=g, dtype=torch.float64)) * peak
        y = (0.9 + 1e-3 * torch.rand(2, 1, 64, 64, generator=g, dtype=torch.float64)) * peak
        c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
        for a, b in ((x, x), (x, y)):
            want = reference(a, b, gaussian_window(), c1, c2, "valid")
            got = reference(a.float(), b.float(), gaussian_window(), c1, c2, "valid")
            for g32, g64 in zip(got, want):
                assert (g32.double() - g64).abs().max().item() < 1e-6
                assert g32.max().item() <= 1.0 + 1e-7


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_ssim_and_ms_ssim_symmetric_bit_for_bit(dtype, backend, device):
    # Issue 12: piq asserts loss(x, y) == loss(y, x) exactly; the kernel's x-only shift and a contracted
    # mu_x² + mu_y² (fma) made float32 MS-SSIM differ by up to 3e-5 relative under a swap.
    import turboiqa

    g = torch.Generator().manual_seed(7)
    for h, w in ((181, 203), (197, 250), (64, 77)):
        x = torch.rand(2, 3, h, w, generator=g, dtype=dtype)
        y = (x + 0.2 * torch.randn(x.shape, generator=g, dtype=dtype)).clamp(0, 1)
        x, y = x.to(device), y.to(device)
        for convention in ("piq", "ssim_index", "pytorch_msssim", "matlab"):
            for fn in (turboiqa.ssim, turboiqa.ms_ssim):
                if fn is turboiqa.ms_ssim and (min(h, w) < 176 or convention == "ssim_index"):
                    continue
                a = fn(x, y, 1.0, reduction="none", convention=convention, backend=backend)
                b = fn(y, x, 1.0, reduction="none", convention=convention, backend=backend)
                assert torch.equal(a, b), (fn.__name__, convention, (h, w), (a - b).abs().max().item())
        if backend == "native":  # the raw operator too: both outputs, per plane
            ab = _ops.ssim_stats(x, y, gaussian_window(), 1e-4, 9e-4, "symmetric")
            ba = _ops.ssim_stats(y, x, gaussian_window(), 1e-4, 9e-4, "symmetric")
            assert all(torch.equal(p, q) for p, q in zip(ab, ba))
