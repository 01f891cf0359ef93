"""ColorVideoVDP for images (turboiqa.metrics.cvvdp) against the cvvdp 0.5.7 package (pycvvdp)."""
from __future__ import annotations

import pytest
import torch

import cvvdp_peer
from turboiqa.display import named_display, resolve_display
from turboiqa.metrics.cvvdp import CVVDP, band_frequencies, cvvdp, cvvdp_per_band
from turboiqa.display import pq_inverse_eotf

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pycvvdp():
    mod = cvvdp_peer.import_pycvvdp()
    if mod is None:
        from conftest import skip_missing
        skip_missing("cvvdp (pycvvdp) is not installed")
    return mod


@pytest.fixture(scope="module")
def peer(pycvvdp):
    made = {}

    def get(display):
        if display not in made:
            made[display] = pycvvdp.cvvdp(display_name=display, device=torch.device("cpu"), quiet=True)
        return made[display]

    return get


def peer_jod(peer, display, x, y):
    return peer(display).predict(x, y, dim_order="BCHW")[0].reshape(-1).double()


@pytest.mark.parametrize("display", ["standard_4k", "standard_fhd"])
def test_tid2013_equals_cvvdp(peer, tid_pairs, display):
    dist = torch.cat([d for d, _ in tid_pairs[:3]])
    ref = torch.cat([r for _, r in tid_pairs[:3]])
    want = peer_jod(peer, display, dist, ref)  # uint8 in, as cvvdp reads 8-bit images
    got8 = cvvdp(dist, ref, 255, "none", display=display)
    got32 = cvvdp(dist.float() / 255, ref.float() / 255, 1.0, "none", display=display)
    got64 = cvvdp(dist.double() / 255, ref.double() / 255, 1.0, "none", display=display)
    assert got8.dtype == got32.dtype == torch.float32 and got64.dtype == torch.float64
    for got in (got8, got32, got64):
        assert (got.double() - want).abs().max() < 1e-3, (display, got, want)
    assert (want < 10).all() and (want > 5).all()  # real distortions, not the trivial 10 JOD
    each = torch.cat([cvvdp(d, r, 255, "none", display=display) for d, r in tid_pairs[:3]])
    assert (each - got8).abs().max() < 1e-4  # batch == per image


def test_odd_size_grey_and_random(peer):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 97, 131, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert (cvvdp(x, y, reduction="none") - peer_jod(peer, "standard_4k", x, y)).abs().max() < 1e-3
    xg, yg = x[:, :1], y[:, :1]  # luminance only: cvvdp puts it in all three channels
    assert (cvvdp(xg, yg, reduction="none", display="standard_fhd")
            - peer_jod(peer, "standard_fhd", xg, yg)).abs().max() < 1e-3


def test_hdr_pq_equals_cvvdp(peer):
    g = torch.Generator().manual_seed(4)
    lum = 10 ** (torch.rand(1, 3, 64, 80, generator=g, dtype=torch.float64) * 3.2 - 0.5)  # 0.3 … 500 cd/m²
    ref = pq_inverse_eotf(lum).float()
    dist = pq_inverse_eotf(lum * (1 + 0.2 * torch.randn(lum.shape, generator=g, dtype=torch.float64)).abs()).float()
    want = peer_jod(peer, "standard_hdr_pq", dist, ref)
    assert (cvvdp(dist, ref, reduction="none", display="standard_hdr_pq") - want).abs().max() < 1e-3
    assert named_display("standard_hdr_pq").photometry.transfer == "PQ"


def test_identical_is_ten_and_module():
    x = torch.rand(2, 3, 40, 48)
    assert torch.allclose(cvvdp(x, x, reduction="none"), torch.full((2,), 10.0), atol=1e-5)
    y = (x + 0.1).clamp(0, 1)
    assert torch.equal(CVVDP(display="standard_fhd")(x, y), cvvdp(x, y, display="standard_fhd"))
    assert torch.equal(CVVDP(loss=True)(x, y), 10 - cvvdp(x, y))


