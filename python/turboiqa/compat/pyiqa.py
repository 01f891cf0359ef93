"""pyiqa 0.1.16's entry points on turboiqa's metrics: ``import turboiqa.compat.pyiqa as pyiqa``.

:func:`create_metric` builds turboiqa's implementation for the names turboiqa computes
(:func:`turboiqa.list_models`: psnr, psnry, ssim, ssimc, ms_ssim, fsim, lpips, lpips-vgg, dists) with pyiqa's
defaults, attributes, input forms and return shapes; any other name, or an option turboiqa does not implement
(ms_ssim's ``is_prod=False``, …), is passed to an installed pyiqa's own ``create_metric``. :func:`list_models` is
pyiqa's list when pyiqa is installed, else turboiqa's names. Every other attribute (``get_dataset_info``, …) is
pyiqa's own object.
"""
from __future__ import annotations

from .. import catalogue
from . import delegate_to

ACCELERATED = ("create_metric", "list_models")
_ORIGINALS: dict = {}  # pyiqa's own create_metric / list_models, kept before patch() rebinds them


def _pyiqa():
    try:
        import pyiqa
    except ImportError as exc:
        raise ImportError("this call needs pyiqa itself (pip install pyiqa): turboiqa.compat.pyiqa computes "
                          f"{', '.join(catalogue.list_models())} and takes every other name from pyiqa") from exc
    return pyiqa


def remember_originals(peer) -> None:
    """Called by :func:`turboiqa.compat.patch` before it rebinds pyiqa's functions: the delegation below must
    still reach pyiqa's own code afterwards."""
    for name in ACCELERATED:
        value = getattr(peer, name, None)
        if value is not None and value is not globals()[name]:
            _ORIGINALS.setdefault(name, value)


def _original(name: str):
    if name not in _ORIGINALS:
        remember_originals(_pyiqa())
    if name not in _ORIGINALS:  # a partly imported pyiqa (its archs loaded without its package __init__)
        raise ImportError(f"the imported pyiqa has no {name}")
    return _ORIGINALS[name]


__getattr__ = delegate_to(_pyiqa, "turboiqa.compat.pyiqa", "pyiqa")


def create_metric(metric_name, as_loss=False, device=None, **kwargs):
    """pyiqa.create_metric: turboiqa's metric for its names and options, pyiqa's own for the rest."""
    if metric_name in catalogue.METRICS:
        try:
            return catalogue.create_metric(metric_name, as_loss=as_loss, device=device, **kwargs)
        except catalogue.UnsupportedOption:
            try:
                original = _original("create_metric")
            except ImportError:
                raise  # turboiqa's message names the option
            return original(metric_name, as_loss=as_loss, device=device, **kwargs)
    return _original("create_metric")(metric_name, as_loss=as_loss, device=device, **kwargs)


def list_models(metric_mode=None, filter="", exclude_filters=""):
    """pyiqa.list_models: every name :func:`create_metric` takes (pyiqa's list, or turboiqa's without pyiqa)."""
    try:
        original = _original("list_models")
    except ImportError:
        return catalogue.list_models(metric_mode, filter, exclude_filters)
    return original(metric_mode, filter, exclude_filters)
