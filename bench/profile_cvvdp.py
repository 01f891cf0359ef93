"""Where ColorVideoVDP's time goes on one image pair: the cvvdp 0.5.7 package and turboiqa.cvvdp, stage by stage.

Each stage function is wrapped with a timer (inclusive times; the masking stage includes its blur, listed again on
its own line for cvvdp). turboiqa's bands (all but the baseband) run CSF, masking and the band's pooling in one
fused operator (turboiqa._ops.cvvdp_band_pool), timed on the masking line; its CSF line is the baseband's. One warm-up call, then ``--repeats`` calls; the table shows the median total and the mean share of
each stage. CPU, float32, RGB pair at the given size, display 'standard_4k'.

``--ops``: also turboiqa's time per operator (torch.profiler, self CPU time: the turboiqa:: kernels against the
torch glue between them); ``--loss``: that table for the loss, forward + backward of 10 - JOD (turboiqa only).

Run: python bench/profile_cvvdp.py [--size 1920x1080] [--repeats 3] [--threads N] [--ops] [--loss] [--top 25]
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import cvvdp_peer  # noqa: E402

ACC: dict = collections.defaultdict(float)


def wrap(owner, name, label):
    f = getattr(owner, name)

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            ACC[label] += time.perf_counter() - t0

    setattr(owner, name, timed)


def profile(fn, repeats):
    fn()
    totals, shares = [], collections.defaultdict(list)
    for _ in range(repeats):
        ACC.clear()
        t0 = time.perf_counter()
        fn()
        total = time.perf_counter() - t0
        totals.append(total)
        for k, v in ACC.items():
            shares[k].append(v)
    total = statistics.median(totals)
    return total, {k: statistics.mean(v) for k, v in shares.items()}


def op_table(fn, repeats: int, top: int, title: str):
    """Self CPU time per operator over ``repeats`` calls of ``fn`` (after one warm-up), turboiqa:: kernels first."""
    from torch.profiler import ProfilerActivity, profile as tprofile

    fn()
    walls = []
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - t0)
    rows = [(e.key, e.self_cpu_time_total / repeats / 1e3, e.count // repeats) for e in prof.key_averages()]
    rows = [r for r in rows if r[1] > 0]
    total = sum(r[1] for r in rows)
    # a kernel called under autograd is timed on its autograd node's line (GeneratedBackwardFor_turboiqa_<op>)
    kernel = lambda k: k.startswith("turboiqa::") or (k.startswith("GeneratedBackwardFor_turboiqa_")
                                                     and not k.endswith("Backward"))
    native = sum(r[1] for r in rows if kernel(r[0]))
    print(f"\n{title}: median wall {statistics.median(walls) * 1e3:.0f} ms (profiled), self CPU {total:.0f} ms per "
          f"call; turboiqa:: kernels {native:.0f} ms ({native / total:.0%}), the rest (torch glue, autograd) "
          f"{total - native:.0f} ms ({1 - native / total:.0%})")
    print("| operator | calls | ms | share |")
    print("|---|---:|---:|---:|")
    rows.sort(key=lambda r: (not kernel(r[0]), -r[1]))
    for name, ms, count in rows[:top]:
        print(f"| {name} | {count} | {ms:.1f} | {ms / total:.1%} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--ops", action="store_true", help="also turboiqa's time per operator (torch.profiler)")
    ap.add_argument("--loss", action="store_true", help="turboiqa's loss (forward + backward) per operator only")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = map(int, args.size.split("x"))
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, h, w, generator=g)
    ref = torch.nn.functional.avg_pool2d(ref, 5, 1, 2)  # some texture, not white noise
    dist = (ref + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)

    if args.loss:
        import turboiqa.metrics.cvvdp as tc

        a = dist.clone().requires_grad_()

        def step():
            a.grad = None
            (10 - tc.cvvdp(a, ref)).backward()

        print(f"{args.size}, float32 RGB, CPU, {torch.get_num_threads()} thread(s)")
        op_table(step, args.repeats, args.top, "turboiqa loss (forward + backward)")
        return
    pycvvdp = cvvdp_peer.import_pycvvdp()
    import pycvvdp.cvvdp_metric as cm
    import pycvvdp.lpyr_dec as lp
    import pycvvdp.csf as csf

    wrap(cm.video_source_array, "get_test_frame", "colour (display model + DKL)")
    wrap(cm.video_source_array, "get_reference_frame", "colour (display model + DKL)")
    wrap(lp.weber_contrast_pyr, "decompose", "pyramid + Weber contrast")
    wrap(csf.castleCSF, "sensitivity", "CSF look-up/interpolation")
    wrap(cm.cvvdp, "apply_masking_model", "masking (incl. blur)")
    wrap(cm.cvvdp, "phase_uncertainty", "  of which: masker blur")
    wrap(cm.cvvdp, "lp_norm", "pooling (p-norms)")
    met = pycvvdp.cvvdp(display_name="standard_4k", device=torch.device("cpu"), quiet=True)
    peer_total, peer_parts = profile(lambda: met.predict(dist, ref, dim_order="BCHW"), args.repeats)

    import turboiqa.metrics.cvvdp as tc
    wrap(tc, "_dkl", "colour (display model + DKL)")
    wrap(tc._ops, "cvvdp_pyramid_step", "pyramid + Weber contrast")  # native reduce + expand
    wrap(tc, "_sensitivity", "CSF look-up/interpolation")
    wrap(tc._ops, "cvvdp_band_pool", "masking (incl. blur)")  # fused: CSF + masking + band pooling
    wrap(tc, "_pool", "pooling (p-norms)")
    ours_total, ours_parts = profile(lambda: tc.cvvdp(dist, ref), args.repeats)

    print(f"{args.size}, float32 RGB, CPU, {torch.get_num_threads()} thread(s); inclusive stage times in ms")
    print(f"| stage | cvvdp 0.5.7 | share | turboiqa | share |")
    print("|---|---:|---:|---:|---:|")
    for k in dict.fromkeys(list(peer_parts) + list(ours_parts)):
        a, b = peer_parts.get(k, 0.0), ours_parts.get(k, 0.0)
        print(f"| {k} | {a * 1e3:.0f} | {a / peer_total:.0%} | {b * 1e3:.0f} | {b / ours_total:.0%} |")
    print(f"| total | {peer_total * 1e3:.0f} | | {ours_total * 1e3:.0f} | |")
    if args.ops:
        op_table(lambda: tc.cvvdp(dist, ref), args.repeats, args.top, "turboiqa forward")


if __name__ == "__main__":
    main()
