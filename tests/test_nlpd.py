"""NLPD: the official NLP_dist.m scores (pyiqa's ResultsCalibra official results), pyiqa parity, batching, dtypes,
autograd, errors."""
import pytest
import torch
from conftest import import_or_skip, skip_missing
from peer_stubs import import_pyiqa_arch
from test_peers import pair
from turboiqa.metrics.nlpd import NLPD, NLPD_CONVENTIONS, nlpd

pytestmark = pytest.mark.usefixtures("one_thread")

# reference_values.csv (NLP_dist.m via pyiqa's ResultsCalibra/results_official.csv), order i03, i04, i06, i08, i19
NLPD_OFFICIAL = [0.561610096893874, 0.019534798560102, 0.015915631543598, 0.302802106557736, 0.432604962261603]
TOL = {"float64": 1e-12, "float32": 2e-7, "uint8": 2e-7}


def as_input(t, kind):
    if kind == "uint8":
        return t, 255
    return t.to(torch.float64 if kind == "float64" else torch.float32) / 255, 1.0


@pytest.fixture(scope="module")
def pyiqa_nlpd():
    arch = import_pyiqa_arch("nlpd_arch")
    if arch is None:
        skip_missing("pyiqa not installed (pip install --no-deps pyiqa==0.1.16)")
    return arch.NLPD(channels=1, test_y_channel=True)  # the torchvision stand-in turns filters by 180° too


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_official_tid_pairs(tid_pairs, kind):
    for (dist, ref), want in zip(tid_pairs, NLPD_OFFICIAL):
        x, L = as_input(dist, kind)
        y, _ = as_input(ref, kind)
        got = nlpd(x, y, L)
        assert got.dtype == (torch.float64 if kind == "float64" else torch.float32)
        assert got.item() == pytest.approx(want, abs=TOL[kind], rel=0)


def test_batched_equals_one_by_one(tid_pairs):
    dist = torch.cat([d for d, _ in tid_pairs])
    ref = torch.cat([r for _, r in tid_pairs])
    batched = nlpd(dist, ref, 255, "none")
    assert batched.shape == (5,)
    single = torch.cat([nlpd(d, r, 255, "none") for d, r in tid_pairs])
    torch.testing.assert_close(batched, single, atol=1e-7, rtol=0)
    assert nlpd(dist, ref, 255).item() == pytest.approx(batched.mean().item(), abs=1e-7)
    assert nlpd(dist, ref, 255, "sum").item() == pytest.approx(batched.sum().item(), abs=1e-6)


def test_official_needs_the_5x5_filter_and_8bit_grey(tid_pairs):
    """The two differences from pyiqa both matter at the official values' precision (i04: saturation change)."""
    x, y = as_input(tid_pairs[1][0], "float64")[0], as_input(tid_pairs[1][1], "float64")[0]
    assert abs(nlpd(x, y, convention="pyiqa").item() - NLPD_OFFICIAL[1]) > 1e-3


@pytest.mark.parametrize("shape", [(2, 3, 67, 45), (1, 3, 100, 129), (1, 3, 33, 64)])
def test_pyiqa_random(pyiqa_nlpd, shape):
    x, y = pair(shape)
    # float64: pyiqa's module in double precision. pyiqa's 5×5 Burt–Adelson filter holds the float32 roundings of
    # the 2-D products (0.0025, 0.0125, …); turboiqa filters separably with the float32 1-D taps: ~1e-8 apart.
    want = pyiqa_nlpd.double()(x, y)
    torch.testing.assert_close(nlpd(x, y, 1.0, "none", convention="pyiqa"), want, atol=5e-8, rtol=0)
    # float32 (pyiqa's default): summation order differs (separable filters, transposed convolution)
    want32 = pyiqa_nlpd.float()(x.float(), y.float())
    torch.testing.assert_close(nlpd(x.float(), y.float(), 1.0, "none", convention="pyiqa"), want32, atol=1e-6, rtol=0)


def test_pyiqa_real_images(pyiqa_nlpd, tid_pairs):
    for dist, ref in tid_pairs:
        x, y = dist.float() / 255, ref.float() / 255
        want = pyiqa_nlpd.float()(x, y)
        torch.testing.assert_close(nlpd(x, y, 1.0, "none", convention="pyiqa"), want, atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore:nlpd.*clamping:RuntimeWarning")  # frame-analytics on small images
@pytest.mark.parametrize("shape", [(2, 3, 67, 45), (1, 1, 40, 33), (1, 3, 100, 129)])
def test_frame_analytics(shape):
    fa = import_or_skip("frame_analytics")
    x, y = pair(shape)
    want = fa.nlpd(x, y, data_range=1.0, reduction="none")
    torch.testing.assert_close(nlpd(x, y, 1.0, "none", convention="frame_analytics"), want, atol=1e-12, rtol=0)
    # float32: frame-analytics returns float64 (its per-level MSE is accumulated in float64), turboiqa float32;
    # turboiqa filters separably, frame-analytics with a 5×5 kernel: float32 summation order (values ~3–4)
    got = nlpd(x.float(), y.float(), 1.0, "none", convention="frame_analytics")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), fa.nlpd(x.float(), y.float(), data_range=1.0, reduction="none"),
                               atol=5e-6, rtol=0)
    assert nlpd(y, y, convention="frame_analytics").item() == 0


def test_properties():
    x, y = pair((2, 3, 64, 48))
    assert torch.equal(nlpd(y, y, reduction="none"), torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(nlpd(x, y), nlpd(y, x), atol=1e-15, rtol=0)  # symmetric
    # grey input is used as it is
    g = nlpd(x[:, :1], y[:, :1], reduction="none")
    assert g.shape == (2,) and (g > 0).all()
    # odd sizes and the smallest size
    x, y = pair((1, 1, 32, 33))
    assert nlpd(x, y).item() > 0
    assert set(NLPD_CONVENTIONS) == {"matlab", "pyiqa", "frame_analytics"}
    assert nlpd.lower_is_better is True


def test_uint8_equals_float(tid_pairs):
    d, r = tid_pairs[4]
    d, r = d[..., :96, :128], r[..., :96, :128]
    torch.testing.assert_close(nlpd(d, r, 255), nlpd(d.float() / 255, r.float() / 255), atol=1e-7, rtol=0)


def test_gradcheck():
    x, y = pair((1, 1, 32, 34))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: nlpd(a, y), (x,), eps=1e-6, atol=1e-6)
    # RGB: the 8-bit rounding passes the gradient straight through
    x, y = pair((1, 3, 32, 32))
    x.requires_grad_(True)
    nlpd(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_module_equals_functional():
    x, y = pair((2, 3, 40, 36))
    m = NLPD(reduction="none", convention="pyiqa")
    torch.testing.assert_close(m(x, y), nlpd(x, y, reduction="none", convention="pyiqa"), atol=0, rtol=0)
    with pytest.raises(ValueError, match="no loss form"):
        NLPD(loss=True)
    with pytest.raises(TypeError, match="unexpected argument"):
        NLPD(levels=5)


def test_errors():
    x, y = pair((1, 3, 40, 40))
    with pytest.raises(ValueError, match="at least 32"):
        nlpd(x[..., :31, :], y[..., :31, :])
    with pytest.raises(ValueError, match="convention"):
        nlpd(x, y, convention="piq")
    with pytest.raises(ValueError, match="channels in x"):
        nlpd(x[:, :2], y[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        nlpd(x, y[..., :39])
    with pytest.raises(ValueError, match="reduction"):
        nlpd(x, y, reduction="max")
