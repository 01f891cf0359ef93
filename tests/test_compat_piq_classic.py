"""turboiqa.compat.piq's classic metrics (gmsd, multi_scale_gmsd, mdsi, srsim, vsi, haarpsi, dss, vif_p and their
Loss forms) against the installed piq 0.8: values, dtypes and shapes on random and TID2013 images, gradients,
exception types, delegation of what turboiqa does not implement."""
import warnings

import pytest
import torch
from conftest import TID2013, skip_missing_shared_data
from peer_stubs import install_torchvision_stub

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def piq():
    install_torchvision_stub()  # piq's __init__ imports torchvision.models; the stub builds nothing here
    return pytest.importorskip("piq", reason="piq is not installed (pip install --no-deps piq==0.8.0)")


@pytest.fixture(scope="module")
def tq():
    import turboiqa.compat.piq as tq

    return tq


def pair(shape, dtype=torch.float64, data_range=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.15 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    if dtype == torch.uint8:
        return (x * data_range).round().to(dtype), (y * data_range).round().to(dtype)
    return (x * data_range).to(dtype), (y * data_range).to(dtype)


# float64 parity 1e-10 except SR-SIM: piq resizes the saliency input in float32 whatever the dtype (turboiqa's
# convention='piq' does too) and its float32 weight arithmetic leaves up to 2e-6 (tests/test_srsim.py::test_piq).
# DSS: piq stores the subband scores in float32 (reproduced): where the float64 scores differ in the last bits, a
# stored value can round to the neighbouring float32 (≤ 6e-8 relative, 7.2e-9 measured on TID2013 i19_10_5).
F64_TOL = {"srsim": 2e-6, "dss": 2e-8, "DSSLoss": 2e-8}
# float32: 1e-5 (piq's own float32 rounding differs; DSS: 3.4e-6 measured in tests/test_dss.py). VIFp is held to
# piq's float64 value (piq's float32 VIFp is up to 3.3e-4 off its own float64 on TID2013, tests/test_vif.py).
# DSS likewise: piq's float32 DSS of TID2013 i19_10_5 (0.22866) is 1.8e-4 off its float64 value (the local
# variances E[x²] − μ² of 0–255 DCT coefficients cancel); turboiqa's float32 is 4.4e-5 off it (measured), hence 1e-4.
F32_AGAINST_F64 = {"vif_p", "dss"}
# VIFp: turboiqa's float32 is within 2.2e-5 of float64 on the TID2013 pairs (i06_18_3, tests/test_vif.py).
F32_TOL = {"dss": 1e-4, "vif_p": 5e-5}

CASES = [
    ("gmsd", {}), ("gmsd", {"t": 100 / 255**2}),
    ("multi_scale_gmsd", {}), ("multi_scale_gmsd", {"chromatic": True}),
    ("multi_scale_gmsd", {"scale_weights": torch.tensor([1.0, 2.0, 3.0]), "alpha": 0.3, "t": 100}),
    ("multi_scale_gmsd", {"chromatic": True, "scale_weights": torch.tensor([0.2, 0.3, 0.1, 0.4], dtype=torch.float64),
                          "beta1": 0.02, "beta2": 0.5, "beta3": 10.0}),
    ("mdsi", {}), ("mdsi", {"combination": "mult"}), ("mdsi", {"c1": 100.0, "alpha": 0.5, "rho": 2.0, "q": 0.5}),
    ("srsim", {}), ("srsim", {"chromatic": True}), ("srsim", {"gaussian_size": 9, "sigma": 3.0}),
    ("vsi", {}),
    ("haarpsi", {}), ("haarpsi", {"subsample": False, "c": 20.0, "alpha": 3.0}),
    ("dss", {}), ("dss", {"sigma_weight": 2.0}),
    ("vif_p", {}), ("vif_p", {"sigma_n_sq": 1.0}),
]
INPUTS = [(torch.float64, 1.0), (torch.float32, 1.0), (torch.float32, 255.0), (torch.uint8, 255.0)]


def close(name, ours, theirs, dtype, want_dtype=None):
    assert ours.shape == theirs.shape
    assert ours.dtype == (theirs.dtype if want_dtype is None else want_dtype)
    tol = F64_TOL.get(name, 1e-10) if dtype == torch.float64 else F32_TOL.get(name, 1e-5)
    torch.testing.assert_close(ours.double(), theirs.double(), atol=tol, rtol=0)


def compare(piq, tq, name, x, y, data_range, kwargs, reduction="none"):
    if kwargs.get("chromatic") and x.size(1) != 3:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # piq's grey-input warnings (mdsi, vsi): test_grey_input_warns
        ours = getattr(tq, name)(x, y, data_range=data_range, reduction=reduction, **kwargs)
        if x.dtype != torch.float64 and name in F32_AGAINST_F64:
            theirs = getattr(piq, name)(x.double(), y.double(), data_range=data_range, reduction=reduction, **kwargs)
            close(name, ours, theirs, torch.float32, want_dtype=torch.float32)
            return
        theirs = getattr(piq, name)(x, y, data_range=data_range, reduction=reduction, **kwargs)
    close(name, ours, theirs, x.dtype)


# data_range and uint8 with each metric's defaults; the options on [0, 1] float input
RANDOM = [(case, dtype, data_range) for case, (_, kwargs) in enumerate(CASES) for dtype, data_range in INPUTS
          if not kwargs or data_range == 1.0]


@pytest.mark.parametrize("case, dtype, data_range", RANDOM,
                         ids=[f"{CASES[c][0]}-{c}-{str(d)[6:]}-{r:g}" for c, d, r in RANDOM])
def test_random_images_match_piq(piq, tq, case, dtype, data_range):
    name, kwargs = CASES[case]
    # SR-SIM: piq min-max normalises the saliency over the batch, turboiqa per image: batches of one here
    # (test_srsim_is_piq_image_by_image)
    shapes = [(1, 3, 97, 131), (1, 1, 100, 90)] if name == "srsim" else [(2, 3, 97, 131), (1, 1, 100, 90)]
    for seed, shape in enumerate(shapes):
        x, y = pair(shape, dtype, data_range, seed)
        compare(piq, tq, name, x, y, data_range, kwargs)
    x, y = pair((3, 3, 64, 70), dtype, data_range, seed=7)
    for reduction in ("mean", "sum"):
        if name != "srsim":
            compare(piq, tq, name, x, y, data_range, kwargs, reduction)
        else:
            compare(piq, tq, name, x[:1], y[:1], data_range, kwargs, reduction)


@pytest.fixture(scope="module")
def tid_images():
    from conftest import load_rgb

    if not TID2013.is_dir():
        skip_missing_shared_data(TID2013)
    return [(load_rgb(TID2013 / "distorted" / d), load_rgb(TID2013 / "reference" / r))
            for d, r in (("i04_18_5.bmp", "I04.BMP"), ("i19_10_5.bmp", "I19.BMP"))]


TID_CASES = [("gmsd", {}), ("multi_scale_gmsd", {"chromatic": True}), ("mdsi", {}), ("srsim", {}), ("vsi", {}),
             ("haarpsi", {}), ("dss", {}), ("vif_p", {})]


@pytest.mark.parametrize("kind", ["float64", "float32", "uint8"])
def test_tid2013_matches_piq(piq, tq, tid_images, kind):
    for dist, ref in tid_images:
        if kind == "uint8":
            x, y, data_range = dist, ref, 255
        else:
            dtype = torch.float64 if kind == "float64" else torch.float32
            x, y, data_range = dist.to(dtype) / 255, ref.to(dtype) / 255, 1.0
        for name, kwargs in TID_CASES:
            compare(piq, tq, name, x, y, data_range, kwargs)


LOSSES = [("GMSDLoss", {}), ("MultiScaleGMSDLoss", {}), ("MultiScaleGMSDLoss", {"chromatic": True}),
          ("MDSILoss", {}), ("SRSIMLoss", {}), ("VSILoss", {}), ("HaarPSILoss", {}), ("DSSLoss", {}),
          ("VIFLoss", {}), ("VIFLoss", {"reduction": "none", "data_range": 255.0})]


@pytest.mark.parametrize("case", range(len(LOSSES)), ids=[n for n, _ in LOSSES])
def test_losses_and_gradients_match_piq(piq, tq, case):
    name, kwargs = LOSSES[case]
    scale = kwargs.get("data_range", 1.0)
    x, y = pair((1, 3, 64, 72), torch.float64, seed=3)
    x, y = x * scale, y * scale
    results = []
    for lib in (tq, piq):
        xi = x.clone().requires_grad_()
        loss = getattr(lib, name)(**kwargs)(xi, y)
        loss.sum().backward()
        results.append((loss.detach(), xi.grad))
    tol = F64_TOL.get("srsim" if name == "SRSIMLoss" else name, 1e-10)
    assert results[0][0].shape == results[1][0].shape and results[0][0].dtype == results[1][0].dtype
    torch.testing.assert_close(results[0][0], results[1][0], atol=tol, rtol=0)
    if name == "SRSIMLoss":  # piq's float32 resize: the gradients agree to its float32 rounding
        torch.testing.assert_close(results[0][1], results[1][1], atol=1e-6, rtol=1e-3)
    else:
        torch.testing.assert_close(results[0][1], results[1][1], atol=1e-10, rtol=1e-7)
    assert isinstance(getattr(tq, name)(**kwargs), torch.nn.modules.loss._Loss)


def test_ms_gmsd_loss_weights_buffer(piq, tq):
    ours, theirs = tq.MultiScaleGMSDLoss(), piq.MultiScaleGMSDLoss()
    assert dict(ours.named_buffers()).keys() == dict(theirs.named_buffers()).keys()
    torch.testing.assert_close(ours.scale_weights, theirs.scale_weights, atol=0, rtol=0)


def test_srsim_is_piq_image_by_image(piq, tq):
    """piq takes the saliency min/max over the whole batch (a score depends on the other images of the batch);
    turboiqa's is per image: equal to piq called on each image alone."""
    x, y = pair((3, 3, 80, 90), torch.float64, seed=5)
    y[1] *= 0.3
    ours = tq.srsim(x, y, reduction="none")
    alone = torch.cat([piq.srsim(x[i:i + 1], y[i:i + 1], reduction="none") for i in range(3)])
    torch.testing.assert_close(ours, alone, atol=2e-6, rtol=0)


def test_grey_input_warns_as_piq(tq):
    x, y = pair((1, 1, 64, 64))
    for name in ("mdsi", "vsi"):
        with pytest.warns(UserWarning, match="converted to RGB"):
            getattr(tq, name)(x, y)


BAD_INPUTS = [
    ("gmsd", lambda x, y: ((x.numpy(), y), {})),
    ("gmsd", lambda x, y: ((x, y[..., :-1]), {})),
    ("gmsd", lambda x, y: ((x[0], y[0]), {})),
    ("gmsd", lambda x, y: ((x - 0.5, y), {})),
    ("gmsd", lambda x, y: ((x, y), {"reduction": "max"})),
    ("multi_scale_gmsd", lambda x, y: ((x[..., :16, :16], y[..., :16, :16]), {})),
    ("multi_scale_gmsd", lambda x, y: ((x[:, :1], y[:, :1]), {"chromatic": True})),
    ("multi_scale_gmsd", lambda x, y: ((x * 2, y), {})),
    ("mdsi", lambda x, y: ((x, y), {"combination": "prod"})),
    ("mdsi", lambda x, y: ((x.unsqueeze(0), y.unsqueeze(0)), {})),
    ("srsim", lambda x, y: ((x[:, :1], y[:, :1]), {"chromatic": True})),
    ("srsim", lambda x, y: ((x[..., :30, :30], y[..., :30, :30]), {})),
    ("srsim", lambda x, y: ((x, y * 1.5), {})),
    ("vsi", lambda x, y: ((x, -y), {})),
    ("haarpsi", lambda x, y: ((x[..., :15, :], y[..., :15, :]), {})),
    ("haarpsi", lambda x, y: ((x[..., :20, :20], y[..., :20, :20]), {"scales": 4})),
    ("dss", lambda x, y: ((x, y), {"sigma_weight": 0})),
    ("dss", lambda x, y: ((x, y), {"percentile": 1.5})),
    ("dss", lambda x, y: ((x[..., :2, :], y[..., :2, :]), {})),
    ("dss", lambda x, y: ((x, y[:, :, :-1]), {})),
    ("vif_p", lambda x, y: ((x[..., :40, :], y[..., :40, :]), {})),
    ("vif_p", lambda x, y: ((x, y * 3), {})),
]


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)), ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_INPUTS)])
def test_bad_input_raises_what_piq_raises(piq, tq, case):
    name, make = BAD_INPUTS[case]
    x, y = pair((1, 3, 96, 96), torch.float32)
    args, kwargs = make(x, y)
    with pytest.raises(Exception) as theirs:
        getattr(piq, name)(*args, **kwargs)
    with pytest.raises(theirs.type):
        getattr(tq, name)(*args, **kwargs)


