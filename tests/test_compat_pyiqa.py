"""turboiqa.create_metric / list_models under pyiqa's names, and turboiqa.compat.pyiqa, against the installed
pyiqa 0.1.16 (imported through tests/peer_stubs.py, its networks fed our weight tensors): the same scores on the
TID2013 pairs, attributes, shapes, dtypes and loss gradients; file-path inputs; patch("pyiqa"); the errors."""
import sys

import pytest
import torch
import turboiqa
from conftest import TID2013, TID_PAIRS, skip_missing
from deep_common import features_state, tid_batch, weights_dir  # noqa: F401
from peer_stubs import FEATURES, import_pyiqa
from turboiqa.catalogue import Metric
from turboiqa.nets.weights import resolve

pytestmark = pytest.mark.usefixtures("weights_dir")

NAMES = ["psnr", "psnry", "ssim", "ssimc", "ms_ssim", "fsim", "lpips", "lpips-vgg", "dists", "gmsd", "vsi", "vif",
         "nlpd", "cw_ssim", "mad"]
SCORED_HERE = NAMES[:9]  # gmsd, vsi, vif: tests/test_compat_pyiqa_classic.py (this file's time budget)
# Largest |ours − pyiqa| allowed on the TID2013 pairs. PSNR is float32 dB (~30): one ulp is 1.9e-6–3.8e-6. FSIM:
# float32 phase congruency summed in a different order (measured 3.2e-6). The rest: float32 1e-6 (SSIM/MS-SSIM:
# float64 statistics of integer levels; the luma is float32 in both, so a level rounded across .5 moves ~1e-7).
TOLERANCE = {"psnr": 8e-6, "psnry": 8e-6, "fsim": 5e-6}
WANG_FLOAT32 = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])  # pyiqa's constants (3.5e-9 from float64)
PEER_WEIGHTS = {"lpips": "lpips-alex", "lpips-vgg": "lpips-vgg", "dists": "dists"}


@pytest.fixture(scope="module")
def pyiqa():
    package = import_pyiqa()
    if package is None:
        skip_missing("pyiqa not installed (pip install --no-deps pyiqa==0.1.16)")
    FEATURES["alexnet"], FEATURES["vgg16"] = features_state("alexnet"), features_state("vgg16")
    return package


def peer_metric(pyiqa, name, **kwargs):
    """pyiqa's own create_metric with the weight files turboiqa loads."""
    if name in PEER_WEIGHTS:
        kwargs["pretrained_model_path"] = str(resolve(PEER_WEIGHTS[name]))
    return pyiqa.create_metric(name, device="cpu", **kwargs)


@pytest.fixture(scope="module")
def tid_unit(tid_pairs):
    d, r = tid_batch(tid_pairs)
    return d.float() / 255, r.float() / 255  # what pyiqa reads from the files: float32 [0, 1]


def turboiqa_metric(name, x, y):
    """The turboiqa call each name stands for (README, "Switching from piq, pyiqa or torchmetrics")."""
    calls = {
        "psnr": lambda: turboiqa.psnr(x, y, 1.0, "none", eps=1e-8),
        "psnry": lambda: turboiqa.psnr(x, y, 1.0, "none", color="yiq", eps=1e-8),
        "ssim": lambda: turboiqa.ssim(x, y, 1.0, "none", convention="pyiqa"),
        "ssimc": lambda: turboiqa.ssim(x, y, 1.0, "none", convention="pyiqa", color="per_channel"),
        "ms_ssim": lambda: turboiqa.ms_ssim(x, y, 1.0, "none", convention="pyiqa", scale_weights=WANG_FLOAT32),
        "fsim": lambda: turboiqa.fsim(x * 255, y * 255, 255, "none", color="yiq_chromatic", convention="piq"),
        "lpips": lambda: turboiqa.lpips(x, y, 1.0, "none"),
        "lpips-vgg": lambda: turboiqa.lpips(x, y, 1.0, "none", net="vgg"),
        "dists": lambda: turboiqa.dists(x, y, 1.0, "none"),
    }
    return calls[name]()


def test_names_and_attributes(pyiqa):
    assert turboiqa.list_models() == sorted(NAMES)
    assert set(NAMES) <= set(pyiqa.list_models(metric_mode="FR"))
    for name in NAMES:
        ours, theirs = turboiqa.create_metric(name, device="cpu"), peer_metric(pyiqa, name)
        assert isinstance(ours, torch.nn.Module) and ours.metric_name == name
        for attribute in ("lower_better", "score_range", "metric_mode", "as_loss"):
            assert getattr(ours, attribute) == getattr(theirs, attribute), (name, attribute)


