"""VIF and VIFp — H. R. Sheikh, A. C. Bovik, "Image information and visual quality", IEEE TIP 15(2), 2006.

Higher = better: 1 for identical images, 0 when the distortion destroys all information; above 1 for a contrast
enhancement. Not symmetric: ``x`` is the distorted image, ``y`` the reference (every turboiqa metric's order).

**VIF** (:func:`vif`, wavelet domain) follows the authors' ``vifvec.m`` (LIVE release): a 4-level steerable pyramid of
the luma (matlabPyrTools ``buildSpyr`` with the ``sp5Filters``, six orientations, 'reflect1' borders); of each level
the two subbands vifvec.m selects (its wtree indices 4 7 10 … 25: orientations 0 and 3); a Gaussian scale mixture on
non-overlapping 3×3 blocks of the reference band (9×9 covariance over all overlapping blocks, its eigenvalues and the
per-block field s² = vᵀC⁻¹v/9); the distortion channel (gain g, noise σv²) from box windows of 2^(4-level)+1 taps
evaluated on every third sample; σn² = 0.4; VIF = Σ log2(1 + g²s²λ/(σv²+σn²)) / Σ log2(1 + s²λ/σn²). Only the
8 bands the score uses are computed (no high-pass residual, no other orientations).

**VIFp** (:func:`vif_p`, pixel domain) follows ``vifp_mscale.m``: 4 scales, Gaussian windows N = 2^(4-s+1)+1 with
σ = N/5, 'valid' filtering, scale s > 1 filtered by its window and decimated by 2; σn² = 2; all five moments of a
scale (μx, μy, x², y², xy) in one stacked separable pass (:func:`turboiqa.filters.correlate_axis`).

A flat reference carries no information: both originals divide 0 by 0 (NaN, kept under 'matlab'); piq's ε makes VIFp
1, frame-analytics gives 1 for a same-mean pair without information and 0 otherwise, pyiqa's VIF gives 0.

Colour: both score the luma Y of YIQ (0.299, 0.587, 0.114) in 0–255 units for RGB input; grey (C = 1) input is used
as is. ``color='per_channel'`` (VIFp) scores every channel and pools the numerator and denominator sums over channels
(frame-analytics without ``luma``).

``convention=`` of :func:`vif`:

========  =============================================================================================================
'matlab'  vifvec.m: tol 1e-15, Σnum/Σden; the luma of the 8-bit RGB levels rounded to an 8-bit grey level,
          (299R + 587G + 114B)/1000 half up, exact (the official values were computed on 8-bit grey images; the
          unrounded luma misses them by up to 6e-3) [default]
'pyiqa'   pyiqa 'vif' (VIF arch): tol 1e-12, Σnum/(Σden + 1e-12); luma by pyiqa's route (RGB in [0, 1], its YIQ
          matrix with float32 coefficients, × 255, rounded), so luma ties round as there
========  =============================================================================================================

Both compute the 9×9 block covariance in float64 (then C⁻¹ by a Hermitian pseudo-inverse, = inv(C) for any
non-flat band): its small eigenvalues dominate s², and pyiqa's float32 accumulation moves its scores by up to 4e-4
(i19_10_5: pyiqa 0.17492, vifvec.m 0.1745, here 0.17451 in float32 and float64).

``convention=`` of :func:`vif_p`:

=================  ====================================================================================================
'matlab'           vifp_mscale.m: ε = 1e-10 in 0–255 units (variance floor, zero-variance masks, σv² floor),
                   Σnum/Σden, unrounded luma [default]
'piq'              piq.vif_p: ε = 1e-8 and (Σnum + ε)/(Σden + ε)
'frame_analytics'  frame_analytics.vifp(reference, distorted, luma=True): per-position floor 1e-10 + r·E[y²]
                   (r = 1e-12 in float64, 1e-5 in float32), strict masks, the closed-form terms in float64, a pair of
                   identical images scores exactly 1 (and a flat pair with no information 1 or 0); its default
                   ``luma=None`` is ``color='per_channel'`` here. The float32 floor 1e-5·E[y²] is not small: it moves
                   i01_01_5 from 0.31469 to 0.31318
=================  ====================================================================================================

VIFp takes each plane's mean off before the moments (variances and covariances do not change): in float32 the six
TID2013 pairs then stay within 2.2e-5 of float64 (the cancellation left is σd² − g·σxy where the distortion is
slight), where piq's float32 is off by up to 3.3e-4 (i06_18_3).

Each VIFp scale runs in the fused ``vifp_stats`` kernel (the SSIM row machinery of ``ssim_stats`` with the VIFp
statistic, csrc/vifp_math.h: the five windowed moments, the masks and both log terms per pixel, float64 per-plane
sums, nothing image-sized written; CPU and CUDA, forward and backward); the decimation between scales is the
``decimate2`` kernel on CPU (torch slice passes on other devices). ``backend='reference'`` keeps the plain PyTorch route (stacked moment maps). Both metrics are differentiable
(VIF through ``eigvalsh`` and ``pinv``; its rounded luma has a straight-through gradient).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _ops
from ..colour import BT601
from ..dtypes import compute_dtype
from ..filters import correlate_axis
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce
from ._grey import grey255
from .module import MetricModule

# ---------------------------------------------------------------------------------------------------- shared


def luma_255(t: torch.Tensor, data_range: float, dtype: torch.dtype, color: str = "yiq") -> torch.Tensor:
    """N×C×H×W → the planes VIF works on, in 0–255 units and ``dtype``: the YIQ luma of RGB input, else as is."""
    # the scale folded into the coefficients (one pass); the library's one luma implementation (_grey.grey255)
    return grey255(t.to(dtype), data_range, "yiq" if color == "yiq" else None, None, fold_scale=True)


def rounded(t: torch.Tensor) -> torch.Tensor:
    """Round to integers with a straight-through gradient (usable as a loss)."""
    return t.round() + (t - t.detach())


# ---------------------------------------------------------------------------------------------------- VIFp


@dataclass(frozen=True)
class VifpConvention:
    eps: float  # variance floor / zero-variance threshold, 0–255 units
    ratio_eps: bool  # piq: (Σnum + eps) / (Σden + eps)
    relative_floor: bool  # frame-analytics: floor eps + r·E[y²] per position, strict masks, float64 terms


VIFP_CONVENTIONS = {
    "matlab": VifpConvention(eps=1e-10, ratio_eps=False, relative_floor=False),
    "piq": VifpConvention(eps=1e-8, ratio_eps=True, relative_floor=False),
    "frame_analytics": VifpConvention(eps=1e-10, ratio_eps=False, relative_floor=True),
}
VIFP_COLORS = ("yiq", "per_channel")
VIFP_SCALES = 4


@functools.lru_cache(maxsize=None)
def gaussian_taps(n: int) -> tuple:
    """1-D factor of MATLAB ``fspecial('gaussian', n, n/5)`` (the 2-D window is its outer product)."""
    sigma = n / 5.0
    r = (n - 1) / 2.0
    g = [math.exp(-((k - r) ** 2) / (2 * sigma * sigma)) for k in range(n)]
    s = math.fsum(g)
    return tuple(v / s for v in g)


def vifp_window(scale: int) -> int:
    return 2 ** (VIFP_SCALES - scale) + 1  # 17, 9, 5, 3


@functools.lru_cache(maxsize=None)
def vifp_min_side() -> int:
    """Shortest side with at least one valid position at every scale (41, as piq checks)."""
    n = 1
    while True:
        s, ok = n, True
        for scale in range(VIFP_SCALES):
            w = vifp_window(scale)
            if scale:
                if s < w:
                    ok = False
                    break
                s = (s - w) // 2 + 1
            if s < w:
                ok = False
                break
        if ok:
            return n
        n += 1


def vifp_terms(moments: torch.Tensor, c: int, sigma_n_sq: float, conv: VifpConvention, ref_shift: torch.Tensor):
    """Per-image numerator and denominator sums of one scale from the stacked filtered moments
    [μx, μy, E x², E y², E xy] (each ``c`` planes; x distorted, y reference) of planes from which ``ref_shift``
    (reference) and some other constant (distorted) were subtracted. frame-analytics' relative floor depends on the
    dtype the moments were filtered in, so it is read before they go to float64."""
    rel = 1e-12 if moments.dtype == torch.float64 else 1e-5
    if conv.relative_floor:
        moments = moments.double()
    mx, my, exx, eyy, exy = moments.split(c, dim=1)
    if conv.relative_floor:
        shift = ref_shift.double()
        eyy_raw = eyy + 2 * shift * my + shift * shift  # E y² of the unshifted reference
    sd = exx - mx * mx  # distorted variance (σ2² of vifp_mscale.m)
    sr = eyy - my * my  # reference variance (σ1²)
    sxy = exy - mx * my
    zero = torch.zeros((), dtype=moments.dtype, device=moments.device)
    if conv.relative_floor:
        floor = conv.eps + rel * eyy_raw
    else:
        floor = conv.eps
        sr = torch.relu(sr)
    # vifp_mscale.m's chain of masks, folded: where σ1² < ε, σ2² < ε or g < 0 the gain is set to 0, so the
    # numerator term is log(1) = 0 whatever σv² becomes; σ1² < ε also leaves the denominator.
    informative = sr >= floor
    g = sxy / (sr + floor)
    g = torch.where(informative & (sd >= floor) & (g > 0), g, zero)
    sr = torch.where(informative, sr, zero)
    sv = sd - g * sxy
    sv = torch.maximum(sv, floor) if conv.relative_floor else sv.clamp_min(floor)
    num = torch.log10(1 + g * g * sr / (sv + sigma_n_sq)).sum(dim=(1, 2, 3))
    den = torch.log10(1 + sr / sigma_n_sq).sum(dim=(1, 2, 3))
    return num, den


def vif_p(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    color: str = "yiq",
    sigma_n_sq: float = 2.0,
    backend: str = "auto",
) -> torch.Tensor:
    """Pixel-domain VIF (``vifp_mscale.m``) of each pair: (N,) for reduction='none', else a scalar. Higher = better.

    ``x`` distorted, ``y`` reference: N×C×H×W (or C×H×W / H×W), uint8 (data_range=255) or float in
    [0, data_range], at least 41×41. ``color``: 'yiq' (luma of RGB; grey as is) or 'per_channel'. ``sigma_n_sq``:
    the visual noise variance in 0–255 units. ``backend``: 'auto' / 'native' compute each scale's sums with the
    fused ``vifp_stats`` kernel, 'reference' with the plain PyTorch moment maps below.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if convention not in VIFP_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(VIFP_CONVENTIONS)}, got {convention!r}")
    if color not in VIFP_COLORS:
        raise ValueError(f"color must be one of {VIFP_COLORS}, got {color!r}")
    if not sigma_n_sq > 0:
        raise ValueError(f"sigma_n_sq must be > 0, got {sigma_n_sq!r}")
    need = vifp_min_side()
    if min(x.shape[-2:]) < need:
        raise ValueError(f"x and y are {x.shape[-2]}×{x.shape[-1]}; VIFp needs at least {need}×{need}" + LAYOUT_HINT)
    conv = VIFP_CONVENTIONS[convention]
    dtype = compute_dtype(x.dtype)
    x, y = luma_255(x, data_range, dtype, color), luma_255(y, data_range, dtype, color)
    c = x.shape[1]
    if _ops.use_native(backend) and _ops._has_op("vifp_stats"):
        num, den = _vifp_sums_native(x, y, sigma_n_sq, conv, backend)
    else:
        num, den = _vifp_sums_torch(x, y, sigma_n_sq, conv)
    if conv.ratio_eps:
        score = (num + conv.eps) / (den + conv.eps)
    elif conv.relative_floor:
        score = _frame_analytics_ratio(num, den, x, y, c)
    else:
        score = num / den
    return reduce(score.to(dtype), reduction)


