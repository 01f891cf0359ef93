"""The only module that touches ``torch.ops``: loads the extension, registers fake kernels and autograd, and picks
the native operator or its pure-PyTorch twin.

``backend='auto'`` (default) uses the native operator when the extension is loaded, ``'native'`` insists on it and
``'reference'`` always runs the PyTorch twin in ``turboiqa.reference``.
"""
from __future__ import annotations

import warnings

import torch

from .reference import ssim_stats as _reference_ssim

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


if HAVE_NATIVE:

    @torch.library.register_fake("turboiqa::ssim_stats")
    def _ssim_stats_fake(x, y, window, c1, c2, padding, cov_norm):
        out = x.new_empty(x.shape[:2], dtype=_reference_ssim.compute_dtype(x.dtype))
        return out, torch.empty_like(out)

    @torch.library.register_fake("turboiqa::_ssim_stats_backward")
    def _ssim_stats_backward_fake(grad_ssim, grad_cs, x, y, window, c1, c2, padding, cov_norm):
        return torch.empty_like(x), torch.empty_like(y)

    def _ssim_stats_setup_context(ctx, inputs, output):
        x, y, window, c1, c2, padding, cov_norm = inputs
        ctx.save_for_backward(x, y)
        ctx.params = (window, c1, c2, padding, cov_norm)

    def _ssim_stats_backward(ctx, grad_ssim, grad_cs):
        x, y = ctx.saved_tensors
        if grad_ssim is None:
            grad_ssim = torch.zeros(x.shape[:2], dtype=_reference_ssim.compute_dtype(x.dtype), device=x.device)
        if grad_cs is None:
            grad_cs = torch.zeros_like(grad_ssim)
        dx, dy = torch.ops.turboiqa._ssim_stats_backward(grad_ssim, grad_cs, x, y, *ctx.params)
        needs_x, needs_y = ctx.needs_input_grad[:2]
        return (dx if needs_x else None), (dy if needs_y else None), None, None, None, None, None

    torch.library.register_autograd(
        "turboiqa::ssim_stats", _ssim_stats_backward, setup_context=_ssim_stats_setup_context
    )


def ssim_stats(x, y, window, c1, c2, padding="valid", cov_norm=1.0, backend="auto"):
    """Per-plane means of the SSIM and contrast-structure maps, each (N, C).

    ``window`` is the 1-D separable window (odd length, sums to 1); ``c1``/``c2`` are in the units of ``x``;
    ``padding`` is 'valid' or a 'same' border: 'zeros', 'symmetric' (MATLAB), 'reflect', 'replicate'.
    """
    window = [float(v) for v in window]
    if use_native(backend):
        return torch.ops.turboiqa.ssim_stats(x, y, window, float(c1), float(c2), padding, float(cov_norm))
    return _reference_ssim.ssim_stats(x, y, window, c1, c2, padding, cov_norm)
