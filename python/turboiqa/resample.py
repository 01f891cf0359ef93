"""Downsampling steps of the original codes (SPECS §0.1, §2 step 0, §3) and of the peers, all expressed as the
native ``box_downsample`` op: an f×f box mean sampled every f pixels from a given offset, with a border rule."""
from __future__ import annotations

import math

import torch

from . import _ops


def matlab_round(v: float) -> int:
    """MATLAB ``round``: half away from zero (Python's round is half-to-even: round(2.5) == 2)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def matlab_box_downsample(x: torch.Tensor, f: int, backend: str = "auto") -> torch.Tensor:
    """``imfilter(x, ones(f)/f², 'symmetric', 'same')`` then ``x(1:f:end, 1:f:end)``; output ceil(H/f)×ceil(W/f).

    MATLAB centres an f-tap box at ⌊(f+1)/2⌋ (1-based), so the box feeding sample i spans i-⌈f/2⌉+1 … i+⌊f/2⌋,
    with the edge sample mirrored ('symmetric') outside the image.
    """
    if f == 1:
        return x
    h, w = x.shape[-2:]
    pad = math.ceil(f / 2) - 1
    return _ops.box_downsample(x, f, pad, pad, math.ceil(h / f), math.ceil(w / f), "symmetric", backend)


def avg_pool_downsample(x: torch.Tensor, f: int, backend: str = "auto") -> torch.Tensor:
    """``F.avg_pool2d(x, f)``: non-overlapping f×f blocks, trailing rows/columns dropped (piq, torchmetrics)."""
    h, w = x.shape[-2:]
    return _ops.box_downsample(x, f, 0, 0, h // f, w // f, "zeros", backend)


def halve_zero_pad(x: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """``F.avg_pool2d(x, 2, padding=(H%2, W%2))`` (pytorch-msssim, pyiqa): a zero counted at the top/left."""
    h, w = x.shape[-2:]
    return _ops.box_downsample(x, 2, h % 2, w % 2, (h + 1) // 2, (w + 1) // 2, "zeros", backend)


def halve_replicate_top_left(x: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """piq: replicate-pad one row and column at the top/left when either side is odd, then avg_pool2d(2)."""
    h, w = x.shape[-2:]
    pad = max(h % 2, w % 2)
    return _ops.box_downsample(x, 2, pad, pad, (h + pad) // 2, (w + pad) // 2, "replicate", backend)


def auto_downsample_factor(height: int, width: int, rounding: str = "matlab") -> int:
    """``f = max(1, round(min(H, W) / 256))`` of ``ssim.m``; ``rounding='python'`` reproduces piq/pyiqa."""
    ratio = min(height, width) / 256
    return max(1, matlab_round(ratio) if rounding == "matlab" else round(ratio))
