"""The only module that touches ``torch.ops``: loads the extension, registers autograd, and picks the native
operator or its pure-PyTorch twin. Fake kernels are the extension's Meta kernels (csrc/meta/ops_meta.cpp).

``backend='auto'`` (default) uses the native operator when the extension is loaded, ``'native'`` insists on it and
``'reference'`` always runs the PyTorch twin in ``turboiqa.reference``.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import torch

from . import filters as _filters
from .dtypes import compute_dtype
from .reference import image_ops as _reference_image
from .reference import ssim_stats as _reference_ssim
from .reference import vifp_stats as _reference_vifp

try:
    from . import _C  # noqa: F401  (loading it registers torch.ops.turboiqa.*)

    HAVE_NATIVE = True
    _IMPORT_ERROR: Exception | None = None
except ImportError as exc:  # pragma: no cover - exercised on installs without the compiled module
    HAVE_NATIVE = False
    _IMPORT_ERROR = exc
    warnings.warn(f"turboiqa: compiled kernels unavailable ({exc}); using the pure-PyTorch reference path", stacklevel=2)

BACKENDS = ("auto", "native", "reference")


def use_native(backend: str) -> bool:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "native" and not HAVE_NATIVE:
        raise RuntimeError(f"backend='native' but the compiled extension failed to load: {_IMPORT_ERROR}")
    return HAVE_NATIVE and backend != "reference"


# No register_fake here: every operator has a C++ Meta kernel (csrc/meta/ops_meta.cpp) that runs the CPU/CUDA
# entries' own argument checks (one function per operator, in the shared headers) and returns empty outputs;
# FakeTensorMode (torch.compile, opcheck) runs it on the fake tensors, symbolic shapes included. A Python fake
# kernel could not call those checks, and torch refuses register_fake next to a C++ Meta kernel.

if HAVE_NATIVE:

    def _ssim_stats_setup_context(ctx, inputs, output):
        x, y, *params = inputs  # window, c1, c2, padding, cov_norm[, nonnegative_cs]
        ctx.save_for_backward(x, y)
        ctx.params = tuple(params)

    def _ssim_stats_backward(ctx, grad_ssim, grad_cs):
        x, y = ctx.saved_tensors
        if grad_ssim is None:
            grad_ssim = torch.zeros(x.shape[:2], dtype=compute_dtype(x.dtype), device=x.device)
        if grad_cs is None:
            grad_cs = torch.zeros_like(grad_ssim)
        dx, dy = torch.ops.turboiqa._ssim_stats_backward(grad_ssim, grad_cs, x, y, *ctx.params)
        needs_x, needs_y = ctx.needs_input_grad[:2]
        return (dx if needs_x else None), (dy if needs_y else None), *([None] * len(ctx.params))

    torch.library.register_autograd(
        "turboiqa::ssim_stats", _ssim_stats_backward, setup_context=_ssim_stats_setup_context
    )


if HAVE_NATIVE:

    def _squared_error_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.mark_non_differentiable(output[1])

    def _squared_error_backward(ctx, grad, _grad_extrema):
        # Elementwise and trivially composite: 2 (x - y) g, no dedicated kernel needed.
        x, y = ctx.saved_tensors
        diff = (x.to(grad.dtype) - y.to(grad.dtype)) * (2 * grad.view(-1, 1, 1, 1))
        gx = diff.to(x.dtype) if ctx.needs_input_grad[0] else None
        gy = (-diff).to(y.dtype) if ctx.needs_input_grad[1] else None
        return gx, gy

    torch.library.register_autograd("turboiqa::squared_error_sum", _squared_error_backward,
                                    setup_context=_squared_error_setup)

    def _box_downsample_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.params = inputs[1:]

    def _box_downsample_backward(ctx, grad):
        (x,) = ctx.saved_tensors
        factor, pad_top, pad_left, out_height, out_width, _border = ctx.params
        h, w = x.shape[-2:]
        if pad_top == 0 and pad_left == 0 and out_height * factor <= h and out_width * factor <= w:
            # Every box inside the image (piq's avg_pool2d downsampling): each input sample of box (i, j) gets
            # grad[i, j] / f², the rest of the image none. One broadcast copy instead of the twin's gathers.
            spread = grad[..., :, None, :, None] / (factor * factor)
            spread = spread.expand(*grad.shape[:-2], out_height, factor, out_width, factor)
            gx = torch.zeros(x.shape, dtype=grad.dtype, device=grad.device)
            gx[..., : out_height * factor, : out_width * factor] = spread.reshape(
                *grad.shape[:-2], out_height * factor, out_width * factor)
            return gx.to(x.dtype), None, None, None, None, None, None
        # Folded borders: the vjp of the reference twin (training-only, so no second hand-written kernel).
        with torch.enable_grad():
            xr = x.detach().requires_grad_()
            (gx,) = torch.autograd.grad(_reference_image.box_downsample(xr, *ctx.params), xr, grad)
        return gx, None, None, None, None, None, None

    torch.library.register_autograd("turboiqa::box_downsample", _box_downsample_backward,
                                    setup_context=_box_downsample_setup)

    def _luma_setup(ctx, inputs, output):
        ctx.coeffs = inputs[1]
        ctx.input_dtype = inputs[0].dtype

    def _luma_backward(ctx, grad):
        w = torch.tensor(ctx.coeffs, dtype=grad.dtype, device=grad.device).view(1, 3, 1, 1)
        return (grad * w).to(ctx.input_dtype), None, None, None

    torch.library.register_autograd("turboiqa::luma", _luma_backward, setup_context=_luma_setup)


if HAVE_NATIVE:

    def _pc_energy_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.params = inputs[2:]

    def _pc_energy_backward(ctx, grad):
        # Training-only path: the vjp of the PyTorch twin (the fused kernel is for scoring throughput).
        from .reference.phase_congruency import pc_energy as reference_pc_energy

        eo, threshold = ctx.saved_tensors
        with torch.enable_grad():
            eo_r = eo.detach().requires_grad_(ctx.needs_input_grad[0])
            th_r = threshold.detach().requires_grad_(ctx.needs_input_grad[1])
            wanted = [t for t in (eo_r, th_r) if t.requires_grad]
            grads = iter(torch.autograd.grad(reference_pc_energy(eo_r, th_r, *ctx.params), wanted, grad))
        return (next(grads) if eo_r.requires_grad else None, next(grads) if th_r.requires_grad else None, None, None)

    torch.library.register_autograd("turboiqa::pc_energy", _pc_energy_backward, setup_context=_pc_energy_setup)


def pc_energy(eo, threshold, epsilon, pc_eps, backend="auto"):
    """Fused phase-congruency energy step (see the schema in csrc/ops.cpp); ``eo`` is view_as_real of the responses."""
    if use_native(backend):
        return torch.ops.turboiqa.pc_energy(eo, threshold, float(epsilon), float(pc_eps))
    from .reference.phase_congruency import pc_energy as reference_pc_energy

    return reference_pc_energy(eo, threshold, float(epsilon), float(pc_eps))


def needs_grad(*tensors) -> bool:
    """Whether autograd will record a call on these tensors."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def below_autograd():
    """Context that calls an operator below the Autograd key: skips the Python autograd wrapper of
    ``register_autograd`` (tens of µs per call, as much as a 1080p uint8 PSNR kernel's tenth) when no gradient is
    needed. Not under torch.compile, which traces the operator itself."""
    if torch.compiler.is_compiling() or _BELOW_AUTOGRAD is None:
        return contextlib.nullcontext()
    return _BELOW_AUTOGRAD()


