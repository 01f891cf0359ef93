"""VIF (vifvec.m, wavelet domain) and VIFp (vifp_mscale.m, pixel domain): the official values of the TID2013 pairs,
parity with piq.vif_p, frame_analytics.vifp and pyiqa's 'vif', batching, uint8, gradients, errors."""
import importlib
import inspect
import re
import sys
import types

import pytest
import torch
import turboiqa.metrics.vif as V
from conftest import import_or_skip, skip_missing
from test_peers import import_piq_module, pair
from turboiqa.metrics.vif import VIF, VIF_CONVENTIONS, VIFP_CONVENTIONS, VIFp, vif, vif_p

pytestmark = pytest.mark.usefixtures("one_thread")

# reference_values.csv: VIF (vifvec.m) of i03_11_5, i04_18_5, i06_18_3, i08_15_3, i19_10_5 (pyiqa's
# results_official.csv, 4 decimals) and VIFp (MATLAB vifp on Y of YIQ, piq's test) of i01_01_5.
VIF_OFFICIAL = [0.0172, 0.9891, 0.9924, 0.9103, 0.1745]
VIFP_I01 = 0.3147
TOL4 = 5.01e-5  # the published values carry 4 decimals (the csv allows 1e-4)


def as_input(t, kind):
    if kind == "uint8":
        return t, 255
    return t.to(torch.float64 if kind == "float64" else torch.float32) / 255, 1.0


def grey_pair(shape=(2, 1, 67, 71), seed=1, dtype=torch.float64):
    return pair(shape, seed, dtype)


# ---------------------------------------------------------------------------------------------- official values


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_vif_official_values(tid_pairs, kind):
    x = torch.cat([d for d, _ in tid_pairs])
    y = torch.cat([r for _, r in tid_pairs])
    x, L = as_input(x, kind)
    y, _ = as_input(y, kind)
    got = vif(x, y, L, "none")
    assert got.dtype == (torch.float64 if kind == "float64" else torch.float32)
    assert got.tolist() == pytest.approx(VIF_OFFICIAL, abs=TOL4)
    # not symmetric: the reference's GSM field and information are the denominator (vifvec.m(ref, dist))
    assert abs(vif(y[4:], x[4:], L).item() - VIF_OFFICIAL[4]) > 0.01


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_vifp_official_value(tid_i01, kind):
    x, L = as_input(tid_i01[0], kind)
    y, _ = as_input(tid_i01[1], kind)
    assert vif_p(x, y, L).item() == pytest.approx(VIFP_I01, abs=TOL4)
    # not symmetric: the reference's information is the denominator
    assert abs(vif_p(y, x, L).item() - VIFP_I01) > 0.01


# ---------------------------------------------------------------------------------------------- peers


@pytest.mark.parametrize("shape", [(2, 3, 181, 179), (1, 1, 200, 256)])
def test_vifp_matches_piq(shape):
    piq_vif = import_piq_module("vif")
    x, y = pair(shape)
    want = piq_vif.vif_p(x, y, data_range=1.0, reduction="none")
    got = vif_p(x, y, 1.0, "none", convention="piq")
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    # float32: piq's 17×17 conv2d rounds more than the separable passes here (3.3e-6 from float64 against 5e-7)
    got32 = vif_p(x.float(), y.float(), 1.0, "none", convention="piq")
    torch.testing.assert_close(got32.double(), want, atol=1e-6, rtol=0)
    want32 = piq_vif.vif_p(x.float(), y.float(), data_range=1.0, reduction="none")
    torch.testing.assert_close(got32, want32, atol=5e-6, rtol=0)


def test_vifp_matches_piq_on_tid(tid_i01):
    piq_vif = import_piq_module("vif")
    x, y = tid_i01[0].double() / 255, tid_i01[1].double() / 255
    torch.testing.assert_close(vif_p(x, y, convention="piq"), piq_vif.vif_p(x, y), atol=1e-12, rtol=0)
    # piq's ε = 1e-8 against vifp_mscale.m's 1e-10: no visible effect on a real image
    assert vif_p(x, y).item() == pytest.approx(vif_p(x, y, convention="piq").item(), abs=1e-8)


