"""The native cvvdp_band_pool operator (one ColorVideoVDP band fused: castleCSF, 'mult-mutual' masking, the band's
pooling) against its pure-PyTorch twin: forward, backward, registration, errors; and cvvdp's native route against its
PyTorch route (JOD and gradients)."""
import pytest
import torch
from turboiqa import _ops
from turboiqa.metrics import cvvdp as CV
from turboiqa.reference.cvvdp_band import band_difference as reference_difference
from turboiqa.reference.cvvdp_band import cvvdp_band_pool as reference
from turboiqa.reference.cvvdp_band import pyramid_step as reference_pyramid
from turboiqa.reference.cvvdp_band import srgb_to_dkl as reference_srgb
from turboiqa.reference.cvvdp_band import weber_contrast as reference_weber

pytestmark = pytest.mark.skipif(not _ops._has_op("cvvdp_band_pool"), reason="compiled cvvdp_band_pool not available")

# (N, C, H, W): blurred and unblurred (H or W <= 6) bands, several 64-row strips, 3 and 4 (video) channels
SHAPES = [(1, 3, 37, 29), (2, 3, 70, 131), (1, 4, 33, 20), (2, 3, 5, 9), (1, 3, 7, 6), (2, 1, 8, 8), (1, 3, 150, 77)]


def args(c, rho=4.0, gain=2.0):
    return CV._band_args(rho, c, gain)


def band(shape, dtype, seed=0, scale=0.3):
    """Test and reference contrasts (the test a noisy copy) and a log luminance spanning the CSF grid and beyond."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    r = scale * torch.randn(shape, generator=g, dtype=torch.float64)
    t = r + 0.3 * scale * torch.randn(shape, generator=g, dtype=torch.float64)
    lb = torch.rand((n, 1, h, w), generator=g, dtype=torch.float64) * 8 - 3.5  # grid is [-2, 4]: both ends clamp
    return t.to(dtype), r.to(dtype), lb.to(dtype)


def rel_close(got, want, tol):
    torch.testing.assert_close(got, want.to(got.dtype), atol=tol * max(1e-30, want.abs().max().item()), rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 3e-6)])
def test_forward_matches_twin(shape, dtype, tol):
    t, r, lb = band(shape, dtype)
    a = args(shape[1])
    got = _ops.cvvdp_band_pool(t, r, lb, *a)
    assert got.shape == shape[:2] and got.dtype == torch.float64
    rel_close(got, reference(t, r, lb, *a), tol)
    if dtype == torch.float32:  # and the float64 truth
        rel_close(got, reference(t.double(), r.double(), lb.double(), *a), tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-11), (torch.float32, 1e-5)])
def test_backward_matches_twin(shape, dtype, tol):
    t, r, lb = band(shape, dtype, seed=1)
    a = args(shape[1])
    grad = torch.rand(shape[:2], dtype=torch.float64) + 0.5
    grads = []
    for fn in (lambda *x: _ops.cvvdp_band_pool(*x, *a), lambda *x: reference(*x, *a)):
        inputs = [v.clone().requires_grad_() for v in (t, r, lb)]
        grads.append(torch.autograd.grad(fn(*inputs), inputs, grad))
    for got, want in zip(*grads):
        assert got.shape == want.shape and got.dtype == dtype
        rel_close(got, want, tol)


def test_ties_and_one_input_grad():
    """Half the test band equals the reference: min(|T|, |R|) ties there (the gradient splits, as torch.minimum's),
    and the blur carries the other half's masking gradient into it; only test needs a gradient."""
    t, r, lb = band((1, 3, 20, 23), torch.float64, seed=2)
    t[..., :10] = r[..., :10]
    a = args(3)
    grads = []
    for fn in (lambda x: _ops.cvvdp_band_pool(x, r, lb, *a), lambda x: reference(x, r, lb, *a)):
        x = t.clone().requires_grad_()
        grads.append(torch.autograd.grad(fn(x).sum(), x)[0])
    rel_close(grads[0], grads[1], 1e-12)
    assert grads[1][..., :8].abs().max() > 1e-3 * grads[1].abs().max()  # the tied half does get a gradient
    rel_close(_ops.cvvdp_band_pool(r, r, lb, *a), reference(r, r, lb, *a), 1e-12)


def test_batch_is_per_image():
    t, r, lb = band((3, 3, 40, 50), torch.float32, seed=3)
    a = args(3)
    whole = _ops.cvvdp_band_pool(t, r, lb, *a)
    for i in range(3):
        torch.testing.assert_close(whole[i:i + 1], _ops.cvvdp_band_pool(t[i:i + 1], r[i:i + 1], lb[i:i + 1], *a),
                                   atol=0, rtol=0)


def test_result_independent_of_thread_count():
    t, r, lb = band((2, 3, 300, 97), torch.float32, seed=4)
    a = args(3)
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, max(2, threads)):
            torch.set_num_threads(n)
            inputs = [v.clone().requires_grad_() for v in (t, r, lb)]
            value = _ops.cvvdp_band_pool(*inputs, *a)
            out.append((value, *torch.autograd.grad(value.sum(), inputs)))
    finally:
        torch.set_num_threads(threads)
    for one, many in zip(*out):
        torch.testing.assert_close(one, many, atol=0, rtol=0)


