"""FSIM / FSIMc: parity with FeatureSIM.m (SPECS §5, §18) and piq, hand-checked MATLAB quirks, autograd, errors."""
import math

import pytest
import torch
import torch.nn.functional as F
import turboiqa
from test_peers import import_piq_module, pair
from turboiqa.metrics.fsim import FSIM, FSIM_CONVENTIONS, chroma_factor, downsample, fsim
from turboiqa.reference.phase_congruency import frequency_range, median_last, phase_congruency

# SPECS §18, order i03, i04, i06, i08, i19 (MATLAB FeatureSIM.m, 4 decimals).
FSIM_MATLAB = [0.6973, 0.9998, 0.9999, 0.9586, 0.8298]
FSIMC_MATLAB = [0.6890, 0.9702, 0.9927, 0.9575, 0.8220]
# i01_01_5 vs I01: piq's test values from the original MATLAB code (5 decimals).
FSIM_I01, FSIMC_I01 = 0.93674, 0.92587
TOL4 = 5.01e-5  # the published values carry 4 decimals
TOL5 = 5.01e-6
BACKENDS = ["native", "reference"] if turboiqa.HAVE_NATIVE else ["reference"]


def as_input(t, kind, device):
    """uint8 as decoded, or float in [0, 1] (float32 / float64)."""
    if kind == "uint8":
        return t.to(device), 255
    return (t.to(torch.float64 if kind == "float64" else torch.float32) / 255).to(device), 1.0


# ---------------------------------------------------------------------------------------------- MATLAB parity


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_matlab_tid_pairs(tid_pairs, kind, device):
    for (dist, ref), want, want_c in zip(tid_pairs, FSIM_MATLAB, FSIMC_MATLAB):
        x, L = as_input(dist, kind, device)
        y, _ = as_input(ref, kind, device)
        assert fsim(x, y, L).item() == pytest.approx(want, abs=TOL4)
        assert fsim(x, y, L, color="yiq_chromatic").item() == pytest.approx(want_c, abs=TOL4)


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_matlab_i01(tid_i01, kind, backend, device):
    x, L = as_input(tid_i01[0], kind, device)
    y, _ = as_input(tid_i01[1], kind, device)
    assert fsim(x, y, L, backend=backend).item() == pytest.approx(FSIM_I01, abs=TOL5)
    assert fsim(x, y, L, color="yiq_chromatic", backend=backend).item() == pytest.approx(FSIMC_I01, abs=TOL5)


def test_batched_equals_one_by_one(tid_pairs):
    dist = torch.cat([d for d, _ in tid_pairs])
    ref = torch.cat([r for _, r in tid_pairs])
    for color, want in (("yiq", FSIM_MATLAB), ("yiq_chromatic", FSIMC_MATLAB)):
        batched = fsim(dist, ref, 255, "none", color=color)
        assert batched.shape == (5,)
        single = torch.stack([fsim(d, r, 255, "none", color=color)[0] for d, r in tid_pairs])
        torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
        assert batched.tolist() == pytest.approx(want, abs=TOL4)
        assert fsim(dist, ref, 255, color=color).item() == pytest.approx(batched.mean().item(), abs=1e-7)
        assert fsim(dist, ref, 255, "sum", color=color).item() == pytest.approx(batched.sum().item(), abs=1e-6)


# ------------------------------------------------------------------------------------------------ piq parity

PIQ_SHAPES = [(2, 3, 181, 179), (1, 3, 200, 256), (2, 1, 96, 130), (1, 3, 400, 390), (1, 3, 700, 640)]


