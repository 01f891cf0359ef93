"""8-bit grey conversion shared by NLPD, CW-SSIM and MAD: the originals read 8-bit files and convert them to an
8-bit grey image (MATLAB ``rgb2gray`` of a uint8 image rounds), pyiqa rounds its YIQ luma at 0–255 for CW-SSIM.

Float input is scaled to 0–255 and rounded there with a straight-through gradient (the rounding's gradient is taken
as 1, as pyiqa does), so the metrics stay differentiable.
"""
from __future__ import annotations

import torch

from ..colour import BT601, RGB2GRAY
from ..dtypes import compute_dtype

GREY_COEFFS = {"rgb2gray": RGB2GRAY, "yiq": BT601}


def round_st(t: torch.Tensor, mode: str) -> torch.Tensor:
    """Round with a straight-through gradient. 'matlab': half away from zero (values are >= 0: floor(t + 0.5));
    'torch': half to even (torch.round, pyiqa)."""
    r = torch.floor(t + 0.5) if mode == "matlab" else torch.round(t)
    return t + (r - t).detach() if t.requires_grad else r


def grey255(x: torch.Tensor, data_range: float, coeffs: str | None, rounding: str | None) -> torch.Tensor:
    """N×C×H×W in [0, data_range] → N×1×H×W grey in 0–255 (compute dtype). C = 1 is taken as grey already;
    ``coeffs`` None keeps every channel (no conversion). ``rounding`` None: no rounding."""
    t = x.to(compute_dtype(x.dtype))
    if data_range != 255:
        t = t * (255.0 / float(data_range))
    if coeffs is not None and t.shape[1] == 3:
        r, g, b = GREY_COEFFS[coeffs]
        t = r * t[:, 0:1] + g * t[:, 1:2] + b * t[:, 2:3]
        if rounding is not None:
            t = round_st(t, rounding)
    return t