@pytest.mark.parametrize("name", SCORED_HERE)
def test_scores_match_pyiqa(pyiqa, tid_unit, name):
    x, y = tid_unit
    if name in ("lpips-vgg", "dists"):  # VGG16 on five 384×512 pairs twice takes a minute here: 192×256 crops
        x, y = x[..., :192, :256].contiguous(), y[..., :192, :256].contiguous()
    ours = turboiqa.create_metric(name, device="cpu")(x, y)
    want = peer_metric(pyiqa, name)(x, y)
    assert ours.shape == want.shape and ours.dtype == want.dtype, (ours.shape, want.shape, ours.dtype, want.dtype)
    assert not ours.requires_grad
    tol = TOLERANCE.get(name, 1e-6)
    torch.testing.assert_close(ours, want, atol=tol, rtol=0)
    direct = turboiqa_metric(name, x, y)
    torch.testing.assert_close(ours.flatten(), direct.to(ours.dtype), atol=0, rtol=0)


@pytest.mark.parametrize("name, kwargs", [
    ("psnr", {"test_y_channel": True, "crop_border": 4}),
    ("psnry", {"color_space": "ycbcr"}),
    ("ssim", {"downsample": True}),
    ("ssim", {"color_space": "ycbcr", "crop_border": 3}),
    ("ssimc", {"downsample": True}),
    ("ms_ssim", {"test_y_channel": False}),
    ("fsim", {"chromatic": False, "scales": 3}),
])
def test_options_match_pyiqa(pyiqa, tid_unit, name, kwargs):
    x, y = (t[:2] for t in tid_unit)
    ours = turboiqa.create_metric(name, device="cpu", **kwargs)(x, y)
    want = peer_metric(pyiqa, name, **kwargs)(x, y)
    assert ours.shape == want.shape and ours.dtype == want.dtype
    torch.testing.assert_close(ours, want, atol=TOLERANCE.get(name, 1e-6), rtol=0)


def test_file_paths_give_the_tensor_result(tid_unit):
    from pathlib import Path

    d, r = TID_PAIRS[0]
    dist, ref = TID2013 / "distorted" / d, TID2013 / "reference" / r
    x, y = (t[:1] for t in tid_unit)
    for name in ("psnr", "ssim", "lpips"):
        metric = turboiqa.create_metric(name, device="cpu")
        want = metric(x, y)
        assert torch.equal(metric(str(dist), str(ref)), want)
        assert torch.equal(metric(Path(dist), y), want)


@pytest.mark.parametrize("name", ["ssim", "ms_ssim", "lpips"])
def test_loss_gradients_match_pyiqa(pyiqa, tid_unit, name):
    """pyiqa's loss is the score itself, reduced by the mean (not 1 − SSIM): the same here, and so are the
    gradients (SSIM's rounding to integer levels passes them straight through in both). Measured: SSIM 7e-9,
    MS-SSIM 2e-9, LPIPS 2e-8 apart, for largest gradients of 1e-3…4e-3."""
    x, y = (t[:2, :, :176, :192].contiguous() for t in tid_unit)
    results = []
    for metric in (turboiqa.create_metric(name, as_loss=True, device="cpu"), peer_metric(pyiqa, name, as_loss=True)):
        xi = x.clone().requires_grad_()
        loss = metric(xi, y)
        loss.backward()
        results.append((loss.detach(), xi.grad))
    (ours, ours_grad), (want, want_grad) = results
    assert ours.shape == want.shape == () and ours.dtype == want.dtype
    torch.testing.assert_close(ours, want, atol=1e-6, rtol=0)
    scale = float(want_grad.abs().max())
    assert scale > 0
    torch.testing.assert_close(ours_grad, want_grad, atol=2e-5 * scale, rtol=0)


def test_pyiqa_convention_on_uint8_and_grey(tid_unit):
    """convention='pyiqa' takes uint8 by pyiqa's route for 8-bit files (float32 [0, 1] first, so luma ties round
    alike): the same numbers as its float form; grey input is used as is (pyiqa: no luma for one channel)."""
    x, y = (t[:2, :, :64, :80].contiguous() for t in tid_unit)
    x8, y8 = (x * 255).round().to(torch.uint8), (y * 255).round().to(torch.uint8)
    for color in ("yiq", "per_channel"):
        want = turboiqa.ssim(x, y, 1.0, "none", convention="pyiqa", color=color)
        torch.testing.assert_close(turboiqa.ssim(x8, y8, 255, "none", convention="pyiqa", color=color), want,
                                   atol=0, rtol=0)
    grey = turboiqa.create_metric("ssim", device="cpu")(x[:, :1], y[:, :1])
    torch.testing.assert_close(grey, turboiqa.ssim(x[:, :1], y[:, :1], 1.0, "none", convention="pyiqa"))


def test_loss_reductions_and_no_grad_for_scores(tid_unit):
    x, y = (t[:2, :, :64, :64].contiguous() for t in tid_unit)
    scores = turboiqa.create_metric("ssim", device="cpu")(x.clone().requires_grad_(), y)
    assert not scores.requires_grad  # pyiqa: gradients only with as_loss=True
    for reduction, reduce in (("mean", torch.mean), ("sum", torch.sum), ("none", lambda t: t)):
        loss = turboiqa.create_metric("ssim", as_loss=True, device="cpu", loss_reduction=reduction)(
            x.clone().requires_grad_(), y)
        assert loss.requires_grad
        torch.testing.assert_close(loss.detach(), reduce(scores))