DELEGATED = [  # what turboiqa does not implement: piq's own code, so piq's value exactly
    ("gmsd", (2, 2, 40, 40), {}), ("gmsd", (1, 1, 3, 3), {}),
    ("multi_scale_gmsd", (1, 4, 40, 40), {}),
    ("vsi", (1, 3, 40, 40), {"c1": 2.0}), ("vsi", (1, 3, 40, 40), {"omega_0": 0.03}),
    ("haarpsi", (1, 3, 40, 40), {"scales": 2}),
    ("dss", (1, 3, 96, 96), {"percentile": 0.1}), ("dss", (1, 3, 96, 96), {"dct_size": 4}),
    ("dss", (1, 3, 40, 40), {}),  # 25 blocks, fine; and 9 blocks below
    ("dss", (1, 3, 24, 24), {}),
    ("vif_p", (1, 2, 48, 48), {}),
    ("srsim", (1, 3, 80, 80), {"scale": 2.0}),
]


@pytest.mark.parametrize("case", range(len(DELEGATED)), ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(DELEGATED)])
def test_delegated_options_are_piqs_values(piq, tq, case):
    from turboiqa.compat import patch

    name, shape, kwargs = DELEGATED[case]
    x, y = pair(shape)

    def both():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                theirs = getattr(piq, name)(x, y, reduction="none", **kwargs)
            except Exception as exc:  # noqa: BLE001 - piq's own failure must be ours too
                with pytest.raises(type(exc)):
                    getattr(tq, name)(x, y, reduction="none", **kwargs)
                return
            ours = getattr(tq, name)(x, y, reduction="none", **kwargs)
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0, equal_nan=True)

    both()
    with patch("piq"):  # piq's names are ours now: the delegation must still reach piq's own code
        assert getattr(piq, name) is getattr(tq, name)
        both()


