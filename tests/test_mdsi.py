"""MDSI: MATLAB MDSI.m values (i01_01_5, 'sum' and 'mult'), parity with piq and frame-analytics, the complex
pooling by hand, argument order, batches, dtypes, autograd and errors."""
import cmath
import math
import warnings

import pytest
import torch
from conftest import import_or_skip, skip_missing
from grad_common import as_input, reference_values, smooth_pair, tid_pair
from peer_stubs import import_piq_module
from turboiqa.metrics.mdsi import MDSI, MDSI_CONVENTIONS, mdsi

pytestmark = pytest.mark.usefixtures("one_thread")


def piq_mdsi():
    module = import_piq_module("mdsi")
    if module is None:
        skip_missing("piq not installed")
    return module


def frame_analytics():
    fa = import_or_skip("frame_analytics")
    fa.functional.set_compile_enabled(False)  # eager: the same formulas without compile time
    return fa


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
@pytest.mark.parametrize("combination", ["sum", "mult"])
def test_matlab_values(kind, combination):
    """MDSI.m(Ref=I01, Dist=i01_01_5) is mdsi(distorted, reference)."""
    want = reference_values(f"mdsi_{combination}")["i01_01_5.bmp"]
    x, y = tid_pair("i01_01_5.bmp")
    x, L = as_input(x, kind)
    y, _ = as_input(y, kind)
    tol = 1e-12 if kind == "float64" else 5e-8  # float32 (and uint8, computed in float32): ~2e-8
    assert mdsi(x, y, L, combination=combination).item() == pytest.approx(want, abs=tol)
    # the fused-image terms make MDSI depend on the argument order: swapped, the value misses by > 1e-2
    assert abs(mdsi(y, x, L, combination=combination).item() - want) > 1e-2


@pytest.mark.parametrize("shape", [(2, 3, 61, 67), (1, 3, 300, 280), (1, 1, 40, 52)])
@pytest.mark.parametrize("combination", ["sum", "mult"])
def test_piq(shape, combination):
    piq = piq_mdsi()
    x, y = smooth_pair(shape, noise=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # piq warns about gray input
        want = piq.mdsi(x, y, data_range=1.0, reduction="none", combination=combination)
    torch.testing.assert_close(mdsi(x, y, 1.0, "none", combination=combination, convention="piq"), want,
                               atol=1e-12, rtol=0)


def test_piq_real_image_and_where_mult_differs():
    piq = piq_mdsi()
    x, y = tid_pair("i01_01_5.bmp")
    x, y = x.double(), y.double()
    for combination in ("sum", "mult"):
        torch.testing.assert_close(mdsi(x, y, 255, combination=combination, convention="piq"),
                                   piq.mdsi(x, y, data_range=255, combination=combination), atol=1e-12, rtol=0)
    # strong noise makes GS negative in places: piq's 'mult' (Re·Re, Im + Im) then leaves MATLAB's complex product
    a, b = smooth_pair((1, 3, 64, 64), noise=0.6)
    assert abs(mdsi(a, b, combination="mult").item() - piq.mdsi(a, b, combination="mult").item()) > 1e-4
    torch.testing.assert_close(mdsi(a, b, combination="sum"), piq.mdsi(a, b, combination="sum"), atol=1e-12, rtol=0)


@pytest.mark.parametrize("combination", ["sum", "mult"])
def test_frame_analytics(combination):
    fa = frame_analytics()
    x, y = smooth_pair((2, 3, 61, 67), seed=2, noise=0.3)
    want = fa.mdsi(x, y, data_range=1.0, reduction="none", combination=combination)
    # frame-analytics scales its LHM rows by 255/L before the product (a different rounding): ~1e-10
    torch.testing.assert_close(mdsi(x, y, 1.0, "none", combination=combination, convention="frame_analytics"), want,
                               atol=2e-9, rtol=0)


def test_rounding_of_the_downsampling_factor():
    """min side 640: MATLAB round(2.5) = 3, Python round(2.5) = 2 (piq, frame-analytics)."""
    x, y = smooth_pair((1, 3, 640, 650), noise=0.2, dtype=torch.float32)
    a, b = mdsi(x, y, convention="matlab"), mdsi(x, y, convention="frame_analytics")
    assert abs(a.item() - b.item()) > 1e-4
    torch.testing.assert_close(mdsi(x, y, convention="piq"), b, atol=1e-6, rtol=0)


def test_pooling_by_hand():
    """mean |GCS^¼ − mean GCS^¼| ^ ¼ with the principal complex root where GCS < 0 (MATLAB (GCS.^0.5).^0.5)."""
    y = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = y.clone()
    x[..., 1:8, 2:10] = 0.5  # a flat patch where the reference has strong edges: GS < 0 there
    L = lambda t: 255 * (0.2989 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2])  # noqa: E731
    H = lambda t: 255 * (0.30 * t[:, 0] + 0.04 * t[:, 1] - 0.35 * t[:, 2])  # noqa: E731
    M = lambda t: 255 * (0.34 * t[:, 0] - 0.60 * t[:, 1] + 0.17 * t[:, 2])  # noqa: E731
    k = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64) / 3
    bank = torch.stack([k, k.t()])[:, None]

    def mag(img):
        g = torch.nn.functional.conv2d(img[:, None], bank, padding=1)
        return g.square().sum(1).sqrt()

    gd, gr, gf = mag(L(x)), mag(L(y)), mag((L(x) + L(y)) / 2)
    sim = lambda a, b, c: (2 * a * b + c) / (a * a + b * b + c)  # noqa: E731
    gs = sim(gd, gr, 140) + sim(gd, gf, 55) - sim(gr, gf, 55)
    cs = (2 * (H(x) * H(y) + M(x) * M(y)) + 550) / (H(x) ** 2 + H(y) ** 2 + M(x) ** 2 + M(y) ** 2 + 550)
    for combination in ("sum", "mult"):
        if combination == "sum":
            gcs = [complex(v) for v in (0.6 * gs + 0.4 * cs).flatten().tolist()]
        else:
            gcs = [complex(a) ** 0.2 * complex(b) ** 0.1 for a, b in zip(gs.flatten().tolist(), cs.flatten().tolist())]
        z = [cmath.sqrt(cmath.sqrt(v)) for v in gcs]
        mean = sum(z) / len(z)
        want = (sum(abs(v - mean) for v in z) / len(z)) ** 0.25
        assert mdsi(x, y, combination=combination).item() == pytest.approx(want, abs=1e-12)
    assert (gs < 0).any()  # the complex branch was exercised


