"""Pure-PyTorch twin of the native ``turboiqa::ssim_stats`` operator.

Same signature and numbers as the C++/CUDA kernels; autograd provides the backward. It materialises the five
filtered moment maps, which is exactly what the fused kernels avoid.
"""
from __future__ import annotations

import torch

from ..dtypes import compute_dtype
from ..filters import filter_valid
from ..padding import pad_2d


def _shift(x: torch.Tensor, y: torch.Tensor, input_dtype: torch.dtype) -> torch.Tensor | float:
    """The native kernels' representative level, subtracted before squaring (csrc/ssim_math.h): 128 for 8-bit data,
    else the mean of each plane pair's first samples (symmetric in x and y). Without it E[x²] - μ² cancels in
    float32 (SSIM 1.000237 on constant images)."""
    if input_dtype == torch.uint8:
        return 128.0
    return (x[..., :1, :1] * 0.5 + y[..., :1, :1] * 0.5).detach()


def ssim_moments(x, y, window, padding):
    """μx', μy', E[x'²], E[y'²], E[x'y'] maps of the shifted samples x' = x - s, y' = y - s (N, C, Ho, Wo) in the
    compute dtype, and the shift s (a float, or an (N, C, 1, 1) tensor)."""
    n, c = x.shape[:2]
    dtype = compute_dtype(x.dtype)
    win = torch.as_tensor(window, dtype=torch.float64)
    win = (win / win.sum()).to(dtype=dtype, device=x.device)  # normalised like the native kernels
    k = win.numel()
    shift = _shift(x.to(dtype), y.to(dtype), x.dtype)
    x = x.to(dtype)
    y = y.to(dtype)
    if padding != "valid":  # padded in the image's own units ('zeros' means 0, not the shift), then shifted
        x = pad_2d(x, k // 2, padding)
        y = pad_2d(y, k // 2, padding)
    x, y = x - shift, y - shift
    hp, wp = x.shape[-2:]
    # One filtering pass over the five quantities stacked as a batch of planes.
    stacked = torch.stack([x, y, x * x, y * y, x * y], dim=0).reshape(5 * n * c, 1, hp, wp)
    filtered = filter_valid(stacked, win.tolist())
    return (*filtered.reshape(5, n, c, filtered.shape[-2], filtered.shape[-1]).unbind(0), shift)


def ssim_maps(x, y, window, c1, c2, padding, cov_norm=1.0, nonnegative_cs=False):
    """SSIM and contrast-structure maps (N, C, Ho, Wo). ``nonnegative_cs``: cs clamped at 0 at every pixel before
    it multiplies the luminance term (pyiqa's SSIM and MS-SSIM)."""
    mu_x, mu_y, e_xx, e_yy, e_xy, shift = ssim_moments(x, y, window, padding)
    sigma_xx = cov_norm * (e_xx - mu_x * mu_x)
    sigma_yy = cov_norm * (e_yy - mu_y * mu_y)
    sigma_xy = cov_norm * (e_xy - mu_x * mu_y)
    cs = (2 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    if nonnegative_cs:
        cs = torch.relu(cs)
    mu_x, mu_y = mu_x + shift, mu_y + shift  # the luminance term needs the true means
    luminance = (2 * (mu_x * mu_y) + c1) / (mu_x * mu_x + mu_y * mu_y + c1)  # grouped: symmetric in (x, y)
    return luminance * cs, cs


def ssim_stats(x, y, window, c1, c2, padding, cov_norm=1.0, nonnegative_cs=False):
    """Per-plane means of the SSIM and cs maps: two (N, C) tensors in the compute dtype."""
    ssim_map, cs_map = ssim_maps(x, y, window, c1, c2, padding, cov_norm, nonnegative_cs)
    return ssim_map.mean(dim=(-2, -1)), cs_map.mean(dim=(-2, -1))