@pytest.fixture(scope="module")
def fav():
    """frame_analytics.vifp, eager: its first call otherwise spends seconds trying torch.compile (same numbers)."""
    module = importlib.import_module(import_or_skip("frame_analytics").__name__ + ".vifp")
    functional = importlib.import_module("frame_analytics.functional")
    saved = functional._COMPILE_ENABLED
    module.set_compile_enabled(False)
    yield module
    module.set_compile_enabled(saved)


@pytest.mark.parametrize("shape", [(2, 3, 101, 87), (1, 1, 120, 96)])
def test_vifp_matches_frame_analytics(fav, shape):
    """frame_analytics.vifp takes (reference, distorted); luma=True is the YIQ luma, luma=None pools channels."""
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x, y = pair(shape, dtype=dtype)
        for luma, color in (((True, "yiq"), (None, "per_channel")) if shape[1] == 3 else ((None, "yiq"),)):
            want = fav.vifp(y, x, data_range=1.0, luma=luma, reduction="none")
            got = vif_p(x, y, 1.0, "none", convention="frame_analytics", color=color)
            torch.testing.assert_close(got.double(), want.double(), atol=tol, rtol=0)
        # identical images score exactly 1 there
        assert vif_p(x, x, 1.0, "none", convention="frame_analytics").tolist() == [1.0] * shape[0]


def test_vifp_frame_analytics_on_tid(fav, tid_i01):
    x, y = tid_i01[0].double() / 255, tid_i01[1].double() / 255
    want = fav.vifp(y, x, data_range=1.0, luma=True)
    torch.testing.assert_close(vif_p(x, y, convention="frame_analytics").double(), want.double(), atol=1e-12, rtol=0)
    # float32: frame-analytics' relative floor 1e-5·E[y²] is large enough to move the score by 1.5e-3
    xf, yf = x.float(), y.float()
    want = fav.vifp(yf, xf, data_range=1.0, luma=True).item()
    assert vif_p(xf, yf, convention="frame_analytics").item() == pytest.approx(want, abs=1e-5)
    assert abs(want - VIFP_I01) > 1e-3


def pyiqa_vif_module():
    from peer_stubs import import_pyiqa_arch

    module = import_pyiqa_arch("vif_arch")
    if module is None:
        skip_missing("pyiqa not installed (pip install --no-deps pyiqa==0.1.16)")
    return module


@pytest.fixture(scope="module")
def pyiqa_vif64():
    """pyiqa's VIF arch with its filters cast to the input dtype instead of float32 (its only float32 pin), so the
    peer runs in float64 and the comparison is not drowned in its float32 round-off."""
    module = pyiqa_vif_module()
    source, count = re.subn(r"torch\.from_numpy\(filt\)\s*\.float\(\)", "torch.from_numpy(filt).to(image.dtype)",
                            inspect.getsource(module))
    assert count == 2, "pyiqa's vif_arch changed: update the float64 rewrite"
    copy = types.ModuleType("pyiqa_vif_arch_float64")
    copy.__dict__["__name__"] = "pyiqa_vif_arch_float64"
    registry = sys.modules["pyiqa.utils.registry"].ARCH_REGISTRY
    saved = registry.register
    registry.register = lambda *a, **k: (lambda cls: cls)  # the copy must not re-register 'VIF'
    try:
        exec(compile(source, "pyiqa_vif_arch_float64", "exec"), copy.__dict__)
    finally:
        registry.register = saved
    return copy