_BELOW_AUTOGRAD = getattr(torch._C, "_AutoDispatchBelowAutograd", None)


def squared_error_sum(x, y, backend="auto"):
    """Per-image Σ (x - y)² over C, H, W as float64 (N,), and the extrema (N, 4): min x, max x, min y, max y
    (uint8: the dtype's bounds 0, 255, 0, 255, not read)."""
    if use_native(backend):
        if needs_grad(x, y):
            return torch.ops.turboiqa.squared_error_sum(x, y)
        with below_autograd():
            return torch.ops.turboiqa.squared_error_sum(x, y)
    return _reference_image.squared_error_sum(x, y)


def psnr_db(x, y, data_range, eps=0.0, max_db=None, reduction="mean", backend="auto"):
    """PSNR in dB from one squared-error pass, reduced, in the compute dtype; and the extrema for the input checks
    (NaN rows for NaN sums). No gradient: differentiable callers use :func:`squared_error_sum`."""
    cap = math.inf if max_db is None else float(max_db)
    if use_native(backend):
        with below_autograd():
            return torch.ops.turboiqa.psnr_db(x, y, float(data_range), float(eps), cap, reduction)
    return _reference_image.psnr_db(x, y, float(data_range), float(eps), cap, reduction)


def box_downsample(x, factor, pad_top, pad_left, out_height, out_width, border, backend="auto"):
    """f×f box mean sampled every f pixels (see the schema in csrc/ops.cpp)."""
    if use_native(backend):
        return torch.ops.turboiqa.box_downsample(x, factor, pad_top, pad_left, out_height, out_width, border)
    return _reference_image.box_downsample(x, factor, pad_top, pad_left, out_height, out_width, border)


def luma(x, coeffs, offset=0.0, round_to_uint8=False, backend="auto"):
    """c0·R + c1·G + c2·B + offset; uint8 → uint8 (MATLAB rounding) when ``round_to_uint8``."""
    coeffs = [float(c) for c in coeffs]
    if use_native(backend):
        return torch.ops.turboiqa.luma(x, coeffs, float(offset), bool(round_to_uint8))
    return _reference_image.luma(x, coeffs, float(offset), bool(round_to_uint8))


def ssim_stats(x, y, window, c1, c2, padding="valid", cov_norm=1.0, backend="auto", nonnegative_cs=False):
    """Per-plane means of the SSIM and contrast-structure maps, each (N, C).

    ``window`` is the 1-D separable window (odd length, sums to 1); ``c1``/``c2`` are in the units of ``x``;
    ``padding`` is 'valid' or a 'same' border: 'zeros', 'symmetric' (MATLAB), 'reflect', 'replicate'.
    ``nonnegative_cs`` clamps cs at 0 per pixel before it multiplies the luminance term (pyiqa).
    """
    window = list(window)
    if use_native(backend):
        return torch.ops.turboiqa.ssim_stats(x, y, window, float(c1), float(c2), padding, float(cov_norm),
                                             bool(nonnegative_cs))
    return _reference_ssim.ssim_stats(x, y, window, c1, c2, padding, cov_norm, bool(nonnegative_cs))


