"""ColorVideoVDP: turboiqa.cvvdp against the cvvdp 0.5.7 package on CPU, timed round-robin in one process.

Inputs: one RGB float32 image pair in [0, 1] (a smoothed random reference and a noisy copy) at 512×384 and
1920×1080, display 'standard_4k'; and a 1920×1080 video pair of ``--frames`` frames (default 60) at 30 fps (the
reference drifts by a pixel a frame, the test is a noisy copy), scored as video (temporal channels):
``predict(test, ref, dim_order='FCHW', frames_per_second=30)`` against ``cvvdp(dist, ref, fps=30)``. The video case
runs each side ``--video-repeats`` times (default 1), interleaved, after a 2-frame warm-up (cvvdp needs minutes per
call); ``--frames 0`` skips it. cvvdp runs ``cvvdp(display_name='standard_4k', device=cpu).predict(test, ref,
dim_order='BCHW')``; turboiqa runs ``turboiqa.metrics.cvvdp.cvvdp(dist, ref)``. ``ratio`` is cvvdp time /
turboiqa time (> 1: turboiqa is faster); ``jod`` shows both give the same number.

``--loss``: cvvdp as a training loss instead, forward + backward of 10 - JOD with respect to the distorted image
(turboiqa: ``(10 - cvvdp(dist, ref)).backward()``; cvvdp 0.5.7: ``loss(dist, ref, dim_order='BCHW').backward()``),
and turboiqa's forward alone for scale; the images only (no video), JSON default bench/results-cvvdp-loss-cpu.json.

Run: python bench/bench_cvvdp.py [--repeats 3] [--frames 60] [--video-repeats 1] [--sizes 512x384,1920x1080]
[--json bench/results-cvvdp-cpu.json] [--busy N] [--loss] [--no-peer]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
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


def video(t: int, h: int, w: int):
    g = torch.Generator().manual_seed(1)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w + t, generator=g), 5, 1, 2)[0]
    ref = torch.stack([base[:, :, i:i + w] for i in range(t)])  # T×3×H×W, panning by a pixel a frame
    dist = (ref + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return dist, ref


def time_video(cases: dict, repeats: int):
    """Interleaved single calls (no warm-up of the full length): median ms and the last value of each case."""
    times = {name: [] for name in cases}
    values = {}
    order = list(cases.items())
    for r in range(repeats):
        for name, f in order[r % len(order):] + order[:r % len(order)]:
            t0 = time.perf_counter()
            values[name] = float(f())
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}, values


def loss_cases(dist, ref, cvvdp, peer):
    """Forward + backward of the loss 10 - JOD (gradient with respect to the distorted image)."""
    a = dist.clone().requires_grad_()

    def ours():
        a.grad = None
        loss = 10 - cvvdp(a, ref)
        loss.backward()
        return 10 - float(loss.detach())

    cases = {"turboiqa loss": ours, "turboiqa forward": lambda: float(cvvdp(dist, ref))}
    if peer is not None:
        b = dist.clone().requires_grad_()

        def theirs():
            b.grad = None
            loss = peer.loss(b, ref, dim_order="BCHW")
            loss.backward()
            return 10 - float(loss.detach())

        cases["cvvdp 0.5.7 loss"] = theirs
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=0)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--video-repeats", type=int, default=1)
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--json", default=None)
    ap.add_argument("--loss", action="store_true", help="forward + backward of the loss (images only)")
    ap.add_argument("--no-peer", action="store_true", help="turboiqa only")
    args = ap.parse_args()
    if args.json is None:
        args.json = str(Path(__file__).with_name("results-cvvdp-loss-cpu.json" if args.loss
                                                 else "results-cvvdp-cpu.json"))
    from turboiqa.metrics.cvvdp import CVVDP_DATA_VERSION, cvvdp

    pycvvdp = None if args.no_peer else cvvdp_peer.import_pycvvdp()
    peer = None
    if pycvvdp is not None:
        peer = pycvvdp.cvvdp(display_name="standard_4k", device=torch.device("cpu"), quiet=True)
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "data": CVVDP_DATA_VERSION,
               "busy": args.busy, "sizes": {}}
    if args.loss:
        results["mode"] = "loss: forward + backward of 10 - JOD"
    for size in [v for v in args.sizes.split(",") if v]:
        h, w = SIZES[size]
        dist, ref = pair(h, w)
        if args.loss:
            cases, ours, theirs = loss_cases(dist, ref, cvvdp, peer), "turboiqa loss", "cvvdp 0.5.7 loss"
        else:
            cases, ours, theirs = {"turboiqa": lambda: cvvdp(dist, ref)}, "turboiqa", "cvvdp 0.5.7"
            if peer is not None:
                cases[theirs] = lambda: peer.predict(dist, ref, dim_order="BCHW")[0]
        jod = {name: float(f()) for name, f in cases.items()}
        ms = timed(cases, args.repeats, args.busy)
        row = {"median_ms": ms, "jod": jod}
        if peer is not None:
            row["ratio"] = ms[theirs] / ms[ours]
        results["sizes"][size] = row
        print(size, json.dumps(row))
    if args.frames and not args.loss:
        dist, ref = video(args.frames, 1080, 1920)
        cases = {"turboiqa": lambda: cvvdp(dist, ref, fps=30)}
        if peer is not None:
            cases["cvvdp 0.5.7"] = lambda: peer.predict(dist, ref, dim_order="FCHW", frames_per_second=30)[0]
        cvvdp(dist[:2], ref[:2], fps=30)  # warm-up on 2 frames
        if peer is not None:
            peer.predict(dist[:2], ref[:2], dim_order="FCHW", frames_per_second=30)
        ms, jod = time_video(cases, args.video_repeats)
        row = {"frames": args.frames, "fps": 30, "median_ms": ms, "jod": jod}
        if peer is not None:
            row["ratio"] = ms["cvvdp 0.5.7"] / ms["turboiqa"]
        results["sizes"][f"video 1920x1080x{args.frames}"] = row
        print("video", json.dumps(row))
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