def _vifp_sums_native(x, y, sigma_n_sq, conv, backend):
    """Σnum, Σden over the scales and channels, (N,) float64: each scale in the fused ``vifp_stats`` kernel (which
    takes its own level off before squaring), ``decimate2`` between scales."""
    # frame-analytics' relative floor depends on the dtype its moments were filtered in
    floor_rel = (1e-12 if x.dtype == torch.float64 else 1e-5) if conv.relative_floor else 0.0
    num = den = 0
    for scale in range(VIFP_SCALES):
        taps = gaussian_taps(vifp_window(scale))
        if scale:
            x, y = _ops.decimate2(x, taps, backend), _ops.decimate2(y, taps, backend)
        n_s, d_s = _ops.vifp_stats(x, y, taps, sigma_n_sq, conv.eps, floor_rel, "valid", backend)
        num, den = num + n_s.sum(dim=1), den + d_s.sum(dim=1)
    return num, den


def _vifp_sums_torch(x, y, sigma_n_sq, conv):
    """The same sums from plain PyTorch moment maps (``backend='reference'``)."""
    c = x.shape[1]
    planes = torch.cat([x, y], dim=1)
    # Variances and covariances do not change when each plane is shifted by a constant, but float32 loses up to
    # 1e-4 of VIFp to the cancellation in E[x²] − μ² at 0–255 magnitudes: take each plane's mean off first.
    shift = planes.detach().mean(dim=(-2, -1), keepdim=True)
    planes = planes - shift
    num = den = 0
    for scale in range(VIFP_SCALES):
        taps = gaussian_taps(vifp_window(scale))
        if scale:
            planes = correlate_axis(correlate_axis(planes, taps, -2, 2), taps, -1, 2)
        a, b = planes.split(c, dim=1)
        stack = torch.cat([planes, a * a, b * b, a * b], dim=1)
        moments = correlate_axis(correlate_axis(stack, taps, -2), taps, -1)
        n_s, d_s = vifp_terms(moments, c, sigma_n_sq, conv, shift[:, c:])
        num, den = num + n_s, den + d_s
    return num, den


