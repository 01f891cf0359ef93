"""The one ``nn.Module`` wrapper every metric shares: it stores the metric's keyword arguments and, for the
similarity metrics, optionally returns ``1 - score`` as a training loss. Metrics hold no buffers (windows and
filter banks are cached by shape/device/dtype), so ``.to(device)`` has nothing to move.

Every module is built like its functional is called after the image pair: ``data_range`` and ``reduction`` may
be positional, everything else is keyword-only, and ``forward(x, y)`` takes the distorted image first and the
reference second."""
from __future__ import annotations

import inspect

import torch
from torch import nn

from ..validate import check_data_range, check_reduction


def check_leading_arguments(module: str, data_range, reduction: str) -> None:
    """The two positional constructor arguments, checked at construction. A string in ``data_range`` is an option
    passed by position in the old style (``LPIPS('vgg')``): say that options are keywords now."""
    check_data_range(data_range, f" ({module} takes data_range and reduction by position, every other option by "
                                 f"keyword, e.g. {module}(data_range=255, reduction='none', ...))")
    check_reduction(reduction)


def check_keywords(module: str, metric, kwargs: dict) -> None:
    """Unknown options fail at construction (not at the first forward), renamed ones with their new name."""
    parameters = inspect.signature(metric).parameters
    removed = getattr(metric, "removed_arguments", {})
    for name in kwargs:
        if name in removed:
            raise TypeError(f"{module} has no argument {name!r}: {removed[name]}")
        if name not in parameters or name in ("x", "y"):
            raise TypeError(f"{module} got an unexpected argument {name!r}")


class MetricModule(nn.Module):
    metric = None  # the functional form, set by each subclass
    bounded_similarity = True  # 1 - score is a sensible loss (not for PSNR)

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, loss: bool = False, **kwargs):
        super().__init__()
        name = type(self).__name__
        check_leading_arguments(name, data_range, reduction)
        check_keywords(name, type(self).metric, kwargs)
        if loss and not self.bounded_similarity:
            raise ValueError(f"{name} has no loss form (its score is unbounded)")
        self.kwargs = dict(data_range=data_range, reduction=reduction, **kwargs)
        self.loss = loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Score of the distorted ``x`` against the reference ``y`` (``1 - score`` with ``loss=True``)."""
        value = type(self).metric(x, y, **self.kwargs)
        return 1 - value if self.loss else value

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()) + (", loss=True" if self.loss else "")
