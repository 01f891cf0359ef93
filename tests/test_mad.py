"""MAD: the official scores (pyiqa's ResultsCalibra official results, 4 decimals), pyiqa parity, the block-moment
patch statistics, batching, dtypes, autograd, errors."""
import pytest
import torch
from conftest import skip_missing
from peer_stubs import import_pyiqa_arch
from test_peers import pair
from turboiqa.metrics.mad import MAD, MAD_CONVENTIONS, mad, patch_moments

pytestmark = pytest.mark.usefixtures("one_thread")

# reference_values.csv, order i03, i04, i06, i08, i19 (4 decimals)
MAD_OFFICIAL = [195.2796, 80.8379, 30.3918, 84.3542, 202.2371]
TOL4 = 5.01e-5


@pytest.fixture(scope="module")
def pyiqa_mad():
    arch = import_pyiqa_arch("mad_arch")
    if arch is None:
        skip_missing("pyiqa not installed (pip install --no-deps pyiqa==0.1.16)")
    return arch


def pyiqa_float64(module, x, y):
    """pyiqa's MAD builds its box window with torch.ones (default dtype): float64 runs need that default."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return module(x.double(), y.double())
    finally:
        torch.set_default_dtype(old)


def test_official_float64(tid_pairs):
    for (dist, ref), want in zip(tid_pairs, MAD_OFFICIAL):
        got = mad(dist.double() / 255, ref.double() / 255)
        assert got.dtype == torch.float64
        assert got.item() == pytest.approx(want, abs=TOL4, rel=0)


def test_official_uint8_batched_and_float32(tid_pairs):
    dist = torch.cat([d for d, _ in tid_pairs])
    ref = torch.cat([r for _, r in tid_pairs])
    batched = mad(dist, ref, 255, "none")  # uint8 computes in float32
    assert batched.shape == (5,) and batched.dtype == torch.float32
    assert batched.tolist() == pytest.approx(MAD_OFFICIAL, abs=TOL4, rel=0)
    for i in (3,):  # float32 input, one image at a time
        d, r = tid_pairs[i]
        single = mad(d.float() / 255, r.float() / 255, reduction="none")
        assert single.item() == pytest.approx(MAD_OFFICIAL[i], abs=TOL4, rel=0)
        torch.testing.assert_close(single, batched[i : i + 1], atol=5e-5, rtol=0)
    assert mad(dist, ref, 255).item() == pytest.approx(batched.mean().item(), rel=1e-6)


def test_pyiqa_real_crops(pyiqa_mad, tid_pairs):
    rgb, luma = pyiqa_mad.MAD(), pyiqa_mad.MAD(channels=1, test_y_channel=True)
    for dist, ref in tid_pairs:
        x, y = dist[..., 100:196, 200:328].float() / 255, ref[..., 100:196, 200:328].float() / 255
        want = pyiqa_float64(rgb, x, y)
        torch.testing.assert_close(mad(x.double(), y.double(), reduction="none"), want, atol=1e-10, rtol=1e-12)
        # pyiqa's default float32 run (its detection part in float32, appearance in float64)
        torch.testing.assert_close(mad(x, y, reduction="none").double(), rgb(x, y), atol=0, rtol=2e-4)
        want = pyiqa_float64(luma, x, y)
        got = mad(x.double(), y.double(), reduction="none", color="yiq", convention="pyiqa")
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 67, 45), (1, 1, 100, 129), (1, 3, 16, 40)])
def test_pyiqa_random(pyiqa_mad, shape):
    x, y = pair(shape)
    want = pyiqa_float64(pyiqa_mad.MAD(), x, y)
    torch.testing.assert_close(mad(x, y, reduction="none"), want, atol=1e-10, rtol=1e-12)


def test_patch_moments_equal_unfolded_patches():
    g = torch.Generator().manual_seed(3)
    t = torch.rand(2, 3, 41, 38, generator=g, dtype=torch.float64) * 50 + 100
    mu, m = patch_moments(t, 4)
    p = t.unfold(2, 16, 4).unfold(3, 16, 4)  # B×C×h×w×16×16
    ref_mu = p.mean(dim=(-2, -1))
    d = p - ref_mu[..., None, None]
    torch.testing.assert_close(mu, ref_mu, atol=1e-12, rtol=0)
    for k in (2, 3, 4):
        torch.testing.assert_close(m[k], d.pow(k).sum(dim=(-2, -1)), atol=1e-8, rtol=1e-10)


def test_properties():
    x, y = pair((2, 3, 48, 40))
    assert torch.equal(mad(y, y, reduction="none"), torch.zeros(2, dtype=torch.float64))
    assert (mad(x, y, reduction="none") > 0).all()
    assert mad(x, y).item() != pytest.approx(mad(y, x).item(), rel=1e-6)  # not symmetric
    g = mad(x[:, :1], y[:, :1], reduction="none")
    assert g.shape == (2,) and (g > 0).all()
    assert set(MAD_CONVENTIONS) == {"matlab", "pyiqa"}
    assert mad.lower_is_better is True


def test_gradient():
    x, y = pair((1, 1, 24, 28))
    x.requires_grad_(True)
    # fast mode: the derivative along random directions against finite differences (the full Jacobian takes minutes)
    assert torch.autograd.gradcheck(lambda a: mad(a, y), (x,), eps=1e-7, atol=1e-5, rtol=1e-4, fast_mode=True)
    # RGB with a channel whose detection index is 0 (no patch above threshold): finite gradient
    x, y = pair((1, 3, 32, 32))
    x.requires_grad_(True)
    mad(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda a: mad(a, y), (x,), eps=1e-7, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_module_equals_functional():
    x, y = pair((2, 3, 40, 36))
    torch.testing.assert_close(MAD(reduction="none")(x, y), mad(x, y, reduction="none"), atol=0, rtol=0)
    with pytest.raises(ValueError, match="no loss form"):
        MAD(loss=True)


def test_errors():
    x, y = pair((1, 3, 40, 40))
    with pytest.raises(ValueError, match="at least 16"):
        mad(x[..., :15, :], y[..., :15, :])
    with pytest.raises(ValueError, match="convention"):
        mad(x, y, convention="piq")
    with pytest.raises(ValueError, match="color"):
        mad(x, y, color="lab")
    with pytest.raises(ValueError, match="RGB x"):
        mad(x[:, :1], y[:, :1], color="yiq")
    with pytest.raises(ValueError, match="range"):
        mad(x * 2, y)
