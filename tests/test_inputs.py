"""Shapes, reductions, module forms, losses, helpers and the errors users see on bad input."""
import math

import numpy as np
import pytest
import torch
import turboiqa
from turboiqa.padding import pad_2d
from turboiqa.resample import auto_downsample_factor, matlab_box_downsample, matlab_round


def rand_pair(shape=(2, 3, 48, 40), seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("mode, numpy_mode", [("symmetric", "symmetric"), ("reflect", "reflect"),
                                              ("replicate", "edge"), ("zeros", "constant")])
def test_padding_matches_numpy(mode, numpy_mode):
    x = torch.arange(12.0).view(1, 1, 3, 4)
    got = pad_2d(x, (2, 5, 3, 1), mode)
    want = np.pad(x.numpy()[0, 0], ((2, 5), (3, 1)), mode=numpy_mode)
    np.testing.assert_array_equal(got[0, 0].numpy(), want)


def test_matlab_rounding_and_downsample_factor():
    assert matlab_round(2.5) == 3 and round(2.5) == 2 and matlab_round(-2.5) == -3
    assert auto_downsample_factor(640, 800) == 3  # MATLAB: round(2.5) = 3
    assert auto_downsample_factor(640, 800, rounding="python") == 2  # piq / pyiqa
    assert auto_downsample_factor(384, 512) == 2 and auto_downsample_factor(383, 512) == 1


def test_matlab_box_downsample():
    x = torch.arange(1.0, 26.0).view(1, 1, 5, 5)
    # f = 2: window (i, i+1), last row/column mirrors the edge sample; output ceil(5/2) = 3.
    got = matlab_box_downsample(x, 2)[0, 0]
    assert got.shape == (3, 3)
    assert got[0, 0].item() == pytest.approx((1 + 2 + 6 + 7) / 4)
    assert got[2, 2].item() == pytest.approx(25.0)
    # f = 3: centred box; the first sample averages the mirrored edge too.
    got3 = matlab_box_downsample(x, 3)[0, 0]
    assert got3.shape == (2, 2)
    assert got3[1, 1].item() == pytest.approx(x[0, 0, 2:5, 2:5].mean().item())
    assert got3[0, 0].item() == pytest.approx(x[0, 0, [0, 0, 1]][:, [0, 0, 1]].mean().item())


@pytest.mark.parametrize("fn", [turboiqa.ssim, turboiqa.ms_ssim, turboiqa.psnr])
def test_shapes_and_reductions(fn):
    x, y = rand_pair((2, 3, 180, 190))
    per_image = fn(x, y, 1.0, reduction="none")
    assert per_image.shape == (2,)
    assert fn(x, y, 1.0).item() == pytest.approx(per_image.mean().item(), rel=1e-6)
    assert fn(x, y, 1.0, reduction="sum").item() == pytest.approx(per_image.sum().item(), rel=1e-6)
    assert fn(x[0], y[0], 1.0).item() == pytest.approx(per_image[0].item(), rel=1e-6)  # C×H×W
    assert fn(x[0, :1], y[0, :1], 1.0).shape == ()
    assert fn(x[0, 0], y[0, 0], 1.0).item() == pytest.approx(fn(x[0, :1], y[0, :1], 1.0).item())  # H×W


def test_identical_images():
    x, _ = rand_pair((1, 3, 180, 180))
    assert turboiqa.ssim(x, x, 1.0).item() == pytest.approx(1.0, abs=1e-6)
    assert turboiqa.ms_ssim(x, x, 1.0).item() == pytest.approx(1.0, abs=1e-6)
    assert turboiqa.psnr(x, x, 1.0).item() == float("inf")
    assert turboiqa.psnr(x, x, 1.0, max_db=100.0).item() == 100.0


def test_psnr_hand_checked():
    x = torch.zeros(1, 1, 4, 4)
    y = torch.full((1, 1, 4, 4), 0.1)
    assert turboiqa.psnr(x, y, 1.0).item() == pytest.approx(20.0, abs=1e-5)  # mse = 0.01
    xu, yu = torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert turboiqa.psnr(xu, yu, 255).item() == pytest.approx(0.0, abs=1e-6)
    assert turboiqa.psnr(x, y, 1.0, crop_border=1).item() == pytest.approx(20.0, abs=1e-5)


def test_uint8_and_float_agree():
    x, y = rand_pair((1, 1, 64, 64))
    xu, yu = (x * 255).round().to(torch.uint8), (y * 255).round().to(torch.uint8)
    a = turboiqa.ssim(xu, yu, 255).item()
    b = turboiqa.ssim(xu.double() / 255, yu.double() / 255, 1.0).item()
    assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("module, fn", [(turboiqa.SSIM, turboiqa.ssim), (turboiqa.MS_SSIM, turboiqa.ms_ssim)])
def test_modules_and_loss_gradients(module, fn):
    x, y = rand_pair((2, 3, 180, 180), dtype=torch.float64)
    m = module(data_range=1.0, convention="pytorch_msssim" if fn is turboiqa.ssim else "piq")
    assert m(x, y).item() == pytest.approx(fn(x, y, 1.0, convention=m.kwargs["convention"]).item())
    loss = module(data_range=1.0, loss=True)
    x = x.clone().requires_grad_()
    value = loss(x, y)
    value.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    if turboiqa.HAVE_NATIVE:  # native and reference backward agree through the whole metric
        xr = x.detach().clone().requires_grad_()
        fn(xr, y, 1.0, backend="reference").backward()
        xn = x.detach().clone().requires_grad_()
        fn(xn, y, 1.0, backend="native").backward()
        torch.testing.assert_close(xn.grad, xr.grad, atol=1e-9, rtol=1e-6)


def test_psnr_module():
    x, y = rand_pair()
    assert turboiqa.PSNR(data_range=1.0)(x, y).item() == pytest.approx(turboiqa.psnr(x, y, 1.0).item())


@pytest.mark.parametrize("fn", [turboiqa.ssim, turboiqa.ms_ssim, turboiqa.psnr])
def test_bad_input_errors(fn):
    x, y = rand_pair((1, 3, 200, 200))
    with pytest.raises(ValueError, match="same shape"):
        fn(x, y[..., :-1], 1.0)
    with pytest.raises(TypeError, match="same dtype"):
        fn(x, y.double(), 1.0)
    with pytest.raises(TypeError, match="uint8 or floating"):
        fn(x.to(torch.int32), y.to(torch.int32), 1.0)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        fn(bad, y, 1.0)
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        fn(bad, y, 1.0)
    with pytest.raises(ValueError, match=r"outside \[0, data_range=1.0\]"):
        fn(x * 255, y * 255, 1.0)
    with pytest.raises(ValueError, match="data_range must be 255"):
        fn((x * 255).to(torch.uint8), (y * 255).to(torch.uint8), 1.0)
    with pytest.raises(ValueError, match="reduction"):
        fn(x, y, 1.0, reduction="avg")
    with pytest.raises(ValueError, match="H×W, C×H×W or N×C×H×W"):
        fn(x[None], y[None], 1.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(x.numpy(), y, 1.0)


def test_too_small_errors():
    x, y = rand_pair((1, 1, 8, 30))
    with pytest.raises(ValueError, match="smaller than the 11×11 window"):
        turboiqa.ssim(x, y, 1.0)
    assert turboiqa.ssim(x, y, 1.0, padding="symmetric").shape == ()  # 'same' borders work on any size
    x, y = rand_pair((1, 1, 100, 120))
    with pytest.raises(ValueError, match=r"at least 176×176.*scales=4"):
        turboiqa.ms_ssim(x, y, 1.0)
    assert turboiqa.ms_ssim(x, y, 1.0, scales=4).shape == ()
    with pytest.raises(ValueError, match="convention must be one of"):
        turboiqa.ssim(x, y, 1.0, convention="matlab2")


def test_ms_ssim_fewer_scales_renormalises_weights():
    x, y = rand_pair((1, 1, 96, 96), dtype=torch.float64)
    from turboiqa import _ops
    from turboiqa.window import gaussian_window

    w = torch.tensor([0.0448, 0.2856, 0.3001], dtype=torch.float64)
    w = w * (1.0 / w.sum())
    got = turboiqa.ms_ssim(x, y, 1.0, scales=3, convention="matlab").item()
    # hand-built: two halvings, cs at scales 1-2, ssim at scale 3
    from turboiqa.metrics.ms_ssim import halve

    c1, c2 = 1e-4, 9e-4
    _, cs1 = _ops.ssim_stats(x, y, gaussian_window(), c1, c2, "valid")
    x2, y2 = halve(x, "matlab"), halve(y, "matlab")
    _, cs2 = _ops.ssim_stats(x2, y2, gaussian_window(), c1, c2, "valid")
    x3, y3 = halve(x2, "matlab"), halve(y2, "matlab")
    s3, _ = _ops.ssim_stats(x3, y3, gaussian_window(), c1, c2, "valid")
    want = cs1.item() ** w[0].item() * cs2.item() ** w[1].item() * s3.item() ** w[2].item()
    assert got == pytest.approx(want, rel=1e-10)


def test_module_repr_and_psnr_has_no_loss():
    assert "loss=True" in repr(turboiqa.SSIM(data_range=255, loss=True))
    with pytest.raises(ValueError, match="no loss form"):
        turboiqa.PSNR(loss=True)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("options", [{}, {"reduction": "none"}, {"reduction": "sum"}, {"eps": 1e-8},
                                     {"max_db": 30.0}, {"color": "ycbcr", "crop_border": 2}])
def test_psnr_native_tail_equals_tensor_path(dtype, options):
    # Calls without a gradient finish inside the native psnr_db op; with requires_grad the same values come from
    # tensor ops on squared_error_sum. Both must agree to the last bit, identical pairs (inf) included.
    g = torch.Generator().manual_seed(5)
    x = torch.rand(3, 3, 21, 34, generator=g, dtype=torch.float64)
    y = (x + 0.05 * torch.randn(3, 3, 21, 34, generator=g, dtype=torch.float64)).clamp(0, 1)
    y[1] = x[1]  # an identical pair
    peak = 255 if dtype == torch.uint8 else 1.0
    x, y = ((t * 255).round().to(dtype) if dtype == torch.uint8 else t.to(dtype) for t in (x, y))
    if dtype == torch.uint8 and "color" in options:
        pytest.skip("uint8 luma is rounded to uint8 first: no tensor-path twin to compare with")
    host = turboiqa.psnr(x, y, peak, **options)
    if dtype == torch.uint8:  # uint8 has no gradient: the tensor formula on the same sums instead
        sse, _ = turboiqa._ops.squared_error_sum(x, y)
        values = -10 * torch.log10(sse / x[0].numel() / peak**2 + options.get("eps", 0.0))
        if "max_db" in options:
            values = values.clamp(max=options["max_db"])
        reduction = options.get("reduction", "mean")
        assert torch.equal(host, values.float() if reduction == "none" else getattr(values.float(), reduction)())
        return
    tensor_path = turboiqa.psnr(x.clone().requires_grad_(), y, peak, **options).detach()
    assert host.dtype == tensor_path.dtype and host.shape == tensor_path.shape
    assert torch.equal(host, tensor_path)


@pytest.mark.parametrize("metric", ["psnr", "ssim", "ms_ssim", "fsim", "iw_ssim"])
@pytest.mark.parametrize("data_range", [math.inf, math.nan, -1.0, 0.0])
def test_data_range_must_be_positive_and_finite(metric, data_range):
    # Issue 11 #8: data_range=inf was accepted (PSNR inf, SSIM NaN).
    x = torch.rand(1, 1, 200, 200)
    with pytest.raises(ValueError, match="data_range must be a positive finite number"):
        getattr(turboiqa, metric)(x, x, data_range)


@pytest.mark.parametrize("sigma", [math.nan, math.inf, 0.0])
def test_kernel_sigma_must_be_positive_and_finite(sigma):
    x = torch.rand(1, 1, 40, 40)
    for backend in ("native", "reference"):
        with pytest.raises(ValueError, match="kernel_sigma must be a positive finite number"):
            turboiqa.ssim(x, x, 1.0, kernel_sigma=sigma, backend=backend)


@pytest.mark.parametrize("epsilon, pc_eps", [(math.nan, 1e-4), (1e-4, math.nan), (-1.0, 1e-4), (1e-4, math.inf)])
def test_pc_energy_rejects_non_finite_constants(epsilon, pc_eps):
    # Issue 11 #8: epsilon=nan gave 0 natively and NaN in the twin.
    eo, threshold = torch.randn(1, 1, 4, 3, 9, 8, 2), torch.rand(1, 1, 4)
    with pytest.raises(RuntimeError, match="must be finite and >= 0"):
        torch.ops.turboiqa.pc_energy(eo, threshold, epsilon, pc_eps)


@pytest.mark.parametrize("scale", [1e-12, 1e-10, 1e10, 1e12])
def test_ssim_is_scale_invariant_in_float32(scale):
    # Issue 11 #2: the native kernel formed 1 / (cs_den * l_den), which over/underflows float32 at these scales
    # (inf/NaN where the reference path gives the unscaled value).
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 1, 64, 64, generator=g)
    y = (x + 0.05 * torch.randn(1, 1, 64, 64, generator=g)).clamp(0, 1)
    want = turboiqa.ssim(x.double(), y.double(), 1.0, backend="reference").item()
    for fn in (turboiqa.ssim, turboiqa.ms_ssim):
        kwargs = {"scales": 2} if fn is turboiqa.ms_ssim else {}
        got = fn(x * scale, y * scale, scale, backend="native", **kwargs).item()
        ref = fn(x.double(), y.double(), 1.0, backend="reference", **kwargs).item()
        assert math.isfinite(got) and got == pytest.approx(ref, abs=1e-5), (fn.__name__, got, ref)
    assert turboiqa.ssim(x * scale, y * scale, scale, backend="native").item() == pytest.approx(want, abs=1e-5)


def test_ms_ssim_without_c1_on_black_regions():
    # Issue 11 #2: with k1 = 0 a window inside a black region has l_den = 0; the coupled division made its cs NaN
    # at the fine scales, where only cs is used. The square is smaller than a window at the coarsest scale, whose
    # luminance term stays defined.
    g = torch.Generator().manual_seed(6)
    x = torch.rand(1, 1, 200, 200, generator=g)
    y = (x + 0.02 * torch.rand(1, 1, 200, 200, generator=g)).clamp(0, 1)
    x[..., 80:110, 80:110] = 0
    y[..., 80:110, 80:110] = 0
    got = turboiqa.ms_ssim(x, y, 1.0, k1=0.0, scales=3, backend="native").item()
    want = turboiqa.ms_ssim(x.double(), y.double(), 1.0, k1=0.0, scales=3, backend="reference").item()
    assert math.isfinite(got) and got == pytest.approx(want, abs=1e-5)


def test_too_small_error_names_the_layout():
    # Issue 11 (clear errors): an H×W×C image read as C×H×W was reported as "192×3 ... smaller than the window".
    hwc = torch.rand(64, 80, 3)
    for fn in (turboiqa.ssim, turboiqa.ms_ssim, turboiqa.iw_ssim):
        with pytest.raises(ValueError, match=r"permute\(2, 0, 1\)"):
            fn(hwc, hwc, 1.0)


def test_warns_when_the_images_use_a_sliver_of_data_range():
    # Issue 11 (new user): [0, 1] floats passed with data_range=255 scored silently (SSIM 0.99997, PSNR 76.9 dB).
    import warnings

    x = torch.rand(1, 3, 64, 64)
    y = (x + 0.05).clamp(0, 1)
    for fn in (turboiqa.psnr, turboiqa.ssim):
        with pytest.warns(UserWarning, match="pass data_range=1.0"):
            fn(x, y, 255)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fn(x, y, 1.0)
            fn(x * 255, y * 255, 255)


def test_sample_covariance_needs_more_than_one_tap():
    # Issue 11 fuzz: convention='skimage' with kernel_size=1 divided by zero in n / (n - 1) (ZeroDivisionError).
    x = torch.rand(1, 1, 16, 16)
    for backend in ("native", "reference"):
        with pytest.raises(ValueError, match="kernel_size=1 has no sample covariance"):
            turboiqa.ssim(x, x, 1.0, convention="skimage", kernel_size=1, backend=backend)


def test_unknown_padding_is_a_value_error_on_both_backends():
    # Issue 11 fuzz: padding='mirror' reached the native operator, whose TORCH_CHECK raised RuntimeError (the
    # reference path raised ValueError).
    x = torch.rand(1, 1, 16, 16)
    for backend in ("native", "reference"):
        with pytest.raises(ValueError, match="padding must be one of"):
            turboiqa.ssim(x, x, 1.0, padding="mirror", backend=backend)
