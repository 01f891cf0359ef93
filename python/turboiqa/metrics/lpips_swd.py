"""LPIPS + SWD — the spatially-warped difference of PIPAL: Gu, Cai, Chen, Ye, Ren, Dong, "PIPAL: a large-scale
image quality assessment dataset for perceptual image restoration", ECCV 2020 (arXiv:2007.12142), and "Image quality
assessment for perceptual image restoration: a new dataset, benchmark and metric" (arXiv:2011.15002).

**Research re-implementation** (SPECS §14): no official code or trained weights are public. LPIPS' backbone and
v0.1 heads are used as they are, and LPIPS' point-wise squared difference is replaced by the SWD: for each position
of the *distorted* features, the smallest head-weighted squared distance of its unit-normalised feature vector to the
reference features within a (2·radius+1)² neighbourhood (positions inside the map only), averaged over positions and
summed over layers. ``radius=1`` (3×3) by default — SPECS marks the original neighbourhood as uncertain. With
``radius=0`` the score equals LPIPS. Deviations from the paper's SWDN: no retraining on PIPAL (the heads are
LPIPS'), and max pooling unless ``pooling='l2'`` (VGG only: DISTS' L2 pooling, the paper's anti-aliased pooling).
Lower = better. Argument order matters: ``x`` distorted, ``y`` reference (as ``turboiqa score`` passes them).
``anchor='reference'`` warps the other way (for each *reference* position, the nearest distorted feature), the
reading of the project's issue 4; the default follows SPECS §14.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import _ops
from ..nets import cached
from ..nets.runtime import autocast_context, prepare_module, scoring_context
from ..validate import as_batch, check_reduction, reduce
from .lpips import NORM_EPS, LPIPSNet, check_lpips_input
from .module import check_leading_arguments


ANCHORS = ("distorted", "reference")


def lpips_swd_score(model: LPIPSNet, x, y, data_range: float = 1.0, normalize: bool = True, radius: int = 1,
                    reduction: str = "mean", autocast=None, backend: str = "auto", anchor: str = "distorted"):
    check_reduction(reduction)
    if not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    x, y = check_lpips_input(x, y, data_range, normalize)
    dtype = prepare_module(model, x.device)
    with scoring_context(x, y):
        batch = model.scaled_pair(x, y, data_range, normalize, dtype)
        with autocast_context(autocast, x.device):
            fd, fr = model.split_features(batch)
        if anchor == "reference":  # the op anchors its first argument and searches the second's neighbourhood
            fd, fr = fr, fd
        layers = [_ops.swd_distance(a, b, h, radius, NORM_EPS, backend) for a, b, h in zip(fd, fr, model.heads)]
        total = torch.stack(layers).sum(dim=0)
    return reduce(total, reduction)


def lpips_swd(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    net: str = "alex",
    radius: int = 1,
    normalize: bool = True,
    pooling: str = "max",
    weights=None,
    head_weights=None,
    download: bool | None = None,
    autocast=None,
    backend: str = "auto",
    anchor: str = "distorted",
) -> torch.Tensor:
    """LPIPS features and heads with PIPAL's SWD distance: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; LPIPS+SWD is asymmetric: it matches each
    distorted position to the reference's neighbourhood): N×3×H×W RGB with the input conventions of
    :func:`turboiqa.lpips`.
    ``radius``: neighbourhood half-size (1 → 3×3). ``pooling='l2'`` (net='vgg' only) swaps the max-pools for DISTS'
    L2 pooling. ``anchor``: whose positions are matched ('distorted', SPECS §14) or 'reference'. Differentiable.
    """
    if pooling not in ("max", "l2"):
        raise ValueError(f"pooling must be 'max' or 'l2', got {pooling!r}")
    if pooling == "l2" and net != "vgg":
        raise ValueError(f"pooling='l2' is available for net='vgg' only, got net={net!r}")
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32
    extra = {"pooling": pooling} if net == "vgg" else {}

    def build():
        model = LPIPSNet(net, weights, head_weights, download, **extra).to(device=xb.device, dtype=dtype)
        prepare_module(model, xb.device)
        return model

    model = cached(("lpips", net, pooling, str(weights), str(head_weights), str(xb.device), dtype), build)
    return lpips_swd_score(model, x, y, data_range, normalize, radius, reduction, autocast, backend, anchor)


class LPIPS_SWD(nn.Module):
    """Module form of :func:`lpips_swd`; ``forward(x, y)``: ``x`` distorted, ``y`` reference."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, net: str = "alex", radius: int = 1,
                 normalize: bool = True, pooling: str = "max", weights=None, head_weights=None,
                 download: bool | None = None, autocast=None, backend: str = "auto", anchor: str = "distorted"):
        super().__init__()
        check_leading_arguments("LPIPS_SWD", data_range, reduction)
        extra = {"pooling": pooling} if net == "vgg" else {}
        if pooling != "max" and net != "vgg":
            raise ValueError(f"pooling='l2' is available for net='vgg' only, got net={net!r}")
        self.model = LPIPSNet(net, weights, head_weights, download, **extra)
        self.kwargs = {"data_range": data_range, "normalize": normalize, "radius": radius, "reduction": reduction,
                       "autocast": autocast, "backend": backend, "anchor": anchor}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return lpips_swd_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return f"net={self.model.net!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
