"""Backbones for the deep metrics and the resolver of their weight files."""
from __future__ import annotations

import threading
from collections import OrderedDict

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

MAX_CACHED_MODELS = 6  # a VGG16 trunk is ~60 MB; DeepSim alone keys one per layer choice

_cache: OrderedDict = OrderedDict()  # least recently used first
_building: dict = {}  # key -> lock held while that key's model is built
_lock = threading.Lock()  # guards the two dicts only, never held while a model is built or downloaded


def cached(key: tuple, build):
    """Process-wide cache of built models for the functional metric forms, keyed by everything that shapes them.

    At most MAX_CACHED_MODELS models are kept (least recently used dropped). A model is built once per key while
    other keys are served meanwhile, and outside inference mode whatever the caller's mode: a first call under
    ``torch.inference_mode()`` must not cache inference tensors that a later differentiable call cannot use.
    """
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        key_lock = _building.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            if key in _cache:  # built by another thread while this one waited
                _cache.move_to_end(key)
                return _cache[key]
        try:
            with torch.inference_mode(False):
                model = build()
            with _lock:
                _cache[key] = model
                while len(_cache) > MAX_CACHED_MODELS:
                    _cache.popitem(last=False)
            return model
        finally:
            with _lock:
                _building.pop(key, None)


def use_channels_last(device: torch.device) -> bool:
    """channels_last on the CPU: oneDNN's blocked convolutions read NHWC without reorders (measured in
    bench/bench_deep.py); on CUDA cuDNN picks NHWC kernels itself for fp16/bf16."""
    return device.type == "cpu"


__all__ = ["BACKBONES", "VGG16", "AlexNet", "Backbone", "L2Pooling", "SqueezeNet11", "WeightsHashError",
           "WeightsNotFoundError", "build_backbone", "cached", "resolve", "use_channels_last"]
