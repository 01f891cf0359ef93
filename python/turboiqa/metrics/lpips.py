"""LPIPS — Zhang, Isola, Efros, Shechtman, Wang, "The unreasonable effectiveness of deep features as a perceptual
metric", CVPR 2018 (arXiv:1801.03924).

Reference code: richzhang/PerceptualSimilarity, pip ``lpips`` 0.1.4 (``lpips/lpips.py``, version v0.1). Matches it
given the same weights (tests/test_lpips.py): the v0.1 ScalingLayer (x − shift)/scale on [−1, 1] input, the
backbone taps of SPECS §10, per-layer unit normalisation f/(‖f‖₂ + 1e−10), squared difference, the non-negative
1×1 linear head and a spatial mean, summed over layers. Lower = better, 0 for identical images.

Input range, as the official code: ``normalize=True`` (default here, like ``lpips.LPIPS.forward(normalize=True)``
and pyiqa) takes images in [0, data_range] (uint8: 0..255 with data_range=255) and maps them to [−1, 1];
``normalize=False`` takes images already in [−1, 1] (the ``lpips`` package's default).

Weights: backbone from :mod:`turboiqa.nets.weights` (``TURBOIQA_WEIGHTS``, torch hub cache, …); the v0.1 heads ship
in the package (BSD-2, LICENSE.LPIPS). Only v0.1 is provided (v0.0 had a scaling bug and its own heads).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _ops
from ..nets import build_backbone, cached, runtime
from ..nets.runtime import (
    autocast_context,
    layout,
    needs_grad,
    prepare_module,
    scoring_context,
    to_unit_range,
)
from ..nets.weights import load_state
from ..validate import as_batch, check_pair, check_reduction, reduce
from .module import check_leading_arguments

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_NETS = ("alex", "vgg", "squeeze")
NORM_EPS = 1e-10


class LPIPSNet(nn.Module):
    """Backbone + v0.1 heads (buffers: frozen, moved by ``.to()``, never in an optimiser)."""

    def __init__(self, net: str = "alex", weights=None, head_weights=None, download: bool | None = None,
                 pretrained: bool = True, **backbone_kwargs):
        super().__init__()
        if net not in LPIPS_NETS:
            raise ValueError(f"net must be one of {LPIPS_NETS}, got {net!r}")
        self.net = net
        self.backbone = build_backbone(net, weights=weights, download=download, pretrained=pretrained,
                                       **backbone_kwargs)
        channels = self.backbone.channels
        if pretrained:
            state = load_state(f"lpips-{net}", head_weights, download)
            heads = [state[f"lin{i}.model.1.weight"].reshape(-1) for i in range(len(channels))]
        else:
            heads = [torch.ones(c) / c for c in channels]
        for i, (h, c) in enumerate(zip(heads, channels)):
            if h.numel() != c:
                raise ValueError(f"LPIPS head {i} has {h.numel()} weights for a {c}-channel layer")
            self.register_buffer(f"head{i}", h.clone().float())
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    @property
    def heads(self) -> list[torch.Tensor]:
        return [getattr(self, f"head{i}") for i in range(len(self.backbone.taps))]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Taps of [−1, 1] input (ScalingLayer applied here)."""
        return self.backbone(layout((x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)))

    def pair_features(self, x: torch.Tensor, y: torch.Tensor):
        """Both images ([−1, 1]) in one backbone call (one batch of 2N keeps both CPU cores busy at batch 1)."""
        feats = self.features(torch.cat([x, y]))
        n = x.shape[0]
        return [f[:n] for f in feats], [f[n:] for f in feats]

    def scaled_pair(self, x, y, data_range: float, normalize: bool, dtype: torch.dtype) -> torch.Tensor:
        """[x; y] as the backbone's input — range mapping and ScalingLayer folded into one x·gain + bias per image,
        written straight into one channels_last batch on the CPU (one pass instead of six at 1080p)."""
        scale = self.scale.to(torch.float64)
        shift = self.shift.to(torch.float64)
        if normalize:  # ((x / data_range)·2 − 1 − shift) / scale
            gain, bias = 2 / (data_range * scale), (-1 - shift) / scale
        else:  # (x − shift) / scale
            gain, bias = 1 / scale, -shift / scale
        gain, bias = gain.to(dtype), bias.to(dtype)
        if needs_grad(x, y):  # out= does not record autograd
            return layout(torch.cat([torch.addcmul(bias, x.to(dtype), gain), torch.addcmul(bias, y.to(dtype), gain)]))
        n = x.shape[0]
        fmt = torch.channels_last if x.device.type == "cpu" and runtime.CPU_CHANNELS_LAST else torch.contiguous_format
        out = torch.empty((2 * n, *x.shape[1:]), dtype=dtype, device=x.device, memory_format=fmt)
        torch.addcmul(bias, x, gain, out=out[:n])
        torch.addcmul(bias, y, gain, out=out[n:])
        return out

    def split_features(self, batch: torch.Tensor):
        feats = self.backbone(batch)
        n = batch.shape[0] // 2
        return [f[:n] for f in feats], [f[n:] for f in feats]


