"""turboiqa's metrics under pyiqa's names: ``turboiqa.create_metric('ssim')`` behaves like ``pyiqa.create_metric``.

The object returned is an ``nn.Module`` called ``metric(distorted, reference)`` with N×C×H×W tensors in [0, 1] or
image file paths, whose attributes (``metric_name``, ``lower_better``, ``score_range``, ``metric_mode``,
``as_loss``, ``device``) and return shapes and dtypes are pyiqa 0.1.16's. Each name is built with pyiqa's default
options for it and the turboiqa convention that reproduces its numbers:

===========  ==================================================================================================
psnr         ``psnr(eps=1e-8)`` on RGB (``test_y_channel=True``: on the YIQ luma, as psnry)
psnry        ``psnr(color='yiq', eps=1e-8)``
ssim         ``ssim(convention='pyiqa')``: integer 0–255 YIQ luma in float64, per-pixel cs clamp
ssimc        ``ssim(convention='pyiqa', color='per_channel')``
ms_ssim      ``ms_ssim(convention='pyiqa')`` with Wang's weights as float32 constants, as pyiqa
fsim         ``fsim(convention='piq', color='yiq_chromatic')`` (pyiqa's FSIM is piq's)
gmsd         ``gmsd(convention='pyiqa')`` (``test_y_channel=False``: ``color='per_channel'``)
vsi          ``vsi(convention='pyiqa')``
vif          ``vif(convention='pyiqa')`` (the wavelet-domain VIF of the rounded YIQ luma)
nlpd         ``nlpd(convention='pyiqa')`` (YIQ luma; only pyiqa's defaults channels=1, test_y_channel=True, k=6)
cw_ssim      ``cw_ssim(convention='pyiqa', level=level, orientations=ori)`` (``guardb=0``, ``K=0`` only)
mad          ``mad(convention='pyiqa')`` (every RGB channel; ``test_y_channel=True``: ``color='yiq'``)
lpips        ``LPIPS(net='alex')``; lpips-vgg: ``LPIPS(net='vgg')``
dists        ``DISTS()``
===========  ==================================================================================================

Options are pyiqa's per-metric keyword arguments (``test_y_channel``, ``crop_border``, ``downsample``,
``color_space``, ``chromatic``, ``net``, ``pretrained_model_path``, …). One turboiqa cannot honour raises
:class:`UnsupportedOption` (a ValueError) naming it; ``turboiqa.compat.pyiqa.create_metric`` then hands the call to
an installed pyiqa. Unlike pyiqa, input values are always checked to lie in [0, 1] (a ValueError), losses too.
"""
from __future__ import annotations

import fnmatch
import inspect
import os
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .metrics.dists import DISTS
from .metrics.cw_ssim import cw_ssim
from .metrics.fsim import fsim
from .metrics.gmsd import gmsd
from .metrics.lpips import LPIPS
from .metrics.mad import mad
from .metrics.ms_ssim import WANG_WEIGHTS, ms_ssim
from .metrics.nlpd import nlpd
from .metrics.psnr import psnr
from .metrics.ssim import ssim
from .metrics.vif import vif
from .metrics.vsi import vsi


class UnsupportedOption(ValueError):
    """A pyiqa option (or option value) that turboiqa does not implement for this metric."""


@dataclass(frozen=True)
class MetricEntry:
    build: type  # nn.Module class taking the metric's options as keywords
    lower_better: bool
    score_range: str  # pyiqa's string
    options: dict = field(default_factory=dict)  # pyiqa's defaults for the name


def _unsupported(metric: str, option: str, value, allowed: str) -> UnsupportedOption:
    return UnsupportedOption(f"create_metric({metric!r}): turboiqa does not implement {option}={value!r} "
                             f"(it supports {allowed}); turboiqa.compat.pyiqa.create_metric runs pyiqa's own "
                             "code for it when pyiqa is installed")


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:-border, border:-border] if border else x


def _check_crop_border(metric: str, crop_border) -> int:
    if isinstance(crop_border, float) and crop_border.is_integer():
        crop_border = int(crop_border)  # pyiqa's SSIM default is 0.0
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"create_metric({metric!r}): crop_border must be an integer >= 0, got {crop_border!r}")
    return crop_border


def _luma_color(metric: str, test_y_channel: bool, color_space: str) -> str:
    """turboiqa's ``color`` for pyiqa's test_y_channel/color_space pair."""
    if not test_y_channel:
        return "rgb"
    space = str(color_space).lower()
    if space not in ("yiq", "ycbcr"):
        raise _unsupported(metric, "color_space", color_space, "'yiq' and 'ycbcr'")
    return space


