"""RGB → luma conversions used by the metrics (SPECS §0.2). One module, shared by every metric.

uint8 input gives uint8 output for the MATLAB conversions (``rgb2gray``, ``rgb2ycbcr`` round half away from zero and
saturate, as MATLAB does for integer images); float input stays unrounded. The work is the native ``luma`` op.
"""
from __future__ import annotations

import torch

from . import _ops

# MATLAB rgb2gray: the exact coefficients (older releases print 0.2989/0.5870/0.1140).
RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
BT601 = (0.299, 0.587, 0.114)  # YIQ / Rec.601 luma without offset (FSIM, piq, pyiqa)
YCBCR_Y = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr, studio swing, for RGB in [0, 1]

LUMA_CONVENTIONS = ("rgb2gray", "yiq", "ycbcr")


def to_luma(x: torch.Tensor, convention: str, data_range: float, backend: str = "auto") -> torch.Tensor:
    """N×3×H×W → N×1×H×W luma. ``convention``: 'rgb2gray' | 'yiq' | 'ycbcr'."""
    if x.shape[1] != 3:
        raise ValueError(f"luma conversion needs 3 channels (RGB), got {x.shape[1]}")
    if convention == "rgb2gray":
        return _ops.luma(x, RGB2GRAY, 0.0, round_to_uint8=True, backend=backend)
    if convention == "yiq":
        return _ops.luma(x, BT601, 0.0, round_to_uint8=False, backend=backend)
    if convention == "ycbcr":
        # 16 + (65.481 R + 128.553 G + 24.966 B) with RGB in [0, 1], expressed in units of data_range.
        coeffs = [c / 255.0 for c in YCBCR_Y]
        return _ops.luma(x, coeffs, 16.0 * data_range / 255.0, round_to_uint8=True, backend=backend)
    raise ValueError(f"luma must be one of {LUMA_CONVENTIONS}, got {convention!r}")
