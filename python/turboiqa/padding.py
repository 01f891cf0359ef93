"""Border extension by index mapping, shared by the reference kernels and the downsampling steps.

PyTorch's ``F.pad`` has no MATLAB 'symmetric' mode (mirror including the edge sample), so every mode is expressed
as a gather with a precomputed index; the same rules are implemented in ``csrc/border.h`` for the native kernels.
"""
from __future__ import annotations

import torch

PADDING_MODES = ("valid", "zeros", "symmetric", "reflect", "replicate")


def border_index(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map (possibly out-of-range) indices to [0, n); -1 marks a zero sample."""
    if mode == "symmetric":  # MATLAB 'symmetric', numpy 'symmetric': x(-1) = x(0)
        m = torch.remainder(i, 2 * n)
        return torch.where(m >= n, 2 * n - 1 - m, m)
    if mode == "reflect":  # numpy/torch 'reflect': x(-1) = x(1)
        if n == 1:
            return torch.zeros_like(i)
        m = torch.remainder(i, 2 * n - 2)
        return torch.where(m >= n, 2 * n - 2 - m, m)
    if mode == "replicate":
        return i.clamp(0, n - 1)
    if mode == "zeros":
        return torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1))
    raise ValueError(f"padding must be one of {PADDING_MODES}, got {mode!r}")


def _pad_dim(x: torch.Tensor, before: int, after: int, dim: int, mode: str) -> torch.Tensor:
    n = x.shape[dim]
    idx = border_index(torch.arange(-before, n + after, device=x.device), n, mode)
    out = x.index_select(dim, idx.clamp(min=0))
    if mode == "zeros":
        shape = [1] * x.dim()
        shape[dim] = idx.numel()
        out = out * (idx >= 0).view(shape).to(out.dtype)
    return out


def pad_2d(x: torch.Tensor, pad, mode: str) -> torch.Tensor:
    """Pad the last two dims. ``pad`` is an int or (top, bottom, left, right)."""
    top, bottom, left, right = (pad,) * 4 if isinstance(pad, int) else pad
    x = _pad_dim(x, top, bottom, -2, mode)
    return _pad_dim(x, left, right, -1, mode)
