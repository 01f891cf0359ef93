"""GMSD and MS-GMSD — gradient magnitude similarity deviation. Lower = better (0 for identical images).

- GMSD: W. Xue, L. Zhang, X. Mou, A. C. Bovik, "Gradient magnitude similarity deviation: a highly efficient
  perceptual image quality index", IEEE TIP 23(2), 2014. Reference code: the authors' MATLAB ``GMSD.m``.
- MS-GMSD: B. Zhang, P. V. Sander, A. Bermak, "Gradient magnitude similarity deviation on multiple scales for color
  image quality assessment", ICASSP 2017. No MATLAB release: the reference is piq's ``multi_scale_gmsd``.

GMSD on 0–255 luma Y: a 2×2 mean sampled every 2 pixels, Prewitt/3 gradients (x and y), the gradient magnitude
similarity GMS = (2·m1·m2 + T) / (m1² + m2² + T) with T = 170, and the standard deviation of the GMS map.
``convention=`` (gmsd):

=================  ================================================================================================
'matlab'           GMSD.m: ``conv2(Y, ones(2)/4, 'same')`` sampled at (1:2:end) (a zero row/column after an odd
                   side); ``conv2(·, 'same')`` Prewitt (zero border); ``std2`` (N − 1) [default]
'piq'              piq.gmsd: the same map, population std (N)
'pyiqa'            pyiqa GMSD: YIQ luma rounded to integers (half to even; pyiqa's float32 matrix), 2×2 pooling
                   dropping an odd last row/column, √(· + 1e-12), Prewitt taps 1/3 in float32, std with N − 1
'frame_analytics'  frame_analytics.gmsd: every channel as given (no luma), 2×2 pooling dropping an odd last
                   row/column, Prewitt 'valid', √(· + (1e-6·255)²), population std over all channels
=================  ================================================================================================

``color`` (default: the convention's): 'yiq' — Y = 0.299R + 0.587G + 0.114B unrounded, as GMSD.m's usage note and
piq ('matlab', 'piq'); 'rgb2gray_uint8' — MATLAB ``rgb2gray`` of the 8-bit image, rounded to integer levels whatever
the input dtype: with convention='matlab' this reproduces pyiqa's official GMSD values (GMSD.m on rgb2gray images)
to 1e-15; 'yiq_uint8' ('pyiqa'); 'per_channel' ('frame_analytics'). The rounded lumas pass gradients straight
through the rounding.

MS-GMSD (``convention='piq'``, the only one): RGB → YIQ (piq's 4-decimal I/Q rows) on 0–255, scales 1…M with
zero-padded 2×2 pooling between them, a GMSD per scale on Y with the masked similarity
(2·m1·m2 − α·m1·m2 + T) / (m1² + m2² − α·m1·m2 + T), α = 0.5, population std, and
√(Σ wᵢ·GMSDᵢ²); default weights (0.096, 0.596, 0.289, 0.019). ``chromatic=True`` (MS-GMSDc) blends in the RMS
difference of the I and Q planes at the coarsest scale: γ·MS-GMSD + (1 − γ)·β1·RMSE_IQ with
γ = 2 / (1 + β2·exp(−β3·MS-GMSD)) − 1. ``convention='frame_analytics'`` reproduces frame_analytics.ms_gmsd:
every channel as given, 2×2 pooling dropping odd rows/columns also before the first scale, 'valid' Prewitt,
no masking (α = 0), √(Σ wᵢ·GMSDᵢ² / Σ wᵢ).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import _ops
from ..colour import BT601
from ..dtypes import compute_dtype
from ..validate import (check_extrema, check_pair, check_range, check_reduction, has_values, reduce,
                        warn_if_range_unused)
from ._grey import grey_pair, luma_spec, pool_geometry
from .module import MetricModule

GMSD_T = 170.0  # GMSD.m, for 0–255 images
MS_GMSD_WEIGHTS = (0.096, 0.596, 0.289, 0.019)  # Zhang et al. 2017, as piq
PIQ_YIQ = (BT601, (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))  # piq.functional.rgb2yiq


GMSD_COLORS = ("yiq", "yiq_uint8", "rgb2gray_uint8", "per_channel")


@dataclass(frozen=True)
class GmsdConvention:
    luma: str  # the default ``color``: one of GMSD_COLORS
    pool: str  # 'zeros' (2×2 mean, zero row/column after an odd side) | 'floor' (odd last row/column dropped)
    padding: int  # Prewitt padding: 1 (zeros, 'same') or 0 ('valid')
    eps: float  # added under the square root of each magnitude, in 0–255 units squared
    correction: int  # std normalisation N − correction
    float32_taps: bool = False  # Prewitt taps 1/3 rounded to float32 (pyiqa)


GMSD_CONVENTIONS = {
    "matlab": GmsdConvention(luma="yiq", pool="zeros", padding=1, eps=0.0, correction=1),
    "piq": GmsdConvention(luma="yiq", pool="zeros", padding=1, eps=0.0, correction=0),
    "pyiqa": GmsdConvention(luma="yiq_uint8", pool="floor", padding=1, eps=1e-12, correction=1, float32_taps=True),
    "frame_analytics": GmsdConvention(luma="per_channel", pool="floor", padding=0, eps=(1e-6 * 255) ** 2, correction=0),
}
MS_GMSD_CONVENTIONS = {  # no MATLAB release: piq's multi_scale_gmsd is the reference
    "piq": "piq.multi_scale_gmsd: YIQ luma, zero-padded halving, masked similarity (alpha), population std",
    "frame_analytics": "frame_analytics.ms_gmsd: per channel, floor halving before every scale, 'valid' Prewitt",
}


PREWITT = ((1.0, 1.0, 1.0), 1.0 / 3)  # smoothing taps across the derivative, normalisation
SCHARR = ((3.0, 10.0, 3.0), 1.0 / 16)


def gradients(planes: torch.Tensor, smooth=PREWITT[0], padding: int = 1):
    """Unnormalised x and y responses of the separable 3×3 derivative kernel ``smooth`` ⊗ [1, 0, −1] on each
    plane: zero border with ``padding`` ('same', as MATLAB ``conv2``), else 'valid'. The signs are those of a
    correlation (conv2 flips the kernel); only squares are used.

    Shifted-slice sums instead of ``conv2d``: a 1-in/2-out 3×3 conv runs ~10× slower on the CPU (mkldnn handles
    the shape poorly). The zero border is handled by the slice bounds, so no padded copy is made."""
    if not padding:
        return _valid_gradients(planes, smooth)
    a, b, c = smooth
    h, w = planes.shape[-2:]

    def smooth_along(dim: int) -> torch.Tensor:
        n = planes.shape[dim]
        out = planes.clone() if b == 1 else planes * b
        out.narrow(dim, 1, n - 1).add_(planes.narrow(dim, 0, n - 1), alpha=a)
        out.narrow(dim, 0, n - 1).add_(planes.narrow(dim, 1, n - 1), alpha=c)
        return out

    def difference_along(v: torch.Tensor, dim: int) -> torch.Tensor:
        n = v.shape[dim]
        d = torch.empty_like(v)
        if v.requires_grad and torch.is_grad_enabled():  # out= does not record autograd
            d.narrow(dim, 1, n - 2).copy_(v.narrow(dim, 2, n - 2) - v.narrow(dim, 0, n - 2))
        else:
            torch.sub(v.narrow(dim, 2, n - 2), v.narrow(dim, 0, n - 2), out=d.narrow(dim, 1, n - 2))
        d.narrow(dim, 0, 1).copy_(v.narrow(dim, 1, 1))
        d.narrow(dim, n - 1, 1).copy_(v.narrow(dim, n - 2, 1)).neg_()
        return d

    if h < 2 or w < 2:
        raise ValueError(f"gradients need planes of at least 2×2, got {h}×{w}")
    return difference_along(smooth_along(-2), -1), difference_along(smooth_along(-1), -2)


def _valid_gradients(planes: torch.Tensor, smooth):
    a, b, c = smooth

    def smooth_along(dim: int) -> torch.Tensor:
        n = planes.shape[dim]
        s0, s1, s2 = (planes.narrow(dim, k, n - 2) for k in range(3))
        out = s0 * a if a != 1 else s0.clone()
        return out.add_(s1, alpha=b).add_(s2, alpha=c)

    v = smooth_along(-2)
    w = v.shape[-1]
    gx = v.narrow(-1, 2, w - 2) - v.narrow(-1, 0, w - 2)
    u = smooth_along(-1)
    h = u.shape[-2]
    gy = u.narrow(-2, 2, h - 2) - u.narrow(-2, 0, h - 2)
    return gx, gy


def magnitude_sq(gx: torch.Tensor, gy: torch.Tensor, norm: float, eps: float = 0.0) -> torch.Tensor:
    """(norm·gx)² + (norm·gy)² + eps (the unnormalised responses are squared first, then scaled once)."""
    m = gx * gx
    m.addcmul_(gy, gy)
    m.mul_(norm * norm)
    if eps:
        m.add_(eps)
    return m


def halve(t: torch.Tensor, pool: str, backend: str) -> torch.Tensor:
    """2×2 mean sampled every 2 pixels: 'zeros' = ``conv2(·, ones(2)/4, 'same')(1:2:end, 1:2:end)`` (an odd last
    row/column averaged with zeros); 'floor' = ``avg_pool2d(·, 2)`` (an odd last row/column dropped)."""
    h, w = t.shape[-2:]
    if pool == "zeros":
        return _ops.box_downsample(t, 2, 0, 0, (h + 1) // 2, (w + 1) // 2, "zeros", backend)
    return _ops.box_downsample(t, 2, 0, 0, h // 2, w // 2, "zeros", backend)


def gradient_sq(planes: torch.Tensor, padding: int, eps: float, float32_taps: bool = False) -> torch.Tensor:
    """Squared Prewitt/3 gradient magnitude Gx² + Gy² (+ eps) of each plane. ``float32_taps``: the taps 1/3 rounded
    to float32 (pyiqa builds its kernels in float32 and then casts them)."""
    return magnitude_sq(*gradients(planes, PREWITT[0], padding), _prewitt_norm(float32_taps), eps)


_PREWITT_NORM_F32 = float(torch.tensor(1 / 3, dtype=torch.float32))


def _prewitt_norm(float32_taps: bool) -> float:
    return _PREWITT_NORM_F32 if float32_taps else 1 / 3


def gms_map(mx: torch.Tensor, my: torch.Tensor, t: float, alpha: float = 0.0, differentiable: bool = False):
    """GMS from the squared magnitudes: (2·m1·m2 − α·m1·m2 + T) / (m1² + m2² − α·m1·m2 + T), with
    m1·m2 = √(m1²·m2²) (one root instead of two)."""
    if differentiable:
        # |m| through a root that has a zero (not NaN) gradient where both directional gradients vanish
        prod = _safe_sqrt(mx) * _safe_sqrt(my)
        return ((2 - alpha) * prod + t) / (mx + my - alpha * prod + t)
    prod = torch.mul(mx, my).sqrt_()
    den = torch.add(mx, my).add_(t)
    if alpha:
        den.sub_(prod, alpha=alpha)
    return prod.mul_(2 - alpha).add_(t).div_(den)


def gms_variance(px: torch.Tensor, py: torch.Tensor, t: float, alpha: float, padding: int, eps: float,
                 norm: float = 1 / 3, backend: str = "auto", gain: float = 1.0, correction: int = 0) -> torch.Tensor:
    """(N,) float64 variance (N − correction) of the GMS map of two N×C×H×W stacks of planes (0–255 once multiplied
    by ``gain``: the operator applies it with the Prewitt norm, sparing a pass over the planes), all channels pooled
    together: Σq² − (Σq)²/N from the fused operator's moments, no image-sized buffer (q ∈ (0, 1], so the float64 sums
    keep ~12 significant digits of it), in a handful of small ops (per-call overhead at small sizes)."""
    m = _ops.gradient_similarity(px, py, PREWITT[0], norm * gain, t, alpha, eps, "zeros" if padding else "valid",
                                 "moments", backend)
    trim = 0 if padding else 2
    count = px.shape[1] * (px.shape[-2] - trim) * (px.shape[-1] - trim)
    s = m.sum(1) if m.shape[1] > 1 else m.select(1, 0)
    total = s.select(1, 0)
    var = torch.addcmul(s.select(1, 1), total, total, value=-1.0 / count)
    if _ops.needs_grad(var):
        return (var / (count - correction)).clamp_min(0)
    return var.mul_(1.0 / (count - correction)).clamp_min_(0)


def deviation(variance: torch.Tensor) -> torch.Tensor:
    """Standard deviation from :func:`gms_variance`; a zero-gradient root at 0 (identical images) under autograd."""
    return _safe_sqrt(variance) if _ops.needs_grad(variance) else variance.sqrt()


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    positive = v > 0
    return torch.where(positive, torch.where(positive, v, torch.ones_like(v)).sqrt(), torch.zeros_like(v))


def gmsd(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    color: str | None = None,
    t: float = GMSD_T,
    backend: str = "auto",
) -> torch.Tensor:
    """GMSD of each image pair (lower = better): (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; GMSD is symmetric in the two):
    N×C×H×W (or C×H×W / H×W) with C = 1 or 3 (RGB is scored on its luma), uint8 (data_range=255) or float in
    [0, data_range]. ``color`` (default: the convention's): 'yiq' (0.299R + 0.587G + 0.114B, GMSD.m's usage),
    'rgb2gray_uint8' (MATLAB ``rgb2gray`` of the 8-bit image, rounded to integer levels — how pyiqa's official
    values were made), 'yiq_uint8' (pyiqa: YIQ luma rounded), 'per_channel' (every channel, one map). ``t`` is
    the stability constant T in 0–255 units (GMSD.m: 170). Needs H, W ≥ 4 (≥ 6 for 'frame_analytics').
    Without a gradient to record, one fused operator (grey_gradient_moments: both images read once, no planes
    written) gives the moments of the differentiable route's two operators bit for bit.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range, check_values=False)  # range/NaN/Inf: from the front end's extrema
    if convention not in GMSD_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(GMSD_CONVENTIONS)}, got {convention!r}")
    conv = GMSD_CONVENTIONS[convention]
    color = conv.luma if color is None else color
    if color not in GMSD_COLORS:
        raise ValueError(f"color must be one of {GMSD_COLORS}, got {color!r}")
    h, w = x.shape[-2:]
    least = 6 if conv.padding == 0 else 4
    if min(h, w) < least:
        raise ValueError(f"x is {h}×{w}; GMSD needs H and W of at least {least}")
    scale = 255.0 / float(data_range)
    # one read of each image: luma (rounded to integer levels for the *_uint8 colours, straight-through gradient),
    # the 2×2 mean and the extrema of the input checks; per channel, the 0–255 scaling goes to the gradient operator
    coeffs, front_scale, rounding = luma_spec(color, x.shape[1], scale)
    gain = scale if not coeffs else 1.0
    front_scale = 1.0 if not coeffs else front_scale
    geometry = pool_geometry(h, w, conv.pool)
    norm = _prewitt_norm(conv.float32_taps)
    if _ops.needs_grad(x, y):
        px, py = grey_pair(x, y, data_range, coeffs, front_scale, rounding, geometry, backend)
        variance = gms_variance(px, py, float(t), 0.0, conv.padding, conv.eps, norm, backend, gain, conv.correction)
        return reduce(deviation(variance).to(px.dtype), reduction)
    # no gradient: the fused operator (both images read once, no planes written; the two operators' bits)
    moments, ex, ey = _ops.grey_gradient_moments(x, y, coeffs, front_scale, rounding, *geometry, PREWITT[0],
                                                 norm * gain, float(t), 0.0, conv.eps,
                                                 "zeros" if conv.padding else "valid", backend)
    trim = 0 if conv.padding else 2
    count = moments.shape[1] * (geometry[3] - trim) * (geometry[4] - trim)
    dtype = compute_dtype(x.dtype)
    if has_values(moments):  # not on meta/fake tensors or while tracing
        if moments.is_cpu:
            _check_extrema_pair(x, ex, ey, data_range)
            return _deviations_on_host(moments, count, conv.correction, dtype, reduction)
        check_extrema(x, y, torch.cat([ex, ey], 1), None, data_range)  # one host sync
    return _deviations(moments, count, conv.correction, dtype, reduction)