def _frame_analytics_ratio(num, den, x, y, c):
    """frame-analytics' guards: Σden below 1e-12 per summed term scores 1 for a same-mean pair without information
    (else 0); identical images score exactly 1."""
    h, w = x.shape[-2:]
    terms = 0
    for scale in range(VIFP_SCALES):
        win = vifp_window(scale)
        if scale:
            h, w = (h - win) // 2 + 1, (w - win) // 2 + 1
        terms += c * (h - win + 1) * (w - win + 1)
    tiny = 1e-12 * max(terms, 1)
    mean_x = x.double().mean(dim=(1, 2, 3)) / 255
    mean_y = y.double().mean(dim=(1, 2, 3)) / 255
    same_dc = (mean_x - mean_y).abs() <= 1e-6
    fallback = torch.where(same_dc & (num <= tiny), torch.ones_like(num), torch.zeros_like(num))
    score = torch.where(den > tiny, num / den.clamp_min(tiny), fallback)
    identical = (x == y).flatten(1).all(dim=1)
    return torch.where(identical, torch.ones_like(score), score)


vif_p.lower_is_better = False


class VIFp(MetricModule):
    """Module form of :func:`vif_p`; ``loss=True`` returns 1 - VIFp."""

    metric = staticmethod(vif_p)


# ---------------------------------------------------------------------------------------------------- VIF (wavelet)

