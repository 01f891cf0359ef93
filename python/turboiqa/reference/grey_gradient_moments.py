"""Pure-PyTorch twin of the native ``grey_gradient_moments`` operator (csrc/grey_gradient_moments.h): the twins of
grey_planes and gradient_similarity composed (the native operator fuses the two kernels; same numbers)."""
from __future__ import annotations

from .gradient_similarity import gradient_similarity
from .grey_planes import grey_planes


def grey_gradient_moments(x, y, coeffs, scale, rounding, factor, pad_top, pad_left, out_height, out_width, smooth,
                          grad_scale, c, alpha, eps, padding):
    """(moments (N, R, 2) float64, extrema of x (N, 2), extrema of y (N, 2)); see csrc/ops.cpp."""
    if x.shape != y.shape or x.dtype != y.dtype or x.device != y.device:
        raise ValueError(f"grey_gradient_moments: x and y must have one shape, dtype and device, got "
                         f"{tuple(x.shape)}/{x.dtype}/{x.device} and {tuple(y.shape)}/{y.dtype}/{y.device}")
    front = (coeffs, scale, rounding, factor, pad_top, pad_left, out_height, out_width)
    px, ex = grey_planes(x, *front)
    py, ey = grey_planes(y, *front)
    return gradient_similarity(px, py, smooth, grad_scale, c, alpha, eps, padding, "moments"), ex, ey
