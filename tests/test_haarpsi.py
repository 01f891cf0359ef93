"""HaarPSI: the MATLAB HaarPSI.m value of TID2013 i01_01_5, parity with piq and frame-analytics, the box-sum Haar
responses against conv2 'same', batches, dtypes, autograd and errors."""
import pytest
import torch
import torch.nn.functional as F
from conftest import import_or_skip
from test_peers import import_piq_module, pair
from turboiqa.metrics.haarpsi import HAARPSI_CONVENTIONS, HaarPSI, haar_responses, haarpsi

pytestmark = pytest.mark.usefixtures("one_thread")

# reference_values.csv: MATLAB HaarPSI.m via piq's test, x = I01 (ref), y = i01_01_5, atol 1e-4 (HaarPSI is symmetric).
HAARPSI_I01 = 0.71706527
SHAPES = [(2, 3, 181, 179), (1, 1, 64, 97), (1, 3, 33, 16), (1, 3, 384, 512)]


def as_input(t, kind):
    if kind == "uint8":
        return t, 255
    return t.to(torch.float64 if kind == "float64" else torch.float32) / 255, 1.0


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_matlab_i01(tid_i01, kind, device):
    dist, ref = (as_input(t, kind)[0].to(device) for t in tid_i01)
    L = as_input(tid_i01[0], kind)[1]
    assert haarpsi(dist, ref, L).item() == pytest.approx(HAARPSI_I01, abs=2e-7)  # measured 5.5e-8 (float32)
    assert haarpsi(ref, dist, L).item() == pytest.approx(HAARPSI_I01, abs=1e-6)  # the csv's order


def conv2_same(x, kernel):
    """MATLAB conv2(x, kernel, 'same') for an even square kernel: flip, then correlate over X(i-K/2+1 … i+K/2)."""
    k = kernel.shape[-1]
    lo, hi = k // 2 - 1, k // 2
    return F.conv2d(F.pad(x, (lo, hi, lo, hi)), kernel.flip(-1, -2)[None, None])