def test_dss_takes_values_outside_data_range_as_piq(piq, tq):
    x, y = pair((1, 3, 96, 96))
    torch.testing.assert_close(tq.dss(x * 1.2 - 0.1, y), piq.dss(x * 1.2 - 0.1, y), atol=1e-10, rtol=0)


def test_complex_ssim_under_patch_reaches_piq(piq, tq):
    from turboiqa.compat import patch

    x, y = pair((1, 1, 40, 40, 2))
    want = piq.ssim(x, y, data_range=1.0)
    with patch("piq"):
        torch.testing.assert_close(piq.ssim(x, y, data_range=1.0), want, atol=0, rtol=0)


def test_loss_attributes_are_piqs(piq, tq):
    """The partial each piq loss keeps (``VSILoss().vsi``, …) and its reduction/data_range attributes."""
    for cls, attribute in (("SRSIMLoss", "srsim"), ("VSILoss", "vsi"), ("HaarPSILoss", "haarpsi"), ("DSSLoss", "dss"),
                           ("MDSILoss", "mdsi")):
        ours, theirs = getattr(tq, cls)(reduction="sum", data_range=255), getattr(piq, cls)(reduction="sum",
                                                                                           data_range=255)
        assert callable(getattr(ours, attribute)) and callable(getattr(theirs, attribute))
        assert (ours.reduction, ours.data_range) == (theirs.reduction, theirs.data_range) == ("sum", 255)


NEW_NAMES = ["gmsd", "GMSDLoss", "multi_scale_gmsd", "MultiScaleGMSDLoss", "mdsi", "MDSILoss", "srsim", "SRSIMLoss",
             "vsi", "VSILoss", "haarpsi", "HaarPSILoss", "dss", "DSSLoss", "vif_p", "VIFLoss"]


@pytest.mark.parametrize("name", NEW_NAMES)
def test_signatures_are_piqs(piq, tq, name):
    """Same parameter names, order, kinds and defaults (tensors compared by value), and accelerated."""
    import inspect

    assert name in tq.ACCELERATED and getattr(tq, name) is not getattr(piq, name)

    def params(obj):
        sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
        return [(p.name, p.kind, p.default) for p in sig.parameters.values()]

    ours, theirs = params(getattr(tq, name)), params(getattr(piq, name))
    assert [p[:2] for p in ours] == [p[:2] for p in theirs]
    for (n, _, a), (_, _, b) in zip(ours, theirs):
        assert a == b or abs(a - b) < 1e-15, (n, a, b)
