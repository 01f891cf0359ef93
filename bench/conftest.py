"""Inputs and peer adapters for the benchmarks: one group per (metric, input), one row per implementation."""
import importlib
import importlib.util
import os
import sys
import types

import torch

torch.manual_seed(0)


def make_inputs(name: str, device: str):
    """Content with structure (smoothed noise) plus distortion; uint8 and float32 versions of the same frames."""
    shapes = {"grey": (1, 1, 1080, 1920), "rgb": (1, 3, 1080, 1920), "8xrgb": (8, 3, 1080, 1920)}
    base, dtype = name.rsplit("-", 1)
    shape = shapes[base]
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(shape, generator=g)
    ref = torch.nn.functional.avg_pool2d(ref, 3, stride=1, padding=1)
    dist = (ref + 0.03 * torch.randn(shape, generator=g)).clamp(0, 1)
    ref8, dist8 = (ref * 255).round().to(torch.uint8), (dist * 255).round().to(torch.uint8)
    if dtype == "u8":
        return ref8.to(device), dist8.to(device), 255.0
    return (ref8.float() / 255).to(device), (dist8.float() / 255).to(device), 1.0


def import_piq(name):
    if "piq" not in sys.modules:
        spec = importlib.util.find_spec("piq")
        if spec is None:
            return None
        pkg = types.ModuleType("piq")  # piq/__init__ imports torchvision, which its ssim/psnr modules never use
        pkg.__path__ = [os.path.dirname(spec.origin)]
        sys.modules["piq"] = pkg
    return importlib.import_module(f"piq.{name}")


def optional(module):
    try:
        return importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken peer install is a skipped row, not a failed benchmark
        return None


def run_timed(benchmark, fn, device):
    """pedantic timing sized to the call: slow peers get a few rounds, fast kernels many."""
    def call():
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    import time

    call()  # warm-up (and first-call compilation for peers that compile)
    t = time.perf_counter()
    call()
    once = time.perf_counter() - t
    budget, most = (0.5, 50) if device == "cuda" else (1.5, 30)  # GPU rows are many and steady
    rounds = int(max(3, min(most, budget / max(once, 1e-6))))
    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
