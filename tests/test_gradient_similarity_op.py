"""The fused gradient-similarity operator (csrc/gradient_similarity.h) against its PyTorch twin
(turboiqa.reference.gradient_similarity): forward and backward, both paddings and outputs, Prewitt/Scharr/Sobel
taps, odd sizes, batches, dtypes, thread counts, opcheck, gradcheck, torch.compile and argument errors; the native
backward (_gradient_similarity_backward) against the twin's vjp; the CUDA kernels against the CPU (GPU only)."""
import pytest
import torch
from turboiqa import _ops
from turboiqa.reference.gradient_similarity import gradient_similarity as reference

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="compiled extension not available")

PREWITT = ((1.0, 1.0, 1.0), 1 / 3)
SCHARR = ((3.0, 10.0, 3.0), 1 / 16)
SOBEL = ((1.0, 2.0, 1.0), 1 / 4)
ASYM = ((1.0, 2.0, 4.0), 0.2)  # no real filter: an asymmetric smoothing catches a tap taken from the wrong side


def native(x, y, *args):
    return _ops.gradient_similarity(x, y, *args, backend="native")


def pair(shape, dtype=torch.float64, seed=0):
    """Two 0–255 images: smooth content plus noise (gradients of every size, some flat-ish regions)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(shape, generator=g, dtype=torch.float64)
    base = torch.nn.functional.avg_pool2d(base, 3, 1, 1, count_include_pad=False)
    x = base * 255
    y = (base + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1) * 255
    return x.to(dtype), y.to(dtype)


def args_for(taps, c=170.0, alpha=0.0, eps=0.0, padding="zeros", output="map"):
    return (taps[0], taps[1], c, alpha, eps, padding, output)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("output", ["map", "moments"])
@pytest.mark.parametrize("shape", [(1, 1, 23, 30), (3, 2, 17, 9), (2, 3, 5, 70), (1, 1, 1, 4)])
def test_forward_matches_twin(dtype, padding, output, shape):
    if padding == "valid" and min(shape[-2:]) < 3:
        pytest.skip("'valid' needs 3×3")
    x, y = pair(shape, dtype)
    for taps, alpha, eps in ((PREWITT, 0.0, 0.0), (SCHARR, 0.0, 1e-3), (SOBEL, 0.5, 0.0), (ASYM, 0.5, 1e-3)):
        a = args_for(taps, 170.0, alpha, eps, padding, output)
        got, want = native(x, y, *a), reference(x, y, *a)
        assert got.dtype == want.dtype and got.shape == want.shape
        tol = 1e-13 if dtype == torch.float64 else 2e-6
        torch.testing.assert_close(got, want, rtol=tol, atol=tol * (want.abs().max().item() if output == "moments"
                                                                   else 1.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wide_rows_moments(dtype):
    """Rows wider than the vector loops of the float64 row sums (two accumulators of full-width vectors), with a
    tail of every length 0..17, and planes taller than the prefetch distance: the moments against the twin."""
    for width in range(240, 258):
        x, y = pair((1, 2, 37, width), dtype, seed=width)
        for padding in ("zeros", "valid"):
            a = args_for(PREWITT, 170.0, 0.0, 0.065, padding, "moments")
            got, want = native(x, y, *a), reference(x, y, *a)
            tol = 1e-13 if dtype == torch.float64 else 2e-6
            torch.testing.assert_close(got, want, rtol=tol, atol=tol * want.abs().max().item())


def test_flat_planes_and_identical_images():
    x = torch.full((1, 1, 9, 11), 128.0)
    torch.testing.assert_close(native(x, x, *args_for(PREWITT)), torch.ones_like(x))  # c / c where both are flat
    x, _ = pair((2, 1, 16, 16))
    torch.testing.assert_close(native(x, x, *args_for(PREWITT)), torch.ones_like(x), rtol=1e-15, atol=1e-15)


def test_real_images(tid_pairs):
    """Twin parity on TID2013 lumas (0–255), float32 and float64, map and moments."""
    from turboiqa.colour import BT601

    d, r = tid_pairs[0]
    for dtype in (torch.float32, torch.float64):
        x, y = (sum(c * t[:, k:k + 1].to(dtype) for k, c in enumerate(BT601)) for t in (d, r))
        for output in ("map", "moments"):
            a = args_for(PREWITT, output=output)
            tol = 1e-12 if dtype == torch.float64 else 1e-5
            torch.testing.assert_close(native(x, y, *a), reference(x, y, *a), rtol=tol, atol=tol)


def test_uint8_and_half_compute_in_float32():
    x, y = pair((1, 2, 12, 13), torch.float64)
    xu, yu = x.round().to(torch.uint8), y.round().to(torch.uint8)
    got = native(xu, yu, *args_for(PREWITT))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, reference(xu.float(), yu.float(), *args_for(PREWITT)), rtol=2e-6, atol=2e-6)
    assert native(x.half(), y.half(), *args_for(PREWITT)).dtype == torch.float32


def test_noncontiguous_input():
    x, y = pair((1, 3, 20, 24), torch.float32)
    xt, yt = x.transpose(-1, -2), y.transpose(-1, -2)
    torch.testing.assert_close(native(xt, yt, *args_for(SCHARR)), native(xt.contiguous(), yt.contiguous(),
                                                                           *args_for(SCHARR)))


def test_batch_equals_single_images():
    x, y = pair((3, 2, 40, 33), torch.float32)
    for output in ("map", "moments"):
        whole = native(x, y, *args_for(PREWITT, output=output))
        for i in range(3):
            one = native(x[i:i + 1], y[i:i + 1], *args_for(PREWITT, output=output))
            torch.testing.assert_close(whole[i:i + 1], one, rtol=0, atol=0)


def test_result_independent_of_thread_count():
    x, y = pair((2, 1, 300, 301), torch.float32)  # several strips and tasks
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [native(x, y, *args_for(PREWITT, output=o)) for o in ("map", "moments")]
        torch.set_num_threads(2)
        two = [native(x, y, *args_for(PREWITT, output=o)) for o in ("map", "moments")]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two):
        assert torch.equal(a, b)


@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("output", ["map", "moments"])
def test_backward_matches_twin(padding, output):
    x, y = pair((2, 1, 13, 18), torch.float64)
    a = args_for(PREWITT, 170.0, 0.5 if output == "moments" else 0.0, 1e-3, padding, output)
    grad = torch.randn(reference(x, y, *a).shape, dtype=torch.float64)
    xs = [t.clone().requires_grad_() for t in (x, y)]
    xr = [t.clone().requires_grad_() for t in (x, y)]
    got = torch.autograd.grad(native(*xs, *a), xs, grad)
    want = torch.autograd.grad(reference(*xr, *a), xr, grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_gradient_only_for_one_input():
    x, y = pair((1, 1, 10, 12), torch.float64)
    x.requires_grad_()
    (dx,) = torch.autograd.grad(native(x, y, *args_for(PREWITT, output="moments")).sum(), (x,))
    assert dx.shape == x.shape and torch.isfinite(dx).all()


@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("output", ["map", "moments"])
def test_gradcheck(padding, output):
    x, y = pair((1, 2, 7, 8), torch.float64)
    x, y = x.requires_grad_(), y.requires_grad_()
    a = args_for(SOBEL, 170.0, 0.5, 1.0, padding, output)  # eps > 0: the roots are smooth everywhere
    assert torch.autograd.gradcheck(lambda p, q: native(p, q, *a), (x, y))


@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("output", ["map", "moments"])
def test_gradcheck_alpha_zero_no_eps(padding, output):
    """GMSD's own setting (α = 0, eps = 0) on non-flat planes: every M > 0, the plain √ branch."""
    x, y = pair((2, 1, 6, 7), torch.float64, seed=3)
    x, y = x.requires_grad_(), y.requires_grad_()
    a = args_for(PREWITT, 170.0, 0.0, 0.0, padding, output)
    assert torch.autograd.gradcheck(lambda p, q: native(p, q, *a), (x, y))


