"""Pure-PyTorch twin of ``turboiqa::histogram_intersection`` (same signature and numbers as the C++/CUDA kernels;
autograd provides the backward).

Conventions shared with the kernels (csrc/histogram.h):

* ``fd``/``fr`` N×K×H×W float32 or float64 (non-negative, post-ReLU features); result (N, levels) in their dtype;
* level v < levels splits each axis of length n into 2^v cells, cell c spanning [⌊c·n/2^v⌋, ⌊(c+1)·n/2^v⌋) (a
  partition; adaptive pooling's starts); a level with 2^v > H or > W is an error;
* per cell, h_k = (Σ of channel k over the cell) / (Σ over all channels); similarity Σ_k min(h_k, h'_k), computed as
  1 − ½·Σ_k |h_k − h'_k| (equal for unit-sum histograms; exactly 1 for identical maps; its gradient is min's
  with ties split ½–½ once the normalisation is differentiated); mean over the level's cells;
* an all-zero cell (channel sums adding up to 0) has an empty histogram: both empty → 1, one empty → 0, no gradient.
"""
from __future__ import annotations

import torch

MAX_LEVELS = 16  # kMaxHistogramLevels in csrc/histogram.h


def cell_bounds(n: int, cells: int) -> list[int]:
    """The interior boundaries ⌊c·n/cells⌋, c = 1..cells−1 (for torch.tensor_split)."""
    return [c * n // cells for c in range(1, cells)]


def cell_sums(f: torch.Tensor, cells: int) -> torch.Tensor:
    """N×K×cells×cells channel sums of the cells of one level."""
    h, w = f.shape[-2:]
    rows = torch.stack([r.sum(dim=2) for r in torch.tensor_split(f, cell_bounds(h, cells), dim=2)], dim=2)
    return torch.stack([c.sum(dim=3) for c in torch.tensor_split(rows, cell_bounds(w, cells), dim=3)], dim=3)


def check_args(fd: torch.Tensor, fr: torch.Tensor, levels: int) -> None:
    op = "histogram_intersection"
    if fd.dim() != 4:
        raise ValueError(f"{op}: fd must be N x K x H x W, got shape {tuple(fd.shape)}")
    if fr.shape != fd.shape:
        raise ValueError(f"{op}: fd and fr must have the same shape, got {tuple(fd.shape)} and {tuple(fr.shape)}")
    if fd.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op}: fd must be float32 or float64, got {fd.dtype}")
    if fr.dtype != fd.dtype:
        raise TypeError(f"{op}: fr must have fd's dtype ({fd.dtype}), got {fr.dtype}")
    if fr.device != fd.device:
        raise ValueError(f"{op}: fd and fr must be on the same device, got {fd.device} and {fr.device}")
    if fd.shape[1] < 1:
        raise ValueError(f"{op}: fd needs at least one channel, got shape {tuple(fd.shape)}")
    if not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"{op}: levels must be in [1, {MAX_LEVELS}], got {levels}")
    cells = 2 ** (levels - 1)
    if fd.shape[2] < cells or fd.shape[3] < cells:
        raise ValueError(f"{op}: levels={levels} splits the map into {cells} x {cells} cells, finer than the "
                         f"{fd.shape[2]} x {fd.shape[3]} feature map (H and W must be >= 2^(levels-1))")


def normalised(s: torch.Tensor):
    """Unit-sum histograms over dim 1 and the mask of empty ones (sum 0); empty ones read as zeros, no gradient."""
    total = s.sum(dim=1, keepdim=True)
    empty = total == 0
    return torch.where(empty, torch.zeros_like(s), s / torch.where(empty, torch.ones_like(total), total)), empty


def histogram_intersection(fd: torch.Tensor, fr: torch.Tensor, levels: int) -> torch.Tensor:
    """Twin of ``turboiqa::histogram_intersection``: (N, levels) per-level mean similarity."""
    check_args(fd, fr, levels)
    out = []
    for v in range(levels):
        cells = 2 ** v
        hd, empty_d = normalised(cell_sums(fd, cells))
        hr, empty_r = normalised(cell_sums(fr, cells))
        sim = 1 - 0.5 * (hd - hr).abs().sum(dim=1, keepdim=True)
        sim = torch.where(empty_d & empty_r, torch.ones_like(sim), torch.where(empty_d | empty_r, 0, sim))
        out.append(sim.mean(dim=(1, 2, 3)))
    return torch.stack(out, dim=1)
