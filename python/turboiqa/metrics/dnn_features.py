"""CNN-feature comparison — Amirshahi, Pedersen & Yu, "Image quality assessment by comparing CNN features between
images", J. Imaging Science and Technology 60(6):060410, 2016 (also IS&T Electronic Imaging 2017). SPECS §8.

No reference code is public; the method as described (SPECS §8), with every uncertain choice a parameter:

1. Both images go through ImageNet AlexNet; the taps are conv1…conv5 after their ReLU (``layers``, 1-based).
2. Per layer l with K_l maps and pyramid level v = 0…levels−1: the map is split into 2^v×2^v cells; each cell gives
   a K_l-bin histogram h_k = Σ of map k's activations over the cell, normalised to unit sum.
3. Histograms of corresponding cells are compared by histogram intersection Σ_k min(h_k, h'_k) ∈ [0, 1] and
   averaged over the level's cells; the levels are pooled (``level_pooling``), then the layers (``layer_pooling``).

Score in [0, 1], **higher = better**, exactly 1 for identical images. The histogram step runs in the native
operator ``turboiqa::histogram_intersection`` (csrc/histogram.h; one pass over the features, float64 cell sums).

Choices, and why:

* Cells: cell c of an axis of length n spans [⌊c·n/2^v⌋, ⌊(c+1)·n/2^v⌋) — adaptive pooling's starts, but a partition
  (adaptive pooling's ceil ends overlap) so every activation counts once per level. A level finer than a layer's
  map would have empty cells: that is an error naming the smallest input size (not a silent skip, which would
  change what the score averages). With the defaults (levels=3) inputs need ≥ 80×80 pixels (conv3–5 ≥ 4×4).
* Empty histograms: a cell whose activations are all zero (common after ReLU on flat regions) has no
  distribution; both empty → similarity 1 (they agree), one empty → 0. No gradient flows through an empty cell.
* ``level_pooling``: 'mean' (default; the paper's combination is not known to us) or 'pyramid', the spatial pyramid
  match kernel's weights (Lazebnik et al. 2006) with L = levels−1: 1/2^L for level 0 and 1/2^(L−v+1) for v ≥ 1
  (they sum to 1; finer levels weigh more).
* ``layer_pooling``: 'mean' over ``layers`` (default) or a sequence of non-negative weights, one per layer
  (normalised by their sum, so the score stays in [0, 1]).
* Network and input: torchvision's ImageNet AlexNet (``nets.weights`` key 'alexnet', the trunk LPIPS uses) with
  torchvision's normalisation (x − mean)/std of [0, 1] RGB. The paper used a Caffe/MatConvNet AlexNet with
  mean-image subtraction on [0, 255] input; no such model is available offline, so values differ from the paper's.
  Grey (1-channel) input is repeated to RGB. Images are not resized.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import _ops
from ..nets import build_backbone, cached
from ..nets.runtime import layout, prepare_module, scoring_context, to_unit_range
from ..validate import as_batch, check_pair, check_reduction, reduce
from .module import check_leading_arguments

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALEXNET_RELU_TAPS = (1, 4, 7, 9, 11)  # AlexNet.features indices of the ReLUs after conv1…conv5
DEFAULT_LAYERS = (1, 2, 3, 4, 5)
LEVEL_POOLINGS = ("mean", "pyramid")
MAX_LEVELS = 8  # 128×128 cells; the operator allows more, no AlexNet map of a sane image has room for them


def check_layers(layers) -> tuple[int, ...]:
    layers = tuple(layers)
    if not layers or any(not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 5 for v in layers) \
            or list(layers) != sorted(set(layers)):
        raise ValueError(f"layers must be increasing conv layer numbers in 1..5, got {layers!r}")
    return layers


def check_levels(levels) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be an int in [1, {MAX_LEVELS}], got {levels!r}")
    return levels


def level_weights(levels: int, pooling: str) -> torch.Tensor:
    """Weights of the per-level similarities (float64, sum 1)."""
    if pooling == "mean":
        return torch.full((levels,), 1.0 / levels, dtype=torch.float64)
    if pooling == "pyramid":
        top = levels - 1
        return torch.tensor([1 / 2**top] + [1 / 2 ** (top - v + 1) for v in range(1, levels)], dtype=torch.float64)
    raise ValueError(f"level_pooling must be one of {LEVEL_POOLINGS}, got {pooling!r}")


def layer_weights(layers: tuple[int, ...], pooling) -> torch.Tensor:
    """Weights of the per-layer scores (float64, sum 1)."""
    if isinstance(pooling, str):
        if pooling != "mean":
            raise ValueError(f"layer_pooling must be 'mean' or a sequence of weights, got {pooling!r}")
        return torch.full((len(layers),), 1.0 / len(layers), dtype=torch.float64)
    if not isinstance(pooling, (Sequence, torch.Tensor)):
        raise ValueError(f"layer_pooling must be 'mean' or a sequence of weights, got {pooling!r}")
    w = torch.as_tensor([float(v) for v in pooling], dtype=torch.float64)
    if w.numel() != len(layers) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"layer_pooling weights must be {len(layers)} finite non-negative values (one per layer) "
                         f"with a positive sum, got {list(pooling)!r}")
    return w / w.sum()


class DNNFeaturesNet(nn.Module):
    """AlexNet conv1–conv5 (after ReLU) with torchvision's input normalisation."""

    def __init__(self, layers=DEFAULT_LAYERS, weights=None, download: bool | None = None, pretrained: bool = True):
        super().__init__()
        self.layers = check_layers(layers)
        taps = tuple(ALEXNET_RELU_TAPS[v - 1] for v in self.layers)
        self.backbone = build_backbone("alex", taps=taps, weights=weights, download=download, pretrained=pretrained)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Taps of [0, 1] RGB input. The constants are made in the input's dtype (a float32 buffer cast to float64
        would carry 0.485's float32 rounding, 1e-8 relative, into every float64 score)."""
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return self.backbone(layout((x - mean) / std))


