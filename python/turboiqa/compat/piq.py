"""piq 0.8's API on turboiqa's kernels: ``import turboiqa.compat.piq as piq``.

The names in :data:`ACCELERATED` take piq's arguments (same order, defaults and return types: ``ssim(full=True)``
returns ``[ssim, cs]``), validate input the way piq does (``AssertionError`` for non-tensors, devices, shapes,
dimensions and values outside ``[0, data_range]``; ``ValueError`` where piq raises one) and compute with
turboiqa's ``convention="piq"``, which reproduces piq's numbers. Argument values turboiqa does not implement
(piq's complex 5-D input, VSI's constants, HaarPSI's ``scales`` other than 3, DSS's DCT/window/percentile, channel
counts other than 1 and 3) run piq's own code when piq is installed (piq's original, also after :func:`patch`). One
known difference: piq's ``srsim`` min-max normalises the saliency over the whole batch, ours per image (piq called
image by image). Every other name (``brisque``, ``total_variation``, …) is piq's own object, looked up in an
installed piq.
"""
from __future__ import annotations

import contextlib
import functools
import math
import warnings
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

from .. import _ops
from ..metrics import dists as _dists
from ..metrics import dss as _dss
from ..metrics import fsim as _fsim
from ..metrics import gmsd as _gmsd
from ..metrics import haarpsi as _haarpsi
from ..metrics import iw_ssim as _iw_ssim
from ..metrics import lpips as _lpips
from ..metrics import mdsi as _mdsi
from ..metrics import ms_ssim as _ms_ssim
from ..metrics import psnr as _psnr
from ..metrics import srsim as _srsim
from ..metrics import ssim as _ssim
from ..metrics import vif as _vif
from ..metrics import vsi as _vsi
from ..nets.runtime import layout, needs_grad, prepare_module
from . import delegate_to, fused_bounds

ACCELERATED = ("ssim", "SSIMLoss", "multi_scale_ssim", "MultiScaleSSIMLoss", "psnr", "fsim", "FSIMLoss",
               "information_weighted_ssim", "InformationWeightedSSIMLoss", "LPIPS", "DISTS",
               "gmsd", "GMSDLoss", "multi_scale_gmsd", "MultiScaleGMSDLoss", "mdsi", "MDSILoss", "srsim", "SRSIMLoss",
               "vsi", "VSILoss", "haarpsi", "HaarPSILoss", "dss", "DSSLoss", "vif_p", "VIFLoss")
_ORIGINALS: dict = {}  # piq's own functions, kept before patch() rebinds them (the delegation must reach them)
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


def remember_originals(peer) -> None:
    """Called by :func:`turboiqa.compat.patch` before it rebinds piq's names: options turboiqa does not implement
    must still reach piq's own code afterwards (not ours again)."""
    for name in ACCELERATED:
        value = getattr(peer, name, None)
        if value is not None and value is not globals()[name]:
            _ORIGINALS.setdefault(name, value)


def _original(name: str):
    """piq's own ``name`` (the one patch() replaced, if it did)."""
    if name not in _ORIGINALS:
        remember_originals(_piq())
    if name not in _ORIGINALS:
        raise ImportError(f"the imported piq has no {name}")
    return _ORIGINALS[name]


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
        return _original("ssim")(x, y, kernel_size, kernel_sigma, data_range, reduction, full, downsample, k1, k2)
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
        return _original("multi_scale_ssim")(x, y, kernel_size, kernel_sigma, data_range, reduction, scale_weights,
                                             k1, k2)
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
        return _original("psnr")(x, y, data_range, reduction, convert_to_greyscale)
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


# ------------------------------------------------------------------------------------------ classic metrics
# Each runs turboiqa's convention='piq' on piq's rescaled input (``t / data_range``: uint8 becomes float32, as in
# piq) and applies piq's reduction; argument values or inputs turboiqa does not implement (other channel counts,
# images below turboiqa's minimum size, non-default constants the kernel has no parameter for) run piq's own code.


def _grey_or_rgb(x: torch.Tensor) -> bool:
    return x.size(1) in (1, 3)


class _OneMinus(_Loss):
    """piq's ``1 - metric`` losses (``clamp=True``: ``1 - clamp(metric, 0, 1)``) over a functools.partial kept in
    the attribute piq keeps it in (``self.vsi``, ``self.srsim``, …)."""

    clamp = False
    attribute = "metric"

    @property
    def metric(self):
        return getattr(self, self.attribute)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        score = self.metric(x, y)
        return 1 - torch.clamp(score, 0, 1) if self.clamp else 1. - score


