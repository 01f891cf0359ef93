"""HaarPSI — R. Reisenhofer, S. Bosse, G. Kutyniok, T. Wiegand, "A Haar wavelet-based perceptual similarity index
for image quality assessment", Signal Processing: Image Communication 61, 2018.

Reference code: the authors' MATLAB ``HaarPSI.m`` (github.com/rgcda/haarpsi). Higher = better (1 for identical
images). ``convention=`` selects a whole set of choices that reproduces one original or peer:

========  =============================================================================================================
'matlab'  HaarPSI.m: YIQ with I 0.596/−0.274/−0.322, Q 0.211/−0.523/0.312; 2×2 box mean sampled at (1:2:end)
          (``conv2(·, ones(2)/4, 'same')``, zeros past the bottom/right edge); Haar filters 2^-k·ones(2^k) with a
          sign flip, k = 1, 2, 3, ``conv2 'same'``; score logit(Σ sigmoid(α·S)·W / ΣW)² / α² [default]
'piq'     piq.haarpsi: YIQ with 4-decimal I 0.5959/−0.2746/−0.3213, Q 0.2115/−0.5227/0.3112, machine epsilon
          added to both sums of the pooled score
========  =============================================================================================================

frame-analytics' haarpsi follows HaarPSI.m (it clamps the score to [0, 1]): compare it with convention='matlab'.

``color``: 'yiq_chromatic' (default, HaarPSI.m for RGB input: a third similarity map from the I and Q planes) or
'yiq' (the luma Y only, HaarPSI.m on a grayscale image). Gray (C = 1) input is scored as HaarPSI.m scores a gray
image. The constant C = 30 is in 0–255 units, so inputs are rescaled from ``data_range`` to 0–255 internally. A pair
without any coarse-scale Haar response (two all-black images) has no weight: NaN, as in HaarPSI.m.

Implementation: one read of each image gives its Y (I, Q) planes already 2×2-averaged and the input checks (the
fused grey_planes front end); the two luma planes are stacked in one zero-bordered tensor, and the six Haar responses
(3 scales × 2 orientations) come from quadrant box sums (1×1, 2×2, 4×4: h = A + B, v = A − B of two quadrant
differences), 16 plane additions for both images instead of six 2^k×2^k convolutions per image. The responses stay
unscaled (C is scaled by 4^k instead, exact), and without autograd the similarity maps are built in place.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _ops
from ..colour import BT601
from ..dtypes import compute_dtype
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce
from ._grey import grey_pair, pool_geometry
from .module import MetricModule

C_HAARPSI, ALPHA_HAARPSI = 30.0, 4.2  # HaarPSI.m, for 0–255 images
N_SCALES = 3
HAARPSI_COLORS = ("yiq_chromatic", "yiq")


@dataclass(frozen=True)
class HaarpsiConvention:
    yiq: tuple  # rows Y, I, Q of the RGB → YIQ matrix
    eps: bool  # piq: machine epsilon added to numerator and denominator of the pooled score


HAARPSI_CONVENTIONS = {
    "matlab": HaarpsiConvention(yiq=(BT601, (0.596, -0.274, -0.322), (0.211, -0.523, 0.312)), eps=False),
    "piq": HaarpsiConvention(yiq=(BT601, (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112)), eps=True),
}


def haar_stack(p: torch.Tensor, h: int, w: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """The Haar responses of padded planes ``p`` (B×1×(h+7)×(w+7): 3 zeros above/left, 4 below/right) unscaled,
    as one (3, 2, B, 1, h, w) tensor [scale k = 1, 2, 3][horizontal, vertical]: 2^k times ``conv2(X, H_k, 'same')``.

    ``conv2 'same'`` with an even K×K kernel reads X(i-K/2+1 … i+K/2). Split that window into four (K/2)×(K/2)
    quadrants tl, tr, bl, br: the horizontal response is (tl + tr) − (bl + br) and the vertical one (tl + bl) −
    (tr + br), i.e. A + B and A − B of A = tl − br, B = tr − bl. The quadrant sums are single pixels (k = 1), 2×2
    box sums (k = 2) and 4×4 box sums (k = 3) built from pair sums: 16 plane additions for all six responses.
    ``out`` (no autograd): written in place.
    """
    q1 = p  # 1×1 "box sums"
    rows = p[..., :-1, :] + p[..., 1:, :]
    q2 = rows[..., :, :-1] + rows[..., :, 1:]  # 2×2 sums starting at (r, c): (h+6)×(w+6)
    rows = q2[..., :-2, :] + q2[..., 2:, :]
    q3 = rows[..., :, :-2] + rows[..., :, 2:]  # 4×4 sums: (h+4)×(w+4)
    # Pixel i (padded row i+3) has its window's top quadrant at padded rows i+4-K/2 …, its bottom one at i+4 …;
    # q_k at index r sums rows r … r+K/2-1 (likewise for columns).
    responses = []
    for k, q in enumerate((q1, q2, q3), start=1):
        lo, hi = 4 - 2 ** (k - 1), 4
        t_l = q[..., lo:lo + h, lo:lo + w]
        b_r = q[..., hi:hi + h, hi:hi + w]
        t_r = q[..., lo:lo + h, hi:hi + w]
        b_l = q[..., hi:hi + h, lo:lo + w]
        a, b = t_l - b_r, t_r - b_l
        if out is None:
            responses += [a + b, a - b]
        else:
            torch.add(a, b, out=out[k - 1, 0])
            torch.sub(a, b, out=out[k - 1, 1])
    return out if out is not None else torch.stack(responses).unflatten(0, (3, 2))


def pad_planes(planes: list, h: int, w: int, differentiable: bool) -> torch.Tensor:
    """The planes (each n×1×h×w) stacked into one zero-bordered (B, 1, h+7, w+7) tensor (3 zeros above/left)."""
    if differentiable:
        return F.pad(torch.cat(planes), (3, 4, 3, 4))
    b = sum(t.shape[0] for t in planes)
    p = planes[0].new_zeros(b, 1, h + 7, w + 7)
    i = 0
    for t in planes:
        p[i:i + t.shape[0], :, 3:3 + h, 3:3 + w] = t
        i += t.shape[0]
    return p


def haar_responses(luma: torch.Tensor) -> tuple:
    """The six Haar responses (h1, v1, h2, v2, h3, v3) of N×1×h×w planes, ``conv2(X, H_k, 'same')`` with
    H_k = 2^-k·ones(2^k), its top half negated (see :func:`haar_stack`)."""
    h, w = luma.shape[-2:]
    r = haar_stack(F.pad(luma, (3, 4, 3, 4)), h, w)
    return tuple(r[k, o] * 2.0 ** -(k + 1) for k in range(N_SCALES) for o in range(2))


def haarpsi(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    color: str = "yiq_chromatic",
    convention: str = "matlab",
    subsample: bool = True,
    c: float = C_HAARPSI,
    alpha: float = ALPHA_HAARPSI,
    backend: str = "auto",
) -> torch.Tensor:
    """HaarPSI of each image pair in [0, 1], higher = better: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (HaarPSI is symmetric in the two): N×C×H×W (or C×H×W / H×W) with C = 1 or 3,
    uint8 (data_range=255) or float in [0, data_range]; at least 16×16 (8×8 with ``subsample=False``).
    ``color``: 'yiq_chromatic' (HaarPSI.m's colour version) or 'yiq' (luma only). ``subsample``: HaarPSI.m's
    2×2 pre-filter (the published setting). ``c`` and ``alpha``: the paper's C = 30 (0–255 units) and α = 4.2.
    ``backend`` is passed to the native colour and subsampling ops.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range, check_values=False)  # range/NaN/Inf: from the front end's extrema
    if convention not in HAARPSI_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(HAARPSI_CONVENTIONS)}, got {convention!r}")
    conv = HAARPSI_CONVENTIONS[convention]
    if color not in HAARPSI_COLORS:
        raise ValueError(f"color must be one of {HAARPSI_COLORS}, got {color!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"HaarPSI needs 1 (gray) or 3 (RGB) channels, got {x.shape[1]}")
    minimum = 16 if subsample else 8
    if min(x.shape[-2:]) < minimum:
        raise ValueError(f"x is {x.shape[-2]}×{x.shape[-1]}: HaarPSI needs at least {minimum}×{minimum} "
                         f"(subsample={subsample}){LAYOUT_HINT}")
    if not (c > 0 and alpha > 0):
        raise ValueError(f"c and alpha must be positive, got c={c}, alpha={alpha}")
    chromatic = color == "yiq_chromatic" and x.shape[1] == 3
    n = x.shape[0]
    dtype = compute_dtype(x.dtype)
    differentiable = _ops.needs_grad(x, y)

    # One read of each image (the fused front end): Y (and I, Q) in 0–255 units, the 2×2 box mean
    # (conv2(·, ones(2)/4, 'same') sampled at (1:2:end): zeros past the bottom/right edge) and the input checks.
    scale = 1.0 if data_range == 255 else 255.0 / float(data_range)
    rows = (conv.yiq if chromatic else conv.yiq[:1]) if x.shape[1] == 3 else ()
    geometry = pool_geometry(*x.shape[-2:], "zeros" if subsample else None)
    px, py = (t.to(dtype) for t in grey_pair(x, y, data_range, [v for row in rows for v in row], scale, "none",
                                              geometry, backend))
    h, w = px.shape[-2:]

    # The responses of both images at once, unscaled (2^k times H_k's): a scale's similarity takes C·4^k instead,
    # and the weights' common factor 8 cancels in the pooled ratio (all factors powers of two: exact).
    if differentiable:
        resp = haar_stack(pad_planes([px[:, :1], py[:, :1]], h, w, True), h, w)
    else:
        resp = haar_stack(pad_planes([px[:, :1], py[:, :1]], h, w, False), h, w,
                          px.new_empty(N_SCALES, 2, 2 * n, 1, h, w))
    terms = 3 if chromatic else 2
    # local similarity per orientation: the mean over scales 1 and 2 of (2|ab| + C)/(a² + b² + C), taken as
    # Σ_k (|ab| + C_k/2)/(a² + b² + C_k) (halving numerator and denominator is exact)
    cs = torch.tensor([4 * c, 16 * c], dtype=dtype, device=x.device).view(2, 1, 1, 1, 1, 1)
    a, b = resp[:2, :, :n], resp[:2, :, n:]
    r3x, r3y = resp[2, :, :n], resp[2, :, n:]
    if differentiable:
        q = ((a * b).abs() + cs / 2) / (a * a + b * b + cs)
        local = q[0] + q[1]
        weight = torch.maximum(r3x.abs(), r3y.abs())
    else:
        local = px.new_empty(terms, n, 1, h, w)
        weight = px.new_empty(terms, n, 1, h, w)
        q = torch.mul(a, b).abs_().add_(cs / 2).div_(torch.mul(a, a).addcmul_(b, b).add_(cs))
        torch.add(q[0], q[1], out=local[:2])
        torch.maximum(r3x.abs_(), r3y.abs_(), out=weight[:2])
    if chromatic:
        # conv2(I, ones(2)/4, 'same'): 2×2 sums (4 × the mean: C·16) of X(i … i+1, j … j+1), zeros past the
        # bottom/right edge
        iq = F.pad(torch.cat([px[:, 1:], py[:, 1:]]), (0, 1, 0, 1))
        iq = iq[..., :-1, :] + iq[..., 1:, :]
        iq = iq[..., :-1] + iq[..., 1:]
        ia, ib = iq[:n], iq[n:]
        if differentiable:
            q = ((ia * ib).abs() + 8 * c) / (ia * ia + ib * ib + 16 * c)
            local = torch.cat([local, (q[:, :1] + q[:, 1:])[None]])
            weight = torch.cat([weight, ((weight[0] + weight[1]) / 2)[None]])
        else:
            q = torch.mul(ia, ib).abs_().add_(8 * c).div_(torch.mul(ia, ia).addcmul_(ib, ib).add_(16 * c))
            torch.add(q[:, :1], q[:, 1:], out=local[2])
            torch.add(weight[0], weight[1], out=weight[2]).mul_(0.5)
    # The logit at the end magnifies rounding in the pooled ratio: the row sums (≤ W/2 values, torch's cascade
    # sum) in the compute dtype, their total in float64 (sum(dtype=float64) would first copy the maps to float64).
    def pooled(t: torch.Tensor) -> torch.Tensor:
        return t.sum(dim=-1).double().sum(dim=(0, 2, 3))

    if differentiable:
        num = pooled(torch.sigmoid(alpha * local) * weight)
    else:
        num = pooled(local.mul_(alpha).sigmoid_().mul_(weight))
    den = pooled(weight)
    if conv.eps:  # (8·num + 8ε) / (8·den + 8ε): the weights are 8 times HaarPSI.m's
        eps = 8 * torch.finfo(dtype).eps
        num, den = num + eps, den + eps
    score = num / den
    return reduce(((torch.log(score / (1 - score)) / alpha) ** 2).to(dtype), reduction)


haarpsi.lower_is_better = False


class HaarPSI(MetricModule):
    """Module form of :func:`haarpsi`; ``loss=True`` returns 1 - HaarPSI."""

    metric = staticmethod(haarpsi)
