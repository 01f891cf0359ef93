"""Pure-PyTorch twins of the small native image operators (same signatures and numbers)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..dtypes import compute_dtype
from ..padding import pad_2d


def squared_error_sum(x: torch.Tensor, y: torch.Tensor):
    """Per-image Σ (x - y)² over C, H, W, float64 (N,), and the extrema (N, 4): min x, max x, min y, max y
    (for uint8 the dtype's bounds 0, 255, 0, 255: the samples cannot leave them)."""
    xd, yd = x.to(torch.float64).flatten(1), y.to(torch.float64).flatten(1)
    sse = (xd - yd).square().sum(dim=1)
    if x.dtype == torch.uint8:
        extrema = torch.tensor([0.0, 255.0, 0.0, 255.0], dtype=torch.float64, device=x.device).expand(x.shape[0], 4)
        return sse, extrema.clone()
    extrema = torch.stack([xd.amin(1), xd.amax(1), yd.amin(1), yd.amax(1)], dim=1).detach()
    return sse, extrema


def psnr_db(x: torch.Tensor, y: torch.Tensor, data_range: float, eps: float, max_db: float, reduction: str):
    """PSNR in dB per image (or its mean/sum) in the compute dtype, and the extrema of :func:`squared_error_sum`
    with NaN rows where the sum is NaN (see the schema in csrc/ops.cpp)."""
    sse, extrema = squared_error_sum(x, y)
    db = -10 * torch.log10(sse / (x[0].numel() * data_range * data_range) + eps)
    db = db.clamp(max=max_db)
    if reduction != "none":
        db = db.mean() if reduction == "mean" else db.sum()
    extrema = torch.where(sse.isnan().unsqueeze(1), float("nan"), extrema)
    return db.to(compute_dtype(x.dtype)), extrema


def box_downsample(x, factor, pad_top, pad_left, out_height, out_width, border):
    """f×f box mean sampled every f pixels, starting f·i - pad; outside samples through ``border``."""
    xf = x.to(compute_dtype(x.dtype))
    h, w = x.shape[-2:]
    bottom = max(0, out_height * factor - pad_top - h)
    right = max(0, out_width * factor - pad_left - w)
    padded = pad_2d(xf, (pad_top, bottom, pad_left, right), border)
    padded = padded[..., : out_height * factor, : out_width * factor]
    return F.avg_pool2d(padded, factor)


def luma(x, coeffs, offset, round_to_uint8):
    """c0·R + c1·G + c2·B + offset → N×1×H×W; uint8 with round_to_uint8 → uint8 (half away from zero)."""
    if x.dtype == torch.uint8:
        w = torch.tensor(coeffs, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
        v = (x.to(torch.float64) * w).sum(dim=1, keepdim=True) + offset
        if round_to_uint8:
            return torch.floor(v + 0.5).clamp(0, 255).to(torch.uint8)
        return v.to(torch.float32)
    dtype = compute_dtype(x.dtype)
    w = torch.tensor(coeffs, dtype=dtype, device=x.device).view(1, 3, 1, 1)
    return (x.to(dtype) * w).sum(dim=1, keepdim=True) + offset
