"""DeepSim — Gao, Wang, Li, Tan, Yu, Zhu, "DeepSim: deep similarity for image quality assessment",
Neurocomputing 257, 2017.

Reference code: fei-aiart/deepsim (MATLAB + MatConvNet: ``FR_DeepSim.m``, ``MSSIM.m``, ``pooling.m``), SPECS §9.
Per VGG16 layer and feature map: local SSIM between the reference and distorted maps with a **'same' zero-padded**
11×11 Gaussian (σ = 1.5), K = (0.01, 0.03) and a **data-adaptive dynamic range** L = max(max|x|, max|y|, 1) of that
feature map; the SSIM map is pooled over space (``spatial_pooling``), the per-map values over the layer's feature
maps (``channel_pooling``), and the per-layer values over ``layers`` (``layer_pooling``).

Pooling functions (``pooling.m``): 'mean'; 'sd' (standard deviation, N−1); 'mad' (mean absolute deviation);
'fd' = 0.5·sd + 0.5·mad; 'percentile' = mean of the lowest ⌈N·p⌉ values (``percentile=p``, default 0.1).

Direction: with the default ``channel_pooling='mean'`` the score is a similarity — 1 for identical images,
**higher = better** (SPECS §0.3). ``channel_pooling='sd'`` reproduces the reference code's quirk (with one pooling
string ``FR_DeepSim.m`` pools across feature maps with ``poolNames{1}`` = 'SD'): a deviation, 0 for identical images,
**higher = worse**. ``layer_pooling='percentile'`` is the demo's 10 % pooling alternative.

Deviations (documented, no MatConvNet model offline): torchvision's VGG16 ImageNet weights replace MatConvNet's
``imagenet-vgg-verydeep-16.mat`` (same architecture, different training run), with torchvision's normalisation
((x − mean)/std of [0, 1] RGB) instead of the [0, 255] mean-image subtraction; only the 31 ``features`` layers
(conv/ReLU/pool; ``layers`` indexes them, default all) — the fc layers' 1-D SSIM needs classifier weights we do not
load. ``resize=True`` resizes to 224×224 with torch's antialiased bicubic (the demo's ResizeFlag=1 uses MATLAB
``imresize``, which differs slightly); the default keeps the input size (ResizeFlag=−1).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _ops
from ..nets import build_backbone, cached
from ..nets.runtime import layout, prepare_module, scoring_context, to_unit_range
from ..reference.ssim_stats import ssim_maps
from ..validate import as_batch, check_pair, check_reduction, reduce
from .module import check_leading_arguments
from ..window import gaussian_window

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALL_LAYERS = tuple(range(31))
POOLINGS = ("mean", "sd", "mad", "fd", "percentile")


def pool(values: torch.Tensor, method: str, p: float = 0.1) -> torch.Tensor:
    """``pooling.m`` over the last dimension."""
    if method == "mean":
        return values.mean(dim=-1)
    if method == "sd":
        return values.std(dim=-1, correction=1) if values.shape[-1] > 1 else torch.zeros_like(values[..., 0])
    if method == "mad":
        return (values - values.mean(dim=-1, keepdim=True)).abs().mean(dim=-1)
    if method == "fd":
        return 0.5 * pool(values, "sd") + 0.5 * pool(values, "mad")
    if method == "percentile":
        k = max(1, math.ceil(values.shape[-1] * p))
        return values.sort(dim=-1).values[..., :k].mean(dim=-1)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {method!r}")


class DeepSimNet(nn.Module):
    def __init__(self, layers=ALL_LAYERS, weights=None, download: bool | None = None, pretrained: bool = True):
        super().__init__()
        self.backbone = build_backbone("vgg", taps=tuple(layers), weights=weights, download=download,
                                       pretrained=pretrained)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.backbone(layout((x - self.mean.to(x.dtype)) / self.std.to(x.dtype)))


def layer_similarity(f0, f1, spatial_pooling, channel_pooling, percentile, backend):
    """(N,) score of one layer: SSIM per feature map with its own dynamic range, pooled over space and maps."""
    n, c = f0.shape[:2]
    dynamic_range = torch.maximum(f0.abs().amax(dim=(2, 3)), f1.abs().amax(dim=(2, 3))).clamp_min(1)
    # SSIM is invariant to scaling both maps and √C1, √C2 by L: dividing by L gives C1 = 0.01², C2 = 0.03².
    scale = dynamic_range[:, :, None, None]
    x, y = (f0 / scale).contiguous(), (f1 / scale).contiguous()
    window = gaussian_window(11, 1.5)
    if spatial_pooling == "mean":
        per_map, _ = _ops.ssim_stats(x, y, window, 0.01**2, 0.03**2, "zeros", 1.0, backend)
    else:
        ssim_map, _ = ssim_maps(x, y, window, 0.01**2, 0.03**2, "zeros")
        per_map = pool(ssim_map.reshape(n, c, -1), spatial_pooling, percentile)
    return pool(per_map, channel_pooling, percentile)


def deepsim_score(model: DeepSimNet, x, y, data_range: float = 1.0, reduction: str = "mean",
                  spatial_pooling: str = "mean", channel_pooling: str = "mean", layer_pooling: str = "mean",
                  percentile: float = 0.1, resize: bool = False, backend: str = "auto", return_layers: bool = False):
    check_reduction(reduction)
    for name, value in (("spatial_pooling", spatial_pooling), ("channel_pooling", channel_pooling),
                        ("layer_pooling", layer_pooling)):
        if value not in POOLINGS:
            raise ValueError(f"{name} must be one of {POOLINGS}, got {value!r}")
    if not 0 < percentile <= 1:
        raise ValueError(f"percentile must be in (0, 1], got {percentile}")
    x, y = check_pair(x, y, data_range)
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) channels, got {x.shape[1]}")
    dtype = prepare_module(model, x.device)
    with scoring_context(x, y):
        x0 = to_unit_range(x, data_range).to(dtype)
        y0 = to_unit_range(y, data_range).to(dtype)
        if resize:
            x0, y0 = (F.interpolate(t, size=(224, 224), mode="bicubic", antialias=True, align_corners=False)
                      for t in (x0, y0))
        feats = model.features(torch.cat([x0, y0]))
        n = x0.shape[0]
        per_layer = torch.stack([layer_similarity(f[:n], f[n:], spatial_pooling, channel_pooling, percentile,
                                                  backend) for f in feats], dim=1)
        score = pool(per_layer, layer_pooling, percentile)
    if return_layers:
        return reduce(score, reduction), per_layer
    return reduce(score, reduction)


def deepsim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    layers=ALL_LAYERS,
    spatial_pooling: str = "mean",
    channel_pooling: str = "mean",
    layer_pooling: str = "mean",
    percentile: float = 0.1,
    resize: bool = False,
    weights=None,
    download: bool | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """DeepSim of each pair: (N,) for reduction='none', else a scalar (see the module docstring for direction).

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; DeepSim is symmetric in the two):
    N×3×H×W RGB, uint8 or float in [0, data_range]. ``layers``: indices into VGG16 ``features``
    (0…30; default all). Differentiable.
    """
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32
    layers = tuple(layers)

    def build():
        model = DeepSimNet(layers, weights, download).to(device=xb.device, dtype=dtype)
        prepare_module(model, xb.device)
        return model

    model = cached(("deepsim", layers, str(weights), str(xb.device), dtype), build)
    return deepsim_score(model, x, y, data_range, reduction, spatial_pooling, channel_pooling, layer_pooling,
                         percentile, resize, backend)


class DeepSim(nn.Module):
    """Module form of :func:`deepsim`; ``forward(x, y)``: ``x`` distorted, ``y`` reference."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, layers=ALL_LAYERS,
                 spatial_pooling: str = "mean", channel_pooling: str = "mean", layer_pooling: str = "mean",
                 percentile: float = 0.1, resize: bool = False, weights=None, download: bool | None = None,
                 backend: str = "auto"):
        super().__init__()
        check_leading_arguments("DeepSim", data_range, reduction)
        self.model = DeepSimNet(tuple(layers), weights, download)
        self.kwargs = {"data_range": data_range, "reduction": reduction, "spatial_pooling": spatial_pooling,
                       "channel_pooling": channel_pooling, "layer_pooling": layer_pooling, "percentile": percentile,
                       "resize": resize, "backend": backend}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return deepsim_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
