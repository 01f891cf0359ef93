"""One argument order for every metric (issue 11): ``metric(x, y, data_range, reduction, *, options)`` and
``Module(data_range, reduction, *, options)(x, y)``, with ``x`` the distorted image and ``y`` the reference, as piq
(x, y), pyiqa (target, ref) and torchmetrics (preds, target).

Symmetric metrics must give the same score with the pair swapped, so the order cannot matter for them. The two
asymmetric ones (IW-SSIM: the reference supplies the information weights; LPIPS+SWD: each distorted position is
matched in the reference's neighbourhood) must give the value of a computation whose roles are named, and a
different value with the pair swapped."""
import inspect

import pytest
import torch
import turboiqa
from deep_common import weights_dir  # noqa: F401
from test_lpips_swd import unfold_swd
from test_peers import pair
from turboiqa.metrics.iw_ssim import IW_SSIM_CONVENTIONS
from turboiqa.metrics.lpips import LPIPSNet
from turboiqa.metrics.ms_ssim import WANG_WEIGHTS
from turboiqa.reference import iw_ssim as twin
from turboiqa.window import gaussian_window

FUNCTIONS = {"psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS_SSIM", "fsim": "FSIM", "iw_ssim": "IW_SSIM",
             "lpips": "LPIPS", "dists": "DISTS", "deepsim": "DeepSim", "lpips_swd": "LPIPS_SWD",
             "vsi": "VSI", "haarpsi": "HaarPSI", "dss": "DSS", "gmsd": "GMSD", "ms_gmsd": "MS_GMSD",
             "mdsi": "MDSI", "srsim": "SRSIM", "vif": "VIF", "vif_p": "VIFp",
             "nlpd": "NLPD", "mad": "MAD", "cw_ssim": "CW_SSIM", "pu21_psnr": "PU21PSNR", "pu21_ssim": "PU21SSIM",
             "cvvdp": "CVVDP"}
# name → (function, options): every colour choice of FSIM is its own row.
SYMMETRIC = {
    "psnr": {}, "ssim": {}, "ms_ssim": {}, "fsim": {"color": "yiq"}, "fsimc": {"color": "yiq_chromatic"},
    "vsi": {}, "haarpsi": {}, "dss": {}, "gmsd": {}, "ms_gmsd": {}, "srsim": {}, "pu21_psnr": {}, "pu21_ssim": {},
}
DEEP_SYMMETRIC = {"lpips": {}, "dists": {}, "deepsim": {"layers": (3, 8, 15)}}


def function_of(name):
    return getattr(turboiqa, "fsim" if name == "fsimc" else name)


def module_of(name):
    return getattr(turboiqa, FUNCTIONS["fsim" if name == "fsimc" else name])


def distorted_and_reference(shape=(2, 3, 180, 184)):
    reference, distorted = pair(shape)  # pair() returns (smooth content, content + noise)
    return distorted, reference


# ------------------------------------------------------------------------------------------------ signatures


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_signature(name):
    parameters = list(inspect.signature(getattr(turboiqa, name)).parameters.values())
    assert [p.name for p in parameters[:4]] == ["x", "y", "data_range", "reduction"]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[:4])
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters[4:]), [p.name for p in parameters[4:]]
    assert "x`` distorted, ``y`` reference" in getattr(turboiqa, name).__doc__


@pytest.mark.parametrize("name", list(FUNCTIONS.values()))
def test_module_signature(name):
    module = getattr(turboiqa, name)
    parameters = list(inspect.signature(module.__init__).parameters.values())[1:]
    assert [p.name for p in parameters[:2]] == ["data_range", "reduction"]
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters[2:]), [p.name for p in parameters[2:]]
    assert list(inspect.signature(module.forward).parameters) == ["self", "x", "y"]


# -------------------------------------------------------------------------------------------- symmetric metrics


@pytest.mark.parametrize("name", list(SYMMETRIC))
def test_symmetric_metric_ignores_the_order(name):
    """PSNR, SSIM, MS-SSIM and FSIM/FSIMc are symmetric by definition: swapping the pair must not change them."""
    fn, options = function_of(name), SYMMETRIC[name]
    x, y = distorted_and_reference()
    forward = fn(x, y, 1.0, "none", **options)
    torch.testing.assert_close(fn(y, x, 1.0, "none", **options), forward, atol=1e-12, rtol=0)
    assert (forward - fn(y, y, 1.0, "none", **options)).abs().min() > 1e-3  # a pair that differs
    module = module_of(name)(1.0, "none", **options)
    torch.testing.assert_close(module(x, y), forward, atol=0, rtol=0)
    torch.testing.assert_close(module(y, x), forward, atol=1e-12, rtol=0)