# matlabPyrTools sp5Filters: lo0filt (5×5) and lofilt (9×9, ×2 in the file) are even in both axes and symmetric:
# their top-left quadrants (centre row/column included). Band 0 (7×7) is even in rows and odd in columns: its
# first three columns, top half (centre row included); band 3 of the pyramid is −band0ᵀ.
SP5_LO0_QUADRANT = ((0.00341614, -0.01551246, -0.03848215),
                    (-0.01551246, 0.05586982, 0.15925570),
                    (-0.03848215, 0.15925570, 0.40304148))
SP5_LO_QUADRANT = ((0.00085404, -0.00244917, -0.00387812, -0.00944432, -0.00962054),
                   (-0.00244917, -0.00523281, -0.00661117, 0.00410600, 0.01002988),
                   (-0.00387812, -0.00661117, 0.01396746, 0.03277038, 0.03981393),
                   (-0.00944432, 0.00410600, 0.03277038, 0.06426333, 0.08169618),
                   (-0.00962054, 0.01002988, 0.03981393, 0.08169618, 0.10096540))
SP5_BAND0_COLUMNS = ((0.00277643, 0.00496194, 0.01026699, 0.01455399),
                     (-0.00986904, -0.00893064, 0.01189859, 0.02755155),
                     (-0.01021852, -0.03075356, -0.08226445, -0.11732297))
