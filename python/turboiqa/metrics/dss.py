"""DSS — A. Balanov, A. Schwartz, Y. Moshe, N. Peleg, "Image quality assessment based on DCT subband similarity",
IEEE ICIP 2015.

Reference code: Y. Moshe's MATLAB ``dss_index.m`` (MathWorks File Exchange 53708, 2015), which takes grayscale
images; its published scores of RGB images are of MATLAB ``rgb2gray`` (uint8, rounded). Higher = better (1 for
identical images). ``convention=`` selects a whole set of choices that reproduces one original or peer:

========  =============================================================================================================
'matlab'  dss_index.m: luma ``rgb2gray`` (rounded to uint8 for uint8 input); images cropped to multiples of 8;
          8×8 block DCT (``dctmtx``); subband weights exp(-((m-½)² + (n-½)²) / (2·1.55²)), those under 0.01 dropped;
          local variances with ``fspecial('gaussian', 3, 1.5)`` and ``imfilter`` (zero border); C = 1000 (DC) /
          300 (AC); mean of the worst ``round(0.05·count)`` scores (MATLAB rounding) [default]
'piq'     piq.dss: YIQ luma 0.299/0.587/0.114 (unrounded), Python rounding of the 5 % count, the subband scores
          stored in float32, and machine epsilon added to every normalised subband weight
========  =============================================================================================================

``color`` (None: the convention's): 'rgb2gray' or 'yiq' luma for RGB input. Gray (C = 1) input is used as is. The
constants are in 0–255 units, so inputs are rescaled from ``data_range`` to 0–255 internally.

Implementation: the block DCT goes straight into subband layout (one batched matrix product over all blocks); the
local statistics of all kept subbands of both images come from one separable 3-tap filtering of one stacked tensor,
and the worst-5 % pooling is one ``topk`` over all of them.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..dtypes import compute_dtype
from ..filters import correlate_axis
from ..resample import matlab_round
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce
from ._grey import GREY_COEFFS, grey255, grey_pair
from .module import MetricModule

DCT_SIZE = 8
C_DC, C_AC = 1000.0, 300.0  # dss_index.m, for 0–255 images
SIGMA_WEIGHT = 1.55
SIGMA_LOCAL = 1.5  # fspecial('gaussian', 3, 1.5)
PERCENTILE = 0.05
WEIGHT_THRESHOLD = 1e-2
MIN_BLOCKS = 10  # round(0.05 · count) ≥ 1
DSS_COLORS = ("rgb2gray", "yiq")


@dataclass(frozen=True)
class DssConvention:
    color: str  # luma of RGB input
    rounding: str  # 'matlab' | 'python': the worst-5 % count
    piq_storage: bool  # piq: subband scores stored in float32, machine epsilon added to every normalised weight


DSS_CONVENTIONS = {
    "matlab": DssConvention(color="rgb2gray", rounding="matlab", piq_storage=False),
    "piq": DssConvention(color="yiq", rounding="python", piq_storage=True),
}


@functools.lru_cache(maxsize=16)
def dct_matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """MATLAB ``dctmtx(8)``: orthonormal DCT-II, row u = basis function u."""
    n = DCT_SIZE
    u = torch.arange(n, dtype=torch.float64)[:, None]
    k = torch.arange(n, dtype=torch.float64)[None]
    d = torch.cos(math.pi * (2 * k + 1) * u / (2 * n)) * math.sqrt(2 / n)
    d[0] = math.sqrt(1 / n)
    return d.to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=4)
def subband_weights(sigma: float) -> tuple:
    """((m, n) of the kept subbands, their weights normalised to sum 1), as dss_index.m's loop keeps them."""
    kept, weights = [], []
    for m in range(DCT_SIZE):
        for n in range(DCT_SIZE):
            # meshgrid(1:8): X varies along columns (n), Y along rows (m); the weight is symmetric anyway.
            w = math.exp(-((n + 0.5) ** 2 + (m + 0.5) ** 2) / (2 * sigma**2))
            if w >= WEIGHT_THRESHOLD:
                kept.append((m, n))
                weights.append(w)
    total = sum(weights)
    return tuple(kept), tuple(w / total for w in weights)