@pytest.mark.parametrize("shape", PIQ_SHAPES)
def test_piq_random(shape):
    piq_fsim = import_piq_module("fsim")
    x, y = pair(shape)
    for color in ("yiq", "yiq_chromatic") if shape[1] == 3 else ("yiq",):
        want = piq_fsim.fsim(x, y, data_range=1.0, reduction="none", chromatic=color == "yiq_chromatic")
        got = fsim(x, y, 1.0, "none", color=color, convention="piq")
        torch.testing.assert_close(got, want, atol=1e-9, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_piq_real_images(tid_pairs, tid_i01, backend):
    piq_fsim = import_piq_module("fsim")
    for dist, ref in [*tid_pairs, tid_i01]:
        x, y = dist.double(), ref.double()
        for color in ("yiq", "yiq_chromatic"):
            want = piq_fsim.fsim(x, y, data_range=255, reduction="none", chromatic=color == "yiq_chromatic")
            got = fsim(x, y, 255, "none", color=color, convention="piq", backend=backend)
            torch.testing.assert_close(got, want, atol=1e-9, rtol=0)


def test_piq_differs_from_matlab_where_specs_say(tid_i01):
    # 640 → MATLAB round(2.5) = 3, Python round(2.5) = 2: the conventions differ markedly there and only slightly
    # (median, epsilon, YIQ decimals, grid transposition at Nyquist) elsewhere.
    x, y = pair((1, 3, 640, 700))
    assert abs(fsim(x, y, convention="piq").item() - fsim(x, y, convention="matlab").item()) > 1e-3
    d, r = tid_i01
    diff = abs(fsim(d, r, 255, convention="piq").item() - fsim(d, r, 255).item())
    assert 0 < diff < 1e-4


# -------------------------------------------------------------------------------------- hand-checked quirks


def test_identical_images_give_one():
    x, _ = pair((2, 3, 67, 90))
    for convention in FSIM_CONVENTIONS:
        for color in ("yiq", "yiq_chromatic"):
            torch.testing.assert_close(fsim(x, x.clone(), 1.0, "none", color=color, convention=convention),
                                       torch.ones(2, dtype=torch.float64), atol=1e-12, rtol=0)
    u8 = (x * 255).round().to(torch.uint8)
    assert fsim(u8, u8, 255, color="yiq_chromatic").item() == pytest.approx(1.0, abs=1e-6)


def test_symmetric_and_gray_fsimc_equals_fsim():
    x, y = pair((1, 3, 80, 70))
    assert fsim(x, y).item() == pytest.approx(fsim(y, x).item(), abs=1e-12)
    fsimc = fsim(x, y, color="yiq_chromatic").item()
    assert fsimc == pytest.approx(fsim(y, x, color="yiq_chromatic").item(), abs=1e-12)
    g, h = x[:, :1], y[:, :1]
    assert fsim(g, h, color="yiq_chromatic").item() == fsim(g, h).item()


def test_data_range_scaling():
    x, y = pair((1, 3, 64, 72))
    assert fsim(x * 255, y * 255, 255).item() == pytest.approx(fsim(x, y, 1.0).item(), abs=1e-12)


def test_median_semantics():
    v = torch.tensor([[4.0, 1.0, 3.0, 2.0], [5.0, 1.0, 9.0, 7.0]])
    assert median_last(v, "matlab").tolist() == [2.5, 6.0]  # MATLAB: mean of the two middle values
    assert median_last(v, "lower").tolist() == torch.median(v, dim=-1).values.tolist()  # piq / torch.median
    odd = torch.tensor([3.0, 1.0, 2.0])
    assert median_last(odd, "matlab").item() == median_last(odd, "lower").item() == 2.0


def test_frequency_grid():
    # phasecong2 divides odd ranges by (n-1), so they reach ±0.5; even ranges are the FFT frequencies.
    assert frequency_range(5).tolist() == [-0.5, -0.25, 0.0, 0.25, 0.5]
    assert frequency_range(4).tolist() == [-0.5, -0.25, 0.0, 0.25]


@pytest.mark.parametrize("f_size", [(2, 512), (3, 640), (4, 1100)])
def test_conv2_same_downsampling(f_size):
    # conv2(x, ones(F)/F², 'same'): the full convolution cropped from index ⌊F/2⌋ (0-based), zeros outside,
    # then x(1:F:end, 1:F:end). Odd sizes on purpose, so the last box runs past the border.
    f, short = f_size
    x = torch.rand(1, 1, short + 1, short + 3, dtype=torch.float64)
    full = F.conv2d(x, torch.full((1, 1, f, f), 1 / f**2, dtype=torch.float64), padding=f - 1)
    h, w = x.shape[-2:]
    want = full[..., f // 2: f // 2 + h, f // 2: f // 2 + w][..., ::f, ::f]
    for backend in BACKENDS:
        torch.testing.assert_close(downsample(x, FSIM_CONVENTIONS["matlab"], backend), want, atol=1e-12, rtol=0)


def test_chroma_power_is_real_part_of_complex_power():
    s = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.0], dtype=torch.float64)
    want = (s.to(torch.complex128) ** 0.03).real  # MATLAB real((S_I.*S_Q).^λ)
    want[2] = 0.0  # 0^λ = 0 (torch's complex pow gives NaN at 0)
    torch.testing.assert_close(chroma_factor(s, "complex_real"), want, atol=1e-15, rtol=0)
    torch.testing.assert_close(chroma_factor(s, "abs"), s.abs() ** 0.03, atol=0, rtol=0)


