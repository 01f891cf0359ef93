"""turboiqa.compat.piq against the installed piq 0.8: same values, gradients and exception types over piq's
argument grid, bit-for-bit symmetric SSIM losses, patch() of an imported piq."""
import sys

import pytest
import torch
from peer_stubs import install_torchvision_stub


@pytest.fixture(scope="module")
def piq():
    install_torchvision_stub()  # piq's __init__ imports torchvision.models; the stub builds nothing here
    return pytest.importorskip("piq", reason="piq is not installed (pip install --no-deps piq==0.8.0)")


@pytest.fixture(scope="module")
def tq():
    import turboiqa.compat.piq as tq

    return tq


def pair(shape, dtype=torch.float32, data_range=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.15 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    if dtype == torch.uint8:
        return (x * data_range).round().to(dtype), (y * data_range).round().to(dtype)
    return (x * data_range).to(dtype), (y * data_range).to(dtype)


def close(a, b, dtype, float32_tol=1e-6):
    tol = 1e-12 if dtype == torch.float64 else float32_tol
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for p, q in zip(a, b):
            close(p, q, dtype, float32_tol)
        return
    assert a.shape == b.shape and a.dtype == b.dtype
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)  # PSNR is in dB: relative too


SHAPES = [(2, 3, 64, 80), (1, 1, 181, 190), (3, 3, 300, 257)]
INPUTS = [(torch.float32, 1.0), (torch.float64, 1.0), (torch.float32, 255.0), (torch.uint8, 255.0),
          (torch.uint8, 200.0)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, data_range", INPUTS)
def test_ssim_and_psnr_match_piq(piq, tq, shape, dtype, data_range):
    x, y = pair(shape, dtype, data_range)
    want_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    for kwargs in ({}, {"full": True}, {"downsample": False, "kernel_size": 7, "kernel_sigma": 1.0},
                   {"k1": 0.02, "k2": 0.4, "reduction": "none"}, {"reduction": "sum", "full": True}):
        close(tq.ssim(x, y, data_range=data_range, **kwargs), piq.ssim(x, y, data_range=data_range, **kwargs),
              want_dtype)
    for kwargs in ({}, {"convert_to_greyscale": True, "reduction": "none"}):
        close(tq.psnr(x, y, data_range=data_range, **kwargs), piq.psnr(x, y, data_range=data_range, **kwargs),
              want_dtype)
    if min(shape[-2:]) >= 161:
        weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
        for kwargs in ({}, {"scale_weights": weights, "reduction": "none"}, {"kernel_size": 7, "k2": 0.05}):
            # piq's float32 MS-SSIM is itself up to ~8e-6 from its float64 value (E[x²] − μ² cancels at the coarse
            # scales); ours stays closer to it (test_float32_ms_ssim_closer_to_float64_than_piq).
            close(tq.multi_scale_ssim(x, y, data_range=data_range, **kwargs),
                  piq.multi_scale_ssim(x, y, data_range=data_range, **kwargs), want_dtype, float32_tol=1e-5)


def test_float32_ms_ssim_closer_to_float64_than_piq(piq, tq):
    worse = 0
    for seed in range(6):
        x, y = pair((2, 3, 181, 190), seed=seed)
        truth = piq.multi_scale_ssim(x.double(), y.double(), reduction="none")
        ours = (tq.multi_scale_ssim(x, y, reduction="none").double() - truth).abs()
        theirs = (piq.multi_scale_ssim(x, y, reduction="none").double() - truth).abs()
        assert ours.max() < 2e-6
        worse += int((ours > theirs + 1e-7).sum())
    assert worse <= 2  # float32 rounding may favour piq on a pair or two; never by more than 1e-7 + 2e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fsim_matches_piq(piq, tq, dtype):
    x, y = pair((2, 3, 96, 130), dtype)
    for kwargs in ({}, {"chromatic": False, "reduction": "none"},
                   {"scales": 3, "orientations": 6, "min_length": 4, "mult": 2.5, "sigma_f": 0.6,
                    "delta_theta": 1.0, "k": 3.0}):
        close(tq.fsim(x, y, **kwargs), piq.fsim(x, y, **kwargs), dtype)
    gx, gy = pair((1, 1, 80, 90), dtype)
    close(tq.fsim(gx, gy, chromatic=False), piq.fsim(gx, gy, chromatic=False), dtype)
    close(tq.FSIMLoss(data_range=255)(x * 255, y * 255), piq.FSIMLoss(data_range=255)(x * 255, y * 255), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iw_ssim_matches_piq(piq, tq, dtype):
    # piq's float32 IW-SSIM is up to ~2e-4 from its own float64 value (the coarsest band's E[x²] − μ² cancels);
    # turboiqa computes that band in float64, so float32 input is held to piq's float64 result, to 1e-6.
    def piq_value(fn, *tensors, **kwargs):
        return fn(*(t.double() if torch.is_tensor(t) else t for t in tensors), **kwargs).to(dtype)

    x, y = pair((2, 3, 181, 200), dtype)
    for kwargs in ({}, {"reduction": "none", "parent": False, "blk_size": 5, "sigma_nsq": 0.2},
                   {"kernel_size": 7, "kernel_sigma": 1.0, "k1": 0.02, "k2": 0.05},
                   {"scale_weights": torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)}):
        close(tq.information_weighted_ssim(x * 255, y * 255, 255, **kwargs),
              piq_value(piq.information_weighted_ssim, x * 255, y * 255, 255, **kwargs), dtype)
    gx, gy = pair((1, 1, 170, 176), dtype, seed=3)
    close(tq.InformationWeightedSSIMLoss()(gx, gy), piq_value(piq.InformationWeightedSSIMLoss(), gx, gy), dtype)


@pytest.mark.parametrize("name, args", [("SSIMLoss", {}), ("SSIMLoss", {"downsample": False, "kernel_size": 5}),
                                        ("MultiScaleSSIMLoss", {}), ("FSIMLoss", {"chromatic": False})])
def test_losses_and_gradients_match_piq(piq, tq, name, args):
    x, y = pair((2, 3, 180, 190), torch.float64)
    grads = []
    for lib in (tq, piq):
        xi = x.clone().requires_grad_()
        loss = getattr(lib, name)(**args)(xi, y)
        loss.backward()
        grads.append((loss.detach(), xi.grad))
    close(grads[0][0], grads[1][0], torch.float64)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-10, rtol=1e-7)


