"""PSNR — 10·log10(L² / MSE), MSE over all pixels and channels of each image (SPECS §1).

``color``: 'rgb' (every channel; skimage / pyiqa 'psnr' / TID2013 PSNRc) or a luma: 'ycbcr' (MATLAB rgb2ycbcr Y,
studio swing — the super-resolution "PSNR-Y", usually with ``crop_border`` = scale), 'yiq' (0.299/0.587/0.114, piq's
``convert_to_greyscale``), 'rgb2gray'. Identical images give +inf (as MATLAB and skimage); ``max_db`` caps it.
"""
from __future__ import annotations

import torch

from .. import _ops
from ..colour import to_luma
from ..validate import check_extrema, check_pair, check_reduction, reduce
from .module import MetricModule


def psnr(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    color: str = "rgb",
    crop_border: int = 0,
    max_db: float | None = None,
    eps: float = 0.0,
    backend: str = "auto",
) -> torch.Tensor:
    """PSNR in dB per image pair: (N,) for reduction='none', else the mean (or sum) of the per-image values.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric); PSNR is symmetric in the two.
    ``eps`` is added to the MSE of the data scaled to [0, 1] (piq and pyiqa use 1e-8, which caps PSNR at 80 dB).
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range, check_values=False)  # values checked inside the fused pass
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        h, w = x.shape[-2:]
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}×{w} image")
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    if color != "rgb":
        if x.shape[1] != 3:
            raise ValueError(f"color={color!r} needs 3-channel RGB input, got {x.shape[1]} channels")
        x, y = to_luma(x, color, data_range, backend), to_luma(y, color, data_range, backend)
    if not _ops.needs_grad(x, y):  # dB and reduction inside the native call: nothing left to do in Python
        value, extrema = _ops.psnr_db(x, y, data_range, eps, max_db, reduction, backend)
        check_extrema(x, y, extrema, None, data_range)
        return value
    sse, extrema = _ops.squared_error_sum(x, y, backend)
    check_extrema(x, y, extrema, sse, data_range)
    value = -10 * torch.log10(sse / (x.numel() // x.shape[0]) / data_range**2 + eps)  # mse == 0 → +inf
    if max_db is not None:
        value = value.clamp(max=max_db)
    return reduce(value, reduction).to(torch.float64 if x.dtype == torch.float64 else torch.float32)


class PSNR(MetricModule):
    """Module form of :func:`psnr`."""

    metric = staticmethod(psnr)
    bounded_similarity = False
