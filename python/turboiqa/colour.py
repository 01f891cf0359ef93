"""RGB → luma conversions used by the metrics (SPECS §0.2). One module, shared by every metric.

uint8 input gives uint8 output for the MATLAB conversions (``rgb2gray``, ``rgb2ycbcr`` round half away from zero and
saturate, as MATLAB does for integer images); float input stays unrounded.
"""
from __future__ import annotations

import torch

# MATLAB rgb2gray: the exact coefficients (older releases print 0.2989/0.5870/0.1140).
RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
BT601 = (0.299, 0.587, 0.114)  # YIQ / Rec.601 luma without offset (FSIM, piq, pyiqa)
YCBCR_Y = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr, studio swing, for RGB in [0, 1]

LUMA_CONVENTIONS = ("rgb2gray", "yiq", "ycbcr")


def _weighted(x: torch.Tensor, coeffs, dtype) -> torch.Tensor:
    w = torch.tensor(coeffs, dtype=dtype, device=x.device).view(1, 3, 1, 1)
    return (x.to(dtype) * w).sum(dim=1, keepdim=True)


def _round_half_away(v: torch.Tensor) -> torch.Tensor:
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def to_luma(x: torch.Tensor, convention: str, data_range: float) -> torch.Tensor:
    """N×3×H×W → N×1×H×W luma. ``convention``: 'rgb2gray' | 'yiq' | 'ycbcr'."""
    if x.shape[1] != 3:
        raise ValueError(f"luma conversion needs 3 channels (RGB), got {x.shape[1]}")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if convention == "rgb2gray":
        y = _weighted(x, RGB2GRAY, torch.float64)
    elif convention == "yiq":
        y = _weighted(x, BT601, dtype)
    elif convention == "ycbcr":
        # 16 + (65.481 R + 128.553 G + 24.966 B) with RGB in [0, 1], expressed in units of data_range.
        y = _weighted(x, YCBCR_Y, torch.float64) / 255.0 + 16.0 * data_range / 255.0
    else:
        raise ValueError(f"luma must be one of {LUMA_CONVENTIONS}, got {convention!r}")
    if x.dtype == torch.uint8:
        if convention == "yiq":
            return y.to(dtype)
        return _round_half_away(y).clamp(0, 255).to(torch.uint8)
    return y.to(dtype if x.dtype not in (torch.float16, torch.bfloat16) else torch.float32)
