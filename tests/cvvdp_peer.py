"""Import the ``cvvdp`` package (pycvvdp) here, where torchvision does not load.

pycvvdp imports ``torchvision.transforms.GaussianBlur`` at import time, and its default parameters (pu_dilate = 3)
do call it: the phase-uncertainty blur of the masking model (kernel 13, sigma 3). The stand-in below follows
torchvision's documented GaussianBlur for a fixed sigma: a normalised 1-D Gaussian sampled at
linspace(-(k-1)/2, (k-1)/2, k), the outer product as a 2-D kernel, 'reflect' padding of k//2, a depthwise conv.
Anything else of torchvision stays unavailable (tests/peer_stubs.py's stub).
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types

import torch
import torch.nn.functional as F

import peer_stubs


class GaussianBlur(torch.nn.Module):
    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        super().__init__()
        if isinstance(sigma, (tuple, list)):
            if sigma[0] != sigma[1]:
                raise RuntimeError("cvvdp_peer GaussianBlur stand-in: only a fixed sigma is provided")
            sigma = sigma[0]
        self.kernel_size, self.sigma = int(kernel_size), float(sigma)

    def forward(self, img):
        k = self.kernel_size
        half = (k - 1) * 0.5
        t = torch.linspace(-half, half, k, dtype=img.dtype, device=img.device)
        g = torch.exp(-0.5 * (t / self.sigma) ** 2)
        g = g / g.sum()
        kernel = (g[:, None] * g[None, :]).expand(img.shape[-3], 1, k, k)
        pad = [k // 2] * 4
        return F.conv2d(F.pad(img, pad, mode="reflect"), kernel, groups=img.shape[-3])


class _NoMLP(torch.nn.Module):
    def __init__(self, *a, **k):
        raise RuntimeError("cvvdp_peer: torchvision.ops.MLP is not provided (cvvdp-ml is not tested)")


def _no_download(*a, **k):
    raise RuntimeError("cvvdp_peer: offline, no downloads")


def import_pycvvdp():
    """The pycvvdp package, or None when it is not installed."""
    if importlib.util.find_spec("pycvvdp") is None:
        return None
    peer_stubs.install_torchvision_stub()
    transforms = sys.modules["torchvision.transforms"]
    if not hasattr(transforms, "GaussianBlur"):
        transforms.GaussianBlur = GaussianBlur
    if "torchvision.ops" not in sys.modules:  # cvvdp_ml_metric imports torchvision.ops.MLP (unused by cvvdp)
        ops = types.ModuleType("torchvision.ops")
        ops.__spec__ = importlib.machinery.ModuleSpec("torchvision.ops", None)
        ops.MLP = _NoMLP
        sys.modules["torchvision.ops"] = ops
        sys.modules["torchvision"].ops = ops
    # cvvdp_ml_metric's model download, never reached by cvvdp. Another test's stand-in (peer_stubs, for pyiqa) may
    # already be there without this function: add it to whichever module is found.
    try:
        hub = importlib.import_module("huggingface_hub")
    except ImportError:  # the same kind of stand-in as pyiqa's, so that either import order works
        hub = sys.modules["huggingface_hub"] = peer_stubs._stand_in("huggingface_hub")
    if getattr(hub, "_turboiqa_stand_in", False) or not hasattr(hub, "hf_hub_download"):
        hub.hf_hub_download = _no_download
    import pycvvdp

    return pycvvdp