def test_gradcheck():
    t, r, lb = band((1, 3, 9, 10), torch.float64, seed=5)
    a = args(3)
    inputs = [v.requires_grad_() for v in (t, r, lb)]
    assert torch.autograd.gradcheck(lambda *x: _ops.cvvdp_band_pool(*x, *a), inputs)
    small = [v.detach()[..., :5, :5].clone().requires_grad_() for v in (t, r, lb)]  # the unblurred path
    assert torch.autograd.gradcheck(lambda *x: _ops.cvvdp_band_pool(*x, *a), small)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    t, r, lb = band((2, 3, 12, 11), torch.float64, seed=6)
    if requires_grad:
        t, r, lb = (v.requires_grad_() for v in (t, r, lb))
    a = list(args(3))
    a[0], a[3], a[4], a[5] = list(a[0]), list(a[3]), list(a[4]), list(a[5])
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_band_pool.default, (t, r, lb, *a))


def test_torch_compile_fullgraph():
    t, r, lb = band((1, 3, 24, 30), torch.float32, seed=7)
    a = args(3)
    fn = torch.compile(lambda x, y, z: _ops.cvvdp_band_pool(x, y, z, *a), fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(t, r, lb), _ops.cvvdp_band_pool(t, r, lb, *a), atol=0, rtol=0)


def test_bad_arguments():
    t, r, lb = band((1, 3, 12, 11), torch.float32)
    csf, lo, hi, gain, mask_q, xcm, mask_c, mask_p, d_max = args(3)
    op = torch.ops.turboiqa.cvvdp_band_pool
    good = [list(csf), lo, hi, list(gain), list(mask_q), list(xcm), mask_c, mask_p, d_max]

    def call(*tensors, **changes):
        rest = list(good)
        for i, name in enumerate(("csf", "lo", "hi", "gain", "mask_q", "xcm", "mask_c", "mask_p", "d_max")):
            rest[i] = changes.get(name, rest[i])
        return op(*tensors, *rest)

    cases = [
        ((t[0], r[0], lb[0]), {}, "test must be N x C x H x W"),
        ((t, r[..., :10], lb), {}, "ref must have the shape of test"),
        ((t.half(), r.half(), lb.half()), {}, "test must be float32 or float64"),
        ((t, r.double(), lb), {}, "must have one dtype"),
        ((t, r, lb[..., :10]), {}, "log_bkg must be N x 1 x H x W"),
        ((t.repeat(1, 2, 1, 1), r.repeat(1, 2, 1, 1), lb), {}, "must have 1 to 4 channels"),
        ((t, r, lb), {"csf": list(csf)[:-1]}, "csf must hold C x L values"),
        ((t, r, lb), {"hi": lo}, "log_l_hi must be > log_l_lo"),
        ((t, r, lb), {"gain": [1.0, 1.0]}, "one value per channel"),
        ((t, r, lb), {"xcm": [1.0] * 4}, "xcm must hold C x C"),
        ((t, r, lb), {"mask_p": 0.0}, "must be > 0"),
    ]
    for tensors, changes, message in cases:
        with pytest.raises(RuntimeError, match=message):
            call(*tensors, **changes)
    back = torch.ops.turboiqa._cvvdp_band_pool_backward
    with pytest.raises(RuntimeError, match="gradient values"):
        back(torch.ones(5, dtype=torch.float64), t, r, lb, *good)
    with pytest.raises(RuntimeError, match="grad must be floating point"):
        back(torch.ones(1, 3, dtype=torch.long), t, r, lb, *good)
    with pytest.raises(RuntimeError, match="CPU float32/float64"):
        _ops.cvvdp_band_pool(t.half(), r.half(), lb.half(), *args(3), backend="native")
    with pytest.raises(ValueError, match="backend must be one of"):
        _ops.cvvdp_band_pool(t, r, lb, *args(3), backend="fast")


# ---------------------------------------------------------------------------------------- cvvdp_band_difference
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 3e-6)])
def test_band_difference_matches_twin(shape, dtype, tol):
    """The per-pixel D of the heat map: blurred and unblurred bands, 3 and 4 channels, against the twin (float32 also
    against the float64 truth)."""
    t, r, lb = band(shape, dtype, seed=13)
    a = args(shape[1])
    got = _ops.cvvdp_band_difference(t, r, lb, *a)
    assert got.shape == shape and got.dtype == dtype and got.is_contiguous()
    rel_close(got, reference_difference(t, r, lb, *a), tol)
    if dtype == torch.float32:
        rel_close(got, reference_difference(t.double(), r.double(), lb.double(), *a), tol)
    # and the pooled op's sums are its pixels' (D + 1e-5)^2
    rel_close(((got.double() + 1e-5) ** 2).sum((-2, -1)), _ops.cvvdp_band_pool(t, r, lb, *a), 10 * tol)


