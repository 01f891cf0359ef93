"""Backbones for the deep metrics and the resolver of their weight files."""
from __future__ import annotations

import threading

import torch

from .backbones import (
    BACKBONES,
    VGG16,
    AlexNet,
    Backbone,
    L2Pooling,
    SqueezeNet11,
    build_backbone,
)
from .weights import WeightsHashError, WeightsNotFoundError, resolve

_cache: dict = {}
_lock = threading.Lock()


def cached(key: tuple, build):
    """Process-wide cache of built models for the functional metric forms, keyed by everything that shapes them."""
    with _lock:
        model = _cache.get(key)
        if model is None:
            model = _cache[key] = build()
        return model


def use_channels_last(device: torch.device) -> bool:
    """channels_last on the CPU: oneDNN's blocked convolutions read NHWC without reorders (measured in
    bench/bench_deep.py); on CUDA cuDNN picks NHWC kernels itself for fp16/bf16."""
    return device.type == "cpu"


__all__ = ["BACKBONES", "VGG16", "AlexNet", "Backbone", "L2Pooling", "SqueezeNet11", "WeightsHashError",
           "WeightsNotFoundError", "build_backbone", "cached", "resolve", "use_channels_last"]
