"""Pure-PyTorch twin of the native ``turboiqa::ssim_stats`` operator.

Same signature and numbers as the C++/CUDA kernels; autograd provides the backward. It materialises the five
filtered moment maps, which is exactly what the fused kernels avoid.
"""
from __future__ import annotations

import torch

from ..dtypes import compute_dtype
from ..filters import filter_valid
from ..padding import pad_2d


def ssim_moments(x, y, window, padding):
    """μx, μy, E[x²], E[y²], E[xy] maps, shape (N, C, Ho, Wo), in the compute dtype."""
    n, c = x.shape[:2]
    dtype = compute_dtype(x.dtype)
    win = torch.as_tensor(window, dtype=torch.float64)
    win = (win / win.sum()).to(dtype=dtype, device=x.device)  # normalised like the native kernels
    k = win.numel()
    x = x.to(dtype)
    y = y.to(dtype)
    if padding != "valid":
        x = pad_2d(x, k // 2, padding)
        y = pad_2d(y, k // 2, padding)
    hp, wp = x.shape[-2:]
    # One filtering pass over the five quantities stacked as a batch of planes.
    stacked = torch.stack([x, y, x * x, y * y, x * y], dim=0).reshape(5 * n * c, 1, hp, wp)
    filtered = filter_valid(stacked, win.tolist())
    return filtered.reshape(5, n, c, filtered.shape[-2], filtered.shape[-1]).unbind(0)


def ssim_maps(x, y, window, c1, c2, padding, cov_norm=1.0):
    """SSIM and contrast-structure maps (N, C, Ho, Wo)."""
    mu_x, mu_y, e_xx, e_yy, e_xy = ssim_moments(x, y, window, padding)
    sigma_xx = cov_norm * (e_xx - mu_x * mu_x)
    sigma_yy = cov_norm * (e_yy - mu_y * mu_y)
    sigma_xy = cov_norm * (e_xy - mu_x * mu_y)
    cs = (2 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return luminance * cs, cs


def ssim_stats(x, y, window, c1, c2, padding, cov_norm=1.0):
    """Per-plane means of the SSIM and cs maps: two (N, C) tensors in the compute dtype."""
    ssim_map, cs_map = ssim_maps(x, y, window, c1, c2, padding, cov_norm)
    return ssim_map.mean(dim=(-2, -1)), cs_map.mean(dim=(-2, -1))