def test_band_difference_registration_threads_and_fallback():
    t, r, lb = band((2, 3, 12, 11), torch.float64, seed=14)
    a = list(args(3))
    a[0], a[3], a[4], a[5] = list(a[0]), list(a[3]), list(a[4]), list(a[5])
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_band_difference.default, (t, r, lb, *a))
    fn = torch.compile(lambda x, y, z: _ops.cvvdp_band_difference(x, y, z, *a), fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(t, r, lb), _ops.cvvdp_band_difference(t, r, lb, *a), atol=0, rtol=0)
    big = band((2, 3, 150, 97), torch.float32, seed=15)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _ops.cvvdp_band_difference(*big, *a)
        torch.set_num_threads(max(2, threads))
        many = _ops.cvvdp_band_difference(*big, *a)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, many, atol=0, rtol=0)
    # a gradient is needed: the twin runs (the op has no backward) and the map is differentiable
    x = t.clone().requires_grad_()
    d = _ops.cvvdp_band_difference(x, r, lb, *a)
    assert d.grad_fn is not None
    rel_close(d.detach(), _ops.cvvdp_band_difference(t, r, lb, *a), 1e-12)
    with pytest.raises(RuntimeError, match="without autograd"):
        _ops.cvvdp_band_difference(x, r, lb, *a, backend="native")
    with pytest.raises(RuntimeError, match="must have 1 to 4 channels"):
        torch.ops.turboiqa.cvvdp_band_difference(t.repeat(1, 2, 1, 1), r.repeat(1, 2, 1, 1), lb, *a)


# ----------------------------------------------------------------------------------------- cvvdp_weber_contrast
def weber_inputs(shape, dtype, seed=16):
    """Planes and an expanded level whose first channel dips below the 0.01 floor in places, with contrasts beyond
    the 1000 cap."""
    g = torch.Generator().manual_seed(seed)
    ex = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 0.2
    ex[:, 0, ::3] = 0.005  # under the floor: the background's gradient stops there
    planes = ex + torch.randn(shape, generator=g, dtype=torch.float64) * 0.5
    planes[:, :, 1, :2] += 50.0  # contrast over 1000 where the background is floored: clamped, no gradient
    return planes.to(dtype), ex.to(dtype)


@pytest.mark.parametrize("shape", [(2, 3, 37, 29), (4, 4, 9, 8), (2, 1, 2, 3)])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-13), (torch.float32, 2e-6)])
def test_weber_contrast_matches_twin(shape, dtype, tol):
    planes, ex = weber_inputs(shape, dtype)
    got, want = _ops.cvvdp_weber_contrast(planes, ex), reference_weber(planes, ex)
    n = shape[0] // 2
    assert [v.shape for v in got] == [(n, *shape[1:]), (n, *shape[1:]), (n, 1, *shape[2:])]
    for a, b in zip(got, want):
        rel_close(a, b, tol)
    g = torch.Generator().manual_seed(17)
    cot = [torch.randn(v.shape, generator=g, dtype=torch.float64).to(dtype) for v in got]
    grads = []
    for fn in (_ops.cvvdp_weber_contrast, reference_weber):
        ins = [planes.clone().requires_grad_(), ex.clone().requires_grad_()]
        outs = fn(*ins)
        grads.append(torch.autograd.grad(sum((o * c).sum() for o, c in zip(outs, cot)), ins))
    for a, b in zip(*grads):
        rel_close(a, b, 10 * tol)
    # one output used (the others' gradients are None)
    ins = [planes.clone().requires_grad_(), ex.clone().requires_grad_()]
    ga = torch.autograd.grad(_ops.cvvdp_weber_contrast(*ins)[2].sum(), ins, allow_unused=True)
    ins2 = [planes.clone().requires_grad_(), ex.clone().requires_grad_()]
    gb = torch.autograd.grad(reference_weber(*ins2)[2].sum(), ins2, allow_unused=True)
    rel_close(ga[1], gb[1], 10 * tol)


def test_weber_contrast_registration_threads_and_errors():
    planes, ex = weber_inputs((2, 3, 11, 14), torch.float64, seed=18)
    x = [planes.clone().requires_grad_(), ex.clone().requires_grad_()]
    assert torch.autograd.gradcheck(lambda a, b: _ops.cvvdp_weber_contrast(a, b), x)
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_weber_contrast.default, (planes, ex))
    fn = torch.compile(lambda a, b: _ops.cvvdp_weber_contrast(a, b)[0], fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(planes, ex), _ops.cvvdp_weber_contrast(planes, ex)[0], atol=0, rtol=0)
    big = weber_inputs((4, 3, 130, 91), torch.float32, seed=19)
    threads = torch.get_num_threads()
    out = []
    try:
        for k in (1, max(2, threads)):
            torch.set_num_threads(k)
            ins = [v.clone().requires_grad_() for v in big]
            res = _ops.cvvdp_weber_contrast(*ins)
            out.append((*res, *torch.autograd.grad(sum(v.sum() for v in res), ins)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*out):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="2N images"):
        torch.ops.turboiqa.cvvdp_weber_contrast(planes[:1], ex[:1])
    with pytest.raises(RuntimeError, match="expanded must match planes"):
        torch.ops.turboiqa.cvvdp_weber_contrast(planes, ex.float())
    with pytest.raises(RuntimeError, match="CPU float32/float64"):
        _ops.cvvdp_weber_contrast(planes.half(), ex.half(), backend="native")