def test_ssim_losses_symmetric_bit_for_bit(tq):
    # piq's own test asserts loss(x, y) == loss(y, x) for MS-SSIM in float32.
    for seed in range(5):
        x, y = pair((2, 3, 180, 200), seed=seed)
        for loss in (tq.SSIMLoss(), tq.MultiScaleSSIMLoss()):
            assert torch.equal(loss(x, y), loss(y, x))


BAD_INPUTS = [
    ("ssim", lambda x, y: ((x.numpy(), y), {})),
    ("ssim", lambda x, y: ((x, y[..., :-1]), {})),
    ("ssim", lambda x, y: ((x[0], y[0]), {})),
    ("ssim", lambda x, y: ((x - 0.5, y), {})),
    ("ssim", lambda x, y: ((x * 2, y), {})),
    ("ssim", lambda x, y: ((x, y), {"kernel_size": 10})),
    ("ssim", lambda x, y: ((x[..., :8, :8], y[..., :8, :8]), {})),
    ("multi_scale_ssim", lambda x, y: ((x, y), {"scale_weights": torch.ones(2, 3)})),
    ("multi_scale_ssim", lambda x, y: ((x[..., :100, :100], y[..., :100, :100]), {})),
    ("multi_scale_ssim", lambda x, y: ((x, y), {"kernel_size": 4})),
    ("psnr", lambda x, y: ((x, y * 3), {})),
    ("fsim", lambda x, y: ((x[:, :1], y[:, :1]), {})),  # chromatic=True on grey input
    ("fsim", lambda x, y: ((x.unsqueeze(-1), y.unsqueeze(-1)), {})),
    ("information_weighted_ssim", lambda x, y: ((x, y), {"kernel_size": 6})),
    ("information_weighted_ssim", lambda x, y: ((x[..., :150, :150], y[..., :150, :150]), {})),
    ("information_weighted_ssim", lambda x, y: ((x, y), {"scale_weights": torch.ones(1, 5)})),
    ("information_weighted_ssim", lambda x, y: ((x, -y), {})),
]


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)))
def test_bad_input_raises_what_piq_raises(piq, tq, case):
    name, make = BAD_INPUTS[case]
    x, y = pair((1, 3, 180, 180))
    args, kwargs = make(x, y)
    with pytest.raises(Exception) as theirs:
        getattr(piq, name)(*args, **kwargs)
    with pytest.raises(theirs.type):
        getattr(tq, name)(*args, **kwargs)


def test_other_names_are_piqs_own(piq, tq):
    assert tq.total_variation is piq.total_variation and tq.TVLoss is piq.TVLoss
    with pytest.raises(AttributeError, match="nor piq"):
        tq.no_such_metric  # noqa: B018


def test_patch_replaces_names_bound_before_it(piq, tq):
    import types

    from turboiqa.compat import patch

    user = types.ModuleType("user_code")  # a module that did `from piq import ssim, psnr` earlier
    user.ssim, user.psnr, user.brisque = piq.ssim, piq.psnr, piq.brisque
    sys.modules["user_code"] = user
    original = piq.ssim
    try:
        with patch("piq") as patched:
            assert piq.ssim is tq.ssim and user.ssim is tq.ssim and user.psnr is tq.psnr
            assert sys.modules["piq.ssim"].ssim is tq.ssim
            assert user.brisque is piq.brisque  # not accelerated: untouched
            assert patched.replaced
        assert piq.ssim is original and user.ssim is original
    finally:
        del sys.modules["user_code"]
    with pytest.raises(ValueError, match="library"):
        patch("not_a_peer")
