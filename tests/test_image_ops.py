"""Native squared_error_sum, psnr_db, box_downsample and luma against their PyTorch twins (and hand-checked values)."""
import math

import pytest
import torch
import torch.nn.functional as F
from turboiqa import _ops
from turboiqa.dtypes import compute_dtype
from turboiqa.reference import image_ops as reference

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="compiled extension not available")

SHAPES = [(1, 1, 1, 1), (2, 3, 37, 41), (1, 1, 5000, 3), (3, 1, 64, 33)]


def rand(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).to(device)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype).to(device)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("shape", SHAPES)
def test_squared_error_sum(device, dtype, shape):
    x, y = rand(shape, dtype, device, 1), rand(shape, dtype, device, 2)
    got, extrema = _ops.squared_error_sum(x, y)
    want, want_extrema = reference.squared_error_sum(x, y)
    assert got.dtype == torch.float64 and got.shape == (shape[0],) and extrema.shape == (shape[0], 4)
    assert torch.equal(extrema, want_extrema)  # min/max are exact
    if dtype == torch.uint8:
        assert torch.equal(got, want)  # exact integer sums
    else:
        torch.testing.assert_close(got, want, rtol=1e-6 if dtype != torch.float64 else 1e-13, atol=0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_psnr_db(device, dtype, shape, reduction):
    x, y = rand(shape, dtype, device, 1), rand(shape, dtype, device, 2)
    if shape[0] > 1:
        y[1] = x[1]  # an identical pair: +inf (capped below)
    peak = 255.0 if dtype == torch.uint8 else 1.0
    for eps, max_db in ((0.0, math.inf), (1e-8, 60.0)):
        got, extrema = torch.ops.turboiqa.psnr_db(x, y, peak, eps, max_db, reduction)
        want, want_extrema = reference.psnr_db(x, y, peak, eps, max_db, reduction)
        assert got.dtype == compute_dtype(dtype) and got.shape == want.shape
        assert torch.equal(extrema, want_extrema)
        torch.testing.assert_close(got, want, rtol=1e-12 if dtype == torch.float64 else 1e-6, atol=0)
    # hand-checked: a constant offset of 0.1 on [0, 1] data is an MSE of 0.01, 20 dB
    if dtype != torch.uint8:
        ones = torch.full(shape, 0.5, dtype=dtype, device=device)
        db, _ = torch.ops.turboiqa.psnr_db(ones, ones + 0.1, 1.0, 0.0, math.inf, "none")
        torch.testing.assert_close(db, torch.full((shape[0],), 20.0, dtype=db.dtype, device=device),
                                   rtol=1e-5, atol=0)


def test_psnr_db_marks_nan_images(device):
    x, y = rand((3, 2, 9, 8), torch.float32, device, 1), rand((3, 2, 9, 8), torch.float32, device, 2)
    x[1, 0, 4, 4] = float("nan")
    y[2, 1, 0, 0] = float("inf")
    _, extrema = torch.ops.turboiqa.psnr_db(x, y, 1.0, 0.0, math.inf, "none")
    assert extrema[1].isnan().all() and not extrema[0].isnan().any()
    assert extrema[2, 3].item() == float("inf")  # Inf shows in the max, the sum is +inf, not NaN


def test_psnr_db_opcheck_and_errors(device):
    x, y = rand((2, 3, 7, 5), torch.float32, device, 1), rand((2, 3, 7, 5), torch.float32, device, 2)
    torch.library.opcheck(torch.ops.turboiqa.psnr_db.default, (x, y, 1.0, 0.0, math.inf, "mean"))
    with pytest.raises(RuntimeError, match="reduction must be"):
        torch.ops.turboiqa.psnr_db(x, y, 1.0, 0.0, math.inf, "max")
    for bad in (0.0, math.inf, math.nan):
        with pytest.raises(RuntimeError, match="data_range must be a positive finite number"):
            torch.ops.turboiqa.psnr_db(x, y, bad, 0.0, math.inf, "none")


def test_squared_error_sum_backward(device):
    x, y = rand((2, 3, 8, 9), torch.float64, device, 1), rand((2, 3, 8, 9), torch.float64, device, 2)
    x.requires_grad_()
    y.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: _ops.squared_error_sum(a, b)[0], (x, y))
    torch.library.opcheck(torch.ops.turboiqa.squared_error_sum.default, (x, y))