class PyiqaPSNR(nn.Module):
    """pyiqa's PSNR: −10·log10(MSE + eps) of [0, 1] images, float32 (N,)."""

    def __init__(self, metric_name="psnr", test_y_channel=False, crop_border=0, eps=1e-8, data_range=1.0,
                 color_space="yiq"):
        super().__init__()
        if data_range != 1.0:  # pyiqa scales only the luma by data_range: nothing turboiqa reproduces
            raise _unsupported(metric_name, "data_range", data_range, "1.0")
        self.color = _luma_color(metric_name, test_y_channel, color_space)
        self.crop_border = _check_crop_border(metric_name, crop_border)
        self.eps = float(eps)

    def forward(self, x, y):
        color = self.color if x.shape[1] == 3 else "rgb"
        return psnr(x, y, 1.0, "none", color=color, crop_border=self.crop_border, eps=self.eps)


class PyiqaSSIM(nn.Module):
    """pyiqa's SSIM (ssim, ssimc): ``ssim(convention='pyiqa')``, float64 (N,)."""

    def __init__(self, metric_name="ssim", test_y_channel=True, downsample=False, color_space="yiq",
                 crop_border=0, channels=3):
        super().__init__()
        color = _luma_color(metric_name, test_y_channel, color_space)
        self.color = "per_channel" if color == "rgb" else color
        self.downsample = "avgpool" if downsample else None
        self.crop_border = _check_crop_border(metric_name, crop_border)

    def forward(self, x, y):
        x, y = _crop(x, self.crop_border), _crop(y, self.crop_border)
        return ssim(x, y, 1.0, "none", convention="pyiqa", color=self.color, downsample=self.downsample)


class PyiqaMSSSIM(nn.Module):
    """pyiqa's MS-SSIM: ``ms_ssim(convention='pyiqa')`` with Wang's weights as float32 constants, float64 (N,)."""

    def __init__(self, metric_name="ms_ssim", test_y_channel=True, downsample=False, is_prod=True,
                 color_space="yiq", channels=3):
        super().__init__()
        if downsample:  # pyiqa re-applies ssim.m's downsampling at every scale
            raise _unsupported(metric_name, "downsample", downsample, "False")
        if not is_prod:
            raise _unsupported(metric_name, "is_prod", is_prod, "True, the product of the scales")
        color = _luma_color(metric_name, test_y_channel, color_space)
        self.color = "per_channel" if color == "rgb" else color
        self.register_buffer("scale_weights", torch.tensor(WANG_WEIGHTS, dtype=torch.float32), persistent=False)

    def forward(self, x, y):
        return ms_ssim(x, y, 1.0, "none", convention="pyiqa", color=self.color, scale_weights=self.scale_weights)


class PyiqaFSIM(nn.Module):
    """pyiqa's FSIM (FSIMc by default): ``fsim(convention='piq')`` on 0–255 values, (N,) in the input dtype."""

    def __init__(self, metric_name="fsim", chromatic=True, scales=4, orientations=4, min_length=6, mult=2,
                 sigma_f=0.55, delta_theta=1.2, k=2.0):
        super().__init__()
        self.metric_name, self.chromatic = metric_name, bool(chromatic)
        self.bank = {"nscale": scales, "norient": orientations, "min_wavelength": min_length, "mult": mult,
                     "sigma_onf": sigma_f, "d_theta_on_sigma": delta_theta, "k": k}

    def forward(self, x, y):
        if self.chromatic and x.shape[1] != 3:
            raise ValueError(f"create_metric({self.metric_name!r}) with chromatic=True (FSIMc) needs RGB input, "
                             f"got {x.shape[1]} channel(s); pass chromatic=False for grey images")
        color = "yiq_chromatic" if self.chromatic else "yiq"
        return fsim(x * 255, y * 255, 255, "none", color=color, convention="piq", filter_bank=self.bank)


class PyiqaLPIPS(nn.Module):
    """pyiqa's LPIPS v0.1 (lpips, lpips-vgg): float32 (N, 1); ``pretrained_model_path`` names the heads file."""

    def __init__(self, metric_name="lpips", net="alex", version="0.1", pretrained_model_path=None, pretrained=True):
        super().__init__()
        if net not in ("alex", "vgg", "squeeze"):
            raise _unsupported(metric_name, "net", net, "'alex', 'vgg' and 'squeeze'")
        if str(version) != "0.1":
            raise _unsupported(metric_name, "version", version, "'0.1'")
        if not pretrained:
            raise _unsupported(metric_name, "pretrained", pretrained, "True")
        self.lpips = LPIPS(reduction="none", net=net, head_weights=pretrained_model_path)

    def forward(self, x, y):
        return self.lpips(x, y).unsqueeze(1)


