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
pu21_psnr, …  RGB      the metrics that take a display model (pu21_psnr, pu21_ssim), with ``display``
cvvdp         RGB      temporal: one JOD per clip (:class:`TemporalCvvdp`), not a per-frame column
============  =======  ==================================================================================

Sources of more than 8 bits (turboiqa.video.decode) give float planes and their peak: every function takes
``(dist, ref, data_range)`` (data_range 255 for uint8): PSNR/SSIM use 2^depth − 1 as ffmpeg and libvmaf do for
10-bit video, ``ssim_libvmaf`` divides the codes by 2^(depth−8) as libvmaf's float_ssim does, ``ssim_ffmpeg`` uses
ffmpeg's unrounded constants of the deeper formats.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

LUMA_METRICS = {"psnr", "ssim", "ssim_libvmaf", "ssim_ffmpeg", "ms_ssim", "iw_ssim", "fsim"}
CLIP_METRICS = {"cvvdp"}  # one value per clip, state across frames: scored by TemporalCvvdp, not per frame


@dataclass(frozen=True)
class FrameMetric:
    name: str
    plane: str  # 'y' | 'rgb'
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _library_metric(name, dist, ref, data_range=255, **kwargs):
    import turboiqa

    return turboiqa.METRICS[name](dist, ref, data_range=data_range, reduction="none", **kwargs)


def _libvmaf_ssim(dist, ref, data_range=255):
    from .libvmaf import float_ssim

    if data_range == 255:
        return float_ssim(dist, ref)
    unit = (data_range + 1) / 256  # libvmaf reads a deeper picture as code / 2^(depth − 8)
    return float_ssim(dist / unit, ref / unit)


def _ffmpeg_ssim(dist, ref, data_range=255):
    from .x264_ssim import block_ssim

    return block_ssim(dist, ref, peak=data_range)


def split_metrics(names) -> tuple[list[str], list[str]]:
    """(per-frame metric names, clip metric names) in the given order."""
    names = list(names)
    return [n for n in names if n not in CLIP_METRICS], [n for n in names if n in CLIP_METRICS]


def available_metrics() -> list[str]:
    import turboiqa

    return sorted(set(turboiqa.METRICS) | {"ssim_libvmaf", "ssim_ffmpeg"})


def build_metrics(names, ssim_convention: str = "libvmaf", psnr_max_db: float | None = None,
                  scales: int | None = None, display=None, allow_empty: bool = False) -> list[FrameMetric]:
    """The per-frame metrics; ``display`` (None or a :class:`turboiqa.display.Display`) goes to those that take a
    display model. Clip metrics (cvvdp) are refused here: they need :class:`TemporalCvvdp` over one pass."""
    import turboiqa

    from ..hdr_images import display_metrics

    names = list(names)
    if not names and not allow_empty:
        raise ValueError("metrics must name at least one metric")
    clip = [n for n in names if n in CLIP_METRICS]
    if clip:
        raise ValueError(f"{', '.join(clip)}: temporal, one value per clip (not per frame); score it with "
                         "turboiqa.video.score/run (one pass over the clip), not per frame range")
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
        "ssim_libvmaf": _libvmaf_ssim,
        "ssim_ffmpeg": _ffmpeg_ssim,
    }
    hdr = display_metrics(turboiqa.METRICS)

    def options(n):
        extra = {"display": display} if display is not None and n in hdr else {}
        return {**turboiqa.metric_options(n, scales), **extra}

    return [FrameMetric(n, "y" if n in LUMA_METRICS else "rgb",
                        special.get(n, partial(_library_metric, n, **options(n))))
            for n in names]