VIF_LEVELS, VIF_M, VIF_SIGMA_NSQ = 4, 3, 0.4


@dataclass(frozen=True)
class VifConvention:
    tol: float
    den_eps: float  # pyiqa: Σnum / (Σden + 1e-12)
    luma: str  # 'rounded' (0–255 integers) | 'pyiqa' (float32 [0, 1] YIQ route, then rounded)


VIF_CONVENTIONS = {
    "matlab": VifConvention(tol=1e-15, den_eps=0.0, luma="rounded"),
    "pyiqa": VifConvention(tol=1e-12, den_eps=1e-12, luma="pyiqa"),
}


def _mirror(quadrant) -> torch.Tensor:
    t = torch.tensor(quadrant, dtype=torch.float64)
    t = torch.cat([t, t[:-1].flip(0)], 0)
    return torch.cat([t, t[:, :-1].flip(1)], 1)


def sp5_filters() -> dict:
    """The four sp5Filters kernels the selected bands need, float64, as correlation kernels (corrDn)."""
    half = torch.tensor(SP5_BAND0_COLUMNS, dtype=torch.float64).t()  # rows 0–3, columns 0–2
    left = torch.cat([half, half[:-1].flip(0)], 0)  # 7×3
    band0 = torch.cat([left, torch.zeros(7, 1, dtype=torch.float64), -left.flip(1)], 1)
    return {"lo0": _mirror(SP5_LO0_QUADRANT), "band0": band0, "band3": -band0.t(), "lo": 2 * _mirror(SP5_LO_QUADRANT)}


@functools.lru_cache(maxsize=None)
def separable_terms(name: str) -> tuple:
    """((vertical taps, horizontal taps), …) whose outer products sum to the kernel: its SVD, of rank 3 (lo0 and the
    bands, by their symmetries) or 5 (lo); the dropped singular values are below 1e-17. On CPU the 1-D slice
    passes are 2–4× faster than a single-channel conv2d of the 2-D kernel."""
    u, sv, vh = torch.linalg.svd(sp5_filters()[name])
    return tuple((tuple((u[:, i] * sv[i]).tolist()), tuple(vh[i].tolist()))
                 for i in range(len(sv)) if sv[i] > 1e-12 * sv[0])


def correlate_2d(planes: torch.Tensor, name: str, stride: int = 1) -> torch.Tensor:
    """'valid' correlation with an sp5 kernel (sum of separable terms), keeping every ``stride``-th sample."""
    out = None
    for vertical, horizontal in separable_terms(name):
        term = correlate_axis(correlate_axis(planes, vertical, -2, stride), horizontal, -1, stride)
        out = term if out is None else out.add_(term)
    return out