def twin_vjp(x, y, a, grad):
    leaves = [t.detach().clone().requires_grad_() for t in (x, y)]
    return torch.autograd.grad(reference(*leaves, *a), leaves, grad)


def backward_op(grad, x, y, a):
    taps, scale, *rest = a
    return torch.ops.turboiqa._gradient_similarity_backward(grad, x, y, list(taps), scale, *rest)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("output", ["map", "moments"])
@pytest.mark.parametrize("taps,alpha,eps", [(PREWITT, 0.0, 0.0), (SCHARR, 0.5, 1e-3), (SOBEL, 0.9, 0.0),
                                            (ASYM, 0.5, 1e-3)])
@pytest.mark.parametrize("shape", [(2, 3, 17, 23), (3, 1, 70, 41), (1, 2, 3, 5)])
def test_native_backward_matches_twin_vjp(dtype, padding, output, taps, alpha, eps, shape):
    """The backward operator = the twin's vjp: odd sizes, batches, several strips (70 rows), both paddings and
    outputs, α = 0 and α > 0, with and without eps."""
    x, y = pair(shape, dtype, seed=1)
    a = args_for(taps, 170.0, alpha, eps, padding, output)
    out = reference(x, y, *a)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(out.dtype)
    got = backward_op(grad, x, y, a)
    want = twin_vjp(x.double(), y.double(), a, grad.double())
    # float32: against the float64 twin, to 3e-5 of the largest gradient (the float32 twin's own error there is up
    # to 1.7e-5 of it; the native backward's 1.3e-5)
    rtol, atol = (1e-10, 1e-10) if dtype == torch.float64 else (1e-5, 3e-5)
    for g, w in zip(got, want):
        assert g.dtype == dtype and g.shape == x.shape
        torch.testing.assert_close(g.double(), w, rtol=rtol, atol=atol * w.abs().max().item())


