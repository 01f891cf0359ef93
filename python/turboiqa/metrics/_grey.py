"""8-bit grey conversion shared by NLPD, CW-SSIM and MAD: the originals read 8-bit files and convert them to an
8-bit grey image (MATLAB ``rgb2gray`` of a uint8 image rounds); pyiqa rounds its YIQ luma at 0–255 for CW-SSIM.

Rounding modes: 'matlab' (rgb2gray): the native luma op, rounded half away from zero. 'matlab_exact' (YIQ, whose
0.299/0.587/0.114 sums of integers often end in exactly .5): in float64 whatever the input dtype, after snapping
0–255 values within 1e-3 of an integer to it (an 8-bit image stored as float), so that ties are decided the same way
for uint8, float32 and float64 copies of one image. 'pyiqa' repeats pyiqa's arithmetic (float64, float32-rounded
coefficients, torch.round: half to even).
The rounding passes the gradient straight through (its gradient is taken as 1, as pyiqa does).
"""
from __future__ import annotations

import torch

from .. import _ops
from ..colour import BT601, RGB2GRAY
from ..dtypes import compute_dtype

GREY_COEFFS = {"rgb2gray": RGB2GRAY, "yiq": BT601,
               # pyiqa builds its matrix as a float32 tensor: the coefficients rounded to float32
               "yiq_f32": tuple(float(torch.tensor(c, dtype=torch.float32)) for c in BT601)}
SNAP = 1e-3


def _straight_through(t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return t + (r - t).detach() if t.requires_grad else r


def grey255(x: torch.Tensor, data_range: float, coeffs: str | None, rounding: str | None) -> torch.Tensor:
    """N×C×H×W in [0, data_range] → grey N×1×H×W in 0–255 (compute dtype). C = 1 is taken as grey already (no
    rounding); ``coeffs`` None keeps every channel. ``rounding``: None (unrounded luma), 'matlab', 'matlab_exact'
    or 'pyiqa'."""
    dt = compute_dtype(x.dtype)
    scale = 255.0 / float(data_range)
    if coeffs is None or x.shape[1] != 3 or rounding is None:
        t = x.to(dt) * scale if scale != 1 else x.to(dt)
        if coeffs is not None and t.shape[1] == 3:
            r, g, b = GREY_COEFFS[coeffs]
            t = r * t[:, 0:1] + g * t[:, 1:2] + b * t[:, 2:3]
        return t
    if rounding == "matlab":
        # MATLAB rgb2gray of an 8-bit image: the native luma op (uint8 → uint8 with MATLAB rounding; float → the
        # luma in the compute dtype, rounded here). Near-ties of float32 input may round either way (rgb2gray's
        # coefficients make exact ties of 8-bit values practically impossible).
        if x.dtype == torch.uint8:
            return _ops.luma(x, GREY_COEFFS[coeffs], 0.0, round_to_uint8=True).to(dt)
        luma = _ops.luma(x.to(dt), GREY_COEFFS[coeffs], 0.0, round_to_uint8=False)
        luma = luma * scale if scale != 1 else luma
        return _straight_through(luma, torch.floor(luma + 0.5))
    if rounding == "matlab_exact":
        if x.dtype == torch.uint8:  # integers already
            t = x.to(torch.float64)
        else:  # snap in the input's precision (the snapped values are integers: exact), sum in float64
            t = x.to(dt) * scale if scale != 1 else x.to(dt)
            t = _straight_through(t, torch.where((t - t.round()).abs() < SNAP, t.round(), t)).to(torch.float64)
        r, g, b = GREY_COEFFS[coeffs]
        luma = r * t[:, 0:1] + g * t[:, 1:2] + b * t[:, 2:3]
        luma = _straight_through(luma, torch.floor(luma + 0.5))
    elif rounding == "pyiqa":
        t = x.to(torch.float64)
        r, g, b = GREY_COEFFS[coeffs]
        luma = (r * t[:, 0:1] + g * t[:, 1:2] + b * t[:, 2:3]) * scale
        luma = _straight_through(luma, torch.round(luma))
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return luma.to(dt)