def _deviations(moments: torch.Tensor, count: int, correction: int, dtype: torch.dtype, reduction: str):
    """:func:`_deviations_on_host` in tensor ops (CUDA, meta and traced calls)."""
    m = moments.sum(1) if moments.shape[1] > 1 else moments.select(1, 0)
    total = m.select(1, 0)
    var = torch.addcmul(m.select(1, 1), total, total, value=-1.0 / count)
    return reduce(var.mul_(1.0 / (count - correction)).clamp_min_(0).sqrt_().to(dtype), reduction)


def _check_extrema_pair(x: torch.Tensor, ex: torch.Tensor, ey: torch.Tensor, data_range: float) -> None:
    """validate.check_extrema (same errors and warning) from the separate (N, 2) extrema of x and y (NaN where an
    image holds NaN/Inf), read with one small host copy each and no concatenation."""
    if x.dtype == torch.uint8:
        return
    vx, vy = ex.tolist(), ey.tolist()  # [[low, high], ...]: NaN for an image holding NaN/Inf
    x_low, x_high = min(v[0] for v in vx), max(v[1] for v in vx)
    y_low, y_high = min(v[0] for v in vy), max(v[1] for v in vy)
    if not all(math.isfinite(a) and math.isfinite(b) for a, b in vx):
        raise ValueError("x contains NaN or Inf")
    if not all(math.isfinite(a) and math.isfinite(b) for a, b in vy):
        raise ValueError("y contains NaN or Inf")
    check_range(x_low, x_high, data_range, "x")
    check_range(y_low, y_high, data_range, "y")
    warn_if_range_unused(max(x_high, y_high), data_range)


