"""DISTS — Ding, Ma, Wang, Simoncelli, "Image quality assessment: unifying structure and texture similarity",
IEEE TPAMI 44(5), 2022 (arXiv:2004.07728).

Reference code: dingkeyan93/DISTS ``DISTS_pytorch/DISTS_pt.py`` (pip ``dists-pytorch`` 0.1), matched given the same
weights (tests/test_dists.py): VGG16 with DISTS' L2 pooling, ImageNet normalisation of the network input only, the
raw image as layer 0, per-channel global texture (means) and structure (covariance) terms with c1 = c2 = 1e−6, α/β
normalised jointly; DISTS = 1 − Σ_k Σ_c (α̃ l + β̃ s). Lower = better, 0 for identical images.

Preprocessing: the official ``prepare_image(image, resize)`` loads the image as [0, 1] RGB and, with
``resize=True`` (the official demo), resizes it with ``torchvision.transforms.functional.resize(img, 256)`` when
min(H, W) > 256 — shorter side to 256, longer side int(256·long/short), bilinear with antialias. ``resize=False``
(the default here, as ``DISTS_pt.DISTS`` itself, the pip package's ``prepare_image`` default, pyiqa and piq) scores
the images at their own size; the published values for the TID2013 pairs (0.4742 …, SPECS §15) are of this kind.
``resize=True`` reproduces the demo, likely the protocol of the paper's correlations (SPECS §15): uint8 input is
resized as uint8 with torch's antialiased bilinear (the same kernel as PIL's, within one grey level), float input
as float.

Weights: VGG16 ImageNet from :mod:`turboiqa.nets.weights`; α/β ship in the package (MIT, LICENSE.DISTS).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _ops
from ..nets import build_backbone, cached
from ..nets.runtime import (
    autocast_context,
    layout,
    prepare_module,
    scoring_context,
    to_unit_range,
)
from ..nets.weights import load_state
from ..validate import as_batch, check_pair, check_reduction, reduce
from .module import check_leading_arguments

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
DISTS_C1 = DISTS_C2 = 1e-6


class DISTSNet(nn.Module):
    """VGG16 with L2 pooling + the jointly normalised α/β split per layer (buffers)."""

    def __init__(self, weights=None, alpha_beta=None, download: bool | None = None, pretrained: bool = True,
                 normalise_weights: bool = True):
        super().__init__()
        self.backbone = build_backbone("vgg", weights=weights, download=download, pretrained=pretrained,
                                       pooling="l2")
        if pretrained:
            state = load_state("dists", alpha_beta, download)
            alpha, beta = state["alpha"].reshape(-1).double(), state["beta"].reshape(-1).double()
        else:
            alpha = beta = torch.full((sum(DISTS_CHANNELS),), 0.1, dtype=torch.float64)
        if alpha.numel() != sum(DISTS_CHANNELS) or beta.numel() != sum(DISTS_CHANNELS):
            raise ValueError(f"DISTS alpha/beta must hold {sum(DISTS_CHANNELS)} values each")
        # The official code divides α, β by their sum; piq uses the file's values as they are (they sum to 1 − 2e-7).
        total = alpha.sum() + beta.sum() if normalise_weights else torch.ones((), dtype=torch.float64)
        # Normalised in float64 then rounded once (the official code divides in float32: a ≤1e-7 difference).
        for k, (a, b) in enumerate(zip((alpha / total).split(DISTS_CHANNELS), (beta / total).split(DISTS_CHANNELS))):
            self.register_buffer(f"alpha{k}", a.float())
            self.register_buffer(f"beta{k}", b.float())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def weights_of(self, k: int):
        return getattr(self, f"alpha{k}"), getattr(self, f"beta{k}")

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[raw image, relu1_2, relu2_2, relu3_3, relu4_3, relu5_3] of [0, 1] input."""
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return [x, *self.backbone(layout(h))]