def vif_window(level: int) -> int:
    """Box window of the distortion-channel estimate at pyramid level ``level`` (0 = finest): 17, 9, 5, 3."""
    return 2 ** (VIF_LEVELS - level) + 1


@functools.lru_cache(maxsize=None)
def vif_min_side() -> int:
    """Shortest side for which every selected band keeps at least one 3×3 block after vifvec.m's border crop and
    every 'reflect1' padding fits."""
    n = 1
    while True:
        s, ok = n, n > 2
        for level in range(VIF_LEVELS):
            win = vif_window(level)
            crop = s // VIF_M * VIF_M
            offset = math.ceil((win - 1) / 2 / VIF_M)
            if s <= 3 or (level < VIF_LEVELS - 1 and s <= 4) or crop <= (win - 1) // 2 \
                    or crop // VIF_M - 2 * offset < 1:
                ok = False
                break
            s = (s + 1) // 2
        if ok:
            return n
        n += 1


def steerable_bands(img: torch.Tensor) -> list:
    """The two selected bands of each of the 4 levels: list of P×2×h×w (finest first). buildSpyr with 'reflect1'
    borders (torch's 'reflect': the edge sample is not repeated)."""
    cur = correlate_2d(F.pad(img, (2, 2, 2, 2), mode="reflect"), "lo0")
    out = []
    for level in range(VIF_LEVELS):
        padded = F.pad(cur, (3, 3, 3, 3), mode="reflect")
        out.append(torch.cat([correlate_2d(padded, "band0"), correlate_2d(padded, "band3")], dim=1))
        if level < VIF_LEVELS - 1:
            cur = correlate_2d(F.pad(cur, (4, 4, 4, 4), mode="reflect"), "lo", stride=2)
    return out


def channel_estimate(ref: torch.Tensor, dist: torch.Tensor, win: int, tol: float):
    """vifsub_est_M: gain g and noise variance σv² of each 3×3 block (box window ``win``, 'reflect1', sampled at
    block centres)."""
    p = (win - 1) // 2
    stack = torch.cat([ref, dist, ref * ref, dist * dist, ref * dist], dim=1)
    stack = F.pad(stack, (p, p, p, p), mode="reflect")[..., 1:, 1:]
    ones = (1.0,) * win
    sums = correlate_axis(correlate_axis(stack, ones, -2, VIF_M), ones, -1, VIF_M)
    k = ref.shape[1]
    s_r, s_d, s_rr, s_dd, s_rd = sums.split(k, dim=1)
    area = float(win * win)
    m_r, m_d = s_r / area, s_d / area
    cov = s_rd - area * m_r * m_d
    ss = torch.relu(s_rr - area * m_r * m_r)
    ssn = torch.relu(s_dd - area * m_d * m_d)
    g = cov / (ss + tol)
    vv = (ssn - g * cov) / area
    zero = torch.zeros((), dtype=g.dtype, device=g.device)
    low = ss < tol
    g = torch.where(low, zero, g)
    vv = torch.where(low, ssn, vv)  # vifvec.m assigns the window sum here, not the variance (kept)
    low_n = ssn < tol
    g = torch.where(low_n, zero, g)
    vv = torch.where(low_n, zero, vv)
    negative = g < 0
    vv = torch.where(negative, ssn, vv)
    g = torch.where(negative, zero, g)
    vv = torch.where(vv < tol, torch.full_like(vv, tol), vv)
    return g, vv


def offset_sums(p: torch.Tensor, n_r: int, n_c: int, offsets) -> dict:
    """{(r, c): p[..., r:r+n_r, c:c+n_c].sum((-2, -1))} for a few nearby offsets: the rows common to every window
    are summed once, then each window adds its own edge rows; the column windows are sums of the row profiles."""
    rows = sorted({r for r, _ in offsets})
    r_lo, r_hi = rows[0], rows[-1]
    core = p[..., r_hi:r_lo + n_r, :].sum(-2)
    profiles = {}
    for r in rows:
        profile = core
        if r < r_hi:
            profile = profile + p[..., r:r_hi, :].sum(-2)
        if r > r_lo:
            profile = profile + p[..., r_lo + n_r:r + n_r, :].sum(-2)
        profiles[r] = profile
    return {(r, c): profiles[r][..., c:c + n_c].sum(-1) for r, c in offsets}


