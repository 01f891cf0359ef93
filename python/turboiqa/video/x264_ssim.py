"""The SSIM of ffmpeg's ``ssim`` filter (libavfilter/vf_ssim.c, inherited from x264), per plane.

Not Wang et al.'s Gaussian SSIM: sums over 4×4 pixel blocks, combined 2×2 into 8×8 windows placed every 4 pixels
(overlapping by half), without a Gaussian; only the ⌊W/4⌋×⌊H/4⌋ whole blocks are used, so the last W mod 4 columns
and H mod 4 rows never count. With s1 = Σx, s2 = Σy, ss = Σ(x² + y²), s12 = Σxy over a 64-pixel window:

    SSIM = (2·s1·s2 + c1)(2·(64·s12 − s1·s2) + c2) / ((s1² + s2² + c1)(64·ss − s1² − s2² + c2))

with the integer constants c1 = round(0.01²·255²·64) = 416 and c2 = round(0.03²·255²·64·63) = 235963, i.e. the
usual constants scaled as C1/64 and C2·63/64 in mean/variance units. The frame value is the plain mean over the
(⌊H/4⌋−1)·(⌊W/4⌋−1) windows. All sums here are exact (integers held in float64); ffmpeg forms the final ratio and
its running sum in float32, hence differences of ~1e-7 relative.
"""
from __future__ import annotations

import torch

SSIM_C1 = 416  # (int)(.01*.01*255*255*64 + .5)
SSIM_C2 = 235963  # (int)(.03*.03*255*255*64*63 + .5)


def block_ssim(dist: torch.Tensor, ref: torch.Tensor, peak: float = 255) -> torch.Tensor:
    """ffmpeg ``ssim`` filter value of each N×1×H×W plane pair (uint8, or code values of a deeper source with
    ``peak`` = 2^depth − 1): (N,) float64. Above 8 bits ffmpeg uses the unrounded constants
    c1 = .01²·peak²·64, c2 = .03²·peak²·64·63 (``ssim_endn_16bit``)."""
    if dist.shape != ref.shape or dist.dim() != 4 or dist.shape[1] != 1:
        raise ValueError(f"dist and ref must be N×1×H×W planes of one shape, got {tuple(dist.shape)} and "
                         f"{tuple(ref.shape)}")
    n, _, h, w = dist.shape
    bh, bw = h // 4, w // 4
    if bh < 2 or bw < 2:
        raise ValueError(f"planes of {h}×{w} are too small for 8×8 windows")
    a = dist[:, 0, : 4 * bh, : 4 * bw].to(torch.float64)  # ffmpeg's "main" input
    b = ref[:, 0, : 4 * bh, : 4 * bw].to(torch.float64)

    def block_sums(t):
        return t.reshape(n, bh, 4, bw, 4).sum(dim=(2, 4))

    def window_sums(t):
        return t[:, :-1, :-1] + t[:, 1:, :-1] + t[:, :-1, 1:] + t[:, 1:, 1:]

    s1, s2 = window_sums(block_sums(a)), window_sums(block_sums(b))
    ss, s12 = window_sums(block_sums(a * a + b * b)), window_sums(block_sums(a * b))
    variances = ss * 64 - s1 * s1 - s2 * s2
    covariance = s12 * 64 - s1 * s2
    c1, c2 = (SSIM_C1, SSIM_C2) if peak == 255 else (.01 * .01 * peak * peak * 64, .03 * .03 * peak * peak * 64 * 63)
    ssim_map = ((2 * s1 * s2 + c1) * (2 * covariance + c2)
                / ((s1 * s1 + s2 * s2 + c1) * (variances + c2)))
    return ssim_map.mean(dim=(1, 2))