def official_resize(x: torch.Tensor, size: int = 256) -> torch.Tensor:
    """``torchvision.transforms.functional.resize(img, 256)`` when min(H, W) > 256 (the DISTS demo)."""
    h, w = x.shape[-2:]
    if min(h, w) <= size:
        return x
    if h <= w:
        out = (size, int(size * w / h))
    else:
        out = (int(size * h / w), size)
    if x.dtype == torch.uint8:
        if x.device.type == "cpu":
            return F.interpolate(x, size=out, mode="bilinear", antialias=True, align_corners=False)
        x = F.interpolate(x.float(), size=out, mode="bilinear", antialias=True, align_corners=False)
        return x.round().clamp(0, 255).to(torch.uint8)
    return F.interpolate(x, size=out, mode="bilinear", antialias=True, align_corners=False)


def dists_score(model: DISTSNet, x, y, data_range: float = 1.0, reduction: str = "mean", resize: bool = False,
                autocast=None, backend: str = "auto"):
    """DISTS of a pair with an already built :class:`DISTSNet`."""
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) channels, got {x.shape[1]}")
    dtype = prepare_module(model, x.device)
    with scoring_context(x, y):
        if resize:
            x, y = official_resize(x), official_resize(y)
        x0 = to_unit_range(x, data_range).to(dtype)
        y0 = to_unit_range(y, data_range).to(dtype)
        score = dists_of_unit_range(model, x0, y0, autocast, backend)
    return reduce(score, reduction)


def dists_of_unit_range(model: DISTSNet, x0, y0, autocast=None, backend: str = "auto") -> torch.Tensor:
    """(N,) DISTS of a checked pair already in [0, 1] and in the model's dtype (the compat classes enter here)."""
    with autocast_context(autocast, x0.device):
        feats = model.features(torch.cat([x0, y0]))
    n = x0.shape[0]
    terms = [_ops.dists_layer(f[:n], f[n:], *model.weights_of(k), DISTS_C1, DISTS_C2, backend)
             for k, f in enumerate(feats)]
    return 1 - torch.stack(terms).sum(dim=0)


def dists_model(device, dtype, weights=None, alpha_beta=None, download=None) -> DISTSNet:
    def build():
        model = DISTSNet(weights, alpha_beta, download).to(device=device, dtype=dtype)
        prepare_module(model, torch.device(device))
        return model

    return cached(("dists", str(weights), str(alpha_beta), str(device), dtype), build)


def dists(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    resize: bool = False,
    weights=None,
    alpha_beta=None,
    download: bool | None = None,
    autocast=None,
    backend: str = "auto",
) -> torch.Tensor:
    """DISTS of each pair: (N,) for reduction='none', else a scalar (lower = better, ≈[0, 1]).

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; DISTS is symmetric in the two):
    N×3×H×W RGB, uint8 or float in [0, data_range]. ``resize=True``: the
    official demo's shorter-side-to-256 resize (module docstring). ``weights`` / ``alpha_beta``: explicit files for
    the VGG16 trunk / α, β. ``autocast``: torch.float16 / torch.bfloat16 on CUDA. Differentiable.
    """
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32
    model = dists_model(xb.device, dtype, weights, alpha_beta, download)
    return dists_score(model, x, y, data_range, reduction, resize, autocast, backend)


class DISTS(nn.Module):
    """Module form of :func:`dists`; holds the network (``.to(device)`` moves it).
    ``forward(x, y)``: ``x`` distorted, ``y`` reference."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, resize: bool = False, weights=None,
                 alpha_beta=None, download: bool | None = None, autocast=None, backend: str = "auto"):
        super().__init__()
        check_leading_arguments("DISTS", data_range, reduction)
        self.model = DISTSNet(weights, alpha_beta, download)
        self.kwargs = {"data_range": data_range, "reduction": reduction, "resize": resize, "autocast": autocast,
                       "backend": backend}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return dists_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
