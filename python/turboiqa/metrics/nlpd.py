"""NLPD — normalised Laplacian pyramid distance. V. Laparra, J. Ballé, A. Berardino, E. P. Simoncelli, "Perceptual
image quality assessment using a normalized Laplacian pyramid", Electronic Imaging 2016 (HVEI), 2016.

Reference code: the authors' MATLAB ``NLP_dist.m`` (LCV, NYU; its ``laplacian_pyramid_s`` after T. Mertens): a
6-level Laplacian pyramid of the grey image in [0, 1] with the Burt–Adelson filter [.05 .25 .4 .25 .05]
('symmetric' borders when reducing, 1-pixel 'replicate' border and zero-filled 2× upsampling when expanding), each
band divided by σ_k + conv2(|band|, F_k, 'same') (the published σ and 5×5 F_k, learned on McGill), and the distance
mean_k √(mean((Y_k(x) − Y_k(y))²)). Lower = better (0 for identical images).

``convention=``:

========  =============================================================================================================
'matlab'  NLP_dist.m on the grey image the official scores were computed on: MATLAB ``rgb2gray`` of the 8-bit RGB
          image, rounded to 8 bits, /255; the first DN filter is the 5×5 one of NLP_dist.m, with its 0.0072 tap two
          pixels to the right of the centre [default]
'pyiqa'   pyiqa 0.1.16 ``nlpd``: the unrounded YIQ luma 0.299/0.587/0.114, and the first DN filter cut to its 3×3
          centre (the 0.0072 tap is missing); pyramid as NLP_dist.m; constants rounded to float32 as pyiqa
          stores them
'frame     frame-analytics 0.7.0 ``nlpd``, another formulation (Hepburn et al. 2020 lineage): every RGB channel
analytics' (no grey), TensorFlow-style 'same' reflected borders, bilinear expand, 3×3 DN filters by correlation
          (not rotated), no low-pass level, only levels whose band is >= 8 pixels, per-level RMSE pooled with the
          L0.6 norm; 0 for bitwise-equal images
========  =============================================================================================================

Grey (C = 1) input is used as it is (no rounding). The metric is differentiable (the 8-bit rounding of 'matlab'
passes the gradient straight through).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..validate import check_pair, check_reduction, reduce
from ._grey import grey255
from .module import MetricModule

LEVELS = 6
BURT_ADELSON = (0.05, 0.25, 0.4, 0.25, 0.05)
SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)
# The 3×3 centres of NLP_dist.m's 5×5 DN filters F2 (MATLAB orientation: conv2 rotates them by 180°).
DN_CENTRES = (
    ((0, 0.1011, 0), (0.1493, 0, 0.1460), (0, 0.1015, 0)),
    ((0, 0.0757, 0), (0.1986, 0, 0.1846), (0, 0.0837, 0)),
    ((0, 0.0477, 0), (0.2138, 0, 0.2243), (0, 0.0467, 0)),
    ((0, 0, 0), (0.2503, 0, 0.2616), (0, 0, 0)),
    ((0, 0, 0), (0.2598, 0, 0.2552), (0, 0, 0)),
    ((0, 0, 0), (0.2215, 0, 0.0717), (0, 0, 0)),
)
FIRST_FILTER_EXTRA = 0.0072  # NLP_dist.m DN_filts(1).F2(3, 5)

NLPD_CONVENTIONS = {
    "matlab": {"grey": "rgb2gray", "rounding": "matlab", "extra_tap": True, "float32_constants": False},
    "pyiqa": {"grey": "yiq_f32", "rounding": None, "extra_tap": False, "float32_constants": True},
    "frame_analytics": {},  # another formulation: see _nlpd_frame_analytics
}
FA_MIN_BAND, FA_NORM = 8, 0.6
MIN_SIZE = 2 ** (LEVELS - 1)


@functools.lru_cache(maxsize=32)
def _constants(extra_tap: bool, float32_constants: bool):
    """(Burt–Adelson taps, DN taps per level as ((row offset, col offset, weight), …) of the correlation with the
    180°-rotated F2 — conv2(·, F2, 'same') — on a 2-pixel zero border, sigmas)."""
    f = torch.tensor(BURT_ADELSON, dtype=torch.float64)
    dn = torch.zeros(LEVELS, 5, 5, dtype=torch.float64)
    dn[:, 1:4, 1:4] = torch.tensor(DN_CENTRES, dtype=torch.float64)
    if extra_tap:
        dn[0, 2, 4] = FIRST_FILTER_EXTRA
    sigmas = torch.tensor(SIGMAS, dtype=torch.float64)
    if float32_constants:  # pyiqa keeps its filters and sigmas in float32 tensors
        f, dn, sigmas = f.float().double(), dn.float().double(), sigmas.float().double()
    dn = torch.flip(dn, (-2, -1))
    taps = tuple(tuple((int(u), int(v), float(dn[k, u, v])) for u, v in zip(*torch.nonzero(dn[k], as_tuple=True)))
                 for k in range(LEVELS))
    return tuple(f.tolist()), taps, tuple(sigmas.tolist())


def _reduce(t: torch.Tensor, f, dim: int) -> torch.Tensor:
    """imfilter(·, f, 'symmetric') along ``dim`` (−1 or −2), then every other sample from the first."""
    n = t.shape[dim]
    t = torch.cat([t.narrow(dim, 0, 2).flip(dim), t, t.narrow(dim, n - 2, 2).flip(dim)], dim=dim)
    m = (n + 1) // 2
    out = f[0] * t.narrow(dim, 0, 2 * m - 1)[(slice(None),) * (t.dim() + dim) + (slice(None, None, 2),)]
    for k in range(1, 5):
        sl = t.narrow(dim, k, 2 * m - 1)[(slice(None),) * (t.dim() + dim) + (slice(None, None, 2),)]
        out = out + f[k] * sl
    return out


def _expand(t: torch.Tensor, f, dim: int, n: int) -> torch.Tensor:
    """NLP_dist.m's upsample along ``dim``: 1-sample replicate border, 2·I on the even samples of a zero signal,
    imfilter with f, crop to ``n``. Polyphase: even outputs 2(f0·I[a−1] + f2·I[a] + f4·I[a+1]), odd outputs
    2(f1·I[a] + f3·I[a+1]), I clamped at the ends."""
    m = t.shape[dim]
    p = torch.cat([t.narrow(dim, 0, 1), t, t.narrow(dim, m - 1, 1)], dim=dim)
    a, b, c = p.narrow(dim, 0, m), p.narrow(dim, 1, m), p.narrow(dim, 2, m)
    even = (2 * f[0]) * a + (2 * f[2]) * b + (2 * f[4]) * c
    odd = (2 * f[1]) * b + (2 * f[3]) * c
    out = torch.stack([even, odd], dim=dim)  # interleave: (…, m, 2) or (…, m, 2, W)
    shape = list(t.shape)
    shape[dim] = 2 * m
    return out.reshape(shape).narrow(dim, 0, n)


def laplacian_pyramid(im: torch.Tensor, f) -> list:
    """NLP_dist.m's laplacian_pyramid_s: LEVELS bands, the last one the low-pass residual (separable, strided)."""
    bands, j = [], im
    for _ in range(LEVELS - 1):
        low = _reduce(_reduce(j, f, -2), f, -1)
        up = _expand(_expand(low, f, -2, j.shape[-2]), f, -1, j.shape[-1])
        bands.append(j - up)
        j = low
    bands.append(j)
    return bands


