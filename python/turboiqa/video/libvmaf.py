"""libvmaf's ``float_ssim`` feature reproduced to the digit, as a checkable reference for the fast native path.

libvmaf (``feature/float_ssim.c`` → ``ssim.c`` ``compute_ssim`` → ``iqa/ssim_tools.c`` ``_iqa_ssim``) computes on
the Y plane as floats 0…255:

* decimation by f = max(1, round(min(H, W)/256)) with an f×f box (``_iqa_decimate``, see
  :func:`turboiqa.metrics.ssim.libvmaf_decimate`);
* 'valid' separable filtering with the 11-tap Gaussian (σ = 1.5) **stored to 6 decimals** in ``ssim_tools.h``:
  the taps sum to 1.000002, so every local moment is scaled by 1.000004 and σ² = E[x²] − μ² gains a bias of about
  −4e-6·μ² (−0.26 at μ = 255);
* σx², σy² clamped at 0, and σxy set to 0 where it is negative while σx·σy = 0 (flat windows);
* SSIM map = l·c·s with c·s = (2σxy + C2)/(σx² + σy² + C2), C1 = (0.01·255)², C2 = (0.03·255)², averaged.

The biased, clamped variances are what separate libvmaf from the exact Gaussian (``ssim(convention='libvmaf')``):
up to ~3e-4 on real video, largest on frames with flat bright areas. libvmaf stores the filtered maps in float32;
this reproduction computes in float64, which leaves differences of a few 1e-6.
"""
from __future__ import annotations

import torch

from ..filters import filter_valid
from ..metrics.ssim import libvmaf_decimate
from ..resample import auto_downsample_factor

LIBVMAF_GAUSSIAN_TAPS = (0.001028, 0.007599, 0.036001, 0.109361, 0.213006, 0.266012,
                         0.213006, 0.109361, 0.036001, 0.007599, 0.001028)


def float_ssim(dist: torch.Tensor, ref: torch.Tensor, taps=LIBVMAF_GAUSSIAN_TAPS, clamp: bool = True) -> torch.Tensor:
    """libvmaf float_ssim of N×1×H×W Y planes (uint8 or float in 0…255): (N,) float64.

    ``taps=gaussian_window(11, 1.5), clamp=False`` gives the exact-Gaussian value of ``ssim(convention='libvmaf')``
    (the tests use it to show where the two differ)."""
    if dist.shape != ref.shape or dist.dim() != 4 or dist.shape[1] != 1:
        raise ValueError(f"dist and ref must be N×1×H×W Y planes of one shape, got {tuple(dist.shape)} and "
                         f"{tuple(ref.shape)}")
    x, y = ref.to(torch.float64), dist.to(torch.float64)
    f = auto_downsample_factor(*x.shape[-2:], rounding="matlab")  # libvmaf's _round is half-up, like MATLAB's
    if f > 1:
        x, y = libvmaf_decimate(x, f), libvmaf_decimate(y, f)
    if min(x.shape[-2:]) < len(taps):
        raise ValueError(f"frames of {tuple(ref.shape[-2:])} are smaller than the 11×11 window after decimation")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    n = x.shape[0]
    moments = filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=0), list(taps))
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(n, dim=0)
    var_x, var_y, cov = e_xx - mu_x * mu_x, e_yy - mu_y * mu_y, e_xy - mu_x * mu_y
    if clamp:
        var_x, var_y = var_x.clamp(min=0), var_y.clamp(min=0)
        cov = torch.where((cov < 0) & (var_x * var_y <= 0), torch.zeros_like(cov), cov)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    ssim_map = luminance * (2 * cov + c2) / (var_x + var_y + c2)
    return ssim_map.mean(dim=(1, 2, 3))