def test_device_defaults_to_cuda_when_available():
    metric = turboiqa.create_metric("psnr")
    assert metric.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert turboiqa.create_metric("psnr", device="cpu").to("cpu").device == torch.device("cpu")


def test_list_models_filters(pyiqa):
    assert turboiqa.list_models(filter="*ssim*") == ["cw_ssim", "ms_ssim", "ssim", "ssimc"]
    assert turboiqa.list_models(filter=["psnr*", "lpips*"], exclude_filters="*vgg") == ["lpips", "psnr", "psnry"]
    assert turboiqa.list_models("NR") == []
    assert turboiqa.list_models("FR") == turboiqa.list_models()
    with pytest.raises(ValueError, match="metric_mode"):
        turboiqa.list_models("XX")
    import turboiqa.compat.pyiqa as compat

    assert compat.list_models() == pyiqa.list_models()
    for name in NAMES:  # our names, filtered the same way as pyiqa's
        assert (name in turboiqa.list_models(filter="*s*m*")) == (name in pyiqa.list_models(filter="*s*m*"))


def test_compat_delegates_other_names_and_options(pyiqa, tid_unit):
    import turboiqa.compat.pyiqa as compat

    assert isinstance(compat.create_metric("ssim", device="cpu"), Metric)
    other = compat.create_metric("piqe", device="cpu")  # not computed by turboiqa (and built offline): pyiqa's own
    assert not isinstance(other, Metric) and other.metric_name == "piqe"
    constants = compat.create_metric("vsi", device="cpu", c1=2.0)  # a VSI constant turboiqa lacks: pyiqa's
    assert not isinstance(constants, Metric)
    summed = compat.create_metric("ms_ssim", device="cpu", is_prod=False)  # an option turboiqa lacks: pyiqa's
    assert not isinstance(summed, Metric)
    assert compat.get_dataset_info is pyiqa.get_dataset_info  # every other attribute: pyiqa's


def test_patch_pyiqa(pyiqa, tid_unit):
    import types

    import turboiqa.compat.pyiqa as compat
    from turboiqa.compat import patch

    user = types.ModuleType("user_code")  # a module that did `from pyiqa import create_metric` earlier
    user.create_metric = pyiqa.create_metric
    sys.modules["user_code"] = user
    original = pyiqa.create_metric
    x, y = (t[:1, :, :64, :64].contiguous() for t in tid_unit)
    try:
        with patch("pyiqa") as patched:
            assert pyiqa.create_metric is compat.create_metric and user.create_metric is compat.create_metric
            assert pyiqa.list_models is compat.list_models
            metric = pyiqa.create_metric("ssim", device="cpu")
            assert isinstance(metric, Metric)
            torch.testing.assert_close(metric(x, y), turboiqa.ssim(x, y, 1.0, "none", convention="pyiqa"))
            assert not isinstance(pyiqa.create_metric("piqe", device="cpu"), Metric)  # pyiqa's, no recursion
            assert "piqe" in pyiqa.list_models()
            assert patched.replaced
        assert pyiqa.create_metric is original and user.create_metric is original
    finally:
        del sys.modules["user_code"]


def test_errors(tid_unit):
    x, y = (t[:1, :, :64, :64].contiguous() for t in tid_unit)
    with pytest.raises(ValueError, match="no metric 'piqe'.*ssim.*pyiqa itself"):
        turboiqa.create_metric("piqe")
    with pytest.raises(ValueError, match="c2=100"):
        turboiqa.create_metric("vsi", c2=100)
    with pytest.raises(ValueError, match="ori=4"):
        turboiqa.create_metric("vif", ori=4)
    with pytest.raises(ValueError, match="is_prod"):
        turboiqa.create_metric("ms_ssim", is_prod=False)
    with pytest.raises(ValueError, match="color_space='lhm'"):
        turboiqa.create_metric("ssim", color_space="lhm")
    with pytest.raises(ValueError, match="'window_size'"):
        turboiqa.create_metric("ssim", window_size=7)
    with pytest.raises(ValueError, match="data_range"):
        turboiqa.create_metric("psnr", data_range=255)
    with pytest.raises(ValueError, match="loss_reduction"):
        turboiqa.create_metric("ssim", loss_reduction="max")
    with pytest.raises(ValueError, match="crop_border"):
        turboiqa.create_metric("ssim", crop_border=-1)
    metric = turboiqa.create_metric("ssim", device="cpu")
    with pytest.raises(ValueError, match="4-D"):
        metric(x[0], y[0])
    with pytest.raises(ValueError, match="reference"):
        metric(x)
    with pytest.raises(TypeError, match="file path"):
        metric(x.numpy(), y)
    with pytest.raises(ValueError, match="outside|range"):
        metric(x * 2, y)
    with pytest.raises(ValueError, match="chromatic"):
        turboiqa.create_metric("fsim", device="cpu")(x[:, :1], y[:, :1])
