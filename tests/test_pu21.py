"""PU21 encoding (turboiqa.metrics.pu21) against cvvdp 0.5.7's PU class, and the PU21-wrapped metrics."""
from __future__ import annotations

import math

import pytest
import torch

from turboiqa.display import named_display
from turboiqa.metrics.pu21 import (PU21_PARAMETERS, PU21PSNR, PU21SSIM, pu21, pu21_decode, pu21_encode, pu21_psnr,
                                   pu21_ssim)
from turboiqa.metrics.psnr import psnr
from turboiqa.metrics.ssim import ssim

import cvvdp_peer

LUM = torch.logspace(math.log10(0.005), 4, 2001, dtype=torch.float64)


@pytest.fixture(scope="module")
def pycvvdp():
    mod = cvvdp_peer.import_pycvvdp()
    if mod is None:
        from conftest import skip_missing
        skip_missing("cvvdp (pycvvdp) is not installed")
    return mod


@pytest.mark.parametrize("pu_type", sorted(PU21_PARAMETERS))
def test_round_trip(pu_type):
    back = pu21_decode(pu21_encode(LUM, pu_type), pu_type)
    assert torch.allclose(back, LUM, rtol=1e-9, atol=0)


def test_clipping_and_monotonic():
    v = pu21_encode(torch.tensor([0.0, 0.001, 0.005, 100.0, 1e4, 1e6], dtype=torch.float64))
    assert v[0] == v[1] == v[2] and v[4] == v[5]
    assert torch.all(torch.diff(pu21_encode(LUM)) > 0)
    assert abs(float(v[3]) - 256.38) < 0.01  # PU(100 cd/m²) ≈ 256 for banding_glare (the paper's SDR anchor)


@pytest.mark.parametrize("pu_type", sorted(PU21_PARAMETERS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equals_cvvdp_pu(pycvvdp, pu_type, dtype):
    from pycvvdp.utils import PU

    ref = PU(type=pu_type)
    lum = LUM.to(dtype)
    enc_ref, enc = ref.encode(lum), pu21_encode(lum, pu_type)
    assert enc.dtype == dtype
    tol = 1e-6 if dtype == torch.float64 else 1e-6 * 600
    assert (enc - enc_ref).abs().max() <= tol
    dec_ref, dec = ref.decode(enc_ref), pu21_decode(enc_ref, pu_type)
    assert ((dec - dec_ref).abs() / dec_ref).max() <= (1e-9 if dtype == torch.float64 else 1e-5)


def test_bad_type():
    with pytest.raises(ValueError, match="pu_type"):
        pu21_encode(LUM, "nope")


def test_pu21_psnr_by_hand():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 16, 20, generator=g, dtype=torch.float64), torch.rand(2, 3, 16, 20, generator=g,
                                                                                 dtype=torch.float64)
    d = named_display("standard_fhd").photometry
    w = torch.tensor(d.luminance_weights(), dtype=torch.float64).view(1, 3, 1, 1)

    def lum(v):  # sRGB display model written out: 200 nit, 1000:1, 250 lux, k_refl 0.005
        lin = torch.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
        return ((200 - 0.2) * lin + 0.2 + 250 / math.pi * 0.005) * w

    px, py = pu21_encode(lum(x).sum(1)), pu21_encode(lum(y).sum(1))
    want = 20 * torch.log10(pu21_encode(100.0) / (px - py).square().flatten(1).mean(1).sqrt())
    got = pu21_psnr(x, y, reduction="none", display="standard_fhd")
    assert torch.allclose(got, want, rtol=0, atol=1e-10)
    assert torch.isinf(pu21_psnr(x, x, reduction="none")).all()


def test_pu21_psnr_equals_cvvdp(pycvvdp, tid_pairs):
    for display in ("standard_4k", "standard_fhd"):
        # cvvdp 0.5.7's vq_metric (a circular import) misses vvdp_display_photometry and video_source_array:
        # build both here and call predict_video_source
        from pycvvdp.video_source import video_source_array

        photo = pycvvdp.vvdp_display_photometry.load(display, [])
        met = pycvvdp.pu_psnr_y(display_photometry=photo, device=torch.device("cpu"))
        for dist, ref in tid_pairs[:2]:
            source = video_source_array(dist, ref, 0, dim_order="BCHW", display_photometry=photo)
            want = float(met.predict_video_source(source)[0])
            got = float(pu21_psnr(dist, ref, 255, display=display))
            assert abs(got - want) < 1e-4, (display, got, want)


def test_pu21_psnr_hdr_linear():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64) * 1400 + 1
    x = y * 1.05
    got = pu21_psnr(x, y, display="standard_hdr_linear")
    # linear display: clip to [max(0.005, black), peak] then add reflected light (10 lux)
    d = named_display("standard_hdr_linear").photometry
    w = torch.tensor(d.luminance_weights(), dtype=torch.float64).view(1, 3, 1, 1)
    lx = (x.clamp(max(0.005, d.black), d.peak) + d.reflected) * w
    ly = (y.clamp(max(0.005, d.black), d.peak) + d.reflected) * w
    mse = (pu21_encode(lx.sum(1)) - pu21_encode(ly.sum(1))).square().mean()
    assert abs(float(got) - float(20 * torch.log10(pu21_encode(100.0) / mse.sqrt()))) < 1e-10
    with pytest.raises(ValueError, match="x must hold finite luminance"):
        pu21_psnr(-x, y, display="standard_hdr_linear")


def test_pu21_ssim_by_hand(tid_pairs):
    dist, ref = tid_pairs[0]
    d = named_display("standard_4k").photometry
    w = torch.tensor(d.luminance_weights()).view(1, 3, 1, 1)

    def enc(v):
        lin = d.forward(v.float() / 255)
        return pu21_encode((lin * w).sum(1, keepdim=True)) / pu21_encode(d.peak + d.reflected)

    want = ssim(enc(dist), enc(ref), 1.0)
    got = pu21_ssim(dist, ref, 255)
    assert abs(float(got) - float(want)) < 1e-6
    assert 0.5 < float(got) < 1.0
    assert abs(float(pu21_ssim(ref, ref, 255)) - 1) < 1e-6


def test_wrapper_any_metric_batch_uint8(tid_pairs):
    pairs = tid_pairs[:3]
    dist = torch.cat([d for d, _ in pairs])
    ref = torch.cat([r for _, r in pairs])
    f = pu21(psnr, display="standard_fhd", color="rgb")
    assert f.__name__ == "pu21_psnr"
    batch = f(dist, ref, 255, "none")
    each = torch.cat([f(d, r, 255, "none") for d, r in pairs])
    assert torch.allclose(batch, each, rtol=0, atol=1e-4)
    assert torch.allclose(f(dist.float() / 255, ref.float() / 255, 1.0, "none"), batch, rtol=0, atol=1e-3)


def test_modules_and_gradients():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64)
    assert torch.equal(PU21PSNR(display="standard_fhd")(x, y), pu21_psnr(x, y, display="standard_fhd"))
    assert torch.equal(PU21SSIM()(x, y), pu21_ssim(x, y))
    xs = x.detach()[..., :8, :8].clone().clamp(0.1, 0.9).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: pu21_psnr(a, y[..., :8, :8]), (xs,))


def test_bad_inputs():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="display"):
        pu21_psnr(x, x, display="nope")
    with pytest.raises(ValueError, match="outside"):
        pu21_psnr(x * 2, x)
    with pytest.raises(ValueError, match="color"):
        pu21_psnr(x, x, color="lab")
