"""Pure-PyTorch twins of IW-SSIM's native operators (``turboiqa::laplacian_level``,
``turboiqa::iw_neighbour_covariance`` and ``turboiqa::iw_pooled_cs``, see csrc/ops.cpp), plus the small spectral
step between the last two.

Bands are N×C×H×W in the compute dtype, each plane scored on its own; ``parent`` is the next coarser band of the
reference pyramid (or None). These are the operations ``iw_ssim(backend='reference')`` runs, and the ones that carry
its gradient; they materialise the neighbour matrix and every statistics map, which the native kernels avoid.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..filters import correlate_axis, filter_valid

# matlabPyrTools namedFilter('binom5'): sqrt(2)·[1 4 6 4 1]/16. DC gain √2 per axis, so every lowpass level is
# twice the brightness of the previous one; iwssim.m keeps that scaling (C1, C2 and σ_n² stay in 0…255 units).
BINOM5 = tuple(math.sqrt(2) * c / 16 for c in (1, 4, 6, 4, 1))


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


def laplacian_level(planes: torch.Tensor, expand: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Twin of ``laplacian_level``: (planes - expand(lowpass), lowpass), one level of ``buildLpyr``."""
    lo = pyramid_reduce(planes)
    return planes - pyramid_expand(lo, planes.shape[-2:], expand), lo



def contrast_structure_map(x: torch.Tensor, y: torch.Tensor, window, c1: float, c2: float,
                           with_luminance: bool) -> torch.Tensor:
    """``scale_quality_maps``: cs (times l at the coarsest band) over the separable ``window``, 'valid'; the
    variances clamped at 0 as MATLAB's max(0, ·)."""
    mu_x, mu_y, e_xx, e_yy, e_xy = (filter_valid(t, window) for t in (x, y, x * x, y * y, x * y))
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


def _planes(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, 1, *t.shape[-2:])


def neighbour_matrix(band: torch.Tensor, parent: torch.Tensor | None, blk_size: int) -> torch.Tensor:
    """(N·C, K, P) neighbourhood vectors of every interior position: the blk×blk neighbours (MATLAB's circular
    ``shift`` never wraps there) plus, optionally, the co-located coefficient of the enlarged parent."""
    band = _planes(band)
    # The operator's checks: a band smaller than the neighbourhood has no position (0/0 covariance, NaN weights).
    if blk_size < 1 or blk_size % 2 == 0:
        raise ValueError(f"blk_size must be a positive odd integer, got {blk_size}")
    if min(band.shape[-2:]) < blk_size:
        raise ValueError(f"band is {band.shape[-2]}×{band.shape[-1]}, smaller than the {blk_size}×{blk_size} "
                         "neighbourhood (blk_size)")
    h, w = band.shape[-2] - blk_size + 1, band.shape[-1] - blk_size + 1
    columns = [band[..., dy:dy + h, dx:dx + w] for dy in range(blk_size) for dx in range(blk_size)]
    if parent is not None:
        columns.append(enlarged_parent(_planes(parent), blk_size // 2, h, w))
    return torch.cat(columns, dim=1).flatten(2)


def neighbour_covariance(band: torch.Tensor, parent: torch.Tensor | None, blk_size: int) -> torch.Tensor:
    """Twin of ``iw_neighbour_covariance``: Σ_positions Y Yᵀ / positions, (N, C, K, K)."""
    neighbours = neighbour_matrix(band, parent, blk_size)
    covariance = neighbours @ neighbours.mT / neighbours.shape[2]
    return covariance.view(*band.shape[:2], *covariance.shape[-2:])


def spectral_terms(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C_u⁻¹, eigenvalues) of (…, K, K) covariances, computed where they are (iw_ssim hands them over on the CPU).

    Negative eigenvalues (rounding) are zeroed and the rest rescaled to keep the trace, as in Sheikh's VIF code. A
    flat reference band (a constant image) makes C_u singular: inv_ex yields non-finite values instead of raising,
    so that pair scores NaN, as in MATLAB (inv warns and returns Inf), and the rest of the batch is unaffected.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    kept = eigenvalues.clamp(min=0)
    kept_sum = kept.sum(-1, keepdim=True)
    eigenvalues = kept * eigenvalues.sum(-1, keepdim=True) / (kept_sum + (kept_sum == 0).to(kept_sum.dtype))
    covariance = eigenvectors @ torch.diag_embed(eigenvalues) @ eigenvectors.mT
    return torch.linalg.inv_ex(covariance).inverse, eigenvalues


def information_weights(ref: torch.Tensor, dist: torch.Tensor, parent: torch.Tensor | None, inverse: torch.Tensor,
                        eigenvalues: torch.Tensor, blk_size: int, sigma_nsq: float, tol: float) -> torch.Tensor:
    """``info_content_weight_map`` for one band: (N·C, 1, H-blk+1, W-blk+1) weights on the interior grid, from the
    band's (N, C, K, K) ``inverse`` covariance and (N, C, K) ``eigenvalues``.

    MATLAB filters the blk×blk local statistics 'same' (zero padded) and then keeps only the interior, where the
    padding never reaches: a 'valid' box filter gives the same numbers directly.
    """
    ref, dist = _planes(ref), _planes(dist)
    inverse = inverse.reshape(-1, *inverse.shape[-2:])
    eigenvalues = eigenvalues.reshape(-1, eigenvalues.shape[-1])
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

    neighbours = neighbour_matrix(ref, parent, blk_size)
    k = neighbours.shape[1]
    # ss = sum((Y·inv(C_u)).*Y, 2) / N: the GSM multiplier estimate at every position (computed transposed).
    ss = torch.einsum("bkp,bkp->bp", inverse.mT @ neighbours, neighbours) / k
    ss = ss.view_as(mu_x[:, 0]).unsqueeze(1)
    # Σ_j log2(1 + ((vv + (1+g²)σ²)·ss·λ_j + σ²·vv) / σ⁴), the constant parts hoisted out of MATLAB's loop.
    signal = (vv + (1 + gain * gain) * sigma_nsq) * ss / (sigma_nsq * sigma_nsq)
    base = 1 + vv / sigma_nsq
    weights = torch.zeros_like(ss)
    for j in range(k):
        weights = weights + torch.log2(torch.addcmul(base, signal, eigenvalues[:, j].view(-1, 1, 1, 1)))
    return torch.where(weights < tol, 0.0, weights)


def pooled_cs(ref: torch.Tensor, dist: torch.Tensor, parent: torch.Tensor | None, inverse: torch.Tensor,
              eigenvalues: torch.Tensor, blk_size: int, window, c2: float, sigma_nsq: float,
              tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Twin of ``iw_pooled_cs``: (Σ w·cs, Σ w) per plane, (N, C) each, in the band's dtype (the native operator
    returns float64); the weights cropped to the 'valid' cs map (iwssim.m's bound1: same centres)."""
    n, c = ref.shape[:2]
    cs = contrast_structure_map(_planes(ref), _planes(dist), window, 0.0, c2, with_luminance=False)
    weights = information_weights(ref, dist, parent, inverse, eigenvalues, blk_size, sigma_nsq, tol)
    crop = (len(window) - 1) // 2 - blk_size // 2
    if crop > 0:
        weights = weights[..., crop:-crop, crop:-crop]
    return (cs * weights).sum(dim=(-2, -1)).view(n, c), weights.sum(dim=(-2, -1)).view(n, c)
