"""Same numbers as the peers under their own settings (each test skips when that peer is not installed)."""

import numpy as np
import pytest
import torch
import turboiqa
from conftest import import_or_skip, skip_missing
import peer_stubs


def pair(shape=(2, 3, 181, 179), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    # smooth content plus noise, so SSIM is far from both 0 and 1
    x = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    y = (x + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def import_piq_module(name):
    module = peer_stubs.import_piq_module(name)
    if module is None:
        skip_missing("piq not installed")
    return module


SHAPES = [(2, 3, 181, 179), (1, 1, 200, 256)]


@pytest.mark.parametrize("shape", SHAPES)
def test_pytorch_msssim(shape):
    pm = import_or_skip("pytorch_msssim")
    x, y = pair(shape)
    # pytorch-msssim rounds its window to float32 and never renormalises it (taps sum to 1 ± 6e-8); on [0, 1]
    # data that shifts SSIM by ~2e-6, so the tolerance here is wider than for the other peers.
    want = pm.ssim(x, y, data_range=1.0, size_average=False)
    torch.testing.assert_close(turboiqa.ssim(x, y, 1.0, "none", convention="pytorch_msssim"), want, atol=5e-6, rtol=0)
    want = pm.ms_ssim(x, y, data_range=1.0, size_average=False)
    torch.testing.assert_close(turboiqa.ms_ssim(x, y, 1.0, "none", convention="pytorch_msssim"), want, atol=5e-6,
                               rtol=0)
    xu, yu = (x * 255).round().float(), (y * 255).round().float()  # its default data_range=255, float32
    torch.testing.assert_close(turboiqa.ssim(xu, yu, 255, convention="pytorch_msssim"), pm.ssim(xu, yu),
                               atol=5e-6, rtol=0)


@pytest.mark.parametrize("shape", SHAPES + [(1, 3, 400, 500)])
def test_piq(shape):
    piq_ssim = import_piq_module("ssim")
    piq_ms = import_piq_module("ms_ssim")
    piq_psnr = import_piq_module("psnr")
    x, y = pair(shape)
    torch.testing.assert_close(turboiqa.ssim(x, y, 1.0, "none", convention="piq"),
                               piq_ssim.ssim(x, y, data_range=1.0, reduction="none"), atol=1e-7, rtol=0)
    if min(shape[-2:]) >= 161:
        torch.testing.assert_close(turboiqa.ms_ssim(x, y, 1.0, "none", convention="piq"),
                                   piq_ms.multi_scale_ssim(x, y, data_range=1.0, reduction="none"), atol=1e-7, rtol=0)
    torch.testing.assert_close(turboiqa.psnr(x, y, 1.0, "none", eps=1e-8),
                               piq_psnr.psnr(x, y, 1.0, reduction="none"), atol=1e-9, rtol=0)
    if shape[1] == 3:
        torch.testing.assert_close(turboiqa.psnr(x, y, 1.0, "none", color="yiq", eps=1e-8),
                                   piq_psnr.psnr(x, y, 1.0, reduction="none", convert_to_greyscale=True),
                                   atol=1e-9, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_torchmetrics(shape):
    tm = import_or_skip("torchmetrics.functional.image")
    x, y = pair(shape)
    want = tm.structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
    torch.testing.assert_close(turboiqa.ssim(x, y, 1.0, "none", convention="torchmetrics"), want, atol=1e-7, rtol=0)
    want = tm.multiscale_structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
    # torchmetrics rounds its weights to float32 first (a ~1e-9 effect).
    torch.testing.assert_close(turboiqa.ms_ssim(x, y, 1.0, "none", convention="torchmetrics"), want, atol=1e-7,
                               rtol=0)
    want = tm.peak_signal_noise_ratio(x, y, data_range=1.0, dim=(1, 2, 3), reduction="none")
    # torchmetrics converts ln → log10 with a float32 constant (10 / log(tensor(10.))): 5e-8 relative.
    torch.testing.assert_close(turboiqa.psnr(x, y, 1.0, "none"), want, atol=0, rtol=1e-7)


@pytest.mark.parametrize("shape", SHAPES)
def test_kornia(shape):
    kornia = import_or_skip("kornia")
    x, y = pair(shape)
    want = kornia.metrics.ssim(x, y, 11, max_val=1.0, eps=0.0).mean(dim=(1, 2, 3))
    torch.testing.assert_close(turboiqa.ssim(x, y, 1.0, "none", convention="kornia"), want, atol=1e-7, rtol=0)
    want = kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="valid").mean(dim=(1, 2, 3))
    torch.testing.assert_close(turboiqa.ssim(x, y, 1.0, "none", convention="pytorch_msssim"), want, atol=1e-7,
                               rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_skimage(shape):
    metrics = import_or_skip("skimage.metrics")
    x, y = pair(shape)
    for i in range(shape[0]):
        xi, yi = x[i].numpy(), y[i].numpy()
        default = metrics.structural_similarity(xi, yi, data_range=1.0, channel_axis=0)
        gaussian = metrics.structural_similarity(xi, yi, data_range=1.0, channel_axis=0, gaussian_weights=True,
                                                 sigma=1.5)
        wang = metrics.structural_similarity(xi, yi, data_range=1.0, channel_axis=0, gaussian_weights=True,
                                             sigma=1.5, use_sample_covariance=False)
        assert turboiqa.ssim(x[i], y[i], 1.0, convention="skimage").item() == pytest.approx(default, abs=1e-10)
        assert turboiqa.ssim(x[i], y[i], 1.0, convention="skimage_gaussian").item() == pytest.approx(gaussian,
                                                                                                    abs=1e-10)
        assert turboiqa.ssim(x[i], y[i], 1.0, convention="pytorch_msssim").item() == pytest.approx(wang, abs=1e-10)
        assert turboiqa.psnr(x[i], y[i], 1.0).item() == pytest.approx(
            metrics.peak_signal_noise_ratio(xi, yi, data_range=1.0), abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_skimage_precision_follows_skimage(dtype):
    # Issue 12: convention='skimage' computed uint8/float32 in float32 and missed skimage by 1.2e-6–3.2e-6 (its own
    # tests assert 7 decimals for uint8, float32 and float64 input alike); it now computes in float64.
    metrics = import_or_skip("skimage.metrics")
    x, y = pair((2, 3, 97, 130))
    peak = 255 if dtype == torch.uint8 else 1.0
    x, y = ((t * 255).round().to(dtype) if dtype == torch.uint8 else t.to(dtype) for t in (x, y))
    for convention, kwargs in (("skimage", {}), ("skimage_gaussian", {"gaussian_weights": True, "sigma": 1.5})):
        got = turboiqa.ssim(x, y, peak, "none", convention=convention)
        assert got.dtype == torch.float64
        for i in range(2):
            want = metrics.structural_similarity(x[i].numpy(), y[i].numpy(), data_range=peak, channel_axis=0,
                                                 **kwargs)
            # uint8: skimage converts to float64, so equal to 1e-10. float32: skimage keeps float32 (its filters
            # round there), 4e-8 from the float64 value we compute; its own tests hold float32 to 7 decimals.
            assert got[i].item() == pytest.approx(want, abs=1e-10 if dtype == torch.uint8 else 1e-7)


def test_skimage_on_uint8_grey(tid_pairs):
    metrics = import_or_skip("skimage.metrics")
    from turboiqa.colour import to_luma

    dist, ref = tid_pairs[0]
    gd, gr = to_luma(dist, "rgb2gray", 255), to_luma(ref, "rgb2gray", 255)
    want = metrics.structural_similarity(gd[0, 0].numpy(), gr[0, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=255)
    assert turboiqa.ssim(dist, ref, 255).item() == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_frame_analytics(shape):
    fa = import_or_skip("frame_analytics")
    x, y = pair(shape, dtype=torch.float32)
    want = fa.ssim(x, y, data_range=1.0, reduction="none")
    got = turboiqa.ssim(x, y, 1.0, "none", convention="frame_analytics")
    np.testing.assert_allclose(got.double().numpy(), np.asarray(want, dtype=np.float64), atol=1e-6)
    want = fa.ms_ssim(x, y, data_range=1.0, reduction="none")
    got = turboiqa.ms_ssim(x, y, 1.0, "none", convention="frame_analytics")
    np.testing.assert_allclose(got.double().numpy(), np.asarray(want, dtype=np.float64), atol=1e-6)
    want = fa.psnr(x, y, data_range=1.0, reduction="none")
    np.testing.assert_allclose(turboiqa.psnr(x, y, 1.0, "none").double().numpy(), np.asarray(want), atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
def test_pyiqa_psnr(shape):
    """pyiqa's psnr (README: eps 1e-8 on the normalised MSE; 'mean' averages per-image PSNR), loaded through
    peer_stubs (pyiqa's __init__ needs torchvision)."""
    from peer_stubs import import_pyiqa_arch

    psnr_arch = import_pyiqa_arch("psnr_arch")
    if psnr_arch is None:
        skip_missing("pyiqa not installed")
    x, y = pair(shape)
    want = psnr_arch.psnr(x, y, data_range=1.0)
    torch.testing.assert_close(turboiqa.psnr(x, y, 1.0, "none", eps=1e-8), want, atol=1e-9, rtol=0)
    torch.testing.assert_close(turboiqa.psnr(x, y, 1.0, eps=1e-8), want.mean(), atol=1e-9, rtol=0)
    if shape[1] == 3:  # test_y_channel: YIQ luma (pyiqa's weights are float32 constants: 1e-7 dB apart)
        torch.testing.assert_close(turboiqa.psnr(x, y, 1.0, "none", color="yiq", eps=1e-8),
                                   psnr_arch.psnr(x, y, test_y_channel=True, data_range=1.0), atol=1e-6, rtol=0)
