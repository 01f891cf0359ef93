"""Input checks shared by every metric: one place that names the argument and says what is wrong."""
from __future__ import annotations

import functools
import math
import numbers
import warnings

import torch
from torch._subclasses import FakeTensor

from . import _ops


# Appended to "too small" errors: a H×W×C array read as C×H×W shows up as an image only C pixels wide.
LAYOUT_HINT = " (inputs are N×C×H×W, C×H×W or H×W: permute an H×W×C image with .permute(2, 0, 1) first)"


def as_batch(t, name: str) -> torch.Tensor:
    """H×W, C×H×W or N×C×H×W tensor → N×C×H×W (a view, no copy)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 2:
        return t[None, None]
    if t.dim() == 3:
        return t[None]
    if t.dim() == 4:
        return t
    raise ValueError(f"{name} must be H×W, C×H×W or N×C×H×W, got shape {tuple(t.shape)}")


def has_values(t: torch.Tensor) -> bool:
    """Whether ``t``'s values can be read: not while torch.compile traces, not on a 'meta' or fake tensor (shapes
    only). Metrics then skip their value checks (NaN/Inf, range) and still check everything else."""
    return not (torch.compiler.is_compiling() or t.is_meta or isinstance(t, FakeTensor))


def check_pair(x, y, data_range: float, names=("x", "y"), check_values: bool = True, signed_hint: str | None = None):
    """Validate a (distorted ``x``, reference ``y``) pair; returns both as N×C×H×W.

    One pass over both float inputs covers NaN/Inf and the [0, data_range] range at once: the native
    ``squared_error_sum`` (its extrema, and its sum for NaN) where the extension is loaded, else ``aminmax`` per
    input. The native pass also keeps torch's OpenMP pool out of the metric, whose idle spinning would compete with
    the kernels' own threads. Metrics whose kernel returns the extrema itself pass ``check_values=False`` and call
    :func:`check_extrema` afterwards instead.
    ``signed_hint``: float input is expected in [-1, 1] instead (LPIPS' normalize=False); the hint ends the error.
    """
    x = as_batch(x, names[0])
    y = as_batch(y, names[1])
    if x.shape != y.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dtype != y.dtype:
        raise TypeError(f"{names[0]} and {names[1]} must have the same dtype, got {x.dtype} and {y.dtype}")
    # attribute reads first: no device objects are built for the common CPU pair
    if x.is_cpu != y.is_cpu or not x.is_cpu and x.device != y.device:
        raise ValueError(f"{names[0]} and {names[1]} must be on the same device, got {x.device} and {y.device}")
    if not (x.dtype == torch.uint8 or x.dtype.is_floating_point):
        raise TypeError(f"{names[0]} must be uint8 or floating point, got {x.dtype}")
    check_data_range(data_range)
    if x.numel() == 0:
        raise ValueError(f"{names[0]} is empty (shape {tuple(x.shape)})")
    if x.dtype == torch.uint8:
        if data_range != 255:
            raise ValueError(f"uint8 input holds 0..255: data_range must be 255, got {data_range}")
        return x, y
    if not check_values or not has_values(x):  # value checks need the data (and a host sync)
        return x, y
    if _ops.HAVE_NATIVE and x.dtype in (torch.float32, torch.float64) and x.device.type in ("cpu", "cuda"):
        sse, extrema = _ops.squared_error_sum(x.detach(), y.detach())
        check_extrema(x, y, extrema, sse, data_range, names, signed_hint)
        return x, y
    highs = []
    for t, name in ((x, names[0]), (y, names[1])):
        low, high = torch.aminmax(t.detach())
        check_range(float(low), float(high), data_range, name, signed_hint)
        highs.append(float(high))
    if signed_hint is None:
        warn_if_range_unused(max(highs), data_range, names)
    return x, y


def warn_if_range_unused(high: float, data_range: float, names=("x", "y")) -> None:
    """[0, 1] floats scored with data_range=255 give SSIM ≈ 1 and PSNR ≈ 77 dB without any error: say so when
    neither image reaches 1/32 of the declared range (a very dark pair may do that legitimately)."""
    if high < data_range / 32:
        warnings.warn(
            f"{names[0]} and {names[1]} stay below {high:.4g}, under 1/32 of data_range={data_range}; "
            f"if they are [0, 1] images pass data_range=1.0", UserWarning, stacklevel=4)


def check_range(low: float, high: float, data_range: float, name: str, signed_hint: str | None = None) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):  # aminmax propagates NaN and shows ±Inf
        raise ValueError(f"{name} contains NaN or Inf")
    if signed_hint is not None:
        if low < -1 - 1e-6 or high > 1 + 1e-6:
            raise ValueError(f"{name} has values in [{low:.4g}, {high:.4g}]; {signed_hint}")
        return
    tolerance = 1e-6 * data_range
    if low < -tolerance or high > data_range + tolerance:
        raise ValueError(
            f"{name} has values in [{low:.4g}, {high:.4g}], outside [0, data_range={data_range}]; "
            "pass the data_range your images use (1.0 for [0, 1] floats, 255 for 8-bit)"
        )


def check_extrema(x, y, extrema: torch.Tensor, total: torch.Tensor | None, data_range: float, names=("x", "y"),
                  signed_hint: str | None = None) -> None:
    """The checks of :func:`check_pair` from a kernel's fused (N, 4) extrema and its (N,) sum.

    Min/max comparisons skip NaN, so a NaN anywhere is caught by the non-finite sum instead (``total=None``: the
    kernel has already written NaN into the extrema of such an image, as ``psnr_db`` does).
    """
    if x.dtype == torch.uint8 or not has_values(extrema):
        return
    both = extrema.flatten() if total is None else torch.cat([extrema.flatten(), total.flatten()])
    values = both.tolist()  # one host sync
    n = extrema.shape[0]
    if not all(math.isfinite(v) for v in values):  # a NaN sum or NaN/±Inf extrema
        bad = names[0] if not torch.isfinite(x).all() else names[1]
        raise ValueError(f"{bad} contains NaN or Inf")
    x_low, x_high = min(values[0:4 * n:4]), max(values[1:4 * n:4])
    y_low, y_high = min(values[2:4 * n:4]), max(values[3:4 * n:4])
    check_range(x_low, x_high, data_range, names[0], signed_hint)
    check_range(y_low, y_high, data_range, names[1], signed_hint)
    if signed_hint is None:
        warn_if_range_unused(max(x_high, y_high), data_range, names)


def check_data_range(data_range, hint: str = "") -> None:
    """A positive finite number (a string here is usually an option passed by position; ``hint`` says so)."""
    if isinstance(data_range, bool) or not isinstance(data_range, (numbers.Real, torch.Tensor)):
        raise TypeError(f"data_range must be a number, got {data_range!r}{hint}")
    if not (data_range > 0 and math.isfinite(data_range)):  # inf used to give PSNR inf, SSIM NaN, LPIPS 0
        raise ValueError(f"data_range must be a positive finite number, got {data_range}")


def removed_arguments(**replacements: str):
    """Decorator: a call with a renamed or removed keyword raises a TypeError saying what replaced it, instead of
    Python's bare "unexpected keyword argument". The table stays on the function for the module forms."""
    def decorate(fn):
        @functools.wraps(fn)
        def checked(*args, **kwargs):
            for name in kwargs:
                if name in replacements:
                    raise TypeError(f"{fn.__name__}() has no argument {name!r}: {replacements[name]}")
            return fn(*args, **kwargs)

        checked.removed_arguments = replacements
        return checked

    return decorate


def check_reduction(reduction: str) -> None:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values