def test_native_backward_on_real_images(tid_pairs):
    from turboiqa.colour import BT601

    # eps = 0 makes ∂q/∂(gx, gy) ∝ (gx, gy)/|g| discontinuous at g = 0: where a float luma is flat up to rounding
    # (|g| ~ 1e-14) both sides give the direction of a rounding residue. So: integer lumas (rgb2gray_uint8-like:
    # Prewitt responses exact, flat is exactly 0) with eps = 0, and the float lumas with a tiny eps.
    d, r = tid_pairs[0]
    x, y = (sum(c * t[:, k:k + 1].double() for k, c in enumerate(BT601)) for t in (d, r))
    for output, eps, (x, y) in (("map", 0.0, (x.round(), y.round())), ("moments", 0.0, (x.round(), y.round())),
                                ("map", 1e-6, (x, y)), ("moments", 1e-6, (x, y))):
        a = args_for(PREWITT, eps=eps, output=output)
        grad = torch.ones(reference(x, y, *a).shape, dtype=torch.float64)
        for g, w in zip(backward_op(grad, x, y, a), twin_vjp(x, y, a, grad)):
            torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10 * w.abs().max().item())


def test_autograd_uses_native_backward(monkeypatch):
    """The autograd of the native operator calls _gradient_similarity_backward, not the twin."""
    import turboiqa.reference.gradient_similarity as twin

    x, y = pair((1, 1, 12, 10), torch.float64)
    x.requires_grad_()
    out = native(x, y, *args_for(PREWITT, output="moments"))
    monkeypatch.setattr(twin, "gradient_similarity", lambda *a, **k: pytest.fail("twin called in backward"))
    (dx,) = torch.autograd.grad(out.sum(), (x,))
    assert torch.isfinite(dx).all() and dx.abs().sum() > 0


