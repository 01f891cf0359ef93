"""LPIPS: official values on the TID2013 pairs, and the same numbers as lpips / torchmetrics / piq /
frame-analytics given the same weight tensors (their networks are fed ours through tests/peer_stubs.py)."""
import pytest
import torch
import turboiqa
from conftest import import_or_skip, skip_missing
from deep_common import features_state, random_features_state, tid_batch, weights_dir  # noqa: F401
from peer_stubs import (
    import_piq_module,
    lpips_package,
    patched_hub_load,
    piqa_lpips,
    pyiqa_lpips,
    torchmetrics_lpips,
)
from turboiqa.nets.backbones import SqueezeNet11
from turboiqa.nets.weights import load_state, resolve

# Official LPIPS-alex v0.1 (pyiqa calibration of the lpips package), order i03, i04, i06, i08, i19.
OFFICIAL_ALEX = [0.7237, 0.2572, 0.05079, 0.05205, 0.4253]

pytestmark = pytest.mark.usefixtures("weights_dir")


def test_official_values_tid2013(tid_pairs):
    d, r = tid_batch(tid_pairs)
    got = turboiqa.lpips(d, r, data_range=255, reduction="none")
    assert got.dtype == torch.float32 and got.shape == (5,)
    torch.testing.assert_close(got, torch.tensor(OFFICIAL_ALEX), atol=1e-4, rtol=0)
    # argument order is irrelevant (symmetric), float [0, 1] and [-1, 1] inputs give the same numbers
    torch.testing.assert_close(turboiqa.lpips(r, d, data_range=255, reduction="none"), got, atol=1e-6, rtol=0)
    x01, y01 = d.float() / 255, r.float() / 255
    torch.testing.assert_close(turboiqa.lpips(x01, y01, reduction="none"), got, atol=1e-6, rtol=0)
    torch.testing.assert_close(turboiqa.lpips(x01 * 2 - 1, y01 * 2 - 1, normalize=False, reduction="none"), got,
                               atol=1e-6, rtol=0)