def gmsd(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", data_range: float = 1.,
         t: float = 170 / (255. ** 2)) -> torch.Tensor:
    """piq.gmsd: GMSD of the YIQ luma (grey as is), population std; ``t`` in [0, 1]² units, as piq."""
    _check_inputs([x, y], (4, 4), data_range)
    if not _grey_or_rgb(x) or min(x.shape[-2:]) < 4:
        return _original("gmsd")(x, y, reduction, data_range, t)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    return _reduce(_gmsd.gmsd(x, y, 1.0, "none", convention="piq", t=t * 255. ** 2), reduction)


class GMSDLoss(_Loss):
    """piq.GMSDLoss: GMSD itself (lower = better)."""

    def __init__(self, reduction: str = "mean", data_range: float = 1., t: float = 170 / (255. ** 2)) -> None:
        super().__init__()
        self.reduction, self.data_range, self.t = reduction, data_range, t

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return gmsd(x=x, y=y, reduction=self.reduction, data_range=self.data_range, t=self.t)


def multi_scale_gmsd(x: torch.Tensor, y: torch.Tensor, data_range: float = 1., reduction: str = "mean",
                     scale_weights: torch.Tensor | None = None, chromatic: bool = False, alpha: float = 0.5,
                     beta1: float = 0.01, beta2: float = 0.32, beta3: float = 15., t: float = 170) -> torch.Tensor:
    """piq.multi_scale_gmsd (MS-GMSDc with ``chromatic=True``); ``t`` in 0–255 units, as piq. Given
    ``scale_weights`` are normalised in their own dtype, as piq does."""
    _check_inputs([x, y], (4, 4), data_range)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    if scale_weights is None:
        weights = torch.tensor(_gmsd.MS_GMSD_WEIGHTS, device=x.device, dtype=x.dtype)
    else:
        weights = scale_weights / scale_weights.sum()
    num_scales = weights.size(0)
    min_size = 2 ** num_scales + 1
    if x.size(-1) < min_size or x.size(-2) < min_size:
        raise ValueError(f"Invalid size of the input images, expected at least {min_size}x{min_size}.")
    if chromatic:
        assert x.size(1) == 3, "Chromatic component can be computed only for RGB images!"
    if not _grey_or_rgb(x) or weights.dim() != 1 or bool((weights < 0).any()):
        return _original("multi_scale_gmsd")(x, y, 1.0, reduction, scale_weights, chromatic, alpha, beta1, beta2,
                                             beta3, t)
    out_dtype = torch.promote_types(x.dtype, weights.dtype)
    # turboiqa normalises the weights again in the compute dtype; piq's, normalised in their own dtype, may sum to
    # 1 ± ulp there: √(Σ wᵢ/S · gᵢ²)·√S is piq's √(Σ wᵢ · gᵢ²) (the chromatic blend is applied after, as piq)
    w = weights.detach().to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    total = w.sum()
    common = dict(convention="piq", scale_weights=w, alpha=alpha, t=t)
    if float(total) == 1.0:  # nothing to correct: one pass, the chromatic blend included
        value = _gmsd.ms_gmsd(x, y, 1.0, "none", chromatic=chromatic, beta1=beta1, beta2=beta2, beta3=beta3, **common)
        return _reduce(value.to(out_dtype), reduction)
    value = _gmsd.ms_gmsd(x, y, 1.0, "none", **common) * total.sqrt()
    if chromatic:  # beta1 = beta2 = 1, beta3 = 0 makes γ = 0: the chromatic RMSE alone
        rmse = _gmsd.ms_gmsd(x, y, 1.0, "none", chromatic=True, beta1=1.0, beta2=1.0, beta3=0.0, **common)
        gamma = 2 / (1 + beta2 * torch.exp(-beta3 * value)) - 1
        value = gamma * value + (1 - gamma) * beta1 * rmse
    return _reduce(value.to(out_dtype), reduction)


