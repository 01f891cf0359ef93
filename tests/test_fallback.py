"""Without the compiled module, `import turboiqa` still works (one warning) and gives the same numbers."""
import subprocess
import sys

import pytest
import torch
import turboiqa

SCRIPT = """
import sys, warnings
sys.modules["turboiqa._C"] = None  # as if the extension had not been built
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import turboiqa
import torch
assert not turboiqa.HAVE_NATIVE
assert any("reference path" in str(w.message) for w in caught), [str(w.message) for w in caught]
g = torch.Generator().manual_seed(0)
x = torch.rand(1, 3, 200, 190, generator=g, dtype=torch.float64)
y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
print(turboiqa.ssim(x, y, 1.0).item(), turboiqa.ms_ssim(x, y, 1.0).item(), turboiqa.psnr(x, y, 1.0).item())
try:
    turboiqa.ssim(x, y, 1.0, backend="native")
except RuntimeError as exc:
    assert "failed to load" in str(exc)
else:
    raise AssertionError("backend='native' must fail without the extension")
"""


@pytest.mark.skipif(not turboiqa.HAVE_NATIVE, reason="compares against the native path")
def test_import_without_extension_uses_reference_path():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    ssim, ms_ssim, psnr = map(float, out.split())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 200, 190, generator=g, dtype=torch.float64)
    y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert ssim == pytest.approx(turboiqa.ssim(x, y, 1.0).item(), abs=1e-12)
    assert ms_ssim == pytest.approx(turboiqa.ms_ssim(x, y, 1.0).item(), abs=1e-12)
    assert psnr == pytest.approx(turboiqa.psnr(x, y, 1.0).item(), abs=1e-9)