def test_float64_close_to_float32(tid_pairs):
    d, r = tid_batch(tid_pairs, (192, 256))
    x, y = d.double() / 255, r.double() / 255
    got64 = turboiqa.lpips(x, y, reduction="none")
    assert got64.dtype == torch.float64
    torch.testing.assert_close(turboiqa.lpips(x.float(), y.float(), reduction="none").double(), got64, atol=2e-6,
                               rtol=0)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_package(tid_pairs, net):
    key = {"alex": "alexnet", "vgg": "vgg16"}[net]
    model = lpips_package(net, resolve(f"lpips-{net}"), features_state(key))
    if model is None:
        skip_missing("lpips not installed")
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        want = model(x, y, normalize=True).flatten()
        want_map = model.__class__(net=net, spatial=True, model_path=str(resolve(f"lpips-{net}")),
                                   verbose=False).eval()(x, y, normalize=True)
    torch.testing.assert_close(turboiqa.lpips(x, y, net=net, reduction="none"), want, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(turboiqa.lpips(x, y, net=net, reduction="none", spatial=True), want_map, atol=2e-6,
                               rtol=1e-5)


def test_lpips_package_squeeze_random_trunk(tmp_path):
    """No SqueezeNet ImageNet weights offline: a fixed-seed random trunk, shared with the lpips package."""
    state = random_features_state(SqueezeNet11)
    path = tmp_path / "squeezenet1_1-random.pth"
    torch.save(state, path)
    model = lpips_package("squeeze", resolve("lpips-squeeze"), state)
    if model is None:
        skip_missing("lpips not installed")
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 96, 112, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        want = model(x, y, normalize=True).flatten()
    got = turboiqa.lpips(x, y, net="squeeze", weights=path, reduction="none")
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
    assert (got > 0).all()


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_torchmetrics(tid_pairs, net):
    key = {"alex": "alexnet", "vgg": "vgg16"}[net]
    model = torchmetrics_lpips(net, resolve(f"lpips-{net}"), features_state(key))
    if model is None:
        skip_missing("torchmetrics not installed")
    d, r = tid_batch(tid_pairs[:3], (128, 192))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        want = model(x, y, normalize=True).flatten()
    # torchmetrics normalises with sqrt(|f|² + 1e-8) instead of |f| + 1e-10: a ~1e-9 relative effect here.
    torch.testing.assert_close(turboiqa.lpips(x, y, net=net, reduction="none"), want, atol=2e-6, rtol=1e-5)


def test_piq(tid_pairs):
    perceptual = import_piq_module("perceptual")
    if perceptual is None:
        skip_missing("piq not installed")
    from peer_stubs import FEATURES

    FEATURES["vgg16"] = features_state("vgg16")
    heads = load_state("lpips-vgg")
    with patched_hub_load([heads[f"lin{i}.model.1.weight"] for i in range(5)]):
        model = perceptual.LPIPS(reduction="none")
    d, r = tid_batch(tid_pairs[:2], (128, 160))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        want = model(x, y)
    torch.testing.assert_close(turboiqa.lpips(x, y, net="vgg", reduction="none"), want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("peer", ["pyiqa", "piqa"])
def test_pyiqa_piqa(tid_pairs, peer):
    if peer == "pyiqa":
        model = pyiqa_lpips("alex", resolve("lpips-alex"), features_state("alexnet"))
    else:
        model = piqa_lpips("alex", load_state("lpips-alex"), features_state("alexnet"))
    if model is None:
        skip_missing(f"{peer} not installed")
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        want = model(x, y).flatten()  # pyiqa: [0, 1] input (normalize=True default); piqa: [0, 1] ImageNet-normalised
    torch.testing.assert_close(turboiqa.lpips(x, y, reduction="none"), want, atol=2e-6, rtol=1e-5)


def test_frame_analytics(tid_pairs):
    fa = import_or_skip("frame_analytics.perceptual")
    blob = torch.load(fa.lpips_weights_path("alex"), map_location="cpu", weights_only=True)
    trunk = features_state("alexnet")
    heads = load_state("lpips-alex")
    for i, k in enumerate([0, 3, 6, 8, 10]):  # its wheel ships exactly our tensors: compare, then score
        assert torch.equal(blob["trunk"][i]["weight"], trunk[f"{k}.weight"])
        assert torch.equal(blob["lin"][i].flatten(), heads[f"lin{i}.model.1.weight"].flatten())
    d, r = tid_batch(tid_pairs[:2], (128, 192))
    want = fa.lpips(d, r, data_range=255, reduction="none")
    torch.testing.assert_close(turboiqa.lpips(d, r, data_range=255, reduction="none"), want.float(), atol=2e-6,
                               rtol=1e-5)


def test_gradient_matches_lpips_package(tid_pairs):
    model = lpips_package("alex", resolve("lpips-alex"), features_state("alexnet"))
    if model is None:
        skip_missing("lpips not installed")
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    x = (d.float() / 255).requires_grad_()
    y = r.float() / 255
    turboiqa.lpips(x, y, reduction="sum").backward()
    x2 = (d.float() / 255).requires_grad_()
    model(x2, y, normalize=True).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-7, rtol=1e-4)


def test_module_form(tid_pairs):
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    module = turboiqa.LPIPS(data_range=255, reduction="none")
    torch.testing.assert_close(module(d, r), turboiqa.lpips(d, r, data_range=255, reduction="none"))
    assert "net='alex'" in repr(module)
    assert not any(True for _ in module.parameters() if _.requires_grad)


def test_bad_inputs():
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="net must be one of"):
        turboiqa.lpips(x, x, net="resnet")
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        turboiqa.lpips(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match="outside \\[0, data_range"):
        turboiqa.lpips(x * 2 - 1, x)
    with pytest.raises(ValueError, match="normalize=False expects"):
        turboiqa.lpips(x * 3, x, normalize=False)
    with pytest.raises(ValueError, match="same shape"):
        turboiqa.lpips(x, x[..., :32])
    with pytest.raises(ValueError, match="autocast"):
        turboiqa.lpips(x, x, autocast=torch.float16)
