"""CW-SSIM — complex wavelet structural similarity. M. P. Sampat, Z. Wang, S. Gupta, A. C. Bovik, M. K. Markey,
"Complex wavelet structural similarity: a new image similarity index", IEEE TIP 18(11), 2385–2401, 2009.

Reference code: Z. Wang's MATLAB ``cwssim_index.m`` (MATLAB Central 43017) on ``buildSCFpyr`` of matlabPyrTools
(E. Simoncelli): a complex steerable pyramid of the grey image; on the ``level``-th (coarsest) scale, for each of the
``orientations`` bands c₁ (x) and c₂ (y), the map (2|Σ_w c₁c₂*| + K) / (Σ_w |c₁|² + |c₂|² + K) over a 7×7 box w
('valid'), weighted by a Gaussian of the map's size with σ = band height / 4 (sum 1); the score is the mean over the
bands. Higher = better (1 for identical images). Defaults level = 4, orientations = 8, K = 0 (as the official scores
were computed; pyiqa's defaults).

Only the pyramid's coarsest band is used, so it is built directly: one FFT of each image, the centred spectrum
cropped to that level's size and multiplied by the product of every mask buildSCFpyr applies on the way (lo0mask, the
level low-pass masks, the level's high-pass and angle masks), one small inverse FFT per band. The masks are cached
per size, dtype and device. The orientation phase (−i)^(orientations−1) cancels in c₁c₂* and is left out.

``convention=``:

========  =============================================================================================================
'matlab'  cwssim_index.m / buildSCFpyr: masks in the compute dtype, |·| exact; grey image = YIQ luma
          0.299/0.587/0.114 rounded to 8 bits half away from zero (MATLAB round; it reproduces the official
          scores, i03 to 8e-7) [default]
'pyiqa'   pyiqa 0.1.16 ``cw_ssim``: the same with pyiqa's float32 constants (YIQ coefficients, masks, Gaussian
          weight), ties rounded half to even (torch.round), and |c| = √(re² + im² + 1e-12)
          (also for |Σ c₁c₂*|); pyiqa always computes in float64 (turboiqa: float64 only for float64 input)
========  =============================================================================================================

Grey (C = 1) input is used as it is (scaled to 0–255, not rounded). Differentiable (the 8-bit rounding passes the
gradient straight through).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..validate import check_pair, check_reduction, reduce
from ._grey import grey255
from .module import MetricModule

WINDOW = 7
CW_SSIM_CONVENTIONS = {
    "matlab": {"grey": "yiq", "rounding": "matlab_exact", "float32_masks": False, "abs_eps": 0.0},
    "pyiqa": {"grey": "yiq_f32", "rounding": "pyiqa", "float32_masks": True, "abs_eps": 1e-12},
}


def _rcos():
    """buildSCFpyr's rcosFn(1, -1/2) with sqrt(Y): the radial transition table."""
    n = 256
    xs = np.pi * np.arange(-n - 1, 2) / 2 / n
    ys = np.cos(xs) ** 2
    ys[0], ys[n + 2] = ys[1], ys[n + 1]
    xs = -0.5 + 2 / np.pi * (xs + np.pi / 4)
    return xs, np.sqrt(ys)


def _grid(m: int, n: int):
    """log2 radius (centre replaced by its left neighbour) and angle of the centred frequency grid."""
    ctr_r, ctr_c = math.ceil((m + 0.5) / 2) - 1, math.ceil((n + 0.5) / 2) - 1
    yr = (np.arange(m) - ctr_r) / (m / 2)
    xr = (np.arange(n) - ctr_c) / (n / 2)
    xx, yy = np.meshgrid(xr, yr)
    rad = np.sqrt(xx**2 + yy**2)
    rad[ctr_r, ctr_c] = rad[ctr_r, ctr_c - 1]
    return np.log2(rad), np.arctan2(yy, xx)


