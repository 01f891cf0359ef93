"""ColorVideoVDP: turboiqa.cvvdp against the cvvdp 0.5.7 package on CPU, timed round-robin in one process.

Inputs: one RGB float32 image pair in [0, 1] (a smoothed random reference and a noisy copy) at 512×384 and
1920×1080, display 'standard_4k'. cvvdp runs ``cvvdp(display_name='standard_4k', device=cpu).predict(test, ref,
dim_order='BCHW')``; turboiqa runs ``turboiqa.metrics.cvvdp.cvvdp(dist, ref)``. ``ratio`` is cvvdp time /
turboiqa time (> 1: turboiqa is faster); ``jod`` shows both give the same number.

Run: python bench/bench_cvvdp.py [--repeats 3] [--json bench/results-cvvdp-cpu.json] [--busy N]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from round_robin import timed  # noqa: E402
import cvvdp_peer  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def pair(h: int, w: int):
    g = torch.Generator().manual_seed(0)
    ref = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w, generator=g), 5, 1, 2)
    dist = (ref + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return dist, ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=0)
    ap.add_argument("--json", default=str(Path(__file__).with_name("results-cvvdp-cpu.json")))
    args = ap.parse_args()
    from turboiqa.metrics.cvvdp import CVVDP_DATA_VERSION, cvvdp

    pycvvdp = cvvdp_peer.import_pycvvdp()
    peer = None
    if pycvvdp is not None:
        peer = pycvvdp.cvvdp(display_name="standard_4k", device=torch.device("cpu"), quiet=True)
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "data": CVVDP_DATA_VERSION,
               "busy": args.busy, "sizes": {}}
    for size, (h, w) in SIZES.items():
        dist, ref = pair(h, w)
        cases = {"turboiqa": lambda: cvvdp(dist, ref)}
        if peer is not None:
            cases["cvvdp 0.5.7"] = lambda: peer.predict(dist, ref, dim_order="BCHW")[0]
        jod = {name: float(f()) for name, f in cases.items()}
        ms = timed(cases, args.repeats, args.busy)
        row = {"median_ms": ms, "jod": jod}
        if peer is not None:
            row["ratio"] = ms["cvvdp 0.5.7"] / ms["turboiqa"]
        results["sizes"][size] = row
        print(size, json.dumps(row))
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
