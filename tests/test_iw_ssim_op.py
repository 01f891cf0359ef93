"""IW-SSIM's native per-band operators against their PyTorch twins (turboiqa.reference.iw_ssim), and iw_ssim
with the native operators against the reference path."""
import pytest
import torch
from turboiqa import _ops
from turboiqa.metrics.iw_ssim import iw_ssim, laplacian_pyramid
from turboiqa.reference import iw_ssim as twin
from turboiqa.window import gaussian_window

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE or not hasattr(torch.ops.turboiqa, "iw_pooled_cs"),
                                reason="compiled extension without the IW-SSIM operators")

WINDOW = gaussian_window(11, 1.5)
C2 = (0.03 * 255) ** 2
SIGMA_NSQ, TOL = 0.4, 1e-15


def random_bands(shape, dtype, seed=0):
    """Band-pass-like (ref, dist, parent): smooth zero-mean texture in 0…255 units and a noisy, scaled copy."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    ref = torch.nn.functional.avg_pool2d(torch.randn(shape, generator=g, dtype=torch.float64), 3, 1, 1) * 20
    dist = 0.8 * ref + 3 * torch.randn(shape, generator=g, dtype=torch.float64)
    parent = torch.randn(n, c, (h + 1) // 2, (w + 1) // 2, generator=g, dtype=torch.float64) * 30
    return ref.to(dtype), dist.to(dtype), parent.to(dtype)


@pytest.fixture(scope="module")
def real_bands(tid_i01):
    """The finest two Laplacian bands of TID2013 I01 (reference) and i01_01_5 (distorted), luma in 0…255."""
    dist, ref = (t.double().mul(torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1))
                 .sum(1, keepdim=True) for t in tid_i01)
    ref_bands = laplacian_pyramid(ref, 3, "matlab")
    dist_bands = laplacian_pyramid(dist, 3, "matlab")
    return ref_bands[0], dist_bands[0], ref_bands[1]


def band_cases(real_bands):
    yield "random", random_bands((2, 2, 37, 45), torch.float64)
    yield "random-odd", random_bands((1, 3, 31, 29), torch.float64, seed=1)
    yield "tid-i01", real_bands


def relative_error(got, want):
    return ((got.double() - want.double()).abs() / want.double().abs().clamp(min=1e-300)).max().item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("blk_size", [3, 5])
@pytest.mark.parametrize("with_parent", [True, False])
def test_covariance_matches_twin(real_bands, dtype, blk_size, with_parent):
    for name, (ref, _, parent) in band_cases(real_bands):
        ref, parent = ref.to(dtype), (parent.to(dtype) if with_parent else None)
        got = _ops.iw_neighbour_covariance(ref, parent, blk_size)
        want = twin.neighbour_covariance(ref.double(), None if parent is None else parent.double(), blk_size)
        k = blk_size * blk_size + with_parent
        assert got.shape == (*ref.shape[:2], k, k) and got.dtype == dtype, name
        scale = want.diagonal(dim1=-2, dim2=-1).amax(-1)[..., None, None]  # entries relative to the variances
        err = ((got.double() - want) / scale).abs().max().item()
        assert err < (1e-13 if dtype == torch.float64 else 1e-5), (name, err)
        assert torch.equal(got, got.mT), name


def spectral(ref, parent, blk_size):
    return twin.spectral_terms(twin.neighbour_covariance(ref, parent, blk_size))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("blk_size", [3, 5])
@pytest.mark.parametrize("with_parent", [True, False])
def test_pooled_cs_matches_twin(real_bands, dtype, blk_size, with_parent):
    for name, (ref, dist, parent) in band_cases(real_bands):
        parent = parent if with_parent else None
        inverse, eigenvalues = spectral(ref, parent, blk_size)
        args = (blk_size, WINDOW, C2, SIGMA_NSQ, TOL)
        want_cs, want_w = twin.pooled_cs(ref, dist, parent, inverse, eigenvalues, *args)  # float64 truth
        cast = (lambda t: None if t is None else t.to(dtype))
        got_cs, got_w = _ops.iw_pooled_cs(cast(ref), cast(dist), cast(parent), cast(inverse), cast(eigenvalues),
                                          *args)
        assert got_cs.shape == ref.shape[:2] and got_cs.dtype == got_w.dtype == torch.float64, name
        tol = 1e-11 if dtype == torch.float64 else 1e-4
        assert relative_error(got_w, want_w) < tol, name
        assert relative_error(got_cs / got_w, want_cs / want_w) < tol, name


def test_pooled_cs_float32_twin_agreement(real_bands):
    # Both sides in float32: the native weights are computed in double from float32 statistics, so they sit at
    # least as close to the float64 truth as the float32 twin does.
    ref, dist, parent = (t.float() for t in real_bands)
    inverse, eigenvalues = spectral(ref, parent, 3)
    args = (3, WINDOW, C2, SIGMA_NSQ, TOL)
    truth = twin.pooled_cs(*(t.double() for t in (ref, dist, parent, inverse, eigenvalues)), *args)
    native = _ops.iw_pooled_cs(ref, dist, parent, inverse, eigenvalues, *args)
    reference = twin.pooled_cs(ref, dist, parent, inverse, eigenvalues, *args)
    ratio = [cs / w for cs, w in (truth, native, reference)]
    assert relative_error(ratio[1], ratio[0]) <= max(2 * relative_error(ratio[2], ratio[0]), 1e-6)


@pytest.mark.parametrize("op", ["covariance", "pooled"])
def test_thread_count_independent(real_bands, op):
    ref, dist, parent = (t.float() for t in real_bands)
    inverse, eigenvalues = spectral(ref, parent, 3)

    def run():
        if op == "covariance":
            return (_ops.iw_neighbour_covariance(ref, parent, 3),)
        return _ops.iw_pooled_cs(ref, dist, parent, inverse, eigenvalues, 3, WINDOW, C2, SIGMA_NSQ, TOL)

    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(run())
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_opcheck():
    ref, dist, parent = random_bands((2, 1, 23, 27), torch.float32)
    inverse, eigenvalues = (t.float() for t in spectral(ref.double(), parent.double(), 3))
    torch.library.opcheck(torch.ops.turboiqa.iw_neighbour_covariance.default, (ref, parent, 3))
    torch.library.opcheck(torch.ops.turboiqa.iw_neighbour_covariance.default, (ref.double(), None, 5))
    torch.library.opcheck(torch.ops.turboiqa.iw_pooled_cs.default,
                          (ref, dist, parent, inverse, eigenvalues, 3, list(WINDOW), C2, SIGMA_NSQ, TOL))
    torch.library.opcheck(torch.ops.turboiqa.iw_pooled_cs.default,
                          (ref, dist, None, inverse[..., :9, :9], eigenvalues[..., :9], 3, list(WINDOW), C2,
                           SIGMA_NSQ, TOL))


def test_bad_arguments():
    ref, dist, parent = random_bands((1, 1, 23, 27), torch.float32)
    inverse, eigenvalues = (t.float() for t in spectral(ref.double(), parent.double(), 3))
    cov = torch.ops.turboiqa.iw_neighbour_covariance
    pooled = torch.ops.turboiqa.iw_pooled_cs
    tail = (list(WINDOW), C2, SIGMA_NSQ, TOL)
    with pytest.raises(RuntimeError, match="band must be N x C x H x W"):
        cov(ref[0], None, 3)
    with pytest.raises(RuntimeError, match="band must be float32 or float64"):
        cov(ref.half(), None, 3)
    with pytest.raises(RuntimeError, match="blk_size must be odd and 1…7"):
        cov(ref, None, 4)
    with pytest.raises(RuntimeError, match="blk_size must be odd and 1…7"):
        cov(ref, None, 9)
    with pytest.raises(RuntimeError, match="parent must have the dtype of the band"):
        cov(ref, parent.double(), 3)
    with pytest.raises(RuntimeError, match="parent must have the band's N x C planes"):
        cov(ref, parent.expand(2, 1, -1, -1), 3)
    with pytest.raises(RuntimeError, match="smaller than the 3x3 neighbourhood"):
        cov(ref[..., :2, :], None, 3)
    with pytest.raises(RuntimeError, match="ref and dist must have the same shape"):
        pooled(ref, dist[..., 1:], parent, inverse, eigenvalues, 3, *tail)
    with pytest.raises(RuntimeError, match="ref and dist must have the same dtype"):
        pooled(ref, dist.double(), parent, inverse, eigenvalues, 3, *tail)
    with pytest.raises(RuntimeError, match=r"inverse must be N x C x K x K with K = 10"):
        pooled(ref, dist, parent, inverse[..., :9, :9], eigenvalues, 3, *tail)
    with pytest.raises(RuntimeError, match=r"eigenvalues must be N x C x K with K = 10"):
        pooled(ref, dist, parent, inverse, eigenvalues[..., :9], 3, *tail)
    with pytest.raises(RuntimeError, match="window length must be odd"):
        pooled(ref, dist, parent, inverse, eigenvalues, 3, [0.5, 0.5], C2, SIGMA_NSQ, TOL)
    with pytest.raises(RuntimeError, match=r"blk_size \(5\) must not exceed the window length \(3\)"):
        pooled(ref, dist, parent, inverse, eigenvalues, 5, [0.25, 0.5, 0.25], C2, SIGMA_NSQ, TOL)
    with pytest.raises(RuntimeError, match="smaller than the 11x11 window"):
        pooled(ref[..., :10, :], dist[..., :10, :], parent, inverse, eigenvalues, 3, *tail)
    with pytest.raises(RuntimeError, match="sigma_nsq must be positive"):
        pooled(ref, dist, parent, inverse, eigenvalues, 3, list(WINDOW), C2, 0.0, TOL)


def image_pair(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(shape, generator=g, dtype=torch.float64), 5, 1, 2,
                                       count_include_pad=False)
    y = (x + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("options", [{}, {"parent": False}, {"blk_size": 5}, {"scales": 3},
                                     {"convention": "piq"}, {"blk_size": 1}, {"blk_size": 7},
                                     {"blk_size": 9}])  # 9: beyond the native operators, the twins run
def test_iw_ssim_native_equals_reference(dtype, tol, options):
    x, y = image_pair((2, 3, 183, 197), dtype=dtype)
    native = iw_ssim(x, y, 1.0, "none", backend="native", **options)
    reference = iw_ssim(x, y, 1.0, "none", backend="reference", **options)
    assert native.dtype == reference.dtype == dtype
    torch.testing.assert_close(native, reference, atol=tol, rtol=0)


def test_iw_ssim_native_equals_reference_real(tid_pairs):
    for dist, ref in tid_pairs:
        for kind, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
            x, y = dist.to(kind) / 255, ref.to(kind) / 255
            native = iw_ssim(x, y, 1.0, backend="native").item()
            assert native == pytest.approx(iw_ssim(x, y, 1.0, backend="reference").item(), abs=tol)
        assert iw_ssim(dist, ref, 255, backend="native").item() == pytest.approx(
            iw_ssim(dist, ref, 255, backend="reference").item(), abs=1e-5)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_matlab_value_to_1e15(tid_i01, backend):
    dist, ref = (t.double() for t in tid_i01)
    assert abs(iw_ssim(ref, dist, 255, backend=backend).item() - 0.946804801436296) <= 1e-15


def test_gradient_routes_through_the_reference():
    x, y = image_pair((1, 1, 176, 181))
    x, y = (0.1 + 0.8 * t for t in (x, y))
    grads = []
    for backend in ("native", "reference"):
        xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
        iw_ssim(xs, ys, 1.0, backend=backend).backward()
        grads.append((xs.grad, ys.grad))
    for a, b in zip(*grads):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("expand", ["matlab", "piq"])
def test_laplacian_level_matches_twin(dtype, tol, expand):
    g = torch.Generator().manual_seed(2)
    for shape in [(2, 3, 37, 45), (1, 1, 3, 3), (1, 2, 64, 33), (1, 1, 4, 5), (1, 1, 5, 4), (1, 1, 6, 7),
                  (1, 1, 9, 8), (1, 1, 181, 200)]:
        x = (torch.rand(shape, generator=g, dtype=torch.float64) * 255).to(dtype)
        band, low = _ops.laplacian_level(x, expand)
        want_band, want_low = twin.laplacian_level(x, expand)
        assert band.shape == x.shape and low.shape == want_low.shape and band.dtype == low.dtype == dtype
        # absolute: values are up to 255·2 (binom5's DC gain), so 1e-12 is a few ulp in float64
        torch.testing.assert_close(band, want_band, atol=tol, rtol=0)
        torch.testing.assert_close(low, want_low, atol=tol, rtol=0)


def test_laplacian_level_real_image_and_threads(tid_i01):
    x = tid_i01[1].double()[:, :1, 1:, :-3]  # odd height
    for expand in ("matlab", "piq"):
        threads = torch.get_num_threads()
        try:
            results = []
            for n in (1, 3):
                torch.set_num_threads(n)
                results.append(_ops.laplacian_level(x, expand))
        finally:
            torch.set_num_threads(threads)
        assert all(torch.equal(a, b) for a, b in zip(*results))
        for got, want in zip(results[0], twin.laplacian_level(x, expand)):
            torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_laplacian_level_opcheck_and_arguments():
    x = torch.rand(2, 1, 13, 10)
    torch.library.opcheck(torch.ops.turboiqa.laplacian_level.default, (x, "matlab"))
    torch.library.opcheck(torch.ops.turboiqa.laplacian_level.default, (x.double(), "piq"))
    op = torch.ops.turboiqa.laplacian_level
    with pytest.raises(RuntimeError, match="planes must be N x C x H x W"):
        op(x[0], "matlab")
    with pytest.raises(RuntimeError, match="planes must be float32 or float64"):
        op(x.half(), "matlab")
    with pytest.raises(RuntimeError, match="planes must be at least 3x3"):
        op(x[..., :2], "matlab")
    with pytest.raises(RuntimeError, match="expand must be 'matlab' or 'piq'"):
        op(x, "zeros")


def test_twin_rejects_a_band_smaller_than_the_neighbourhood():
    # Issue 11 fuzz: neighbourhoods over 7×7 run on the twin even with backend='native'; on a band smaller than the
    # neighbourhood it divided by zero positions (an all-NaN covariance) where the operator raises.
    band = torch.rand(1, 1, 5, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"band is 5×8, smaller than the 9×9 neighbourhood"):
        _ops.iw_neighbour_covariance(band, None, 9, backend="native")
    with pytest.raises(ValueError, match="blk_size must be a positive odd integer"):
        twin.neighbour_covariance(band, None, 4)
    x = torch.rand(1, 1, 24, 24, dtype=torch.float64)  # the metric: scale 1's band is 24×24
    with pytest.raises(ValueError, match="smaller than the 25×25 neighbourhood"):
        iw_ssim(x, x.flip(-1), 1.0, scales=2, blk_size=25)
