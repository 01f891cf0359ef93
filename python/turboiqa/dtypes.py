"""The compute-dtype rule shared by every kernel and its twin: float64 stays float64, everything else (uint8,
float16, bfloat16, float32) computes in float32. Mirrored by ``compute_type`` in csrc/dtypes.h."""
from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32