# Feature distances of the deep metrics (LPIPS, DISTS, PIPAL's SWD). Registered only when the loaded extension
# has them, so a build without the kernels still serves the reference path.
def _has_op(name: str) -> bool:
    return HAVE_NATIVE and hasattr(torch.ops.turboiqa, name)


def _reference_vjp(fn, inputs, wanted, grad):
    """Gradients of a reference twin for the inputs flagged in ``wanted`` (None elsewhere): the per-channel
    weight gradients are training-only and cheap, so they reuse the twins instead of more kernels."""
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(w) if isinstance(t, torch.Tensor) else t for t, w in zip(inputs, wanted)]
        needs = [t for t, w in zip(leaves, wanted) if w]
        grads = iter(torch.autograd.grad(fn(*leaves), needs, grad)) if needs else iter(())
    return [next(grads) if w else None for w in wanted]


if _has_op("lpips_distance"):
    from .reference import feature_distance as _reference_features

    def _feature_pair_setup(ctx, inputs, output):
        ctx.save_for_backward(*(t for t in inputs if isinstance(t, torch.Tensor)))
        ctx.params = tuple(t for t in inputs if not isinstance(t, torch.Tensor))

    def _lpips_distance_backward(ctx, grad):
        f0, f1, weight = ctx.saved_tensors
        (eps,) = ctx.params
        g0 = g1 = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            g0, g1 = torch.ops.turboiqa._lpips_distance_backward(grad, f0, f1, weight, eps)
        (gw,) = _reference_vjp(lambda w: _reference_features.lpips_distance(f0, f1, w, eps), [weight],
                               [ctx.needs_input_grad[2]], grad)
        return (g0 if ctx.needs_input_grad[0] else None), (g1 if ctx.needs_input_grad[1] else None), gw, None

    torch.library.register_autograd("turboiqa::lpips_distance", _lpips_distance_backward,
                                    setup_context=_feature_pair_setup)

    def _dists_layer_backward(ctx, grad):
        f0, f1, alpha, beta = ctx.saved_tensors
        c1, c2 = ctx.params
        g0 = g1 = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            g0, g1 = torch.ops.turboiqa._dists_layer_backward(grad, f0, f1, alpha, beta, c1, c2)
        ga, gb = _reference_vjp(lambda a, b: _reference_features.dists_layer(f0, f1, a, b, c1, c2), [alpha, beta],
                                list(ctx.needs_input_grad[2:4]), grad)
        return (g0 if ctx.needs_input_grad[0] else None), (g1 if ctx.needs_input_grad[1] else None), ga, gb, None, None

    torch.library.register_autograd("turboiqa::dists_layer", _dists_layer_backward,
                                    setup_context=_feature_pair_setup)

    def _swd_distance_backward(ctx, grad):
        fd, fr, weight = ctx.saved_tensors
        radius, eps = ctx.params
        gd = gr = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            gd, gr = torch.ops.turboiqa._swd_distance_backward(grad, fd, fr, weight, radius, eps)
        (gw,) = _reference_vjp(lambda w: _reference_features.swd_distance(fd, fr, w, radius, eps), [weight],
                               [ctx.needs_input_grad[2]], grad)
        return (gd if ctx.needs_input_grad[0] else None), (gr if ctx.needs_input_grad[1] else None), gw, None, None

    torch.library.register_autograd("turboiqa::swd_distance", _swd_distance_backward,
                                    setup_context=_feature_pair_setup)


def lpips_distance(f0, f1, weight, eps=1e-10, backend="auto"):
    """LPIPS distance of one layer, (N,): mean over H×W of Σ_c w_c (f0_c/(‖f0‖+eps) − f1_c/(‖f1‖+eps))².

    ``f0``/``f1`` N×C×H×W features (any memory format; float16/bfloat16 compute in float32), ``weight`` the C
    non-negative weights of the 1×1 head (1-D or 1×C×1×1). One fused pass; differentiable in all three tensors.
    """
    if use_native(backend) and _has_op("lpips_distance"):
        return torch.ops.turboiqa.lpips_distance(f0, f1, weight, float(eps))
    from .reference.feature_distance import lpips_distance as reference_lpips_distance

    return reference_lpips_distance(f0, f1, weight, float(eps))


def dists_layer(f0, f1, alpha, beta, c1=1e-6, c2=1e-6, backend="auto"):
    """DISTS terms of one layer, (N,): Σ_c α_c l_c + β_c s_c from global per-channel statistics (population
    variance); ``alpha``/``beta`` already normalised by the caller (C values each). Differentiable."""
    if use_native(backend) and _has_op("dists_layer"):
        return torch.ops.turboiqa.dists_layer(f0, f1, alpha, beta, float(c1), float(c2))
    from .reference.feature_distance import dists_layer as reference_dists_layer

    return reference_dists_layer(f0, f1, alpha, beta, float(c1), float(c2))


