"""ImageNet backbones of the deep metrics as plain ``nn.Module``s (no torchvision needed).

Each ``features`` stack keeps torchvision's module indices, so torchvision checkpoints (``features.<i>.weight``) load
as they are, and ``forward`` returns the outputs of the modules listed in ``taps`` (LPIPS slices, SPECS §10; DISTS
stages, SPECS §15). The convolutions are torch's own (oneDNN on CPU, cuDNN on CUDA).

=================  ========================================================================================
AlexNet            LPIPS taps relu1…relu5 = features[1, 4, 7, 9, 11] (channels 64, 192, 384, 256, 256)
VGG16              LPIPS / DISTS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 = features[3, 8, 15, 22, 29]
                   (64, 128, 256, 512, 512); ``pooling='l2'`` replaces the max-pools 4, 9, 16, 23 by DISTS' L2
                   pooling √(hanning3×3 ∗ x² + 1e-12), stride 2, padding 1, depth-wise; ``pooling='avg'``
                   makes every max-pool a 2×2 average (piq's LPIPS ``replace_pooling=True``)
SqueezeNet 1.1     LPIPS taps features[1, 4, 7, 9, 10, 11, 12] (64, 128, 256, 384, 384, 512, 512)
=================  ========================================================================================
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class L2Pooling(nn.Module):
    """DISTS ``L2pooling(filter_size=5)``: hanning(5)[1:-1] = [0.5, 1, 0.5] outer product, normalised to sum 1."""

    def __init__(self, channels: int):
        super().__init__()
        h = torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64)
        g = h[:, None] * h[None, :]
        g = (g / g.sum()).float()
        self.channels = channels
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x * x, self.filter.to(x.dtype), stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class Fire(nn.Module):
    """SqueezeNet fire module (torchvision key names: squeeze, expand1x1, expand3x3)."""

    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class Backbone(nn.Module):
    """A ``features`` stack returning the outputs of the modules in ``taps`` (stops after the last tap)."""

    weights_key = ""  # nets.weights registry key of the ImageNet file
    default_taps: tuple[int, ...] = ()

    def __init__(self, features: nn.Sequential, taps=None):
        super().__init__()
        self.features = features
        self.taps = tuple(self.default_taps if taps is None else taps)
        if not self.taps or min(self.taps) < 0 or max(self.taps) >= len(features):
            raise ValueError(f"taps must be indices into the {len(features)} feature modules, got {self.taps}")
        # ReLU in place unless its input is a tap (DeepSim taps conv outputs): no extra activation-sized buffer,
        # 7–8 % faster on the CPU; autograd handles it (ReLU's backward reads its output, the conv's does not).
        for i, m in enumerate(features):
            if isinstance(m, nn.ReLU):
                m.inplace = (i - 1) not in self.taps
        self.requires_grad_(False)
        self.eval()

    @property
    def channels(self) -> list[int]:
        out, c = [], 3
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):
                c = m.out_channels
            elif isinstance(m, Fire):
                c = m.expand1x1.out_channels + m.expand3x3.out_channels
            if i in self.taps:
                out.append(c)
        return out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        try:
            return self._taps(x)
        except RuntimeError as exc:  # torch's "Output size is too small" from a pooling layer
            if "too small" not in str(exc):
                raise
            h, w = x.shape[-2:]
            raise ValueError(
                f"{h}×{w} images are too small for the {type(self).__name__} backbone of this metric: it needs at "
                f"least {self.minimum_input_size()}×{self.minimum_input_size()} pixels (inputs are N×C×H×W)"
            ) from exc

    def minimum_input_size(self) -> int:
        """The smallest square input every tapped layer accepts (found on a weightless 'meta' copy)."""
        probe = copy.deepcopy(self).to("meta")
        for size in range(1, 1025):
            try:
                probe._taps(torch.empty(1, 3, size, size, device="meta"))
                return size
            except RuntimeError:
                continue
        return 1025

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        wanted, out = set(self.taps), []
        last = max(self.taps)
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                out.append(x)
            if i == last:
                break
        return out

    def load_features(self, state: dict) -> Backbone:
        """Load a features state dict (keys ``<i>.weight``/``<i>.bias``); missing or unexpected keys are errors."""
        missing, unexpected = self.features.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{type(self).__name__} weights do not fit: missing {missing}, unexpected {unexpected}")
        return self


def relu() -> nn.Module:
    return nn.ReLU(inplace=False)  # Backbone.__init__ makes it in-place where no tap needs its input


class AlexNet(Backbone):
    weights_key = "alexnet"
    default_taps = (1, 4, 7, 9, 11)

    def __init__(self, taps=None):
        features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), relu(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), relu(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), relu(),
            nn.Conv2d(384, 256, 3, padding=1), relu(),
            nn.Conv2d(256, 256, 3, padding=1), relu(), nn.MaxPool2d(3, 2),
        )
        super().__init__(features, taps)


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16(Backbone):
    """``pooling='max'`` is torchvision's VGG16; ``'l2'`` is DISTS' anti-aliased variant; ``'avg'`` is piq's
    ``replace_pooling=True`` (every max-pool a 2×2 average)."""

    weights_key = "vgg16"
    default_taps = (3, 8, 15, 22, 29)

    def __init__(self, taps=None, pooling: str = "max"):
        if pooling not in ("max", "l2", "avg"):
            raise ValueError(f"pooling must be 'max', 'l2' or 'avg', got {pooling!r}")
        layers, c = [], 3
        for v in VGG16_CFG:
            if v == "M":
                if pooling == "avg":
                    layers.append(nn.AvgPool2d(2, 2))
                else:
                    layers.append(nn.MaxPool2d(2, 2) if pooling == "max" or len(layers) > 23 else L2Pooling(c))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), relu()]
                c = v
        self.pooling = pooling
        super().__init__(nn.Sequential(*layers), taps)


class SqueezeNet11(Backbone):
    weights_key = "squeezenet1_1"
    default_taps = (1, 4, 7, 9, 10, 11, 12)

    def __init__(self, taps=None):
        features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2), relu(), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
        )
        super().__init__(features, taps)


BACKBONES = {"alex": AlexNet, "vgg": VGG16, "squeeze": SqueezeNet11}


def build_backbone(net: str, taps=None, weights=None, download: bool | None = None, pretrained: bool = True,
                   **kwargs) -> Backbone:
    """A backbone with its ImageNet weights resolved by :mod:`turboiqa.nets.weights` (``weights`` = explicit path)."""
    from .weights import load_backbone_state

    if net not in BACKBONES:
        raise ValueError(f"net must be one of {sorted(BACKBONES)}, got {net!r}")
    model = BACKBONES[net](taps=taps, **kwargs)
    if pretrained:
        model.load_features(load_backbone_state(model.weights_key, weights, download))
    return model