def test_vif_matches_pyiqa_float64(pyiqa_vif64, tid_pairs):
    x = torch.cat([d for d, _ in tid_pairs]).double()[..., 96:240, 128:320] / 255  # crops: float64 pyiqa is slow
    y = torch.cat([r for _, r in tid_pairs]).double()[..., 96:240, 128:320] / 255
    want = torch.stack([pyiqa_vif64.VIF()(x[i:i + 1], y[i:i + 1])[0] for i in range(len(x))])
    got = vif(x, y, 1.0, "none", convention="pyiqa")
    torch.testing.assert_close(got, want, atol=1e-9, rtol=0)
    # 'matlab' differs only where pyiqa's float32-rounded luma coefficients round a luma the other way
    # (its tol 1e-12 and the 1e-12 in the denominator are invisible here)
    torch.testing.assert_close(vif(x, y, 1.0, "none"), want, atol=1e-5, rtol=0)


def test_vif_matches_pyiqa_random(pyiqa_vif64):
    x, y = pair((2, 3, 96, 112))
    want = pyiqa_vif64.VIF()(x, y)
    torch.testing.assert_close(vif(x, y, 1.0, "none", convention="pyiqa"), want, atol=1e-9, rtol=0)


def test_vif_pyiqa_float32(tid_pairs):
    """pyiqa itself (float32 only): its 9×9 block covariance is accumulated in float32, which moves VIF by up to
    4e-4 (i19_10_5) from the float64 value; here it is accumulated in float64 (see gsm_field)."""
    module = pyiqa_vif_module()
    for i in (0, 3, 4):  # i03, i08, i19: the largest float32 deviations
        (d, r), official = tid_pairs[i], VIF_OFFICIAL[i]
        x, y = d.float() / 255, r.float() / 255
        want = module.VIF()(x, y).item()
        got = vif(x, y, convention="pyiqa").item()
        assert got == pytest.approx(want, abs=5e-4)
        assert got == pytest.approx(official, abs=TOL4)


# ---------------------------------------------------------------------------------------------- properties


def test_batch_equals_one_by_one_and_uint8(tid_pairs):
    dist = torch.cat([d for d, _ in tid_pairs[:3]])[..., :120, :150]
    ref = torch.cat([r for _, r in tid_pairs[:3]])[..., :120, :150]
    # vif: the same 8-bit levels from uint8 and float input, hence the same numbers; vif_p: float32 round-off of the
    # luma and of σd² − g·σxy (nearly cancelling for the slight i06 saturation change) is 1e-5 to 3e-5 there
    for fn, tol in ((vif, 1e-5), (vif_p, 5e-5)):
        batched = fn(dist, ref, 255, "none")
        single = torch.cat([fn(d[None], r[None], 255, "none") for d, r in zip(dist, ref)])
        torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
        as_float = fn(dist.float() / 255, ref.float() / 255, 1.0, "none")
        torch.testing.assert_close(batched, as_float, atol=tol, rtol=0)
        as_double = fn(dist.double() / 255, ref.double() / 255, 1.0, "none")
        torch.testing.assert_close(batched.double(), as_double, atol=tol, rtol=0)
        assert fn(dist, ref, 255).item() == pytest.approx(batched.mean().item(), abs=1e-7)
        assert fn(dist, ref, 255, "sum").item() == pytest.approx(batched.sum().item(), abs=1e-6)
    # pyiqa's route for uint8: float32 [0, 1] first, so the same luma levels and the same numbers
    torch.testing.assert_close(vif(dist, ref, 255, "none", convention="pyiqa"),
                               vif(dist.float() / 255, ref.float() / 255, 1.0, "none", convention="pyiqa"),
                               atol=0, rtol=0)


