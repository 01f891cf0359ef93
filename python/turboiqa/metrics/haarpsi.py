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

Implementation: both images are subsampled, then stacked; the six Haar responses (3 scales × 2 orientations) of the
stack come from shared box sums (pair sums 2 → 4 → 8 along each axis, one padded plane for all scales), about 20
plane additions in all, instead of six 2^k×2^k convolutions per image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _ops
from ..colour import BT601
from ..dtypes import compute_dtype
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce
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


def haar_responses(luma: torch.Tensor) -> tuple:
    """The six Haar responses (h1, v1, h2, v2, h3, v3) of N×1×h×w planes, ``conv2(X, H_k, 'same')``.

    H_k = 2^-k·ones(2^k) with its top half negated. ``conv2 'same'`` with an even K×K kernel reads
    X(i-K/2+1 … i+K/2); with 3 zeros above/left and 4 below/right every scale's window fits in one padded plane.
    The K-wide box sums along one axis are built from pair sums (2 → 4 → 8), and each response is the difference
    of two half-height (or half-width) sums of them: about 20 plane additions instead of an 8×8 convolution. The
    sign of each response (convolution flips H_k) does not matter, only magnitudes are used.
    """
    h, w = luma.shape[-2:]
    p = F.pad(luma, (3, 4, 3, 4))  # rows/cols i of the image are rows/cols i+3 here

    def responses(t: torch.Tensor, along: int) -> tuple:
        """Differences along ``along`` (−2 rows: h_k, −1 cols: v_k) of box sums across the other axis."""
        across = -1 if along == -2 else -2
        n_across = w if across == -1 else h
        n_along = h if along == -2 else w

        def sl(a: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
            return a.narrow(dim, start, length)

        s2 = sl(t, across, 0, n_across + 6) + sl(t, across, 1, n_across + 6)  # indices c, c+1
        s4 = sl(s2, across, 0, n_across + 4) + sl(s2, across, 2, n_across + 4)  # c … c+3
        b2 = sl(s2, across, 3, n_across)  # j … j+1 (padded j+3 … j+4)
        b4 = sl(s4, across, 2, n_across)  # j-1 … j+2
        b8 = sl(s4, across, 0, n_across) + sl(s4, across, 4, n_across)  # j-3 … j+4
        r1 = (sl(b2, along, 3, n_along) - sl(b2, along, 4, n_along)) * 0.5
        q4 = sl(b4, along, 0, n_along + 6) + sl(b4, along, 1, n_along + 6)  # rows r, r+1
        r2 = (sl(q4, along, 2, n_along) - sl(q4, along, 4, n_along)) * 0.25
        q8 = sl(b8, along, 0, n_along + 6) + sl(b8, along, 1, n_along + 6)
        q8 = sl(q8, along, 0, n_along + 4) + sl(q8, along, 2, n_along + 4)  # rows r … r+3
        r3 = (sl(q8, along, 0, n_along) - sl(q8, along, 4, n_along)) * 0.125
        return r1, r2, r3

    h1, h2, h3 = responses(p, -2)
    v1, v2, v3 = responses(p, -1)
    return h1, v1, h2, v2, h3, v3


def to_planes(t: torch.Tensor, conv: HaarpsiConvention, chromatic: bool, scale: float, subsample: bool,
              backend: str) -> torch.Tensor:
    """N×C×H×W → N×1×h×w luma (N×3×h×w Y, I, Q when ``chromatic``) in 0–255 units, 2×2-subsampled.

    HaarPSI.m converts to YIQ and then subsamples; both steps are linear, so filtering RGB first is the same map up
    to rounding and leaves the colour conversion a quarter of the pixels.
    """
    t = t.to(compute_dtype(t.dtype))
    if subsample:
        h, w = t.shape[-2:]
        # conv2(·, ones(2)/4, 'same') reads X(i … i+1) with zeros past the end; sampled at (1:2:end).
        t = _ops.box_downsample(t, 2, 0, 0, (h + 1) // 2, (w + 1) // 2, "zeros", backend)
    if t.shape[1] == 3:
        rows = conv.yiq if chromatic else conv.yiq[:1]
        t = torch.cat([_ops.luma(t, row, 0.0, round_to_uint8=False, backend=backend) for row in rows], dim=1)
    return t if scale == 1.0 else t * scale


def similarity(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """(2ab + C) / (a² + b² + C) of magnitudes a = |p|, b = |q| (2|p||q| = 2|pq|)."""
    return (2 * (a * b).abs() + c) / (a * a + b * b + c)


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
    x, y = check_pair(x, y, data_range)
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

    scale = 1.0 if data_range == 255 else 255.0 / float(data_range)
    # Subsample each image before stacking: the full-resolution pair is never copied.
    planes = torch.cat([to_planes(t, conv, chromatic, scale, subsample, backend) for t in (x, y)])
    h1, v1, h2, v2, h3, v3 = haar_responses(planes[:, :1])  # both images at once, (2N, 1, h, w) each
    # Local similarity per orientation: mean over scales 1 and 2; scale 3 gives the weight.
    terms = []
    for r1, r2, r3 in ((h1, h2, h3), (v1, v2, v3)):
        local = (similarity(r1[:n], r1[n:], c) + similarity(r2[:n], r2[n:], c)) / 2
        terms.append((local, torch.maximum(r3[:n].abs(), r3[n:].abs())))
    if chromatic:
        # conv2(I, ones(2)/4, 'same'): the 2×2 mean of X(i … i+1, j … j+1), zeros past the bottom/right edge.
        iq = F.pad(planes[:, 1:], (0, 1, 0, 1))
        iq = (iq[..., :-1, :-1] + iq[..., 1:, :-1] + iq[..., :-1, 1:] + iq[..., 1:, 1:]) * 0.25
        s_iq = similarity(iq[:n], iq[n:], c)
        terms.append(((s_iq[:, :1] + s_iq[:, 1:]) / 2, (terms[0][1] + terms[1][1]) / 2))
    # The logit at the end magnifies rounding in the pooled ratio: accumulate it in float64.
    f64 = torch.float64
    num = sum((torch.sigmoid(alpha * local) * weight).sum(dim=(1, 2, 3), dtype=f64) for local, weight in terms)
    den = sum(weight.sum(dim=(1, 2, 3), dtype=f64) for _, weight in terms)
    if conv.eps:
        eps = torch.finfo(planes.dtype).eps
        num, den = num + eps, den + eps
    score = num / den
    return reduce(((torch.log(score / (1 - score)) / alpha) ** 2).to(planes.dtype), reduction)


haarpsi.lower_is_better = False


class HaarPSI(MetricModule):
    """Module form of :func:`haarpsi`; ``loss=True`` returns 1 - HaarPSI."""

    metric = staticmethod(haarpsi)
