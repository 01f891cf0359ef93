"""DISTS: official values on the TID2013 pairs, the official DISTS_pytorch code and piq with the same tensors,
and the demo's resize."""
import numpy as np
import pytest
import torch
import turboiqa
from conftest import TID2013, skip_missing
from deep_common import features_state, tid_batch, weights_dir  # noqa: F401
from peer_stubs import (
    FEATURES,
    dists_package,
    import_piq_module,
    patched_hub_load,
    pyiqa_dists,
)
from turboiqa.metrics.dists import official_resize
from turboiqa.nets.weights import load_state, resolve

# Official DISTS (pyiqa calibration of DISTS_pytorch, no resize), order i03, i04, i06, i08, i19.
OFFICIAL = [0.4742, 0.1424, 0.06825, 0.02867, 0.3123]

pytestmark = pytest.mark.usefixtures("weights_dir")


def test_official_values_tid2013(tid_pairs):
    d, r = tid_batch(tid_pairs)
    got = turboiqa.dists(d, r, data_range=255, reduction="none")
    assert got.dtype == torch.float32 and got.shape == (5,)
    torch.testing.assert_close(got, torch.tensor(OFFICIAL), atol=1e-4, rtol=0)


def test_official_code(tid_pairs):
    model = dists_package(features_state("vgg16"), load_state("dists"))
    if model is None:
        skip_missing("dists-pytorch not installed")
    d, r = tid_batch(tid_pairs[:3], (96, 128))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        want = model(x, y).flatten()
    got = turboiqa.dists(x, y, reduction="none")
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(turboiqa.dists(y, x, reduction="none"), got, atol=1e-6, rtol=0)  # symmetric
    # gradients w.r.t. the distorted image agree with the official code's autograd in float64 (tight); float32
    # gradients carry the float32 backbone's rounding (~1e-4 relative here; ~5e-3 at 96×128 for the official code too)
    x, y = x[:1, :, :64, :64], y[:1, :, :64, :64]
    x64, y64 = x.double(), y.double()
    y1 = y64.clone().requires_grad_()
    turboiqa.dists(x64, y1, reduction="sum").backward()
    y2 = y64.clone().requires_grad_()
    model.double()(x64, y2, require_grad=True).sum().backward()
    model.float()
    torch.testing.assert_close(y1.grad, y2.grad, atol=1e-8, rtol=1e-6)
    y3 = y.clone().requires_grad_()
    turboiqa.dists(x, y3, reduction="sum").backward()
    torch.testing.assert_close(y3.grad.double(), y2.grad, atol=1e-3 * float(y2.grad.abs().max()), rtol=0)


def test_piq(tid_pairs):
    perceptual = import_piq_module("perceptual")
    if perceptual is None:
        skip_missing("piq not installed")
    FEATURES["vgg16"] = features_state("vgg16")
    with patched_hub_load(load_state("dists")):
        model = perceptual.DISTS(reduction="none")
    d, r = tid_batch(tid_pairs[:2], (96, 128))  # ≤ 256: piq's own (non-antialiased) resize stays off
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        want = model(x, y)
    torch.testing.assert_close(turboiqa.dists(x, y, reduction="none"), want, atol=2e-6, rtol=1e-5)


def test_pyiqa(tid_pairs):
    model = pyiqa_dists(features_state("vgg16"), resolve("dists"))
    if model is None:
        skip_missing("pyiqa not installed")
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    x, y = d.float() / 255, r.float() / 255
    with torch.no_grad():
        want = model(x, y).flatten()  # pyiqa calls (dist, ref); DISTS is symmetric
    torch.testing.assert_close(turboiqa.dists(x, y, reduction="none"), want, atol=2e-6, rtol=1e-5)


def test_demo_resize_matches_pil(tid_i01):
    from PIL import Image

    _, ref = tid_i01
    with Image.open(TID2013 / "reference" / "I01.BMP") as im:
        pil = np.asarray(im.convert("RGB").resize((341, 256), Image.BILINEAR))  # torchvision resize(img, 256)
    ours = official_resize(ref)[0].permute(1, 2, 0).numpy()
    assert ours.shape == pil.shape
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1
    small = ref[..., :200, :300]
    assert official_resize(small) is small  # min side ≤ 256: untouched


def test_resize_option(tid_i01):
    d, r = tid_i01
    plain = float(turboiqa.dists(d, r, data_range=255))
    resized = float(turboiqa.dists(d, r, data_range=255, resize=True))
    # reference_values.csv: the no-resize value of this pair is 0.23768; the demo's resize lowers it
    assert abs(plain - 0.23768) < 1e-4
    assert resized < plain - 0.05
    # resize=True on float input gives nearly the uint8 numbers
    assert abs(float(turboiqa.dists(d.float() / 255, r.float() / 255, resize=True)) - resized) < 2e-3


def test_module_and_errors(tid_pairs):
    d, r = tid_batch(tid_pairs[:1], (64, 96))
    module = turboiqa.DISTS(data_range=255, reduction="none")
    torch.testing.assert_close(module(d, r), turboiqa.dists(d, r, data_range=255, reduction="none"))
    assert float(turboiqa.dists(r, r, data_range=255)) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="data_range must be 255"):
        turboiqa.dists(d, r)
    with pytest.raises(ValueError, match="reduction"):
        turboiqa.dists(d, r, data_range=255, reduction="max")
