"""turboiqa.allocator.reuse_freed_memory: inside the block a freed large tensor's pages are kept and reused (no new
page faults), on exit they go back to the system; nested blocks keep it on until the outer one exits. Each case runs
in a fresh interpreter: glibc's heap state left by earlier tests would change how soon a freed block is reused."""
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from turboiqa import allocator

pytestmark = pytest.mark.skipif(not allocator.available(), reason="glibc only (elsewhere reuse_freed_memory is a no-op)")

BLOCK = 256 * 2**20  # far over glibc's 32 MB mmap ceiling
PAGE = resource.getpagesize()
PAGES = BLOCK // PAGE


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def allocate_and_free() -> int:
    """Page faults of allocating, filling and freeing one BLOCK."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(BLOCK // 4)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def steady_state_faults() -> int:
    """Faults of four allocations once the heap has grown: glibc needs a few rounds (up to 7 seen) before a freed
    block, plus the 64-byte alignment torch asks for, fits the next request."""
    for _ in range(10):
        allocate_and_free()
    return sum(allocate_and_free() for _ in range(4))


def in_fresh_process(body: str) -> list[int]:
    """Run ``body`` (with this module as ``t`` and turboiqa's ``allocator``) in a new interpreter; the ints it prints."""
    script = f"import sys; sys.path[:0] = {sys.path!r}\nimport test_allocator as t\nfrom turboiqa import allocator\n{body}"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent).stdout
    return [int(v) for v in out.split()]


def test_freed_pages_reused_then_released():
    reuse_faults, held, after = in_fresh_process(
        "with allocator.reuse_freed_memory():\n"
        "    print(t.steady_state_faults()); print(t.resident())\n"
        "print(t.resident())")
    assert reuse_faults < PAGES // 10  # the same pages again, not fresh zero-filled mappings
    assert after < held - BLOCK // 2  # malloc_trim on exit gave the kept block back


def test_nested_blocks():
    reuse_faults, held, after = in_fresh_process(
        "with allocator.reuse_freed_memory():\n"
        "    with allocator.reuse_freed_memory(): t.allocate_and_free()\n"
        "    print(t.steady_state_faults()); print(t.resident())\n"
        "print(t.resident())")
    assert reuse_faults < PAGES // 10  # the inner exit did not switch it off
    assert after < held - BLOCK // 2


def test_disabled_is_glibc_default():
    """With the block disabled every large allocation is a fresh mapping, faulted in again each time."""
    (faults,) = in_fresh_process("with allocator.reuse_freed_memory(enabled=False): print(t.steady_state_faults())")
    assert faults > 4 * PAGES * 9 // 10