def test_backward_independent_of_thread_count():
    x, y = pair((2, 1, 300, 131), torch.float32)  # several strips and tasks
    results = {}
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            for output in ("map", "moments"):
                a = args_for(SCHARR, 225.0, 0.5, 0.0, "valid", output)
                grad = torch.rand(reference(x, y, *a).shape, generator=torch.Generator().manual_seed(5),
                                  dtype=torch.float64).to(torch.float64 if output == "moments" else torch.float32)
                results[n, output] = backward_op(grad, x, y, a)
    finally:
        torch.set_num_threads(threads)
    for output in ("map", "moments"):
        for a, b in zip(results[1, output], results[2, output]):
            assert torch.equal(a, b)


def test_backward_uint8_half_and_noncontiguous():
    x, y = pair((1, 2, 12, 13), torch.float64)
    a = args_for(PREWITT)
    grad = torch.rand(1, 2, 12, 13)
    dx, dy = backward_op(grad, x.round().to(torch.uint8), y.round().to(torch.uint8), a)
    assert dx.dtype == torch.float32  # uint8: the compute dtype
    want = twin_vjp(x.round(), y.round(), a, grad.double())
    torch.testing.assert_close(dx.double(), want[0], rtol=1e-5, atol=1e-5 * want[0].abs().max().item())
    assert backward_op(grad, x.half(), y.half(), a)[0].dtype == torch.float16
    xt, yt = x.transpose(-1, -2), y.transpose(-1, -2)
    gt = torch.rand(1, 2, 13, 12, dtype=torch.float64)
    for g, w in zip(backward_op(gt, xt, yt, a), backward_op(gt, xt.contiguous(), yt.contiguous(), a)):
        assert torch.equal(g, w)


def test_backward_op_errors():
    x = torch.rand(1, 1, 8, 8)
    good = ([1.0, 1.0, 1.0], 1 / 3, 170.0, 0.0, 0.0, "zeros", "map")
    op = torch.ops.turboiqa._gradient_similarity_backward
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        op(torch.rand(1, 1, 6, 6), x, x, *good)
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        op(torch.rand(1, 1, 8, 8, dtype=torch.float64), x, x, *good[:6], "moments")
    with pytest.raises(RuntimeError, match="padding must be"):
        op(torch.rand(1, 1, 8, 8), x, x, *good[:5], "reflect", "map")
    with pytest.raises(RuntimeError, match="grad must be floating point"):
        op(torch.ones(1, 1, 8, 8, dtype=torch.int32), x, x, *good)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    x, y = pair((2, 2, 9, 11), torch.float64)
    x, y = x.requires_grad_(requires_grad), y.requires_grad_(requires_grad)
    op = torch.ops.turboiqa.gradient_similarity.default
    torch.library.opcheck(op, (x, y, [1.0, 1.0, 1.0], 1 / 3, 170.0, 0.0, 0.0, "zeros", "map"))
    torch.library.opcheck(op, (x, y, [3.0, 10.0, 3.0], 1 / 16, 225.0, 0.5, 1e-3, "valid", "moments"))


def test_opcheck_backward_op():
    x, y = pair((2, 2, 9, 11), torch.float64)
    op = torch.ops.turboiqa._gradient_similarity_backward.default
    torch.library.opcheck(op, (torch.rand(2, 2, 9, 11, dtype=torch.float64), x, y, [1.0, 1.0, 1.0], 1 / 3, 170.0,
                               0.0, 0.0, "zeros", "map"))
    torch.library.opcheck(op, (torch.rand(2, 2, 2, dtype=torch.float64), x.float(), y.float(), [3.0, 10.0, 3.0],
                               1 / 16, 225.0, 0.5, 1e-3, "valid", "moments"))


def test_torch_compile_fullgraph():
    x, y = pair((2, 1, 40, 40), torch.float32)
    fn = torch.compile(lambda a, b: _ops.gradient_similarity(a, b, *args_for(PREWITT, output="moments")),
                       fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(x, y), native(x, y, *args_for(PREWITT, output="moments")))


