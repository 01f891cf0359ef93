"""The CPU work distribution (csrc/cpu/parallel.h): every item once, chunk boundaries fixed by (n, chunk) alone,
errors on helper threads raised in the caller, and every CPU kernel bit-identical for any thread count."""
import pytest
import torch

from turboiqa import _ops

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="needs the compiled extension")

THREADS = (1, 2, 3, 7)  # 7 > cores: helpers queue up behind each other and find little or nothing to do


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("n, chunk", [(0, 4), (1, 1), (10, 3), (1000, 7), (4096, 4096), (100_003, 64)])
def test_chunks_cover_every_item_once(n, chunk, restore_threads):
    want_first = (torch.arange(n) // chunk) * chunk
    for threads in THREADS:
        torch.set_num_threads(threads)
        for _ in range(5):  # helpers join at different moments from call to call
            visits, first = torch.ops.turboiqa._parallel_chunks_probe(torch.empty(n), chunk, -1)
            assert torch.equal(visits, torch.ones(n, dtype=torch.long)), threads
            assert torch.equal(first, want_first), threads


@pytest.mark.parametrize("fail_at", [0, 64 * 5, 64 * 1562])
def test_error_in_any_chunk_reaches_the_caller(fail_at, restore_threads):
    for threads in THREADS:
        torch.set_num_threads(threads)
        with pytest.raises(RuntimeError, match=f"chunk {fail_at} failed on purpose"):
            torch.ops.turboiqa._parallel_chunks_probe(torch.empty(100_003), 64, fail_at)
        # the machinery is still usable afterwards
        visits, _ = torch.ops.turboiqa._parallel_chunks_probe(torch.empty(1000), 10, -1)
        assert int(visits.sum()) == 1000


def _kernel_calls():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 131, 197, generator=g)
    y = (x + 0.1 * torch.rand(2, 3, 131, 197, generator=g)).clamp(0, 1)
    u, v = (x * 255).round().to(torch.uint8), (y * 255).round().to(torch.uint8)
    window = [0.1, 0.2, 0.4, 0.2, 0.1]
    xg = x.double().requires_grad_()
    eo = torch.randn(2, 1, 4, 3, 37, 41, 2, generator=g)
    threshold = torch.rand(2, 1, 4, generator=g)
    f0, f1 = torch.randn(2, 16, 23, 29, generator=g), torch.randn(2, 16, 23, 29, generator=g)
    head = torch.rand(16, generator=g)
    return {
        "ssim_stats f32": lambda: torch.ops.turboiqa.ssim_stats(x, y, window, 1e-4, 9e-4, "valid", 1.0),
        "ssim_stats u8 symmetric": lambda: torch.ops.turboiqa.ssim_stats(u, v, window, 6.5, 58.5, "symmetric", 1.0),
        "ssim_stats backward": lambda: torch.autograd.grad(
            torch.ops.turboiqa.ssim_stats(xg, y.double(), window, 1e-4, 9e-4, "reflect", 1.0)[0].sum(), xg),
        "squared_error_sum f32": lambda: torch.ops.turboiqa.squared_error_sum(x, y),
        "squared_error_sum u8": lambda: torch.ops.turboiqa.squared_error_sum(u, v),
        "box_downsample": lambda: torch.ops.turboiqa.box_downsample(x, 2, 1, 1, 66, 99, "symmetric"),
        "luma": lambda: torch.ops.turboiqa.luma(u, [0.299, 0.587, 0.114], 0.0, True),
        "pc_energy": lambda: torch.ops.turboiqa.pc_energy(eo, threshold, 1e-4, 1e-4),
        "lpips_distance": lambda: torch.ops.turboiqa.lpips_distance(f0, f1, head, 1e-10),
    }


def _flatten(result):
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for r in result for t in _flatten(r)]


def test_kernels_bit_identical_for_any_thread_count(restore_threads):
    calls = _kernel_calls()
    torch.set_num_threads(1)
    want = {name: _flatten(call()) for name, call in calls.items()}
    for threads in THREADS[1:]:
        torch.set_num_threads(threads)
        for name, call in calls.items():
            for got, expected in zip(_flatten(call()), want[name]):
                assert torch.equal(got, expected), f"{name} with {threads} threads"


def _ssim_in_child(x, y, queue):
    torch.set_num_threads(2)
    queue.put(torch.ops.turboiqa.ssim_stats(x, y, [0.25, 0.5, 0.25], 1e-4, 9e-4, "valid", 1.0)[0].tolist())


def test_forked_child_and_concurrent_callers(restore_threads):
    # A DataLoader-style fork after the helpers have run must not leave the child waiting on threads it lacks,
    # and callers on several Python threads share the helpers without mixing their chunks.
    import multiprocessing
    import threading

    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(9)
    x = torch.rand(2, 1, 300, 400, generator=g)
    y = (x + 0.05 * torch.rand(2, 1, 300, 400, generator=g)).clamp(0, 1)
    want = torch.ops.turboiqa.ssim_stats(x, y, [0.25, 0.5, 0.25], 1e-4, 9e-4, "valid", 1.0)[0]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_ssim_in_child, args=(x, y, queue))
    child.start()
    assert queue.get(timeout=60) == want.tolist()
    child.join(timeout=60)
    assert child.exitcode == 0

    results = [None] * 4

    def caller(i):
        for _ in range(10):
            results[i] = torch.ops.turboiqa.ssim_stats(x, y, [0.25, 0.5, 0.25], 1e-4, 9e-4, "valid", 1.0)[0]

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(r, want) for r in results)
