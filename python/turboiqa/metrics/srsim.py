"""SR-SIM — spectral residual based similarity. Higher = better (1 for identical images).

L. Zhang, H. Li, "SR-SIM: a fast and high performance IQA index based on spectral residual", ICIP 2012.
Reference code: Lin Zhang's MATLAB ``SR_SIM.m`` (with its ``spectralResidueSaliency``, after X. Hou and L. Zhang,
CVPR 2007).

On 0–255 luma Y = 0.299R + 0.587G + 0.114B: a box mean of F = max(1, round(min(H, W)/256)) sampled every F pixels
(``conv2(·, 'same')``, zero padding); a visual saliency map per image — ``imresize(Y, 0.25)`` (MATLAB bicubic with
antialiasing), the FFT's log amplitude minus its 3×3 mean ('replicate' border) recombined with the phase, |IFFT|²,
a ``gaussian_size``² Gaussian (σ = 3.8, zero border; an even size centres as MATLAB's imfilter does), scaled to
[0, 1] by its min and max (``mat2gray``) and resized back (bicubic); Scharr/16 gradient magnitudes (zero border);
SR-SIM = Σ S_VS·S_G^0.5·max(VS1, VS2) / Σ max(VS1, VS2) with S_VS = (2·VS1·VS2 + 0.40)/(VS1² + VS2² + 0.40) and
S_G = (2·G1·G2 + 225)/(G1² + G2² + 225). ``convention=``:

=================  ============================================================================================
'matlab'           SR_SIM.m: MATLAB round (half away from zero) for F, no epsilon in the log amplitude or the
                   pooling [default]
'piq'              piq.srsim: Python round (half to even) for F, both resizes in float32 (piq's imresize casts
                   its input), machine epsilon in the log amplitude, the saliency normalisation and the final
                   quotient. piq takes the saliency min and max over the whole batch; here they are per image
                   (the same for a batch of one)
'frame_analytics'  frame_analytics.srsim / srsimc: F×F means from the top-left corner ('replicate' after an
                   uneven end), torch bicubic resizes without antialiasing to round(0.25·side), log(|A| + 1e-8),
                   a 10-tap separable Gaussian with 'replicate' padding of 5 on both sides (one sample larger
                   map), Scharr with 'replicate' border; SR-SIMc with its own I/Q rows and max(S_I·S_Q, 0)^0.03
=================  ============================================================================================

``gaussian_size``: SR_SIM.m has 10 (even, the default); the MATLAB reference value with 9 is 0.96667468 on TID2013
i01_01_5. ``chromatic=True`` (SR-SIMc, RGB only; no MATLAB release — piq's formulation, FSIMc's chromatic term):
the score map is also multiplied by |S_I·S_Q|^0.03, S_I and S_Q the similarities of piq's YIQ I and Q planes
(T = 200). SR-SIM is symmetric in its two arguments.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from .. import _ops
from ..colour import BT601
from ..dtypes import compute_dtype
from ..padding import border_index
from ..resample import auto_downsample_factor
from ..validate import check_pair, check_reduction, reduce
from .gmsd import PIQ_YIQ, SCHARR
from ._grey import grey_pair, pool_geometry
from .module import MetricModule

SRSIM_CONVENTIONS = {
    "matlab": "SR_SIM.m: MATLAB round, MATLAB imresize (bicubic, antialiased), no epsilons",
    "piq": "piq.srsim: Python round, float32 resizes, machine epsilons",
    "frame_analytics": "frame_analytics.srsim/srsimc: torch bicubic resizes, 'replicate' borders, log(|A| + 1e-8)",
}
FA_YIQ_IQ = ((0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135))  # frame_analytics.srsim
C1, C2, ALPHA = 0.40, 225.0, 0.50  # SR_SIM.m (C2 for 0–255 images)
T3 = T4 = 200.0
LAMBDA = 0.03


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """MATLAB imresize's cubic kernel (a = −0.5)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(out_len, in_len) matrix of MATLAB ``imresize``'s bicubic weights along one axis: antialiased (kernel
    widened by 1/scale) when shrinking, 'symmetric' border, rows normalised to sum 1."""
    if scale < 1:
        width = 4.0 / scale
        kernel = lambda t: scale * _cubic(scale * t)  # noqa: E731
    else:
        width, kernel = 4.0, _cubic
    u = torch.arange(1, out_len + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(1, keepdim=True)
    cols = border_index(idx.long() - 1, in_len, "symmetric")
    m = torch.zeros(out_len, in_len, dtype=torch.float64)
    m.scatter_add_(1, cols, weights)
    return m.to(dtype=dtype, device=device)


def imresize(t: torch.Tensor, out_h: int, out_w: int, scale_h: float, scale_w: float,
             float32: bool = False) -> torch.Tensor:
    """MATLAB ``imresize(·, 'bicubic')`` of N×C×H×W planes as two small matrix products. ``float32``: compute in
    float32 whatever the input dtype (piq's resize casts every input to float32)."""
    work = torch.float32 if float32 else t.dtype
    mh = resize_matrix(t.shape[-2], out_h, scale_h, work, t.device)
    mw = resize_matrix(t.shape[-1], out_w, scale_w, work, t.device)
    h, w = t.shape[-2:]
    if out_h * w * (h + out_w) <= h * out_w * (w + out_h):  # the order with fewer products (rows first shrinking)
        return torch.matmul(mh, t.to(work)).matmul(mw.t()).to(t.dtype)
    return torch.matmul(mh, t.to(work) @ mw.t()).to(t.dtype)


@functools.lru_cache(maxsize=None)
def gaussian_taps(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1-D factor of ``fspecial('gaussian', [size size], sigma)`` (the 2-D kernel is its outer product)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r * r / (2 * sigma * sigma))
    return (g / g.sum()).to(dtype=dtype, device=device)


def saliency(lum: torch.Tensor, scale: float, kernel_size: int, sigma: float, gaussian_size: int,
             piq: bool) -> torch.Tensor:
    """Spectral-residual saliency of N×1×H×W luma planes (``spectralResidueSaliency`` of SR_SIM.m)."""
    h, w = lum.shape[-2:]
    hs, ws = math.ceil(h * scale), math.ceil(w * scale)
    small = imresize(lum, hs, ws, scale, scale, float32=piq)
    spectrum = torch.fft.fft2(small)
    eps = torch.finfo(lum.dtype).eps
    if piq:
        amplitude = spectrum.abs()
        log_amp = torch.log(amplitude + eps)
        half = 1.0
    else:  # log|A| = ½·log|A|² (no complex abs: a root per sample); a floor of eps·max|A| only keeps a flat
        # image, whose spectrum is 0 off DC, finite. The ½ goes into the mean's matrix.
        power = _abs_square(spectrum)
        log_amp = torch.log(torch.maximum(power, power.amax(dim=(-2, -1), keepdim=True) * (eps * eps)))
        half = 0.5
    # the k×k mean with a 'replicate' border as two small banded matrices (the spectrum is ~50×60: a product costs
    # less than padding and pooling)
    local = _separable(log_amp, _mean_matrix(hs, kernel_size, log_amp.dtype, log_amp.device, half),
                       _mean_matrix(ws, kernel_size, log_amp.dtype, log_amp.device))
    # exp(log|A| − mean + i·phase) = A·exp(−mean)·(exp(log|A|)/|A|): the phase without atan2/cos/sin
    if piq:
        residual = spectrum * (torch.exp(log_amp - local) / amplitude.clamp_min(torch.finfo(lum.dtype).tiny))
    else:
        residual = spectrum * torch.exp(-local)
    sal = _abs_square(torch.fft.ifft2(residual))
    # imfilter(·, fspecial('gaussian', size, σ)): zero border, an even kernel centred at ⌊(size+1)/2⌋; the same
    # banded-matrix form
    sal = _separable(sal, _blur_matrix(hs, gaussian_size, sigma, sal.dtype, sal.device),
                     _blur_matrix(ws, gaussian_size, sigma, sal.dtype, sal.device))
    low = sal.amin(dim=(-2, -1), keepdim=True)
    high = sal.amax(dim=(-2, -1), keepdim=True)
    span = high - low + eps if piq else (high - low).clamp_min(torch.finfo(lum.dtype).tiny)
    sal = (sal - low) / span
    return imresize(sal, h, w, h / hs, w / ws, float32=piq)


def _abs_square(z: torch.Tensor) -> torch.Tensor:
    """|z|² of a complex tensor as re² + im² (no root, and no square of it)."""
    return torch.view_as_real(z).square().sum(-1)


def _separable(t: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """rows @ t @ colsᵀ of N×C×H×W planes (the column product first: one folded matrix product)."""
    return torch.matmul(rows, t @ cols.t())


@functools.lru_cache(maxsize=64)
def _mean_matrix(n: int, size: int, dtype: torch.dtype, device: torch.device, gain: float = 1.0) -> torch.Tensor:
    """(n, n) matrix of a ``size``-tap mean along one axis with a 'replicate' border (``avg_pool2d`` of the
    replicate-padded axis: ⌊(size − 1)/2⌋ samples before), times ``gain``."""
    before = (size - 1) // 2
    cols = (torch.arange(n)[:, None] + torch.arange(size) - before).clamp(0, n - 1)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.scatter_add_(1, cols, torch.full((n, size), gain / size, dtype=torch.float64))
    return m.to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _blur_matrix(n: int, size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n, n) matrix of the ``size``-tap Gaussian along one axis with a zero border, centred as MATLAB's imfilter
    (⌊(size − 1)/2⌋ taps before the sample)."""
    g = gaussian_taps(size, sigma, torch.float64, torch.device("cpu"))
    before = (size - 1) // 2
    cols = torch.arange(n)[:, None] + torch.arange(size) - before
    inside = (cols >= 0) & (cols < n)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.scatter_add_(1, cols.clamp(0, n - 1), torch.where(inside, g.expand(n, size), 0.0))
    return m.to(dtype=dtype, device=device)


def _similarity(a, b, c):
    return (2 * a * b + c) / (a * a + b * b + c)


def srsim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    chromatic: bool = False,
    gaussian_size: int = 10,
    sigma: float = 3.8,
    scale: float = 0.25,
    kernel_size: int = 3,
    backend: str = "auto",
) -> torch.Tensor:
    """SR-SIM (SR-SIMc with ``chromatic=True``) of each image pair (higher = better): (N,) or a scalar.

    ``x`` distorted, ``y`` reference (SR-SIM is symmetric in the two): N×C×H×W (or C×H×W / H×W) with C = 1 or 3,
    uint8 (data_range=255) or float in [0, data_range]. ``gaussian_size``/``sigma``: the saliency blur (SR_SIM.m:
    10, 3.8); ``scale``: the saliency map's resize factor (0.25); ``kernel_size``: the spectral mean filter (3).
    The downsampled image times ``scale`` must be at least ``gaussian_size`` and ``kernel_size`` on each side.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range, check_values=False)  # range/NaN/Inf: from the front end's extrema
    if convention not in SRSIM_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(SRSIM_CONVENTIONS)}, got {convention!r}")
    if convention == "frame_analytics":
        check_pair(x, y, data_range)
        return reduce(_srsim_frame_analytics(x, y, data_range, chromatic, gaussian_size, sigma, scale, kernel_size,
                                             backend), reduction)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"SR-SIM needs 1 (gray) or 3 (RGB) channels, got {x.shape[1]}")
    if chromatic and x.shape[1] != 3:
        raise ValueError("chromatic=True (SR-SIMc) needs 3-channel RGB input")
    for name, v in (("gaussian_size", gaussian_size), ("kernel_size", kernel_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    n = x.shape[0]
    h, w = x.shape[-2:]
    f = auto_downsample_factor(h, w, rounding="matlab" if convention == "matlab" else "python")
    hd, wd = math.ceil(h / f), math.ceil(w / f)
    least = max(gaussian_size, kernel_size)
    if min(hd, wd) * scale < least:
        raise ValueError(f"x is {h}×{w} ({hd}×{wd} after the {f}×{f} averaging); SR-SIM needs its sides × "
                         f"scale={scale} to be at least {least} (gaussian_size / kernel_size)")
    dtype = compute_dtype(x.dtype)
    to255 = 255.0 / float(data_range)

    # One read of each image: the 0–255 luma (and I, Q for SR-SIMc) of the F×F box mean (conv2(·, ones(F)/F²,
    # 'same') sampled at (1:F:end); linear, so it commutes with the colour rows) and the input checks.
    if x.shape[1] == 3:
        coeffs = [c * to255 for row in (PIQ_YIQ if chromatic else (BT601,)) for c in row]
        px, py = grey_pair(x, y, data_range, coeffs, 1.0, "none", pool_geometry(h, w, "zeros", f), backend)
    else:
        px, py = grey_pair(x, y, data_range, (), to255, "none", pool_geometry(h, w, "zeros", f), backend)
    planes = torch.cat([px, py]).to(dtype)
    lum = planes[:, :1]

    vs = saliency(lum, scale, kernel_size, sigma, gaussian_size, piq=convention == "piq")
    # the Scharr magnitudes and their similarity in one fused pass (no magnitude planes)
    s_g = _ops.gradient_similarity(lum[:n], lum[n:], SCHARR[0], SCHARR[1], C2, 0.0, 0.0, "zeros", "map", backend)
    vs1, vs2 = vs[:n], vs[n:]
    weight = torch.maximum(vs1, vs2)
    if _ops.needs_grad(x, y):
        score = _similarity(vs1, vs2, C1) * s_g.sqrt() * weight  # s_g > 0 (c > 0): a plain root
    else:  # the same product in place, fewer passes: S_VS = P / (P + (VS1 − VS2)²), P = 2·VS1·VS2 + C1
        prod = torch.mul(vs1, vs2).mul_(2).add_(C1)
        score = prod.div_(torch.sub(vs1, vs2).square_().add_(prod)).mul_(s_g.sqrt_()).mul_(weight)
    if chromatic:
        s_iq = _similarity(planes[:n, 1:2], planes[n:, 1:2], T3) * _similarity(planes[:n, 2:3], planes[n:, 2:3], T4)
        score = score * s_iq.abs().pow(LAMBDA)
    num, den = score.sum(dim=(1, 2, 3)), weight.sum(dim=(1, 2, 3))
    if convention == "piq":
        value = num / (den + torch.finfo(dtype).eps)
    else:  # two flat images have no saliency at all: identical → 1 instead of 0/0
        value = torch.where(den > 0, num / den.clamp_min(torch.finfo(dtype).tiny), torch.ones_like(num))
    return reduce(value, reduction)


def _srsim_frame_analytics(x, y, data_range, chromatic, gaussian_size, sigma, scale, kernel_size, backend):
    """frame_analytics.srsim (srsimc with ``chromatic``), in 0–255 units (its constants scale with the range)."""
    if x.shape[1] not in (1, 3):
        raise ValueError(f"SR-SIM needs 1 (gray) or 3 (RGB) channels, got {x.shape[1]}")
    n = x.shape[0]
    h, w = x.shape[-2:]
    f = auto_downsample_factor(h, w, rounding="python")
    hd, wd = math.ceil(h / f), math.ceil(w / f)
    dtype = compute_dtype(x.dtype)
    to255 = 255.0 / float(data_range)
    color = x.shape[1] == 3
    rows = ((BT601,) + (FA_YIQ_IQ if chromatic else ())) if color else ()
    planes = []
    for t in (x, y):
        t = t.to(dtype) * to255
        p = torch.cat([sum(c * t[:, k:k + 1] for k, c in enumerate(row)) for row in rows], 1) if color else t[:, :1]
        if f > 1:  # F×F means from the top-left, the last partial block padded by replication
            p = F.avg_pool2d(F.pad(p, (0, wd * f - w, 0, hd * f - h), mode="replicate"), f)
        planes.append(p)
    both = torch.cat(planes)
    lum = both[:, :1]
    hs, ws = max(1, round(hd * scale)), max(1, round(wd * scale))
    mode = "bicubic" if min(hs, ws) >= 4 and min(hd, wd) >= 4 else "bilinear"
    small = F.interpolate(lum, size=(hs, ws), mode=mode, align_corners=False)
    spectrum = torch.fft.fft2(small)
    log_amp = torch.log(spectrum.abs() + 1e-8 * to255)
    lo, hi = (kernel_size - 1) // 2, kernel_size // 2
    local = F.avg_pool2d(F.pad(log_amp, (lo, hi, lo, hi), mode="replicate"), kernel_size, stride=1)
    sal = torch.fft.ifft2(torch.polar(torch.exp(log_amp - local), torch.angle(spectrum))).abs().square()
    g = gaussian_taps(gaussian_size, sigma, dtype, sal.device)
    p = gaussian_size // 2
    sal = F.conv2d(F.pad(sal, (p, p, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    sal = F.conv2d(F.pad(sal, (0, 0, p, p), mode="replicate"), g.view(1, 1, -1, 1))
    low = sal.amin(dim=(1, 2, 3), keepdim=True)
    high = sal.amax(dim=(1, 2, 3), keepdim=True)
    sal = (sal - low) / (high - low).clamp_min(1e-12)
    if (hs, ws) != (hd, wd):
        sal = F.interpolate(sal, size=(hd, wd), mode=mode, align_corners=False)
    gxy = F.conv2d(F.pad(lum, (1, 1, 1, 1), mode="replicate"), _scharr_bank(dtype, lum.device))
    mag = torch.sqrt(gxy[:, :1] * gxy[:, :1] + gxy[:, 1:] * gxy[:, 1:])
    s1, s2 = sal[:n], sal[n:]
    weight = torch.maximum(s1, s2)
    score = _similarity(s1, s2, C1) * torch.sqrt(_similarity(mag[:n], mag[n:], C2)) * weight
    if chromatic and color:
        s_c = _similarity(both[:n, 1:2], both[n:, 1:2], T3) * _similarity(both[:n, 2:3], both[n:, 2:3], T4)
        score = score * s_c.clamp_min(0.0).pow(LAMBDA)
    num = score.sum(dim=(1, 2, 3), dtype=torch.float64)
    den = weight.sum(dim=(1, 2, 3), dtype=torch.float64)
    return torch.where(den > 0, num / den, torch.ones_like(num)).to(dtype)


@functools.lru_cache(maxsize=None)
def _scharr_bank(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    kx = torch.tensor([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]], dtype=torch.float64) / 16
    return torch.stack([kx, kx.t()])[:, None].to(dtype=dtype, device=device)


srsim.lower_is_better = False


class SRSIM(MetricModule):
    """Module form of :func:`srsim` (higher = better; ``loss=True`` gives 1 − SR-SIM)."""

    metric = staticmethod(srsim)