def test_op_errors_name_the_argument():
    x = torch.rand(1, 1, 8, 8)
    op = torch.ops.turboiqa.gradient_similarity
    good = ([1.0, 1.0, 1.0], 1 / 3, 170.0, 0.0, 0.0, "zeros", "map")
    cases = [
        ((x, torch.rand(1, 1, 8, 9)), good, "same shape"),
        ((x[0], x[0]), good, "N x C x H x W"),
        ((x, x.double()), good, "same dtype"),
        ((x, x), ([1.0, 1.0], *good[1:]), "smooth must hold 3 taps"),
        ((x, x), (good[0], 0.0, *good[2:]), "scale must be > 0"),
        ((x, x), (*good[:2], 0.0, *good[3:]), "c must be > 0"),
        ((x, x), (*good[:3], 1.0, *good[4:]), "alpha must be in"),
        ((x, x), (*good[:4], -1.0, *good[5:]), "eps must be >= 0"),
        ((x, x), (*good[:5], "reflect", "map"), "padding must be"),
        ((x, x), (*good[:6], "std"), "output must be"),
        ((x[..., :2, :], x[..., :2, :]), (*good[:5], "valid", "map"), "at least 3x3"),
    ]
    for tensors, args, message in cases:
        with pytest.raises(RuntimeError, match=message):
            op(*tensors, *args)
        with pytest.raises((ValueError, RuntimeError)):
            reference(*tensors, *args)


def test_meta_shapes():
    x = torch.empty(2, 3, 10, 12, device="meta")
    assert torch.ops.turboiqa.gradient_similarity(x, x, [1.0, 1.0, 1.0], 1.0, 1.0, 0.0, 0.0, "valid",
                                                  "map").shape == (2, 3, 8, 10)
    m = torch.ops.turboiqa.gradient_similarity(x, x, [1.0, 1.0, 1.0], 1.0, 1.0, 0.0, 0.0, "zeros", "moments")
    assert m.shape == (2, 3, 2) and m.dtype == torch.float64


# ------------------------------------------------------------------------------------------- CUDA (GPU only)

needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and _ops._has_op("_gradient_similarity_backward")
         and torch._C._dispatch_has_kernel_for_dispatch_key("turboiqa::_gradient_similarity_backward", "CUDA")),
    reason="needs a GPU and a CUDA build")


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("output", ["map", "moments"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 4), (2, 3, 17, 23), (1, 2, 70, 300)])
def test_cuda_forward_equals_cpu(dtype, padding, output, shape):
    if padding == "valid" and min(shape[-2:]) < 3:
        pytest.skip("'valid' needs 3×3")
    x, y = pair(shape, torch.float64)
    if dtype == torch.uint8:
        x, y = x.round().to(dtype), y.round().to(dtype)
    else:
        x, y = x.to(dtype), y.to(dtype)
    for taps, alpha, eps in ((PREWITT, 0.0, 0.0), (SCHARR, 0.5, 1e-3), (ASYM, 0.5, 1e-3)):
        a = args_for(taps, 170.0, alpha, eps, padding, output)
        want = native(x, y, *a)
        got = native(x.cuda(), y.cuda(), *a)
        assert got.is_cuda and got.dtype == want.dtype and got.shape == want.shape
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(got.cpu(), want, rtol=tol, atol=tol * (want.abs().max().item()
                                                                          if output == "moments" else 1.0))


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", ["zeros", "valid"])
@pytest.mark.parametrize("output", ["map", "moments"])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("taps", [SOBEL, ASYM])
def test_cuda_backward_equals_cpu_and_twin(dtype, padding, output, alpha, taps):
    x, y = pair((2, 3, 41, 37), dtype, seed=4)
    a = args_for(taps, 170.0, alpha, 0.0, padding, output)
    out = native(x, y, *a)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64).to(out.dtype)
    want = backward_op(grad, x, y, a)
    got = backward_op(grad.cuda(), x.cuda(), y.cuda(), a)
    twin = twin_vjp(x.double(), y.double(), a, grad.double())
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for g, w, t in zip(got, want, twin):
        assert g.is_cuda and g.dtype == dtype
        torch.testing.assert_close(g.cpu(), w, rtol=tol, atol=tol * w.abs().max().item())
        torch.testing.assert_close(g.cpu().double(), t, rtol=tol, atol=tol * t.abs().max().item())
    # through autograd, and deterministic
    xs, ys = x.cuda().requires_grad_(), y.cuda().requires_grad_()
    g1 = torch.autograd.grad(native(xs, ys, *a), (xs, ys), grad.cuda())
    g2 = torch.autograd.grad(native(xs, ys, *a), (xs, ys), grad.cuda())
    for p, q, w in zip(g1, g2, want):
        assert torch.equal(p, q)
        torch.testing.assert_close(p.cpu(), w, rtol=tol, atol=tol * w.abs().max().item())