def test_gradient_equals_cvvdp(peer):
    g = torch.Generator().manual_seed(5)
    ref = torch.rand(1, 3, 48, 64, generator=g)
    dist = (ref + 0.1 * torch.randn(ref.shape, generator=g)).clamp(0.02, 0.98)
    a = dist.clone().requires_grad_()
    peer("standard_fhd").loss(a, ref, dim_order="BCHW").backward()
    b = dist.double().requires_grad_()
    (10 - cvvdp(b, ref.double(), display="standard_fhd")).backward()
    rel = (a.grad.double() - b.grad).norm() / b.grad.norm()
    assert rel < 1e-3, rel


def test_gradcheck_tiny():
    g = torch.Generator().manual_seed(6)
    ref = torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64) * 0.8 + 0.1
    dist = (ref + 0.05 * torch.randn(ref.shape, generator=g, dtype=torch.float64)).clamp(0.05, 0.95).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: cvvdp(a, ref, display="standard_fhd"), (dist,), atol=1e-6)


def test_display_by_parameters(pycvvdp):
    g = torch.Generator().manual_seed(7)
    x = torch.rand(1, 3, 32, 40, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    named = cvvdp(x, y, display="standard_fhd")
    params = dict(peak=200, contrast=1000, ambient=250, resolution=(1920, 1080), diagonal_inches=24, distance_m=0.6)
    assert torch.equal(cvvdp(x, y, display=params), named)
    ppd = named_display("standard_fhd").geometry.ppd
    assert torch.equal(cvvdp(x, y, display={"ppd": ppd}), cvvdp(x, y, display=dict(ppd=ppd, resolution=(1, 1))))
    custom = dict(peak=1000, contrast=5000, ambient=50, resolution=(2560, 1440), diagonal_inches=27, distance_m=0.5)
    photo = pycvvdp.vvdp_display_photo_eotf(1000, contrast=5000, E_ambient=50)
    geo = pycvvdp.vvdp_display_geometry((2560, 1440), distance_m=0.5, diagonal_size_inches=27)
    met = pycvvdp.cvvdp(display_photometry=photo, display_geometry=geo, device=torch.device("cpu"), quiet=True)
    want = float(met.predict(x, y, dim_order="BCHW")[0])
    assert abs(float(cvvdp(x, y, display=custom)) - want) < 1e-3
    assert abs(float(cvvdp(x, y, display=custom)) - float(named)) > 1e-3
    assert resolve_display("standard_4k", ppd=30).geometry.ppd == 30
    assert len(band_frequencies(1080, 1920, ppd)) == 8
    q, freqs, none = cvvdp_per_band(x, y, display="standard_fhd")
    assert q.shape == (1, 3, len(freqs)) and none is None


@pytest.mark.parametrize("display", ["standard_4k", "standard_fhd"])
def test_heatmap_equals_cvvdp(pycvvdp, tid_pairs, display):
    dist, ref = tid_pairs[1]
    met = pycvvdp.cvvdp(display_name=display, heatmap="raw", device=torch.device("cpu"), quiet=True)
    jod_peer, stats = met.predict(dist, ref, dim_order="BCHW")
    want = stats["heatmap"][:, :, 0].double()  # cvvdp stores it as float16: ~5e-4 relative
    jod, got = cvvdp(dist, ref, 255, "none", display=display, heatmap=True)
    assert got.shape == (1, 1) + tuple(dist.shape[-2:])
    assert abs(float(jod) - float(jod_peer)) < 1e-3
    assert (got.double() - want).abs().max() <= 1e-3 * want.abs().max() + 1e-3
    assert got.max() > 0.05  # a real distortion shows up


def test_bad_inputs():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="display"):
        cvvdp(x, x, display="nope")
    with pytest.raises(ValueError, match="unknown display parameter"):
        cvvdp(x, x, display={"brightness": 3})
    with pytest.raises(ValueError, match="at least 4"):
        cvvdp(x[..., :3, :], x[..., :3, :])
    with pytest.raises(ValueError, match="outside"):
        cvvdp(x * 3, x)
    with pytest.raises(ValueError, match="channels"):
        cvvdp(torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        cvvdp(x, x[..., :8])
