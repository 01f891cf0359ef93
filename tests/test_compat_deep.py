"""LPIPS and DISTS through turboiqa.compat.piq and turboiqa.compat.torchmetrics against the installed piq 0.8 and
torchmetrics, both sides holding the same weight tensors (tests/peer_stubs.py): values over the peers' argument
grids on random and real (TID2013) images, gradients, piq's resize and grey-input rules, the peers' errors."""
import pytest
import torch
from conftest import import_or_skip
from deep_common import features_state, tid_batch, weights_dir  # noqa: F401
from peer_stubs import FEATURES, install_torchvision_stub, patched_hub_load
from turboiqa.nets.weights import load_state

pytestmark = pytest.mark.usefixtures("weights_dir")


@pytest.fixture(scope="module")
def piq(weights_dir):  # noqa: F811
    install_torchvision_stub()  # piq's networks are built from turboiqa's trunk tensors
    FEATURES["vgg16"] = features_state("vgg16")
    return import_or_skip("piq")


@pytest.fixture(scope="module")
def tq():
    import turboiqa.compat.piq as tq

    return tq


def piq_lpips(piq, **kwargs):
    heads = load_state("lpips-vgg")
    with patched_hub_load([heads[f"lin{i}.model.1.weight"] for i in range(5)]):
        return piq.LPIPS(**kwargs)


def piq_dists(piq, **kwargs):
    with patched_hub_load(load_state("dists")):
        return piq.DISTS(**kwargs)