def test_identical_and_gray():
    x, y = smooth_pair((2, 3, 40, 44))
    for convention in MDSI_CONVENTIONS:
        assert mdsi(y, y, convention=convention).item() == pytest.approx(0.0, abs=1e-12)
    gray_x, gray_y = x[:, :1], y[:, :1]
    torch.testing.assert_close(mdsi(gray_x, gray_y), mdsi(gray_x.expand(-1, 3, -1, -1), gray_y.expand(-1, 3, -1, -1)))


def test_uint8_batch_and_sizes(device):
    x, y = smooth_pair((3, 3, 37, 45), noise=0.2)
    x8, y8 = (x * 255).round().to(torch.uint8), (y * 255).round().to(torch.uint8)
    assert mdsi(x8, y8, 255).item() == pytest.approx(mdsi(x8.double() / 255, y8.double() / 255).item(), abs=1e-6)
    x, y = x.to(device), y.to(device)
    for combination in ("sum", "mult"):
        batched = mdsi(x, y, 1.0, "none", combination=combination)
        single = torch.cat([mdsi(x[i:i + 1], y[i:i + 1], 1.0, "none", combination=combination) for i in range(3)])
        torch.testing.assert_close(batched, single, atol=1e-12, rtol=0)
        assert mdsi(x, y, 1.0, "sum", combination=combination).item() == pytest.approx(batched.sum().item())
    assert mdsi(x[..., :2, :3], y[..., :2, :3]).isfinite()  # the smallest image


@pytest.mark.parametrize("combination", ["sum", "mult"])
def test_gradcheck(combination):
    x, y = smooth_pair((1, 3, 9, 10), noise=0.4)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: mdsi(a, y, combination=combination), (x,), eps=1e-6, atol=1e-5)


def test_gradient_finite_on_flat_regions():
    y = torch.full((1, 3, 24, 24), 0.5, dtype=torch.float64)
    x = y.clone()
    x[..., 8:16, 8:16] = 0.8
    x.requires_grad_(True)
    mdsi(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_module_and_errors():
    x, y = smooth_pair((1, 3, 30, 30))
    torch.testing.assert_close(MDSI(combination="mult")(x, y), mdsi(x, y, combination="mult"))
    torch.testing.assert_close(MDSI(1.0, "none", convention="piq")(x, y), mdsi(x, y, 1.0, "none", convention="piq"))
    assert mdsi.lower_is_better
    with pytest.raises(ValueError, match="combination"):
        mdsi(x, y, combination="prod")
    with pytest.raises(ValueError, match="convention"):
        mdsi(x, y, convention="pyiqa")
    with pytest.raises(ValueError, match="channels"):
        mdsi(x[:, :2], y[:, :2])
    with pytest.raises(ValueError, match="at least 2"):
        mdsi(x[..., :1, :], y[..., :1, :])
    with pytest.raises(ValueError, match="rho"):
        mdsi(x, y, rho=0)
    with pytest.raises(ValueError, match="outside"):
        mdsi(x, y * 300, 255.0 / 300)
    with pytest.raises(TypeError, match="combinaton"):
        MDSI(combinaton="sum")
    assert math.isfinite(mdsi(x, y, rho=2.0).item())


@pytest.mark.parametrize("convention", sorted(MDSI_CONVENTIONS))
@pytest.mark.parametrize("combination", ["sum", "mult"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_in_place_path_matches_autograd_path(convention, combination, dtype):
    """Without autograd MDSI runs in place (halved CS, no polar form when nothing is negative, float64 deviations
    without a copy); with it, the plain expressions. Both give one value (noise 0.6: some negative GCS/CS too)."""
    for noise in (0.1, 0.6):
        x, y = (t.to(dtype) for t in smooth_pair((2, 3, 40, 52), noise=noise))
        with torch.no_grad():
            fast = mdsi(x, y, 1.0, "none", convention=convention, combination=combination)
        slow = mdsi(x.clone().requires_grad_(True), y, 1.0, "none", convention=convention,
                    combination=combination).detach()
        torch.testing.assert_close(fast, slow, atol=1e-12 if dtype == torch.float64 else 2e-7, rtol=0)