# ------------------------------------------------------------------------------------------- cvvdp_pyramid_step
PYR_SHAPES = [(1, 1, 2, 2), (2, 3, 37, 29), (1, 2, 8, 9), (1, 3, 9, 8), (2, 1, 3, 5), (1, 3, 70, 131), (1, 4, 6, 2),
              (1, 2, 9, 40), (1, 1, 6, 65), (1, 1, 4, 3), (1, 1, 5, 6)]


@pytest.mark.parametrize("shape", PYR_SHAPES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_pyramid_step_matches_twin(shape, dtype, tol):
    """Even/odd heights and widths (cvvdp's right-edge correction follows the parity of H), forward and backward."""
    g = torch.Generator().manual_seed(10)
    x = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
    got, want = _ops.cvvdp_pyramid_step(x), reference_pyramid(x)
    n, c, h, w = shape
    assert got[0].shape == (n, c, (h + 1) // 2, (w + 1) // 2) and got[1].shape == shape
    for a, b in zip(got, want):
        rel_close(a, b, tol)
    gr = torch.randn(got[0].shape, generator=g, dtype=torch.float64).to(dtype)
    ge = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    grads = []
    for fn in (_ops.cvvdp_pyramid_step, reference_pyramid):
        xi = x.clone().requires_grad_()
        red, ex = fn(xi)
        grads.append(torch.autograd.grad((red * gr).sum() + (ex * ge).sum(), xi)[0])
    rel_close(grads[0], grads[1], 10 * tol)


def test_pyramid_step_registration_threads_and_errors():
    x = torch.rand(2, 3, 11, 14, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: _ops.cvvdp_pyramid_step(a), (x,))
    assert torch.autograd.gradcheck(lambda a: _ops.cvvdp_pyramid_step(a)[1], (x,))  # one output used
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_pyramid_step.default, (x,))
    fn = torch.compile(lambda a: _ops.cvvdp_pyramid_step(a)[1], fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(x.detach()), _ops.cvvdp_pyramid_step(x.detach())[1], atol=0, rtol=0)
    big = torch.rand(3, 3, 130, 91)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _ops.cvvdp_pyramid_step(big)
        torch.set_num_threads(max(2, threads))
        many = _ops.cvvdp_pyramid_step(big)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, many):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="at least 2 x 2"):
        torch.ops.turboiqa.cvvdp_pyramid_step(torch.rand(1, 1, 1, 5))
    with pytest.raises(RuntimeError, match="planes must be N x C x H x W"):
        torch.ops.turboiqa.cvvdp_pyramid_step(torch.rand(5, 5))
    with pytest.raises(RuntimeError, match="grad_expanded must have"):
        torch.ops.turboiqa._cvvdp_pyramid_step_backward(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 5, 4),
                                                        torch.rand(1, 1, 5, 5))
    with pytest.raises(RuntimeError, match="CPU float32/float64"):
        _ops.cvvdp_pyramid_step(torch.rand(1, 1, 4, 4).half(), backend="native")


# ------------------------------------------------------------------------------------------- cvvdp_srgb_to_dkl
def srgb_coefficients(display="standard_4k"):
    from turboiqa import display as D

    return CV._srgb_dkl_coefficients(D.resolve_display(display).photometry)


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 33, 47), (1, 3, 130, 140)])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_srgb_to_dkl_matches_twin(shape, dtype, tol, data_range):
    """Values below 0, on the linear segment, on the power segment and above data_range (clamped: no gradient)."""
    g = torch.Generator().manual_seed(11)
    x = ((torch.rand(shape, generator=g, dtype=torch.float64) * 1.2 - 0.1) * data_range).to(dtype)
    m, b = srgb_coefficients()
    got, want = _ops.cvvdp_srgb_to_dkl(x, m, b, data_range), reference_srgb(x, m, b, data_range)
    rel_close(got, want, tol)
    grad = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    grads = []
    for fn in (_ops.cvvdp_srgb_to_dkl, reference_srgb):
        xi = x.clone().requires_grad_()
        grads.append(torch.autograd.grad(fn(xi, m, b, data_range), xi, grad)[0])
    rel_close(grads[0], grads[1], 2 * tol)


