"""FSIM and FSIMc — L. Zhang, L. Zhang, X. Mou, D. Zhang, "FSIM: A feature similarity index for image quality
assessment", IEEE TIP 20(8), 2011.

Reference code: Lin Zhang's MATLAB ``FeatureSIM.m`` (2010, automatic downsampling) with the embedded ``phasecong2``
(P. Kovesi). ``convention=`` selects a whole set of choices that reproduces one original or peer (SPECS §5):

========  =============================================================================================================
'matlab'  FeatureSIM.m: YIQ 0.299/0.587/0.114, I 0.596/−0.274/−0.322, Q 0.211/−0.523/0.312 (unrounded);
          F = max(1, round(min(H,W)/256)) with MATLAB rounding, ``conv2(·, ones(F)/F², 'same')``
          (zero padding) sampled at (1:F:end); MATLAB median in the noise estimate, epsilon 1e-4;
          FSIMc takes Re[(S_I·S_Q)^λ] [default]
'piq'     piq.fsim: avg_pool2d(F) with Python rounding, 4-decimal YIQ, torch.median (lower middle value), machine
          epsilon in the phase congruency, |S_I·S_Q|^λ, and piq's transposed orientation grid
========  =============================================================================================================

``color`` (the argument every turboiqa metric uses for its colour handling): 'yiq' (default) scores the YIQ luma Y
(FSIM, like ssim/psnr/iw_ssim's ``color='yiq'``), 'yiq_chromatic' adds FeatureSIM.m's chromatic term on I and Q
(FSIMc). The constants T1…T4 are in 0–255 units, so inputs are rescaled from ``data_range`` to 0–255 internally. For
grayscale (C = 1) input FSIMc equals FSIM, as in FeatureSIM.m.

Flat (constant) images: every log-Gabor response is 0, and FeatureSIM.m's phasecong2 divides 0 by 0 (NaN phase
congruency, so NaN FSIM for any pair with a flat image). turboiqa takes the limits instead: phase congruency 0 on a
flat plane (1 under convention='piq', whose ε/ε piq computes too), and when neither image has any phase congruency
the PC-weighted mean becomes the plain mean of the local similarity: 1 for identical flat images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _ops
from ..colour import BT601
from ..dtypes import compute_dtype
from ..reference.phase_congruency import phase_congruency
from ..resample import auto_downsample_factor, avg_pool_downsample
from ..validate import check_pair, check_reduction, reduce, removed_arguments
from .module import MetricModule

T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03  # FeatureSIM.m, for 0–255 images

# Scharr /16 as written in FeatureSIM.m; conv2 flips it, which only changes the sign of each gradient.
SCHARR_X = ((3.0, 0.0, -3.0), (10.0, 0.0, -10.0), (3.0, 0.0, -3.0))
FSIM_COLORS = ("yiq", "yiq_chromatic")  # FSIM, FSIMc
PC_BANK_KEYS = {"nscale", "norient", "min_wavelength", "mult", "sigma_onf", "d_theta_on_sigma", "k"}


@dataclass(frozen=True)
class FsimConvention:
    yiq: tuple  # rows Y, I, Q of the RGB → YIQ matrix
    downsample: str  # 'conv2_same' (FeatureSIM.m) | 'avgpool' (piq)
    noise_median: str  # 'matlab' | 'lower'
    machine_eps: bool  # piq: finfo.eps in XEnergy and in both sums of PC instead of 1e-4 / nothing
    theta_axes: str  # 'matlab' | 'transposed'
    chroma_power: str  # 'complex_real' (MATLAB real((S_I.*S_Q).^λ)) | 'abs' (piq)


FSIM_CONVENTIONS = {
    "matlab": FsimConvention(
        yiq=(BT601, (0.596, -0.274, -0.322), (0.211, -0.523, 0.312)), downsample="conv2_same",
        noise_median="matlab", machine_eps=False, theta_axes="matlab", chroma_power="complex_real",
    ),
    "piq": FsimConvention(
        yiq=(BT601, (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112)), downsample="avgpool",
        noise_median="lower", machine_eps=True, theta_axes="transposed", chroma_power="abs",
    ),
}


def to_yiq(x: torch.Tensor, conv: FsimConvention, chromatic: bool, backend: str) -> torch.Tensor:
    """N×3×H×W RGB → N×1×H×W luma (plus I and Q planes when ``chromatic``); gray N×1×H×W is the luma itself.
    Float output, still in the input's units."""
    if x.shape[1] == 1:
        return x.to(compute_dtype(x.dtype))
    rows = conv.yiq if chromatic else conv.yiq[:1]
    return torch.cat([_ops.luma(x, row, 0.0, round_to_uint8=False, backend=backend) for row in rows], dim=1)


