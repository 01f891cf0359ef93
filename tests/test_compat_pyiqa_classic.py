"""turboiqa.create_metric's classic names 'gmsd', 'vsi', 'vif', 'nlpd', 'cw_ssim' and 'mad' against pyiqa 0.1.16's create_metric (imported
offline through tests/peer_stubs.py): attributes, scores, shapes and dtypes on the TID2013 pairs and random images,
options, loss gradients, errors."""
import pytest
import torch
import turboiqa
from conftest import skip_missing
from deep_common import tid_batch
from peer_stubs import import_pyiqa

NAMES = ["gmsd", "vsi", "vif"]
# VIF: pyiqa accumulates the 9×9 block covariance in float32, turboiqa in float64 (tests/test_vif.py): pyiqa's
# i19_10_5 is 0.17492 where vifvec.m gives 0.1745 and turboiqa 0.17451, so ours is held to 5e-4 of pyiqa's.
# GMSD: both float32 on the same rounded integer luma (measured 4e-9). VSI: both float64 (measured 1.1e-10).
TOLERANCE = {"gmsd": 1e-6, "vsi": 1e-8, "vif": 5e-4}


@pytest.fixture(scope="module")
def pyiqa():
    package = import_pyiqa()
    if package is None:
        skip_missing("pyiqa not installed (pip install --no-deps pyiqa==0.1.16)")
    return package


@pytest.fixture(scope="module")
def tid_unit(tid_pairs):
    d, r = tid_batch(tid_pairs)
    return d.float() / 255, r.float() / 255  # what pyiqa reads from the files: float32 [0, 1]


def direct(name, x, y):
    """The turboiqa call each name stands for (README, "Switching from piq, pyiqa or torchmetrics")."""
    convention = {"convention": "pyiqa"}
    return {"gmsd": turboiqa.gmsd, "vsi": turboiqa.vsi, "vif": turboiqa.vif}[name](x, y, 1.0, "none", **convention)


def test_names_and_attributes(pyiqa):
    assert set(NAMES) <= set(turboiqa.list_models()) and set(NAMES) <= set(pyiqa.list_models(metric_mode="FR"))
    for name in NAMES:
        ours, theirs = turboiqa.create_metric(name, device="cpu"), pyiqa.create_metric(name, device="cpu")
        for attribute in ("lower_better", "score_range", "metric_mode", "as_loss"):
            assert getattr(ours, attribute) == getattr(theirs, attribute), (name, attribute)
    assert turboiqa.create_metric("gmsd", device="cpu").lower_better
    assert not turboiqa.create_metric("vsi", device="cpu").lower_better


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.filterwarnings("ignore:The original VSI")
def test_scores_match_pyiqa(pyiqa, tid_unit, name):
    x, y = tid_unit
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 70, 90, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    pairs = [(x, y), (a, b)]
    if name == "vsi":  # grey repeated to RGB (with pyiqa's warning)
        pairs.append((a[:, :1], b[:, :1]))
    else:  # pyiqa's luma step needs RGB (an AssertionError); turboiqa scores grey input as is
        with pytest.raises(AssertionError):
            pyiqa.create_metric(name, device="cpu")(a[:, :1], b[:, :1])
        grey = turboiqa.create_metric(name, device="cpu")(a[:, :1], b[:, :1])
        torch.testing.assert_close(grey, direct(name, a[:, :1], b[:, :1]).to(grey.dtype), atol=0, rtol=0)
    for p, q in pairs:
        ours = turboiqa.create_metric(name, device="cpu")(p, q)
        want = pyiqa.create_metric(name, device="cpu")(p, q)
        assert ours.shape == want.shape and ours.dtype == want.dtype, (ours.shape, want.shape, ours.dtype, want.dtype)
        assert not ours.requires_grad
        torch.testing.assert_close(ours, want, atol=TOLERANCE[name], rtol=0)
        torch.testing.assert_close(ours.flatten(), direct(name, p, q).to(ours.dtype), atol=0, rtol=0)


