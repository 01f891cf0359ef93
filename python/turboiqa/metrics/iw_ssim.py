"""IW-SSIM — Z. Wang, Q. Li, "Information content weighting for perceptual image quality assessment",
IEEE TIP 20(5):1185–1198, 2011.

Reference code: Wang's MATLAB ``iwssim.m`` (with ``scale_quality_maps``, ``info_content_weight_map``,
``imenlarge2``) on Simoncelli's matlabPyrTools ``buildLpyr`` (SPECS §4.1). Per pyramid band s: the SSIM
contrast-structure map cs_s (Gaussian 11/1.5, 'valid'; times the luminance map at the coarsest band), pooled with
the information-content weights of a Gaussian scale mixture model of the reference band (3×3 neighbours plus the
parent coefficient); IW-SSIM = Π_s wmcs_s^{w_s} with Wang's MS-SSIM weights renormalised to sum 1.

The pyramids are built one level at a time (``_ops.laplacian_level``). Per band-pass band the work is three steps:
the K×K covariance of the neighbourhood vectors (``_ops.iw_neighbour_covariance``), its eigen-decomposition and
inverse (``reference.iw_ssim.spectral_terms``, PyTorch on the CPU, all bands of a call at once), and the
information-content weights pooled with the cs map (``_ops.iw_pooled_cs``: box statistics, the quadratic form Yᵀ C⁻¹
Y, Σ_j log2(…) and the weighted cs sums in one pass, no image-sized intermediates). The pyramid level, the
covariance and the pooling are native CPU operators with PyTorch twins in ``turboiqa.reference.iw_ssim``; the
spectral step and the coarsest band (l·cs, in float64) are PyTorch.

Work is done in MATLAB's units (images scaled to 0…255: σ_n² = 0.4 is an absolute variance). Argument order, as
every turboiqa metric: ``x`` distorted, ``y`` reference. IW-SSIM is asymmetric: the information weights come from
the reference's pyramid (``iwssim(oimg, img)``: ``info_content_weight_map`` reads ``oimg``), so ``iw_ssim(x, y)``
computes ``iwssim.m(y, x)``. Colour input is reduced to YIQ/Rec.601 luma 0.299R + 0.587G + 0.114B without rounding
(the 'rgb case' of piq's MATLAB test value); other channel counts are scored per channel and averaged.

The published MATLAB value 0.946804801436296 for TID2013 I01 / i01_01_5 (piq's tests/test_iw_ssim.py) has the roles
swapped: piq's test calls ``information_weighted_ssim(I01, i01_01_5)`` and piq's second argument is its reference
(like ours), so the value is ``iwssim.m(i01_01_5, I01)``, the distorted image supplying the weights (piq's grey
test pair is in the right order). Here ``iw_ssim(I01, i01_01_5)`` reproduces it to 1e-16 (float64), which pins
``y`` to ``oimg``; the distorted-first call ``iw_ssim(i01_01_5, I01)`` is ``iwssim.m(I01, i01_01_5)``,
0.946239578522783 (the same computation with I01 as the original, and piq's ``information_weighted_ssim(i01_01_5,
I01)`` to 1e-5).
``convention=``:

========  ==========================================================================================================
'matlab'  iwssim.m + matlabPyrTools: ``upConv`` 'reflect1' expansion for odd sizes too, tol = 1e-15, no |·| before
          the fractional powers (a negative pooled cs gives NaN, where MATLAB gives a complex number), images of at
          least 11·2^(scales-1) [default]
'piq'     piq.information_weighted_ssim: zero-stuffing to an even length in the expansion (the last row/column of
          odd-sized bands differs), tol = machine epsilon of the compute dtype, |wmcs| before the powers, images of
          at least 10·2^(scales-1)+1. Not copied: with a single scale piq pools its first band-pass band, here
          (as in iwssim.m) the image itself is scored
========  ==========================================================================================================
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _ops
from ..dtypes import compute_dtype
from ..reference.iw_ssim import contrast_structure_map, spectral_terms, upsample_axis  # noqa: F401 (re-export)
from ..validate import LAYOUT_HINT, check_pair, check_reduction, reduce
from ..window import gaussian_window
from .module import MetricModule
from .ms_ssim import WANG_WEIGHTS, minimum_size
from .ssim import prepare_channels, resolve_convention

KERNEL_SIZE, KERNEL_SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


@dataclass(frozen=True)
class IwSsimConvention:
    expand: str = "matlab"  # 'matlab': zero-stuff to the target length; 'piq': to an even length, then crop
    tol: float | None = 1e-15  # None: torch.finfo(compute dtype).eps (piq)
    abs_before_power: bool = False
    color: str = "yiq"  # luma for 3-channel input (see turboiqa.colour) or 'per_channel'
    min_size_rule: str = "window"  # see ms_ssim.minimum_size
    kernel_size: int = KERNEL_SIZE


IW_SSIM_CONVENTIONS = {
    "matlab": IwSsimConvention(),
    "piq": IwSsimConvention(expand="piq", tol=None, abs_before_power=True, min_size_rule="taps"),
}


def laplacian_pyramid(planes: torch.Tensor, levels: int, expand: str, backend: str = "auto") -> list[torch.Tensor]:
    """``buildLpyr(im, levels)``: levels-1 band-pass bands (fine to coarse) then the low-pass residual."""
    bands = []
    for _ in range(levels - 1):
        band, planes = _ops.laplacian_level(planes, expand, backend)
        bands.append(band)
    bands.append(planes)
    return bands


def _spectral_terms(covariances: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(C_u⁻¹, eigenvalues) of every band's covariance, on the CPU.

    The K×K eigen-decompositions are tiny: on a GPU the solvers' launch and sync cost milliseconds each, the CPU
    microseconds. All bands travel in one device-to-host copy (the only host sync of the call) and come back in one
    non-blocking copy; bands with the same K (with or without a parent) share one batched solve.
    """
    device = covariances[0].device
    host = covariances
    # 'meta' tensors have no values to copy: their solves run where they are (shapes only).
    solve_in_place = device.type in ("cpu", "meta")
    if not solve_in_place:
        sizes = [c.numel() for c in covariances]
        flat = torch.cat([c.reshape(-1) for c in covariances]).cpu()
        host = [part.view_as(c) for part, c in zip(flat.split(sizes), covariances)]
    by_size: dict[int, list[int]] = {}
    for index, covariance in enumerate(host):
        by_size.setdefault(covariance.shape[-1], []).append(index)
    terms: list = [None] * len(host)
    for indices in by_size.values():
        inverses, eigenvalues = spectral_terms(torch.stack([host[i] for i in indices]))
        for i, inverse, values in zip(indices, inverses, eigenvalues):
            terms[i] = (inverse, values)
    if solve_in_place:
        return terms
    parts = [t for pair in terms for t in pair]
    flat = torch.cat([t.reshape(-1) for t in parts]).to(device, non_blocking=True)
    back = [part.view_as(t) for part, t in zip(flat.split([t.numel() for t in parts]), parts)]
    return list(zip(back[0::2], back[1::2]))