def check_input(x, y, data_range):
    x, y = check_pair(x, y, data_range)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"x must have 1 (grey) or 3 (RGB) channels, got {x.shape[1]}")
    return x, y


def check_map_sizes(feats, levels: int, layers, image_size):
    cells = 2 ** (levels - 1)
    for f, layer in zip(feats, layers):
        if f.shape[-2] < cells or f.shape[-1] < cells:
            h, w = image_size
            raise ValueError(
                f"levels={levels} splits each map into {cells}×{cells} cells, but conv{layer}'s map of a {h}×{w} "
                f"image is only {f.shape[-2]}×{f.shape[-1]}: use larger images or fewer levels")


def dnn_features_score(model: DNNFeaturesNet, x, y, data_range: float = 1.0, reduction: str = "mean",
                       levels: int = 3, level_pooling: str = "mean", layer_pooling="mean", backend: str = "auto",
                       return_layers: bool = False):
    """The score of a pair with an already built :class:`DNNFeaturesNet` (the functional and module forms)."""
    check_reduction(reduction)
    levels = check_levels(levels)
    lw_levels = level_weights(levels, level_pooling)
    lw_layers = layer_weights(model.layers, layer_pooling)
    x, y = check_input(x, y, data_range)
    dtype = prepare_module(model, x.device)
    with scoring_context(x, y):
        x0 = to_unit_range(x, data_range).to(dtype)
        y0 = to_unit_range(y, data_range).to(dtype)
        if x0.shape[1] == 1:
            x0, y0 = x0.expand(-1, 3, -1, -1), y0.expand(-1, 3, -1, -1)
        feats = model.features(torch.cat([x0, y0]))
        check_map_sizes(feats, levels, model.layers, x.shape[-2:])
        n = x0.shape[0]
        per_level = torch.stack([_ops.histogram_intersection(f[:n], f[n:], levels, backend) for f in feats], dim=1)
        per_layer = per_level @ lw_levels.to(per_level)  # (N, layers)
        score = per_layer @ lw_layers.to(per_layer)
    if return_layers:
        return reduce(score, reduction), per_layer
    return reduce(score, reduction)


def dnn_features_model(layers, device, dtype, weights=None, download=None) -> DNNFeaturesNet:
    layers = check_layers(layers)

    def build():
        model = DNNFeaturesNet(layers, weights, download).to(device=device, dtype=dtype)
        prepare_module(model, torch.device(device))
        return model

    return cached(("dnn_features", layers, str(weights), str(device), dtype), build)


def dnn_features(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    layers=DEFAULT_LAYERS,
    levels: int = 3,
    level_pooling: str = "mean",
    layer_pooling="mean",
    weights=None,
    download: bool | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Amirshahi et al. (2016) CNN-feature similarity of each pair: (N,) for reduction='none', else a scalar, in
    [0, 1], **higher = better** (1 for identical images).

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; the score is symmetric in the two):
    N×3×H×W RGB or N×1×H×W grey, uint8 or float in [0, data_range]. ``layers``: AlexNet conv layers 1…5 (after
    ReLU); ``levels``: pyramid levels (2^v×2^v cells at level v); ``level_pooling``: 'mean' or 'pyramid';
    ``layer_pooling``: 'mean' or one weight per layer. See the module docstring for every choice. ``weights``: an
    explicit AlexNet file (else :mod:`turboiqa.nets.weights` finds 'alexnet'); ``download`` allows fetching it.
    Differentiable w.r.t. both images.
    """
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32
    model = dnn_features_model(layers, xb.device, dtype, weights, download)
    return dnn_features_score(model, x, y, data_range, reduction, levels, level_pooling, layer_pooling, backend)


class DNNFeatures(nn.Module):
    """Module form of :func:`dnn_features` (higher = better); holds the network (``.to(device)`` / ``.double()``
    move it). ``forward(x, y)``: ``x`` distorted, ``y`` reference."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, layers=DEFAULT_LAYERS, levels: int = 3,
                 level_pooling: str = "mean", layer_pooling="mean", weights=None, download: bool | None = None,
                 backend: str = "auto", pretrained: bool = True):
        super().__init__()
        check_leading_arguments("DNNFeatures", data_range, reduction)
        check_levels(levels)
        level_weights(levels, level_pooling)
        self.model = DNNFeaturesNet(layers, weights, download, pretrained)
        layer_weights(self.model.layers, layer_pooling)
        self.kwargs = {"data_range": data_range, "reduction": reduction, "levels": levels,
                       "level_pooling": level_pooling, "layer_pooling": layer_pooling, "backend": backend}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return dnn_features_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return f"layers={self.model.layers}, " + ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
