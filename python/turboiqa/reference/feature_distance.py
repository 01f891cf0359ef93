"""Pure-PyTorch twins of the native feature-distance operators: ``lpips_distance``, ``dists_layer`` and
``swd_distance`` (same signatures and numbers as the C++/CUDA kernels; autograd provides the backward).

They materialise what the fused kernels avoid: the unit-normalised feature maps (LPIPS, SWD), the centred maps
(DISTS) and, for SWD, one distance map per neighbourhood offset.

Conventions shared with the kernels:

* features are N×C×H×W; float64 computes in float64, everything else in float32 (``compute_dtype``); the result
  is (N,) in the compute dtype;
* ``weight`` / ``alpha`` / ``beta`` hold C values (a 1-D tensor or the 1×C×1×1 weight of LPIPS' 1×1 conv head);
* unit normalisation over channels as in the official LPIPS code: f / (‖f‖₂ + eps), eps added to the norm; an
  all-zero position normalises to zero (its gradient through the norm is taken as zero, as
  ``torch.linalg.vector_norm`` does);
* SWD ties: the first neighbour in raster order of (Δi, Δj) (Δi outer, Δj inner, both from −radius up) wins;
  neighbours outside the map are skipped, never padded.
"""
from __future__ import annotations

import torch

from ..dtypes import compute_dtype


def _channel_vector(v: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    if v.numel() != channels:
        raise ValueError(f"expected {channels} per-channel values, got a tensor of shape {tuple(v.shape)}")
    return v.reshape(1, channels, 1, 1).to(dtype)


def unit_normalise(f: torch.Tensor, eps: float) -> torch.Tensor:
    """f / (‖f‖₂ over channels + eps), per position (LPIPS' ``normalize_tensor``)."""
    return f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + eps)


def lpips_distance(f0: torch.Tensor, f1: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Twin of ``turboiqa::lpips_distance``: mean over H×W of Σ_c w_c (f̂0_c − f̂1_c)², shape (N,)."""
    dtype = compute_dtype(f0.dtype)
    f0, f1 = f0.to(dtype), f1.to(dtype)
    w = _channel_vector(weight, f0.shape[1], dtype)
    d = (w * (unit_normalise(f0, eps) - unit_normalise(f1, eps)).square()).sum(dim=1)
    return d.mean(dim=(1, 2))


def dists_layer(f0: torch.Tensor, f1: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, c1: float,
                c2: float) -> torch.Tensor:
    """Twin of ``turboiqa::dists_layer``: Σ_c α_c l_c + β_c s_c with DISTS' global per-channel statistics.

    σxy is computed as mean((x − μx)(y − μy)), which equals the official mean(xy) − μxμy but does not cancel
    in float32; the kernels accumulate shifted sums in float64 and agree with this form. Each channel is first
    shifted by its first value (exact for nearby values), so μ is accurate to the spread of the channel, not to its
    level: features of mean 1e3 and std 1e-3 were 1e-3 off in float32 otherwise.
    """
    dtype = compute_dtype(f0.dtype)
    x, y = f0.to(dtype), f1.to(dtype)
    a = _channel_vector(alpha, x.shape[1], dtype).reshape(1, -1)
    b = _channel_vector(beta, x.shape[1], dtype).reshape(1, -1)
    shift_x, shift_y = x[..., :1, :1].detach(), y[..., :1, :1].detach()
    x, y = x - shift_x, y - shift_y
    mu_x, mu_y = x.mean(dim=(2, 3), keepdim=True), y.mean(dim=(2, 3), keepdim=True)
    dx, dy = x - mu_x, y - mu_y
    var_x, var_y = dx.square().mean(dim=(2, 3)), dy.square().mean(dim=(2, 3))
    cov = (dx * dy).mean(dim=(2, 3))
    mu_x, mu_y = (mu_x + shift_x).flatten(1), (mu_y + shift_y).flatten(1)
    texture = (2 * mu_x * mu_y + c1) / (mu_x.square() + mu_y.square() + c1)
    structure = (2 * cov + c2) / (var_x + var_y + c2)
    return (a * texture + b * structure).sum(dim=1)


def swd_distance(fd: torch.Tensor, fr: torch.Tensor, weight: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Twin of ``turboiqa::swd_distance`` (PIPAL's spatially-warped difference), shape (N,).

    d(i, j) = min over |Δi|, |Δj| ≤ radius with (i+Δi, j+Δj) inside the map of Σ_c w_c (f̂d_c(i, j) −
    f̂r_c(i+Δi, j+Δj))²; the result is the spatial mean of d. One distance map per offset, stacked in raster
    order of (Δi, Δj): ``torch.min`` returns the first minimum, so ties go to the first offset as in the kernels,
    and its backward sends the gradient to that neighbour only.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    dtype = compute_dtype(fd.dtype)
    fd, fr = fd.to(dtype), fr.to(dtype)
    n, c, h, w = fd.shape
    wt = _channel_vector(weight, c, dtype)
    a = unit_normalise(fd, eps)
    b = torch.nn.functional.pad(unit_normalise(fr, eps), (radius, radius, radius, radius))
    rows = torch.arange(h, device=fd.device).view(h, 1)
    cols = torch.arange(w, device=fd.device).view(1, w)
    inf = torch.tensor(float("inf"), dtype=dtype, device=fd.device)
    maps = []
    for di in range(-radius, radius + 1):
        for dj in range(-radius, radius + 1):
            shifted = b[:, :, radius + di:radius + di + h, radius + dj:radius + dj + w]
            d = (wt * (a - shifted).square()).sum(dim=1)
            inside = (rows + di >= 0) & (rows + di < h) & (cols + dj >= 0) & (cols + dj < w)
            maps.append(torch.where(inside, d, inf))
    return torch.stack(maps).min(dim=0).values.mean(dim=(1, 2))
