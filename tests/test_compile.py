"""Each metric traces as one graph (fake kernels registered, no graph breaks) and gives the eager numbers."""
import pytest
import torch
import turboiqa

pytestmark = pytest.mark.skipif(not turboiqa.HAVE_NATIVE, reason="compiled extension not available")


@pytest.mark.parametrize("fn", [turboiqa.ssim, turboiqa.ms_ssim, turboiqa.psnr])
def test_compile_fullgraph(fn):
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 180, 190, generator=g, dtype=torch.float64)
    y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    compiled = torch.compile(lambda a, b: fn(a, b, 1.0, reduction="none"), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, y), fn(x, y, 1.0, reduction="none"))
    if fn is not turboiqa.psnr:  # and the compiled loss differentiates through the native backward
        xg = x.clone().requires_grad_()
        compiled(xg, y).sum().backward()
        xe = x.clone().requires_grad_()
        fn(xe, y, 1.0, reduction="none").sum().backward()
        torch.testing.assert_close(xg.grad, xe.grad)


def test_meta_mixed_with_cpu_raises():
    # Issue 11 #5: one tensor on 'meta' and one on the CPU dispatched to the fake kernel, which returned
    # uninitialised memory to the CPU caller.
    import math

    cpu, meta = torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 20, device="meta")
    calls = {
        "ssim_stats": lambda a, b: torch.ops.turboiqa.ssim_stats(a, b, [0.25, 0.5, 0.25], 1e-4, 9e-4, "valid", 1.0),
        "squared_error_sum": lambda a, b: torch.ops.turboiqa.squared_error_sum(a, b),
        "psnr_db": lambda a, b: torch.ops.turboiqa.psnr_db(a, b, 1.0, 0.0, math.inf, "mean"),
        "lpips_distance": lambda a, b: torch.ops.turboiqa.lpips_distance(a, b, torch.ones(1), 1e-10),
    }
    for name, call in calls.items():
        for a, b in ((cpu, meta), (meta, cpu)):
            with pytest.raises(RuntimeError, match="all tensors must be on one device"):
                call(a, b)