def downsample(x: torch.Tensor, conv: FsimConvention, backend: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    if conv.downsample == "avgpool":
        f = auto_downsample_factor(h, w, rounding="python")
        return x if f == 1 else avg_pool_downsample(x, f, backend)
    f = auto_downsample_factor(h, w, rounding="matlab")
    if f == 1:
        return x
    # conv2(x, ones(F)/F², 'same') keeps the full result from index ⌊F/2⌋+1, so output i averages
    # x(i-⌈F/2⌉+1 … i+⌊F/2⌋) with zeros outside (forward-looking for even F); then x(1:F:end, 1:F:end).
    pad = math.ceil(f / 2) - 1
    return _ops.box_downsample(x, f, pad, pad, math.ceil(h / f), math.ceil(w / f), "zeros", backend)


def gradient_magnitude(y: torch.Tensor) -> torch.Tensor:
    """√(Gx² + Gy²) of Scharr/16 with zero padding (conv2 'same')."""
    kx = torch.tensor(SCHARR_X, dtype=y.dtype, device=y.device) / 16
    grads = F.conv2d(y, torch.stack([kx, kx.t()])[:, None], padding=1)
    # |Gx + i·Gy|: its gradient is 0 where both are 0 (flat areas), where √(Gx² + Gy²) would give NaN.
    return torch.complex(grads[:, :1], grads[:, 1:]).abs()


def similarity(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    return (2 * a * b + c) / (a**2 + b**2 + c)


def chroma_factor(s: torch.Tensor, mode: str) -> torch.Tensor:
    """(S_I·S_Q)^λ. MATLAB raises a negative base to a complex power |s|^λ·e^{iλπ} and keeps the real part."""
    p = s.abs().pow(LAMBDA)
    if mode == "abs":
        return p
    return torch.where(s < 0, p * math.cos(LAMBDA * math.pi), p)


@removed_arguments(chromatic="FSIMc is color='yiq_chromatic' (FSIM: color='yiq', the default)")
def fsim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    color: str = "yiq",
    convention: str = "matlab",
    filter_bank: dict | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """FSIM (or FSIMc with ``color='yiq_chromatic'``) of each image pair: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; FSIM is symmetric in the two):
    N×C×H×W (or C×H×W / H×W) with C = 1 or 3, uint8 (data_range=255) or float in [0, data_range]. ``color``:
    'yiq' (FSIM) or 'yiq_chromatic' (FSIMc). ``backend`` is passed to the native colour, downsampling and
    phase-congruency energy ops; the log-Gabor filtering uses torch's FFTs. ``filter_bank`` overrides
    phasecong2's filter bank (keys ``nscale`` 4, ``norient`` 4, ``min_wavelength`` 6, ``mult`` 2, ``sigma_onf``
    0.55, ``d_theta_on_sigma`` 1.2, ``k`` 2 — the values FSIM was published with).
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if convention not in FSIM_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(FSIM_CONVENTIONS)}, got {convention!r}")
    conv = FSIM_CONVENTIONS[convention]
    if color not in FSIM_COLORS:
        raise ValueError(f"color must be one of {FSIM_COLORS} (FSIM, FSIMc), got {color!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"FSIM needs 1 (gray) or 3 (RGB) channels, got {x.shape[1]}")
    bank = dict(filter_bank or {})
    unknown = set(bank) - PC_BANK_KEYS
    if unknown:
        raise TypeError(f"filter_bank has unknown key(s) {sorted(unknown)}; allowed: {sorted(PC_BANK_KEYS)}")
    chromatic = color == "yiq_chromatic" and x.shape[1] == 3  # FeatureSIM.m: FSIMc = FSIM for grayscale input

    planes = []
    for t in (x, y):
        # FeatureSIM.m converts to YIQ and then box-filters each plane; both steps are linear, so they commute up to
        # rounding, and filtering RGB first leaves the colour conversion F² times less work (and is piq's order).
        t = to_yiq(downsample(t, conv, backend), conv, chromatic, backend)
        planes.append(t if data_range == 255 else t * (255 / float(data_range)))
    x_yiq, y_yiq = planes

    eps = torch.finfo(x_yiq.dtype).eps
    pc_options = {"epsilon": eps if conv.machine_eps else 1e-4, "pc_eps": eps if conv.machine_eps else 0.0,
                  "noise_median": conv.noise_median, "theta_axes": conv.theta_axes, **bank}
    # Both images in one batch: one FFT call, and the filter bank is looked up once.
    luma = torch.cat([x_yiq[:, :1], y_yiq[:, :1]])
    pc_x, pc_y = phase_congruency(luma, **pc_options, backend=backend).chunk(2)
    grad_x, grad_y = gradient_magnitude(luma).chunk(2)

    pc_max = torch.maximum(pc_x, pc_y)
    local = similarity(grad_x, grad_y, T2) * similarity(pc_x, pc_y, T1)
    score = local * pc_max
    if chromatic:
        s_iq = similarity(x_yiq[:, 1:2], y_yiq[:, 1:2], T3) * similarity(x_yiq[:, 2:3], y_yiq[:, 2:3], T4)
        chroma = chroma_factor(s_iq, conv.chroma_power)
        score, local = score * chroma, local * chroma
    # FSIM is the PC-weighted mean of the local similarity. Two images without any phase congruency (both flat, in
    # the MATLAB convention) leave every weight 0 and FeatureSIM.m at 0/0 = NaN; with equal weights (their limit)
    # it is the plain mean: 1 for identical flat images. The safe denominator keeps the gradient finite.
    weight = pc_max.sum(dim=(1, 2, 3))
    weighted = weight > 0
    value = torch.where(weighted, score.sum(dim=(1, 2, 3)) / torch.where(weighted, weight, torch.ones_like(weight)),
                        local.mean(dim=(1, 2, 3)))
    return reduce(value, reduction)


class FSIM(MetricModule):
    """Module form of :func:`fsim` (``color='yiq_chromatic'`` for FSIMc); ``loss=True`` returns 1 - FSIM."""

    metric = staticmethod(fsim)
