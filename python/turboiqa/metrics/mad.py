"""MAD — most apparent distortion. E. C. Larson, D. M. Chandler, "Most apparent distortion: full-reference image
quality assessment and the role of strategy", Journal of Electronic Imaging 19(1), 011006, 2010.

Two strategies, combined by an adaptive weight. Detection (near-threshold, "HI"): both images mapped to perceived
luminance L = 0.02874·I^(2.2/3), filtered by a contrast sensitivity function (CSF, in the Fourier domain); on
16×16 patches every 4 pixels, the log contrast of the error (std of the filtered difference over the reference's
patch mean) is compared with the reference's masking contrast (the smallest of the four neighbouring patch stds,
halved); the excess weights the local MSE, HI = 200·RMS over patches. Appearance (supra-threshold, "LO"): log-Gabor
decompositions (5 scales, 4 orientations, computed with FFTs) of both images; per patch the differences of the
std, skewness and kurtosis of each subband magnitude, |Δσ| + 2|Δskew| + |Δkurt|, weighted per subband; LO = RMS
over patches. MAD = LO^(1−α)·HI^α with α = 1/(1 + β₁·HI^β₂), β₁ = e^(−2.55/3.35), β₂ = 1/(3.35·ln 10).
Lower = better (0 for identical images).

Reference values: the "official" MAD scores pyiqa publishes (ResultsCalibra/results_official.csv) for the TID2013
pairs are reproduced by pyiqa 0.1.16's ``mad`` formulation (to their 4 printed decimals); the authors' MATLAB code is
not public, so that formulation is the reference here. It keeps these details, which differ from the paper:
each RGB channel scored on its own (0–255) and the per-channel MADs averaged (``color='rgb'``); the CSF table
(make_csf) built for W×H and read back as H×W (a transposed reshape: for non-square images the CSF is scrambled);
the log-Gabor subband weights indexed by orientation (0.5, 0.75, 1, 5)/13.25 instead of by scale; the log-Gabor
radius "centre" fix applied one sample off the centre; √(·+1e-12) in magnitudes and stds; and, for RGB, the
per-patch statistic maps of the three channels interleaved (stored position-major, read back channel-major by a
reshape) before the masking step and the norms — the local MSE map is not.

``convention=``: 'matlab' (the reference values, default) and 'pyiqa' are the same formulation.
``color``: 'rgb' (per channel, averaged: the reference values and pyiqa's default) or 'yiq' (pyiqa's
test_y_channel=True: the YIQ luma 0.299/0.587/0.114 at 0–255 rounded with torch.round). Grey (C = 1) input is
scored as it is. The patch statistics are computed from exact 4×4-block central moments combined per patch (no
16×16 unfold), the CSF and log-Gabor filters are cached per size, dtype and device. Differentiable as pyiqa's.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..dtypes import compute_dtype
from ..validate import check_pair, check_reduction, reduce
from ._grey import grey255
from .module import MetricModule

MAD_CONVENTIONS = {"matlab": {}, "pyiqa": {}}
MAD_COLORS = ("rgb", "yiq")
PATCH, STEP = 16, 4
BLOCKS = PATCH // STEP
EPS = 1e-12
# detection
K_LUM, GAMMA = 0.02874, 2.2 / 3
G_MEAN, C_SLOPE, CI_THRESH, CD_THRESH = 0.5, 1.0, -5.0, -5.0
# appearance: log-Gabor bank
NSCALE, NORIENT, MIN_WAVELENGTH, MULT, SIGMA_ONF, D_THETA_ON_SIGMA = 5, 4, 3, 3, 0.55, 1.5
ORIENT_WEIGHTS = (0.5 / 13.25, 0.75 / 13.25, 1 / 13.25, 5 / 13.25)
# combination
THRESH1, THRESH2 = 2.55, 3.35
BETA1 = math.exp(-THRESH1 / THRESH2)
BETA2 = 1 / (math.log(10) * THRESH2)
MIN_SIZE = PATCH


@functools.lru_cache(maxsize=16)
def _csf_half(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The CSF as applied to the unshifted spectrum (ifftshift of the centred table), made Hermitian-symmetric —
    only the real part of the filtered image is kept, which is what the symmetric part gives — and cut to the
    rfft2 half plane."""
    rows, cols, nfreq = h, w, 32
    xv = np.arange(-(cols - 1) / 2.0, (cols + 1) / 2.0)
    yv = np.arange(-(rows - 1) / 2.0, (rows + 1) / 2.0)
    xp, yp = np.meshgrid(xv, yv)
    plane = ((xp + 1j * yp) / cols) * 2 * nfreq
    rad = np.abs(plane)
    wgt = 0.7
    rad = rad / ((1 - wgt) / 2 * np.cos(4 * np.angle(plane)) + (1 + wgt) / 2)
    csf = 2.6 * (0.0192 + 0.114 * rad) * np.exp(-((0.114 * rad) ** 1.1))
    csf[rad < 7.8909] = 0.9809
    csf = np.ascontiguousarray(csf.T).reshape(h, w)  # the reference formulation's transposed reshape
    csf = csf.astype(np.float32).astype(np.float64)  # the table is stored in float32 there
    c = np.fft.ifftshift(csf)
    mirrored = np.roll(c[::-1, ::-1], (1, 1), axis=(0, 1))  # c(-k)
    sym = (c + mirrored) / 2
    return torch.from_numpy(np.ascontiguousarray(sym[:, : w // 2 + 1])).to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=16)
def _log_gabor(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(NORIENT·NSCALE)×h×w log-Gabor filters for the unshifted spectrum, orientation-major."""
    rows, cols = h, w
    x = np.ones((rows, 1)) * np.arange(-cols / 2.0, cols / 2.0) / (cols / 2.0)
    y = np.arange(-rows / 2.0, rows / 2.0)[:, None] * np.ones((1, cols)) / (rows / 2.0)
    radius = np.sqrt(x**2 + y**2)
    radius[int(np.round(rows / 2 + 1)), int(np.round(cols / 2 + 1))] = 1
    radius = np.log(radius + 1e-12)
    theta = np.arctan2(-y, x)
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    theta_sigma = math.pi / NORIENT / D_THETA_ON_SIGMA
    radial = []
    for s in range(NSCALE):
        rfo = (1.0 / (MIN_WAVELENGTH * MULT**s)) / 0.5
        g = np.exp((radius - np.log(rfo)) ** 2 / (-(2 * np.log(SIGMA_ONF) ** 2)))
        g[int(np.round(rows / 2)), int(np.round(cols / 2))] = 0
        radial.append(g)
    bank = []
    for o in range(NORIENT):
        angl = o * math.pi / NORIENT
        ds = sin_t * np.cos(angl) - cos_t * np.sin(angl)
        dc = cos_t * np.cos(angl) + sin_t * np.sin(angl)
        spread = np.exp(-(np.abs(np.arctan2(ds, dc)) ** 2) / (2 * theta_sigma**2))
        bank.extend(np.fft.fftshift(radial[s] * spread) for s in range(NSCALE))
    return torch.from_numpy(np.stack(bank)).to(dtype=dtype, device=device)


def _blocks(t: torch.Tensor, nh: int, nw: int) -> torch.Tensor:
    """B×C×H×W → B×C×nh×nw×16 (contiguous): the 4×4 blocks that the patches of the first nh−3 × nw−3 positions
    cover."""
    b, c = t.shape[:2]
    t = t[..., : nh * STEP, : nw * STEP].reshape(b, c, nh, STEP, nw, STEP)
    return t.permute(0, 1, 2, 4, 3, 5).reshape(b, c, nh, nw, STEP * STEP)


def patch_moments(t: torch.Tensor, order: int):
    """Mean and central moments M2…M_order (sums, not means) of every 16×16 patch at stride 4: exact central moments
    of the 4×4 blocks, combined per patch with the pairwise formulas M_p = Σ_b Σ_j C(p,j)·M_{p−j,b}·δ_b^j."""
    h, w = t.shape[-2:]
    ph, pw = (h - PATCH) // STEP + 1, (w - PATCH) // STEP + 1
    blk = _blocks(t, ph + BLOCKS - 1, pw + BLOCKS - 1)
    mu_b = blk.mean(dim=-1)
    d = blk - mu_b[..., None]
    d2 = d * d
    bm = [None, None, d2.sum(dim=-1)]
    if order >= 3:
        bm.append((d2 * d).sum(dim=-1))
    if order >= 4:
        bm.append((d2 * d2).sum(dim=-1))
    mu = F.avg_pool2d(mu_b, BLOCKS, stride=1)
    n = float(STEP * STEP)
    acc = [None, None] + [0.0] * (order - 1)
    for dy in range(BLOCKS):
        for dx in range(BLOCKS):
            sl = (..., slice(dy, dy + ph), slice(dx, dx + pw))
            delta = mu_b[sl] - mu
            d2 = delta * delta
            b2 = bm[2][sl]
            acc[2] = acc[2] + (b2 + n * d2)
            if order >= 3:
                b3 = bm[3][sl]
                acc[3] = acc[3] + (b3 + delta * (3 * b2 + n * d2))
            if order >= 4:
                acc[4] = acc[4] + (bm[4][sl] + delta * (4 * b3 + delta * (6 * b2 + n * d2)))
    return mu, acc


def _channel_interleave(t: torch.Tensor) -> torch.Tensor:
    """The reference formulation stores patch statistics position-major (B×L×C) and reads them back as B×C×H'×W'
    (a reshape): with several channels the statistic maps come back interleaved. Identity for one channel."""
    b, c, h, w = t.shape
    return t if c == 1 else t.permute(0, 2, 3, 1).reshape(b, c, h, w)


def _std(m2: torch.Tensor) -> torch.Tensor:
    return (m2 / (PATCH * PATCH) + EPS).sqrt()


def detection_index(ref: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """HI per image and channel (B×C), images in 0–255."""
    b, c, h, w = ref.shape
    lum = K_LUM * (torch.cat([ref, dst.abs()]) + EPS).pow(GAMMA)
    csf = _csf_half(h, w, lum.dtype, lum.device)
    lum = torch.fft.irfft2(torch.fft.rfft2(lum) * csf, s=(h, w))
    lref, ldst = lum[:b], lum[b:]
    mean_ref, (_, _, m2_ref) = patch_moments(lref, 2)
    _, (_, _, m2_err) = patch_moments(ldst - lref, 2)
    mean_ref = _channel_interleave(mean_ref)
    std_ref, std_err = _channel_interleave(_std(m2_ref)), _channel_interleave(_std(m2_err))
    # the smallest std of the patch and its upper/left neighbours (2×2 min with the edge replicated), halved
    std_min = -F.max_pool2d(-std_ref, 2, stride=1, padding=1)[..., : std_ref.shape[-2], : std_ref.shape[-1]] / 2
    ci_ref = torch.log(((std_min + EPS) / (mean_ref + EPS)).abs())
    ci_dst = torch.log(((std_err + EPS) / (mean_ref + EPS)).abs())
    ci_dst = ci_dst.masked_fill(mean_ref < G_MEAN, -1000.0)
    limit = C_SLOPE * (ci_ref - CI_THRESH) + CD_THRESH
    idx1 = (ci_ref > CI_THRESH) & (ci_dst > limit)
    idx2 = (ci_ref <= CI_THRESH) & (ci_dst > CD_THRESH)
    zero = torch.zeros((), dtype=ci_ref.dtype, device=ci_ref.device)
    msk = torch.where(idx1, ci_dst - limit, torch.where(idx2, ci_dst - CD_THRESH, zero))
    # local MSE of the 0–255 images over the same patches
    ph, pw = msk.shape[-2:]
    err = _blocks((ref - dst).square(), ph + BLOCKS - 1, pw + BLOCKS - 1).sum(dim=-1)
    lmse = F.avg_pool2d(err, BLOCKS, stride=1) / (STEP * STEP)
    mp = msk * lmse
    return mp.flatten(2).norm(dim=2) / math.sqrt(ph * pw) * 200


def appearance_index(ref: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """LO per image and channel (B×C), images in 0–255."""
    b, c, h, w = ref.shape
    spec = torch.fft.fft2(torch.cat([ref, dst]))
    bank = _log_gabor(h, w, ref.dtype, ref.device)
    total = 0.0
    for o in range(NORIENT):
        for s in range(NSCALE):
            e = torch.fft.ifft2(spec * bank[o * NSCALE + s])
            mag = (e.real.square() + e.imag.square() + EPS).sqrt()
            _, m = patch_moments(mag, 4)
            std = _std(m[2])
            var_n = std.square()
            skew = m[3] / (PATCH * PATCH) / (var_n * std)
            kurt = m[4] / (PATCH * PATCH) / (var_n * var_n) - 3.0
            term = ((std[:b] - std[b:]).abs() + 2 * (skew[:b] - skew[b:]).abs() + (kurt[:b] - kurt[b:]).abs())
            total = total + ORIENT_WEIGHTS[o] * term
    total = _channel_interleave(total)  # the statistics are interleaved alike: so is their elementwise combination
    ph, pw = total.shape[-2:]
    return total.flatten(2).norm(dim=2) / math.sqrt(ph * pw)


def mad(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    color: str = "rgb",
    convention: str = "matlab",
) -> torch.Tensor:
    """MAD of each image pair (lower = better): (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; MAD is not symmetric): N×C×H×W (or
    C×H×W / H×W), uint8 (data_range=255) or float in [0, data_range]; both sides at least 16. ``color``: 'rgb'
    (every channel scored, the MADs averaged) or 'yiq' (8-bit YIQ luma of RGB input).
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if convention not in MAD_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(MAD_CONVENTIONS)}, got {convention!r}")
    if color not in MAD_COLORS:
        raise ValueError(f"color must be one of {MAD_COLORS}, got {color!r}")
    if color == "yiq" and x.shape[1] != 3:
        raise ValueError(f"color='yiq' needs 3-channel RGB x, got {x.shape[1]} channels")
    h, w = x.shape[-2:]
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"x and y must be at least {MIN_SIZE}×{MIN_SIZE} for MAD (16×16 patches), got {h}×{w}")
    if color == "yiq":
        dst, ref = grey255(x, data_range, "yiq_f32", "pyiqa"), grey255(y, data_range, "yiq_f32", "pyiqa")
    else:
        dst, ref = grey255(x, data_range, None, None), grey255(y, data_range, None, None)
    hi = detection_index(ref, dst)
    lo = appearance_index(ref, dst)
    # LO^(1−α)·HI^α is 0 when either is 0 (0 < α < 1); computed on safe values there so that the gradient stays
    # finite (x^p has an infinite derivative at 0 for p < 1)
    live = (hi > 0) & (lo > 0)
    one = torch.ones((), dtype=hi.dtype, device=hi.device)
    hi_s, lo_s = torch.where(live, hi, one), torch.where(live, lo, one)
    alpha = 1 / (1 + BETA1 * hi_s.pow(BETA2))
    score = torch.where(live, lo_s.pow(1 - alpha) * hi_s.pow(alpha), 0 * hi).mean(dim=1)
    return reduce(score.to(compute_dtype(x.dtype)), reduction)


mad.lower_is_better = True


class MAD(MetricModule):
    """Module form of :func:`mad` (lower = better; no loss form: MAD is an unbounded distance)."""

    metric = staticmethod(mad)
    bounded_similarity = False
