"""Pure-PyTorch twin of ``torch.ops.turboiqa.gradient_similarity`` (csrc/gradient_similarity.h): the same
arithmetic in composable, differentiable ops (the native operator's backward is this twin's vjp)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..dtypes import compute_dtype


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """√v with a zero (not infinite) gradient where v = 0 (a flat region without eps)."""
    positive = v > 0
    return torch.where(positive, torch.where(positive, v, torch.ones_like(v)).sqrt(), torch.zeros_like(v))


def check_args(x, y, smooth, scale, c, alpha, eps, padding, output):
    """The native operator's checks (same conditions, ValueError naming the argument)."""
    if x.dim() != 4 or x.shape != y.shape:
        raise ValueError(f"x and y must be N×C×H×W of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dtype != y.dtype or x.device != y.device:
        raise ValueError(f"x and y must have one dtype and device, got {x.dtype}/{x.device} and {y.dtype}/{y.device}")
    if len(smooth) != 3:
        raise ValueError(f"smooth must hold 3 taps, got {len(smooth)}")
    if not scale > 0 or not c > 0 or not 0 <= alpha < 1 or not eps >= 0:
        raise ValueError(f"need scale > 0, c > 0, 0 <= alpha < 1, eps >= 0; got {scale}, {c}, {alpha}, {eps}")
    if padding not in ("zeros", "valid"):
        raise ValueError(f"padding must be 'zeros' or 'valid', got {padding!r}")
    if output not in ("map", "moments"):
        raise ValueError(f"output must be 'map' or 'moments', got {output!r}")
    least = 3 if padding == "valid" else 1
    if min(x.shape[-2:]) < least:
        raise ValueError(f"x must be at least {least}×{least} for padding={padding!r}, got {tuple(x.shape)}")


def magnitudes_sq(planes: torch.Tensor, smooth, scale: float, eps: float, padding: str) -> torch.Tensor:
    """scale²·(gx² + gy²) + eps of each plane, gx / gy the correlation with smooth ⊗ [−1, 0, 1] across / along."""
    if padding == "zeros":
        planes = F.pad(planes, (1, 1, 1, 1))
    a, b, c = smooth
    v = a * planes[..., :-2, :] + b * planes[..., 1:-1, :] + c * planes[..., 2:, :]
    gx = v[..., 2:] - v[..., :-2]
    u = a * planes[..., :-2] + b * planes[..., 1:-1] + c * planes[..., 2:]
    gy = u[..., 2:, :] - u[..., :-2, :]
    return (gx * gx + gy * gy) * (scale * scale) + eps


def gradient_similarity(x, y, smooth, scale, c, alpha=0.0, eps=0.0, padding="zeros", output="map"):
    smooth = [float(v) for v in smooth]
    check_args(x, y, smooth, scale, c, alpha, eps, padding, output)
    dtype = compute_dtype(x.dtype)
    n = x.shape[0]
    m = magnitudes_sq(torch.cat([x, y]).to(dtype), smooth, scale, eps, padding)
    m1, m2 = m[:n], m[n:]
    prod = _safe_sqrt(m1) * _safe_sqrt(m2)
    q = ((2 - alpha) * prod + c) / (m1 + m2 - alpha * prod + c)
    if output == "map":
        return q
    q64 = q.double().flatten(2)
    return torch.stack([q64.sum(-1), (q64 * q64).sum(-1)], -1)