def iw_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    scales: int = 5,
    parent: bool = True,
    blk_size: int = 3,
    sigma_nsq: float = 0.4,
    backend: str = "auto",
    color: str | None = None,
    kernel_size: int = KERNEL_SIZE,
    kernel_sigma: float = KERNEL_SIGMA,
    k1: float = K1,
    k2: float = K2,
    scale_weights=None,
) -> torch.Tensor:
    """IW-SSIM of each pair: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (the order of every turboiqa metric; IW-SSIM is asymmetric: the information
    weights come from ``y``, ``iw_ssim(x, y)`` is ``iwssim.m(y, x)``): N×C×H×W (or C×H×W / H×W), uint8
    (data_range=255) or float in [0, data_range]; float64 input computes in float64, everything else in float32.
    ``scales`` (1…5) takes the first Wang weights, renormalised (iwssim.m's ``Nsc``); ``parent`` and ``blk_size``
    shape the neighbourhood; ``sigma_nsq`` is the visual noise variance in 0…255 units. ``color`` overrides the
    convention's luma for 3-channel input. ``kernel_size``/``kernel_sigma`` (the Gaussian window), ``k1``/``k2`` and
    ``scale_weights`` (one per scale, normalised to sum to 1; sets ``scales``) replace iwssim.m's constants. A reference with a flat band (a constant image) has no information
    content: that pair scores NaN, as in iwssim.m.

    ``backend``: 'auto' (default) and 'native' run the pyramid levels, the per-band covariance and the fused
    weight/cs pooling in the native CPU operators (float64: the reference numbers to ~1e-15; float32: to ~1e-7, the
    weights being computed in double); 'reference' runs their PyTorch twins. The native operators have no CUDA
    kernel and no backward: on other devices, and whenever a gradient is needed (grad mode on and an input requiring
    grad), the twins run whatever the backend. Differentiable through that path. On CUDA the band steps sync with
    the host once (the input range check of float input is the other sync of a call): the K×K covariances of all
    bands are copied to the CPU together for the eigen-decompositions (milliseconds on a GPU, microseconds on the
    CPU) and go back in one non-blocking copy.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    conv = resolve_convention(convention, IW_SSIM_CONVENTIONS, color=color, kernel_size=kernel_size)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    if scale_weights is not None:
        scale_weights = torch.as_tensor(scale_weights, dtype=torch.float64).cpu()
        if scale_weights.dim() != 1 or not 1 <= scale_weights.numel() <= 5:
            raise ValueError(f"scale_weights must be a vector of 1…5 weights, got shape {tuple(scale_weights.shape)}")
        scales = scale_weights.numel()
    if not 1 <= scales <= 5:
        raise ValueError(f"scales must be 1…5 (iwssim.m caps Nsc at 5), got {scales}")
    if blk_size < 1 or blk_size % 2 == 0:
        raise ValueError(f"blk_size must be a positive odd integer, got {blk_size}")
    h, w = x.shape[-2:]
    need = minimum_size(conv.kernel_size, scales, conv.min_size_rule)
    if min(h, w) < need:
        fitting = [s for s in range(1, 6) if min(h, w) >= minimum_size(conv.kernel_size, s, conv.min_size_rule)]
        raise ValueError(
            f"IW-SSIM with {scales} scales needs images of at least {need}×{need} "
            f"({conv.kernel_size}-tap window at the coarsest of {scales} pyramid levels), got {h}×{w}"
            + (f"; pass scales={max(fitting)} to use fewer scales (command line: --scales {max(fitting)})"
               if fitting else "")
            + LAYOUT_HINT
        )

    x, y = prepare_channels(x, y, conv.color, data_range, backend)
    n, c = x.shape[:2]
    dtype = compute_dtype(x.dtype)
    scale = 255.0 / data_range  # iwssim.m works on 0…255 images (L = 255, σ_n² in those units)
    dist = (x.to(dtype) * scale).reshape(n * c, 1, h, w)
    ref = (y.to(dtype) * scale).reshape(n * c, 1, h, w)
    tol = torch.finfo(dtype).eps if conv.tol is None else conv.tol

    ref_bands = laplacian_pyramid(ref, scales, conv.expand, backend)
    dist_bands = laplacian_pyramid(dist, scales, conv.expand, backend)
    window = gaussian_window(kernel_size, kernel_sigma)
    c1, c2 = (k1 * 255) ** 2, (k2 * 255) ** 2
    # Band-pass bands: information-content weighted cs. iwssim.m uses the parent band for scales 1…Nsc-2 only (the
    # low-pass residual is never a parent).
    band_pass = range(scales - 1)
    parents = [ref_bands[s + 1] if parent and s < scales - 2 else None for s in band_pass]
    covariances = [_ops.iw_neighbour_covariance(ref_bands[s], parents[s], blk_size, backend) for s in band_pass]
    spectra = _spectral_terms(covariances) if covariances else []
    pooled = []
    for s, (inverse, eigenvalues) in zip(band_pass, spectra):
        weighted_cs, weight_sum = _ops.iw_pooled_cs(ref_bands[s], dist_bands[s], parents[s], inverse, eigenvalues,
                                                    blk_size, window, c2, sigma_nsq, tol, backend)
        pooled.append((weighted_cs / weight_sum).to(dtype))
    # iwssim.m: l·cs with a weight map of ones at the coarsest band. The low-pass residual carries 2^(scales-1)× the
    # mean intensity, so E[x²] - μ² cancels badly in float32 (1e-4 off on noisy content); the band is 1/4^(scales-1)
    # of the image, so float64 costs nothing.
    cs = contrast_structure_map(ref_bands[-1].double(), dist_bands[-1].double(), window, c1, c2, with_luminance=True)
    pooled.append(cs.mean(dim=(-2, -1)).to(dtype))
    wmcs = torch.stack(pooled)[..., 0]  # (scales, N·C)
    if conv.abs_before_power:
        wmcs = wmcs.abs()
    if scale_weights is None:
        scale_weights = torch.tensor(WANG_WEIGHTS[:scales], dtype=torch.float64)
    scale_weights = (scale_weights / scale_weights.sum()).to(device=wmcs.device, dtype=wmcs.dtype)
    per_plane = torch.prod(wmcs ** scale_weights.view(-1, 1), dim=0)
    return reduce(per_plane.view(n, c).mean(dim=1), reduction)


class IW_SSIM(MetricModule):
    """Module form of :func:`iw_ssim`; ``loss=True`` returns 1 - IW-SSIM."""

    metric = staticmethod(iw_ssim)