def downsample_cases(h, w):
    """(factor, pad_top, pad_left, out_h, out_w, border) for every convention the metrics use."""
    cases = []
    for f in (1, 2, 3, 4, 5):
        p = math.ceil(f / 2) - 1
        cases.append((f, p, p, math.ceil(h / f), math.ceil(w / f), "symmetric"))  # MATLAB
        if h >= f and w >= f:
            cases.append((f, 0, 0, h // f, w // f, "zeros"))  # avg_pool2d(f)
    cases.append((2, h % 2, w % 2, (h + 1) // 2, (w + 1) // 2, "zeros"))  # pytorch-msssim
    pad = max(h % 2, w % 2)
    cases.append((2, pad, pad, (h + pad) // 2, (w + pad) // 2, "replicate"))  # piq
    return cases


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 37, 41), (1, 1, 6, 8), (1, 2, 5, 1), (1, 1, 1080 // 8, 1920 // 8)])
def test_box_downsample(device, dtype, shape):
    x = rand(shape, dtype, device)
    for case in downsample_cases(*shape[-2:]):
        got = _ops.box_downsample(x, *case)
        want = reference.box_downsample(x, *case)
        assert got.dtype == compute_dtype(dtype)
        torch.testing.assert_close(got, want, rtol=1e-13 if dtype == torch.float64 else 1e-6, atol=1e-12)


def test_box_downsample_equals_torch_pooling():
    x = rand((2, 3, 37, 41), torch.float64, "cpu")
    torch.testing.assert_close(_ops.box_downsample(x, 2, 0, 0, 18, 20, "zeros"), F.avg_pool2d(x, 2))
    torch.testing.assert_close(_ops.box_downsample(x, 2, 1, 1, 19, 21, "zeros"), F.avg_pool2d(x, 2, padding=(1, 1)))
    piq_like = F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2)
    torch.testing.assert_close(_ops.box_downsample(x, 2, 1, 1, 19, 21, "replicate"), piq_like)


def test_box_downsample_backward_and_errors(device):
    x = rand((1, 2, 7, 9), torch.float64, device).requires_grad_()
    fn = lambda t: _ops.box_downsample(t, 3, 1, 1, 3, 3, "symmetric")
    assert torch.autograd.gradcheck(fn, (x,))
    # Boxes inside the image (no border, a remainder left over) take the direct adjoint: equal to the twin's vjp.
    for shape, factor, out in (((2, 3, 17, 23), 4, (4, 5)), ((1, 1, 8, 8), 2, (4, 4)), ((1, 2, 9, 10), 3, (2, 3))):
        inside = rand(shape, torch.float64, device).requires_grad_()
        fn = lambda t, f=factor, o=out: _ops.box_downsample(t, f, 0, 0, *o, "zeros")
        assert torch.autograd.gradcheck(fn, (inside,))
        g = torch.randn(shape[0], shape[1], *out, dtype=torch.float64, device=device)
        (got,) = torch.autograd.grad(fn(inside), inside, g)
        (want,) = torch.autograd.grad(reference.box_downsample(inside, factor, 0, 0, *out, "zeros"), inside, g)
        torch.testing.assert_close(got, want, atol=1e-15, rtol=0)
    x32 = rand((1, 3, 16, 20), torch.float32, device).requires_grad_()
    _ops.box_downsample(x32, 4, 0, 0, 4, 5, "zeros").sum().backward()
    assert x32.grad.dtype == torch.float32 and torch.allclose(x32.grad, torch.full_like(x32, 1 / 16))
    torch.library.opcheck(torch.ops.turboiqa.box_downsample.default, (x, 3, 1, 1, 3, 3, "symmetric"))
    if device != "cpu":
        return  # CUDA argument errors run in a subprocess (test_cuda.py): on one GPU image they crash the process
    with pytest.raises(RuntimeError, match="reads past"):
        _ops.box_downsample(x, 2, 0, 0, 5, 5, "zeros")
    with pytest.raises(RuntimeError, match="border must be"):
        _ops.box_downsample(x, 2, 0, 0, 3, 3, "reflect")
    # Issue 11 #4: a factor of 2^62 wrapped the int64 bounds check and divided by zero (SIGFPE).
    for factor, out in ((2**62, 1), (2**31, 1), (2**17, 1)):
        with pytest.raises(RuntimeError, match="factor must be in"):
            _ops.box_downsample(x, factor, 0, 0, out, out, "zeros")
    with pytest.raises(RuntimeError, match="too large"):
        _ops.box_downsample(x, 2, 0, 0, 2**40, 1, "zeros")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("round_to_uint8", [False, True])
def test_luma(device, dtype, round_to_uint8):
    x = rand((2, 3, 31, 45), dtype, device)
    coeffs, offset = (0.298936021293775, 0.587043074451121, 0.114020904255103), 0.0
    got = _ops.luma(x, coeffs, offset, round_to_uint8)
    want = reference.luma(x, list(coeffs), offset, round_to_uint8)
    assert got.dtype == want.dtype and got.shape == (2, 1, 31, 45)
    if got.dtype == torch.uint8:
        assert torch.equal(got, want)
    else:
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-5)


def test_luma_matlab_rounding_hand_checked():
    # rgb2gray of (R, G, B) = (1, 0, 1): 0.41296 → 0; (2, 1, 2): 1.4129... → 1; ycbcr of black → 16.
    x = torch.tensor([[1, 2, 255], [0, 1, 255], [1, 2, 255]], dtype=torch.uint8).view(1, 3, 1, 3)
    coeffs = (0.298936021293775, 0.587043074451121, 0.114020904255103)
    assert _ops.luma(x, coeffs, 0.0, True).flatten().tolist() == [0, 1, 255]
    black = torch.zeros(1, 3, 1, 1, dtype=torch.uint8)
    assert _ops.luma(black, [c / 255 for c in (65.481, 128.553, 24.966)], 16.0, True).item() == 16
    # exact .5 ties go up (MATLAB), not to even: 0.5·R with R = 5 → 2.5 → 3
    assert _ops.luma(torch.tensor([5, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1), (0.5, 0, 0), 0.0, True).item() == 3


def test_luma_backward(device):
    x = rand((1, 3, 5, 6), torch.float64, device).requires_grad_()
    fn = lambda t: _ops.luma(t, (0.299, 0.587, 0.114), 0.1, False)
    assert torch.autograd.gradcheck(fn, (x,))
    torch.library.opcheck(torch.ops.turboiqa.luma.default, (x, [0.299, 0.587, 0.114], 0.1, False))
