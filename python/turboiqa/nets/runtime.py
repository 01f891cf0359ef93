"""How the deep metrics run their backbones: input scaling, memory layout, inference mode and optional autocast.

* Layout: on the CPU the images and the backbone weights are channels_last (NHWC). oneDNN then runs its blocked
  convolutions without reordering every activation: 10–15 % faster than NCHW for the whole LPIPS-alex call at
  512×384 and 1080p on 2 threads (bench/bench_deep.py, quiet machine). On CUDA the layout is left to cuDNN.
* Inference mode: when no input requires a gradient (or grad mode is off), the backbone runs under
  ``torch.inference_mode()`` — no autograd bookkeeping, activations freed as soon as the next layer has read them.
  With a gradient needed, the same code runs under autograd (the metrics are differentiable w.r.t. both images).
* Autocast (CUDA only, opt-in, ``autocast=torch.float16`` or ``torch.bfloat16``): the convolutions run in half
  precision, the feature distances still accumulate in float32. Accuracy bound, measured on 192×256 crops of the
  five TID2013 pairs with the same autocast policy on the CPU (no GPU was available for this measurement; rerun
  on CUDA before relying on it): max |Δ| vs float32 = 4e-5 (LPIPS) / 6e-5 (DISTS) for float16 and 5.4e-4 / 6.2e-4
  for bfloat16 — i.e. fp16 keeps the 4th decimal, bf16 does not.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .._ops import needs_grad  # noqa: F401  (one definition; lpips imports it from here)
from ..dtypes import compute_dtype

AUTOCAST_DTYPES = (None, torch.float16, torch.bfloat16)
CPU_CHANNELS_LAST = True  # the layout choice above; bench/bench_deep.py switches it off for its NCHW rows


def to_unit_range(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """[0, data_range] (uint8: 0..255) → float in [0, 1]: float32, or float64 for float64 input."""
    dtype = compute_dtype(x.dtype)
    x = x.to(dtype)
    return x if data_range == 1 else x / data_range


def scoring_context(*tensors: torch.Tensor):
    """inference_mode unless a gradient is wanted."""
    return contextlib.nullcontext() if needs_grad(*tensors) else torch.inference_mode()


def check_autocast(autocast, device: torch.device):
    if autocast not in AUTOCAST_DTYPES:
        raise ValueError(f"autocast must be None, torch.float16 or torch.bfloat16, got {autocast!r}")
    if autocast is not None and device.type != "cuda":
        raise ValueError(f"autocast={autocast} is for CUDA inputs; got inputs on {device}")


def autocast_context(autocast, device: torch.device):
    check_autocast(autocast, device)
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=autocast)


def layout(x: torch.Tensor) -> torch.Tensor:
    """channels_last on the CPU (see the module docstring), as is elsewhere."""
    if x.device.type == "cpu" and CPU_CHANNELS_LAST:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def prepare_module(module: torch.nn.Module, device: torch.device) -> torch.dtype:
    """Check the module sits on the input's device, put its weights in the CPU layout (in place, once); returns the
    dtype the inputs must be cast to (the module's own: ``.to(dtype)`` the module to score in float64)."""
    p = next(module.parameters(), None)
    if p is None:
        p = next(module.buffers())
    if p.device != device:
        raise ValueError(f"the inputs are on {device} but {type(module).__name__} is on {p.device}; move it with .to()")
    if device.type == "cpu" and p.dim() == 4:
        fmt = torch.channels_last if CPU_CHANNELS_LAST else torch.contiguous_format
        if not p.is_contiguous(memory_format=fmt):
            module.to(memory_format=fmt)
    return p.dtype


_FUSED_CONV_RELU = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)


def conv_relu(conv: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """relu(conv(x)). Without autograd on the CPU in float32, one oneDNN convolution with the ReLU as its post-op
    (the kernel torch.compile's CPU backend emits): the same values, without a second pass over every activation
    (ReLU passes were 13 % of PieAPP's time; fused: 1.2× on its trunk, bench/README.md "PieAPP")."""
    if (_FUSED_CONV_RELU is not None and x.device.type == "cpu" and x.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
            and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)):
        return _FUSED_CONV_RELU(x, conv.weight, conv.bias, list(conv.padding), list(conv.stride),
                                list(conv.dilation), conv.groups, "relu", [], "")
    return F.relu(conv(x))
