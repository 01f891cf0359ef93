"""SSIM — Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 13(4), 2004.

Reference code: Z. Wang's MATLAB ``ssim_index.m`` (2003, no downsampling) and ``ssim.m`` (2009, automatic
downsampling). ``convention=`` selects a whole set of choices that reproduces one original or peer (SPECS §2):

=================  ==============================================================================================
'ssim_index'       MATLAB ssim_index.m: Gaussian 11/1.5, 'valid', RGB → MATLAB rgb2gray (uint8 rounded) [default]
'matlab'           MATLAB ssim.m: as above plus f = max(1, round(min(H,W)/256)) box filter ('symmetric') + stride f
'piq'              piq.ssim: per-channel, downsample=True via avg_pool2d(f) with Python rounding of f
'pytorch_msssim'   pytorch_msssim.ssim: per-channel, no downsampling
'torchmetrics'     torchmetrics ≥1.9 structural_similarity_index_measure: reflect border, the whole H×W map
                   averaged (not cropped to the valid region)
'skimage'          skimage structural_similarity defaults: 7×7 uniform window, sample covariance (49/48)
'skimage_gaussian' skimage gaussian_weights=True: Gaussian 11/1.5 and still sample covariance (121/120);
                   use 'pytorch_msssim' for skimage with use_sample_covariance=False
'kornia'           kornia.metrics.ssim(padding='same').mean(): reflect border, whole map
'frame_analytics'  frame_analytics.ssim: per-channel, valid, no downsampling
'pyiqa'            pyiqa create_metric('ssim'): YIQ luma (color='per_channel' for 'ssimc') scaled to 0–255 and
                   rounded to integer levels (the rounding passes the gradient through), then float64, Gaussian
                   11/1.5, valid, cs clamped at 0 per pixel; no downsampling (downsample='avgpool' for pyiqa's
                   downsample=True). Give it float input in [0, data_range]
'libvmaf'          libvmaf float_ssim (give it the Y plane): Gaussian 11/1.5, valid, f = max(1, round(min(H,W)/256))
                   box decimation as libvmaf's _iqa_decimate (see libvmaf_decimate). libvmaf's own 6-decimal taps
                   (sum 1.000002) with its σ² ≥ 0 clamp move its scores by up to ~3e-4 (turboiqa.video.libvmaf)
=================  ==============================================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .. import _ops
from ..colour import to_luma
from ..padding import PADDING_MODES
from ..resample import auto_downsample_factor, avg_pool_downsample, matlab_box_downsample
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce
from ..window import gaussian_window, uniform_window
from .module import MetricModule


@dataclass(frozen=True)
class SsimConvention:
    window: str = "gaussian"  # 'gaussian' | 'uniform'
    kernel_size: int = 11
    kernel_sigma: float = 1.5
    padding: str = "valid"  # or a 'same' border: 'zeros' | 'symmetric' | 'reflect' | 'replicate'
    downsample: str | None = None  # None | 'matlab' (ssim.m) | 'avgpool' (piq)
    color: str = "rgb2gray"  # luma used for 3-channel input ('rgb2gray' | 'yiq' | 'ycbcr') or 'per_channel'
    sample_covariance: bool = False
    nonnegative: bool = False
    float64: bool = False  # compute in float64 whatever the input dtype (scikit-image: uint8 → float64)
    quantise: bool = False  # pyiqa: (luma) values scaled to 0–255 and rounded before float64 and the statistics
    nonnegative_cs: bool = False  # pyiqa: cs clamped at 0 per pixel before it multiplies the luminance term


SSIM_CONVENTIONS = {
    "ssim_index": SsimConvention(),
    "matlab": SsimConvention(downsample="matlab"),
    "piq": SsimConvention(downsample="avgpool", color="per_channel"),
    "pytorch_msssim": SsimConvention(color="per_channel"),
    "torchmetrics": SsimConvention(padding="reflect", color="per_channel"),
    "skimage": SsimConvention(window="uniform", kernel_size=7, color="per_channel", sample_covariance=True,
                              float64=True),
    "skimage_gaussian": SsimConvention(color="per_channel", sample_covariance=True, float64=True),
    "kornia": SsimConvention(padding="reflect", color="per_channel"),
    "frame_analytics": SsimConvention(color="per_channel"),
    "libvmaf": SsimConvention(downsample="libvmaf"),
    "pyiqa": SsimConvention(color="yiq", float64=True, quantise=True, nonnegative_cs=True),
}


def resolve_convention(convention: str, table: dict, **overrides):
    if convention not in table:
        raise ValueError(f"convention must be one of {sorted(table)}, got {convention!r}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(table[convention], **given)


def window_for(conv) -> list[float]:
    if conv.window == "uniform":
        return uniform_window(conv.kernel_size)
    return gaussian_window(conv.kernel_size, conv.kernel_sigma)


def prepare_channels(x: torch.Tensor, y: torch.Tensor, color: str, data_range: float, backend: str = "auto"):
    """Luma for 3-channel input under a luma convention; every channel as is otherwise."""
    if color == "per_channel" or x.shape[1] != 3:
        return x, y
    return to_luma(x, color, data_range, backend), to_luma(y, color, data_range, backend)


def libvmaf_decimate(x: torch.Tensor, f: int, backend: str = "auto") -> torch.Tensor:
    """libvmaf ``_iqa_decimate`` with its f×f box: output sample i averages rows/columns i·f-⌊f/2⌋ … i·f-⌊f/2⌋+f-1
    (edge sample mirrored) and each side keeps ⌊n/f⌋ + n%2 samples (426 of 1280 columns at f=3; MATLAB keeps 427)."""
    if f == 1:
        return x
    h, w = x.shape[-2:]
    return _ops.box_downsample(x, f, f // 2, f // 2, h // f + h % 2, w // f + w % 2, "symmetric", backend)


def quantise_to_8bit_levels(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """[0, data_range] → the nearest of the integer levels 0…255 as float64 (pyiqa rounds its 0–255 values like
    MATLAB's uint8 images before SSIM). The rounding is a straight-through step: its gradient is that of the scaling,
    so the metric stays usable as a loss."""
    scaled = x * (255.0 / data_range) if data_range != 255 else x
    return (scaled.round() + (scaled - scaled.detach())).to(torch.float64)


def prepare_pair(x, y, conv, data_range: float, backend: str = "auto"):
    """Colour, quantisation and dtype steps of a convention, before downsampling: (x, y, data_range after them)."""
    if conv.float64 and not conv.quantise:
        x, y = x.double(), y.double()
    if conv.quantise and x.dtype == torch.uint8:
        # pyiqa's route for 8-bit files: float32 in [0, 1] first, so a luma that lands on .5 rounds as in pyiqa
        x, y, data_range = x.float() / 255, y.float() / 255, 1.0
    x, y = prepare_channels(x, y, conv.color, data_range, backend)  # pyiqa: luma in the input dtype, then rounded
    if conv.quantise:
        x, y, data_range = quantise_to_8bit_levels(x, data_range), quantise_to_8bit_levels(y, data_range), 255.0
    return x, y, data_range


def downsample_pair(x, y, conv, backend: str = "auto"):
    if conv.downsample is None:
        return x, y
    if conv.downsample == "libvmaf":
        f = auto_downsample_factor(*x.shape[-2:], rounding="matlab")
        return libvmaf_decimate(x, f, backend), libvmaf_decimate(y, f, backend)
    if conv.downsample == "matlab":
        f = auto_downsample_factor(*x.shape[-2:], rounding="matlab")
        return matlab_box_downsample(x, f, backend), matlab_box_downsample(y, f, backend)
    if conv.downsample == "avgpool":
        f = auto_downsample_factor(*x.shape[-2:], rounding="python")
        if f == 1:
            return x, y
        return avg_pool_downsample(x, f, backend), avg_pool_downsample(y, f, backend)
    raise ValueError(f"downsample must be None, 'matlab' or 'avgpool', got {conv.downsample!r}")


def check_window_fits(x: torch.Tensor, conv, what: str = "image") -> None:
    h, w = x.shape[-2:]
    if conv.padding == "valid" and (h < conv.kernel_size or w < conv.kernel_size):
        raise ValueError(
            f"{what} is {h}×{w} after preprocessing, smaller than the {conv.kernel_size}×{conv.kernel_size} window; "
            f"SSIM needs at least {conv.kernel_size}×{conv.kernel_size} (or use a smaller kernel_size)" + LAYOUT_HINT
        )


def ssim_constants(k1: float, k2: float, data_range: float):
    return (k1 * data_range) ** 2, (k2 * data_range) ** 2


def covariance_norm(conv) -> float:
    if not conv.sample_covariance:
        return 1.0
    n = conv.kernel_size**2
    if n == 1:  # a 1-sample window has no sample covariance (n / (n - 1) divided by zero)
        raise ValueError("kernel_size=1 has no sample covariance; this convention needs kernel_size >= 3")
    return n / (n - 1)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "ssim_index",
    kernel_size: int | None = None,
    kernel_sigma: float | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
    color: str | None = None,
    downsample: str | None = None,
    padding: str | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """SSIM of each image pair, averaged over channels: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; SSIM is symmetric in the two):
    N×C×H×W (or C×H×W / H×W), uint8 (read directly by the kernel, data_range=255) or float in
    [0, data_range]. The keyword overrides (kernel_size, …, padding) replace single fields of ``convention``.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    conv = resolve_convention(
        convention, SSIM_CONVENTIONS, kernel_size=kernel_size, kernel_sigma=kernel_sigma, color=color,
        downsample=downsample, padding=padding,
    )
    if conv.padding not in PADDING_MODES:  # the operator's own check would be a RuntimeError
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {conv.padding!r}")
    x, y, data_range = prepare_pair(x, y, conv, data_range, backend)
    x, y = downsample_pair(x, y, conv, backend)
    check_window_fits(x, conv)
    c1, c2 = ssim_constants(k1, k2, data_range)
    ssim_planes, _ = _ops.ssim_stats(x, y, window_for(conv), c1, c2, conv.padding, covariance_norm(conv), backend,
                                     nonnegative_cs=conv.nonnegative_cs)
    if conv.nonnegative:
        ssim_planes = torch.relu(ssim_planes)
    return reduce(ssim_planes.mean(dim=1), reduction)


class SSIM(MetricModule):
    """Module form of :func:`ssim`; ``loss=True`` returns 1 - SSIM."""

    metric = staticmethod(ssim)
