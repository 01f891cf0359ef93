"""IW-SSIM — Z. Wang, Q. Li, "Information content weighting for perceptual image quality assessment",
IEEE TIP 20(5):1185–1198, 2011.

Reference code: Wang's MATLAB ``iwssim.m`` (with ``scale_quality_maps``, ``info_content_weight_map``,
``imenlarge2``) on Simoncelli's matlabPyrTools ``buildLpyr`` (SPECS §4.1). Per pyramid band s: the SSIM
contrast-structure map cs_s (Gaussian 11/1.5, 'valid'; times the luminance map at the coarsest band), pooled with
the information-content weights of a Gaussian scale mixture model of the reference band (3×3 neighbours plus the
parent coefficient); IW-SSIM = Π_s wmcs_s^{w_s} with Wang's MS-SSIM weights renormalised to sum 1.

Work is done in MATLAB's units (images scaled to 0…255: σ_n² = 0.4 is an absolute variance). ``y`` is the
reference (MATLAB's ``oimg``: the information weights come from its pyramid), ``x`` the distorted image. Colour
input is reduced to YIQ/Rec.601 luma 0.299R + 0.587G + 0.114B without rounding (the 'rgb case' of piq's MATLAB
test value); other channel counts are scored per channel and averaged. That published value, 0.946804801436296 for
TID2013 I01 / i01_01_5, is reproduced to 1e-16 (float64) by ``iw_ssim(I01, i01_01_5)``, the argument order of piq's
test, i.e. with the distorted i01_01_5 in the reference role; with I01 as the reference the score is 0.946239578522783.
``convention=``:

========  ==========================================================================================================
'matlab'  iwssim.m + matlabPyrTools: ``upConv`` 'reflect1' expansion for odd sizes too, tol = 1e-15, no |·| before
          the fractional powers (a negative pooled cs gives NaN, where MATLAB gives a complex number), images of at
          least 11·2^(scales-1) [default]
'piq'     piq.information_weighted_ssim: zero-stuffing to an even length in the expansion (the last row/column of
          odd-sized bands differs), tol = machine epsilon of the compute dtype, |wmcs| before the powers, images of
          at least 10·2^(scales-1)+1. Not copied: with a single scale piq pools its first band-pass band, here
          (as in iwssim.m) the image itself is scored
========  ==========================================================================================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..dtypes import compute_dtype
from ..filters import correlate_axis, filter_valid
from ..validate import check_pair, check_reduction, reduce
from ..window import gaussian_window
from .module import MetricModule
from .ms_ssim import WANG_WEIGHTS, minimum_size
from .ssim import prepare_channels, resolve_convention

# matlabPyrTools namedFilter('binom5'): sqrt(2)·[1 4 6 4 1]/16. DC gain √2 per axis, so every lowpass level is
# twice the brightness of the previous one; iwssim.m keeps that scaling (C1, C2 and σ_n² stay in 0…255 units).
BINOM5 = tuple(math.sqrt(2) * c / 16 for c in (1, 4, 6, 4, 1))
KERNEL_SIZE, KERNEL_SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


@dataclass(frozen=True)
class IwSsimConvention:
    expand: str = "matlab"  # 'matlab': zero-stuff to the target length; 'piq': to an even length, then crop
    tol: float | None = 1e-15  # None: torch.finfo(compute dtype).eps (piq)
    abs_before_power: bool = False
    color: str = "yiq"  # luma for 3-channel input (see turboiqa.colour) or 'per_channel'
    min_size_rule: str = "window"  # see ms_ssim.minimum_size
    kernel_size: int = KERNEL_SIZE


IW_SSIM_CONVENTIONS = {
    "matlab": IwSsimConvention(),
    "piq": IwSsimConvention(expand="piq", tol=None, abs_before_power=True, min_size_rule="taps"),
}


def _binom5_axis(planes: torch.Tensor, dim: int, stride: int = 1) -> torch.Tensor:
    """binom5 along ``dim`` with 'reflect1' borders (mirror without repeating the edge sample: F.pad 'reflect');
    ``stride=2`` keeps samples 0, 2, 4, … (MATLAB 1, 3, 5, …: ceil(n/2) of them)."""
    padded = F.pad(planes, (2, 2, 0, 0) if dim == -1 else (0, 0, 2, 2), mode="reflect")
    return correlate_axis(padded, BINOM5, dim, stride)


def pyramid_reduce(planes: torch.Tensor) -> torch.Tensor:
    """``corrDn(im, binom5', 'reflect1', [1 2])`` then ``corrDn(·, binom5, 'reflect1', [2 1])`` (buildLpyr)."""
    return _binom5_axis(_binom5_axis(planes, -1, stride=2), -2, stride=2)


def upsample_axis(lo: torch.Tensor, n: int, dim: int, expand: str) -> torch.Tensor:
    """``upConv(lo, binom5, 'reflect1', step 2, start 1, stop n)`` along ``dim``.

    The MEX folds the filter at the output edge ('reflect1' EXPAND); for a symmetric odd filter that equals
    placing the samples at 0, 2, 4, … of a zero signal of length n, mirroring it without repeating the edge sample
    and filtering (checked against a line-by-line port of edges.c/convolve.c). For odd n the mirror is about the
    last sample itself; piq stuffs to an even length 2·ceil(n/2) and mirrors about the trailing zero instead.
    """
    stuffed = torch.stack([lo, torch.zeros_like(lo)], dim=dim).flatten(dim - 1, dim)  # l0 0 l1 0 …
    if expand == "matlab":
        stuffed = stuffed.narrow(dim, 0, n)
    return _binom5_axis(stuffed, dim).narrow(dim, 0, n)


def pyramid_expand(lo: torch.Tensor, size, expand: str) -> torch.Tensor:
    """buildLpyr's expansion: rows first (``upConv(lo2, filt2, [2 1])``), then columns."""
    return upsample_axis(upsample_axis(lo, size[0], -2, expand), size[1], -1, expand)


def laplacian_pyramid(planes: torch.Tensor, levels: int, expand: str) -> list[torch.Tensor]:
    """``buildLpyr(im, levels)``: levels-1 band-pass bands (fine to coarse) then the low-pass residual."""
    bands = []
    for _ in range(levels - 1):
        lo = pyramid_reduce(planes)
        bands.append(planes - pyramid_expand(lo, planes.shape[-2:], expand))
        planes = lo
    bands.append(planes)
    return bands


def contrast_structure_map(x: torch.Tensor, y: torch.Tensor, with_luminance: bool) -> torch.Tensor:
    """``scale_quality_maps``: cs (times l at the coarsest band) with the 11×11 Gaussian, 'valid', L = 255; the
    variances clamped at 0 as MATLAB's max(0, ·)."""
    c1, c2 = (K1 * 255) ** 2, (K2 * 255) ** 2
    taps = gaussian_window(KERNEL_SIZE, KERNEL_SIGMA)
    mu_x, mu_y, e_xx, e_yy, e_xy = (filter_valid(t, taps) for t in (x, y, x * x, y * y, x * y))
    sigma_xx = (e_xx - mu_x * mu_x).clamp(min=0)
    sigma_yy = (e_yy - mu_y * mu_y).clamp(min=0)
    sigma_xy = e_xy - mu_x * mu_y
    cs = (2 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    if with_luminance:
        cs = cs * (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return cs


def _enlarge_axis(band: torch.Tensor, dim: int, start: int, count: int) -> torch.Tensor:
    """Samples start … start+count-1 of iwssim.m's ``imenlarge2`` along ``dim``.

    imenlarge2 resizes an M-sample axis bilinearly to 4M-3 samples (MATLAB ``imresize``, no antialiasing when
    enlarging), adds one linearly extrapolated sample (2·first - second) at each end and keeps every second one:
    output i is resized sample 2i-1 (-1 and 4M-3 being the extrapolated ends). Resized sample j reads the input at
    u = (j + 0.5)·M/(4M-3) - 0.5, clamped to the image (MATLAB mirrors the out-of-range contribution onto the edge
    pixel; F.interpolate(align_corners=False) clamps: same value). For M ≥ 3 the two outermost resized samples are
    both the edge pixel, so the extrapolated ends equal it as well: the clamped formula covers every output.
    Computing only the samples used avoids building the 4M×4N image.
    """
    m = band.shape[dim]
    j = 2 * torch.arange(start, start + count, dtype=torch.float64, device=band.device) - 1
    u = ((j + 0.5) * (m / (4 * m - 3)) - 0.5).clamp(0, m - 1)
    low = u.floor().long()
    high = (low + 1).clamp(max=m - 1)
    frac = (u - low).to(band.dtype).view((-1, 1) if dim == -2 else (-1,))
    return band.index_select(dim, low) * (1 - frac) + band.index_select(dim, high) * frac


def enlarged_parent(parent: torch.Tensor, start: int, height: int, width: int) -> torch.Tensor:
    """``imenlarge2(parent)(start+1 : start+height, start+1 : start+width)`` (the window the neighbourhoods use)."""
    return _enlarge_axis(_enlarge_axis(parent, -2, start, height), -1, start, width)


def information_content(ref: torch.Tensor, dist: torch.Tensor, parent: torch.Tensor | None, blk_size: int,
                        sigma_nsq: float, tol: float) -> torch.Tensor:
    """``info_content_weight_map`` for one band: (B, 1, H-blk+1, W-blk+1) weights on the interior grid.

    MATLAB filters the blk×blk local statistics 'same' (zero padded) and then keeps only the interior, where the
    padding never reaches: a 'valid' box filter gives the same numbers directly.
    """
    box = (1.0 / blk_size,) * blk_size
    mu_x, mu_y, e_xx, e_yy, e_xy = (filter_valid(t, box) for t in (ref, dist, ref * ref, dist * dist, ref * dist))
    sigma_xx = (e_xx - mu_x * mu_x).clamp(min=0)
    sigma_yy = (e_yy - mu_y * mu_y).clamp(min=0)
    sigma_xy = e_xy - mu_x * mu_y
    # Gain and residual variance of the distortion channel dist = g·ref + v, with MATLAB's order of overrides.
    gain = sigma_xy / (sigma_xx + tol)
    vv = sigma_yy - gain * sigma_xy
    flat_ref, flat_dist = sigma_xx < tol, sigma_yy < tol
    gain = torch.where(flat_ref, 0.0, gain)
    vv = torch.where(flat_ref, sigma_yy, vv)
    gain = torch.where(flat_dist, 0.0, gain)
    vv = torch.where(flat_dist, 0.0, vv)

    # Neighbourhood vectors of the reference band: the blk×blk neighbours of every interior position (MATLAB's
    # circular ``shift`` never wraps there) plus, optionally, the co-located coefficient of the enlarged parent.
    h, w = mu_x.shape[-2:]
    half = blk_size // 2
    columns = [ref[..., dy:dy + h, dx:dx + w] for dy in range(blk_size) for dx in range(blk_size)]
    if parent is not None:
        columns.append(enlarged_parent(parent, half, h, w))
    neighbours = torch.cat(columns, dim=1).flatten(2)  # (B, K, P)
    k, positions = neighbours.shape[1], neighbours.shape[2]
    # The K×K covariances are tiny: on a GPU the solvers' launch and sync cost milliseconds each, the CPU microseconds.
    device = neighbours.device
    covariance = (neighbours @ neighbours.mT / positions).cpu()
    # Negative eigenvalues (rounding) are zeroed and the rest rescaled to keep the trace, as in Sheikh's VIF code.
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    kept = eigenvalues.clamp(min=0)
    kept_sum = kept.sum(-1, keepdim=True)
    eigenvalues = kept * eigenvalues.sum(-1, keepdim=True) / (kept_sum + (kept_sum == 0).to(kept_sum.dtype))
    covariance = eigenvectors @ torch.diag_embed(eigenvalues) @ eigenvectors.mT
    # ss = sum((Y·inv(C_u)).*Y, 2) / N: the GSM multiplier estimate at every position (computed transposed). A flat
    # reference band (a constant image) makes C_u singular: inv_ex yields non-finite values instead of raising, so
    # that pair scores NaN, as in MATLAB (inv warns and returns Inf), and the rest of the batch is unaffected.
    inverse = torch.linalg.inv_ex(covariance).inverse.to(device)
    eigenvalues = eigenvalues.to(device)
    ss = torch.einsum("bkp,bkp->bp", inverse.mT @ neighbours, neighbours) / k
    ss = ss.view_as(mu_x[:, 0]).unsqueeze(1)
    # Σ_j log2(1 + ((vv + (1+g²)σ²)·ss·λ_j + σ²·vv) / σ⁴), the constant parts hoisted out of MATLAB's loop.
    signal = (vv + (1 + gain * gain) * sigma_nsq) * ss / (sigma_nsq * sigma_nsq)
    base = 1 + vv / sigma_nsq
    weights = torch.zeros_like(ss)
    for j in range(k):
        weights = weights + torch.log2(torch.addcmul(base, signal, eigenvalues[:, j].view(-1, 1, 1, 1)))
    return torch.where(weights < tol, 0.0, weights)


def iw_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    convention: str = "matlab",
    scales: int = 5,
    parent: bool = True,
    blk_size: int = 3,
    sigma_nsq: float = 0.4,
    backend: str = "auto",
    color: str | None = None,
) -> torch.Tensor:
    """IW-SSIM of each (distorted ``x``, reference ``y``) pair: (N,) for reduction='none', else a scalar.

    ``x``, ``y``: N×C×H×W (or C×H×W / H×W), uint8 (data_range=255) or float in [0, data_range]; float64 input
    computes in float64, everything else in float32. ``scales`` (1…5) takes the first Wang weights, renormalised
    (iwssim.m's ``Nsc``); ``parent`` and ``blk_size`` shape the neighbourhood; ``sigma_nsq`` is the visual noise
    variance in 0…255 units. ``color`` overrides the convention's luma for 3-channel input; ``backend`` picks the
    native or reference luma operator (the rest is plain PyTorch, on any device). Differentiable. A reference with
    a flat band (a constant image) has no information content: that pair scores NaN, as in iwssim.m.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    conv = resolve_convention(convention, IW_SSIM_CONVENTIONS, color=color)
    if not 1 <= scales <= 5:
        raise ValueError(f"scales must be 1…5 (iwssim.m caps Nsc at 5), got {scales}")
    if blk_size < 1 or blk_size % 2 == 0:
        raise ValueError(f"blk_size must be a positive odd integer, got {blk_size}")
    h, w = x.shape[-2:]
    need = minimum_size(conv.kernel_size, scales, conv.min_size_rule)
    if min(h, w) < need:
        fitting = [s for s in range(1, 6) if min(h, w) >= minimum_size(conv.kernel_size, s, conv.min_size_rule)]
        raise ValueError(
            f"IW-SSIM with {scales} scales needs images of at least {need}×{need} "
            f"({conv.kernel_size}-tap window at the coarsest of {scales} pyramid levels), got {h}×{w}"
            + (f"; pass scales={max(fitting)} to use fewer scales" if fitting else "")
        )

    x, y = prepare_channels(x, y, conv.color, data_range, backend)
    n, c = x.shape[:2]
    dtype = compute_dtype(x.dtype)
    scale = 255.0 / data_range  # iwssim.m works on 0…255 images (L = 255, σ_n² in those units)
    dist = (x.to(dtype) * scale).reshape(n * c, 1, h, w)
    ref = (y.to(dtype) * scale).reshape(n * c, 1, h, w)
    tol = torch.finfo(dtype).eps if conv.tol is None else conv.tol

    ref_bands = laplacian_pyramid(ref, scales, conv.expand)
    dist_bands = laplacian_pyramid(dist, scales, conv.expand)
    crop = (conv.kernel_size - 1) // 2 - blk_size // 2  # iwssim.m's bound1: aligns the weights with 'valid' cs
    pooled = []
    for s in range(scales):
        if s == scales - 1:  # iwssim.m: l·cs with a weight map of ones at the coarsest band
            # The low-pass residual carries 2^(scales-1)× the mean intensity, so E[x²] - μ² cancels badly in float32
            # (1e-4 off on noisy content); the band is 1/4^(scales-1) of the image, so float64 costs nothing.
            cs = contrast_structure_map(ref_bands[s].double(), dist_bands[s].double(), with_luminance=True)
            pooled.append(cs.mean(dim=(-2, -1)).to(dtype))
            continue
        cs = contrast_structure_map(ref_bands[s], dist_bands[s], with_luminance=False)
        # iwssim.m uses the parent band for scales 1…Nsc-2 only (the low-pass residual is never a parent).
        parent_band = ref_bands[s + 1] if parent and s < scales - 2 else None
        weights = information_content(ref_bands[s], dist_bands[s], parent_band, blk_size, sigma_nsq, tol)
        if crop > 0:
            weights = weights[..., crop:-crop, crop:-crop]
        pooled.append((cs * weights).sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1)))
    wmcs = torch.stack(pooled)[..., 0]  # (scales, N·C)
    if conv.abs_before_power:
        wmcs = wmcs.abs()
    scale_weights = torch.tensor(WANG_WEIGHTS[:scales], dtype=torch.float64)
    scale_weights = (scale_weights / scale_weights.sum()).to(device=wmcs.device, dtype=wmcs.dtype)
    per_plane = torch.prod(wmcs ** scale_weights.view(-1, 1), dim=0)
    return reduce(per_plane.view(n, c).mean(dim=1), reduction)


class IW_SSIM(MetricModule):
    """Module form of :func:`iw_ssim`; ``loss=True`` returns 1 - IW-SSIM."""

    metric = staticmethod(iw_ssim)