def swd_distance(fd, fr, weight, radius=1, eps=1e-10, backend="auto"):
    """PIPAL's spatially-warped difference of one layer, (N,): for each position of the distorted features
    ``fd``, the smallest weighted squared distance of its unit-normalised feature to the reference features ``fr``
    in the (2·radius+1)² neighbourhood (inside the map only), averaged over positions. radius=1 (3×3) by default:
    SPECS §14 marks the original size as uncertain. Ties go to the first neighbour in raster order of (Δi, Δj);
    the gradient flows through that neighbour only."""
    if use_native(backend) and _has_op("swd_distance"):
        return torch.ops.turboiqa.swd_distance(fd, fr, weight, int(radius), float(eps))
    from .reference.feature_distance import swd_distance as reference_swd_distance

    return reference_swd_distance(fd, fr, weight, int(radius), float(eps))


# IW-SSIM's per-band operators (CPU only; on other devices, and when a gradient is needed, the twins run).
_IW_MAX_NATIVE_BLK = 7  # kIwMaxComponents in csrc/cpu/iw_ssim_rows.h: 7×7 neighbours plus the parent


def _iw_native(backend, *tensors, blk_size=1) -> bool:
    """The native IW-SSIM operators have no backward, no CUDA kernel and neighbourhoods up to 7×7: the twins serve
    the other cases."""
    present = [t for t in tensors if t is not None]
    return (use_native(backend) and _has_op("iw_pooled_cs") and all(t.device.type == "cpu" for t in present)
            and not needs_grad(*present) and blk_size <= _IW_MAX_NATIVE_BLK)


def laplacian_level(planes, expand, backend="auto"):
    """One level of matlabPyrTools' ``buildLpyr``: (band, lowpass), see the schema in csrc/ops.cpp."""
    if _iw_native(backend, planes):
        with below_autograd():
            return torch.ops.turboiqa.laplacian_level(planes, expand)
    from .reference.iw_ssim import laplacian_level as reference_laplacian_level

    return reference_laplacian_level(planes, expand)


def iw_neighbour_covariance(band, parent, blk_size, backend="auto"):
    """Σ Y Yᵀ / positions of the neighbourhood vectors of a band (blk×blk neighbours plus the enlarged ``parent``
    sample when given), (N, C, K, K); see the schema in csrc/ops.cpp."""
    if _iw_native(backend, band, parent, blk_size=blk_size):
        with below_autograd():
            return torch.ops.turboiqa.iw_neighbour_covariance(band, parent, int(blk_size))
    from .reference.iw_ssim import neighbour_covariance

    return neighbour_covariance(band, parent, int(blk_size))


def iw_pooled_cs(ref, dist, parent, inverse, eigenvalues, blk_size, window, c2, sigma_nsq, tol, backend="auto"):
    """(Σ w·cs, Σ w) per plane, (N, C) each: the band's contrast-structure map pooled with its information-content
    weights (see the schema in csrc/ops.cpp). float64 from the native operator, the band's dtype from the twin."""
    window = [float(v) for v in window]
    args = (int(blk_size), window, float(c2), float(sigma_nsq), float(tol))
    if _iw_native(backend, ref, dist, parent, inverse, eigenvalues, blk_size=blk_size):
        with below_autograd():
            return torch.ops.turboiqa.iw_pooled_cs(ref, dist, parent, inverse, eigenvalues, *args)
    from .reference.iw_ssim import pooled_cs

    return pooled_cs(ref, dist, parent, inverse, eigenvalues, *args)


# Spatial-pyramid histogram intersection (the Amirshahi et al. CNN-feature metric, SPECS §8).
if _has_op("histogram_intersection"):

    def _histogram_setup(ctx, inputs, output):
        fd, fr, levels = inputs
        ctx.save_for_backward(fd, fr)
        ctx.levels = levels

    def _histogram_backward(ctx, grad):
        fd, fr = ctx.saved_tensors
        gd, gr = torch.ops.turboiqa._histogram_intersection_backward(grad.contiguous(), fd, fr, ctx.levels)
        return (gd if ctx.needs_input_grad[0] else None), (gr if ctx.needs_input_grad[1] else None), None

    torch.library.register_autograd("turboiqa::histogram_intersection", _histogram_backward,
                                    setup_context=_histogram_setup)


def histogram_intersection(fd, fr, levels, backend="auto"):
    """Per-level spatial-pyramid histogram intersection of two feature maps, (N, levels) (see csrc/histogram.h):
    level v splits the N×K×H×W maps into 2^v×2^v cells, each cell's K channel sums normalised to unit sum and
    compared by Σ_k min(h_k, h'_k), averaged over the level's cells. ``fd``/``fr`` float32 or float64 (any memory
    format). Differentiable in both maps."""
    if use_native(backend) and _has_op("histogram_intersection"):
        if needs_grad(fd, fr):
            return torch.ops.turboiqa.histogram_intersection(fd, fr, int(levels))
        with below_autograd():
            return torch.ops.turboiqa.histogram_intersection(fd, fr, int(levels))
    from .reference.histogram import histogram_intersection as reference_histogram_intersection

    return reference_histogram_intersection(fd, fr, int(levels))


