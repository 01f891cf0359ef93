"""Pure-PyTorch twin of the native ``grey_planes`` operator (csrc/grey_planes.h): same arguments, same numbers."""
from __future__ import annotations

import torch

from ..dtypes import compute_dtype
from .image_ops import box_downsample

ROUNDINGS = ("none", "half_away", "half_even")


def _round(v: torch.Tensor, rounding: str) -> torch.Tensor:
    if rounding == "none":
        return v
    r = torch.floor(v + 0.5) if rounding == "half_away" else torch.round(v)
    return v + (r - v).detach() if v.requires_grad else r  # straight-through gradient


def grey_planes(x, coeffs, scale, rounding, factor, pad_top, pad_left, out_height, out_width):
    """(planes N×R×out_height×out_width in the compute dtype, extrema (N, 2) float64); see csrc/ops.cpp."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"grey_planes: rounding must be 'none', 'half_away' or 'half_even', got {rounding!r}")
    n, c = x.shape[:2]
    dtype = compute_dtype(x.dtype)
    coeffs = [float(v) for v in coeffs]
    if coeffs and len(coeffs) % c:
        raise ValueError(f"grey_planes: coeffs must hold R x C values (C = {c} channels), got {len(coeffs)}")
    u8 = x.dtype == torch.uint8
    if not coeffs:
        v = x.to(dtype)
        v = v * scale if scale != 1 else v
        v = _round(v, rounding)
    else:
        acc_dtype = torch.float64 if u8 else dtype
        xs = x.to(acc_dtype)
        planes = []
        for r in range(len(coeffs) // c):
            row = coeffs[r * c:(r + 1) * c]
            acc = xs[:, 0:1] * row[0]  # left to right, each product rounded (no FMA), as the kernel
            for k in range(1, c):
                acc = acc + xs[:, k:k + 1] * row[k]
            if u8 and rounding == "half_away":  # MATLAB rgb2gray of uint8: rounded in double
                acc = _round(acc * scale if scale != 1 else acc, rounding).to(dtype)
            else:
                acc = acc.to(dtype)
                acc = _round(acc * scale if scale != 1 else acc, rounding)
            planes.append(acc)
        v = planes[0] if len(planes) == 1 else torch.cat(planes, 1)
    out = v if factor == 1 and (out_height, out_width) == tuple(x.shape[-2:]) else box_downsample(
        v, factor, pad_top, pad_left, out_height, out_width, "zeros")
    if u8:
        extrema = torch.tensor([0.0, 255.0], dtype=torch.float64, device=x.device).expand(n, 2).clone()
    else:
        flat = x.detach().to(torch.float64).flatten(1)
        finite = torch.isfinite(flat).all(1, keepdim=True)
        extrema = torch.stack([flat.amin(1), flat.amax(1)], 1)
        extrema = torch.where(finite, extrema, torch.full_like(extrema, float("nan")))
    return out, extrema