class MultiScaleGMSDLoss(_Loss):
    """piq.MultiScaleGMSDLoss: MS-GMSD itself (lower = better); the scale weights are a buffer, as in piq."""

    def __init__(self, reduction: str = "mean", data_range: float = 1., scale_weights: torch.Tensor | None = None,
                 chromatic: bool = False, alpha: float = 0.5, beta1: float = 0.01, beta2: float = 0.32,
                 beta3: float = 15., t: float = 170) -> None:
        super().__init__()
        self.reduction, self.data_range = reduction, data_range
        self.register_buffer("scale_weights", torch.tensor(_gmsd.MS_GMSD_WEIGHTS) if scale_weights is None
                             else scale_weights)
        self.chromatic, self.alpha, self.beta1, self.beta2, self.beta3, self.t = chromatic, alpha, beta1, beta2, \
            beta3, t

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return multi_scale_gmsd(x=x, y=y, data_range=self.data_range, reduction=self.reduction,
                                chromatic=self.chromatic, alpha=self.alpha, beta1=self.beta1, beta2=self.beta2,
                                beta3=self.beta3, scale_weights=self.scale_weights, t=self.t)


def mdsi(x: torch.Tensor, y: torch.Tensor, data_range: float = 1., reduction: str = "mean", c1: float = 140.,
         c2: float = 55., c3: float = 550., combination: str = "sum", alpha: float = 0.6, beta: float = 0.1,
         gamma: float = 0.2, rho: float = 1., q: float = 0.25, o: float = 0.25) -> torch.Tensor:
    """piq.mdsi (grey input is repeated to RGB with piq's warning; piq's 'mult' combination)."""
    _check_inputs([x, y], (4, 4), data_range)
    h, w = x.shape[-2:]
    f = max(1, round(min(h, w) / 256))
    if not _grey_or_rgb(x) or rho <= 0 or min(math.ceil(h / f), math.ceil(w / f)) < 2:
        return _original("mdsi")(x, y, data_range, reduction, c1, c2, c3, combination, alpha, beta, gamma, rho, q, o)
    if x.size(1) == 1:
        warnings.warn("The original MDSI supports only RGB images. The input images were converted to RGB by "
                      "copying the grey channel 3 times.")
    if combination not in ("sum", "mult"):
        raise ValueError(f'Expected combination method "sum" or "mult", got {combination}')
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    return _reduce(_mdsi.mdsi(x, y, 1.0, "none", convention="piq", combination=combination, c1=c1, c2=c2, c3=c3,
                              alpha=alpha, beta=beta, gamma=gamma, rho=rho, q=q, o=o), reduction)


class MDSILoss(_Loss):
    """piq.MDSILoss: MDSI itself (lower = better)."""

    def __init__(self, data_range: float = 1., reduction: str = "mean", c1: float = 140., c2: float = 55.,
                 c3: float = 550., alpha: float = 0.6, rho: float = 1., q: float = 0.25, o: float = 0.25,
                 combination: str = "sum", beta: float = 0.1, gamma: float = 0.2) -> None:
        super().__init__()
        self.reduction, self.data_range = reduction, data_range
        self.mdsi = functools.partial(mdsi, c1=c1, c2=c2, c3=c3, alpha=alpha, rho=rho, q=q, o=o,
                                      combination=combination, beta=beta, gamma=gamma, data_range=data_range,
                                      reduction=reduction)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.mdsi(x=x, y=y)


def srsim(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", data_range: float = 1.0,
          chromatic: bool = False, scale: float = 0.25, kernel_size: int = 3, sigma: float = 3.8,
          gaussian_size: int = 10) -> torch.Tensor:
    """piq.srsim (SR-SIMc with ``chromatic=True``). One difference: piq min-max normalises the saliency maps over
    the whole batch, turboiqa per image — the same for N = 1 and for piq called image by image."""
    _check_inputs([x, y], (4, 4), data_range)
    if (not _grey_or_rgb(x) or not 0 < scale <= 1 or not isinstance(kernel_size, int) or kernel_size < 1
            or not isinstance(gaussian_size, int) or gaussian_size < 1):
        return _original("srsim")(x, y, reduction, data_range, chromatic, scale, kernel_size, sigma, gaussian_size)
    if chromatic and x.size(1) != 3:
        raise ValueError("Chromatic component can be computed only for RGB images!")
    h, w = x.shape[-2:]
    f = max(1, round(min(h, w) / 256))
    hd, wd = math.ceil(h / f), math.ceil(w / f)
    for kernel in kernel_size, gaussian_size:
        if wd * scale < kernel or hd * scale < kernel:
            raise ValueError(f"Kernel size can't be greater than actual input size. Input size: {hd}×{wd} x "
                             f"{scale}. Kernel size: {kernel}")
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    return _reduce(_srsim.srsim(x, y, 1.0, "none", convention="piq", chromatic=chromatic, gaussian_size=gaussian_size,
                                sigma=sigma, scale=scale, kernel_size=kernel_size), reduction)