def test_gmsd_every_channel_matches_pyiqa(pyiqa, tid_unit):
    x, y = (t[:2] for t in tid_unit)
    ours = turboiqa.create_metric("gmsd", device="cpu", test_y_channel=False)(x, y)
    want = pyiqa.create_metric("gmsd", device="cpu", test_y_channel=False)(x, y)
    assert ours.shape == want.shape and ours.dtype == want.dtype
    torch.testing.assert_close(ours, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_loss_gradients_match_pyiqa(pyiqa, tid_unit, name):
    """pyiqa's loss is the score itself, mean-reduced; the gradients agree to float32 rounding (GMSD's rounded luma
    passes them straight through in both)."""
    x, y = (t[:1, :, :96, :112].contiguous() for t in tid_unit)
    results = []
    for metric in (turboiqa.create_metric(name, as_loss=True, device="cpu"),
                   pyiqa.create_metric(name, as_loss=True, device="cpu")):
        xi = x.clone().requires_grad_()
        loss = metric(xi, y)
        loss.backward()
        results.append((loss.detach(), xi.grad))
    (ours, ours_grad), (want, want_grad) = results
    assert ours.shape == want.shape == () and ours.dtype == want.dtype
    torch.testing.assert_close(ours, want, atol=TOLERANCE[name], rtol=0)
    scale = float(want_grad.abs().max())
    assert scale > 0
    torch.testing.assert_close(ours_grad, want_grad, atol=2e-3 * scale if name == "vif" else 2e-5 * scale, rtol=0)


def test_options_turboiqa_lacks(pyiqa):
    import turboiqa.compat.pyiqa as compat
    from turboiqa.catalogue import Metric

    for name, option in (("vsi", {"c1": 2.0}), ("vsi", {"data_range": 255}), ("vif", {"level": 3}),
                         ("vif", {"channels": 3})):
        with pytest.raises(ValueError, match=f"{next(iter(option))}="):
            turboiqa.create_metric(name, device="cpu", **option)
        assert not isinstance(compat.create_metric(name, device="cpu", **option), Metric)  # pyiqa's own
    with pytest.raises(ValueError, match="'window'"):
        turboiqa.create_metric("gmsd", window=3)


# (atol, rtol). NLPD: both float32 on the same luma (measured 9e-8). CW-SSIM: both float64 (4e-16). MAD: float64
# out of both, but pyiqa runs its first steps in the input's float32 (turboiqa: all float64): 1.7e-7 relative measured.
SLOW_NAMES = {"nlpd": (1e-6, 0), "cw_ssim": (1e-12, 0), "mad": (0, 1e-6)}


@pytest.mark.parametrize("name", sorted(SLOW_NAMES))
def test_more_names_match_pyiqa(pyiqa, tid_unit, name):
    """Crops of two TID2013 pairs (pyiqa's MAD takes ~9 s per full pair): scores, attributes, shapes, dtypes; MAD
    with its test_y_channel option too."""
    x, y = (t[:2, :, 100:228, 60:220].contiguous() for t in tid_unit)
    options = [{}, {"test_y_channel": True}] if name == "mad" else [{}]
    for kw in options:
        ours, theirs = turboiqa.create_metric(name, device="cpu", **kw), pyiqa.create_metric(name, device="cpu", **kw)
        for attribute in ("lower_better", "score_range", "metric_mode", "as_loss"):
            assert getattr(ours, attribute) == getattr(theirs, attribute), (name, attribute)
        got, want = ours(x, y), theirs(x, y)
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
        assert float(want.max()) > 0  # real distortions: not only the degenerate 0 of MAD on noise
        atol, rtol = SLOW_NAMES[name]
        if kw.get("test_y_channel") and name == "mad":
            # pyiqa rounds a float32 luma to 8-bit levels, turboiqa a float64 one: a few near-half pixels land on
            # the other level (9.3e-6 relative measured on these crops)
            rtol = 2e-5
        torch.testing.assert_close(got, want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("name, option", [("nlpd", {"k": 5}), ("nlpd", {"test_y_channel": False}),
                                          ("cw_ssim", {"guardb": 2}), ("cw_ssim", {"K": 1.0})])
def test_more_names_refuse_options(name, option):
    with pytest.raises(ValueError, match=f"{next(iter(option))}="):
        turboiqa.create_metric(name, device="cpu", **option)
