"""The native vifp_stats operator (one VIFp scale on the SSIM row machinery) against its pure-PyTorch twin:
forward, backward, registration, errors; and vif_p's native route against its plain PyTorch route."""
import pytest
import torch
from conftest import skip_missing
from turboiqa import _ops
from turboiqa.metrics import vif as V
from turboiqa.reference.vifp_stats import vifp_stats as reference

pytestmark = pytest.mark.skipif(not _ops._has_op("vifp_stats"), reason="compiled vifp_stats kernel not available")

PADDINGS = ["valid", "zeros", "symmetric", "reflect", "replicate"]
SHAPES = [(1, 1, 17, 17), (2, 3, 37, 41), (3, 1, 64, 33), (1, 2, 70, 131), (1, 1, 18, 300)]
SIGMA_NSQ, EPS = 2.0, 1e-10


def taps(n):
    return V.gaussian_taps(n)


def pair(shape, dtype, device="cpu", seed=0, noise=25.0):
    """0–255 pair: x (distorted) = y (reference) + noise, clamped."""
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(shape, generator=g, dtype=torch.float64) * 255
    y = torch.nn.functional.avg_pool2d(y.reshape(-1, 1, *shape[-2:]), 3, 1, 1, count_include_pad=False).reshape(shape)
    x = (y + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 255)
    if dtype == torch.uint8:
        x, y = x.round(), y.round()
    return x.to(dtype).to(device), y.to(dtype).to(device)