class SRSIMLoss(_OneMinus):
    """piq.SRSIMLoss: ``1 - clamp(srsim, 0, 1)``."""

    attribute = "srsim"
    clamp = True

    def __init__(self, reduction: str = "mean", data_range: float = 1., chromatic: bool = False,
                 scale: float = 0.25, kernel_size: int = 3, sigma: float = 3.8, gaussian_size: int = 10) -> None:
        super().__init__()
        self.data_range, self.reduction = data_range, reduction
        self.srsim = functools.partial(srsim, reduction=reduction, data_range=data_range, chromatic=chromatic,
                                       scale=scale, kernel_size=kernel_size, sigma=sigma,
                                       gaussian_size=gaussian_size)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(prediction, target)


VSI_DEFAULTS = {"c1": 1.27, "c2": 386., "c3": 130., "alpha": 0.4, "beta": 0.02, "omega_0": 0.021, "sigma_f": 1.34,
                "sigma_d": 145., "sigma_c": 0.001}


def vsi(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", data_range: float = 1., c1: float = 1.27,
        c2: float = 386., c3: float = 130., alpha: float = 0.4, beta: float = 0.02, omega_0: float = 0.021,
        sigma_f: float = 1.34, sigma_d: float = 145., sigma_c: float = 0.001) -> torch.Tensor:
    """piq.vsi (grey input repeated to RGB with piq's warning). turboiqa's VSI has the published constants only:
    other values of c1 … sigma_c run piq's own code."""
    _check_inputs([x, y], (4, 4), data_range)
    given = {"c1": c1, "c2": c2, "c3": c3, "alpha": alpha, "beta": beta, "omega_0": omega_0, "sigma_f": sigma_f,
             "sigma_d": sigma_d, "sigma_c": sigma_c}
    if given != VSI_DEFAULTS or not _grey_or_rgb(x) or min(x.shape[-2:]) < _vsi.MIN_SIZE:
        return _original("vsi")(x, y, reduction, data_range, **given)
    if x.size(1) == 1:
        warnings.warn("The original VSI supports only RGB images. The input images were converted to RGB by "
                      "copying the grey channel 3 times.")
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    return _reduce(_vsi.vsi(x, y, 1.0, "none", convention="piq"), reduction)


class VSILoss(_OneMinus):
    """piq.VSILoss: ``1 - vsi``."""

    attribute = "vsi"

    def __init__(self, reduction: str = "mean", c1: float = 1.27, c2: float = 386., c3: float = 130.,
                 alpha: float = 0.4, beta: float = 0.02, data_range: float = 1., omega_0: float = 0.021,
                 sigma_f: float = 1.34, sigma_d: float = 145., sigma_c: float = 0.001) -> None:
        super().__init__()
        self.reduction, self.data_range = reduction, data_range
        self.vsi = functools.partial(vsi, c1=c1, c2=c2, c3=c3, alpha=alpha, beta=beta, omega_0=omega_0,
                                     sigma_f=sigma_f, sigma_d=sigma_d, sigma_c=sigma_c, data_range=data_range,
                                     reduction=reduction)


def haarpsi(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", data_range: float = 1., scales: int = 3,
            subsample: bool = True, c: float = 30.0, alpha: float = 4.2) -> torch.Tensor:
    """piq.haarpsi (HaarPSI of the YIQ planes of RGB, of the luma alone for grey input); only ``scales=3`` (the
    published HaarPSI) runs on turboiqa."""
    _check_inputs([x, y], (4, 4), data_range)
    kernel_size = 2 ** (scales + 1)
    if x.size(-1) < kernel_size or x.size(-2) < kernel_size:
        raise ValueError(f"Kernel size can't be greater than actual input size. Input size: {x.size()}. "
                         f"Kernel size: {kernel_size}")
    if scales != 3 or not _grey_or_rgb(x) or not (c > 0 and alpha > 0):
        return _original("haarpsi")(x, y, reduction, data_range, scales, subsample, c, alpha)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    return _reduce(_haarpsi.haarpsi(x, y, 1.0, "none", convention="piq", subsample=bool(subsample), c=c,
                                    alpha=alpha), reduction)