def block_covariance(y: torch.Tensor) -> torch.Tensor:
    """P×H×W → P×9×9: covariance of the 9 samples of every overlapping 3×3 block (element order row, column, as
    ``F.unfold``), normalised by the number of blocks like refparams_vecgsm. Each of the 13 distinct offsets
    between two block elements is one product of shifted planes, summed over the few windows that need it."""
    _, h, w = y.shape
    n_r, n_c = h - VIF_M + 1, w - VIF_M + 1
    count = n_r * n_c
    cells = [(r, c) for r in range(VIF_M) for c in range(VIF_M)]
    mean = {k: v / count for k, v in offset_sums(y, n_r, n_c, cells).items()}
    entries = {}
    for dr in range(VIF_M):
        for dc in range(-VIF_M + 1, VIF_M):
            if dr == 0 and dc < 0:
                continue
            pairs = [(a, (a[0] + dr, a[1] + dc)) for a in cells if (a[0] + dr, a[1] + dc) in cells]
            left, right = max(0, -dc), max(0, dc)  # columns the product loses on each side
            prod = y[:, :h - dr, left:w - right] * y[:, dr:, left + dc:w - right + dc]
            sums = offset_sums(prod, n_r, n_c, [(a[0], a[1] - left) for a, _ in pairs])
            for a, b in pairs:
                value = sums[(a[0], a[1] - left)] / count - mean[a] * mean[b]
                entries[a, b] = entries[b, a] = value
    return torch.stack([entries[a, b] for a in cells for b in cells], dim=-1).reshape(-1, VIF_M * VIF_M,
                                                                                       VIF_M * VIF_M)


