"""FSIM and IW-SSIM on 512×384 and 1920×1080 RGB float32: turboiqa (native phase-congruency energy op / its
reference path) vs piq, piqa and frame-analytics, same inputs.

Run: python -m pytest bench/bench_fsim_iwssim.py --benchmark-only --benchmark-json=bench/results-fsim-cpu.json
"""
import importlib
import importlib.util
import os
import sys
import types

import pytest
import torch
import turboiqa
from conftest import import_piq, optional, run_timed

SIZES = {"512x384": (384, 512), "1080p": (1080, 1920)}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def import_piqa(name):
    if "piqa" not in sys.modules:
        spec = importlib.util.find_spec("piqa")
        if spec is None:
            return None
        pkg = types.ModuleType("piqa")  # piqa/__init__ imports torchvision (LPIPS), which fsim.py never uses
        pkg.__path__ = [os.path.dirname(spec.origin)]
        sys.modules["piqa"] = pkg
    return importlib.import_module(f"piqa.{name}")


def implementations(metric, device="cpu"):
    fa = optional("frame_analytics")
    impls = {}
    if metric == "fsim":
        impls["turboiqa"] = lambda r, d: turboiqa.fsim(d, r, 1.0, backend="native")
        impls["turboiqa-reference"] = lambda r, d: turboiqa.fsim(d, r, 1.0, backend="reference")
        piq_fsim = import_piq("fsim")
        if piq_fsim:
            impls["piq"] = lambda r, d: piq_fsim.fsim(d, r, data_range=1.0, chromatic=False)
        piqa_fsim = import_piqa("fsim")
        if piqa_fsim:
            module = piqa_fsim.FSIM(chromatic=False).to(device)
            impls["piqa"] = lambda r, d: module(d, r)
        if fa:
            impls["frame-analytics"] = lambda r, d: fa.fsim(d, r, data_range=1.0)
    else:
        impls["turboiqa"] = lambda r, d: turboiqa.iw_ssim(d, r, 1.0)
        piq_iw = import_piq("iw_ssim")
        if piq_iw:
            impls["piq"] = lambda r, d: piq_iw.information_weighted_ssim(d, r, data_range=1.0)
        if fa:
            impls["frame-analytics"] = lambda r, d: fa.iw_ssim(d, r, data_range=1.0)
    return impls


@pytest.mark.parametrize("metric, size, impl, device",
                         [pytest.param(m, s, i, dev, id=f"{m}-{s}-{dev}-{i}") for dev in DEVICES
                          for m in ("fsim", "iw_ssim") for s in SIZES for i in implementations(m, dev)])
def test_bench(benchmark, metric, size, impl, device):
    benchmark.group = f"{metric} rgb-f32 {size} {device}"
    g = torch.Generator().manual_seed(0)
    h, w = SIZES[size]
    ref = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w, generator=g), 3, stride=1, padding=1)
    dist = (ref + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    ref, dist = ref.to(device), dist.to(device)
    fn = implementations(metric, device)[impl]
    with torch.inference_mode():
        run_timed(benchmark, lambda: fn(ref, dist), device)
