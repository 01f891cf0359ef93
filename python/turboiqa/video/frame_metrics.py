"""Per-frame metrics of the video job: which plane each one reads and how it is called on a batch.

Luma metrics read the decoded Y plane directly (uint8, no colour conversion — the video convention of ffmpeg's
filters and libvmaf); colour metrics (FSIMc and any RGB metric added to ``turboiqa.METRICS``) read RGB converted
with the stream's YUV matrix. Every function maps (dist, ref) batches to an (N,) tensor.

============  =======  ==================================================================================
psnr          Y        10·log10(255²/MSE) of the Y plane — ffmpeg ``psnr`` psnr_y; libvmaf ``psnr`` psnr_y
                       when ``psnr_max_db=60`` (libvmaf clips 8-bit PSNR at 60 dB)
ssim          Y        native SSIM kernel, ``ssim_convention`` (default 'libvmaf': libvmaf float_ssim's window,
                       constants and decimation, exact Gaussian taps)
ssim_libvmaf  Y        libvmaf float_ssim reproduced including its rounded taps and clamps (pure PyTorch, slower)
ssim_ffmpeg   Y        ffmpeg ``ssim`` filter (x264 8×8 block SSIM), Y value
ms_ssim …     Y        ``turboiqa.METRICS[name]`` with its default convention (``scales`` for ms_ssim, iw_ssim)
fsimc, …      RGB      ``turboiqa.METRICS[name]``
============  =======  ==================================================================================
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

LUMA_METRICS = {"psnr", "ssim", "ssim_libvmaf", "ssim_ffmpeg", "ms_ssim", "iw_ssim", "fsim"}


@dataclass(frozen=True)
class FrameMetric:
    name: str
    plane: str  # 'y' | 'rgb'
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _library_metric(name, dist, ref, **kwargs):
    import turboiqa

    return turboiqa.METRICS[name](dist, ref, data_range=255, reduction="none", **kwargs)


def available_metrics() -> list[str]:
    import turboiqa

    return sorted(set(turboiqa.METRICS) | {"ssim_libvmaf", "ssim_ffmpeg"})


def build_metrics(names, ssim_convention: str = "libvmaf", psnr_max_db: float | None = None,
                  scales: int | None = None) -> list[FrameMetric]:
    import turboiqa

    from .libvmaf import float_ssim
    from .x264_ssim import block_ssim

    names = list(names)
    if not names:
        raise ValueError("metrics must name at least one metric")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics lists a metric twice: {names}")
    unknown = [n for n in names if n not in available_metrics()]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {available_metrics()}")
    if scales is not None and (not isinstance(scales, int) or scales < 1):
        raise ValueError(f"scales must be a positive integer, got {scales!r}")
    if ssim_convention not in turboiqa.SSIM_CONVENTIONS:
        raise ValueError(f"ssim_convention must be one of {sorted(turboiqa.SSIM_CONVENTIONS)}, got {ssim_convention!r}")
    special = {
        "psnr": partial(_library_metric, "psnr", max_db=psnr_max_db),
        "ssim": partial(_library_metric, "ssim", convention=ssim_convention),
        "ssim_libvmaf": float_ssim,
        "ssim_ffmpeg": block_ssim,
    }
    return [FrameMetric(n, "y" if n in LUMA_METRICS else "rgb",
                        special.get(n, partial(_library_metric, n, **turboiqa.metric_options(n, scales))))
            for n in names]
