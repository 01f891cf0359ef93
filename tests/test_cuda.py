"""CUDA kernels against the CPU kernels on the same inputs (runs only where a GPU is present)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from turboiqa import _ops
from turboiqa.window import gaussian_window

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not (_ops.HAVE_NATIVE and torch.cuda.is_available()), reason="needs CUDA and the extension"),
]
PADDINGS = ["valid", "zeros", "symmetric", "reflect", "replicate"]


def pair(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 255
    y = (x + 20 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 255)
    if dtype == torch.uint8:
        return x.round().to(torch.uint8), y.round().to(torch.uint8)
    if dtype in (torch.float16, torch.bfloat16):
        return (x / 255).to(dtype), (y / 255).to(dtype)
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("k", [1, 11, 63])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 33, 65), (1, 2, 40, 40), (1, 1, 130, 70)])
def test_forward_cuda_equals_cpu(dtype, padding, k, shape):
    if padding == "valid" and min(shape[-2:]) < k:
        pytest.skip("window larger than the image")
    x, y = pair(shape, dtype)
    c1, c2 = ((6.5025, 58.5225) if dtype in (torch.uint8, torch.float32, torch.float64) else (1e-4, 9e-4))
    w = gaussian_window(k, 1.5 if k > 1 else 1.0)
    cpu = _ops.ssim_stats(x, y, w, c1, c2, padding)
    gpu = _ops.ssim_stats(x.cuda(), y.cuda(), w, c1, c2, padding)
    if dtype == torch.float64:
        for a, b in zip(cpu, gpu):
            torch.testing.assert_close(b.cpu(), a, atol=1e-12, rtol=0)
        return
    # Narrower inputs are computed in float32 on both devices, in different summation orders: the GPU must be as
    # close to the float64 result of the same samples as the CPU is (or within 2e-6 of it).
    exact = _ops.ssim_stats(x.double(), y.double(), w, c1, c2, padding)
    for a, b, ref in zip(cpu, gpu, exact):
        err_cpu = (a.double() - ref).abs().max().item()
        err_gpu = (b.cpu().double() - ref).abs().max().item()
        assert err_gpu <= max(2 * err_cpu, 2e-6), f"GPU error {err_gpu:.3g} vs CPU error {err_cpu:.3g}"


@pytest.mark.parametrize("padding", PADDINGS)
def test_backward_cuda(padding):
    x, y = pair((2, 2, 9, 11), torch.float64, seed=3)
    x, y = (x / 255).cuda().requires_grad_(), (y / 255).cuda().requires_grad_()
    fn = lambda a, b: _ops.ssim_stats(a, b, gaussian_window(7, 1.5), 1e-4, 9e-4, padding)
    assert torch.autograd.gradcheck(fn, (x, y))
    torch.library.opcheck(torch.ops.turboiqa.ssim_stats.default,
                          (x, y, list(gaussian_window(7, 1.5)), 1e-4, 9e-4, padding, 1.0))


def test_many_planes():
    x, y = pair((70000, 1, 8, 8), torch.float32, seed=5)
    cpu = _ops.ssim_stats(x, y, gaussian_window(), 6.5025, 58.5225, "symmetric")
    gpu = _ops.ssim_stats(x.cuda(), y.cuda(), gaussian_window(), 6.5025, 58.5225, "symmetric")
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=2e-6, rtol=0)


def test_many_planes_batched_launches():
    """More planes than grid.y holds (65535): the plane-batched launches (for_plane_batches) of ssim_stats' backward
    and gradient_similarity's forward and backward cover every plane once, as on the CPU."""
    x, y = pair((3, 23000, 6, 7), torch.float64, seed=9)  # 69000 planes
    x, y = x / 255, y / 255
    w = list(gaussian_window(5, 1.5))
    gs, gc = (torch.randn(3, 23000, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in (1, 2))
    args = (w, 1e-4, 9e-4, "symmetric", 1.0, False)
    cpu = torch.ops.turboiqa._ssim_stats_backward(gs, gc, x, y, *args)
    gpu = torch.ops.turboiqa._ssim_stats_backward(gs.cuda(), gc.cuda(), x.cuda(), y.cuda(), *args)
    for a, b in zip(gpu, cpu):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-10, atol=1e-10)
    smooth = [1 / 3, 1 / 3, 1 / 3]
    for output in ("map", "moments"):
        a = (smooth, 1.0, 170.0 / 255 ** 2, 0.5, 1e-6, "zeros", output)
        want = torch.ops.turboiqa.gradient_similarity(x, y, *a)
        got = torch.ops.turboiqa.gradient_similarity(x.cuda(), y.cuda(), *a)
        torch.testing.assert_close(got.cpu(), want, rtol=1e-10, atol=1e-10)
        grad = torch.randn(want.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        want_g = torch.ops.turboiqa._gradient_similarity_backward(grad, x, y, *a)
        got_g = torch.ops.turboiqa._gradient_similarity_backward(grad.cuda(), x.cuda(), y.cuda(), *a)
        for p, q in zip(got_g, want_g):
            torch.testing.assert_close(p.cpu(), q, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_image_ops_cuda_equals_cpu(dtype):
    x, y = pair((2, 3, 37, 41), dtype, seed=7)
    gpu, cpu = _ops.squared_error_sum(x.cuda(), y.cuda()), _ops.squared_error_sum(x, y)
    # uint8 sums are exact integers; float sums differ in order only.
    rtol = {torch.uint8: 0, torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=rtol, atol=0)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=0, atol=0)
    for args in [(2, 0, 0, 19, 21, "symmetric"), (3, 1, 1, 13, 14, "symmetric"), (2, 1, 1, 19, 21, "zeros"),
                 (2, 1, 1, 19, 21, "replicate"), (2, 0, 0, 18, 20, "zeros")]:
        torch.testing.assert_close(_ops.box_downsample(x.cuda(), *args).cpu(), _ops.box_downsample(x, *args))
    coeffs = (0.298936021293775, 0.587043074451121, 0.114020904255103)
    for rnd in (False, True):
        torch.testing.assert_close(_ops.luma(x.cuda(), coeffs, 0.0, rnd).cpu(), _ops.luma(x, coeffs, 0.0, rnd))


def test_bad_arguments_raise_instead_of_crashing():
    # A subprocess, so that a crash (seen once while unwinding through nvcc-compiled code) fails one test only.
    probe = Path(__file__).with_name("cuda_error_probe.py")
    run = subprocess.run([sys.executable, str(probe), "cuda"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"rc={run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    assert run.stdout.count("raised ") == 8
