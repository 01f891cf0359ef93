"""turboiqa.compat.torchmetrics against torchmetrics' own classes: same values over several update() calls, same
states (so DDP sync and merge_state are torchmetrics' own), fallback to torchmetrics' code for what turboiqa does
not compute, and a real 2-process DDP run (gloo, CPU) equal to one process over all the data."""
import pytest
import torch
from conftest import import_or_skip

tm_image = import_or_skip("torchmetrics.image")
compat = pytest.importorskip("turboiqa.compat.torchmetrics")

NAMES = ["StructuralSimilarityIndexMeasure", "MultiScaleStructuralSimilarityIndexMeasure", "PeakSignalNoiseRatio"]


def batches(count=3, shape=(2, 3, 180, 190), seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        x = torch.rand(shape, generator=g, dtype=torch.float64)
        y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        out.append((x.to(dtype), y.to(dtype)))
    return out


def make(library, name, **kwargs):
    return getattr(library, name)(data_range=1.0, **kwargs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kwargs", [{}, {"reduction": "none"}, {"reduction": "sum"}, {"k2": 0.05}],
                         ids=["default", "none", "sum", "k2"])
def test_updates_and_compute_match_torchmetrics(name, kwargs):
    if name == "PeakSignalNoiseRatio":
        kwargs = {k: v for k, v in kwargs.items() if k == "reduction"} if "reduction" not in kwargs else {}
    ours, theirs = make(compat, name, **kwargs), make(tm_image, name, **kwargs)
    assert isinstance(ours, getattr(tm_image, name))
    for x, y in batches():
        torch.testing.assert_close(ours(x, y), theirs(x, y), atol=1e-6, rtol=1e-6)  # forward: this batch's value
    torch.testing.assert_close(ours.compute(), theirs.compute(), atol=1e-6, rtol=1e-6)
    for state in theirs._defaults:
        a, b = getattr(ours, state), getattr(theirs, state)
        if isinstance(a, list):
            torch.testing.assert_close(torch.cat(a), torch.cat(b), atol=1e-6, rtol=1e-6)
        else:
            assert a.dtype == b.dtype
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-6)
    ours.reset()
    assert ours.total == 0


def test_uncovered_arguments_run_torchmetrics_code():
    x, y = batches(1)[0]
    for kwargs in ({"gaussian_kernel": False}, {"return_full_image": True}, {"kernel_size": (11, 9)},
                   {"data_range": (0.1, 0.9)}):
        args = {"data_range": 1.0, **kwargs}
        ours = compat.StructuralSimilarityIndexMeasure(**args)
        theirs = tm_image.StructuralSimilarityIndexMeasure(**args)
        ours.update(x, y)
        theirs.update(x, y)
        a, b = ours.compute(), theirs.compute()
        torch.testing.assert_close(a, b)
    # values outside [0, data_range]: torchmetrics computes them as given; so do we (its code)
    ours, theirs = compat.PeakSignalNoiseRatio(data_range=0.5), tm_image.PeakSignalNoiseRatio(data_range=0.5)
    ours.update(x, y)
    theirs.update(x, y)
    torch.testing.assert_close(ours.compute(), theirs.compute())


def test_merge_state():
    (x1, y1), (x2, y2) = batches(2)
    a, b = compat.StructuralSimilarityIndexMeasure(data_range=1.0), compat.StructuralSimilarityIndexMeasure(data_range=1.0)
    a.update(x1, y1)
    b.update(x2, y2)
    a.merge_state(b)
    whole = tm_image.StructuralSimilarityIndexMeasure(data_range=1.0)
    whole.update(torch.cat([x1, x2]), torch.cat([y1, y2]))
    torch.testing.assert_close(a.compute(), whole.compute(), atol=1e-6, rtol=0)


def _ddp_worker(rank, world, port, data, results):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        metrics = [getattr(compat, name)(data_range=1.0) for name in NAMES]
        for k, (x, y) in enumerate(data):
            if k % world == rank:
                for m in metrics:
                    m.update(x, y)
        values = [m.compute() for m in metrics]  # syncs the states across both processes
        if rank == 0:
            results.put([v.item() for v in values])
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_equals_one_process():
    import socket

    import torch.multiprocessing as mp

    data = batches(4, shape=(1, 3, 180, 180))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    mp.start_processes(_ddp_worker, args=(2, port, data, results), nprocs=2, join=True, start_method="spawn")
    got = results.get(timeout=60)
    single = [getattr(tm_image, name)(data_range=1.0) for name in NAMES]
    for x, y in data:
        for m in single:
            m.update(x, y)
    assert got == pytest.approx([m.compute().item() for m in single], abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_default_arguments_take_turboiqa_path(name, monkeypatch):
    def refuse(self, preds, target):
        raise AssertionError("torchmetrics' own update ran")

    monkeypatch.setattr(getattr(tm_image, name), "update", refuse)
    metric = make(compat, name)
    x, y = batches(1)[0]
    metric.update(x, y)
    assert metric.total > 0