def test_haar_responses_match_conv2():
    x = torch.rand(2, 1, 37, 50, dtype=torch.float64)
    got = haar_responses(x)
    for k in (1, 2, 3):
        size = 2**k
        filt = torch.full((size, size), 2.0**-k, dtype=torch.float64)
        filt[: size // 2] *= -1  # HaarPSIDec: the top half negated
        torch.testing.assert_close(got[2 * (k - 1)], conv2_same(x, filt), atol=1e-12, rtol=0)
        torch.testing.assert_close(got[2 * (k - 1) + 1], conv2_same(x, filt.t()), atol=1e-12, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_piq(shape):
    piq = import_piq_module("haarpsi")
    x, y = pair(shape)
    want = piq.haarpsi(x, y, reduction="none", data_range=1.0)
    torch.testing.assert_close(haarpsi(x, y, 1.0, "none", convention="piq"), want, atol=1e-12, rtol=0)
    # float32: ours pools in float64 before the logit (which magnifies rounding), so it stays within 3e-7 of the
    # float64 score; piq pools in float32 and lands up to 3e-6 away (measured)
    got = haarpsi(x.float(), y.float(), 1.0, "none", convention="piq")
    torch.testing.assert_close(got, want.float(), atol=5e-7, rtol=0)
    want32 = piq.haarpsi(x.float(), y.float(), reduction="none", data_range=1.0)
    torch.testing.assert_close(got, want32, atol=5e-6, rtol=0)


def test_piq_real_and_matlab_difference(tid_i01):
    piq = import_piq_module("haarpsi")
    x, y = (t.double() for t in tid_i01)
    want = piq.haarpsi(x, y, data_range=255, reduction="none")
    torch.testing.assert_close(haarpsi(x, y, 255, "none", convention="piq"), want, atol=1e-12, rtol=0)
    # piq's 4-decimal YIQ rows (I, Q only) and epsilon: a small but real difference from HaarPSI.m
    assert 0 < abs(haarpsi(x, y, 255).item() - want.item()) < 1e-4


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_frame_analytics(shape):
    fa = import_or_skip("frame_analytics")
    fa.functional.set_compile_enabled(False)  # its torch.compile'd epilogues take seconds to build; same numbers
    x, y = pair(shape)
    want = fa.haarpsi(x, y, data_range=1.0, reduction="none")
    torch.testing.assert_close(haarpsi(x, y, 1.0, "none"), want, atol=1e-12, rtol=0)


def test_luma_only_equals_gray_input():
    x, y = pair((2, 3, 40, 52))
    yiq = HAARPSI_CONVENTIONS["matlab"].yiq[0]
    luma = [(t * torch.tensor(yiq, dtype=t.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True) for t in (x, y)]
    torch.testing.assert_close(haarpsi(x, y, color="yiq", reduction="none"), haarpsi(*luma, reduction="none"),
                               atol=1e-12, rtol=0)


def test_subsample_off_and_odd_sizes():
    x, y = pair((1, 3, 17, 23))
    a = haarpsi(x, y)
    b = haarpsi(x[..., :16, :22], y[..., :16, :22])
    assert 0 < a.item() < 1 and 0 < b.item() < 1 and a.item() != b.item()
    assert 0 < haarpsi(x[..., :8, :9], y[..., :8, :9], subsample=False).item() < 1


def test_identical_is_one_and_symmetric():
    x, y = pair((2, 3, 64, 64))
    torch.testing.assert_close(haarpsi(x, x, reduction="none"), torch.ones(2, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(haarpsi(x, y, reduction="none"), haarpsi(y, x, reduction="none"), atol=1e-14, rtol=0)


def test_batch_reductions_and_uint8(tid_pairs):
    dist = torch.cat([d for d, _ in tid_pairs])
    ref = torch.cat([r for _, r in tid_pairs])
    batched = haarpsi(dist, ref, 255, "none")
    single = torch.stack([haarpsi(d, r, 255) for d, r in tid_pairs])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
    assert haarpsi(dist, ref, 255).item() == pytest.approx(batched.mean().item(), abs=1e-7)
    assert haarpsi(dist, ref, 255, "sum").item() == pytest.approx(batched.sum().item(), abs=1e-6)
    as_float = haarpsi(dist.double() / 255, ref.double() / 255, 1.0, "none")
    torch.testing.assert_close(batched.double(), as_float, atol=2e-6, rtol=0)
    assert batched.dtype == torch.float32 and as_float.dtype == torch.float64


def test_module_matches_functional():
    x, y = pair((2, 3, 40, 40))
    assert HaarPSI(1.0, "none", color="yiq")(x, y).tolist() == haarpsi(x, y, 1.0, "none", color="yiq").tolist()
    assert HaarPSI(loss=True)(x, y).item() == pytest.approx(1 - haarpsi(x, y).item(), abs=1e-15)
    with pytest.raises(TypeError, match="scales"):
        HaarPSI(scales=4)


def test_gradcheck():
    x, y = pair((1, 3, 16, 18))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: haarpsi(a, y), (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_errors():
    x, y = pair((1, 3, 15, 40))
    with pytest.raises(ValueError, match=r"x is 15×40: HaarPSI needs at least 16×16"):
        haarpsi(x, y)
    assert haarpsi(x, y, subsample=False).item() > 0
    with pytest.raises(ValueError, match="8×8"):
        haarpsi(x[..., :7, :], y[..., :7, :], subsample=False)
    x, y = pair((1, 2, 32, 32))
    with pytest.raises(ValueError, match="1 \\(gray\\) or 3 \\(RGB\\) channels, got 2"):
        haarpsi(x, y)
    x, y = pair((1, 3, 32, 32))
    with pytest.raises(ValueError, match="convention"):
        haarpsi(x, y, convention="pyiqa")
    with pytest.raises(ValueError, match="color"):
        haarpsi(x, y, color="lab")
    with pytest.raises(ValueError, match="c and alpha"):
        haarpsi(x, y, c=0)
    with pytest.raises(ValueError, match="data_range"):
        haarpsi(x * 2, y)
    with pytest.raises(ValueError, match="reduction"):
        haarpsi(x, y, reduction="max")
    assert haarpsi.lower_is_better is False


def test_reference_backend_matches_native():
    x, y = pair((2, 3, 41, 38))
    torch.testing.assert_close(haarpsi(x, y, reduction="none", backend="reference"), haarpsi(x, y, reduction="none"),
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize("convention", sorted(HAARPSI_CONVENTIONS))
@pytest.mark.parametrize("shape, color", [((2, 3, 41, 38), "yiq_chromatic"), ((2, 3, 41, 38), "yiq"),
                                          ((1, 1, 33, 40), "yiq_chromatic")])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_in_place_path_matches_autograd_path(convention, shape, color, dtype):
    """Without autograd the similarity maps are built in place in preallocated stacks; with it, plain expressions."""
    x, y = pair(shape, dtype=dtype)
    with torch.no_grad():
        fast = haarpsi(x, y, 1.0, "none", convention=convention, color=color)
    slow = haarpsi(x.clone().requires_grad_(True), y, 1.0, "none", convention=convention, color=color).detach()
    torch.testing.assert_close(fast, slow, atol=1e-12 if dtype == torch.float64 else 2e-7, rtol=0)
