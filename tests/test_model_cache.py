"""The deep metrics' model cache (turboiqa.nets.cached): grad mode, size bound, no global lock while building."""
import threading

import torch

from turboiqa import nets


def test_built_outside_inference_mode():
    # Issue 11 #9: a first call under inference_mode cached inference tensors; a later differentiable call failed.
    with torch.inference_mode():
        model = nets.cached(("test-cache", "grad-mode"), lambda: torch.nn.Linear(3, 2))
    assert not any(p.is_inference() for p in model.parameters())
    x = torch.rand(4, 3, requires_grad=True)
    nets.cached(("test-cache", "grad-mode"), lambda: None)(x).sum().backward()
    assert x.grad is not None


def test_cache_is_bounded_and_keeps_recent_models():
    first = nets.cached(("test-cache", "bounded", 0), lambda: torch.nn.Identity())
    for i in range(1, 3 * nets.MAX_CACHED_MODELS):
        nets.cached(("test-cache", "bounded", i), lambda: torch.nn.Identity())
        assert len(nets._cache) <= nets.MAX_CACHED_MODELS
    assert nets.cached(("test-cache", "bounded", 0), lambda: "rebuilt") == "rebuilt"  # evicted, built again
    assert first is not None


def test_a_slow_build_does_not_block_other_keys():
    # Issue 11 #9: the lock was held while building (or downloading) a model, stalling every other metric.
    release, started = threading.Event(), threading.Event()

    def slow_build():
        started.set()
        assert release.wait(10)
        return "slow"

    thread = threading.Thread(target=nets.cached, args=(("test-cache", "slow"), slow_build))
    thread.start()
    assert started.wait(10)
    result = []
    fast = threading.Thread(target=lambda: result.append(nets.cached(("test-cache", "fast"), lambda: "fast")))
    fast.start()
    fast.join(5)
    finished_while_slow_was_building = not fast.is_alive()
    release.set()
    fast.join(10)
    assert finished_while_slow_was_building and result == ["fast"]
    thread.join(10)
    assert nets.cached(("test-cache", "slow"), lambda: "again") == "slow"  # built once