class HaarPSILoss(_OneMinus):
    """piq.HaarPSILoss: ``1 - haarpsi``."""

    attribute = "haarpsi"

    def __init__(self, reduction: str = "mean", data_range: float = 1., scales: int = 3, subsample: bool = True,
                 c: float = 30.0, alpha: float = 4.2) -> None:
        super().__init__()
        self.reduction, self.data_range = reduction, data_range
        self.haarpsi = functools.partial(haarpsi, scales=scales, subsample=subsample, c=c, alpha=alpha,
                                         data_range=data_range, reduction=reduction)


def dss(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", data_range: float = 1.0, dct_size: int = 8,
        sigma_weight: float = 1.55, kernel_size: int = 3, sigma_similarity: float = 1.5,
        percentile: float = 0.05) -> torch.Tensor:
    """piq.dss (no value-range check, as piq); turboiqa runs the published 8×8 DCT, 3×3 σ = 1.5 window and worst
    5 %: other values of those, values outside [0, data_range] and images under 11 whole blocks run piq's code."""
    if sigma_weight == 0 or sigma_similarity == 0:
        raise ValueError(f"Gaussian sigmas must not be 0, got sigma_weight: {sigma_weight} and "
                         f"sigma_similarity: {sigma_similarity}")
    if percentile <= 0 or percentile > 1:
        raise ValueError(f"Percentile must be in (0,1], got {percentile}")
    _check_inputs([x, y], (4, 4), None)
    for size in (dct_size, kernel_size):
        if size <= 0 or size > min(x.size(-1), x.size(-2)):
            raise ValueError("DCT and kernels sizes must be included in (0, input size]")
    blocks = (x.size(-2) // 8) * (x.size(-1) // 8)
    if ((dct_size, kernel_size, sigma_similarity, percentile) != (8, 3, 1.5, 0.05) or not sigma_weight > 0
            or not _grey_or_rgb(x) or blocks < 11 or not _in_range([x, y], data_range)):
        return _original("dss")(x, y, reduction, data_range, dct_size, sigma_weight, kernel_size, sigma_similarity,
                                percentile)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    return _reduce(_dss.dss(x, y, 1.0, "none", convention="piq", sigma_weight=sigma_weight), reduction)


def _in_range(tensors, data_range: float) -> bool:
    try:
        _check_values(tensors, data_range)
    except AssertionError:
        return False
    return True


class DSSLoss(_OneMinus):
    """piq.DSSLoss: ``1 - clamp(dss, 0, 1)``."""

    attribute = "dss"
    clamp = True

    def __init__(self, reduction: str = "mean", data_range: float = 1.0, dct_size: int = 8,
                 sigma_weight: float = 1.55, kernel_size: int = 3, sigma_similarity: float = 1.5,
                 percentile: float = 0.05) -> None:
        super().__init__()
        self.data_range, self.reduction = data_range, reduction
        self.dss = functools.partial(dss, reduction=reduction, data_range=data_range, dct_size=dct_size,
                                     sigma_weight=sigma_weight, kernel_size=kernel_size,
                                     sigma_similarity=sigma_similarity, percentile=percentile)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(prediction, target)


def vif_p(x: torch.Tensor, y: torch.Tensor, sigma_n_sq: float = 2.0, data_range: float = 1.0,
          reduction: str = "mean") -> torch.Tensor:
    """piq.vif_p: pixel-domain VIF of the luma 0.299R + 0.587G + 0.114B (grey as is); ``x`` distorted, ``y`` the
    reference (VIFp is not symmetric)."""
    _check_inputs([x, y], (4, 4), data_range)
    min_size = 41
    if x.size(-1) < min_size or x.size(-2) < min_size:
        raise ValueError(f"Invalid size of the input images, expected at least {min_size}x{min_size}.")
    if not _grey_or_rgb(x) or not sigma_n_sq > 0:
        return _original("vif_p")(x, y, sigma_n_sq, data_range, reduction)
    x, y = _scaled(x, data_range), _scaled(y, data_range)
    return _reduce(_vif.vif_p(x, y, 1.0, "none", convention="piq", sigma_n_sq=sigma_n_sq), reduction)


class VIFLoss(_Loss):
    """piq.VIFLoss: ``1 - clamp(vif_p, 0, 1)``."""

    def __init__(self, sigma_n_sq: float = 2.0, data_range: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.sigma_n_sq, self.data_range, self.reduction = sigma_n_sq, data_range, reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        score = vif_p(x, y, sigma_n_sq=self.sigma_n_sq, data_range=self.data_range, reduction=self.reduction)
        return 1 - torch.clamp(score, 0, 1)
