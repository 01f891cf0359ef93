"""DeepQA timing on the CPU: forward and forward+backward (gradient w.r.t. the distorted image) at 512×384 (TID2013)
and 1920×1080, RGB float32, random weights (no official weights exist; the cost does not depend on the values).
No peer implements DeepQA (pyiqa, piq and torchmetrics do not), so there is no comparison column.

Run: python bench/bench_deepqa.py [--repeats 5] [--threads N] [--nchw] [--json bench/results-deepqa-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

SIZES = {"512x384": (384, 512), "1080p": (1080, 1920)}


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN primitive creation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> int:
    import turboiqa

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--nchw", action="store_true", help="keep the weights NCHW (the layout comparison)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.nchw:
        from turboiqa.nets import runtime

        runtime.CPU_CHANNELS_LAST = False
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = turboiqa.DeepQA(pretrained=False)
    rows = []
    for label, (h, w) in SIZES.items():
        g = torch.Generator().manual_seed(1)
        ref = torch.rand(1, 3, h, w, generator=g)
        dist = (ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1)

        def forward():
            module(dist, ref)

        def backward():
            x = dist.clone().requires_grad_(True)
            module(x, ref).backward()

        for mode, fn in (("forward", forward), ("forward+backward", backward)):
            ms = timed(fn, args.repeats)
            rows.append({"size": label, "mode": mode, "ms": round(ms, 1), "threads": torch.get_num_threads(),
                         "layout": "nchw" if args.nchw else "channels_last"})
            print(f"{label:8s} {mode:17s} {ms:9.1f} ms")
    if args.json:  # appended to, so runs with different thread counts share one file
        try:
            with open(args.json) as f:
                runs = json.load(f)["runs"]
        except (OSError, ValueError, KeyError):
            runs = []
        runs.append({"torch": torch.__version__, "repeats": args.repeats, "rows": rows,
                     "load_average_1min": os.getloadavg()[0]})
        with open(args.json, "w") as f:
            json.dump({"runs": runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
