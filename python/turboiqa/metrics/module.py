"""The one ``nn.Module`` wrapper every metric shares: it stores the metric's keyword arguments and, for the
similarity metrics, optionally returns ``1 - score`` as a training loss. Metrics hold no buffers (windows and
filter banks are cached by shape/device/dtype), so ``.to(device)`` has nothing to move."""
from __future__ import annotations

import torch
from torch import nn


class MetricModule(nn.Module):
    metric = None  # the functional form, set by each subclass
    bounded_similarity = True  # 1 - score is a sensible loss (not for PSNR)

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", loss: bool = False, **kwargs):
        super().__init__()
        if loss and not self.bounded_similarity:
            raise ValueError(f"{type(self).__name__} has no loss form (its score is unbounded)")
        self.kwargs = dict(data_range=data_range, reduction=reduction, **kwargs)
        self.loss = loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = type(self).metric(x, y, **self.kwargs)
        return 1 - value if self.loss else value

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()) + (", loss=True" if self.loss else "")