class PyiqaDISTS(nn.Module):
    """pyiqa's DISTS (no resize): float32 (N, 1); ``pretrained_model_path`` names the alpha/beta file."""

    def __init__(self, metric_name="dists", pretrained_model_path=None, pretrained=True):
        super().__init__()
        if not pretrained:
            raise _unsupported(metric_name, "pretrained", pretrained, "True")
        self.dists = DISTS(reduction="none", alpha_beta=pretrained_model_path)

    def forward(self, x, y):
        return self.dists(x, y).unsqueeze(1)


class PyiqaGMSD(nn.Module):
    """pyiqa's GMSD: ``gmsd(convention='pyiqa')`` (rounded YIQ luma; every channel with test_y_channel=False)."""

    def __init__(self, metric_name="gmsd", channels=3, test_y_channel=True):
        super().__init__()
        self.color = "yiq_uint8" if test_y_channel else "per_channel"

    def forward(self, x, y):
        return gmsd(x, y, 1.0, "none", convention="pyiqa", color=self.color)


VSI_OPTIONS = {"c1": 1.27, "c2": 386.0, "c3": 130.0, "alpha": 0.4, "beta": 0.02, "data_range": 1.0, "omega_0": 0.021,
               "sigma_f": 1.34, "sigma_d": 145.0, "sigma_c": 0.001}


class PyiqaVSI(nn.Module):
    """pyiqa's VSI: ``vsi(convention='pyiqa')``, float64 (N,); the published constants only."""

    def __init__(self, metric_name="vsi", c1=1.27, c2=386.0, c3=130.0, alpha=0.4, beta=0.02, data_range=1.0,
                 omega_0=0.021, sigma_f=1.34, sigma_d=145.0, sigma_c=0.001):
        super().__init__()
        given = {"c1": c1, "c2": c2, "c3": c3, "alpha": alpha, "beta": beta, "data_range": data_range,
                 "omega_0": omega_0, "sigma_f": sigma_f, "sigma_d": sigma_d, "sigma_c": sigma_c}
        for option, value in given.items():
            if value != VSI_OPTIONS[option]:
                raise _unsupported(metric_name, option, value, f"{VSI_OPTIONS[option]!r}")

    def forward(self, x, y):
        return vsi(x, y, 1.0, "none", convention="pyiqa")


class PyiqaVIF(nn.Module):
    """pyiqa's VIF (wavelet domain): ``vif(convention='pyiqa')``; one luma channel, 4 levels, 6 orientations."""

    def __init__(self, metric_name="vif", channels=1, level=4, ori=6):
        super().__init__()
        for option, value, default in (("channels", channels, 1), ("level", level, 4), ("ori", ori, 6)):
            if value != default:
                raise _unsupported(metric_name, option, value, repr(default))

    def forward(self, x, y):
        return vif(x, y, 1.0, "none", convention="pyiqa")


def _only_defaults(metric_name: str, given: dict) -> None:
    """Raise UnsupportedOption for the first option that differs from pyiqa's default (given: {name: (value,
    default)})."""
    for option, (value, default) in given.items():
        if value != default:
            raise _unsupported(metric_name, option, value, repr(default))


class PyiqaNLPD(nn.Module):
    """pyiqa's NLPD: ``nlpd(convention='pyiqa')`` on the unrounded YIQ luma, float32 (N,)."""

    def __init__(self, metric_name="nlpd", channels=1, test_y_channel=True, k=6, filt=None):
        super().__init__()
        _only_defaults(metric_name, {"channels": (channels, 1), "test_y_channel": (test_y_channel, True),
                                     "k": (k, 6), "filt": (filt, None)})

    def forward(self, x, y):
        return nlpd(x, y, 1.0, "none", convention="pyiqa")


