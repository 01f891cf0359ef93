"""Round-robin timing shared by the bench scripts: every case once as warm-up, then ``repeats`` rounds, each round
starting one case later, so a slow phase of the machine (another process, frequency scaling) is spread over all
cases instead of landing on one."""
from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time


def timed(cases: dict, repeats: int, busy: int = 0) -> dict:
    """{name: median milliseconds} of the zero-argument callables in ``cases``, with ``busy`` CPU-spinning
    processes beside them (:func:`spinning`)."""
    with spinning(busy):
        return _timed(cases, repeats)


def _timed(cases: dict, repeats: int) -> dict:
    for f in cases.values():
        f()  # warm-up
    times = {name: [] for name in cases}
    order = list(cases.items())
    for r in range(repeats):
        for name, f in order[r % len(order):] + order[:r % len(order)]:
            t0 = time.perf_counter()
            f()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


@contextlib.contextmanager
def spinning(processes: int):
    """``processes`` CPU-spinning Python processes beside the timed code (the benches' ``--busy N``)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()