@functools.lru_cache(maxsize=1)
def local_taps() -> tuple:
    """1-D factor of ``fspecial('gaussian', 3, 1.5)`` (the 2-D window is its outer product)."""
    g = [math.exp(-(d * d) / (2 * SIGMA_LOCAL**2)) for d in (-1, 0, 1)]
    return tuple(v / sum(g) for v in g)


@functools.lru_cache(maxsize=16)
def subband_basis(kept: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(K, 64): row i holds the 2-D DCT basis of kept subband (m, n), D[m, a]·D[n, b] at a·8 + b."""
    d = dct_matrix(torch.float64, torch.device("cpu"))
    basis = torch.stack([torch.outer(d[m], d[k]).reshape(-1) for m, k in kept])
    return basis.to(dtype=dtype, device=device)


def subbands(luma: torch.Tensor, kept: tuple) -> torch.Tensor:
    """N×1×H×W (H, W multiples of 8) → N×K×H/8×W/8: DCT coefficient (m, n) of every 8×8 block, kept subbands.

    One matrix product of the kept subbands' 2-D basis (K×64) with the blocks as columns (64 × blocks):
    the output is already in subband layout, and only the kept subbands are computed."""
    n, _, h, w = luma.shape
    hb, wb = h // DCT_SIZE, w // DCT_SIZE
    # blocks as rows (runs of 8 contiguous values copied), handed to the product transposed (no second copy)
    blocks = luma.reshape(n, hb, DCT_SIZE, wb, DCT_SIZE).permute(0, 1, 3, 2, 4).reshape(n, hb * wb, DCT_SIZE**2)
    basis = subband_basis(kept, luma.dtype, luma.device)
    return torch.matmul(basis, blocks.transpose(1, 2)).view(n, len(kept), hb, wb)


def local_mean(planes: torch.Tensor) -> torch.Tensor:
    """``imfilter(·, fspecial('gaussian', 3, 1.5))``: 'same' correlation with zeros outside."""
    taps = local_taps()
    return correlate_axis(correlate_axis(F.pad(planes, (1, 1, 1, 1)), taps, -2), taps, -1)


def worst_mean(values: torch.Tensor, count: int) -> torch.Tensor:
    """Mean of the ``count`` smallest values along the last dimension."""
    return torch.topk(values, count, dim=-1, largest=False, sorted=False).values.mean(dim=-1)


def dss(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    color: str | None = None,
    convention: str = "matlab",
    sigma_weight: float = SIGMA_WEIGHT,
    backend: str = "auto",
) -> torch.Tensor:
    """DSS of each image pair, higher = better: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (dss_index.m's img1, img2; DSS is symmetric in the two): N×C×H×W (or C×H×W /
    H×W) with C = 1 or 3, uint8 (data_range=255) or float in [0, data_range]; at least 8×8 and 10 whole 8×8 blocks.
    ``color`` (None: the convention's): 'rgb2gray' or 'yiq' luma of RGB input. ``sigma_weight``: the width of the
    subband weighting (1.55 published). ``backend`` is passed to the native colour op.
    """
    check_reduction(reduction)
    # Sides already multiples of 8 (nothing cropped): the fused front end reads each image once for its luma and the
    # input checks; otherwise the checks cover the whole image and the luma only the cropped part.
    whole = x.dim() >= 2 and x.shape[-2] % DCT_SIZE == 0 and x.shape[-1] % DCT_SIZE == 0
    x, y = check_pair(x, y, data_range, check_values=not whole)
    if convention not in DSS_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(DSS_CONVENTIONS)}, got {convention!r}")
    conv = DSS_CONVENTIONS[convention]
    color = conv.color if color is None else color
    if color not in DSS_COLORS:
        raise ValueError(f"color must be one of {DSS_COLORS}, got {color!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"DSS needs 1 (gray) or 3 (RGB) channels, got {x.shape[1]}")
    if not sigma_weight > 0:
        raise ValueError(f"sigma_weight must be positive, got {sigma_weight}")
    h, w = x.shape[-2] // DCT_SIZE * DCT_SIZE, x.shape[-1] // DCT_SIZE * DCT_SIZE
    if h == 0 or w == 0 or (h // DCT_SIZE) * (w // DCT_SIZE) < MIN_BLOCKS:
        raise ValueError(f"x is {x.shape[-2]}×{x.shape[-1]}: DSS needs at least 8×8 and {MIN_BLOCKS} whole 8×8 "
                         f"blocks (e.g. 16×40 or 32×24){LAYOUT_HINT}")
    n = x.shape[0]
    dtype = compute_dtype(x.dtype)

    # 0–255 luma (rgb2gray of uint8 rounded as MATLAB's, float input unrounded), gray input as it is
    rounding = "matlab" if color == "rgb2gray" and x.dtype == torch.uint8 else None
    if whole:
        if x.shape[1] != 3:
            args = ((), 255.0 / float(data_range), "none")
        elif rounding == "matlab":
            args = (GREY_COEFFS[color], 1.0, "half_away")
        else:
            args = (GREY_COEFFS[color], 255.0 / float(data_range), "none")
        lumas = [t.to(dtype) for t in grey_pair(x, y, data_range, *args, (1, 0, 0, h, w), backend)]
    else:  # dss_index.m crops before its (per-pixel) colour step; the same pixels either way
        lumas = [grey255(t[..., :h, :w], data_range, color, rounding, backend=backend).to(dtype) for t in (x, y)]
    kept, weights = subband_weights(float(sigma_weight))
    k = len(kept)
    bands = subbands(torch.cat(lumas), kept)  # (2N, K, h/8, w/8)
    bx, by = bands[:n], bands[n:]
    dc = kept.index((0, 0))
    # One filtering pass for every statistic of every subband: [x, y, x², y², x·y (DC only)].
    stats = local_mean(torch.cat([bx, by, bx * bx, by * by, bx[:, dc:dc + 1] * by[:, dc:dc + 1]], dim=1))
    mu_x, mu_y = stats[:, :k], stats[:, k:2 * k]
    var_x = (stats[:, 2 * k:3 * k] - mu_x * mu_x).clamp(min=0)
    var_y = (stats[:, 3 * k:4 * k] - mu_y * mu_y).clamp(min=0)
    c = torch.full((k, 1, 1), C_AC, dtype=dtype, device=x.device)
    c[dc] = C_DC
    sd_xy = torch.sqrt(var_x * var_y)
    left = (2 * sd_xy + c) / (var_x + var_y + c)
    count = left.shape[-2] * left.shape[-1]
    worst = matlab_round(PERCENTILE * count) if conv.rounding == "matlab" else round(PERCENTILE * count)
    if worst == 0:  # piq's half-to-even rounding of 0.05 × 10 blocks (piq itself returns NaN)
        raise ValueError(f"x is {x.shape[-2]}×{x.shape[-1]}: convention={convention!r} needs at least 11 whole 8×8 "
                         f"blocks{LAYOUT_HINT}")
    sims = worst_mean(left.flatten(2), worst)  # (N, K)
    cov = stats[:, 4 * k:] - mu_x[:, dc:dc + 1] * mu_y[:, dc:dc + 1]
    right = (cov + C_DC) / (sd_xy[:, dc:dc + 1] + C_DC)
    sims = torch.cat([sims[:, :dc], sims[:, dc:dc + 1] * worst_mean(right.flatten(2), worst), sims[:, dc + 1:]], 1)
    wt = torch.tensor(weights, dtype=dtype, device=x.device)
    if conv.piq_storage:
        sims = sims.float().to(dtype)
        wt = wt + torch.finfo(dtype).eps
    return reduce((sims * wt).sum(dim=1), reduction)


dss.lower_is_better = False


class DSS(MetricModule):
    """Module form of :func:`dss`; ``loss=True`` returns 1 - DSS."""

    metric = staticmethod(dss)