@pytest.mark.parametrize("shape", [(1, 3, 97, 131), (2, 1, 66, 65), (1, 3, 41, 45)])
def test_odd_sizes_and_identity(shape):
    x, y = pair(shape)
    for fn in (vif, vif_p):
        if min(shape[-2:]) < (V.vif_min_side() if fn is vif else V.vifp_min_side()):
            continue
        score = fn(x, y, 1.0, "none")
        assert score.shape == (shape[0],) and torch.isfinite(score).all() and (score > 0).all() and (score < 1).all()
        torch.testing.assert_close(fn(y, y, 1.0, "none"), torch.ones(shape[0], dtype=torch.float64), atol=1e-6,
                                   rtol=0)


def test_min_sizes():
    assert V.vifp_min_side() == 41  # piq's check
    n = V.vif_min_side()
    x, y = pair((1, 1, n, n))
    assert torch.isfinite(vif(x, y)).all()
    with pytest.raises(ValueError, match=f"at least {n}×{n}"):
        vif(x[..., :-1, :], y[..., :-1, :])
    x, y = pair((1, 3, 41, 41))
    assert torch.isfinite(vif_p(x, y)).all()
    with pytest.raises(ValueError, match="x and y are 40×41; VIFp needs at least 41×41"):
        vif_p(x[..., 1:, :], y[..., 1:, :])


def test_contrast_enhancement_exceeds_one():
    _, y = pair((1, 1, 96, 96))
    x = (0.5 + 1.3 * (y - 0.5)).clamp(0, 1)
    assert vif_p(x, y).item() > 1
    assert vif(x, y).item() > 1


def directional_check(fn, x, y, **kwargs):
    """Autograd against a central difference along a random direction (gradcheck's full Jacobian would need a
    call per pixel)."""
    x = x.clone().requires_grad_(True)
    fn(x, y, **kwargs).backward()
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    h = 1e-6
    with torch.no_grad():
        fd = (fn(x + h * v, y, **kwargs) - fn(x - h * v, y, **kwargs)) / (2 * h)
    assert torch.isfinite(x.grad).all()
    assert (x.grad * v).sum().item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-8)


def test_vifp_gradient():
    x, y = grey_pair((1, 1, 48, 52))
    directional_check(vif_p, x, y)
    directional_check(vif_p, x, y, convention="piq")
    x, y = pair((1, 3, 45, 45))
    directional_check(vif_p, x, y)


def test_vif_gradient(monkeypatch):
    # the luma is rounded to 0–255 integers (straight-through gradient, checked below): no finite difference across
    # that step, so the rest of the pipeline is checked on the unrounded luma
    x, y = pair((1, 3, 72, 76))
    for convention in VIF_CONVENTIONS:
        conv = VIF_CONVENTIONS[convention]
        xs = x.clone().requires_grad_(True)
        V.vif_luma(xs, 1.0, torch.float64, conv).sum().backward()
        xu = x.clone().requires_grad_(True)
        V.luma_255(xu, 1.0, torch.float64).sum().backward()
        torch.testing.assert_close(xs.grad, xu.grad)
    monkeypatch.setattr(V, "vif_luma", lambda t, data_range, dtype, conv: V.luma_255(t, data_range, dtype))
    directional_check(vif, x, y)
    x, y = grey_pair((1, 1, 72, 76))
    directional_check(vif, x, y)


def test_module_equals_functional():
    x, y = pair((2, 3, 72, 80))
    for module, fn in ((VIF, vif), (VIFp, vif_p)):
        assert module(reduction="none")(x, y).tolist() == fn(x, y, reduction="none").tolist()
        torch.testing.assert_close(module(loss=True)(x, y), 1 - fn(x, y))
    assert VIFp(convention="piq", color="per_channel")(x, y).item() == vif_p(x, y, convention="piq",
                                                                             color="per_channel").item()
    with pytest.raises(TypeError, match="unexpected argument 'color'"):
        VIF(color="yiq")


def test_direction_and_conventions():
    assert vif.lower_is_better is False and vif_p.lower_is_better is False
    assert set(VIF_CONVENTIONS) == {"matlab", "pyiqa"}
    assert set(VIFP_CONVENTIONS) == {"matlab", "piq", "frame_analytics"}


