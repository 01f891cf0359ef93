"""PU21 — perceptually uniform encoding of absolute luminance, and SDR metrics applied to HDR content through it.

Paper: R. K. Mantiuk and M. Azimi, "PU21: A novel perceptually uniform encoding for adapting existing quality
metrics for HDR", Picture Coding Symposium (PCS) 2021. Reference code: github.com/gfxdisp/pu21 (MATLAB) and the
``PU`` class of ColorVideoVDP (pip ``cvvdp`` 0.5.7, ``pycvvdp/utils.py``), whose numbers these functions reproduce.

The encoding maps luminance L in cd/m² (clipped to [L_min, L_max] = [0.005, 10000]) to PU units

    V = p6 · ( ((p0 + p1·L^p3) / (1 + p2·L^p3))^p4 − p5 ),

fitted so that one PU step is roughly one detection threshold; PU(100 cd/m²) ≈ 256 (like an 8-bit SDR code) with
the default 'banding_glare' parameters. :data:`PU21_PARAMETERS` holds the four published parameter sets:
'banding' and 'peaks' (fitted to band/peak sensitivity), each with a '_glare' variant that models intra-ocular glare
(the recommended default).

How a metric is applied (as the paper recommends): display-encoded pixels go through a display model (turboiqa's
:mod:`turboiqa.display`, same as cvvdp's) to absolute luminance, are PU-encoded, and the metric runs on the PU
values. :func:`pu21` wraps any turboiqa metric this way (PU values divided by the PU value of the display's
brightest output, so the wrapped metric sees [0, 1] data with ``data_range=1``).

============================  =======================================================================================
function                      what it computes
============================  =======================================================================================
``pu21_encode``/``_decode``   L (cd/m²) ↔ PU units, any of the four parameter sets
``pu21(metric)``              ``metric`` on PU(display(x)) / PU(display white), data_range 1
``pu21_psnr``                 PSNR of PU values with peak PU(``peak_luminance`` = 100 cd/m²), the luminance (Y) of the
                              display's linear RGB — cvvdp's 'PU21-PSNR-Y' (``pycvvdp.pu_psnr_y``); higher = better
``pu21_ssim``                 ``pu21(ssim)``: SSIM of the PU-encoded luminance; higher = better
============================  =======================================================================================

Inputs of a display with a 'linear' EOTF (e.g. 'standard_hdr_linear') are absolute RGB/luminance in cd/m² (no
``data_range`` scaling); every other display takes display-encoded values in [0, data_range].
"""
from __future__ import annotations

import functools
import math

import torch

from .. import display as _display
from ..dtypes import compute_dtype
from ..validate import as_batch, check_pair, check_reduction, reduce

PU21_PARAMETERS = {
    "banding": (1.070275272, 0.4088273932, 0.153224308, 0.2520326168, 1.063512885, 1.14115047, 521.4527484),
    "banding_glare": (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627, 0.09150303166, 0.9099517204,
                      596.3148142),
    "peaks": (1.043882782, 0.6459495343, 0.3194584211, 0.374025247, 1.114783422, 1.095360363, 384.9217577),
    "peaks_glare": (816.885024, 1479.463946, 0.001253215609, 0.9329636822, 0.06746643971, 1.573435413, 419.6006374),
}
PU21_L_MIN = 0.005
PU21_L_MAX = 10000.0


def _params(pu_type: str):
    if pu_type not in PU21_PARAMETERS:
        raise ValueError(f"pu_type must be one of {sorted(PU21_PARAMETERS)}, got {pu_type!r}")
    return PU21_PARAMETERS[pu_type]


def pu21_encode(lum, pu_type: str = "banding_glare", l_min: float = PU21_L_MIN, l_max: float = PU21_L_MAX):
    """Absolute luminance (cd/m², tensor or number) → PU21 units; values are clipped to [l_min, l_max] first."""
    p = _params(pu_type)
    if not isinstance(lum, torch.Tensor):
        lum = torch.as_tensor(lum, dtype=torch.float64)
    lp = lum.clamp(l_min, l_max) ** p[3]
    return p[6] * (((p[0] + p[1] * lp) / (1 + p[2] * lp)) ** p[4] - p[5])


def pu21_decode(v, pu_type: str = "banding_glare"):
    """PU21 units → absolute luminance in cd/m² (the inverse of :func:`pu21_encode` inside [l_min, l_max])."""
    p = _params(pu_type)
    if not isinstance(v, torch.Tensor):
        v = torch.as_tensor(v, dtype=torch.float64)
    vp = (v / p[6] + p[5]).clamp(min=0) ** (1 / p[4])
    return ((vp - p[0]).clamp(min=0) / (p[1] - p[2] * vp)) ** (1 / p[3])


@functools.lru_cache(maxsize=None)
def _pu_scalar(lum: float, pu_type: str) -> float:
    return float(pu21_encode(torch.tensor(lum, dtype=torch.float64), pu_type))


def _white_luminance(photo: _display.DisplayPhotometry) -> float:
    """The brightest light the display emits (white, peak)."""
    if photo.is_linear:
        v = torch.tensor([photo.peak], dtype=torch.float64)
    else:
        v = torch.ones(1, 3, 1, 1, dtype=torch.float64)
    return float(photo.forward(v).max())


