"""Pure-PyTorch twin of the native ``turboiqa::vifp_stats`` operator (one scale of VIFp, csrc/vifp_math.h).

Same signature and numbers as the C++/CUDA kernels; autograd provides the backward. It materialises the five
filtered moment maps (through the SSIM twin's :func:`ssim_moments`), which the fused kernels avoid.
"""
from __future__ import annotations

import math

import torch

from ..dtypes import compute_dtype
from .ssim_stats import ssim_moments

_INV_LN10 = 1.0 / math.log(10.0)


def vifp_maps(x, y, window, sigma_nsq, eps, floor_rel=0.0, padding="valid"):
    """The two per-pixel terms u_num = g²σy²/(σv² + σn²) and u_den = σy²/σn² (N, C, Ho, Wo) in the compute dtype;
    x distorted, y reference. uint8 input is read as float32 (the kernels' first-sample shift, not 128)."""
    dtype = compute_dtype(x.dtype)
    mu_x, mu_y, e_xx, e_yy, e_xy, shift = ssim_moments(x.to(dtype), y.to(dtype), window, padding)
    zero = torch.zeros((), dtype=dtype, device=x.device)
    sd = e_xx - mu_x * mu_x
    sr = torch.relu(e_yy - mu_y * mu_y)
    sxy = e_xy - mu_x * mu_y
    floor = eps + floor_rel * (e_yy + 2 * shift * mu_y + shift * shift)
    informative = sr >= floor
    g = sxy / (sr + floor)
    g = torch.where(informative & (sd >= floor) & (g > 0), g, zero)
    sr = torch.where(informative, sr, zero)
    sv = torch.maximum(sd - g * sxy, floor) if floor_rel else (sd - g * sxy).clamp_min(eps)
    return g * g * sr / (sv + sigma_nsq), sr / sigma_nsq


def vifp_stats(x, y, window, sigma_nsq, eps, floor_rel=0.0, padding="valid"):
    """Per-plane Σ log10(1 + u_num) and Σ log10(1 + u_den): two (N, C) float64 tensors."""
    u_num, u_den = vifp_maps(x, y, window, sigma_nsq, eps, floor_rel, padding)
    num = torch.log1p(u_num.double()).sum(dim=(-2, -1)) * _INV_LN10
    den = torch.log1p(u_den.double()).sum(dim=(-2, -1)) * _INV_LN10
    return num, den
