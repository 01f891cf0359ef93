"""Drop-in faces of other IQA libraries on turboiqa's kernels.

``import turboiqa.compat.piq as piq`` gives piq's names, signatures, defaults, return types and exception types;
:func:`patch` swaps the implementations inside an already imported peer for code that imported it first.
"""
from __future__ import annotations

import importlib
import sys

import torch

SUPPORTED = ("piq", "pyiqa")


def fused_bounds(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """One native pass over a same-shape 4-D float pair: per-image Σ(x − y)² (float64; NaN where a NaN hides from
    min/max), and the smallest and largest value of both images. The peers' range contracts are checked from it."""
    from .. import _ops

    total, extrema = _ops.squared_error_sum(x.detach(), y.detach())
    return total, extrema[:, 0::2].min().item(), extrema[:, 1::2].max().item()


def delegate_to(peer, ours: str, theirs: str):
    """A module ``__getattr__`` handing every name the compat module lacks to the peer (imported on first use)."""
    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(peer(), name, None)
        if value is None:
            raise AttributeError(f"neither {ours} nor {theirs} has {name!r}")
        return value

    return __getattr__


class Patch:
    """What :func:`patch` replaced; :meth:`undo` puts the originals back."""

    def __init__(self, library: str, replaced: list):
        self.library = library
        self.replaced = replaced  # (module, attribute, original)

    def undo(self) -> None:
        for module, name, original in reversed(self.replaced):
            setattr(module, name, original)
        self.replaced = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.undo()


def patch(library: str) -> Patch:
    """Make an imported ``library`` (``'piq'``, ``'pyiqa'``) run turboiqa's implementations of the names it has.

    Every module already loaded that holds one of the peer's original objects (``from piq import ssim`` done
    earlier binds the function itself) gets ours instead, so code that imported the peer before us is switched too.
    Returns a :class:`Patch` whose ``undo()`` (or ``with`` block) restores the originals."""
    if library not in SUPPORTED:
        raise ValueError(f"library must be one of {SUPPORTED}, got {library!r}")
    peer = importlib.import_module(library)
    ours = importlib.import_module(f"{__name__}.{library}")
    if "remember_originals" in vars(ours):  # ours delegates to the peer's own function of the same name
        ours.remember_originals(peer)
    originals = {id(getattr(peer, name)): getattr(ours, name) for name in ours.ACCELERATED if hasattr(peer, name)}
    replaced = []
    for module in list(sys.modules.values()):
        if module is None or module is ours or getattr(module, "__name__", "").startswith(__name__):
            continue
        for name, value in list(vars(module).items()):
            replacement = originals.get(id(value))
            if replacement is not None:
                replaced.append((module, name, value))
                setattr(module, name, replacement)
    return Patch(library, replaced)