def pair(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def close(a, b, dtype):
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert a.shape == b.shape and a.dtype == b.dtype
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


LPIPS_OPTIONS = [{}, {"replace_pooling": True}, {"distance": "mae"}, {"reduction": "none"}, {"reduction": "sum"},
                 {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}]


@pytest.mark.parametrize("kwargs", LPIPS_OPTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_piq_lpips(piq, tq, kwargs, dtype):
    ours, theirs = tq.LPIPS(**kwargs), piq_lpips(piq, **kwargs)
    for shape in [(2, 3, 64, 80), (1, 1, 71, 53)]:  # grey input: piq broadcasts it against the 3-channel mean
        x, y = pair(shape, dtype)
        with torch.no_grad():
            close(ours(x, y), theirs(x, y), dtype)


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "none"}, {"reduction": "sum"},
                                    {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_piq_dists(piq, tq, kwargs, dtype):
    ours, theirs = tq.DISTS(**kwargs), piq_dists(piq, **kwargs)
    # (264, 257): shorter side > 256, so piq's plain-bilinear resize by 256 / 257 runs
    for shape in [(2, 3, 64, 80), (2, 1, 48, 50), (1, 3, 264, 257)]:
        x, y = pair(shape, dtype)
        with torch.no_grad():
            close(ours(x, y), theirs(x, y), dtype)


def test_piq_real_images_and_gradients(piq, tq, tid_pairs):
    d, r = tid_batch(tid_pairs[:2], (272, 320))  # shorter side > 256: piq's DISTS resizes
    x, y = d.float() / 255, r.float() / 255
    for ours, theirs in [(tq.LPIPS(reduction="none"), piq_lpips(piq, reduction="none")),
                         (tq.DISTS(reduction="none"), piq_dists(piq, reduction="none"))]:
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        a, b = ours(xa, y), theirs(xb, y)
        close(a.detach(), b.detach(), torch.float32)
        a.sum().backward()
        b.sum().backward()
        # float32 noise: piq's own float32 LPIPS gradient here is 1.0e-3 (relative L2) from its float64 gradient,
        # ours 1.3e-3, both sides 1.3e-3 apart (max-pool windows whose two largest activations differ by a rounding
        # route the gradient to different pixels). The float64 test below is exact.
        relative = float((xa.grad - xb.grad).norm() / xb.grad.norm())
        assert relative < 3e-3, relative


def test_piq_gradients_float64(piq, tq):
    x, y = pair((1, 3, 40, 44), torch.float64)
    for ours, theirs in [(tq.LPIPS(distance="mae"), piq_lpips(piq, distance="mae")),
                         (tq.LPIPS(replace_pooling=True), piq_lpips(piq, replace_pooling=True)),
                         (tq.DISTS(), piq_dists(piq))]:
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ours(xa, y).backward()
        theirs(xb, y).backward()
        torch.testing.assert_close(xa.grad, xb.grad, atol=1e-12, rtol=1e-9)


def test_piq_errors_and_result_usable_in_autograd(piq, tq):
    x, y = pair((1, 3, 32, 32))
    for ours, theirs in [(tq.LPIPS(), piq_lpips(piq)), (tq.DISTS(), piq_dists(piq))]:
        for bad in [(x, y[..., :16]), (x[0], y[0]), (x, y.numpy())]:
            with pytest.raises((AssertionError, ValueError)) as want:  # DISTS unpacks the shape before its checks
                theirs(*bad)
            with pytest.raises(want.type):
                ours(*bad)
        weight = torch.ones((), requires_grad=True)  # piq's output is an ordinary tensor, not an inference tensor
        (ours(x, y) * weight).backward()
        assert weight.grad is not None
    with pytest.raises(KeyError):
        piq_lpips(piq, distance="l3")
    with pytest.raises(KeyError):
        tq.LPIPS(distance="l3")


def test_piq_patch_swaps_lpips_and_dists(piq, tq):
    import turboiqa.compat as compat

    original = piq.LPIPS
    with compat.patch("piq"):
        assert piq.LPIPS is tq.LPIPS and piq.DISTS is tq.DISTS
    assert piq.LPIPS is original


# ------------------------------------------------------------------------------------------------ torchmetrics


@pytest.fixture(scope="module")
def tm(weights_dir):  # noqa: F811
    import_or_skip("torchmetrics")
    install_torchvision_stub()
    FEATURES["vgg16"], FEATURES["alexnet"] = features_state("vgg16"), features_state("alexnet")
    import torchmetrics.functional.image.dists as tm_dists
    import torchmetrics.functional.image.lpips as tm_lpips
    import torchmetrics.image.lpip as tm_lpip

    # torchmetrics checks for the torchvision distribution before building its networks: ours are stubs
    tm_dists._TORCHVISION_AVAILABLE = tm_lpips._TORCHVISION_AVAILABLE = tm_lpip._TORCHVISION_AVAILABLE = True
    from torchvision.models import VGG16_Weights, vgg16  # the stub's; bound at import only with torchvision

    tm_dists.vgg16, tm_dists.VGG16_Weights = vgg16, VGG16_Weights
    from torchmetrics.image.dists import DeepImageStructureAndTextureSimilarity
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity, DeepImageStructureAndTextureSimilarity


@pytest.fixture(scope="module")
def ttm():
    import turboiqa.compat.torchmetrics as ttm

    return ttm


def batches(n=3, shape=(2, 3, 64, 72)):
    return [pair(shape, seed=i) for i in range(n)]


@pytest.mark.parametrize("kwargs", [{}, {"net_type": "vgg", "normalize": True}, {"reduction": "sum"},
                                    {"reduction": "none", "normalize": True}])
def test_torchmetrics_lpips(tm, ttm, kwargs):
    theirs, ours = tm[0](**kwargs), ttm.LearnedPerceptualImagePatchSimilarity(**kwargs)
    for x, y in batches():
        if not kwargs.get("normalize"):
            x, y = x * 2 - 1, y * 2 - 1
        close(ours(x, y), theirs(x, y), torch.float32)  # forward: the batch's value
    close(ours.compute(), theirs.compute(), torch.float32)
    x, y = pair((1, 3, 40, 40))
    ours.update(x, y)
    theirs.update(x, y)
    close(ours.compute(), theirs.compute(), torch.float32)  # a batch of one is kept as a 0-d tensor by both


def test_torchmetrics_lpips_errors(tm, ttm):
    x, y = pair((1, 3, 32, 32))
    for cls in (tm[0], ttm.LearnedPerceptualImagePatchSimilarity):
        with pytest.raises(ValueError, match="net_type"):
            cls(net_type="resnet")
        with pytest.raises(ValueError, match="reduction"):
            cls(reduction="max")
        with pytest.raises(ValueError, match="range"):
            cls(normalize=True).update(x * 2, y)
        with pytest.raises(ValueError, match="shape"):
            cls().update(x[:, :1], y[:, :1])


def test_torchmetrics_dists(tm, ttm, tid_pairs):
    theirs, ours = tm[1](), ttm.DeepImageStructureAndTextureSimilarity()
    data = batches()
    d, r = tid_batch(tid_pairs[:2], (200, 240))
    data.append((d.float() / 255, r.float() / 255))
    for x, y in data:
        close(ours(x, y), theirs(x, y), torch.float32)
    close(ours.compute(), theirs.compute(), torch.float32)
    theirs_sum = tm[1](reduction="sum")
    ours_sum = ttm.DeepImageStructureAndTextureSimilarity(reduction="sum")
    for x, y in data[:2]:
        theirs_sum.update(x, y)
        ours_sum.update(x, y)
    close(ours_sum.compute(), theirs_sum.compute(), torch.float32)


def test_torchmetrics_dists_gradient(tm, ttm):
    x, y = pair((1, 3, 48, 48))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ttm.DeepImageStructureAndTextureSimilarity()(xa, y).backward()
    tm[1]()(xb, y).backward()
    assert float((xa.grad - xb.grad).norm() / xb.grad.norm()) < 1e-4


def _ddp_worker(rank, world, port, data, results):
    import torch.distributed as dist
    import turboiqa.compat.torchmetrics as ttm

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        metrics = [ttm.LearnedPerceptualImagePatchSimilarity(normalize=True),
                   ttm.DeepImageStructureAndTextureSimilarity()]
        for k, (x, y) in enumerate(data):
            if k % world == rank:
                for m in metrics:
                    m.update(x, y)
        values = [m.compute() for m in metrics]  # gathers LPIPS' score list and sums DISTS' states
        if rank == 0:
            results.put([v.item() for v in values])
    finally:
        dist.destroy_process_group()


def test_torchmetrics_deep_classes_two_process_ddp(ttm):
    import socket

    import torch.multiprocessing as mp

    data = batches(4, shape=(1, 3, 64, 64))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.get_context("spawn").Queue()
    mp.start_processes(_ddp_worker, args=(2, port, data, results), nprocs=2, join=True, start_method="spawn")
    got = results.get(timeout=60)
    single = [ttm.LearnedPerceptualImagePatchSimilarity(normalize=True), ttm.DeepImageStructureAndTextureSimilarity()]
    for x, y in data:
        for m in single:
            m.update(x, y)
    assert got == pytest.approx([m.compute().item() for m in single], abs=1e-6)