def _dn_amplitude(band: torch.Tensor, taps) -> torch.Tensor:
    """conv2(|band|, F2, 'same'): the few non-zero taps as shifted adds on a 2-pixel zero border."""
    h, w = band.shape[-2:]
    p = F.pad(band.abs(), (2, 2, 2, 2))
    out = 0
    for u, v, weight in taps:
        out = out + weight * p[..., u : u + h, v : v + w]
    return out


def _fa_same_pad(t: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """TensorFlow-style 'same' padding (the extra sample at the end), reflected (x(−1) = x(1))."""
    h, w = t.shape[-2:]
    ph = max((-(-h // stride) - 1) * stride + k - h, 0)
    pw = max((-(-w // stride) - 1) * stride + k - w, 0)
    pad = [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]
    if not any(pad):
        return t
    mode = "reflect" if max(pad[:2]) < w and max(pad[2:]) < h else "replicate"
    return F.pad(t, pad, mode=mode)


def _taps_1d(t: torch.Tensor, f, dim: int, stride: int, count: int) -> torch.Tensor:
    """Σ_k f[k]·t[k + stride·i] along ``dim`` for i < count (a correlation on an already padded signal)."""
    step = (slice(None),) * (t.dim() + dim) + (slice(None, None, stride),)
    out = 0
    for k, weight in enumerate(f):
        out = out + weight * t.narrow(dim, k, stride * (count - 1) + 1)[step]
    return out


def _fa_blur(t: torch.Tensor, f, stride: int) -> torch.Tensor:
    """frame-analytics' depthwise 5×5 Burt–Adelson convolution with 'same' reflected borders, done separably."""
    h, w = t.shape[-2:]
    p = _fa_same_pad(t, 5, stride)
    return _taps_1d(_taps_1d(p, f, -2, stride, -(-h // stride)), f, -1, stride, -(-w // stride))


def _nlpd_frame_analytics(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """frame-analytics 0.7.0 ``nlpd`` (Hepburn et al. lineage): every RGB channel, 'same' reflected borders, a
    bilinear (align_corners) expand, 3×3 DN filters by correlation, no low-pass residual level, levels while the
    band is at least 8 pixels, per-level RMSE over (C, H, W) pooled with the L0.6 norm."""
    dt = x.dtype if x.dtype == torch.float64 else torch.float32
    n, c, h, w = x.shape
    cur = torch.cat([x.to(dt), y.to(dt)]) / float(data_range)
    f = BURT_ADELSON
    levels, ch, cw = 0, h, w
    while levels < LEVELS and min(ch, cw) >= FA_MIN_BAND:
        levels, ch, cw = levels + 1, (ch + 1) // 2, (cw + 1) // 2
    errors = []
    for j in range(max(levels, 1)):
        lo = _fa_blur(cur, f, 2)
        up = F.interpolate(lo, size=cur.shape[-2:], mode="bilinear", align_corners=True)
        band = cur - _fa_blur(up, f, 1)
        p = _fa_same_pad(band.abs(), 3, 1)
        bh, bw = band.shape[-2:]
        den = SIGMAS[j]
        for u in range(3):
            for v in range(3):
                if DN_CENTRES[j][u][v]:
                    den = den + DN_CENTRES[j][u][v] * p[..., u : u + bh, v : v + bw]
        z = band / den
        d = z[:n] - z[n:]
        errors.append((d * d).reshape(n, -1).mean(dim=1, dtype=torch.float64).sqrt())
        cur = lo
    out = torch.stack(errors).pow(FA_NORM).sum(dim=0).pow(1.0 / FA_NORM)
    same = (x.reshape(n, -1) != y.reshape(n, -1)).sum(dim=1) == 0
    return torch.where(same, torch.zeros_like(out), out).to(dt)


def nlpd(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
) -> torch.Tensor:
    """NLPD of each image pair (lower = better): (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; NLPD is symmetric in the two):
    N×C×H×W (or C×H×W / H×W) with C = 1 (grey) or 3 (RGB, converted to grey per ``convention``), uint8
    (data_range=255) or float in [0, data_range]; both sides at least 32×32 (six pyramid levels).
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if convention not in NLPD_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(NLPD_CONVENTIONS)}, got {convention!r}")
    conv = NLPD_CONVENTIONS[convention]
    if x.shape[1] not in (1, 3) and convention != "frame_analytics":
        raise ValueError(f"NLPD needs 1 (grey) or 3 (RGB) channels in x, got {x.shape[1]}")
    h, w = x.shape[-2:]
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"x and y must be at least {MIN_SIZE}×{MIN_SIZE} for NLPD's {LEVELS} levels, got {h}×{w}")
    if convention == "frame_analytics":
        return reduce(_nlpd_frame_analytics(x, y, data_range), reduction)
    n = x.shape[0]
    # both images in one batch, grey in [0, 1]
    im = grey255(torch.cat([x, y]), data_range, conv["grey"], conv["rounding"]) / 255.0
    f, taps, sigmas = _constants(conv["extra_tap"], conv["float32_constants"])
    total = 0
    for k, band in enumerate(laplacian_pyramid(im, f)):
        norm = band / (sigmas[k] + _dn_amplitude(band, taps[k]))
        d = norm[:n] - norm[n:]
        total = total + d.square().mean(dim=(1, 2, 3)).sqrt()
    return reduce(total / LEVELS, reduction)


nlpd.lower_is_better = True


class NLPD(MetricModule):
    """Module form of :func:`nlpd` (lower = better; no loss form: NLPD is already a distance)."""

    metric = staticmethod(nlpd)
    bounded_similarity = False
