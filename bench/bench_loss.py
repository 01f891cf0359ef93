"""SSIM and MS-SSIM as training losses: forward + backward on a 4×3×256×256 float32 batch, turboiqa's native
backward vs its reference path (PyTorch autograd) vs the peers' autograd.

Run: python -m pytest bench/bench_loss.py --benchmark-only
"""
import pytest
import torch
import turboiqa
from conftest import import_piq, optional, run_timed


def losses(metric):
    pm = optional("pytorch_msssim")
    impls = {}
    if metric == "ssim":
        impls["turboiqa"] = lambda x, y: 1 - turboiqa.ssim(x, y, 1.0, convention="pytorch_msssim", backend="native")
        impls["turboiqa-reference"] = lambda x, y: 1 - turboiqa.ssim(x, y, 1.0, convention="pytorch_msssim",
                                                                     backend="reference")
        if pm:
            impls["pytorch-msssim"] = lambda x, y: 1 - pm.ssim(x, y, data_range=1.0)
        piq_ssim = import_piq("ssim")
        if piq_ssim:
            impls["piq"] = lambda x, y: 1 - piq_ssim.ssim(x, y, data_range=1.0, downsample=False)
    else:
        impls["turboiqa"] = lambda x, y: 1 - turboiqa.ms_ssim(x, y, 1.0, convention="pytorch_msssim",
                                                              backend="native")
        impls["turboiqa-reference"] = lambda x, y: 1 - turboiqa.ms_ssim(x, y, 1.0, convention="pytorch_msssim",
                                                                        backend="reference")
        if pm:
            impls["pytorch-msssim"] = lambda x, y: 1 - pm.ms_ssim(x, y, data_range=1.0)
        piq_ms = import_piq("ms_ssim")
        if piq_ms:
            impls["piq"] = lambda x, y: 1 - piq_ms.multi_scale_ssim(x, y, data_range=1.0)
    return impls


@pytest.mark.parametrize("metric, impl", [(m, i) for m in ("ssim", "ms_ssim") for i in losses(m)])
def test_loss_step(benchmark, metric, impl):
    benchmark.group = f"{metric} loss fwd+bwd 4x3x256x256 cpu"
    g = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 256, 256, generator=g)
    pred = (target + 0.05 * torch.randn(target.shape, generator=g)).clamp(0, 1).requires_grad_()
    fn = losses(metric)[impl]

    def step():
        pred.grad = None
        fn(pred, target).backward()

    run_timed(benchmark, step, "cpu")
