"""GMSD and MS-GMSD: MATLAB GMSD.m values (piq's i01 value, pyiqa's official values), parity with piq, pyiqa and
frame-analytics, hand-checked conventions, batches, dtypes, autograd and errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import import_or_skip, skip_missing
from grad_common import TOLERANCE, as_input, reference_values, smooth_pair, tid_pair
from peer_stubs import import_piq_module, import_pyiqa_arch
from turboiqa.metrics.gmsd import (GMSD, GMSD_CONVENTIONS, MS_GMSD, MS_GMSD_WEIGHTS, gms_map, gmsd, gradients,
                                   halve, ms_gmsd)

pytestmark = pytest.mark.usefixtures("one_thread")
KINDS = ["uint8", "float32", "float64"]


def frame_analytics():
    """frame-analytics without its torch.compile fast path (eager: the same formulas, no compile time)."""
    fa = import_or_skip("frame_analytics")
    fa.functional.set_compile_enabled(False)
    return fa


def piq_gmsd():
    module = import_piq_module("gmsd")
    if module is None:
        skip_missing("piq not installed")
    return module


# ---------------------------------------------------------------------------------------------- MATLAB values


@pytest.mark.parametrize("kind", KINDS)
def test_matlab_values(kind):
    """i01_01_5: GMSD.m on Y = 0.299R + 0.587G + 0.114B (piq's MATLAB value); the other five: GMSD.m on MATLAB's
    rgb2gray of the 8-bit images (pyiqa's official values, reproduced here to 1e-15 in float64)."""
    values = reference_values("gmsd")
    assert len(values) == 6
    for dist, want in values.items():
        x, y = tid_pair(dist)
        x, L = as_input(x, kind)
        y, _ = as_input(y, kind)
        color = "yiq" if dist == "i01_01_5.bmp" else "rgb2gray_uint8"
        got = gmsd(x, y, L, color=color).item()
        assert got == pytest.approx(want, abs=TOLERANCE[kind]), dist


def test_luma_choice_matters_where_the_values_say():
    """The unrounded luma misses pyiqa's official value on the colour-saturation pair by half its size: the two
    reference sources really used different lumas."""
    values = reference_values("gmsd")
    x, y = tid_pair("i04_18_5.bmp")
    want = values["i04_18_5.bmp"]
    assert gmsd(x.double() / 255, y.double() / 255, color="yiq").item() < 0.6 * want
    x, y = tid_pair("i01_01_5.bmp")
    assert abs(gmsd(x, y, 255, color="rgb2gray_uint8").item() - values["i01_01_5.bmp"]) > 1e-6


# ---------------------------------------------------------------------------------------------- peers


@pytest.mark.parametrize("shape", [(2, 3, 61, 67), (1, 1, 64, 50), (2, 3, 40, 41)])
def test_piq_random(shape):
    piq = piq_gmsd()
    x, y = smooth_pair(shape)
    want = piq.gmsd(x, y, data_range=1.0, reduction="none")
    torch.testing.assert_close(gmsd(x, y, 1.0, "none", convention="piq"), want, atol=1e-12, rtol=0)
    # MATLAB's std2 divides by N − 1, piq's by N: nothing else differs
    n = math.ceil(shape[-2] / 2) * math.ceil(shape[-1] / 2)
    torch.testing.assert_close(gmsd(x, y, 1.0, "none"), want * math.sqrt(n / (n - 1)), atol=1e-12, rtol=0)
    if min(shape[-2:]) >= 17:
        for chromatic in (False, True) if shape[1] == 3 else (False,):
            torch.testing.assert_close(ms_gmsd(x, y, 1.0, "none", chromatic=chromatic),
                                       piq.multi_scale_gmsd(x, y, data_range=1.0, reduction="none",
                                                            chromatic=chromatic), atol=1e-12, rtol=0)


def test_piq_real_images():
    piq = piq_gmsd()
    x, y = tid_pair("i01_01_5.bmp")
    x, y = x.double() / 255, y.double() / 255
    torch.testing.assert_close(gmsd(x, y, convention="piq"), piq.gmsd(x, y), atol=1e-12, rtol=0)
    assert gmsd(x, y, convention="piq").item() == pytest.approx(reference_values("gmsd")["i01_01_5.bmp"], abs=2e-6)
    for chromatic in (False, True):
        torch.testing.assert_close(ms_gmsd(x, y, chromatic=chromatic),
                                   piq.multi_scale_gmsd(x, y, chromatic=chromatic), atol=1e-12, rtol=0)
    w = torch.tensor([3.0, 4.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(ms_gmsd(x, y, scale_weights=w),
                               piq.multi_scale_gmsd(x, y, scale_weights=w), atol=1e-12, rtol=0)


@pytest.mark.parametrize("shape", [(2, 3, 61, 67), (1, 3, 48, 40)])
def test_pyiqa(shape):
    arch = import_pyiqa_arch("gmsd_arch")
    if arch is None:
        skip_missing("pyiqa not installed")
    x, y = smooth_pair(shape)
    torch.testing.assert_close(gmsd(x, y, 1.0, "none", convention="pyiqa"), arch.gmsd(x, y), atol=1e-12, rtol=0)
    d, r = tid_pair("i19_10_5.bmp")
    d, r = d.double() / 255, r.double() / 255
    torch.testing.assert_close(gmsd(d, r, convention="pyiqa"), arch.GMSD()(d, r)[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("shape", [(2, 3, 61, 67), (1, 1, 64, 50)])
def test_frame_analytics(shape):
    fa = frame_analytics()
    x, y = smooth_pair(shape, seed=3)
    torch.testing.assert_close(gmsd(x, y, 1.0, "none", convention="frame_analytics"),
                               fa.gmsd(x, y, data_range=1.0, reduction="none"), atol=1e-12, rtol=0)
    torch.testing.assert_close(ms_gmsd(x, y, 1.0, "none", convention="frame_analytics"),
                               fa.ms_gmsd(x, y, data_range=1.0, reduction="none"), atol=1e-12, rtol=0)
    # float32: frame-analytics' native kernel against our float32 path
    x32, y32 = x.float(), y.float()
    torch.testing.assert_close(gmsd(x32, y32, 1.0, "none", convention="frame_analytics").double(),
                               fa.gmsd(x32, y32, data_range=1.0, reduction="none").double(), atol=1e-7, rtol=0)


# ---------------------------------------------------------------------------------------------- conventions


def test_conv2_same_pooling_and_prewitt_by_hand():
    """GMSD.m step by step in plain loops-free torch on a 7×9 image (odd sides: the zero row/column of conv2)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 7, 9, generator=g, dtype=torch.float64) * 255
    padded = F.pad(x, (0, 1, 0, 1))  # conv2(x, ones(2)/4, 'same') looks forward: a zero after the last sample
    want = F.avg_pool2d(padded, 2)
    torch.testing.assert_close(halve(x, "zeros", "auto"), want)
    torch.testing.assert_close(halve(x, "floor", "auto"), F.avg_pool2d(x, 2))
    k = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64)
    gx, gy = gradients(want, (1.0, 1.0, 1.0), padding=1)
    ref = F.conv2d(want, torch.stack([k, k.t()])[:, None], padding=1)
    torch.testing.assert_close(gx * gx + gy * gy, (ref * ref).sum(1, keepdim=True))


def test_std_is_std2_and_gms_formula():
    x, y = smooth_pair((1, 1, 30, 34))
    m1, m2 = (x * 255).square(), (y * 255).square()
    q = gms_map(m1, m2, 170.0)
    g1, g2 = m1.sqrt(), m2.sqrt()
    torch.testing.assert_close(q, (2 * g1 * g2 + 170) / (g1**2 + g2**2 + 170))
    torch.testing.assert_close(gms_map(m1, m2, 170.0, 0.5),
                               (1.5 * g1 * g2 + 170) / (g1**2 + g2**2 - 0.5 * g1 * g2 + 170))


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_fused_map_equals_composable_map(alpha, backend):
    """The fused gradient-similarity operator's map (normalisation folded into T natively) against the composable
    one, on odd sizes and a flat plane; the autograd path gives the same GMSD."""
    from turboiqa import _ops
    from turboiqa.metrics.gmsd import gradient_sq

    if backend == "native" and not _ops.HAVE_NATIVE:
        pytest.skip("compiled extension not loaded")
    x, y = smooth_pair((2, 1, 23, 30))
    x, y = x * 255, y * 255
    y[1] = 128.0
    for eps in (0.0, 1e-12):
        want = gms_map(gradient_sq(x, 1, eps), gradient_sq(y, 1, eps), 170.0, alpha)
        got = _ops.gradient_similarity(x, y, (1, 1, 1), 1 / 3, 170.0, alpha, eps, "zeros", "map", backend)
        torch.testing.assert_close(got, want, atol=1e-14, rtol=0)
    with torch.enable_grad():
        a = x.clone().requires_grad_(True)
        torch.testing.assert_close(gmsd(a / 255, y / 255), gmsd(x / 255, y / 255), atol=1e-14, rtol=0)


def test_identical_zero_and_symmetric():
    x, y = smooth_pair()
    for convention in GMSD_CONVENTIONS:
        assert gmsd(y, y, convention=convention).item() == pytest.approx(0.0, abs=1e-12)
        torch.testing.assert_close(gmsd(x, y, 1.0, "none", convention=convention),
                                   gmsd(y, x, 1.0, "none", convention=convention))
    assert ms_gmsd(y, y).item() == pytest.approx(0.0, abs=1e-12)
    assert gmsd(x, y).item() > 0.01


def test_default_weights_and_t():
    x, y = smooth_pair()
    torch.testing.assert_close(ms_gmsd(x, y, scale_weights=MS_GMSD_WEIGHTS), ms_gmsd(x, y))
    # weights are normalised: scaling them changes nothing
    torch.testing.assert_close(ms_gmsd(x, y, scale_weights=[2 * w for w in MS_GMSD_WEIGHTS]), ms_gmsd(x, y))
    assert gmsd(x, y, t=1000.0).item() < gmsd(x, y).item()


# ---------------------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("metric", [gmsd, ms_gmsd])
def test_uint8_float_and_data_range(metric):
    x, y = smooth_pair((1, 3, 41, 52))
    x8, y8 = (x * 255).round().to(torch.uint8), (y * 255).round().to(torch.uint8)
    a = metric(x8, y8, 255).item()
    b = metric(x8.double() / 255, y8.double() / 255, 1.0).item()
    c = metric(x8.double(), y8.double(), 255.0).item()
    assert a == pytest.approx(b, abs=1e-6) and b == pytest.approx(c, abs=1e-12)
    assert metric(x.float(), y.float()).dtype == torch.float32
    assert metric(x, y).dtype == torch.float64


@pytest.mark.parametrize("metric", [gmsd, ms_gmsd])
def test_batch_equals_single(metric, device):
    x, y = smooth_pair((3, 3, 37, 45))
    x, y = x.to(device), y.to(device)
    batched = metric(x, y, 1.0, "none")
    assert batched.shape == (3,)
    single = torch.cat([metric(x[i:i + 1], y[i:i + 1], 1.0, "none") for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-12, rtol=0)
    assert metric(x, y).item() == pytest.approx(batched.mean().item(), abs=1e-12)
    assert metric(x, y, 1.0, "sum").item() == pytest.approx(batched.sum().item(), abs=1e-12)
    assert metric(x[0], y[0]).item() == pytest.approx(batched[0].item(), abs=1e-12)  # C×H×W


@pytest.mark.parametrize("convention", list(GMSD_CONVENTIONS))
def test_gradcheck_gmsd(convention):
    x, y = smooth_pair((1, 3, 12, 13), noise=0.2)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: gmsd(a, y, 1.0, convention=convention, color="yiq"), (x,),
                                    eps=1e-6, atol=1e-5)
    if convention == "frame_analytics":
        assert torch.autograd.gradcheck(lambda a: gmsd(a, y, 1.0, convention=convention), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("chromatic", [False, True])
def test_gradcheck_ms_gmsd(chromatic):
    x, y = smooth_pair((1, 3, 11, 10), noise=0.2)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: ms_gmsd(a, y, 1.0, chromatic=chromatic, scale_weights=[0.6, 0.4]),
                                    (x,), eps=1e-6, atol=1e-5)


def test_gradient_finite_on_flat_regions():
    y = torch.full((1, 3, 32, 32), 0.5, dtype=torch.float64)
    x = y.clone()
    x[..., 10:20, 10:20] = 0.7
    x.requires_grad_(True)
    gmsd(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    x.grad = None
    ms_gmsd(x, y, chromatic=True).backward()
    assert torch.isfinite(x.grad).all()


def test_rounded_lumas_keep_a_gradient():
    x, y = smooth_pair((1, 3, 16, 16), noise=0.2)
    for color in ("rgb2gray_uint8", "yiq_uint8"):
        a = x.clone().requires_grad_(True)
        gmsd(a, y, color=color).backward()
        assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_module_equals_functional():
    x, y = smooth_pair()
    torch.testing.assert_close(GMSD()(x, y), gmsd(x, y))
    torch.testing.assert_close(GMSD(1.0, "none", convention="pyiqa")(x, y), gmsd(x, y, 1.0, "none",
                                                                                 convention="pyiqa"))
    torch.testing.assert_close(MS_GMSD(chromatic=True)(x, y), ms_gmsd(x, y, chromatic=True))
    assert gmsd.lower_is_better and ms_gmsd.lower_is_better
    with pytest.raises(ValueError, match="no loss form"):
        GMSD(loss=True)
    with pytest.raises(TypeError, match="chromatc"):
        MS_GMSD(chromatc=True)


def test_errors():
    x, y = smooth_pair((1, 3, 40, 40))
    with pytest.raises(ValueError, match="convention"):
        gmsd(x, y, convention="matlab2")
    with pytest.raises(ValueError, match="color"):
        gmsd(x, y, color="lab")
    with pytest.raises(ValueError, match="at least 4"):
        gmsd(x[..., :3, :], y[..., :3, :])
    with pytest.raises(ValueError, match="channels"):
        gmsd(x[:, :2], y[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        gmsd(x, y[..., 1:])
    with pytest.raises(ValueError, match="outside"):
        gmsd(x * 2, y)
    with pytest.raises(ValueError, match="at least 17"):
        ms_gmsd(x[..., :16, :], y[..., :16, :])
    with pytest.raises(ValueError, match="chromatic"):
        ms_gmsd(x[:, :1], y[:, :1], chromatic=True)
    with pytest.raises(ValueError, match="scale_weights"):
        ms_gmsd(x, y, scale_weights=[-1.0, 1.0])
    with pytest.raises(ValueError, match="convention"):
        ms_gmsd(x, y, convention="matlab")