# Gradient similarity (GMSD, MS-GMSD, SR-SIM; csrc/gradient_similarity.h): native forward and backward on CPU and
# (with a CUDA build) CUDA; the twin (reference/gradient_similarity.py) elsewhere and as the reference backend.
def _native_device(x, op: str) -> bool:
    """True where the loaded extension has a kernel of ``op`` for x's device (CPU always; CUDA with a CUDA build;
    Meta where the op has a fake kernel)."""
    if x.device.type == "cpu":
        return True
    key = _DISPATCH_KEYS.get(x.device.type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(f"turboiqa::{op}", key)


_DISPATCH_KEYS = {"cuda": "CUDA", "meta": "Meta"}  # device type → dispatch key name (not simply upper-cased)


if _has_op("gradient_similarity"):

    def _gradient_similarity_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.params = inputs[2:]

    def _gradient_similarity_backward(ctx, grad):
        x, y = ctx.saved_tensors
        needs_x, needs_y = ctx.needs_input_grad[:2]
        if _has_op("_gradient_similarity_backward"):
            dx, dy = torch.ops.turboiqa._gradient_similarity_backward(grad.contiguous(), x, y, *ctx.params)
        else:  # pragma: no cover - an extension built before the native backward
            from .reference.gradient_similarity import gradient_similarity as reference

            dx, dy = _reference_vjp(lambda a, b: reference(a, b, *ctx.params), [x, y], [needs_x, needs_y], grad)
        return (dx if needs_x else None), (dy if needs_y else None), *([None] * len(ctx.params))

    torch.library.register_autograd("turboiqa::gradient_similarity", _gradient_similarity_backward,
                                    setup_context=_gradient_similarity_setup)


def gradient_similarity(x, y, smooth, scale, c, alpha=0.0, eps=0.0, padding="zeros", output="map", backend="auto"):
    """Gradient similarity of the planes of ``x`` and ``y`` (N×C×H×W): ``output='map'`` the map q (N×C×Ho×Wo),
    ``'moments'`` (Σq, Σq²) per plane, (N, C, 2) float64. q = ((2 − α)·m1·m2 + c) / (m1² + m2² − α·m1·m2 + c),
    m² = scale²·(gx² + gy²) + eps, gx/gy the responses of ``smooth`` ⊗ [−1, 0, 1] with a zero border
    (``padding='zeros'``) or 'valid'. Differentiable (native backward ``_gradient_similarity_backward``). The native
    operator serves CPU tensors and, in a CUDA build, CUDA tensors; the twin runs elsewhere."""
    smooth = [float(v) for v in smooth]
    args = (smooth, float(scale), float(c), float(alpha), float(eps), str(padding), str(output))
    if use_native(backend) and _has_op("gradient_similarity") and _native_device(x, "gradient_similarity"):
        if needs_grad(x, y):
            return torch.ops.turboiqa.gradient_similarity(x, y, *args)
        with below_autograd():
            return torch.ops.turboiqa.gradient_similarity(x, y, *args)
    from .reference.gradient_similarity import gradient_similarity as reference

    return reference(x, y, *args)


# VIFp of one scale (csrc/vifp_math.h): the SSIM row machinery with the VIFp statistic, CPU and CUDA, both directions.
if _has_op("vifp_stats"):

    def _vifp_stats_setup_context(ctx, inputs, output):
        x, y, *params = inputs  # window, sigma_nsq, eps, floor_rel, padding
        ctx.save_for_backward(x, y)
        ctx.params = tuple(params)

    def _vifp_stats_backward(ctx, grad_num, grad_den):
        x, y = ctx.saved_tensors
        if grad_num is None:
            grad_num = torch.zeros(x.shape[:2], dtype=torch.float64, device=x.device)
        if grad_den is None:
            grad_den = torch.zeros_like(grad_num)
        dx, dy = torch.ops.turboiqa._vifp_stats_backward(grad_num, grad_den, x, y, *ctx.params)
        needs_x, needs_y = ctx.needs_input_grad[:2]
        return (dx if needs_x else None), (dy if needs_y else None), *([None] * len(ctx.params))

    torch.library.register_autograd(
        "turboiqa::vifp_stats", _vifp_stats_backward, setup_context=_vifp_stats_setup_context
    )


def vifp_stats(x, y, window, sigma_nsq, eps, floor_rel=0.0, padding="valid", backend="auto"):
    """One scale of VIFp per plane, x distorted, y reference (N x C x H x W): float64 (N, C) sums
    Σ log10(1 + g²σy²/(σv² + sigma_nsq)) and Σ log10(1 + σy²/sigma_nsq) over the positions of the separable
    ``window``, variance floor ``eps + floor_rel·E[y²]`` (see the schema in csrc/ops.cpp). Differentiable."""
    window = [float(w) for w in window]
    if use_native(backend) and _has_op("vifp_stats"):
        return torch.ops.turboiqa.vifp_stats(x, y, window, float(sigma_nsq), float(eps), float(floor_rel), padding)
    if backend == "native":
        raise RuntimeError("backend='native' but the loaded extension has no vifp_stats kernel")
    return _reference_vifp.vifp_stats(x, y, window, float(sigma_nsq), float(eps), float(floor_rel), padding)


# VIFp's decimation between scales (CPU kernel; the torch slice passes elsewhere and as the reference).
if _has_op("decimate2"):

    def _decimate2_setup_context(ctx, inputs, output):
        x, window = inputs
        ctx.save_for_backward(x)
        ctx.window = window

    def _decimate2_backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.ops.turboiqa._decimate2_backward(grad.contiguous(), x, ctx.window), None

    torch.library.register_autograd("turboiqa::decimate2", _decimate2_backward, setup_context=_decimate2_setup_context)


def decimate2(x, window, backend="auto"):
    """'valid' separable correlation of N x C x H x W planes with ``window`` along both axes, every second sample
    kept (see the schema in csrc/ops.cpp). The native kernel serves CPU (and, in a CUDA build, CUDA) float32/float64
    tensors."""
    window = [float(w) for w in window]
    if (use_native(backend) and _has_op("decimate2") and _native_device(x, "decimate2")
            and x.dtype in (torch.float32, torch.float64)):
        return torch.ops.turboiqa.decimate2(x, window)
    if backend == "native":
        raise RuntimeError("backend='native': decimate2 has a kernel for float32/float64 tensors on CPU (and CUDA "
                           "in a CUDA build) only")
    return _filters.correlate_axis(_filters.correlate_axis(x, window, -2, 2), window, -1, 2)



# ColorVideoVDP's per-band CSF + masking + pooling, pyramid step and sRGB -> DKL: native kernels on CPU and (with a
# CUDA build) CUDA, chosen per device like gradient_similarity (_native_device); the PyTorch twins elsewhere and as
# the reference backend.
from .reference import cvvdp_band as _reference_cvvdp_band  # noqa: E402

if _has_op("cvvdp_band_pool"):

    def _cvvdp_band_pool_setup_context(ctx, inputs, output):
        test, ref, log_bkg, *params = inputs
        ctx.save_for_backward(test, ref, log_bkg)
        ctx.params = tuple(params)

    def _cvvdp_band_pool_backward(ctx, grad):
        test, ref, log_bkg = ctx.saved_tensors
        dt, dr, dl = torch.ops.turboiqa._cvvdp_band_pool_backward(grad, test, ref, log_bkg, *ctx.params)
        needs = ctx.needs_input_grad
        return (dt if needs[0] else None), (dr if needs[1] else None), (dl if needs[2] else None), \
            *([None] * len(ctx.params))

    torch.library.register_autograd(
        "turboiqa::cvvdp_band_pool", _cvvdp_band_pool_backward, setup_context=_cvvdp_band_pool_setup_context
    )


def _band_args(csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max):
    """The band operators' scalar and list arguments as the schema's floats."""
    return ([float(v) for v in csf], float(log_l_lo), float(log_l_hi), [float(v) for v in gain],
            [float(v) for v in mask_q], [float(v) for v in xcm], float(mask_c), float(mask_p), float(d_max))


def cvvdp_band_pool(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max,
                    backend="auto"):
    """One ColorVideoVDP band: N×C float64 sums over pixels of (D + 1e-5)^2, D the masked visible difference of the
    test and reference contrasts (N×C×H×W) under the castleCSF sensitivity at the reference's log10 background
    luminance ``log_bkg`` (N×1×H×W); see the schema in csrc/ops.cpp. Differentiable in test, ref and log_bkg. The
    native kernel serves CPU (and, in a CUDA build, CUDA) float32/float64 tensors; other devices run the PyTorch
    twin."""
    args = _band_args(csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max)
    # (the CUDA kernel passes the CSF table as a kernel parameter: at most 256 values, cvvdp's are C × 32)
    if (use_native(backend) and _has_op("cvvdp_band_pool") and _native_device(test, "cvvdp_band_pool")
            and test.dtype in (torch.float32, torch.float64) and (test.device.type != "cuda" or len(csf) <= 256)):
        return torch.ops.turboiqa.cvvdp_band_pool(test, ref, log_bkg, *args)
    if backend == "native":
        raise RuntimeError("backend='native': cvvdp_band_pool has a kernel for CPU float32/float64 tensors (and CUDA "
                           "ones in a CUDA build) only")
    return _reference_cvvdp_band.cvvdp_band_pool(test, ref, log_bkg, *args)


if _has_op("cvvdp_pyramid_step"):

    def _cvvdp_pyramid_step_setup_context(ctx, inputs, output):
        (planes,) = inputs
        ctx.save_for_backward(planes)

    def _cvvdp_pyramid_step_backward(ctx, grad_reduced, grad_expanded):
        (planes,) = ctx.saved_tensors
        n, c, h, w = planes.shape
        if grad_reduced is None:
            grad_reduced = planes.new_zeros(n, c, (h + 1) // 2, (w + 1) // 2)
        if grad_expanded is None:
            grad_expanded = torch.zeros_like(planes)
        return torch.ops.turboiqa._cvvdp_pyramid_step_backward(grad_reduced, grad_expanded, planes)

    torch.library.register_autograd(
        "turboiqa::cvvdp_pyramid_step", _cvvdp_pyramid_step_backward, setup_context=_cvvdp_pyramid_step_setup_context
    )


def cvvdp_pyramid_step(planes, backend="auto"):
    """One level of ColorVideoVDP's decimated Laplacian pyramid of N×C×H×W planes: (reduced, expanded back to H×W),
    see the schema in csrc/ops.cpp. Differentiable. The native kernel serves CPU (and, in a CUDA build, CUDA)
    float32/float64 tensors; other devices run the PyTorch twin."""
    if (use_native(backend) and _has_op("cvvdp_pyramid_step") and _native_device(planes, "cvvdp_pyramid_step")
            and planes.dtype in (torch.float32, torch.float64)):
        return torch.ops.turboiqa.cvvdp_pyramid_step(planes)
    if backend == "native":
        raise RuntimeError("backend='native': cvvdp_pyramid_step has a kernel for CPU float32/float64 tensors "
                           "(and CUDA ones in a CUDA build) only")
    return _reference_cvvdp_band.pyramid_step(planes)


if _has_op("cvvdp_srgb_to_dkl"):

    def _cvvdp_srgb_to_dkl_setup_context(ctx, inputs, output):
        x, *params = inputs
        ctx.save_for_backward(x)
        ctx.params = tuple(params)

    def _cvvdp_srgb_to_dkl_backward(ctx, grad):
        (x,) = ctx.saved_tensors
        dx = torch.ops.turboiqa._cvvdp_srgb_to_dkl_backward(grad.contiguous(), x, *ctx.params)
        return dx, *([None] * len(ctx.params))

    torch.library.register_autograd(
        "turboiqa::cvvdp_srgb_to_dkl", _cvvdp_srgb_to_dkl_backward, setup_context=_cvvdp_srgb_to_dkl_setup_context
    )


def cvvdp_srgb_to_dkl(x, matrix, bias, data_range, backend="auto"):
    """ColorVideoVDP's display model for sRGB displays: N×3×H×W display-encoded planes → absolute DKL,
    Σ_k matrix[c, k] eotf(clamp(x_k / data_range, 0, 1)) + bias[c] (see the schema in csrc/ops.cpp). Differentiable.
    The native kernel serves CPU (and, in a CUDA build, CUDA) float32/float64 tensors; other devices run the
    PyTorch twin."""
    matrix, bias = [float(v) for v in matrix], [float(v) for v in bias]
    if (use_native(backend) and _has_op("cvvdp_srgb_to_dkl") and _native_device(x, "cvvdp_srgb_to_dkl")
            and x.dtype in (torch.float32, torch.float64)):
        return torch.ops.turboiqa.cvvdp_srgb_to_dkl(x, matrix, bias, float(data_range))
    if backend == "native":
        raise RuntimeError("backend='native': cvvdp_srgb_to_dkl has a kernel for CPU float32/float64 tensors "
                           "(and CUDA ones in a CUDA build) only")
    return _reference_cvvdp_band.srgb_to_dkl(x, matrix, bias, float(data_range))


def cvvdp_band_difference(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max,
                          backend="auto"):
    """The per-pixel visible difference D (N×C×H×W) of one ColorVideoVDP band, the quantity
    :func:`cvvdp_band_pool` pools (cvvdp's heat map is built from it); same arguments. The native kernel serves CPU
    float32/float64 tensors when no gradient is needed (it has no backward); otherwise the PyTorch twin runs."""
    args = _band_args(csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max)
    if (use_native(backend) and _has_op("cvvdp_band_difference") and test.device.type == "cpu"
            and test.dtype in (torch.float32, torch.float64) and not needs_grad(test, ref, log_bkg)):
        return torch.ops.turboiqa.cvvdp_band_difference(test, ref, log_bkg, *args)
    if backend == "native":
        raise RuntimeError("backend='native': cvvdp_band_difference has a kernel for CPU float32/float64 tensors "
                           "without autograd only")
    return _reference_cvvdp_band.band_difference(test, ref, log_bkg, *args)


if _has_op("cvvdp_weber_contrast"):

    def _cvvdp_weber_contrast_setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def _cvvdp_weber_contrast_backward(ctx, grad_test, grad_ref, grad_log_bkg):
        planes, expanded = ctx.saved_tensors
        n, c, h, w = planes.shape[0] // 2, *planes.shape[1:]
        if grad_test is None:
            grad_test = planes.new_zeros(n, c, h, w)
        if grad_ref is None:
            grad_ref = planes.new_zeros(n, c, h, w)
        if grad_log_bkg is None:
            grad_log_bkg = planes.new_zeros(n, 1, h, w)
        return torch.ops.turboiqa._cvvdp_weber_contrast_backward(grad_test, grad_ref, grad_log_bkg, planes, expanded)

    torch.library.register_autograd(
        "turboiqa::cvvdp_weber_contrast", _cvvdp_weber_contrast_backward,
        setup_context=_cvvdp_weber_contrast_setup_context
    )


def cvvdp_weber_contrast(planes, expanded, backend="auto"):
    """ColorVideoVDP's Weber contrast of a pyramid band: 2N×C×H×W planes (test images, then references) and their
    expanded coarser level → (test contrast N×C×H×W, reference contrast, the references' log10 background luminance
    N×1×H×W); see the schema in csrc/ops.cpp. Differentiable. The native kernel serves CPU float32/float64 tensors;
    other devices run the PyTorch twin."""
    if (use_native(backend) and _has_op("cvvdp_weber_contrast") and planes.device.type == "cpu"
            and planes.dtype in (torch.float32, torch.float64)):
        return torch.ops.turboiqa.cvvdp_weber_contrast(planes, expanded)
    if backend == "native":
        raise RuntimeError("backend='native': cvvdp_weber_contrast has a kernel for CPU float32/float64 tensors only")
    return _reference_cvvdp_band.weber_contrast(planes, expanded)
# grey_planes (csrc/grey_planes.h): the metrics' front end in one read of the image. Linear (the rounding passes
# the gradient straight through), so the backward is the box mean's adjoint and the coefficients' transpose.
if _has_op("grey_planes"):

    def _grey_planes_setup(ctx, inputs, output):
        x, *params = inputs
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.params = params
        ctx.mark_non_differentiable(output[1])

    def _grey_planes_backward(ctx, grad, _grad_extrema):
        coeffs, scale, _rounding, factor, pad_top, pad_left, out_h, out_w = ctx.params
        return (_grey_planes_adjoint(grad, ctx.shape, ctx.dtype, coeffs, scale, factor, pad_top, pad_left, out_h,
                                     out_w), *([None] * len(ctx.params)))

    torch.library.register_autograd("turboiqa::grey_planes", _grey_planes_backward, setup_context=_grey_planes_setup)


def _grey_planes_adjoint(grad, shape, dtype, coeffs, scale, factor, pad_top, pad_left, out_h, out_w):
    """The gradient of grey_planes' planes with respect to x (N×C×H×W) for the planes' gradient ``grad``."""
    n, c, h, w = shape
    g = grad
    if factor > 1 or (out_h, out_w) != (h, w):
        # the box mean's adjoint: each output's gradient / f² spread over its box, the parts outside the image cut
        bottom = max(0, out_h * factor - pad_top - h)
        right = max(0, out_w * factor - pad_left - w)
        spread = (g / (factor * factor))[..., :, None, :, None].expand(*g.shape[:2], out_h, factor, out_w, factor)
        spread = spread.reshape(*g.shape[:2], out_h * factor, out_w * factor)
        full = torch.zeros((*g.shape[:2], pad_top + h + bottom, pad_left + w + right), dtype=g.dtype,
                           device=g.device)
        full[..., : out_h * factor, : out_w * factor] = spread
        g = full[..., pad_top:pad_top + h, pad_left:pad_left + w]
    if coeffs:
        m = torch.tensor(coeffs, dtype=g.dtype, device=g.device).view(-1, c)  # R×C
        g = torch.einsum("nrhw,rc->nchw", g, m)
    if scale != 1:
        g = g * scale
    return g.to(dtype) if dtype.is_floating_point else None


def grey_planes(x, coeffs=(), scale=1.0, rounding="none", factor=1, pad_top=0, pad_left=0, out_height=None,
                out_width=None, backend="auto"):
    """Grey/luma planes of ``x`` (N×C×H×W) in one read, and the input's (N, 2) extrema: R = len(coeffs) / C
    weighted channel sums (``coeffs`` empty: the channels as given) × ``scale``, rounded ('none' | 'half_away' |
    'half_even'; straight-through gradient), then the ``factor``×``factor`` box mean with a zeros border (see the
    schema in csrc/ops.cpp). Extrema: (min, max) per image, NaN where it holds NaN/Inf, (0, 255) for uint8."""
    coeffs = [float(v) for v in coeffs]
    h, w = x.shape[-2:]
    out_height = h if out_height is None else int(out_height)
    out_width = w if out_width is None else int(out_width)
    args = (coeffs, float(scale), str(rounding), int(factor), int(pad_top), int(pad_left), out_height, out_width)
    if use_native(backend) and _has_op("grey_planes") and _native_device(x, "grey_planes"):
        if needs_grad(x):
            return torch.ops.turboiqa.grey_planes(x, *args)
        with below_autograd():
            return torch.ops.turboiqa.grey_planes(x, *args)
    if backend == "native":
        raise RuntimeError("backend='native' but the loaded extension has no grey_planes kernel")
    from .reference.grey_planes import grey_planes as reference

    return reference(x, *args)


# grey_gradient_moments (csrc/grey_gradient_moments.h): grey_planes of x and y and the moments of their gradient
# similarity in one fused CPU operator (no autograd: with a gradient, or on other devices, the two operators above).
_GREY_GRADIENT_MOMENTS = torch.ops.turboiqa.grey_gradient_moments if _has_op("grey_gradient_moments") else None


def grey_gradient_moments(x, y, coeffs, scale, rounding, factor, pad_top, pad_left, out_height, out_width, smooth,
                          grad_scale, c, alpha=0.0, eps=0.0, padding="zeros", backend="auto"):
    """``grey_planes(x, coeffs, scale, rounding, factor, pad_top, pad_left, out_height, out_width)`` and the same of
    ``y``, then ``gradient_similarity(px, py, smooth, grad_scale, c, alpha, eps, padding, 'moments')``: returns
    (moments (N, R, 2) float64, extrema of x (N, 2), extrema of y (N, 2)). The native operator (CPU, no gradient)
    gives the two operators' bits; a gradient flows through the composed operators."""
    args = ([float(v) for v in coeffs], float(scale), str(rounding), int(factor), int(pad_top), int(pad_left),
            int(out_height), int(out_width), [float(v) for v in smooth], float(grad_scale), float(c), float(alpha),
            float(eps), str(padding))
    # (the operator has no autograd kernel: without a gradient to record, calling it directly costs no more than
    # below_autograd, and this is the metric's per-call path)
    if (_GREY_GRADIENT_MOMENTS is not None and (x.is_cpu or x.is_meta) and backend in ("auto", "native")
            and not (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad))):
        return _GREY_GRADIENT_MOMENTS(x, y, *args)
    if backend == "reference" or not use_native(backend):
        from .reference.grey_gradient_moments import grey_gradient_moments as reference

        return reference(x, y, *args)
    px, ex = grey_planes(x, *args[:8], backend=backend)
    py, ey = grey_planes(y, *args[:8], backend=backend)
    return gradient_similarity(px, py, *args[8:], "moments", backend=backend), ex, ey
