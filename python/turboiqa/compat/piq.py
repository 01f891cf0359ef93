"""piq 0.8's API on turboiqa's kernels: ``import turboiqa.compat.piq as piq``.

The names in :data:`ACCELERATED` take piq's arguments (same order, defaults and return types: ``ssim(full=True)``
returns ``[ssim, cs]``), validate input the way piq does (``AssertionError`` for non-tensors, devices, shapes,
dimensions and values outside ``[0, data_range]``; ``ValueError`` where piq raises one) and compute with
turboiqa's ``convention="piq"``, which reproduces piq's numbers. Argument values turboiqa does not implement
(piq's complex 5-D input) run piq's own code when piq is installed. Every other name (``vif_p``, ``gmsd``, …) is
piq's own object, looked up in an installed piq.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

from .. import _ops
from ..metrics import dists as _dists
from ..metrics import fsim as _fsim
from ..metrics import iw_ssim as _iw_ssim
from ..metrics import lpips as _lpips
from ..metrics import ms_ssim as _ms_ssim
from ..metrics import psnr as _psnr
from ..metrics import ssim as _ssim
from ..nets.runtime import layout, needs_grad, prepare_module
from . import delegate_to, fused_bounds

ACCELERATED = ("ssim", "SSIMLoss", "multi_scale_ssim", "MultiScaleSSIMLoss", "psnr", "fsim", "FSIMLoss",
               "information_weighted_ssim", "InformationWeightedSSIMLoss", "LPIPS", "DISTS")
WANG_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # piq's default scale weights, in the input's dtype
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _piq():
    try:
        import piq
    except ImportError as exc:
        raise ImportError("this call needs piq itself (pip install piq): turboiqa.compat.piq accelerates "
                          f"{', '.join(ACCELERATED)} and takes every other name or argument from piq") from exc
    return piq


__getattr__ = delegate_to(_piq, "turboiqa.compat.piq", "piq")


def _check_inputs(tensors, dims: tuple[int, int], data_range: float | None) -> None:
    """piq's input contract, with piq's exception type: an AssertionError (skipped under ``python -O``, as in piq).
    ``data_range=None``: no value check (piq's LPIPS and DISTS take any values)."""
    first = tensors[0]
    for t in tensors:
        assert torch.is_tensor(t), f"expected a torch.Tensor, got {type(t).__name__}"
        assert t.device == first.device, f"tensors are on different devices: {first.device} and {t.device}"
        assert t.size() == first.size(), f"tensors differ in size: {tuple(first.size())} and {tuple(t.size())}"
        assert dims[0] <= t.dim() <= dims[1], f"expected {dims[0]}…{dims[1]} dimensions, got {t.dim()}"
    if __debug__ and data_range is not None:
        _check_values(tensors, data_range)


def _check_values(tensors, data_range: float) -> None:
    """Every value in [0, data_range] (NaN fails, as piq's comparisons do). One fused native pass over a 4-D float
    pair gives both images' extrema and a sum that is NaN where a NaN hides from min/max."""
    x = tensors[0]
    if len(tensors) == 2 and x.dim() == 4 and x.dtype.is_floating_point and x.dtype == tensors[1].dtype:
        total, lows, highs = fused_bounds(x, tensors[1])
        assert bool(torch.isfinite(total).all()), "values must be in [0, data_range], got NaN"
    elif x.dtype == torch.uint8 and data_range >= 255:
        return  # every uint8 value is in range
    else:
        lows = min(t.min().item() for t in tensors)
        highs = max(t.max().item() for t in tensors)
    assert lows >= 0, f"values must be ≥ 0, got a minimum of {lows}"
    assert highs <= data_range, f"values must be ≤ data_range={data_range}, got a maximum of {highs}"


def _scaled(t: torch.Tensor, data_range: float) -> torch.Tensor:
    """piq's ``t / float(data_range)``; dividing float input by 1 changes no bit, so that copy is skipped."""
    if data_range == 1 and t.dtype.is_floating_point:
        return t
    return t / float(data_range)


def _assert_odd(kernel_size: int) -> None:
    assert kernel_size % 2 == 1, f"kernel_size must be odd, got {kernel_size}"


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean(dim=0)
    if reduction == "sum":
        return values.sum(dim=0)
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _scale_weights(scale_weights, like: torch.Tensor) -> torch.Tensor:
    """piq's rule: Wang's weights in the input's dtype, or the given ones normalised to sum to 1, as a vector."""
    if scale_weights is None:
        weights = torch.tensor(WANG_WEIGHTS, dtype=like.dtype, device=like.device)
    else:
        weights = scale_weights / scale_weights.sum()
    if weights.size(0) != weights.numel():
        raise ValueError(f"scale_weights must be a vector, got a {weights.dim()}-D tensor")
    return weights


# ------------------------------------------------------------------------------------------------------ SSIM


def ssim(x: torch.Tensor, y: torch.Tensor, kernel_size: int = 11, kernel_sigma: float = 1.5,
         data_range: float = 1.0, reduction: str = "mean", full: bool = False, downsample: bool = True,
         k1: float = 0.01, k2: float = 0.03):
    """piq.ssim: per-channel SSIM averaged over channels; ``full=True`` returns ``[ssim, cs]``."""
    _assert_odd(kernel_size)
    _check_inputs([x, y], (4, 5), data_range)
    if x.dim() == 5:  # piq's complex SSIM: its own code
        return _piq().ssim(x, y, kernel_size, kernel_sigma, data_range, reduction, full, downsample, k1, k2)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    conv = replace(_ssim.SSIM_CONVENTIONS["piq"], kernel_size=kernel_size, kernel_sigma=kernel_sigma,
                   downsample="avgpool" if downsample else None)
    x, y = _ssim.downsample_pair(x, y, conv)
    if x.size(-1) < kernel_size or x.size(-2) < kernel_size:
        raise ValueError(f"kernel_size {kernel_size} is larger than the input ({x.size(-2)}×{x.size(-1)} after "
                         "downsampling)")
    ssim_planes, cs_planes = _ops.ssim_stats(x, y, _ssim.window_for(conv), k1**2, k2**2, "valid", 1.0)
    ssim_value = _reduce(ssim_planes.mean(dim=1), reduction)
    if full:
        return [ssim_value, _reduce(cs_planes.mean(dim=1), reduction)]
    return ssim_value


class SSIMLoss(_Loss):
    """piq.SSIMLoss: ``1 - ssim``."""

    def __init__(self, kernel_size: int = 11, kernel_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
                 downsample: bool = True, reduction: str = "mean", data_range: float = 1.0) -> None:
        super().__init__()
        _assert_odd(kernel_size)  # fail at construction, before training starts
        self.reduction = reduction
        self.kernel_size, self.kernel_sigma, self.k1, self.k2 = kernel_size, kernel_sigma, k1, k2
        self.downsample, self.data_range = downsample, data_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        score = ssim(x, y, kernel_size=self.kernel_size, kernel_sigma=self.kernel_sigma, data_range=self.data_range,
                     reduction=self.reduction, full=False, downsample=self.downsample, k1=self.k1, k2=self.k2)
        return torch.ones_like(score) - score


def multi_scale_ssim(x: torch.Tensor, y: torch.Tensor, kernel_size: int = 11, kernel_sigma: float = 1.5,
                     data_range: float = 1.0, reduction: str = "mean", scale_weights: torch.Tensor | None = None,
                     k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """piq.multi_scale_ssim (given ``scale_weights`` are normalised to sum to 1, as piq does)."""
    _assert_odd(kernel_size)
    _check_inputs([x, y], (4, 5), data_range)
    if x.dim() == 5:
        return _piq().multi_scale_ssim(x, y, kernel_size, kernel_sigma, data_range, reduction, scale_weights, k1, k2)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    weights = _scale_weights(scale_weights, x)  # too small for the scales: the metric's own ValueError, as piq
    return _ms_ssim.ms_ssim(x, y, 1.0, reduction, convention="piq", scale_weights=weights,
                            kernel_size=kernel_size, kernel_sigma=kernel_sigma, k1=k1, k2=k2)


class MultiScaleSSIMLoss(_Loss):
    """piq.MultiScaleSSIMLoss: ``1 - multi_scale_ssim``; the scale weights are a buffer, as in piq."""

    def __init__(self, kernel_size: int = 11, kernel_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
                 scale_weights: torch.Tensor | None = None, reduction: str = "mean", data_range: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.register_buffer("scale_weights", torch.tensor(WANG_WEIGHTS) if scale_weights is None else scale_weights)
        _assert_odd(kernel_size)
        self.kernel_size, self.kernel_sigma, self.k1, self.k2 = kernel_size, kernel_sigma, k1, k2
        self.data_range = data_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        score = multi_scale_ssim(x, y, kernel_size=self.kernel_size, kernel_sigma=self.kernel_sigma,
                                 data_range=self.data_range, reduction=self.reduction,
                                 scale_weights=self.scale_weights, k1=self.k1, k2=self.k2)
        return torch.ones_like(score) - score


# ------------------------------------------------------------------------------------------------------ PSNR


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean",
         convert_to_greyscale: bool = False) -> torch.Tensor:
    """piq.psnr: −10·log10(MSE + 1e-8) of images scaled to [0, 1]; YIQ luma of RGB with convert_to_greyscale."""
    _check_inputs([x, y], (4, 5), data_range)
    if x.dim() == 5:  # piq keeps the trailing axis of 5-D input: its own code
        return _piq().psnr(x, y, data_range, reduction, convert_to_greyscale)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    color = "yiq" if convert_to_greyscale and x.size(1) == 3 else "rgb"
    return _psnr.psnr(x, y, 1.0, reduction, color=color, eps=1e-8)


# ------------------------------------------------------------------------------------------------------ FSIM


def fsim(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", data_range: float = 1.0,
         chromatic: bool = True, scales: int = 4, orientations: int = 4, min_length: int = 6, mult: int = 2,
         sigma_f: float = 0.55, delta_theta: float = 1.2, k: float = 2.0) -> torch.Tensor:
    """piq.fsim (FSIMc by default, as in piq; ``chromatic=True`` on 1-channel input is an AssertionError)."""
    _check_inputs([x, y], (4, 4), data_range)
    assert not chromatic or x.size(1) == 3, "chromatic=True (FSIMc) needs RGB input, got 1 channel"
    bank = {"nscale": scales, "norient": orientations, "min_wavelength": min_length, "mult": mult,
            "sigma_onf": sigma_f, "d_theta_on_sigma": delta_theta, "k": k}
    x, y = x / float(data_range) * 255, y / float(data_range) * 255  # piq's order of operations
    return _fsim.fsim(x, y, 255, reduction, color="yiq_chromatic" if chromatic else "yiq", convention="piq",
                      filter_bank=bank)


class FSIMLoss(_Loss):
    """piq.FSIMLoss: ``1 - clamp(fsim, 0, 1)``."""

    def __init__(self, reduction: str = "mean", data_range: float = 1.0, chromatic: bool = True, scales: int = 4,
                 orientations: int = 4, min_length: int = 6, mult: int = 2, sigma_f: float = 0.55,
                 delta_theta: float = 1.2, k: float = 2.0) -> None:
        super().__init__()
        self.data_range, self.reduction = data_range, reduction
        self.fsim = functools.partial(fsim, reduction=reduction, data_range=data_range, chromatic=chromatic,
                                      scales=scales, orientations=orientations, min_length=min_length, mult=mult,
                                      sigma_f=sigma_f, delta_theta=delta_theta, k=k)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1 - torch.clamp(self.fsim(x, y), 0, 1)


# --------------------------------------------------------------------------------------------------- IW-SSIM


def information_weighted_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, kernel_size: int = 11,
                              kernel_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, parent: bool = True,
                              blk_size: int = 3, sigma_nsq: float = 0.4, scale_weights: torch.Tensor | None = None,
                              reduction: str = "mean") -> torch.Tensor:
    """piq.information_weighted_ssim: ``y`` (the target) supplies the information weights."""
    _assert_odd(kernel_size)
    _check_inputs([x, y], (4, 4), data_range)
    x, y = x / float(data_range) * 255, y / float(data_range) * 255  # piq's order of operations
    weights = _scale_weights(scale_weights, x)  # too small for the scales: the metric's own ValueError, as piq
    return _iw_ssim.iw_ssim(x, y, 255, reduction, convention="piq", parent=parent, blk_size=blk_size,
                            sigma_nsq=sigma_nsq, kernel_size=kernel_size, kernel_sigma=kernel_sigma, k1=k1, k2=k2,
                            scale_weights=weights)


class InformationWeightedSSIMLoss(_Loss):
    """piq.InformationWeightedSSIMLoss: ``1 - information_weighted_ssim``."""

    def __init__(self, data_range: float = 1.0, kernel_size: int = 11, kernel_sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, parent: bool = True, blk_size: int = 3, sigma_nsq: float = 0.4,
                 scale_weights: torch.Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        self.data_range, self.kernel_size, self.kernel_sigma, self.k1, self.k2 = data_range, kernel_size, \
            kernel_sigma, k1, k2
        self.parent, self.blk_size, self.sigma_nsq = parent, blk_size, sigma_nsq
        self.scale_weights, self.reduction = scale_weights, reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        score = information_weighted_ssim(x, y, data_range=self.data_range, kernel_size=self.kernel_size,
                                          kernel_sigma=self.kernel_sigma, k1=self.k1, k2=self.k2, parent=self.parent,
                                          blk_size=self.blk_size, sigma_nsq=self.sigma_nsq,
                                          scale_weights=self.scale_weights, reduction=self.reduction)
        return torch.ones_like(score) - score


# ---------------------------------------------------------------------------------------------- LPIPS, DISTS


def _grad_context(*tensors):
    """piq returns ordinary tensors (usable in later autograd graphs): no_grad, not inference_mode, when no
    gradient is wanted."""
    return contextlib.nullcontext() if needs_grad(*tensors) else torch.no_grad()


def _follow_input(net: torch.nn.Module, x: torch.Tensor) -> None:
    """piq moves its network to the input's device and dtype on every call (``self.model.to(x)``)."""
    p = next(net.parameters())
    if x.is_floating_point() and (p.device != x.device or p.dtype != x.dtype):
        net.to(device=x.device, dtype=x.dtype)


def _standardise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """piq's ``(x - mean) / std``; a 1-channel image broadcasts to 3 channels, as in piq."""
    return (x - mean.to(x)) / std.to(x)


class LPIPS(_Loss):
    """piq.LPIPS: VGG16 LPIPS v0.1 of [0, 1] input standardised by ``mean``/``std`` (the defaults are the same
    mapping as the official ScalingLayer), ``replace_pooling=True`` average-pools, ``distance='mae'`` weighs
    |a − b| instead of (a − b)² of the unit-normalised features. No value-range check (as piq)."""

    def __init__(self, replace_pooling: bool = False, distance: str = "mse", reduction: str = "mean",
                 mean: list[float] = IMAGENET_MEAN, std: list[float] = IMAGENET_STD) -> None:
        super().__init__()
        if distance not in ("mse", "mae"):
            raise KeyError(distance)  # piq's dictionary lookup
        self.net = _lpips.LPIPSNet("vgg", pooling="avg" if replace_pooling else "max")
        self.net.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.distance, self.reduction = distance, reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_inputs([x, y], (4, 4), None)
        _follow_input(self.net, x)
        prepare_module(self.net, x.device)
        n = x.size(0)
        with _grad_context(x, y):
            feats = self.net.backbone(layout(_standardise(torch.cat([x, y]), self.mean, self.std)))
            f0, f1 = [f[:n] for f in feats], [f[n:] for f in feats]
            if self.distance == "mse":
                layers = _lpips.layer_distances(self.net, f0, f1)
            else:
                layers = [_mae_layer(a, b, h) for a, b, h in zip(f0, f1, self.net.heads)]
            return _reduce(torch.stack(layers).sum(dim=0), self.reduction)


def _mae_layer(a: torch.Tensor, b: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """Σ_c w_c · mean_hw |â − b̂| of unit-normalised features (piq's ``distance='mae'``)."""
    na, nb = _lpips.unit_normalise(a), _lpips.unit_normalise(b)
    return ((na - nb).abs().mean(dim=(2, 3)) * head.to(na.dtype)).sum(dim=1)


class DISTS(_Loss):
    """piq.DISTS: the official DISTS (structure + texture terms over VGG16 with L2 pooling) of [0, 1] input, with
    piq's resize — plain bilinear by ``256 / min(H, W)`` when the shorter side exceeds 256 (not the official demo's
    antialiased resize) — and piq's ``1 - reduce(similarity)`` (so ``reduction='sum'`` is 1 − Σ, as in piq)."""

    def __init__(self, reduction: str = "mean", mean: list[float] = IMAGENET_MEAN,
                 std: list[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.net = _dists.DISTSNet(normalise_weights=False)
        self.net.requires_grad_(False)
        self.net.mean = torch.tensor(mean).view(1, -1, 1, 1)  # the network's standardisation, piq's values
        self.net.std = torch.tensor(std).view(1, -1, 1, 1)
        self.reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape  # before the checks, as piq (a ValueError for other than 4 dimensions)
        _check_inputs([x, y], (4, 4), None)
        if min(h, w) > 256:
            x = F.interpolate(x, scale_factor=256 / min(h, w), recompute_scale_factor=False, mode="bilinear")
            y = F.interpolate(y, scale_factor=256 / min(h, w), recompute_scale_factor=False, mode="bilinear")
        if x.size(1) == 1:  # piq broadcasts grey input against the 3-channel weights: the same as repeating it
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        _follow_input(self.net, x)
        prepare_module(self.net, x.device)
        with _grad_context(x, y):
            similarity = 1 - _dists.dists_of_unit_range(self.net, x, y)
            return 1 - _reduce(similarity, self.reduction)