def close(got, want, tol):
    for g_, w_ in zip(got, want):
        assert g_.dtype == torch.float64
        torch.testing.assert_close(g_, w_.to(g_.device), atol=tol * max(1.0, w_.abs().max().item()), rtol=0)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference_float64(device, padding, shape):
    x, y = pair(shape, torch.float64, device)
    for n, floor_rel in ((17, 0.0), (9, 0.0), (5, 1e-12), (3, 1e-4)):
        if padding == "valid" and min(shape[-2:]) < n:
            continue
        got = _ops.vifp_stats(x, y, taps(n), SIGMA_NSQ, EPS, floor_rel, padding)
        want = reference(x, y, taps(n), SIGMA_NSQ, EPS, floor_rel, padding)
        assert got[0].shape == shape[:2]
        close(got, want, 1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("shape", SHAPES[1:4])
def test_forward_float32_matches_reference(device, dtype, shape):
    x, y = pair(shape, dtype, device, seed=2)
    for n, floor_rel in ((9, 0.0), (5, 1e-5)):
        got = _ops.vifp_stats(x, y, taps(n), SIGMA_NSQ, EPS, floor_rel, "valid")
        twin = reference(x, y, taps(n), SIGMA_NSQ, EPS, floor_rel, "valid")  # the same float32 moments
        truth = reference(x.double(), y.double(), taps(n), SIGMA_NSQ, EPS, floor_rel, "valid")
        close(got, twin, 2e-5)
        close(got, truth, 2e-5)


def test_masks_and_flat_regions(device):
    """Flat reference (no information), anti-correlated patches (g < 0), flat distortion (σx² < eps)."""
    x, y = pair((2, 1, 48, 60), torch.float64, device, seed=3)
    y[0, :, :20] = 100.0
    x[0, :, 20:30] = 255 - y[0, :, 20:30]
    x[1, :, :, :25] = 7.0
    for floor_rel in (0.0, 1e-12):
        got = _ops.vifp_stats(x, y, taps(9), SIGMA_NSQ, EPS, floor_rel, "valid")
        want = reference(x, y, taps(9), SIGMA_NSQ, EPS, floor_rel, "valid")
        close(got, want, 1e-12)
    flat = torch.full((1, 1, 20, 20), 42.0, dtype=torch.float64, device=device)
    num, den = _ops.vifp_stats(flat, flat, taps(9), SIGMA_NSQ, EPS, 0.0, "valid")
    assert num.item() == 0 and den.item() == 0


def test_real_images(device, tid_i01):
    d, r = tid_i01[0].double().to(device), tid_i01[1].double().to(device)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
        x, y = d.to(dtype), r.to(dtype)
        for n in (17, 9):
            got = _ops.vifp_stats(x, y, taps(n), SIGMA_NSQ, EPS, 0.0, "valid")
            want = reference(x.double(), y.double(), taps(n), SIGMA_NSQ, EPS, 0.0, "valid")
            close(got, want, tol)


def test_result_independent_of_thread_count():
    x, y = pair((2, 1, 300, 257), torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _ops.vifp_stats(x, y, taps(17), SIGMA_NSQ, EPS, 0.0, "valid")
        torch.set_num_threads(max(2, threads))
        many = _ops.vifp_stats(x, y, taps(17), SIGMA_NSQ, EPS, 0.0, "valid")
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, many, atol=0, rtol=0)


@pytest.mark.parametrize("padding", ["valid", "symmetric", "zeros"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("floor_rel", [0.0, 1e-4])
def test_backward_matches_reference(device, padding, dtype, floor_rel):
    x, y = pair((2, 2, 23, 19), dtype, device, seed=4)
    x, y = x.requires_grad_(), y.requires_grad_()
    g = torch.Generator().manual_seed(5)
    gn, gd = torch.randn(2, 2, generator=g, dtype=torch.float64), torch.randn(2, 2, generator=g, dtype=torch.float64)
    gn, gd = gn.to(device), gd.to(device)
    got = _ops.vifp_stats(x, y, taps(5), SIGMA_NSQ, EPS, floor_rel, padding)
    dx, dy = torch.autograd.grad((got[0] * gn + got[1] * gd).sum(), (x, y))
    xd, yd = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    want = reference(xd, yd, taps(5), SIGMA_NSQ, EPS, floor_rel, padding)
    ex, ey = torch.autograd.grad((want[0] * gn + want[1] * gd).sum(), (xd, yd))
    tol = 1e-10 if dtype == torch.float64 else 2e-3
    assert dx.dtype == dtype
    torch.testing.assert_close(dx.double(), ex, atol=tol * ex.abs().max().item(), rtol=0)
    torch.testing.assert_close(dy.double(), ey, atol=tol * ey.abs().max().item(), rtol=0)


def test_backward_on_real_images(device, tid_i01):
    d, r = tid_i01[0][..., :90, :110].double().to(device), tid_i01[1][..., :90, :110].double().to(device)
    x, y = d.requires_grad_(), r.requires_grad_()
    num, den = _ops.vifp_stats(x, y, taps(9), SIGMA_NSQ, EPS, 0.0, "valid")
    dx, dy = torch.autograd.grad((num / den).sum(), (x, y))
    xd, yd = d.detach().requires_grad_(), r.detach().requires_grad_()
    num, den = reference(xd, yd, taps(9), SIGMA_NSQ, EPS, 0.0, "valid")
    ex, ey = torch.autograd.grad((num / den).sum(), (xd, yd))
    torch.testing.assert_close(dx, ex, atol=1e-10 * ex.abs().max().item(), rtol=0)
    torch.testing.assert_close(dy, ey, atol=1e-10 * ey.abs().max().item(), rtol=0)


@pytest.mark.parametrize("floor_rel", [0.0, 1e-3])
def test_gradcheck(device, floor_rel):
    x, y = pair((1, 2, 9, 10), torch.float64, device, seed=6)
    x, y = x.requires_grad_(), y.requires_grad_()
    fn = lambda a, b: _ops.vifp_stats(a, b, taps(5), SIGMA_NSQ, EPS, floor_rel, "symmetric")
    assert torch.autograd.gradcheck(fn, (x, y))


def test_gradient_only_for_one_input(device):
    x, y = pair((1, 1, 20, 20), torch.float64, device)
    x = x.requires_grad_()
    num, _ = _ops.vifp_stats(x, y, taps(9), SIGMA_NSQ, EPS, 0.0, "valid")
    (dx,) = torch.autograd.grad(num.sum(), (x,))
    assert dx.shape == x.shape and torch.isfinite(dx).all()


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(device, requires_grad):
    x, y = pair((2, 2, 14, 13), torch.float64, device)
    x, y = x.requires_grad_(requires_grad), y.requires_grad_(requires_grad)
    op = torch.ops.turboiqa.vifp_stats.default
    torch.library.opcheck(op, (x, y, list(taps(5)), SIGMA_NSQ, EPS, 0.0, "symmetric"))
    torch.library.opcheck(op, (x, y, list(taps(3)), SIGMA_NSQ, EPS, 1e-4, "valid"))
    if not requires_grad:
        xu, yu = pair((1, 3, 12, 15), torch.uint8, device)
        torch.library.opcheck(op, (xu, yu, list(taps(9)), SIGMA_NSQ, EPS, 0.0, "valid"))


def test_torch_compile_fullgraph():
    x, y = pair((2, 1, 40, 40), torch.float32)
    w = list(taps(9))
    fn = torch.compile(lambda a, b: _ops.vifp_stats(a, b, w, SIGMA_NSQ, EPS, 0.0, "valid")[0], fullgraph=True,
                       backend="eager")
    torch.testing.assert_close(fn(x, y), _ops.vifp_stats(x, y, w, SIGMA_NSQ, EPS, 0.0, "valid")[0])


def test_op_errors():
    x = torch.rand(1, 1, 20, 20)
    w = list(taps(9))
    op = torch.ops.turboiqa.vifp_stats
    with pytest.raises(RuntimeError, match="vifp_stats: x and y must have the same shape"):
        op(x, torch.rand(1, 1, 20, 21), w, 2.0, 1e-10, 0.0, "valid")
    with pytest.raises(RuntimeError, match="vifp_stats: window length must be odd"):
        op(x, x, [0.5, 0.5], 2.0, 1e-10, 0.0, "valid")
    with pytest.raises(RuntimeError, match="smaller than the 9x9 window"):
        op(x[..., :8], x[..., :8], w, 2.0, 1e-10, 0.0, "valid")
    with pytest.raises(RuntimeError, match="vifp_stats: padding must be"):
        op(x, x, w, 2.0, 1e-10, 0.0, "mirror")
    with pytest.raises(RuntimeError, match="N x C x H x W"):
        op(x[0], x[0], w, 2.0, 1e-10, 0.0, "valid")
    with pytest.raises(RuntimeError, match="sigma_nsq must be > 0"):
        op(x, x, w, 0.0, 1e-10, 0.0, "valid")
    with pytest.raises(RuntimeError, match="eps must be > 0"):
        op(x, x, w, 2.0, 0.0, 0.0, "valid")
    with pytest.raises(RuntimeError, match="floor_rel must be >= 0"):
        op(x, x, w, 2.0, 1e-10, -1.0, "valid")
    grads = [torch.ones(3, dtype=torch.float64)] * 2
    with pytest.raises(RuntimeError, match="expected 1 gradient values"):
        torch.ops.turboiqa._vifp_stats_backward(*grads, x, x, w, 2.0, 1e-10, 0.0, "valid")


# ------------------------------------------------------------------------------------- decimate2


needs_decimate = pytest.mark.skipif(not _ops._has_op("decimate2"), reason="no decimate2 kernel")


@needs_decimate
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(1, 1, 41, 41), (2, 3, 40, 57), (1, 2, 100, 77)])
def test_decimate2_matches_slice_passes(dtype, shape):
    x, _ = pair(shape, dtype, seed=10)
    for n in (9, 5, 3):
        got = _ops.decimate2(x, taps(n))
        want = _ops.decimate2(x, taps(n), backend="reference")
        assert got.shape == want.shape == (*shape[:2], (shape[2] - n) // 2 + 1, (shape[3] - n) // 2 + 1)
        torch.testing.assert_close(got, want, atol=(1e-12 if dtype == torch.float64 else 1e-4), rtol=0)


@needs_decimate
def test_decimate2_backward_and_registration():
    x = torch.rand(2, 2, 13, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: _ops.decimate2(a, taps(5)), (x,))
    torch.library.opcheck(torch.ops.turboiqa.decimate2.default, (x, list(taps(5))))
    big = torch.rand(1, 1, 300, 257)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _ops.decimate2(big, taps(9))
        torch.set_num_threads(max(2, threads))
        many = _ops.decimate2(big, taps(9))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)
    with pytest.raises(RuntimeError, match="decimate2: x must be float32 or float64"):
        torch.ops.turboiqa.decimate2(big.to(torch.uint8), list(taps(9)))
    with pytest.raises(RuntimeError, match="decimate2: window length must be odd"):
        torch.ops.turboiqa.decimate2(big, [0.5, 0.5])
    with pytest.raises(RuntimeError, match="smaller than the 9x9 window"):
        torch.ops.turboiqa.decimate2(big[..., :8], list(taps(9)))
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        torch.ops.turboiqa._decimate2_backward(torch.ones(1, 1, 3, 3), big, list(taps(9)))


@pytest.mark.cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and _ops._has_op("decimate2")
                         and torch._C._dispatch_has_kernel_for_dispatch_key("turboiqa::decimate2", "CUDA")),
                    reason="needs a GPU and a CUDA build")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(1, 1, 9, 9), (2, 3, 40, 57), (1, 2, 100, 77)])