class PyiqaCWSSIM(nn.Module):
    """pyiqa's CW-SSIM: ``cw_ssim(convention='pyiqa')`` on the rounded YIQ luma; pyiqa's level and ori."""

    def __init__(self, metric_name="cw_ssim", channels=1, level=4, ori=8, guardb=0, K=0, test_y_channel=True):
        super().__init__()
        _only_defaults(metric_name, {"channels": (channels, 1), "guardb": (guardb, 0), "K": (K, 0),
                                     "test_y_channel": (test_y_channel, True)})
        self.level, self.orientations = level, ori

    def forward(self, x, y):
        return cw_ssim(x.double(), y.double(), 1.0, "none", level=self.level, orientations=self.orientations,
                       convention="pyiqa")


class PyiqaMAD(nn.Module):
    """pyiqa's MAD: ``mad(convention='pyiqa')`` in float64 (N,), every RGB channel (``test_y_channel=True``: the YIQ luma)."""

    def __init__(self, metric_name="mad", channels=3, test_y_channel=False):
        super().__init__()
        self.color = "yiq" if test_y_channel else "rgb"

    def forward(self, x, y):
        return mad(x.double(), y.double(), 1.0, "none", color=self.color, convention="pyiqa")  # pyiqa: float64


# pyiqa 0.1.16's names, defaults (default_model_configs.py), lower_better and score_range strings.
METRICS = {
    "psnr": MetricEntry(PyiqaPSNR, False, "~0, ~40", {"test_y_channel": False}),
    "psnry": MetricEntry(PyiqaPSNR, False, "~0, ~60", {"test_y_channel": True}),
    "ssim": MetricEntry(PyiqaSSIM, False, "0, 1", {"downsample": False, "test_y_channel": True}),
    "ssimc": MetricEntry(PyiqaSSIM, False, "0, 1", {"downsample": False, "test_y_channel": False}),
    "ms_ssim": MetricEntry(PyiqaMSSSIM, False, "0, 1", {"downsample": False, "test_y_channel": True,
                                                        "is_prod": True}),
    "fsim": MetricEntry(PyiqaFSIM, False, "0, 1", {"chromatic": True}),
    "gmsd": MetricEntry(PyiqaGMSD, True, "0, ~1", {"test_y_channel": True}),
    "vsi": MetricEntry(PyiqaVSI, False, "0, ~1"),
    "vif": MetricEntry(PyiqaVIF, False, "0, ~1"),
    "nlpd": MetricEntry(PyiqaNLPD, True, "0, 1", {"channels": 1, "test_y_channel": True}),
    "cw_ssim": MetricEntry(PyiqaCWSSIM, False, "0, 1", {"channels": 1, "level": 4, "ori": 8,
                                                         "test_y_channel": True}),
    "mad": MetricEntry(PyiqaMAD, True, "0, ~"),
    "lpips": MetricEntry(PyiqaLPIPS, True, "0, 1", {"net": "alex", "version": "0.1"}),
    "lpips-vgg": MetricEntry(PyiqaLPIPS, True, "0, 1", {"net": "vgg", "version": "0.1"}),
    "dists": MetricEntry(PyiqaDISTS, True, "0, 1"),
}
LOSS_REDUCTIONS = ("mean", "sum", "none")


def read_rgb(path) -> torch.Tensor:
    """An image file as pyiqa reads one: 1×3×H×W float32 RGB in [0, 1] (grey replicated to three channels), here
    through :mod:`turboiqa.images` at the file's real bit depth (a 16-bit PNG is divided by 65535)."""
    from .images import read_image

    image = read_image(path)
    pixels = image.pixels.to(torch.float32) / image.peak
    return pixels.expand(-1, 3, -1, -1).contiguous() if pixels.shape[1] == 1 else pixels


def _as_batch(image, role: str) -> torch.Tensor:
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image)
    if not torch.is_tensor(image):
        raise TypeError(f"{role} must be an N×C×H×W tensor in [0, 1] or an image file path, "
                        f"got {type(image).__name__}")
    if image.dim() != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"{role} must be a 4-D N×C×H×W tensor with C = 1 or 3, got shape {tuple(image.shape)}")
    return image


