"""Every compiled instruction-set build of the CPU kernel (baseline, AVX2, AVX-512) gives the reference numbers.

The build is chosen once per process (TURBOIQA_CPU_ISA caps it), so each runs in a subprocess."""
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import turboiqa

SCRIPT = """
import json, torch, turboiqa
from turboiqa import _ops
from turboiqa.reference.ssim_stats import ssim_stats as reference
from turboiqa.window import gaussian_window
g = torch.Generator().manual_seed(0)
worst = {}
for dtype in (torch.float64, torch.float32, torch.uint8):
    for padding in ("valid", "symmetric", "zeros"):
        for shape in ((2, 3, 37, 41), (1, 1, 70, 131), (1, 1, 12, 300)):
            x = torch.rand(shape, generator=g, dtype=torch.float64) * 255
            y = (x + 20 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 255)
            if dtype == torch.uint8:
                x, y = x.round(), y.round()
            got = _ops.ssim_stats(x.to(dtype), y.to(dtype), gaussian_window(), 6.5025, 58.5225, padding)
            want = reference(x, y, gaussian_window(), 6.5025, 58.5225, padding)
            err = max((a.double() - b).abs().max().item() for a, b in zip(got, want))
            worst[str(dtype)] = max(worst.get(str(dtype), 0.0), err)
# The uint8 squared-error sums (one kernel per ISA): exact, odd lengths and saturated differences included.
from turboiqa.reference.image_ops import squared_error_sum as reference_sse
sse_exact = True
for shape in ((1, 1, 1, 1), (2, 3, 37, 41), (1, 1, 1, 70001)):
    a = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    b = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    sse_exact &= torch.equal(_ops.squared_error_sum(a, b)[0], reference_sse(a, b)[0])
saturated = torch.ops.turboiqa.squared_error_sum(torch.zeros(1, 1, 300, 300, dtype=torch.uint8),
                                                 torch.full((1, 1, 300, 300), 255, dtype=torch.uint8))[0]
sse_exact &= saturated.item() == 255**2 * 90000
worst["uint8 sse exact"] = bool(sse_exact)
# IW-SSIM's native operators (iw_ssim_rows.cpp is built per ISA as well) against the reference path.
from turboiqa.metrics.iw_ssim import iw_ssim
x = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 181, 203, generator=g, dtype=torch.float64), 3, 1, 1)
y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
for dtype in (torch.float64, torch.float32):
    for blk_size in (3, 5):
        got, want = (iw_ssim(x.to(dtype), y.to(dtype), 1.0, "none", blk_size=blk_size, backend=b)
                     for b in ("native", "reference"))
        key = "iw_ssim " + str(dtype)
        worst[key] = max(worst.get(key, 0.0), (got.double() - want.double()).abs().max().item())
# The backward (ssim_backward_rows.cpp, built per ISA) against the reference path's autograd, every padding.
for dtype in (torch.float64, torch.float32):
    for padding in ("valid", "symmetric", "zeros"):
        x = torch.rand(2, 3, 45, 67, generator=g, dtype=torch.float64)
        y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        grad_out = [torch.rand(2, 3, generator=g, dtype=torch.float64) for _ in range(2)]
        got = torch.ops.turboiqa._ssim_stats_backward(*(t.to(dtype) for t in (*grad_out, x, y)),
                                                      gaussian_window(), 1e-4, 9e-4, padding, 1.0)
        xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
        outs = reference(xr, yr, gaussian_window(), 1e-4, 9e-4, padding)
        want = torch.autograd.grad(outs, (xr, yr), grad_out)
        key = "backward " + str(dtype)
        scale = max(float(w.abs().max()) for w in want)
        err = max((a.double() - b).abs().max().item() for a, b in zip(got, want)) / scale
        worst[key] = max(worst.get(key, 0.0), err)
print(json.dumps({"isa": turboiqa.build_info()["cpu_isa_selected"], "worst": worst}))
"""


# The CPU features each build needs (csrc/cpu/dispatch.cpp), as the kernel names them in /proc/cpuinfo.
ISA_FLAGS = {"baseline": set(), "avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"}}


def cpu_flags() -> set[str]:
    """The CPU's feature flags, read independently of the extension's own detection (Linux only)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo: cannot tell which instruction sets this CPU has")
    return set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())


@pytest.mark.skipif(not turboiqa.HAVE_NATIVE, reason="compiled extension not available")
@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_each_isa_build_matches_reference(isa, monkeypatch):
    if isa not in turboiqa.build_info()["cpu_isa_compiled"].split(","):
        pytest.skip(f"{isa} not compiled on this platform ({platform.machine()})")
    missing = ISA_FLAGS[isa] - cpu_flags()
    if missing:
        pytest.skip(f"this CPU lacks {', '.join(sorted(missing))}: the {isa} build cannot be selected")
    monkeypatch.setenv("TURBOIQA_CPU_ISA", isa)
    out = json.loads(subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-1])
    assert out["isa"] == isa  # the requested build ran, not a lower one
    assert out["worst"]["torch.float64"] < 1e-12
    assert out["worst"]["torch.float32"] < 1e-6
    assert out["worst"]["torch.uint8"] < 1e-6
    assert out["worst"]["iw_ssim torch.float64"] < 1e-12
    assert out["worst"]["iw_ssim torch.float32"] < 1e-5
    assert out["worst"]["uint8 sse exact"]
    assert out["worst"]["backward torch.float64"] < 1e-10  # relative to the largest gradient
    assert out["worst"]["backward torch.float32"] < 1e-5
