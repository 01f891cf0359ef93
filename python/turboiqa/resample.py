"""Downsampling steps of the original codes (SPECS §0.1, §2 step 0, §3)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .padding import pad_2d


def matlab_round(v: float) -> int:
    """MATLAB ``round``: half away from zero (Python's round is half-to-even: round(2.5) == 2)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def float_planes(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def matlab_box_downsample(x: torch.Tensor, f: int) -> torch.Tensor:
    """``imfilter(x, ones(f)/f², 'symmetric', 'same')`` then ``x(1:f:end, 1:f:end)``; output ceil(H/f)×ceil(W/f).

    MATLAB centres an f-tap box at ⌊(f+1)/2⌋ (1-based), so the box feeding sample i spans i-⌈f/2⌉+1 … i+⌊f/2⌋:
    pad that much on each side (mirroring the edge sample) and average-pool with stride f.
    """
    if f == 1:
        return x
    before, after = math.ceil(f / 2) - 1, f // 2
    padded = pad_2d(float_planes(x), (before, after, before, after), "symmetric")
    return F.avg_pool2d(padded, kernel_size=f, stride=f)


def auto_downsample_factor(height: int, width: int, rounding: str = "matlab") -> int:
    """``f = max(1, round(min(H, W) / 256))`` of ``ssim.m``; ``rounding='python'`` reproduces piq/pyiqa."""
    ratio = min(height, width) / 256
    return max(1, matlab_round(ratio) if rounding == "matlab" else round(ratio))