def test_phase_congruency_range_and_edge():
    # A noisy vertical step edge (the FFT wraps it, so there is a second edge at the border): PC peaks at ≈ 0.8 on
    # the edges and the noise threshold removes it far from them.
    g = torch.Generator().manual_seed(0)
    y = torch.full((1, 1, 128, 128), 60.0, dtype=torch.float64)
    y[..., 64:] = 190.0
    y = y + 3 * torch.randn(y.shape, generator=g, dtype=torch.float64)
    pc = phase_congruency(y)
    assert pc.shape == y.shape
    assert 0 <= pc.min().item() and pc.max().item() <= 1
    profile = pc[0, 0].mean(dim=0)
    assert profile[63:65].min().item() > 0.75 and set(profile.topk(4).indices.tolist()) == {0, 63, 64, 127}
    assert profile[20:44].mean().item() < 0.01


# --------------------------------------------------------------------------------------------------- autograd


@pytest.mark.parametrize("convention", list(FSIM_CONVENTIONS))
@pytest.mark.parametrize("color", ["yiq", "yiq_chromatic"])
def test_gradcheck(convention, color):
    x, y = pair((1, 3, 14, 13))  # odd and even sides
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: fsim(a, y, 1.0, color=color, convention=convention), (x,),
                                    eps=1e-7, atol=1e-6)


def test_gradient_finite_with_flat_regions(device):
    # Flat areas make the gradient magnitude exactly 0: its square root must not turn the gradient into NaN.
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(2, 3, 48, 40, dtype=torch.float64)
    x[..., 10:20, 10:30] = 0.7
    x[..., 30:, :] = torch.rand(2, 3, 18, 40, generator=g, dtype=torch.float64)
    y = x * 0.9 + 0.05
    x = x.to(device).requires_grad_()
    for color in ("yiq", "yiq_chromatic"):
        x.grad = None
        fsim(x, y.to(device), color=color).backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0


def test_gradient_through_downsampling_matches_reference_backend():
    x, y = pair((1, 3, 390, 400))  # F = 2
    grads = []
    for backend in BACKENDS:
        xr = x.clone().requires_grad_()
        fsim(xr, y, color="yiq_chromatic", backend=backend).backward()
        grads.append(xr.grad)
    assert torch.isfinite(grads[0]).all()
    torch.testing.assert_close(grads[0], grads[-1], atol=1e-12, rtol=0)


def test_backward_after_inference_mode():
    # The cached filter bank must not become an inference tensor when a metric is first evaluated without grad.
    x, y = pair((1, 3, 41, 37))
    with torch.inference_mode():
        want = fsim(x, y)
    xr = x.clone().requires_grad_()
    got = fsim(xr, y)
    got.backward()
    assert got.item() == want.item() and torch.isfinite(xr.grad).all()