class Metric(nn.Module):
    """What :func:`create_metric` returns: ``metric(distorted, reference)`` → per-image scores (pyiqa's shapes and
    dtypes), or with ``as_loss=True`` the differentiable score reduced by ``loss_reduction``."""

    metric_mode = "FR"

    def __init__(self, metric_name: str, net: nn.Module, entry: MetricEntry, as_loss: bool, device,
                 loss_reduction: str = "mean"):
        super().__init__()
        self.metric_name, self.net = metric_name, net
        self.lower_better, self.score_range = entry.lower_better, entry.score_range
        self.as_loss, self.loss_reduction, self.loss_weight = as_loss, loss_reduction, None
        # Follows .to()/.cuda(): the device inputs are moved to, like pyiqa's dummy parameter.
        self.register_buffer("_device_probe", torch.empty(0), persistent=False)
        self.to(device)

    @property
    def device(self) -> torch.device:
        return self._device_probe.device

    def forward(self, target, ref=None, **kwargs):
        """``target`` the distorted image(s), ``ref`` the reference (turboiqa's and pyiqa's order)."""
        if kwargs:
            raise TypeError(f"{self.metric_name} takes no options at call time, got {sorted(kwargs)}")
        if ref is None:
            raise ValueError(f"{self.metric_name} is a full-reference metric: pass the reference image as ref")
        device = self.device
        target, ref = _as_batch(target, "target").to(device), _as_batch(ref, "ref").to(device)
        with torch.set_grad_enabled(self.as_loss):  # pyiqa: gradients only for losses
            score = self.net(target, ref)
        if not self.as_loss:
            return score
        # pyiqa's loss is the score itself, reduced: a higher-better metric (SSIM) is *maximised* by minimising
        # 1 - loss, which is the caller's to write, as with pyiqa.
        if self.loss_reduction == "none":
            return score
        return score.mean() if self.loss_reduction == "mean" else score.sum()

    def extra_repr(self) -> str:
        return f"metric_name={self.metric_name!r}, as_loss={self.as_loss}"


def create_metric(metric_name: str, as_loss: bool = False, device=None, **kwargs) -> Metric:
    """pyiqa's ``create_metric`` for the names turboiqa computes (:func:`list_models`).

    ``device=None`` picks CUDA when available, else the CPU. ``kwargs``: pyiqa's options of the metric (its
    defaults apply, as in pyiqa) plus pyiqa's ``loss_reduction`` ('mean', 'sum', 'none'); ``seed`` is accepted
    and unused (every turboiqa metric is deterministic)."""
    if metric_name not in METRICS:
        raise ValueError(f"turboiqa has no metric {metric_name!r}; it computes {', '.join(list_models())}. "
                         "Every other pyiqa metric comes from pyiqa itself: turboiqa.compat.pyiqa.create_metric "
                         "passes such names to an installed pyiqa")
    entry = METRICS[metric_name]
    loss_reduction = kwargs.pop("loss_reduction", "mean")
    if loss_reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}, got {loss_reduction!r}")
    if kwargs.pop("loss_weight", None) is not None:
        raise _unsupported(metric_name, "loss_weight", "<weights>", "None")
    if not kwargs.pop("check_input_range", True):
        raise _unsupported(metric_name, "check_input_range", False, "True: input is always checked")
    kwargs.pop("seed", None)
    if kwargs.pop("metric_mode", "FR") != "FR":
        raise ValueError(f"{metric_name} is a full-reference ('FR') metric")
    options = {**entry.options, **kwargs}
    accepted = set(inspect.signature(entry.build).parameters) - {"metric_name"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UnsupportedOption(f"create_metric({metric_name!r}) got option(s) {unknown} that turboiqa does not "
                                f"implement (it supports {sorted(accepted)} and loss_reduction); "
                                "turboiqa.compat.pyiqa.create_metric runs pyiqa's own code for them when pyiqa is "
                                "installed")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    net = entry.build(metric_name=metric_name, **options)
    return Metric(metric_name, net, entry, bool(as_loss), torch.device(device), loss_reduction)


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def list_models(metric_mode: str | None = None, filter="", exclude_filters="") -> list[str]:
    """The names :func:`create_metric` takes, as pyiqa's ``list_models``: ``metric_mode`` 'FR' / 'NR' / None,
    ``filter`` and ``exclude_filters`` fnmatch patterns (a string or a list), naturally sorted."""
    if metric_mode not in (None, "FR", "NR"):
        raise ValueError(f"metric_mode must be None, 'FR' or 'NR', got {metric_mode!r}")
    names = [] if metric_mode == "NR" else list(METRICS)  # turboiqa's metrics are all full-reference
    if filter:
        patterns = filter if isinstance(filter, (list, tuple)) else [filter]
        names = {n for p in patterns for n in fnmatch.filter(names, p)}
    if exclude_filters:
        patterns = exclude_filters if isinstance(exclude_filters, (list, tuple)) else [exclude_filters]
        names = [n for n in names if not any(fnmatch.fnmatch(n, p) for p in patterns)]
    return sorted(names, key=_natural_key)
