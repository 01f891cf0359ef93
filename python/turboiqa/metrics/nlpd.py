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
========  =============================================================================================================

Grey (C = 1) input is used as it is (no rounding). The metric is differentiable (the 8-bit rounding of 'matlab'
passes the gradient straight through).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..padding import pad_2d
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
}
MIN_SIZE = 2 ** (LEVELS - 1)


@functools.lru_cache(maxsize=32)
def _filters(dtype: torch.dtype, device: torch.device, extra_tap: bool, float32_constants: bool):
    """(1-D reduce taps as (1,1,5,1) and (1,1,1,5), the same ×2 for the expand step, DN kernels 6×1×5×5 ready for
    F.conv2d, i.e. already rotated by 180° like conv2)."""
    f = torch.tensor(BURT_ADELSON, dtype=torch.float64)
    dn = torch.zeros(LEVELS, 1, 5, 5, dtype=torch.float64)
    dn[:, 0, 1:4, 1:4] = torch.tensor(DN_CENTRES, dtype=torch.float64)
    if extra_tap:
        dn[0, 0, 2, 4] = FIRST_FILTER_EXTRA
    dn = torch.flip(dn, (-2, -1))
    if float32_constants:  # pyiqa keeps its filters in float32 tensors
        f, dn = f.float().double(), dn.float().double()
    out = (f.view(1, 1, 5, 1), f.view(1, 1, 1, 5), 2 * f.view(1, 1, 5, 1), 2 * f.view(1, 1, 1, 5), dn)
    sigmas = torch.tensor(SIGMAS, dtype=torch.float32 if float32_constants else torch.float64).tolist()
    return tuple(t.to(dtype=dtype, device=device) for t in out) + (sigmas,)


def laplacian_pyramid(im: torch.Tensor, filters) -> list:
    """NLP_dist.m's laplacian_pyramid_s: LEVELS bands, the last one the low-pass residual."""
    fv, fh, ev, eh = filters[:4]
    bands, j = [], im
    for _ in range(LEVELS - 1):
        # reduce: imfilter(J, f'f, 'symmetric') then J(1:2:end, 1:2:end)
        low = F.conv2d(F.conv2d(pad_2d(j, 2, "symmetric"), fv, stride=(2, 1)), fh, stride=(1, 2))
        odd_h, odd_w = 2 * low.shape[-2] - j.shape[-2], 2 * low.shape[-1] - j.shape[-1]
        # expand: 1-pixel replicate border, 4·I on the even samples of a zero image, imfilter (zero border), crop
        # 2 + odd from the ends: a stride-2 transposed convolution of 2f per axis, cropped by 4 on each side.
        up = F.pad(low, (1, 1, 1, 1), mode="replicate")
        up = F.conv_transpose2d(up, ev, stride=(2, 1), padding=(4, 0), output_padding=(1 - odd_h, 0))
        up = F.conv_transpose2d(up, eh, stride=(1, 2), padding=(0, 4), output_padding=(0, 1 - odd_w))
        bands.append(j - up)
        j = low
    bands.append(j)
    return bands


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
    if x.shape[1] not in (1, 3):
        raise ValueError(f"NLPD needs 1 (grey) or 3 (RGB) channels in x, got {x.shape[1]}")
    h, w = x.shape[-2:]
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"x and y must be at least {MIN_SIZE}×{MIN_SIZE} for NLPD's {LEVELS} levels, got {h}×{w}")
    n = x.shape[0]
    # both images in one batch, grey in [0, 1]
    im = grey255(torch.cat([x, y]), data_range, conv["grey"], conv["rounding"]) / 255.0
    filters = _filters(im.dtype, im.device, conv["extra_tap"], conv["float32_constants"])
    dn, sigmas = filters[4], filters[5]
    total = 0
    for k, band in enumerate(laplacian_pyramid(im, filters)):
        norm = band / (sigmas[k] + F.conv2d(band.abs(), dn[k : k + 1], padding=2))
        d = norm[:n] - norm[n:]
        total = total + d.square().mean(dim=(1, 2, 3)).sqrt()
    return reduce(total / LEVELS, reduction)


nlpd.lower_is_better = True


class NLPD(MetricModule):
    """Module form of :func:`nlpd` (lower = better; no loss form: NLPD is already a distance)."""

    metric = staticmethod(nlpd)
    bounded_similarity = False
