"""Separable 'valid' correlation as sums of shifted slices, shared by the pure-PyTorch paths (the SSIM twin,
IW-SSIM's pyramids and maps)."""
from __future__ import annotations

import torch


def correlate_axis(planes: torch.Tensor, taps, dim: int, stride: int = 1) -> torch.Tensor:
    """'valid' correlation with a 1-D window along ``dim``, keeping every ``stride``-th output.

    A sum of shifted slices: on CPU this is several times faster than ``F.conv2d`` with a single-channel 1×k
    kernel (mkldnn handles that shape poorly), and it differentiates like any other tensor expression.
    """
    count = (planes.shape[dim] - len(taps)) // stride + 1
    index = [slice(None)] * planes.dim()
    out = None
    for k, tap in enumerate(taps):
        index[dim] = slice(k, k + (count - 1) * stride + 1, stride)
        part = planes[tuple(index)]
        out = part * tap if out is None else out.add_(part, alpha=tap)
    return out


def filter_valid(planes: torch.Tensor, taps) -> torch.Tensor:
    """'valid' correlation with the separable 2-D window taps ⊗ taps (MATLAB ``filter2(w, x, 'valid')``)."""
    return correlate_axis(correlate_axis(planes, taps, -2), taps, -1)