@functools.lru_cache(maxsize=16)
def _bank_np(h: int, w: int, level: int, orientations: int, float32_masks: bool):
    """Crop (row0, row1, col0, col1) of the centred spectrum and the orientations×h'×w' product of masks for the
    band of the ``level``-th scale; the Gaussian weight of the 7×7-window map (float64 numpy)."""
    q = (lambda a: a.astype(np.float32).astype(np.float64)) if float32_masks else (lambda a: a)
    log_rad, angle = _grid(h, w)
    xr, yr = _rcos()
    yir = np.sqrt(1 - yr**2)
    mask = q(np.interp(log_rad, xr, yir))  # lo0mask
    r0, c0 = 0, 0
    dims = np.array([h, w])
    lutsize = 1024
    xcosn = np.pi * np.arange(-(2 * lutsize + 1), lutsize + 2) / lutsize
    alpha = (xcosn + np.pi) % (2 * np.pi) - np.pi
    order = orientations - 1
    const = 2 ** (2 * order) * math.factorial(order) ** 2 / (orientations * math.factorial(2 * order))
    ycosn = 2 * np.sqrt(const) * np.cos(xcosn) ** order * (np.abs(alpha) < np.pi / 2)
    for lev in range(1, level + 1):
        xr = xr - 1.0
        if lev == level:
            himask = q(np.interp(log_rad, xr, yr))
            bands = np.stack([mask * q(np.interp(angle, xcosn + np.pi * b / orientations, ycosn)) * himask
                              for b in range(orientations)])
            break
        start = np.ceil((dims + 0.5) / 2) - np.ceil((np.ceil((dims - 0.5) / 2) + 0.5) / 2)
        lodims = np.ceil((dims - 0.5) / 2)
        s0, s1, e0, e1 = int(start[0]), int(start[1]), int(start[0] + lodims[0]), int(start[1] + lodims[1])
        log_rad, angle, mask = log_rad[s0:e0, s1:e1], angle[s0:e0, s1:e1], mask[s0:e0, s1:e1]
        r0, c0 = r0 + s0, c0 + s1
        dims = lodims.astype(int)
        mask = mask * q(np.interp(log_rad, xr, np.abs(np.sqrt(1 - yr**2))))  # lomask
    bh, bw = bands.shape[-2:]
    # fspecial('gaussian', size(map), bh/4)
    mh, mw = bh - WINDOW + 1, bw - WINDOW + 1
    sigma = bh / 4
    yy, xx = np.ogrid[-(mh - 1) / 2 : (mh - 1) / 2 + 1, -(mw - 1) / 2 : (mw - 1) / 2 + 1]
    g = np.exp(-(xx * xx + yy * yy) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    g = g / g.sum()
    if float32_masks:
        g = g.astype(np.float32).astype(np.float64)
    return (r0, r0 + bh, c0, c0 + bw), bands, g


@functools.lru_cache(maxsize=16)
def _bank(h, w, level, orientations, float32_masks, dtype, device):
    crop, bands, g = _bank_np(h, w, level, orientations, float32_masks)
    # the band masks are applied to the centred spectrum; ifftshift them once so the crop can be inverted directly
    bands = torch.from_numpy(np.fft.ifftshift(bands, axes=(-2, -1)).copy()).to(dtype=dtype, device=device)
    return crop, bands, torch.from_numpy(g).to(dtype=dtype, device=device)


def coarsest_bands(im: torch.Tensor, level: int, orientations: int, float32_masks: bool) -> torch.Tensor:
    """N×1×H×W → N×orientations×h×w complex bands of buildSCFpyr's ``level``-th scale."""
    h, w = im.shape[-2:]
    (r0, r1, c0, c1), masks, _ = _bank(h, w, level, orientations, float32_masks, im.dtype, im.device)
    # every band mask is 0 at DC: removing the mean changes nothing but the float32 rounding of the large DC term
    im = im - im.mean(dim=(-2, -1), keepdim=True)
    spec = torch.fft.fftshift(torch.fft.fft2(im), dim=(-2, -1))[..., r0:r1, c0:c1]
    spec = torch.fft.ifftshift(spec, dim=(-2, -1))
    return torch.fft.ifft2(spec * masks)


def cw_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    level: int = 4,
    orientations: int = 8,
    K: float = 0.0,
    convention: str = "matlab",
) -> torch.Tensor:
    """CW-SSIM of each image pair (higher = better): (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; CW-SSIM is symmetric in the two):
    N×C×H×W (or C×H×W / H×W) with C = 1 (grey) or 3 (RGB, converted to 8-bit grey), uint8 (data_range=255) or
    float in [0, data_range]; both sides at least 2^(level+2) (buildSCFpyr's limit; 64 for level 4). ``K`` is in
    0–255 units squared (the official code reads 8-bit images as doubles).
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if convention not in CW_SSIM_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CW_SSIM_CONVENTIONS)}, got {convention!r}")
    conv = CW_SSIM_CONVENTIONS[convention]
    if x.shape[1] not in (1, 3):
        raise ValueError(f"CW-SSIM needs 1 (grey) or 3 (RGB) channels in x, got {x.shape[1]}")
    if not (isinstance(level, int) and level >= 1):
        raise ValueError(f"level must be an int >= 1, got {level!r}")
    if not (isinstance(orientations, int) and orientations >= 1):
        raise ValueError(f"orientations must be an int >= 1, got {orientations!r}")
    h, w = x.shape[-2:]
    need = 2 ** (level + 2)
    if min(h, w) < need:
        raise ValueError(f"x and y must be at least {need}×{need} for CW-SSIM with level={level}, got {h}×{w}")
    n = x.shape[0]
    im = grey255(torch.cat([x, y]), data_range, conv["grey"], conv["rounding"])
    bands = coarsest_bands(im, level, orientations, conv["float32_masks"])
    b1, b2 = bands[:n], bands[n:]
    eps = conv["abs_eps"]
    corr = b1 * b2.conj()
    if eps:
        varr = (b1.real**2 + b1.imag**2 + eps).sqrt() ** 2 + (b2.real**2 + b2.imag**2 + eps).sqrt() ** 2
    else:
        varr = b1.real**2 + b1.imag**2 + b2.real**2 + b2.imag**2
    # one box filter over [Re corr, Im corr, varr] of every band
    stats = F.avg_pool2d(torch.cat([corr.real, corr.imag, varr], dim=1), WINDOW, stride=1)
    cr, ci, vb = stats.split(orientations, dim=1)
    mag = (cr**2 + ci**2 + eps).sqrt() if eps else torch.complex(cr, ci).abs()
    cmap = (2 * mag + K) / (vb + K)
    weight = _bank(h, w, level, orientations, conv["float32_masks"], im.dtype, im.device)[2]
    score = (cmap * weight).sum(dim=(-2, -1)).mean(dim=1)
    return reduce(score, reduction)


cw_ssim.lower_is_better = False


class CW_SSIM(MetricModule):
    """Module form of :func:`cw_ssim` (higher = better); ``loss=True`` returns 1 - CW-SSIM."""

    metric = staticmethod(cw_ssim)