@needs_cuda
@pytest.mark.cuda
def test_cuda_gradcheck_opcheck_and_errors():
    x, y = (t.cuda() for t in pair((1, 2, 7, 8), torch.float64))
    a = args_for(SOBEL, 170.0, 0.5, 1.0, "zeros", "moments")
    assert torch.autograd.gradcheck(lambda p, q: native(p, q, *a), (x.requires_grad_(), y.requires_grad_()))
    torch.library.opcheck(torch.ops.turboiqa.gradient_similarity.default,
                          (x.detach(), y.detach(), [1.0, 1.0, 1.0], 1 / 3, 170.0, 0.0, 0.0, "valid", "map"))
    torch.library.opcheck(torch.ops.turboiqa._gradient_similarity_backward.default,
                          (torch.rand(1, 2, 7, 8, dtype=torch.float64, device="cuda"), x.detach(), y.detach(),
                           [1.0, 1.0, 1.0], 1 / 3, 170.0, 0.0, 0.0, "zeros", "map"))
    with pytest.raises(RuntimeError, match="padding must be"):
        torch.ops.turboiqa.gradient_similarity(x, y, [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "bogus", "map")
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        torch.ops.turboiqa._gradient_similarity_backward(x[..., :4], x, y, [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "zeros",
                                                          "map")
    with pytest.raises(RuntimeError, match="same device"):
        torch.ops.turboiqa.gradient_similarity(x, y.cpu(), [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "zeros", "map")


MOMENTS_SCRIPT = """
import sys, torch, turboiqa
g = torch.Generator().manual_seed(3)
out = []
for dtype in (torch.float32, torch.float64):
    for w in (7, 16, 31, 301):
        x, y = (torch.rand(2, 3, 23, w, generator=g, dtype=torch.float64).to(dtype) for _ in range(2))
        for padding in ("zeros", "valid"):
            out.append(torch.ops.turboiqa.gradient_similarity(x, y, [1 / 3, 1 / 3, 1 / 3], 1.0, 0.0026, 0.0, 0.0,
                                                              padding, "moments"))
torch.save({"isa": turboiqa.build_info()["cpu_isa_selected"], "out": out}, sys.argv[1])
"""


@pytest.mark.skipif(not _ops._has_op("gradient_similarity"), reason="compiled op not available")
def test_moments_same_bits_on_avx2_and_avx512(tmp_path):
    """The float64 row sums use 8 lanes on every ISA: a machine's AVX2 and AVX-512 builds give the same moments
    (the baseline build has no FMA, so it rounds differently, as in the map)."""
    import os
    import subprocess
    import sys

    import turboiqa

    compiled = turboiqa.build_info()["cpu_isa_compiled"].split(",")
    results = {}
    for isa in ("avx2", "avx512"):
        if isa not in compiled:
            pytest.skip(f"{isa} not compiled here")
        path = tmp_path / f"{isa}.pt"
        env = dict(os.environ, TURBOIQA_CPU_ISA=isa, OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-c", MOMENTS_SCRIPT, str(path)], env=env, check=True)
        got = torch.load(path)
        if got["isa"] != isa:
            pytest.skip(f"this CPU cannot run the {isa} build")
        results[isa] = got["out"]
    for a, b in zip(results["avx2"], results["avx512"]):
        assert torch.equal(a, b)