def test_decimate2_cuda_equals_cpu(dtype, shape):
    x, _ = pair(shape, dtype, seed=11)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    for n in (9, 5, 3):
        want = _ops.decimate2(x, taps(n))
        got = _ops.decimate2(x.cuda(), taps(n), backend="native")
        assert got.is_cuda and got.dtype == want.dtype
        torch.testing.assert_close(got.cpu(), want, atol=tol, rtol=0)
        grad = torch.rand(want.shape, dtype=dtype)
        gw = torch.ops.turboiqa._decimate2_backward(grad, x, list(taps(n)))
        gg = torch.ops.turboiqa._decimate2_backward(grad.cuda(), x.cuda(), list(taps(n)))
        torch.testing.assert_close(gg.cpu(), gw, atol=tol, rtol=0)
    xc = x.cuda().double().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: _ops.decimate2(a, taps(5)), (xc[:1, :1, :13, :12].detach()
                                                                            .requires_grad_(),))
    torch.library.opcheck(torch.ops.turboiqa.decimate2.default, (xc.detach(), list(taps(5))))
    with pytest.raises(RuntimeError, match="window length must be odd"):
        torch.ops.turboiqa.decimate2(xc.detach(), [0.5, 0.5])


# ------------------------------------------------------------------------------------- vif_p: native vs torch


@pytest.mark.parametrize("convention", sorted(V.VIFP_CONVENTIONS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_vif_p_native_matches_reference_route(convention, dtype):
    x, y = pair((2, 3, 97, 83), dtype, seed=8)
    x, y = x / 255, y / 255
    for color in V.VIFP_COLORS:
        got = V.vif_p(x, y, 1.0, "none", convention=convention, color=color)
        want = V.vif_p(x, y, 1.0, "none", convention=convention, color=color, backend="reference")
        tol = 1e-12 if dtype == torch.float64 else 2e-5
        torch.testing.assert_close(got.double(), want.double(), atol=tol, rtol=0)


def test_vif_p_gradient_native_matches_reference_route():
    x, y = pair((1, 1, 60, 64), torch.float64, seed=9)
    x, y = (x / 255).requires_grad_(), y / 255
    (dx,) = torch.autograd.grad(V.vif_p(x, y), (x,))
    (ex,) = torch.autograd.grad(V.vif_p(x, y, backend="reference"), (x,))
    torch.testing.assert_close(dx, ex, atol=1e-10 * ex.abs().max().item(), rtol=0)
