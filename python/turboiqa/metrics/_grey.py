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


def grey255(x: torch.Tensor, data_range: float, coeffs: str | None, rounding: str | None, *,
            fold_scale: bool = False, backend: str = "auto") -> torch.Tensor:
    """N×C×H×W in [0, data_range] → grey N×1×H×W in 0–255 (compute dtype), through the grey_planes operator (the
    one luma implementation of the library; its rounding passes the gradient straight through). C = 1 is taken as
    grey already (no rounding); ``coeffs`` None keeps every channel. ``rounding``: None (unrounded luma: the
    weighted sum times 255/data_range, or with ``fold_scale`` the scale folded into the coefficients), 'matlab',
    'matlab_exact' or 'pyiqa'."""
    dt = compute_dtype(x.dtype)
    scale = 255.0 / float(data_range)
    if coeffs is None or x.shape[1] != 3:
        t = x.to(dt)
        return t * scale if scale != 1 else t
    c = GREY_COEFFS[coeffs]
    if rounding is None:
        if fold_scale:
            return _ops.grey_planes(x, [k * scale for k in c], 1.0, "none", backend=backend)[0]
        return _ops.grey_planes(x, c, scale, "none", backend=backend)[0]
    if rounding == "matlab":
        # MATLAB rgb2gray of an 8-bit image: uint8 input rounded in double (rgb2gray exactly); float input: the luma
        # in the compute dtype, scaled, rounded half up. Near-ties of float32 input may round either way
        # (rgb2gray's coefficients make exact ties of 8-bit values practically impossible).
        return _ops.grey_planes(x, c, 1.0 if x.dtype == torch.uint8 else scale, "half_away", backend=backend)[0]
    if rounding == "matlab_exact":
        if x.dtype == torch.uint8:  # integers already: the sum in double, rounded there
            return _ops.grey_planes(x, c, 1.0, "half_away", backend=backend)[0]
        # snap in the input's precision (the snapped values are integers: exact), sum in float64
        t = x.to(dt) * scale if scale != 1 else x.to(dt)
        t = _straight_through(t, torch.where((t - t.round()).abs() < SNAP, t.round(), t)).to(torch.float64)
        return _ops.grey_planes(t, c, 1.0, "half_away", backend=backend)[0].to(dt)
    if rounding == "pyiqa":  # float64 arithmetic, torch.round (half to even)
        return _ops.grey_planes(x.to(torch.float64), c, scale, "half_even", backend=backend)[0].to(dt)
    raise ValueError(f"unknown rounding {rounding!r}")


# ------------------------------------------------------------------------------------------------------------------
# The fused front end: luma/grey planes, their rounding, the 2×2 (F×F) box mean and the input checks in one read of
# each image (the native grey_planes operator; its twin without the extension).

# color → (coefficients, whether the 0–255 scale is folded into them, rounding) for 3-channel input
LUMA_SPECS = {
    "yiq": ("yiq", True, "none"),
    "rgb2gray_uint8": ("rgb2gray", True, "half_away"),  # MATLAB rgb2gray of the 8-bit image
    "yiq_uint8": ("yiq_f32", False, "half_even"),  # pyiqa: float32 matrix, scaled after, torch.round
}


def luma_spec(color: str | None, channels: int, scale: float):
    """(coeffs, scale, rounding) of grey_planes for ``color`` ('yiq', 'rgb2gray_uint8', 'yiq_uint8', or None /
    'per_channel': every channel as given, times ``scale``). Gray (1-channel) input is taken as luma, unrounded."""
    if color in (None, "per_channel") or channels == 1:
        return (), scale, "none"
    if channels != 3:
        raise ValueError(f"color={color!r} needs 1 (gray) or 3 (RGB) channels, got {channels}")
    name, folded, rounding = LUMA_SPECS[color]
    coeffs = GREY_COEFFS[name]
    return ([c * scale for c in coeffs], 1.0, rounding) if folded else (list(coeffs), scale, rounding)


def pool_geometry(h: int, w: int, pool: str | None, factor: int = 2):
    """(factor, pad_top, pad_left, out_h, out_w) of grey_planes' box mean: None (no averaging); 'zeros'
    (``conv2(·, ones(F)/F², 'same')`` sampled at (1:F:end): ⌈F/2⌉ − 1 zeros before, ⌈H/F⌉ outputs); 'floor'
    (avg_pool2d: an odd last row/column dropped); 'piq' (piq's halving: a zero row and column when either side is
    odd)."""
    if pool is None or factor == 1 and pool != "floor":
        return 1, 0, 0, h, w
    if pool == "zeros":
        pad = -(-factor // 2) - 1
        return factor, pad, pad, -(-h // factor), -(-w // factor)
    if pool == "floor":
        return factor, 0, 0, h // factor, w // factor
    if pool == "piq":
        pad = max(h % 2, w % 2)
        return 2, 0, 0, (h + pad) // 2, (w + pad) // 2
    raise ValueError(f"unknown pool {pool!r}")


def grey_pair(x: torch.Tensor, y: torch.Tensor, data_range: float, coeffs, scale: float, rounding: str, geometry,
              backend: str = "auto", names=("x", "y")):
    """The planes of ``x`` and ``y`` (grey_planes, one read each) and validate's range/NaN/Inf checks from the
    extrema the same pass returns (pair checked by ``check_pair(..., check_values=False)`` first)."""
    from ..validate import check_extrema

    px, ex = _ops.grey_planes(x, coeffs, scale, rounding, *geometry, backend=backend)
    py, ey = _ops.grey_planes(y, coeffs, scale, rounding, *geometry, backend=backend)
    check_extrema(x, y, torch.cat([ex, ey], 1), None, data_range, names)
    return px, py
