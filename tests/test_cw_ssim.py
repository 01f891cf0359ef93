"""CW-SSIM: the official cwssim_index.m scores (pyiqa's ResultsCalibra official results, 4 decimals), pyiqa parity,
the steerable-pyramid shortcut, batching, dtypes, autograd, errors."""
import pytest
import torch
from conftest import skip_missing
from peer_stubs import import_pyiqa_arch
from test_peers import pair
from turboiqa.metrics.cw_ssim import CW_SSIM, CW_SSIM_CONVENTIONS, coarsest_bands, cw_ssim

pytestmark = pytest.mark.usefixtures("one_thread")

# reference_values.csv, order i03, i04, i06, i08, i19 (4 decimals)
CW_SSIM_OFFICIAL = [0.2763, 0.9996, 1.0, 0.9068, 0.8658]
TOL4 = 5.01e-5


def as_input(t, kind):
    if kind == "uint8":
        return t, 255
    return t.to(torch.float64 if kind == "float64" else torch.float32) / 255, 1.0


@pytest.fixture(scope="module")
def pyiqa_cw():
    arch = import_pyiqa_arch("ssim_arch")
    if arch is None:
        skip_missing("pyiqa not installed (pip install --no-deps pyiqa==0.1.16)")
    return arch


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_official_tid_pairs(tid_pairs, kind):
    for (dist, ref), want in zip(tid_pairs, CW_SSIM_OFFICIAL):
        x, L = as_input(dist, kind)
        y, _ = as_input(ref, kind)
        got = cw_ssim(x, y, L)
        assert got.dtype == (torch.float64 if kind == "float64" else torch.float32)
        assert got.item() == pytest.approx(want, abs=TOL4, rel=0)


def test_batched_equals_one_by_one(tid_pairs):
    dist = torch.cat([d for d, _ in tid_pairs])
    ref = torch.cat([r for _, r in tid_pairs])
    batched = cw_ssim(dist, ref, 255, "none")
    assert batched.shape == (5,)
    single = torch.cat([cw_ssim(d, r, 255, "none") for d, r in tid_pairs])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
    assert cw_ssim(dist, ref, 255).item() == pytest.approx(batched.mean().item(), abs=1e-6)


def test_pyiqa_real_images(pyiqa_cw, tid_pairs):
    m = pyiqa_cw.CW_SSIM(channels=1, level=4, ori=8, test_y_channel=True)
    for dist, ref in tid_pairs:
        x, y = dist.float() / 255, ref.float() / 255
        want = m(x, y)  # pyiqa computes in float64
        got = cw_ssim(x.double(), y.double(), 1.0, "none", convention="pyiqa")
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
        # float32 input computes in float32 here
        torch.testing.assert_close(cw_ssim(x, y, 1.0, "none", convention="pyiqa"), want.float(), atol=2e-6, rtol=0)


@pytest.mark.parametrize("shape,level,ori", [((2, 3, 67, 95), 4, 8), ((1, 3, 100, 129), 3, 6), ((1, 3, 64, 70), 4, 4)])
def test_pyiqa_random(pyiqa_cw, shape, level, ori):
    x, y = pair(shape)
    want = pyiqa_cw.CW_SSIM(channels=1, level=level, ori=ori, test_y_channel=True)(x, y)
    got = cw_ssim(x, y, 1.0, "none", level=level, orientations=ori, convention="pyiqa")
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_coarsest_band_equals_full_pyramid(pyiqa_cw):
    """The band built directly equals the last orientation level of pyiqa's full buildSCFpyr port."""
    from pyiqa.matlab_utils import SCFpyr_PyTorch

    g = torch.Generator().manual_seed(1)
    im = torch.rand(1, 1, 97, 130, generator=g, dtype=torch.float64) * 255
    pyr = SCFpyr_PyTorch(height=4, nbands=8, scale_factor=2).build(im)
    ours = coarsest_bands(im, 4, 8, True)
    for b in range(8):
        theirs = torch.complex(pyr[4][b][..., 0], pyr[4][b][..., 1])[0]
        # pyiqa multiplies by (−i)^7 = i, which cancels in c₁c₂*
        torch.testing.assert_close(ours[0, b] * 1j, theirs, atol=1e-9, rtol=0)


def test_properties():
    x, y = pair((2, 3, 64, 80))
    torch.testing.assert_close(cw_ssim(y, y, reduction="none"), torch.ones(2, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(cw_ssim(x, y), cw_ssim(y, x), atol=1e-12, rtol=0)
    v = cw_ssim(x[:, :1], y[:, :1], reduction="none")  # grey input
    assert v.shape == (2,) and ((v > 0) & (v < 1)).all()
    # K > 0 raises the score towards 1
    assert cw_ssim(x, y, K=1e3).item() > cw_ssim(x, y).item()
    assert set(CW_SSIM_CONVENTIONS) == {"matlab", "pyiqa"}
    assert cw_ssim.lower_is_better is False


def test_uint8_equals_float(tid_pairs):
    d, r = tid_pairs[0]
    d, r = d[..., :128, :97], r[..., :128, :97]
    torch.testing.assert_close(cw_ssim(d, r, 255), cw_ssim(d.float() / 255, r.float() / 255), atol=1e-6, rtol=0)
    torch.testing.assert_close(cw_ssim(d, r, 255), cw_ssim(d.double() / 255, r.double() / 255).float(), atol=1e-6,
                               rtol=0)


def test_gradcheck():
    x, y = pair((1, 1, 64, 66))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: cw_ssim(a, y), (x,), eps=1e-6, atol=1e-6)
    x, y = pair((1, 3, 64, 64))
    x.requires_grad_(True)
    cw_ssim(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_module_equals_functional():
    x, y = pair((2, 3, 64, 72))
    m = CW_SSIM(reduction="none", orientations=4)
    torch.testing.assert_close(m(x, y), cw_ssim(x, y, reduction="none", orientations=4), atol=0, rtol=0)
    torch.testing.assert_close(CW_SSIM(loss=True)(x, y), 1 - cw_ssim(x, y), atol=0, rtol=0)


def test_errors():
    x, y = pair((1, 3, 64, 64))
    with pytest.raises(ValueError, match="at least 64"):
        cw_ssim(x[..., :63, :], y[..., :63, :])
    assert cw_ssim(x[..., :32, :], y[..., :32, :], level=3).item() > 0
    with pytest.raises(ValueError, match="level"):
        cw_ssim(x, y, level=0)
    with pytest.raises(ValueError, match="orientations"):
        cw_ssim(x, y, orientations=2.5)
    with pytest.raises(ValueError, match="convention"):
        cw_ssim(x, y, convention="piq")
    with pytest.raises(ValueError, match="channels in x"):
        cw_ssim(x[:, :2], y[:, :2])