def test_module_and_loss():
    x, y = pair((2, 3, 50, 60))
    torch.testing.assert_close(FSIM(color="yiq_chromatic")(x, y), fsim(x, y, color="yiq_chromatic"))
    torch.testing.assert_close(FSIM(reduction="none", loss=True)(x, y), 1 - fsim(x, y, reduction="none"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (compares CUDA with the CPU)")
def test_cuda_matches_cpu(tid_i01):
    d, r = tid_i01
    want = fsim(d.double(), r.double(), 255, "none", color="yiq_chromatic")
    got = fsim(d.double().cuda(), r.double().cuda(), 255, "none", color="yiq_chromatic")
    torch.testing.assert_close(got.cpu(), want, atol=1e-10, rtol=0)


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_input():
    x, y = pair((1, 3, 32, 32))
    with pytest.raises(ValueError, match="same shape"):
        fsim(x, y[..., :31])
    with pytest.raises(ValueError, match="1 \\(gray\\) or 3 \\(RGB\\) channels"):
        fsim(x[:, :2], y[:, :2])
    with pytest.raises(ValueError, match="data_range must be 255"):
        fsim((x * 255).to(torch.uint8), (y * 255).to(torch.uint8), 1.0)
    with pytest.raises(ValueError, match="outside"):
        fsim(x * 2, y)
    with pytest.raises(ValueError, match="NaN"):
        fsim(x.clone().fill_(math.nan), y)
    with pytest.raises(ValueError, match="convention"):
        fsim(x, y, convention="pyiqa")
    with pytest.raises(ValueError, match="reduction"):
        fsim(x, y, reduction="max")
    with pytest.raises(ValueError, match="2×2"):
        fsim(x[..., :1, :], y[..., :1, :])
    with pytest.raises(TypeError, match="dtype"):
        fsim(x, y.float())
    with pytest.raises(ValueError, match="noise_median"):
        phase_congruency(x[:, :1], noise_median="mean")


# ---------------------------------------------------------------------------------------------- flat images

def flat_gradient_similarity(a: float, b: float, h: int, w: int, dtype) -> torch.Tensor:
    """Mean of S_GM for two constant 0–255 planes: zero-padded Scharr/16 ('same') only sees the image border."""
    k = torch.tensor([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]], dtype=torch.float64) / 16
    kernels = torch.stack([k, k.t()])[:, None]
    mags = [F.conv2d(torch.full((1, 1, h, w), v, dtype=torch.float64), kernels, padding=1).square().sum(1).sqrt()
            for v in (a, b)]
    return ((2 * mags[0] * mags[1] + 160) / (mags[0] ** 2 + mags[1] ** 2 + 160)).mean().to(dtype)


@pytest.mark.parametrize("convention", ["matlab", "piq"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flat_images_give_a_number(device, convention, dtype):
    """FeatureSIM.m divides 0 by 0 on a flat image (phasecong2's EnergyAll / AnAll, then the PC-weighted mean when
    neither image has any phase congruency): NaN. turboiqa gives PC 0 there and, with all weights 0, the equal-weight
    mean: 1 for identical flat images, the mean gradient similarity (its border) for different ones — the value piq's
    convention (PC = ε/ε = 1 on flat planes) gives too. Every backend, float32 and float64, sizes without and with
    downsampling."""
    atol = 1e-6 if dtype == torch.float32 else 1e-12
    for h, w in ((64, 64), (77, 91), (400, 410)):
        def flat(v, n=2):
            return torch.full((n, 3, h, w), v, dtype=dtype, device=device)

        small = min(h, w) < 384  # no downsampling: the border of the planes as given
        for backend in BACKENDS:
            for color in ("yiq", "yiq_chromatic") if small else ("yiq_chromatic",):
                for v in (0.0, 0.6) if small else (0.6,):
                    same = fsim(flat(v), flat(v), 1.0, "none", color=color, convention=convention, backend=backend)
                    torch.testing.assert_close(same, torch.ones_like(same), rtol=0, atol=atol)
            got = fsim(flat(0.3, 1), flat(0.7, 1), 1.0, "none", convention=convention, backend=backend)
            if small:
                want = flat_gradient_similarity(0.3 * 255, 0.7 * 255, h, w, dtype).to(device)
                torch.testing.assert_close(got, want.reshape(1), rtol=0, atol=10 * atol)
            assert torch.isfinite(got).all() and (got > 0.9).all() and (got < 1).all()


def test_flat_against_textured_and_gradient(device):
    """One flat image (PC 0 everywhere): a finite score, the same on every backend, and a finite gradient for both
    images (FeatureSIM.m: NaN)."""
    g = torch.Generator().manual_seed(5)
    textured = torch.rand(2, 3, 40, 52, generator=g, dtype=torch.float64).to(device)
    for v in (0.0, 0.4):
        flat = torch.full_like(textured, v)
        scores = []
        for backend in BACKENDS:
            a, b = flat.clone().requires_grad_(), textured.clone().requires_grad_()
            s = fsim(a, b, 1.0, "none", color="yiq_chromatic", backend=backend)
            s.sum().backward()
            assert torch.isfinite(s).all() and ((s > 0) & (s <= 1)).all()
            assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
            scores.append(s.detach())
        for s in scores[1:]:
            torch.testing.assert_close(s, scores[0], rtol=1e-10, atol=1e-12)
    a = torch.full((1, 1, 24, 26), 0.5, dtype=torch.float64, device=device, requires_grad=True)
    fsim(a, torch.full_like(a, 0.2)).backward()
    assert torch.isfinite(a.grad).all()


def test_flat_identical_matches_piq():
    """piq gives exactly 1 for identical flat images (its ε/ε phase congruency), as turboiqa's piq convention does."""
    piq_fsim = import_piq_module("fsim")
    for v in (0.0, 0.5):
        x = torch.full((1, 3, 64, 80), v)
        want = piq_fsim.fsim(x, x.clone(), data_range=1.0, reduction="none", chromatic=True)
        torch.testing.assert_close(fsim(x, x.clone(), 1.0, "none", color="yiq_chromatic", convention="piq"), want)
