"""Each metric traces as one graph (Meta kernels as fake kernels, no graph breaks) and gives the eager numbers; the
argument checks of the Meta kernels are in test_fake_checks.py."""
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


@pytest.mark.parametrize("fn", [turboiqa.ssim, turboiqa.psnr])
def test_compile_dynamic_shapes(fn):
    # The Meta kernels read symbolic sizes (sym_sizes), so one dynamic graph serves other image sizes.
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(lambda a, b: fn(a, b, 1.0, reduction="none"), fullgraph=True, dynamic=True,
                             backend=counter)
    g = torch.Generator().manual_seed(1)
    frames = []
    for shape in [(2, 3, 180, 190), (3, 3, 200, 211), (4, 3, 191, 185)]:  # sizes 0 and 1 would be specialised
        x = torch.rand(shape, generator=g, dtype=torch.float64)
        y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        # Eager first: it caches the Gaussian window, which a first dynamic trace would build from a symbolic sigma
        # and graph-break on (math.isfinite in window.py; a metric-side issue, not the operators).
        want = fn(x, y, 1.0, reduction="none")
        torch.testing.assert_close(compiled(x, y), want)
        frames.append(counter.frame_count)
    assert frames[0] > 0 and frames[-1] == frames[0]  # compiled once, no recompilation for the new sizes