def to_signed_range(x: torch.Tensor, data_range: float, normalize: bool) -> torch.Tensor:
    if normalize:
        return to_unit_range(x, data_range) * 2 - 1
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def check_lpips_input(x, y, data_range: float, normalize: bool):
    if not normalize and x.dtype == torch.uint8:
        raise ValueError("normalize=False expects float images in [-1, 1]; uint8 input needs normalize=True")
    signed_hint = None if normalize else ("normalize=False expects [-1, 1] (use normalize=True with data_range "
                                          "for [0, data_range] images)")
    x, y = check_pair(x, y, data_range if normalize else 1.0, signed_hint=signed_hint)
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) channels, got {x.shape[1]}")
    return x, y


def unit_normalise(f: torch.Tensor) -> torch.Tensor:
    """Features divided by their channel-vector norm (+ NORM_EPS), as LPIPS' ``normalize_tensor``."""
    return f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + NORM_EPS)


def spatial_map(f0, f1, head, size):
    """The ``spatial=True`` map of one layer: weighted squared difference, bilinearly upsampled to the input size."""
    n0, n1 = unit_normalise(f0), unit_normalise(f1)
    d = ((n0 - n1).square() * head.view(1, -1, 1, 1).to(n0.dtype)).sum(dim=1, keepdim=True)
    return F.interpolate(d, size=size, mode="bilinear", align_corners=False)


def layer_distances(model: LPIPSNet, f0, f1, backend: str = "auto") -> list[torch.Tensor]:
    """Each tap's weighted distance of unit-normalised features, (N,) per layer (the fused native operator)."""
    return [_ops.lpips_distance(a, b, h, NORM_EPS, backend) for a, b, h in zip(f0, f1, model.heads)]


def lpips_of_checked(model: LPIPSNet, x, y, data_range: float = 1.0, normalize: bool = True) -> torch.Tensor:
    """(N,) LPIPS of a pair whose checks the caller made (the compat classes check with their library's rules)."""
    dtype = prepare_module(model, x.device)
    with scoring_context(x, y):
        f0, f1 = model.split_features(model.scaled_pair(x, y, data_range, normalize, dtype))
        return torch.stack(layer_distances(model, f0, f1)).sum(dim=0)


def lpips_score(model: LPIPSNet, x, y, data_range: float = 1.0, normalize: bool = True, reduction: str = "mean",
                spatial: bool = False, autocast=None, backend: str = "auto", return_layers: bool = False):
    """LPIPS of a pair with an already built :class:`LPIPSNet` (what the functional and module forms call)."""
    check_reduction(reduction)
    x, y = check_lpips_input(x, y, data_range, normalize)
    dtype = prepare_module(model, x.device)
    with scoring_context(x, y):
        batch = model.scaled_pair(x, y, data_range, normalize, dtype)
        with autocast_context(autocast, x.device):
            f0, f1 = model.split_features(batch)
        if spatial:
            maps = [spatial_map(a.float() if autocast else a, b.float() if autocast else b, h, x.shape[-2:])
                    for a, b, h in zip(f0, f1, model.heads)]
            out = torch.stack(maps).sum(dim=0)
            return out if reduction == "none" else reduce(out.mean(dim=(1, 2, 3)), reduction)
        layers = layer_distances(model, f0, f1, backend)
        total = torch.stack(layers).sum(dim=0)
    if return_layers:
        return reduce(total, reduction), torch.stack(layers, dim=1)
    return reduce(total, reduction)


def lpips_model(net: str, device, dtype, weights=None, head_weights=None, download=None) -> LPIPSNet:
    key = ("lpips", net, "max", str(weights), str(head_weights), str(device), dtype)

    def build():
        model = LPIPSNet(net, weights, head_weights, download).to(device=device, dtype=dtype)
        prepare_module(model, torch.device(device))
        return model

    return cached(key, build)


def lpips(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    net: str = "alex",
    normalize: bool = True,
    spatial: bool = False,
    weights=None,
    head_weights=None,
    download: bool | None = None,
    autocast=None,
    backend: str = "auto",
) -> torch.Tensor:
    """LPIPS v0.1 distance of each pair: (N,) for reduction='none', else a scalar (lower = better).

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; LPIPS is symmetric in the two): N×3×H×W
    RGB, uint8 or float in [0, data_range] (``normalize=True``) or float in [−1, 1] (``normalize=False``). ``net``:
    'alex' (default, as the paper), 'vgg' or 'squeeze'. ``spatial=True`` returns the N×1×H×W distance map
    (reduction='none') or its reduced mean. ``weights``/``head_weights``: explicit files for the backbone / the
    heads (see :mod:`turboiqa.nets.weights`); ``download`` allows fetching a missing backbone. ``autocast``:
    torch.float16 / torch.bfloat16 on CUDA (README for the accuracy bound). Differentiable w.r.t. both images.
    """
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32
    model = lpips_model(net, xb.device, dtype, weights, head_weights, download)
    return lpips_score(model, x, y, data_range, normalize, reduction, spatial, autocast, backend)


class LPIPS(nn.Module):
    """Module form of :func:`lpips`; holds the network (``.to(device)`` / ``.double()`` move it).
    ``forward(x, y)``: ``x`` distorted, ``y`` reference."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, net: str = "alex",
                 normalize: bool = True, spatial: bool = False, weights=None, head_weights=None,
                 download: bool | None = None, autocast=None, backend: str = "auto"):
        super().__init__()
        check_leading_arguments("LPIPS", data_range, reduction)
        self.model = LPIPSNet(net, weights, head_weights, download)
        self.kwargs = {"data_range": data_range, "normalize": normalize, "reduction": reduction, "spatial": spatial,
                       "autocast": autocast, "backend": backend}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return lpips_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return f"net={self.model.net!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
