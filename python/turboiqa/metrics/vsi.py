"""VSI — L. Zhang, Y. Shen, H. Li, "VSI: a visual saliency-induced index for perceptual image quality assessment",
IEEE TIP 23(10), 2014.

Reference code: Lin Zhang's MATLAB ``VSI.m`` with its saliency model ``SDSP.m`` (L. Zhang, Z. Gu, H. Li, ICIP 2013:
frequency prior = log-Gabor band-pass of CIELab at 256×256, location prior = centred Gaussian, colour prior =
warm colours). Higher = better (1 for identical images). ``convention=`` selects a whole set of choices that
reproduces one original or peer:

'matlab'
    VSI.m / SDSP.m as the published value of TID2013 i01_01_5 (0.96405, piq's MATLAB test) was computed: SDSP's
    bilinear resize to 256×256 and back samples the corner-aligned grid without antialiasing (interp2-style; this
    reproduces 0.96405 to 6e-7, MATLAB's own imresize does not, and the tool used is not documented); Lab with white (0.9642, 1, 0.8251); ``mat2gray`` without
    epsilon; F = max(1, round(min(H,W)/256)) (MATLAB rounding) and ``conv2(·, ones(F)/F², 'same')`` (zero border)
    sampled at (1:F:end); Scharr/16 ``conv2 'same'`` on L of LMN; score ΣS·W / ΣW [default]
'matlab_imresize'
    as 'matlab' with MATLAB's own ``imresize(·, 'bilinear')`` (antialiased triangle kernel when shrinking,
    half-pixel grid, mirrored border): 9.9e-5 below the published i01_01_5 value
'piq'
    piq.vsi: ``F.interpolate`` bilinear without antialiasing down to 256×256 and with ``align_corners=True`` back
    up; Lab white (0.96421…, 1, 0.82518…); machine epsilon in every min-max normalisation and in both pooled sums;
    replicate padding (⌊F/2⌋ top/left, ⌊(F-1)/2⌋ bottom/right) then ``avg_pool2d(F)``, Python rounding of F
'pyiqa'
    pyiqa (vsi): piq's choices computed in float64 whatever the input dtype, the log-Gabor filter built in float32,
    the RGB → XYZ / LMN matrices rounded to float32, √(· + eps) for the frequency prior and the gradient, (t +
    eps)^⅓ in Lab, and float32's epsilon added to every similarity denominator
'iqa_optimization'
    IQA-optimization's IQA_pytorch/VSI.py (K. Ding), whose scores pyiqa lists as VSI's "official" values: SDSP at
    full resolution (no 256×256 resize), its own Lab (white multiplied in, 6/29 thresholds), centre prior with
    0-based coordinates, 1e-12 in the normalisations and square roots, F×F ``avg_pool2d`` with F = max(1,
    round(min(H,W)/256)) (half to even), and (|S_M·S_N| + 1e-12)^β instead of the real part

Constants (0–255 units): C1 = 1.27 (saliency), C2 = 386 (gradient), C3 = 130 (chroma), α = 0.40, β = 0.02;
SDSP: ω0 = 0.021, σF = 1.34, σD = 145, σC = 0.001. Inputs are rescaled from ``data_range`` to 0–255 internally.
VSI is defined on RGB images; gray (C = 1) input is scored as R = G = B, as piq and pyiqa do (they repeat it;
here the rows of the colour matrices are summed instead, and the plane is read once). A uniform image gives NaN
under 'matlab' and 'matlab_imresize', as in SDSP.m, whose min-max normalisations divide by max - min = 0 (piq and
pyiqa add machine epsilon there).
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _ops
from ..dtypes import compute_dtype
from ..resample import auto_downsample_factor
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce
from ._grey import grey_pair, pool_geometry
from .module import MetricModule

C1, C2, C3, ALPHA, BETA = 1.27, 386.0, 130.0, 0.40, 0.02  # VSI.m, for 0–255 images
OMEGA0, SIGMA_F, SIGMA_D, SIGMA_C = 0.021, 1.34, 145.0, 0.001  # SDSP parameters used by VSI.m
SALIENCY_SIZE = 256
LMN = ((0.06, 0.63, 0.27), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))
RGB2XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
MIN_SIZE = 2  # the bilinear resize needs two samples per side


@dataclass(frozen=True)
class VsiConvention:
    resize: str  # SDSP's 256×256 round trip: 'corners' (corner-aligned bilinear both ways, no antialiasing) |
    # 'imresize' (MATLAB imresize: antialiased, half-pixel) | 'torch' (piq: F.interpolate down, align_corners up)
    white: tuple  # Lab reference white (X, Y, Z)
    eps: bool  # machine epsilon in the min-max normalisations and in both pooled sums
    downsample: str  # 'conv2_same' | 'replicate_avgpool'
    float64: bool = False  # pyiqa: compute in float64 for any input
    pyiqa_eps: bool = False  # pyiqa: √(· + eps) (frequency prior, gradient), (t + eps)^⅓ in Lab, float32 eps in S
    filter_float32: bool = False  # pyiqa: log-Gabor filter built in float32
    matrices_float32: bool = False  # pyiqa: the RGB → XYZ and RGB → LMN matrices rounded to float32
    iqa_optimization: bool = False  # IQA-optimization's VSI.py (see iqa_optimization_saliency)


VSI_CONVENTIONS = {
    "matlab": VsiConvention(resize="corners", white=(0.9642, 1.0, 0.8251), eps=False, downsample="conv2_same"),
    "matlab_imresize": VsiConvention(resize="imresize", white=(0.9642, 1.0, 0.8251), eps=False,
                                     downsample="conv2_same"),
    "piq": VsiConvention(resize="torch", white=(0.9642119944211994, 1.0, 0.8251882845188288), eps=True,
                         downsample="replicate_avgpool"),
    "pyiqa": VsiConvention(resize="torch", white=(0.9642119944211994, 1.0, 0.8251882845188288), eps=True,
                           downsample="replicate_avgpool", float64=True, pyiqa_eps=True, filter_float32=True,
                           matrices_float32=True),
    "iqa_optimization": VsiConvention(resize="none", white=(0.950456, 1.0, 1.088754), eps=False, downsample="avgpool",
                                      iqa_optimization=True),
}


# ------------------------------------------------------------------------------------------- MATLAB imresize


@functools.lru_cache(maxsize=32)
def imresize_taps(in_len: int, out_len: int) -> tuple:
    """MATLAB ``imresize(…, 'bilinear')`` along one axis as (indices, weights), each (out_len, taps), 0-based.

    The triangle kernel is widened by 1/scale when shrinking (antialiasing, MATLAB's default), sample x of the
    output sits at u = x/scale + ½(1 - 1/scale) of the input, each row of weights is normalised to sum 1, and
    indices past either end are mirrored (MATLAB's 'symmetric' border).
    """
    scale = out_len / in_len
    width = 2.0 / scale if scale < 1 else 2.0
    x = torch.arange(1, out_len + 1, dtype=torch.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left + torch.arange(taps, dtype=torch.float64)[None]
    d = u - idx
    if scale < 1:
        d = d * scale
    w = ((1 + d) * ((d >= -1) & (d < 0)) + (1 - d) * ((d >= 0) & (d <= 1))).clamp(min=0)
    w = w / w.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    idx = mirror[(idx.long() - 1) % (2 * in_len)]
    keep = (w != 0).any(dim=0)  # columns that never contribute (MATLAB drops them too)
    return idx[:, keep].contiguous(), w[:, keep].contiguous()


@functools.lru_cache(maxsize=32)
def resize_operator(in_len: int, out_len: int, dtype: torch.dtype, device: torch.device, csr: bool) -> torch.Tensor:
    """:func:`imresize_taps` as a sparse (out_len × in_len) matrix: CSR for the fast product, COO (differentiable
    with respect to the dense operand) when gradients are needed."""
    idx, w = imresize_taps(in_len, out_len)
    rows = torch.arange(out_len)[:, None].expand_as(idx)
    op = torch.sparse_coo_tensor(torch.stack([rows.reshape(-1), idx.reshape(-1)]), w.reshape(-1), (out_len, in_len),
                                 check_invariants=False).coalesce().to(dtype=dtype, device=device)
    if csr:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            op = op.to_sparse_csr()
    return op


def imresize(t: torch.Tensor, size: tuple) -> torch.Tensor:
    """MATLAB ``imresize(t, size, 'bilinear')`` of N×C×H×W planes: a sparse matrix product per axis and plane."""
    if t.shape[-2] <= size[0] and t.shape[-1] <= size[1]:
        # Enlarging both ways: MATLAB's weights are torch's half-pixel bilinear ones, its mirrored border torch's
        # clamped source coordinate.
        return F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    n, c, h, w = t.shape
    csr = not (torch.is_grad_enabled() and t.requires_grad)
    rows = resize_operator(h, size[0], t.dtype, t.device, csr)
    cols = resize_operator(w, size[1], t.dtype, t.device, csr)
    mm = (lambda a, b: a @ b) if csr else torch.sparse.mm
    planes = [mm(cols, mm(rows, plane).t().contiguous()).t() for plane in t.reshape(n * c, h, w)]
    return torch.stack(planes).reshape(n, c, size[0], size[1])


# ---------------------------------------------------------------------------------------------------- SDSP


@functools.lru_cache(maxsize=8)
def log_gabor(dtype: torch.dtype, device: torch.device, build_dtype: torch.dtype) -> torch.Tensor:
    """SDSP.m's logGabor(256, 256, ω0, σF) in FFT order (radius > ½ cut off, DC zero)."""
    s = SALIENCY_SIZE
    u = (torch.arange(s, dtype=build_dtype) - s // 2) / s
    radius = torch.sqrt(u[:, None] ** 2 + u[None] ** 2)
    radius = torch.where(radius <= 0.5, radius, torch.zeros_like(radius))
    radius = torch.fft.ifftshift(radius)
    radius[0, 0] = 1
    lg = torch.exp(-torch.log(radius / OMEGA0) ** 2 / (2 * SIGMA_F**2))
    lg[0, 0] = 0
    return lg.to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=8)
def centre_prior(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """SDSP.m's SDMap: exp(-((i - 128)² + (j - 128)²) / σD²) with 1-based i, j."""
    c = torch.arange(1, SALIENCY_SIZE + 1, dtype=torch.float64) - SALIENCY_SIZE / 2
    return torch.exp(-(c[:, None] ** 2 + c[None] ** 2) / SIGMA_D**2).to(dtype=dtype, device=device)


def channel_mix(matrix: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The K×3 ``matrix`` applied to the channels of N×C×H×W ``t``; gray ``t`` (C = 1, i.e. R = G = B) through the
    row sums of the matrix, without repeating the plane."""
    if t.shape[1] == 1:
        return t * matrix.sum(dim=1).view(1, -1, 1, 1)
    if _ops.needs_grad(t, matrix):
        return torch.einsum("kc,nchw->nkhw", matrix, t)
    # without autograd: three weighted sums written into one output (no batched product and permuting copies)
    out = t.new_empty(t.shape[0], matrix.shape[0], *t.shape[2:])
    for k, row in enumerate(matrix.tolist()):
        acc = torch.mul(t[:, 0], row[0], out=out[:, k])
        for c in range(1, t.shape[1]):
            acc.add_(t[:, c], alpha=row[c])
    return out


def rgb_to_lab(t: torch.Tensor, conv: VsiConvention, scale: float = 1.0) -> torch.Tensor:
    """SDSP.m's RGB2Lab of RGB in 0–255 units after multiplying by ``scale``: sRGB decoding, XYZ, CIE Lab
    (ε = 0.008856, κ = 903.3). Gray ``t`` (one plane) is R = G = B."""
    matrix = torch.tensor(RGB2XYZ, dtype=torch.float32 if conv.matrices_float32 else torch.float64)
    if _ops.needs_grad(t):
        t = (t * scale if scale != 1.0 else t) / 255
        lin = torch.where(t <= 0.04045, t / 12.92, ((t.clamp(min=0) + 0.055) / 1.055) ** 2.4)
        xyz = channel_mix(matrix.to(dtype=t.dtype, device=t.device), lin)
        r = xyz / torch.tensor(conv.white, dtype=t.dtype, device=t.device).view(1, 3, 1, 1)
        cube = (r + torch.finfo(r.dtype).eps if conv.pyiqa_eps else r).clamp(min=0)
        f = torch.where(r > 0.008856, cube ** (1 / 3), (903.3 * r + 16) / 116)
        return torch.cat([116 * f[:, 1:2] - 16, 500 * (f[:, :1] - f[:, 1:2]), 200 * (f[:, 1:2] - f[:, 2:])], dim=1)
    # the same steps in place, the reference white folded into the matrix rows (no autograd)
    u = t * (scale / 255)
    lin = u.clamp(min=0).add_(0.055).div_(1.055).pow_(2.4)
    lin = torch.where(u <= 0.04045, u.div_(12.92), lin, out=lin)
    white = torch.tensor(conv.white, dtype=torch.float64)
    r = channel_mix((matrix.to(torch.float64) / white[:, None]).to(dtype=t.dtype, device=t.device), lin)
    above = r > 0.008856
    linear = torch.mul(r, 903.3).add_(16).div_(116)
    cube = (r.add_(torch.finfo(r.dtype).eps) if conv.pyiqa_eps else r).clamp_(min=0).pow_(1 / 3)
    f = torch.where(above, cube, linear, out=cube)
    lab = torch.empty_like(f)
    torch.mul(f[:, 1:2], 116, out=lab[:, :1]).sub_(16)
    torch.sub(f[:, :1], f[:, 1:2], out=lab[:, 1:2]).mul_(500)
    torch.sub(f[:, 1:2], f[:, 2:], out=lab[:, 2:]).mul_(200)
    return lab


def min_max(t: torch.Tensor, eps: float) -> torch.Tensor:
    """(t - min) / (max - min [+ eps]) per plane (MATLAB mat2gray / SDSP.m's normalisation)."""
    low = t.amin(dim=(-2, -1), keepdim=True)
    high = t.amax(dim=(-2, -1), keepdim=True)
    return (t - low) / (high - low + eps)


def sdsp(images: list, conv: VsiConvention, scale: float = 1.0) -> torch.Tensor:
    """SDSP saliency of N×3×H×W RGB images (0–255 units after multiplying by ``scale``): their N×1×H×W maps in
    [0, 1], concatenated. Each image is shrunk on its own; the 256×256 work runs on all of them at once."""
    h, w = images[0].shape[-2:]
    size = (SALIENCY_SIZE, SALIENCY_SIZE)
    if conv.resize == "imresize":
        small = torch.cat([imresize(t, size) for t in images])
    else:
        corners = conv.resize == "corners"
        # each plane on its own (N·C single-channel planes): torch takes its generic kernel for any thread count
        # instead of converting 3-channel images to channels-last (a copy of the full image) when single-threaded
        small = torch.cat([F.interpolate(t.reshape(-1, 1, h, w), size=size, mode="bilinear", align_corners=corners)
                           .view(t.shape[0], t.shape[1], *size) for t in images])
    lab = rgb_to_lab(small, conv, scale)  # the resize is linear: scale after it
    eps = torch.finfo(lab.dtype).eps if conv.eps else 0.0
    lg = log_gabor(lab.dtype, lab.device, torch.float32 if conv.filter_float32 else lab.dtype)
    # The log-Gabor filter is real and even, so real(ifft2(fft2(·)·LG)) (SDSP.m, piq, pyiqa) is the half-spectrum
    # round trip: irfft2 written as its two 1-D steps (the same numbers as irfft2 without its internal layout copies;
    # within 3e-7 relative (float32) / 6e-16 (float64) of the full complex round trip)
    spectrum = torch.fft.ifft(torch.fft.rfft2(lab) * lg[:, : SALIENCY_SIZE // 2 + 1], dim=-2)
    band = torch.fft.irfft(spectrum, n=SALIENCY_SIZE, dim=-1)
    energy = (band * band).sum(dim=1, keepdim=True)
    s_f = torch.sqrt(energy + torch.finfo(lab.dtype).eps) if conv.pyiqa_eps else torch.sqrt(energy)
    s_c = warm_colour_prior(min_max(lab[:, 1:], eps))
    saliency = s_f * centre_prior(lab.dtype, lab.device) * s_c
    if conv.resize == "imresize":
        saliency = imresize(saliency, (h, w))
    else:
        saliency = F.interpolate(saliency, size=(h, w), mode="bilinear", align_corners=True)
    return min_max(saliency, eps)


def warm_colour_prior(ab: torch.Tensor) -> torch.Tensor:
    """1 - exp(-(a² + b²) / σC²) of the normalised a, b planes. With σC = 0.001 the exponent reaches -2·10⁶; below
    -60 the result is exactly 1 in float32 and float64, and exp's slow path for huge arguments is skipped."""
    return 1 - torch.exp((-(ab * ab).sum(dim=1, keepdim=True) / SIGMA_C**2).clamp(min=-60.0))


SCHARR_TAPS = (3.0, 10.0, 3.0)  # smoothing across the central difference; normalised by 1/16


def scharr_magnitude(t: torch.Tensor) -> torch.Tensor:
    """√(Gx² + Gy²) of Scharr/16 (``conv2 'same'``, zero border) as shifted slices: [3 10 3] smoothing times a
    central difference. |Gx + i·Gy| keeps the gradient 0 (not NaN) where both are 0."""
    p = F.pad(t, (1, 1, 1, 1))
    dx = p[..., :, 2:] - p[..., :, :-2]  # (H+2, W)
    dy = p[..., 2:, :] - p[..., :-2, :]  # (H, W+2)
    gx = (3 * (dx[..., :-2, :] + dx[..., 2:, :]) + 10 * dx[..., 1:-1, :]) / 16
    gy = (3 * (dy[..., :, :-2] + dy[..., :, 2:]) + 10 * dy[..., :, 1:-1]) / 16
    return torch.complex(gx, gy).abs()


IQA_OPT_EPS = 1e-12
# IQA-optimization's sRGB → XYZ matrix (4-6 decimals) and its white: XYZ is *multiplied* by (0.950456, 1, 1.088754)
# there (divided by their reciprocals), not divided as CIE Lab prescribes.
IQA_OPT_RGB2XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))


@functools.lru_cache(maxsize=16)
def full_size_log_gabor(rows: int, cols: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """IQA-optimization's logGabor(rows, cols): numpy linspace(-½, ½, n, endpoint=n odd) grids, radius² < ¼ kept,
    √(r² + 1e-12), DC zero; FFT order."""
    def axis(n: int) -> torch.Tensor:
        if n % 2 == 0:
            return -0.5 + torch.arange(n, dtype=torch.float64) / n
        return torch.linspace(-0.5, 0.5, n, dtype=torch.float64)

    u2, u1 = axis(rows)[:, None], axis(cols)[None]
    keep = (u1 * u1 + u2 * u2) < 0.25
    u1 = torch.fft.ifftshift(u1 * keep)
    u2 = torch.fft.ifftshift(u2 * keep)
    radius = torch.sqrt(u1 * u1 + u2 * u2 + IQA_OPT_EPS)
    radius[0, 0] = 1
    lg = torch.exp(-torch.log(radius / OMEGA0) ** 2 / (2 * SIGMA_F**2))
    lg[0, 0] = 0
    return lg.to(dtype=dtype, device=device)


def iqa_optimization_saliency(rgb: torch.Tensor, conv: VsiConvention, scale: float) -> torch.Tensor:
    """SDSP as IQA-optimization's VSI.py computes it: at full resolution (no 256×256 resize), its Lab (see
    IQA_OPT_RGB2XYZ; 6/29 thresholds; (t clamped at 1e-12)^⅓), the centre prior about (H/2, W/2) with 0-based
    coordinates, and min-max normalisations with 1e-12 in the denominator."""
    h, w = rgb.shape[-2:]
    t = (rgb * (scale / 255)).clamp(0, 1)
    lin = torch.where(t <= 0.04045, t / 12.92, ((t + 0.055) / 1.055) ** 2.4)
    xyz = channel_mix(torch.tensor(IQA_OPT_RGB2XYZ, dtype=t.dtype, device=t.device), lin)
    xyz = xyz * torch.tensor(conv.white, dtype=t.dtype, device=t.device).view(1, 3, 1, 1)
    e = 6 / 29
    f = torch.where(xyz <= e**3, xyz / (3 * e * e) + 4 / 29, xyz.clamp(min=IQA_OPT_EPS) ** (1 / 3))
    lab = torch.cat([116 * f[:, 1:2] - 16, 500 * (f[:, :1] - f[:, 1:2]), 200 * (f[:, 1:2] - f[:, 2:])], dim=1)
    band = torch.fft.ifft2(torch.fft.fft2(lab) * full_size_log_gabor(h, w, t.dtype, t.device)).real
    s_f = torch.sqrt((band * band).sum(dim=1, keepdim=True) + IQA_OPT_EPS)
    i = torch.arange(h, dtype=t.dtype, device=t.device)[:, None] - h / 2
    j = torch.arange(w, dtype=t.dtype, device=t.device)[None] - w / 2
    s_d = torch.exp(-(i * i + j * j) / SIGMA_D**2)
    s_c = warm_colour_prior(min_max(lab[:, 1:], IQA_OPT_EPS))
    return min_max(s_f * s_d * s_c, IQA_OPT_EPS)


# ------------------------------------------------------------------------------------------------------ VSI


def downsample(t: torch.Tensor, conv: VsiConvention, backend: str) -> torch.Tensor:
    h, w = t.shape[-2:]
    if conv.downsample == "replicate_avgpool":
        f = auto_downsample_factor(h, w, rounding="python")
        if f == 1:
            return t
        top, bottom = f // 2, (f - 1) // 2
        return _ops.box_downsample(t, f, top, top, (h + top + bottom) // f, (w + top + bottom) // f, "replicate",
                                   backend)
    if conv.downsample == "avgpool":
        f = auto_downsample_factor(h, w, rounding="python")  # numpy's round: half to even, as Python's
        return t if f == 1 else _ops.box_downsample(t, f, 0, 0, h // f, w // f, "zeros", backend)
    f = auto_downsample_factor(h, w, rounding="matlab")
    if f == 1:
        return t
    pad = math.ceil(f / 2) - 1  # conv2 'same' with an even box looks forward (see fsim.downsample)
    return _ops.box_downsample(t, f, pad, pad, math.ceil(h / f), math.ceil(w / f), "zeros", backend)


def front_geometry(h: int, w: int, conv: VsiConvention):
    """grey_planes' box geometry of :func:`downsample`'s zero-bordered modes ('avgpool', 'conv2_same')."""
    if conv.downsample == "avgpool":
        return pool_geometry(h, w, "floor", auto_downsample_factor(h, w, rounding="python"))
    return pool_geometry(h, w, "zeros", auto_downsample_factor(h, w, rounding="matlab"))


def similarity(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    return (2 * a * b + c) / (a * a + b * b + c)


def similarity_eps(a: torch.Tensor, b: torch.Tensor, c: float, eps: float) -> torch.Tensor:
    return (2 * a * b + c) / (a * a + b * b + c + eps)


def vsi(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    backend: str = "auto",
) -> torch.Tensor:
    """VSI of each image pair, higher = better: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (VSI is symmetric in the two): N×C×H×W (or C×H×W / H×W) with C = 3 (RGB) or
    1 (repeated to RGB), uint8 (data_range=255) or float in [0, data_range]; at least 2×2. ``backend`` is passed
    to the native downsampling op.
    """
    check_reduction(reduction)
    if convention not in VSI_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(VSI_CONVENTIONS)}, got {convention!r}")
    conv = VSI_CONVENTIONS[convention]
    # zero-bordered box means in the compute dtype: the fused front end gives LMN and the input checks in one read
    front = conv.downsample != "replicate_avgpool" and not conv.float64
    x, y = check_pair(x, y, data_range, check_values=not front)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"VSI needs 3 (RGB) or 1 (gray) channels, got {x.shape[1]}")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"x is {x.shape[-2]}×{x.shape[-1]}: VSI needs at least {MIN_SIZE}×{MIN_SIZE}{LAYOUT_HINT}")
    n = x.shape[0]
    dtype = torch.float64 if conv.float64 else compute_dtype(x.dtype)
    scale = 255.0 / float(data_range)
    if front:
        # gray input (R = G = B): each row's coefficients summed, one plane read instead of three
        coeffs = ([c * scale for row in LMN for c in row] if x.shape[1] == 3 else
                  [sum(c * scale for c in row) for row in LMN])
        geometry = front_geometry(*x.shape[-2:], conv)
        lmn = torch.cat(grey_pair(x, y, data_range, coeffs, 1.0, "none", geometry, backend))
    # one image at a time: the full-resolution pair is never stacked or rescaled; gray images stay one plane (every
    # step before Lab and LMN is per channel, and those take the row sums of their matrices)
    images = [t.to(dtype) for t in (x, y)]
    if conv.iqa_optimization:
        saliency = torch.cat([iqa_optimization_saliency(t, conv, scale) for t in images])
    else:
        saliency = sdsp(images, conv, scale)
    saliency = downsample(saliency, conv, backend)  # (2N, 1, h, w)
    if not front:  # the box filter and LMN are linear: filter RGB, then convert and rescale (a third of the work)
        small = [downsample(t.contiguous(), conv, backend) for t in images]
        lmn_matrix = torch.tensor(LMN, dtype=torch.float32 if conv.matrices_float32 else torch.float64)
        lmn = channel_mix(lmn_matrix.to(dtype=dtype, device=x.device) * scale, torch.cat(small))
    if conv.pyiqa_eps:  # pyiqa's own similarity form (eps in numerator and denominator)
        grad = torch.sqrt(scharr_magnitude(lmn[:, :1]) ** 2 + torch.finfo(dtype).eps)
        sim = functools.partial(similarity_eps, eps=torch.finfo(torch.float32).eps)
        s_gm = sim(grad[:n], grad[n:], C2)
    else:  # Scharr/16 magnitudes (√(m² + 1e-12) for IQA-optimization) and their similarity, one fused pass
        sim = similarity
        s_gm = _ops.gradient_similarity(lmn[:n, :1], lmn[n:, :1], SCHARR_TAPS, 1 / 16, C2, 0.0,
                                        IQA_OPT_EPS if conv.iqa_optimization else 0.0, "zeros", "map", backend)
    vs_x, vs_y = saliency[:n], saliency[n:]
    s_vs = sim(vs_x, vs_y, C1)
    s_mn = sim(lmn[:n, 1:2], lmn[n:, 1:2], C3) * sim(lmn[:n, 2:], lmn[n:, 2:], C3)
    # real((S_M·S_N)^β): a negative base to a real power is |s|^β·e^{iβπ} in MATLAB.
    if conv.iqa_optimization:  # (|S| + 1e-12)^β: the magnitude, not the real part
        chroma = (s_mn.abs() + IQA_OPT_EPS).pow(BETA)
        s_gm = s_gm.abs() + IQA_OPT_EPS
    else:
        p = s_mn.abs().pow(BETA)
        chroma = torch.where(s_mn < 0, p * math.cos(BETA * math.pi), p)
    weight = torch.maximum(vs_x, vs_y)
    num = (s_vs * s_gm.pow(ALPHA) * chroma * weight).sum(dim=(1, 2, 3))
    den = weight.sum(dim=(1, 2, 3))
    if conv.eps:
        eps = torch.finfo(num.dtype).eps
        num, den = num + eps, den + eps
    return reduce(num / den, reduction)


vsi.lower_is_better = False


class VSI(MetricModule):
    """Module form of :func:`vsi`; ``loss=True`` returns 1 - VSI."""

    metric = staticmethod(vsi)