def test_srgb_to_dkl_registration_threads_and_errors():
    m, b = srgb_coefficients("standard_fhd")
    x = (torch.rand(2, 3, 6, 7, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: _ops.cvvdp_srgb_to_dkl(a, m, b, 1.0), (x,))
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_srgb_to_dkl.default, (x, list(m), list(b), 1.0))
    fn = torch.compile(lambda a: _ops.cvvdp_srgb_to_dkl(a, m, b, 1.0), fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(x.detach()), _ops.cvvdp_srgb_to_dkl(x.detach(), m, b, 1.0), atol=0, rtol=0)
    big = torch.rand(2, 3, 200, 190)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _ops.cvvdp_srgb_to_dkl(big, m, b, 1.0)
        torch.set_num_threads(max(2, threads))
        many = _ops.cvvdp_srgb_to_dkl(big, m, b, 1.0)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, many, atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="x must be N x 3 x H x W"):
        torch.ops.turboiqa.cvvdp_srgb_to_dkl(torch.rand(1, 1, 4, 4), list(m), list(b), 1.0)
    with pytest.raises(RuntimeError, match="data_range must be > 0"):
        torch.ops.turboiqa.cvvdp_srgb_to_dkl(big, list(m), list(b), 0.0)
    with pytest.raises(RuntimeError, match="x must be float32 or float64"):
        torch.ops.turboiqa.cvvdp_srgb_to_dkl(big.half(), list(m), list(b), 1.0)
    with pytest.raises(RuntimeError, match="CPU float32/float64"):
        _ops.cvvdp_srgb_to_dkl(big.half(), m, b, 1.0, backend="native")


def _route(monkeypatch, native):
    if not native:
        monkeypatch.setattr(_ops, "HAVE_NATIVE", False)
    else:
        monkeypatch.setattr(_ops, "HAVE_NATIVE", True)


def _images(dtype, seed=8, shape=(2, 3, 61, 83)):
    g = torch.Generator().manual_seed(seed)
    ref = torch.nn.functional.avg_pool2d(torch.rand(shape, generator=g, dtype=torch.float64), 3, 1, 1)
    dist = (ref + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return dist.to(dtype), ref.to(dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_cvvdp_native_route_matches_pytorch_route(monkeypatch, dtype, tol):
    dist, ref = _images(dtype)
    out = []
    for native in (True, False):
        _route(monkeypatch, native)
        x = dist.clone().requires_grad_()
        jod = CV.cvvdp(x, ref, reduction="none")
        out.append((jod.detach(), torch.autograd.grad(jod.sum(), x)[0]))
    (j1, g1), (j2, g2) = out
    torch.testing.assert_close(j1, j2, atol=tol, rtol=0)
    rel_close(g1, g2, 50 * tol)


def test_cvvdp_video_native_route_matches_pytorch_route(monkeypatch):
    dist, ref = _images(torch.float32, seed=9, shape=(5, 3, 40, 52))
    out = []
    for native in (True, False):
        _route(monkeypatch, native)
        out.append(CV.cvvdp(dist, ref, fps=30))
    torch.testing.assert_close(out[0], out[1], atol=2e-5, rtol=0)


# ------------------------------------------------------------------------------------- instruction-set builds
ISA_SCRIPT = """
import json, sys, torch, turboiqa
sys.path.insert(0, {tests!r})
import test_cvvdp_op as T
worst = {{}}
for dtype, shape in ((torch.float32, (2, 3, 70, 131)), (torch.float64, (1, 4, 33, 20)), (torch.float32, (1, 3, 5, 9))):
    t, r, lb = T.band(shape, dtype, seed=12)
    a = T.args(shape[1])
    inputs = [v.clone().requires_grad_() for v in (t, r, lb)]
    got = T._ops.cvvdp_band_pool(*inputs, *a)
    gg = torch.autograd.grad(got.sum(), inputs)
    want = T.reference(t.double(), r.double(), lb.double(), *a)
    ins = [v.double().requires_grad_() for v in (t, r, lb)]
    gw = torch.autograd.grad(T.reference(*ins, *a).sum(), ins)
    err = ((got - want).abs() / want.abs()).max().item()
    err = max([err] + [((x.double() - y).abs().max() / y.abs().max()).item() for x, y in zip(gg, gw)])
    worst[str(dtype)] = max(worst.get(str(dtype), 0.0), err)
m, b = T.srgb_coefficients()
x = torch.rand(2, 3, 37, 41, dtype=torch.float64) * 1.2 - 0.1
got = T._ops.cvvdp_srgb_to_dkl(x.float(), m, b, 1.0).double()
want = T.reference_srgb(x, m, b, 1.0)
worst["srgb"] = ((got - want).abs().max() / want.abs().max()).item()
print(json.dumps({{"isa": turboiqa.build_info()["cpu_isa_selected"], "worst": worst}}))
"""


def test_every_isa_build_matches_the_twin():
    """cvvdp_band_rows.cpp is compiled per instruction set (float exp/log polynomials): each build the CPU runs."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import turboiqa

    tests = str(Path(__file__).resolve().parent)
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    need = {"baseline": set(), "avx2": {"avx2", "fma"},
            "avx512": {"avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"}}
    compiled = turboiqa.build_info()["cpu_isa_compiled"]
    compiled = compiled.split(",") if isinstance(compiled, str) else list(compiled)
    ran = []
    for isa in [i for i in ("baseline", "avx2", "avx512") if i in compiled and need[i] <= flags]:
        env = dict(os.environ, TURBOIQA_CPU_ISA=isa, OMP_NUM_THREADS="1")
        env["PYTHONPATH"] = os.pathsep.join([str(Path(turboiqa.__file__).parents[1]), tests,
                                             env.get("PYTHONPATH", "")])
        out = subprocess.run([sys.executable, "-c", ISA_SCRIPT.format(tests=tests)], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["isa"] == isa
        assert res["worst"]["torch.float64"] < 1e-11, res
        assert res["worst"]["torch.float32"] < 2e-5, res
        assert res["worst"]["srgb"] < 2e-6, res
        ran.append(isa)
    assert "baseline" in ran


# ------------------------------------------------------------------------------------------- dynamic shapes
def test_torch_compile_dynamic_shapes():
    """Under torch.compile(dynamic=True) the checks (csrc/cvvdp_band.h) see symbolic sizes: the channel count is
    specialised (it sizes the per-channel lists) without an error; N, H and W stay symbolic (a second size runs the
    same graph) and both sizes match eager."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    a = args(3)
    counter = CompileCounter()
    fn = torch.compile(lambda x, y, z: _ops.cvvdp_band_pool(x, y, z, *a), fullgraph=True, backend=counter,
                       dynamic=True)
    for shape in ((2, 3, 24, 30), (3, 3, 17, 41)):
        t, r, lb = band(shape, torch.float32, seed=13)
        torch.testing.assert_close(fn(t, r, lb), _ops.cvvdp_band_pool(t, r, lb, *a), atol=0, rtol=0)
    assert counter.frame_count == 1


# ------------------------------------------------------------------------------------------- CUDA (GPU only)
CUDA_OPS = ("cvvdp_band_pool", "_cvvdp_band_pool_backward", "cvvdp_pyramid_step", "_cvvdp_pyramid_step_backward",
            "cvvdp_srgb_to_dkl", "_cvvdp_srgb_to_dkl_backward")

needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and all(_ops._has_op(op) for op in CUDA_OPS)
         and all(torch._C._dispatch_has_kernel_for_dispatch_key(f"turboiqa::{op}", "CUDA") for op in CUDA_OPS)),
    reason="needs a GPU and a CUDA build")


