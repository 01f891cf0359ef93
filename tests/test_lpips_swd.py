"""LPIPS + SWD (research re-implementation, no public weights): fixed-seed random heads shared with an independent
unfold-based SWD written here on the lpips package's own features; radius 0 equals LPIPS."""
import pytest
import torch
import torch.nn.functional as F
import turboiqa
from conftest import skip_missing
from deep_common import features_state, tid_batch, weights_dir  # noqa: F401
from peer_stubs import lpips_package
from turboiqa.nets.weights import resolve

pytestmark = pytest.mark.usefixtures("weights_dir")


def unfold_swd(fd, fr, w, radius):
    """min over the (2r+1)² neighbourhood (inside the map) of Σ_c w_c (f̂d(p) − f̂r(p+Δ))², mean over
    positions."""
    def unit(f):
        return f / (torch.sqrt((f * f).sum(dim=1, keepdim=True)) + 1e-10)

    a, b = unit(fd.double()), unit(fr.double())
    n, c, h, wd = a.shape
    k = 2 * radius + 1
    big = 1e6  # outside the map: a value no real neighbour reaches (unit vectors: distance ≤ 4·Σw)
    padded = F.pad(b, (radius,) * 4, value=big)
    neighbours = F.unfold(padded, k).view(n, c, k * k, h, wd)
    d = (w.double().view(1, c, 1, 1, 1) * (a[:, :, None] - neighbours) ** 2).sum(dim=1)
    return d.min(dim=1).values.mean(dim=(1, 2))


@pytest.fixture(scope="module")
def random_heads(tmp_path_factory):
    g = torch.Generator().manual_seed(7)
    channels = [64, 192, 384, 256, 256]
    state = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) / c for i, c in enumerate(channels)}
    path = tmp_path_factory.mktemp("swd") / "swd-heads-random.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("radius", [1, 2])
def test_against_unfold_swd(tid_pairs, random_heads, radius):
    path, state = random_heads
    model = lpips_package("alex", path, features_state("alexnet"))
    if model is None:
        skip_missing("lpips not installed")
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        fx = model.net(model.scaling_layer(x * 2 - 1))
        fy = model.net(model.scaling_layer(y * 2 - 1))
    want = sum(unfold_swd(a, b, state[f"lin{i}.model.1.weight"], radius) for i, (a, b) in enumerate(zip(fx, fy)))
    got = turboiqa.lpips_swd(x, y, radius=radius, head_weights=path, reduction="none")
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=1e-5)


def test_reference_anchor_swaps_the_search(tid_pairs, random_heads):
    """anchor='reference' matches each reference position in the distorted neighbourhood: the unfold SWD with the
    arguments swapped, and a different number from the default on real content."""
    path, state = random_heads
    model = lpips_package("alex", path, features_state("alexnet"))
    if model is None:
        skip_missing("lpips not installed")
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        fx = model.net(model.scaling_layer(x * 2 - 1))
        fy = model.net(model.scaling_layer(y * 2 - 1))
    want = sum(unfold_swd(b, a, state[f"lin{i}.model.1.weight"], 1) for i, (a, b) in enumerate(zip(fx, fy)))
    got = turboiqa.lpips_swd(x, y, head_weights=path, reduction="none", anchor="reference")
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=1e-5)
    default = turboiqa.lpips_swd(x, y, head_weights=path, reduction="none")
    assert (got - default).abs().max() > 1e-6
    with pytest.raises(ValueError, match="anchor"):
        turboiqa.lpips_swd(x, y, anchor="both")


def test_radius_zero_is_lpips_and_swd_is_smaller(tid_pairs):
    d, r = tid_batch(tid_pairs, (96, 128))
    plain = turboiqa.lpips(d, r, data_range=255, reduction="none")
    torch.testing.assert_close(turboiqa.lpips_swd(d, r, data_range=255, radius=0, reduction="none"), plain)
    warped = turboiqa.lpips_swd(d, r, data_range=255, radius=1, reduction="none")
    assert (warped <= plain + 1e-7).all() and (warped < plain).any()
    assert float(turboiqa.lpips_swd(r, r, data_range=255)) < 1e-10


def test_tolerates_shift(tid_pairs):
    """The point of SWD: a translation (16 px = whole feature pixels in every AlexNet tap) costs far less."""
    _, r = tid_batch(tid_pairs[:1], (160, 208))
    a, b = r[..., :144, :192], r[..., 16:, 16:]
    plain = float(turboiqa.lpips(a, b, data_range=255))
    assert float(turboiqa.lpips_swd(a, b, data_range=255, radius=4)) < 0.4 * plain


def test_gradient_and_module(tid_pairs):
    d, r = tid_batch(tid_pairs[:1], (64, 96))
    x = (d.float() / 255).requires_grad_()
    turboiqa.lpips_swd(x, r.float() / 255).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    module = turboiqa.LPIPS_SWD(data_range=255, radius=1)
    torch.testing.assert_close(module(d, r), turboiqa.lpips_swd(d, r, data_range=255))
    with pytest.raises(ValueError, match="radius"):
        turboiqa.lpips_swd(d, r, data_range=255, radius=-1)
    with pytest.raises(ValueError, match="pooling='l2'"):
        turboiqa.lpips_swd(d, r, data_range=255, pooling="l2")
    vgg_l2 = turboiqa.lpips_swd(d, r, data_range=255, net="vgg", pooling="l2")
    assert float(vgg_l2) > 0
    assert resolve("lpips-vgg").is_file()
