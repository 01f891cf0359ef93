"""SSIM, MS-SSIM and PSNR on 1080p grey, RGB and 8×RGB, float32 and uint8: turboiqa native vs its reference path vs
the peers, on the same inputs (uint8 converted to float once, outside the timed call, for peers that need float).

Run: python -m pytest bench/bench_metrics.py --benchmark-only --benchmark-json=bench/results-cpu.json
then python bench/make_table.py bench/results-cpu.json
"""
import numpy as np
import pytest
import torch
import turboiqa
from conftest import import_piq, make_inputs, optional, run_timed

INPUTS = ["grey-f32", "grey-u8", "rgb-f32", "rgb-u8", "8xrgb-f32", "8xrgb-u8"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SLOW_PEERS_MAX_BATCH = 1  # peers slower than ~0.3 s per frame are only timed on single frames


def as_float(t, data_range):
    return t.float() / 255 if t.dtype == torch.uint8 else t


def implementations(metric, device):
    """name -> callable(ref, dist, data_range) -> value, or None when the peer is missing."""
    pm, tmf, kornia = optional("pytorch_msssim"), optional("torchmetrics.functional.image"), optional("kornia")
    skm, fa = optional("skimage.metrics"), optional("frame_analytics")
    impls = {}
    if metric == "ssim":
        impls["turboiqa"] = lambda r, d, L: turboiqa.ssim(d, r, L, convention="pytorch_msssim", backend="native")
        impls["turboiqa-reference"] = lambda r, d, L: turboiqa.ssim(d, r, L, convention="pytorch_msssim",
                                                                    backend="reference")
        if pm:
            impls["pytorch-msssim"] = lambda r, d, L: pm.ssim(d, r, data_range=1.0)
        piq_ssim = import_piq("ssim")
        if piq_ssim:
            impls["piq"] = lambda r, d, L: piq_ssim.ssim(d, r, data_range=1.0, downsample=False)
        if kornia:
            impls["kornia"] = lambda r, d, L: kornia.metrics.ssim(d, r, 11, max_val=1.0, padding="valid").mean()
        if tmf:
            impls["torchmetrics"] = lambda r, d, L: tmf.structural_similarity_index_measure(d, r, data_range=1.0)
        if skm and device == "cpu":
            impls["scikit-image"] = lambda r, d, L: np.mean([
                skm.structural_similarity(d8, r8, data_range=255, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False) for d8, r8 in zip(d, r)])
        if fa:
            impls["frame-analytics"] = lambda r, d, L: fa.ssim(d, r, data_range=L)
    elif metric == "ms_ssim":
        impls["turboiqa"] = lambda r, d, L: turboiqa.ms_ssim(d, r, L, convention="pytorch_msssim", backend="native")
        impls["turboiqa-reference"] = lambda r, d, L: turboiqa.ms_ssim(d, r, L, convention="pytorch_msssim",
                                                                       backend="reference")
        if pm:
            impls["pytorch-msssim"] = lambda r, d, L: pm.ms_ssim(d, r, data_range=1.0)
        piq_ms = import_piq("ms_ssim")
        if piq_ms:
            impls["piq"] = lambda r, d, L: piq_ms.multi_scale_ssim(d, r, data_range=1.0)
        if tmf:
            impls["torchmetrics"] = lambda r, d, L: tmf.multiscale_structural_similarity_index_measure(
                d, r, data_range=1.0)
        if fa:
            impls["frame-analytics"] = lambda r, d, L: fa.ms_ssim(d, r, data_range=L)
    elif metric == "psnr":
        impls["turboiqa"] = lambda r, d, L: turboiqa.psnr(d, r, L)
        piq_psnr = import_piq("psnr")
        if piq_psnr:
            impls["piq"] = lambda r, d, L: piq_psnr.psnr(d, r, data_range=1.0)
        if kornia:
            impls["kornia"] = lambda r, d, L: kornia.metrics.psnr(d, r, 1.0)
        if tmf:
            impls["torchmetrics"] = lambda r, d, L: tmf.peak_signal_noise_ratio(d, r, data_range=1.0)
        if skm and device == "cpu":
            impls["scikit-image"] = lambda r, d, L: skm.peak_signal_noise_ratio(r, d, data_range=255)
        if fa:
            impls["frame-analytics"] = lambda r, d, L: fa.psnr(d, r, data_range=L)
    return impls


NATIVE_INPUTS = {"turboiqa", "frame-analytics"}  # read uint8 directly; the others get float32 in [0, 1]


def cases():
    for device in DEVICES:
        for metric in ("ssim", "ms_ssim", "psnr"):
            for inp in INPUTS:
                for name in implementations(metric, device):
                    yield pytest.param(metric, inp, name, device, id=f"{metric}-{inp}-{device}-{name}")


@pytest.mark.parametrize("metric, inp, impl, device", list(cases()))
def test_bench(benchmark, metric, inp, impl, device):
    benchmark.group = f"{metric} {inp} {device}"
    slow = impl in ("pytorch-msssim", "piq", "kornia", "torchmetrics", "scikit-image", "turboiqa-reference")
    if inp.startswith("8x") and slow and device == "cpu":
        pytest.skip("slow path timed on single frames only (8× its 1-frame time)")
    ref, dist, data_range = make_inputs(inp, device)
    fn = implementations(metric, device)[impl]
    if impl not in NATIVE_INPUTS and ref.dtype == torch.uint8:
        ref, dist, data_range = as_float(ref, data_range), as_float(dist, data_range), 1.0
    if impl == "scikit-image":
        ref8, dist8 = (ref * 255).round().to(torch.uint8).numpy(), (dist * 255).round().to(torch.uint8).numpy()
        run_timed(benchmark, lambda: fn(ref8, dist8, 255), device)
        return
    with torch.inference_mode():
        run_timed(benchmark, lambda: fn(ref, dist, data_range), device)