def _grads(fn, inputs, grad):
    """Gradients of fn(*inputs) (one output, or a tuple with one gradient each) w.r.t. every input."""
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    out = fn(*leaves)
    outs, grads = (out, grad) if isinstance(out, tuple) else ((out,), (grad,))
    return out, torch.autograd.grad(outs, leaves, grads)


def _cuda(values):
    return [v.cuda() if isinstance(v, torch.Tensor) else v for v in values]


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("shape", SHAPES + [(3, 2, 33, 7)])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 3e-6)])
def test_cuda_band_pool_matches_cpu_and_twin(shape, dtype, tol):
    """Forward and backward (test, ref, log_bkg) of the CUDA kernel against the CPU kernel and the twin: blurred and
    unblurred bands, 1, 2, 3 and 4 channels, odd sizes, batch > 1; deterministic (two runs bitwise equal)."""
    t, r, lb = band(shape, dtype, seed=20)
    a = args(shape[1])
    grad = torch.rand(shape[:2], generator=torch.Generator().manual_seed(21), dtype=torch.float64) + 0.5
    cpu, cpu_g = _grads(lambda *x: _ops.cvvdp_band_pool(*x, *a, backend="native"), (t, r, lb), grad)
    twin, twin_g = _grads(lambda *x: reference(*x, *a), (t, r, lb), grad)
    truth = reference(t.double(), r.double(), lb.double(), *a)
    runs = [_grads(lambda *x: _ops.cvvdp_band_pool(*x, *a, backend="native"), _cuda((t, r, lb)), grad.cuda())
            for _ in range(2)]
    got, got_g = runs[0]
    assert got.is_cuda and got.dtype == torch.float64 and got.shape == shape[:2]
    rel_close(got.cpu(), cpu, tol)
    rel_close(got.cpu(), twin, tol)
    rel_close(got.cpu(), truth, tol)
    gtol = 1e-11 if dtype == torch.float64 else 1e-5
    for g, c, w in zip(got_g, cpu_g, twin_g):
        assert g.is_cuda and g.dtype == dtype and g.shape == c.shape
        rel_close(g.cpu(), c, gtol)
        rel_close(g.cpu(), w, gtol)
    assert torch.equal(runs[0][0], runs[1][0])
    for p, q in zip(runs[0][1], runs[1][1]):
        assert torch.equal(p, q)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("shape", PYR_SHAPES + [(3, 2, 41, 23)])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_cuda_pyramid_step_matches_cpu_and_twin(shape, dtype, tol):
    g = torch.Generator().manual_seed(22)
    x = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
    n, c, h, w = shape
    gr = torch.randn((n, c, (h + 1) // 2, (w + 1) // 2), generator=g, dtype=torch.float64).to(dtype)
    ge = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    cpu, (cpu_g,) = _grads(lambda v: _ops.cvvdp_pyramid_step(v, backend="native"), (x,), (gr, ge))
    twin, (twin_g,) = _grads(reference_pyramid, (x,), (gr, ge))
    got, (got_g,) = _grads(lambda v: _ops.cvvdp_pyramid_step(v, backend="native"), (x.cuda(),),
                           (gr.cuda(), ge.cuda()))
    for a, b, t in zip(got, cpu, twin):
        assert a.is_cuda and a.dtype == dtype and a.shape == b.shape
        rel_close(a.cpu(), b, tol)
        rel_close(a.cpu(), t, tol)
    assert got_g.is_cuda and got_g.dtype == dtype
    rel_close(got_g.cpu(), cpu_g, 10 * tol)
    rel_close(got_g.cpu(), twin_g, 10 * tol)
    # only one output used: the other gradient arrives as None (zeros)
    xs = x.cuda().requires_grad_()
    (only,) = torch.autograd.grad((_ops.cvvdp_pyramid_step(xs, backend="native")[1] * ge.cuda()).sum(), xs)
    xc = x.clone().requires_grad_()
    (want,) = torch.autograd.grad((_ops.cvvdp_pyramid_step(xc, backend="native")[1] * ge).sum(), xc)
    rel_close(only.cpu(), want, 10 * tol)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_cuda_pyramid_step_interleaved_sizes_repeat_bitwise(dtype, tol):
    """The CUDA kernels evaluate their tap tables per call from the plane size (no table state between calls):
    interleaving sizes and parities gives the same bits on every repeat of a size, and the CPU's values."""
    shapes = [(1, 3, 37, 29), (2, 1, 2, 2), (1, 2, 64, 65), (3, 2, 9, 8), (1, 1, 5, 3), (1, 2, 65, 64)]
    g = torch.Generator().manual_seed(31)
    data = {}
    for shape in shapes:
        n, c, h, w = shape
        data[shape] = tuple(v.to(dtype) for v in (
            torch.rand(shape, generator=g, dtype=torch.float64),
            torch.randn((n, c, (h + 1) // 2, (w + 1) // 2), generator=g, dtype=torch.float64),
            torch.randn(shape, generator=g, dtype=torch.float64)))
    first = {}
    for shape in shapes + shapes[::-1] + shapes:
        x, gr, ge = data[shape]
        got, (got_g,) = _grads(lambda v: _ops.cvvdp_pyramid_step(v, backend="native"), (x.cuda(),),
                               (gr.cuda(), ge.cuda()))
        got = tuple(v.cpu() for v in (*got, got_g))
        if shape not in first:
            first[shape] = got
            cpu, (cpu_g,) = _grads(lambda v: _ops.cvvdp_pyramid_step(v, backend="native"), (x,), (gr, ge))
            for a, b, t in zip(got, (*cpu, cpu_g), (tol, tol, 10 * tol)):
                rel_close(a, b, t)
        else:
            assert all(torch.equal(a, b) for a, b in zip(got, first[shape])), shape


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_pyramid_step_graph_capture(dtype):
    """Forward and backward kernels capture into a CUDA graph (no host work or upload per call) and replay on new
    data with the eager bits."""
    x = torch.rand(2, 3, 41, 23, dtype=dtype, device="cuda")
    gr = torch.randn(2, 3, 21, 12, dtype=dtype, device="cuda")
    ge = torch.randn_like(x)
    op = torch.ops.turboiqa
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside the capture, as torch.cuda.graphs asks
        for _ in range(2):
            op.cvvdp_pyramid_step(x)
            op._cvvdp_pyramid_step_backward(gr, ge, x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        red, exp = op.cvvdp_pyramid_step(x)
        dx = op._cvvdp_pyramid_step_backward(gr, ge, x)
    for seed in (1, 2):
        torch.manual_seed(seed)
        for v in (x, gr, ge):
            v.copy_(torch.randn_like(v))
        graph.replay()
        torch.cuda.synchronize()
        want_red, want_exp = op.cvvdp_pyramid_step(x)
        want_dx = op._cvvdp_pyramid_step_backward(gr, ge, x)
        assert torch.equal(red, want_red) and torch.equal(exp, want_exp) and torch.equal(dx, want_dx)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 33, 47), (3, 3, 130, 141)])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_cuda_srgb_to_dkl_matches_cpu_and_twin(shape, dtype, tol, data_range):
    g = torch.Generator().manual_seed(23)
    x = ((torch.rand(shape, generator=g, dtype=torch.float64) * 1.2 - 0.1) * data_range).to(dtype)
    grad = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    m, b = srgb_coefficients()
    cpu, (cpu_g,) = _grads(lambda v: _ops.cvvdp_srgb_to_dkl(v, m, b, data_range, backend="native"), (x,), grad)
    twin, (twin_g,) = _grads(lambda v: reference_srgb(v, m, b, data_range), (x,), grad)
    got, (got_g,) = _grads(lambda v: _ops.cvvdp_srgb_to_dkl(v, m, b, data_range, backend="native"), (x.cuda(),),
                           grad.cuda())
    assert got.is_cuda and got.dtype == dtype and got_g.dtype == dtype
    rel_close(got.cpu(), cpu, tol)
    rel_close(got.cpu(), twin, tol)
    rel_close(got_g.cpu(), cpu_g, 2 * tol)
    rel_close(got_g.cpu(), twin_g, 2 * tol)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_cuda_cvvdp_jod_matches_cpu(dtype, tol):
    """The metric end to end (sRGB -> DKL, pyramid, bands, pooling, JOD) and its gradient, CUDA against CPU."""
    dist, ref = _images(dtype, seed=24)
    out = []
    for device in ("cpu", "cuda"):
        x = dist.to(device).requires_grad_()
        jod = CV.cvvdp(x, ref.to(device), reduction="none")
        out.append((jod.detach().cpu(), torch.autograd.grad(jod.sum(), x)[0].cpu()))
    (j1, g1), (j2, g2) = out
    torch.testing.assert_close(j2, j1, atol=tol, rtol=0)
    rel_close(g2, g1, 50 * tol)
    video_dist, video_ref = _images(torch.float32, seed=25, shape=(5, 3, 40, 52))
    torch.testing.assert_close(CV.cvvdp(video_dist.cuda(), video_ref.cuda(), fps=30).cpu(),
                               CV.cvvdp(video_dist, video_ref, fps=30), atol=2e-5, rtol=0)


@needs_cuda
@pytest.mark.cuda
def test_cuda_gradcheck_opcheck_and_errors():
    t, r, lb = (v.cuda() for v in band((1, 3, 9, 10), torch.float64, seed=26))
    a = args(3)
    inputs = [v.clone().requires_grad_() for v in (t, r, lb)]
    assert torch.autograd.gradcheck(lambda *x: _ops.cvvdp_band_pool(*x, *a, backend="native"), inputs)
    la = list(a)
    la[0], la[3], la[4], la[5] = list(la[0]), list(la[3]), list(la[4]), list(la[5])
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_band_pool.default, (t, r, lb, *la))
    x = torch.rand(2, 3, 11, 14, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: _ops.cvvdp_pyramid_step(v, backend="native"), (x,))
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_pyramid_step.default, (x,))
    m, b = srgb_coefficients("standard_fhd")
    xs = (torch.rand(2, 3, 6, 7, dtype=torch.float64, device="cuda") * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: _ops.cvvdp_srgb_to_dkl(v, m, b, 1.0, backend="native"), (xs,))
    torch.library.opcheck(torch.ops.turboiqa.cvvdp_srgb_to_dkl.default, (xs, list(m), list(b), 1.0))
    op = torch.ops.turboiqa
    with pytest.raises(RuntimeError, match="must have 1 to 4 channels"):
        op.cvvdp_band_pool(t.repeat(1, 2, 1, 1), r.repeat(1, 2, 1, 1), lb, *la)
    with pytest.raises(RuntimeError, match="one device"):
        op.cvvdp_band_pool(t, r.cpu(), lb, *la)
    long_csf = [0.0] * (3 * 100)  # C x L = 300 values: beyond the CUDA kernel's parameter table
    with pytest.raises(RuntimeError, match="at most 256 csf values"):
        op.cvvdp_band_pool(t, r, lb, long_csf, *la[1:])
    with pytest.raises(RuntimeError, match="gradient values"):
        op._cvvdp_band_pool_backward(torch.ones(5, dtype=torch.float64, device="cuda"), t, r, lb, *la)
    with pytest.raises(RuntimeError, match="at least 2 x 2"):
        op.cvvdp_pyramid_step(torch.rand(1, 1, 1, 5, device="cuda"))
    with pytest.raises(RuntimeError, match="grad_expanded must have"):
        op._cvvdp_pyramid_step_backward(torch.rand(1, 1, 3, 3, device="cuda"), torch.rand(1, 1, 5, 4, device="cuda"),
                                        torch.rand(1, 1, 5, 5, device="cuda"))
    with pytest.raises(RuntimeError, match="x must be N x 3 x H x W"):
        op.cvvdp_srgb_to_dkl(torch.rand(1, 1, 4, 4, device="cuda"), list(m), list(b), 1.0)
    with pytest.raises(RuntimeError, match="grad must match x"):
        op._cvvdp_srgb_to_dkl_backward(torch.rand(1, 3, 4, 5, device="cuda"), torch.rand(1, 3, 4, 4, device="cuda"),
                                       list(m), list(b), 1.0)
    # the wrappers route CUDA float16 to the twin under 'auto' and refuse it under 'native'
    with pytest.raises(RuntimeError, match="CPU float32/float64"):
        _ops.cvvdp_pyramid_step(torch.rand(1, 1, 4, 4, device="cuda").half(), backend="native")
    empty = op.cvvdp_band_pool(t[:0], r[:0], lb[:0], *la)
    assert empty.shape == (0, 3) and empty.is_cuda
