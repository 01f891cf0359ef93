"""MS-SSIM — Wang, Simoncelli, Bovik, "Multi-scale structural similarity for image quality assessment",
Asilomar 2003. Reference code: Wang's MATLAB ``msssim.m`` (SPECS §3).

Per scale s the SSIM statistics kernel gives mean(cs_s) and mean(SSIM_s); the images are then halved. 'product'
pooling: Π_{s<S} mcs_s^{w_s} · mssim_S^{w_S}. ``convention=`` picks how scales are halved and clamped:

================  ===============================================================================================
'matlab'          msssim.m: RGB → rgb2gray, 2×2 box with 'symmetric' border + stride 2 (ceil sizes), no clamping
                  [default]
'piq'             piq.multi_scale_ssim: per-channel; odd sizes replicate-padded at the top/left, avg_pool2d(2);
                  ReLU on the per-scale means; product per channel, then mean over channels
'pytorch_msssim'  pytorch_msssim.ms_ssim: per-channel; avg_pool2d(2, padding=H%2, W%2) (zeros counted);
                  ReLU on the per-scale cs and final ssim; product per channel, then mean
'torchmetrics'    torchmetrics multiscale_structural_similarity_index_measure(normalize='relu'): channels averaged
                  at every scale before the product, avg_pool2d(2) (floor sizes), ReLU on the per-scale values,
                  cs from the valid region but the last scale's SSIM over the whole reflect-padded map
'frame_analytics' frame_analytics.ms_ssim: per-channel, avg_pool2d(2) (floor sizes), clamp at 0, product, mean
'pyiqa'           pyiqa create_metric('ms_ssim'): SSIM_CONVENTIONS['pyiqa']'s integer 0–255 YIQ luma in float64 and
                  per-pixel cs clamp at every scale, avg_pool2d(2, padding=H%2, W%2) (zeros counted), channels
                  averaged at each scale, product
================  ===============================================================================================

Minimum sizes follow each convention: msssim.m/torchmetrics/frame_analytics need kernel·2^(S-1) (176), piq and
pytorch-msssim (kernel-1)·2^(S-1)+1 (161).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _ops
from ..resample import avg_pool_downsample, halve_replicate_top_left, halve_zero_pad, matlab_box_downsample
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce, removed_arguments
from .module import MetricModule
from .ssim import (
    SsimConvention,
    covariance_norm,
    prepare_pair,
    resolve_convention,
    ssim_constants,
    window_for,
)

WANG_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass(frozen=True)
class MsSsimConvention(SsimConvention):
    halving: str = "matlab"  # 'matlab' | 'replicate_top_left' | 'zero_pad' | 'floor'
    relu: bool = False  # clamp the per-scale values at 0 before the fractional powers
    channels_before_product: bool = False  # average channels at each scale (torchmetrics)
    last_scale_padding: str | None = None  # torchmetrics takes the last SSIM over a reflect-padded map
    min_size_rule: str = "window"  # 'window': k·2^(S-1); 'taps': (k-1)·2^(S-1)+1


MS_SSIM_CONVENTIONS = {
    "matlab": MsSsimConvention(),
    "piq": MsSsimConvention(color="per_channel", halving="replicate_top_left", relu=True, min_size_rule="taps"),
    "pytorch_msssim": MsSsimConvention(color="per_channel", halving="zero_pad", relu=True, min_size_rule="taps"),
    "torchmetrics": MsSsimConvention(color="per_channel", halving="floor", relu=True, channels_before_product=True,
                                     last_scale_padding="reflect"),
    "frame_analytics": MsSsimConvention(color="per_channel", halving="floor", relu=True),
    "pyiqa": MsSsimConvention(color="yiq", halving="zero_pad", channels_before_product=True, min_size_rule="taps",
                              float64=True, quantise=True, nonnegative_cs=True),
}


def halve(x: torch.Tensor, how: str, backend: str = "auto") -> torch.Tensor:
    if how == "matlab":
        return matlab_box_downsample(x, 2, backend)
    if how == "replicate_top_left":
        return halve_replicate_top_left(x, backend)
    if how == "zero_pad":
        return halve_zero_pad(x, backend)
    if how == "floor":
        return avg_pool_downsample(x, 2, backend)
    raise ValueError(f"unknown halving {how!r}")


def minimum_size(kernel_size: int, scales: int, rule: str = "window") -> int:
    """Smallest side accepted: msssim.m's k·2^(S-1) (176), or piq/pytorch-msssim's (k-1)·2^(S-1)+1 (161)."""
    if rule == "taps":
        return (kernel_size - 1) * 2 ** (scales - 1) + 1
    return kernel_size * 2 ** (scales - 1)


@removed_arguments(weights="pass the per-scale weights as scale_weights= (weights= only ever names a checkpoint file)")
def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    scale_weights=None,
    scales: int | None = None,
    kernel_size: int | None = None,
    kernel_sigma: float | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
    color: str | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """MS-SSIM per image pair: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; MS-SSIM is symmetric in the two).
    ``scales`` (default 5) takes the first ``scales`` of Wang's per-scale weights, renormalised to sum to 1, so small
    images can still be scored with fewer scales; ``scale_weights`` overrides them entirely (used as given).
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    conv = resolve_convention(convention, MS_SSIM_CONVENTIONS, kernel_size=kernel_size, kernel_sigma=kernel_sigma,
                              color=color)
    if scale_weights is None:
        n = 5 if scales is None else scales
        if not 1 <= n <= 5:
            raise ValueError(f"scales must be 1…5 with the default weights, got {n}; pass scale_weights= for more")
        scale_weights = torch.tensor(WANG_WEIGHTS[:n], dtype=torch.float64)
        if n < 5:
            scale_weights = scale_weights / scale_weights.sum()
    else:
        scale_weights = torch.as_tensor(scale_weights, dtype=torch.float64)
        if scales is not None and scales != scale_weights.numel():
            raise ValueError(f"scales={scales} but {scale_weights.numel()} scale_weights were given")
    n_scales = scale_weights.numel()
    need = minimum_size(conv.kernel_size, n_scales, conv.min_size_rule)
    h, w = x.shape[-2:]
    if min(h, w) < need:
        fitting = [s for s in range(1, 6) if min(h, w) >= minimum_size(conv.kernel_size, s, conv.min_size_rule)]
        fits = max(fitting) if fitting else 0
        raise ValueError(
            f"MS-SSIM with {n_scales} scales and a {conv.kernel_size}-tap window needs images of at least "
            f"{need}×{need}, got {h}×{w}"
            + (f"; pass scales={fits} to use fewer scales (command line: --scales {fits})" if fits else "")
            + LAYOUT_HINT
        )

    x, y, data_range = prepare_pair(x, y, conv, data_range, backend)
    c1, c2 = ssim_constants(k1, k2, data_range)
    window = window_for(conv)
    values = []
    for s in range(n_scales):
        if s > 0:
            x, y = halve(x, conv.halving, backend), halve(y, conv.halving, backend)
        last = s == n_scales - 1
        padding = conv.last_scale_padding if last and conv.last_scale_padding else conv.padding
        ssim_planes, cs_planes = _ops.ssim_stats(x, y, window, c1, c2, padding, covariance_norm(conv), backend,
                                                 nonnegative_cs=conv.nonnegative_cs)
        values.append(ssim_planes if last else cs_planes)
    stacked = torch.stack(values)  # (S, N, C)
    if conv.channels_before_product:
        stacked = stacked.mean(dim=2, keepdim=True)
    if conv.relu:
        stacked = torch.relu(stacked)
    w = scale_weights.to(device=stacked.device, dtype=stacked.dtype).view(-1, 1, 1)
    # A negative cs to a fractional power is NaN here (MATLAB returns a complex number): the 'matlab' convention
    # keeps that visible instead of silently clamping.
    per_channel = torch.prod(stacked**w, dim=0)
    return reduce(per_channel.mean(dim=1), reduction)


class MS_SSIM(MetricModule):
    """Module form of :func:`ms_ssim`; ``loss=True`` returns 1 - MS-SSIM."""

    metric = staticmethod(ms_ssim)
