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


# ------------------------------------------------------------------------------------------------------------ video
def peer_video_jod(peer, display, x, y, fps):
    """pycvvdp on a T×C×H×W clip (its dim_order 'FCHW')."""
    return float(peer(display).predict(x, y, dim_order="FCHW", frames_per_second=fps)[0])


def flicker_clip(seed=8, t=12, h=64, w=96):
    """A still reference and a distorted copy with a temporal flicker and moving noise (the transient channel)."""
    g = torch.Generator().manual_seed(seed)
    ref = (torch.rand(1, 3, h, w, generator=g) * 0.8 + 0.1).expand(t, -1, -1, -1).contiguous()
    flick = 0.05 * torch.sin(torch.arange(t, dtype=torch.float32) * 2.0).view(t, 1, 1, 1)
    dist = (ref + flick + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return dist, ref


def read_clip(path, frames=10, crop=(48, 64)):
    """The first ``frames`` RGB frames of a clip, centre-cropped: T×3×h×w float32 in [0, 1]."""
    av = pytest.importorskip("av")
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
            if len(out) == frames:
                break
    v = torch.stack(out).permute(0, 3, 1, 2)
    top, left = (v.shape[-2] - crop[0]) // 2, (v.shape[-1] - crop[1]) // 2
    return v[..., top:top + crop[0], left:left + crop[1]].float() / 255


@pytest.mark.parametrize("fps", [30, 24])
def test_video_flicker_equals_cvvdp(peer, fps):
    dist, ref = flicker_clip()
    want = peer_video_jod(peer, "standard_fhd", dist, ref, fps)
    got32 = cvvdp(dist, ref, display="standard_fhd", fps=fps)
    got64 = cvvdp(dist.double(), ref.double(), display="standard_fhd", fps=fps)
    assert got32.dtype == torch.float32 and got64.dtype == torch.float64
    assert abs(float(got32) - want) < 1e-3 and abs(float(got64) - want) < 1e-3, (fps, got32, got64, want)
    # the temporal channels matter: the per-frame image scores pool to something else
    assert abs(float(cvvdp(dist, ref, display="standard_fhd").mean()) - want) > 0.1


def test_video_fps_matters_and_blocks_stream(peer):
    from turboiqa.metrics.cvvdp import _video_q, temporal_filters
    dist, ref = flicker_clip(seed=9, t=9)
    a, b = cvvdp(dist, ref, display="standard_fhd", fps=30), cvvdp(dist, ref, display="standard_fhd", fps=60)
    assert abs(float(a - b)) > 0.05
    assert abs(float(b) - peer_video_jod(peer, "standard_fhd", dist, ref, 60)) < 1e-3
    assert temporal_filters(30.0).shape == (9, 4) and temporal_filters(60.0).shape == (17, 4)
    disp = resolve_display("standard_fhd")
    whole = _video_q(dist[None], ref[None], 1.0, disp, 30.0)
    streamed = _video_q(dist[None], ref[None], 1.0, disp, 30.0, block_pixels=2 * 64 * 96)  # blocks of 2 frames
    assert torch.allclose(whole, streamed, rtol=1e-5, atol=1e-7)


def test_video_real_clips_equal_cvvdp(peer):
    from conftest import SHARED_DATA, skip_missing_shared_data
    folder = SHARED_DATA / "video"
    if not (folder / "carphone_pristine.mp4").exists():
        skip_missing_shared_data(folder, "the shared video clips")
    ref = read_clip(folder / "carphone_pristine.mp4")
    dist = read_clip(folder / "carphone_distorted.mp4")
    fps = 30000 / 1001
    want = peer_video_jod(peer, "standard_fhd", dist, ref, fps)
    got = cvvdp(dist, ref, display="standard_fhd", fps=fps)
    assert abs(float(got) - want) < 1e-3, (got, want)
    assert want < 9.9  # a real distortion
    # batch of two videos == each alone (uint8 in too)
    d2, r2 = flicker_clip(seed=10, t=10, h=48, w=64)
    batch = cvvdp(torch.stack([dist, d2]), torch.stack([ref, r2]), reduction="none", display="standard_fhd", fps=fps)
    each = torch.stack([got, cvvdp(d2, r2, display="standard_fhd", fps=fps)])
    assert batch.shape == (2,) and torch.allclose(batch, each, atol=1e-5)
    to8 = lambda v: (v * 255).round().to(torch.uint8)  # noqa: E731 — the frames were 8-bit
    assert abs(float(cvvdp(to8(dist), to8(ref), 255, display="standard_fhd", fps=fps)) - float(got)) < 1e-4


def test_video_identical_gradient_and_errors():
    dist, ref = flicker_clip(seed=11, t=6, h=16, w=16)
    assert abs(float(cvvdp(ref, ref, fps=30)) - 10) < 1e-5
    x = dist.double().requires_grad_()
    (10 - cvvdp(x, ref.double(), display="standard_fhd", fps=30)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # one frame with fps is an image (as cvvdp); 4-D without fps stays a batch of images
    assert torch.equal(cvvdp(dist[:1], ref[:1], fps=30), cvvdp(dist[:1], ref[:1]))
    assert cvvdp(dist, ref, reduction="none").shape == (6,)
    with pytest.raises(ValueError, match="fps"):
        cvvdp(dist[None], ref[None])
    with pytest.raises(ValueError, match="fps"):
        cvvdp(dist, ref, fps=0)
    with pytest.raises(ValueError, match="heatmap"):
        cvvdp(dist, ref, fps=30, heatmap=True)
    with pytest.raises(ValueError, match="same shape"):
        cvvdp(dist, ref[:5], fps=30)
    with pytest.raises(ValueError, match="video tensor"):
        cvvdp(dist[0], ref[0], fps=30)