def gsm_field(ref: torch.Tensor):
    """refparams_vecgsm: s² of each non-overlapping 3×3 block and the eigenvalues of the block covariance.
    ``ref`` is N×K×H×W (H, W multiples of 3) → s² N×K×H/3×W/3, eigenvalues N×K×9.

    The 9×9 covariance is accumulated in float64 whatever the input: its small eigenvalues dominate s² = vᵀC⁻¹v,
    and a float32 accumulation moves VIF by up to 1e-4 on the TID2013 pairs (vifvec.m works in double)."""
    n, k, h, w = ref.shape
    planes = ref.reshape(n * k, 1, h, w)
    wide = planes.double()[:, 0]
    cu = block_covariance(wide - wide.mean(dim=(1, 2), keepdim=True))  # centring first: smaller products
    inverse = torch.linalg.pinv(cu, hermitian=True).to(ref.dtype)  # = inv(cu) unless cu is singular (flat band)
    tiles = F.pixel_unshuffle(planes, VIF_M).flatten(2)  # (P, 9, L'): non-overlapping blocks, same element order
    ss = (tiles * (inverse @ tiles)).sum(dim=1) / (VIF_M * VIF_M)
    eig = torch.linalg.eigvalsh(cu).to(ref.dtype)
    return ss.reshape(n, k, h // VIF_M, w // VIF_M), eig.reshape(n, k, VIF_M * VIF_M)


def vif_luma(t: torch.Tensor, data_range: float, dtype: torch.dtype, conv: VifConvention) -> torch.Tensor:
    """The 8-bit grey image vifvec.m was run on, as ``dtype`` in 0–255 units (straight-through gradient)."""
    if conv.luma == "pyiqa":
        if t.dtype == torch.uint8:  # pyiqa's route for 8-bit files: float32 in [0, 1] first, so ties round alike
            t, data_range = t.float() / 255, 1.0
        u = t.to(dtype)
        u = u / data_range if data_range != 1 else u
        if u.shape[1] == 3:  # its full YIQ product (float32 coefficients, whatever the input), of which it keeps Y
            yiq = torch.tensor((BT601, (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112)), dtype=torch.float32)
            yiq = yiq.to(dtype=dtype, device=u.device)
            u = torch.matmul(u.permute(0, 2, 3, 1), yiq.t()).permute(0, 3, 1, 2)[:, :1]
        return rounded(u * 255)
    # 'matlab': the 8-bit levels (uint8 and k/255 float input give the same ones), then their luma rounded half up,
    # in exact integer arithmetic: 299·R + 587·G + 114·B (< 2^24, exact in float32), ties (…500) up.
    u = t.to(dtype)
    scaled = u * (255.0 / data_range) if data_range != 255 else u
    with torch.no_grad():
        levels = torch.floor(scaled + 0.5)
        if levels.shape[1] == 3:
            r, g, b = levels.unbind(1)
            levels = torch.floor((299 * r + 587 * g + 114 * b + 500) / 1000)[:, None]
    if not scaled.requires_grad:
        return levels
    smooth = grey255(scaled, 255.0, "yiq", None)  # the unrounded luma (gray: the plane itself)
    return levels + (smooth - smooth.detach())  # straight-through gradient of the rounding


def vif(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    sigma_nsq: float = VIF_SIGMA_NSQ,
) -> torch.Tensor:
    """Wavelet-domain VIF (``vifvec.m``) of each pair: (N,) for reduction='none', else a scalar. Higher = better.

    ``x`` distorted, ``y`` reference: N×C×H×W (or C×H×W / H×W) with C = 1 (grey) or 3 (RGB), uint8
    (data_range=255) or float in [0, data_range]. ``sigma_nsq``: the visual noise variance (0–255 units).
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if convention not in VIF_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(VIF_CONVENTIONS)}, got {convention!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"VIF needs 1 (grey) or 3 (RGB) channels, got {x.shape[1]}")
    if not sigma_nsq > 0:
        raise ValueError(f"sigma_nsq must be > 0, got {sigma_nsq!r}")
    need = vif_min_side()
    if min(x.shape[-2:]) < need:
        raise ValueError(f"x and y are {x.shape[-2]}×{x.shape[-1]}; VIF needs at least {need}×{need}" + LAYOUT_HINT)
    conv = VIF_CONVENTIONS[convention]
    dtype = compute_dtype(x.dtype)
    n = x.shape[0]
    both = torch.cat([vif_luma(y, data_range, dtype, conv), vif_luma(x, data_range, dtype, conv)])
    num = den = 0
    for level, bands in enumerate(steerable_bands(both)):
        h, w = bands.shape[-2] // VIF_M * VIF_M, bands.shape[-1] // VIF_M * VIF_M
        bands = bands[..., :h, :w]
        ref, dist = bands[:n], bands[n:]
        win = vif_window(level)
        g, vv = channel_estimate(ref, dist, win, conv.tol)
        ss, eig = gsm_field(ref)
        o = math.ceil((win - 1) / 2 / VIF_M)
        crop = (..., slice(o, g.shape[-2] - o), slice(o, g.shape[-1] - o))
        g, vv, ss = g[crop].flatten(2)[..., None], vv[crop].flatten(2)[..., None], ss[crop].flatten(2)[..., None]
        lam = eig[:, :, None, :]
        num = num + torch.log2(1 + g * g * ss * lam / (vv + sigma_nsq)).sum(dim=(1, 2, 3))
        den = den + torch.log2(1 + ss * lam / sigma_nsq).sum(dim=(1, 2, 3))
    return reduce(num / (den + conv.den_eps), reduction)


vif.lower_is_better = False


class VIF(MetricModule):
    """Module form of :func:`vif`; ``loss=True`` returns 1 - VIF."""

    metric = staticmethod(vif)