def _to_luminance(x, data_range, photo: _display.DisplayPhotometry, color: str, name: str):
    """N×C×H×W display-encoded (or, for linear displays, absolute) input → absolute light, N×1 (Y) or N×C."""
    dtype = compute_dtype(x.dtype)
    v = x.to(dtype)
    if not photo.is_linear:
        v = v / data_range
    lin = photo.forward(v)
    if color == "y" and lin.shape[1] == 3:
        w = torch.tensor(photo.luminance_weights(), dtype=dtype, device=lin.device).view(1, 3, 1, 1)
        lin = (lin * w).sum(1, keepdim=True)
    elif color not in ("y", "rgb"):
        raise ValueError(f"color must be 'y' or 'rgb', got {color!r}")
    elif lin.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels, got {lin.shape[1]}")
    return lin


def _check_inputs(x, y, data_range, photo):
    if photo.is_linear:  # absolute cd/m²: finite and >= 0, no range
        x, y = as_batch(x, "x"), as_batch(y, "y")
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        if not x.dtype.is_floating_point or x.dtype != y.dtype:
            raise TypeError(f"linear-light x and y must be floating point of one dtype, got {x.dtype} and {y.dtype}")
        for t, n in ((x, "x"), (y, "y")):
            if not torch.isfinite(t).all() or (t < 0).any():
                raise ValueError(f"{n} must hold finite luminance >= 0 (cd/m²) for a linear display")
        return x, y
    return check_pair(x, y, data_range)


def pu21(metric, *, display="standard_4k", color: str = "y", pu_type: str = "banding_glare"):
    """Wrap a turboiqa metric ``metric(x, y, data_range, reduction, **kw)`` to run on PU21-encoded images.

    Returns ``f(x, y, data_range=1.0, reduction='mean', **kw)``: x (distorted) and y (reference) go through the
    display model (``display``: a name of cvvdp's display_models.json, a dict of parameters or a
    :class:`turboiqa.display.Display`) to absolute light, ``color='y'`` keeps their luminance (``'rgb'`` each linear
    channel), are PU21-encoded and divided by PU(display white), and ``metric`` scores them with data_range=1.
    The direction is the wrapped metric's.
    """
    disp = _display.resolve_display(display)
    photo = disp.photometry
    scale = _pu_scalar(_white_luminance(photo), pu_type)

    def wrapped(x, y, data_range: float = 1.0, reduction: str = "mean", **kwargs):
        x, y = _check_inputs(x, y, data_range, photo)
        px = pu21_encode(_to_luminance(x, data_range, photo, color, "x"), pu_type) / scale
        py = pu21_encode(_to_luminance(y, data_range, photo, color, "y"), pu_type) / scale
        return metric(px.clamp(0, 1), py.clamp(0, 1), 1.0, reduction, **kwargs)

    name = getattr(metric, "__name__", "metric")
    wrapped.__name__ = f"pu21_{name}"
    wrapped.__doc__ = f"{name} on PU21-encoded luminance (display {disp.name!r}); see turboiqa.pu21."
    if hasattr(metric, "lower_is_better"):
        wrapped.lower_is_better = metric.lower_is_better
    return wrapped


def pu21_psnr(x, y, data_range: float = 1.0, reduction: str = "mean", *, display="standard_4k", color: str = "y",
              peak_luminance: float = 100.0, pu_type: str = "banding_glare"):
    """PSNR (dB) of PU21-encoded luminance: 20·log10(PU(peak_luminance) / RMSE of the PU values), per image.
    ``x`` distorted, ``y`` reference (symmetric), display-encoded for ``display``.

    With the defaults this is cvvdp's PU21-PSNR-Y (``pycvvdp.pu_psnr_y``): the display model's linear RGB → Y,
    PU21 'banding_glare', peak = PU(100 cd/m²) (an SDR diffuse white), RMSE over all pixels. ``color='rgb'`` uses
    every linear channel (cvvdp's pu_psnr_rgb2020 additionally converts to BT.2020 primaries). Identical images
    give +inf. Higher = better.
    """
    check_reduction(reduction)
    photo = _display.resolve_display(display).photometry
    x, y = _check_inputs(x, y, data_range, photo)
    px = pu21_encode(_to_luminance(x, data_range, photo, color, "x"), pu_type)
    py = pu21_encode(_to_luminance(y, data_range, photo, color, "y"), pu_type)
    mse = (px - py).square().flatten(1).mean(1)
    value = 20 * torch.log10(_pu_scalar(float(peak_luminance), pu_type) / mse.sqrt())
    return reduce(value, reduction)


def pu21_ssim(x, y, data_range: float = 1.0, reduction: str = "mean", *, display="standard_4k",
              pu_type: str = "banding_glare", **ssim_kwargs):
    """SSIM of PU21-encoded luminance (``x`` distorted, ``y`` reference, display-encoded for ``display``):
    ``pu21(ssim, display=display)`` (PU values divided by PU(display white),
    data_range 1; ``ssim_kwargs`` go to :func:`turboiqa.metrics.ssim.ssim`). Higher = better."""
    from .ssim import ssim
    return pu21(ssim, display=display, color="y", pu_type=pu_type)(x, y, data_range, reduction, **ssim_kwargs)


pu21_psnr.lower_is_better = False
pu21_ssim.lower_is_better = False


from .module import MetricModule  # noqa: E402  (after the functionals, which the modules wrap)


class PU21PSNR(MetricModule):
    """Module form of :func:`pu21_psnr`."""

    metric = staticmethod(pu21_psnr)
    bounded_similarity = False


class PU21SSIM(MetricModule):
    """Module form of :func:`pu21_ssim` (``loss=True`` gives 1 - SSIM)."""

    metric = staticmethod(pu21_ssim)