@pytest.mark.usefixtures("weights_dir")
@pytest.mark.parametrize("name", list(DEEP_SYMMETRIC))
def test_symmetric_deep_metric_ignores_the_order(name):
    """LPIPS (squared feature differences), DISTS (symmetric texture/structure terms) and DeepSim (SSIM of feature
    maps with L = max(|x|, |y|)) are symmetric by definition."""
    fn, options = function_of(name), DEEP_SYMMETRIC[name]
    x, y = distorted_and_reference((2, 3, 64, 72))
    forward = fn(x, y, 1.0, "none", **options)
    torch.testing.assert_close(fn(y, x, 1.0, "none", **options), forward, atol=1e-10, rtol=0)
    assert (forward - fn(y, y, 1.0, "none", **options)).abs().min() > 1e-4
    module = module_of(name)(1.0, "none", **options).double()
    torch.testing.assert_close(module(x, y), forward, atol=1e-10, rtol=0)
    torch.testing.assert_close(module(y, x), forward, atol=1e-10, rtol=0)


# ------------------------------------------------------------------------------------------- asymmetric metrics


def iw_ssim_two_scales(reference: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
    """iwssim.m(reference, distorted) with Nsc = 2 (no parent band) from the pure-PyTorch twins, roles by name:
    band 1 pooled with info_content_weight_map(pyro, pyrd) (the weights model the reference), band 2 the plain
    mean of cs·l. Grey [0, 1] images, worked in 0…255 like MATLAB."""
    ref_band, ref_low = twin.laplacian_level(reference * 255, "matlab")
    dist_band, dist_low = twin.laplacian_level(distorted * 255, "matlab")
    inverse, eigenvalues = twin.spectral_terms(twin.neighbour_covariance(ref_band, None, 3))
    window = gaussian_window(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    weighted_cs, weight_sum = twin.pooled_cs(ref_band, dist_band, None, inverse, eigenvalues, 3, window, c2, 0.4,
                                             IW_SSIM_CONVENTIONS["matlab"].tol)
    low = twin.contrast_structure_map(ref_low, dist_low, window, c1, c2, with_luminance=True).mean(dim=(-2, -1))
    w = torch.tensor(WANG_WEIGHTS[:2], dtype=torch.float64)
    w = w / w.sum()
    return ((weighted_cs / weight_sum).view(-1) ** w[0]) * (low.view(-1) ** w[1])


def test_iw_ssim_weights_come_from_the_reference():
    x, y = distorted_and_reference((2, 1, 64, 72))
    want = iw_ssim_two_scales(reference=y, distorted=x)
    swapped = iw_ssim_two_scales(reference=x, distorted=y)
    assert (want - swapped).abs().min() > 1e-4  # the pair reveals the order
    got = turboiqa.iw_ssim(x, y, 1.0, "none", scales=2)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(turboiqa.IW_SSIM(1.0, "none", scales=2)(x, y), want, atol=1e-12, rtol=0)
    torch.testing.assert_close(turboiqa.iw_ssim(y, x, 1.0, "none", scales=2), swapped, atol=1e-12, rtol=0)


def test_iw_ssim_published_value_roles(tid_i01):
    """The published iwssim.m value 0.946804801436296 is iwssim.m(i01_01_5, I01) (piq's test passes the TID2013
    pair swapped, see test_iw_ssim.py): our y plays iwssim.m's first argument, so the distorted-first call
    iw_ssim(i01_01_5, I01) is iwssim.m(I01, i01_01_5) and scores differently."""
    i01_01_5, i01 = (t.double() for t in tid_i01)
    assert turboiqa.iw_ssim(i01, i01_01_5, 255).item() == pytest.approx(0.946804801436296, abs=1e-12)
    assert abs(turboiqa.iw_ssim(i01_01_5, i01, 255).item() - 0.946804801436296) > 1e-4


@pytest.mark.usefixtures("weights_dir")
def test_lpips_swd_anchors_the_distorted_image():
    """For each position of the distorted features, the nearest reference feature in a 3×3 neighbourhood (SPECS
    §14): the SWD written here with the roles named, on the same LPIPS features."""
    x, y = distorted_and_reference((2, 3, 64, 72))
    net = LPIPSNet("alex").double()
    with torch.no_grad():
        distorted_features, reference_features = net.features(x * 2 - 1), net.features(y * 2 - 1)
    heads = net.heads

    def swd(anchor_features, searched_features):
        return sum(unfold_swd(a, b, h, 1) for a, b, h in zip(anchor_features, searched_features, heads))

    want, swapped = swd(distorted_features, reference_features), swd(reference_features, distorted_features)
    assert (want - swapped).abs().min() > 1e-4
    torch.testing.assert_close(turboiqa.lpips_swd(x, y, 1.0, "none"), want, atol=1e-9, rtol=0)
    torch.testing.assert_close(turboiqa.LPIPS_SWD(1.0, "none").double()(x, y), want, atol=1e-9, rtol=0)
    torch.testing.assert_close(turboiqa.lpips_swd(y, x, 1.0, "none"), swapped, atol=1e-9, rtol=0)


# -------------------------------------------------------------------------------------- old spellings fail loudly


def test_options_are_keywords():
    with pytest.raises(TypeError, match="data_range must be a number, got 'vgg'.*by keyword"):
        turboiqa.LPIPS("vgg")  # net used to come first
    with pytest.raises(TypeError, match="data_range must be a number"):
        turboiqa.LPIPS_SWD("alex")
    with pytest.raises(TypeError, match="positional"):
        turboiqa.SSIM(1.0, "mean", True)
    x, y = distorted_and_reference((1, 3, 40, 40))
    with pytest.raises(TypeError, match="positional"):
        turboiqa.ssim(x, y, 1.0, "mean", "matlab")
    with pytest.raises(ValueError, match="reduction"):
        turboiqa.SSIM(1.0, "max")  # checked when built, not at the first call
    with pytest.raises(TypeError, match="SSIM got an unexpected argument 'sigma'"):
        turboiqa.SSIM(sigma=1.5)


def test_renamed_options_name_their_replacement():
    x, y = distorted_and_reference((1, 3, 180, 180))
    with pytest.raises(TypeError, match="ms_ssim\\(\\) has no argument 'weights'.*scale_weights="):
        turboiqa.ms_ssim(x, y, weights=WANG_WEIGHTS)
    with pytest.raises(TypeError, match="MS_SSIM has no argument 'weights'.*scale_weights="):
        turboiqa.MS_SSIM(weights=WANG_WEIGHTS)
    equal = torch.tensor([0.2] * 5, dtype=torch.float64)
    assert turboiqa.ms_ssim(x, y, scale_weights=equal).item() != turboiqa.ms_ssim(x, y).item()
    with pytest.raises(TypeError, match="fsim\\(\\) has no argument 'chromatic'.*color='yiq_chromatic'"):
        turboiqa.fsim(x, y, chromatic=True)
    with pytest.raises(TypeError, match="FSIM has no argument 'chromatic'"):
        turboiqa.FSIM(chromatic=True)
    with pytest.raises(ValueError, match="color must be one of"):
        turboiqa.fsim(x, y, color="rgb")
    # FSIMc differs from FSIM on colour input and equals it on grey input (FeatureSIM.m)
    assert turboiqa.fsim(x, y, color="yiq_chromatic").item() != turboiqa.fsim(x, y).item()
    grey_x, grey_y = x[:, :1], y[:, :1]
    assert turboiqa.fsim(grey_x, grey_y, color="yiq_chromatic").item() == turboiqa.fsim(grey_x, grey_y).item()


def test_classic_metric_directions():
    """The evaluation toolkit's direction of each classic FR metric (its function attribute or the table)."""
    from turboiqa.eval.runner import lower_is_better

    lower = {"gmsd", "ms_gmsd", "ms_gmsdc", "mdsi", "mdsi_mult", "nlpd", "mad"}
    higher = {"vif", "vif_p", "vsi", "haarpsi", "dss", "srsim", "srsimc", "cw_ssim"}
    for name in (lower | higher) & set(turboiqa.METRICS):
        assert lower_is_better(name, turboiqa.METRICS[name]) == (name in lower), name