def test_bad_inputs():
    x, y = pair((1, 3, 80, 80))
    with pytest.raises(ValueError, match="convention"):
        vif(x, y, convention="piq")
    with pytest.raises(ValueError, match="convention"):
        vif_p(x, y, convention="pyiqa")
    with pytest.raises(ValueError, match="color"):
        vif_p(x, y, color="rgb2gray")
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\) channels, got 2"):
        vif(x[:, :2], y[:, :2])
    with pytest.raises(ValueError, match="sigma_n_sq"):
        vif_p(x, y, sigma_n_sq=0)
    with pytest.raises(ValueError, match="sigma_nsq"):
        vif(x, y, sigma_nsq=-1)
    with pytest.raises(ValueError, match="reduction"):
        vif(x, y, reduction="max")
    with pytest.raises(ValueError):
        vif_p(x, y[..., :-1])
    with pytest.raises(ValueError):
        vif(x * 2, y)  # outside [0, data_range]



@pytest.mark.parametrize("shape", [(2, 9, 12), (1, 40, 33), (3, 61, 47)])
def test_block_covariance_matches_unfold(shape):
    """The 13-offset covariance against refparams_vecgsm's literal form: all overlapping blocks, centred, CᵀC/L."""
    y = torch.randn(shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 3
    blocks = torch.nn.functional.unfold(y[:, None], 3)
    centred = blocks - blocks.mean(dim=2, keepdim=True)
    want = centred @ centred.transpose(1, 2) / blocks.shape[2]
    torch.testing.assert_close(V.block_covariance(y), want, atol=1e-13, rtol=0)


def test_separable_sp5_kernels():
    """The separable terms rebuild each sp5 kernel (rank 3, 3, 3, 5)."""
    for name, rank in (("lo0", 3), ("band0", 3), ("band3", 3), ("lo", 5)):
        terms = V.separable_terms(name)
        assert len(terms) == rank
        rebuilt = sum(torch.outer(torch.tensor(v, dtype=torch.float64), torch.tensor(h, dtype=torch.float64))
                      for v, h in terms)
        torch.testing.assert_close(rebuilt, V.sp5_filters()[name], atol=1e-15, rtol=0)


def test_sp5_filters_match_pyiqa():
    """The transcribed quadrants against pyiqa's full sp5_filters tables (MATLAB column-major band layout)."""
    sp5 = pyiqa_vif_module().sp5_filters()
    ours = V.sp5_filters()
    as_t = lambda a: torch.from_numpy(a.copy()).double()  # noqa: E731
    torch.testing.assert_close(ours["lo0"], as_t(sp5["lo0filt"]), atol=0, rtol=0)
    torch.testing.assert_close(ours["lo"], as_t(sp5["lofilt"]), atol=1e-17, rtol=0)
    for b in (0, 3):
        torch.testing.assert_close(ours[f"band{b}"], as_t(sp5["bfilts"][:, b].reshape(7, 7).T), atol=0, rtol=0)


def test_flat_reference(fav):
    """A flat reference carries no information: 0/0 under the originals (NaN, as vifp_mscale.m / vifvec.m); the
    peers' guards give their own numbers, reproduced under their conventions."""
    flat = torch.full((1, 3, 80, 80), 0.5, dtype=torch.float64)
    noise = torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.isnan(vif_p(noise, flat)).all() and torch.isnan(vif(noise, flat)).all()
    piq_vif = import_piq_module("vif")
    for x in (flat, noise):
        assert vif_p(x, flat, convention="piq").item() == piq_vif.vif_p(x, flat).item()
        assert vif_p(x, flat, convention="frame_analytics").item() == fav.vifp(flat, x, data_range=1.0,
                                                                                 luma=True).item()
        want = pyiqa_vif_module().VIF()(x.float(), flat.float()).item()
        assert vif(x.float(), flat.float(), convention="pyiqa").item() == want
