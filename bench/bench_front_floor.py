"""The memory-read floor of the stencil metrics' front end: one read of x and y (``torch.aminmax`` of each) against
the fused ``grey_planes`` front end (GMSD's luma + 2×2 mean + extrema of both images), turboiqa's GMSD and
frame-analytics' native GMSD, RGB float32 in [0, 1], CPU, round-robin in one process (bench/round_robin.py).

Run: python bench/bench_front_floor.py [--repeats 5] [--json bench/results-front-floor-cpu.json]
"""
from __future__ import annotations

import argparse
import functools
import json
import warnings
from pathlib import Path

import torch

from round_robin import timed

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from turboiqa import _ops
    from turboiqa.colour import BT601
    from turboiqa.metrics.gmsd import gmsd

    try:
        import frame_analytics as fa
    except Exception:  # noqa: BLE001 - a broken peer install is a missing row
        fa = None

    def read_floor(x, y):
        return torch.aminmax(x), torch.aminmax(y)

    def read_floor_1(x, y):  # torch's OpenMP regions suffer most from a busy neighbour: one thread as well
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return torch.aminmax(x), torch.aminmax(y)
        finally:
            torch.set_num_threads(threads)

    def front(x, y):
        h, w = x.shape[-2:]
        coeffs = [c * 255 for c in BT601]
        return [_ops.grey_planes(t, coeffs, 1.0, "none", 2, 0, 0, (h + 1) // 2, (w + 1) // 2) for t in (x, y)]

    cases = {"aminmax x, y (one read)": read_floor, "aminmax x, y (1 thread)": read_floor_1, "grey_planes x, y (front end)": front,
             "turboiqa gmsd": lambda x, y: gmsd(x, y, 1.0)}
    if fa:
        cases["frame-analytics gmsd"] = lambda x, y: fa.gmsd(x, y, data_range=1.0)
    g = torch.Generator().manual_seed(0)
    results = {}
    for size, (h, w) in SIZES.items():
        y = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w, generator=g), 3, stride=1, padding=1)
        x = (y + 0.03 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)
        with torch.no_grad():
            rows = timed({name: functools.partial(f, x, y) for name, f in cases.items()}, args.repeats)
        results[size] = rows
        floor = min(rows["aminmax x, y (one read)"], rows["aminmax x, y (1 thread)"])
        for name, ms in rows.items():
            print(f"{size:10s} {name:32s} {ms:8.3f} ms  {ms / floor:5.2f}× the read floor")
    if args.json:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