def _deviations_on_host(moments: torch.Tensor, count: int, correction: int, dtype: torch.dtype, reduction: str):
    """The standard deviations √(max(0, Σq² − (Σq)²/count) / (count − correction)) of a CPU (N, R, 2) moments tensor
    in Python floats (the planes' sums pooled): a handful of scalar operations instead of ~6 tensor ops, the
    per-call cost that dominates small images."""
    values = []
    for planes in moments.tolist():
        total = sum(p[0] for p in planes)
        total_sq = sum(p[1] for p in planes)
        values.append(math.sqrt(max(0.0, (total_sq - total * total / count) / (count - correction))))
    if len(values) == 1 and reduction != "none":
        return torch.tensor(values[0], dtype=dtype)  # the mean or sum of one value
    return reduce(torch.tensor(values, dtype=dtype), reduction)


def ms_gmsd(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "piq",
    scale_weights=None,
    chromatic: bool = False,
    alpha: float = 0.5,
    beta1: float = 0.01,
    beta2: float = 0.32,
    beta3: float = 15.0,
    t: float = GMSD_T,
    backend: str = "auto",
) -> torch.Tensor:
    """MS-GMSD (MS-GMSDc with ``chromatic=True``) of each image pair (lower = better).

    ``x`` distorted, ``y`` reference. ``scale_weights``: one weight per scale (normalised to sum 1; default
    (0.096, 0.596, 0.289, 0.019)). ``alpha`` masks the similarity, ``beta1..3`` blend the chromatic term, ``t`` is
    T in 0–255 units. Needs H, W ≥ 2^M + 1 for M scales ('piq'). ``chromatic`` needs RGB input.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range, check_values=False)  # range/NaN/Inf: from the front end's extrema
    if convention not in MS_GMSD_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(MS_GMSD_CONVENTIONS)}, got {convention!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"MS-GMSD needs 1 (gray) or 3 (RGB) channels, got {x.shape[1]}")
    dtype = compute_dtype(x.dtype)
    if scale_weights is None:
        weights = torch.tensor(MS_GMSD_WEIGHTS, dtype=dtype, device=x.device)
    else:
        weights = torch.as_tensor(scale_weights, dtype=dtype, device=x.device).flatten()
        if weights.numel() == 0 or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise ValueError(f"scale_weights must be non-negative with a positive sum, got {scale_weights!r}")
        weights = weights / weights.sum()
    scales = weights.numel()
    h, w = x.shape[-2:]
    least = 2**scales + 1 if convention == "piq" else 3 * 2**scales
    if min(h, w) < least:
        raise ValueError(f"x is {h}×{w}; MS-GMSD with {scales} scales needs H and W of at least {least}")
    if chromatic and x.shape[1] != 3:
        raise ValueError("chromatic=True (MS-GMSDc) needs 3-channel RGB input")
    scale = 255.0 / float(data_range)

    if convention == "frame_analytics":
        # per channel, floor halving (0–255 scaling: the operator's gain); the first halving in the front end
        px, py = grey_pair(x, y, data_range, (), 1.0, "none", pool_geometry(h, w, "floor"), backend)
        variances = []
        for i in range(scales):
            if i:
                px, py = halve(px, "floor", backend), halve(py, "floor", backend)
            variances.append(gms_variance(px, py, float(t), 0.0, 0, (1e-6 * 255) ** 2, backend=backend,
                                          gain=scale).to(dtype))
        # frame_analytics normalises its raw weights itself: the normalised ones give the same value
        return reduce(_safe_sqrt((torch.stack(variances, 1) * weights).sum(1)), reduction)

    def yiq(t_: torch.Tensor, rows) -> torch.Tensor:
        if t_.shape[1] == 1:
            return t_.to(dtype) * scale
        planes = [_ops.luma(t_, [c * scale for c in row], 0.0, backend=backend).to(dtype) for row in rows]
        return planes[0] if len(planes) == 1 else torch.cat(planes, 1)

    # the full-resolution luma (piq's YIQ Y row, 0–255) and the input checks in one read of each image
    lx, ly = grey_pair(x, y, data_range, *luma_spec("yiq", x.shape[1], scale), pool_geometry(h, w, None), backend)
    lx, ly = lx.to(dtype), ly.to(dtype)
    deviations = []
    for i in range(scales):
        if i:
            lx, ly = _halve_piq(lx, backend), _halve_piq(ly, backend)
        deviations.append(deviation(gms_variance(lx, ly, float(t), float(alpha), 1, 0.0, backend=backend)).to(dtype))
    value = (torch.stack(deviations, 1).square() * weights).sum(1).sqrt()
    if chromatic:
        # piq takes I and Q at the coarsest scale; halving is linear and per channel, so RGB is halved first and
        # only the coarsest RGB is converted
        sx, sy = x, y
        for _ in range(scales - 1):
            sx, sy = _halve_piq(sx, backend), _halve_piq(sy, backend)
        iq_x, iq_y = yiq(sx, PIQ_YIQ[1:]), yiq(sy, PIQ_YIQ[1:])
        rmse = (iq_x - iq_y).square().mean(dim=(1, 2, 3)).mul(2).sqrt()  # √(MSE_I + MSE_Q)
        gamma = 2 / (1 + beta2 * torch.exp(-beta3 * value)) - 1
        value = gamma * value + (1 - gamma) * beta1 * rmse
    return reduce(value, reduction)


def _halve_piq(t: torch.Tensor, backend: str) -> torch.Tensor:
    """piq: zero-pad one row and one column at the bottom/right when either side is odd, then avg_pool2d(2)."""
    h, w = t.shape[-2:]
    pad = max(h % 2, w % 2)
    return _ops.box_downsample(t, 2, 0, 0, (h + pad) // 2, (w + pad) // 2, "zeros", backend)


gmsd.lower_is_better = True
ms_gmsd.lower_is_better = True


class GMSD(MetricModule):
    """Module form of :func:`gmsd` (lower = better; no loss form: GMSD is already a distance)."""

    metric = staticmethod(gmsd)
    bounded_similarity = False


class MS_GMSD(MetricModule):
    """Module form of :func:`ms_gmsd` (lower = better)."""

    metric = staticmethod(ms_gmsd)
    bounded_similarity = False
