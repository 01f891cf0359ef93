"""Evaluator overhead per pair vs the metric's own time (issue 5: the evaluator must not be the bottleneck).

A TID2013-shaped folder of N pairs (the six shared 512×384 TID2013 pairs repeated under new names, or synthetic
images when ../shared/data is absent) is scored by ``turboiqa.eval.score_dataset`` — decode in worker threads,
reference cache, same-size batching, CSV streaming — and compared with the bare metric call on tensors that are
already decoded. Per configuration the median of ``--repeats`` runs is reported, per pair:

  metric only     metric(dist, ref) on preloaded uint8 tensors, batch 1
  evaluator       wall time of score_dataset / N
  overhead        evaluator − metric only (decode not hidden by the workers, CSV, bookkeeping)

Run: python bench/bench_eval.py [--pairs 60] [--metric ssim] [--device cpu] [--repeats 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(os.environ.get("TURBOIQA_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def make_folder(root: Path, pairs: int) -> None:
    """TID2013 layout: mos_with_names.txt, mos_std.txt, reference_images/, distorted_images/."""
    from PIL import Image

    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    tid = SHARED / "tid2013"
    sources = []
    if (tid / "mos.csv").is_file():
        with open(tid / "mos.csv", newline="") as f:
            sources = [(tid / "distorted" / r["dist_img"], tid / "reference" / r["ref_img"]) for r in csv.DictReader(f)]
    rng = np.random.default_rng(0)
    lines, stds = [], []
    for k in range(pairs):
        ref_id, level = k // 5 + 1, k % 5 + 1
        name = f"i{ref_id:02d}_01_{level}.bmp"
        ref_path = root / "reference_images" / f"I{ref_id:02d}.BMP"
        if sources:
            dist_src = sources[k % len(sources)][0]  # shared images repeated: only sizes and decoding matter
            (root / "distorted_images" / name).symlink_to(dist_src.resolve())
            if not ref_path.exists():
                ref_path.symlink_to(sources[(k // 5) % len(sources)][1].resolve())
        else:
            base = rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)
            if not ref_path.exists():
                Image.fromarray(base).save(ref_path)
            noisy = np.clip(base + rng.normal(0, 5 * level, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / "distorted_images" / name)
        lines.append(f"{rng.uniform(0, 9):.5f} {name}\n")
        stds.append(f"{rng.uniform(0.05, 0.3):.5f}\n")
    (root / "mos_with_names.txt").write_text("".join(lines))
    (root / "mos_std.txt").write_text("".join(stds))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def metric_only_once(pairs, fn, device: str) -> float:
    """Seconds per pair of the bare metric on decoded tensors already on the device (batch 1)."""
    t0 = time.perf_counter()
    for dist, ref in pairs:
        fn(dist, ref, data_range=255, reduction="none")
    sync(device)
    return (time.perf_counter() - t0) / len(pairs)


def evaluator_once(ds, metric: str, device: str, workers: int, batch: int, out: Path):
    from turboiqa.eval.runner import score_dataset

    t0 = time.perf_counter()
    _, stats = score_dataset(ds, [metric], out, device=device, workers=workers, batch_size=batch, progress=False)
    wall = time.perf_counter() - t0
    out.unlink()
    return wall / len(ds), stats.seconds_metric / len(ds), stats.seconds_waiting / len(ds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--metric", default="ssim")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", default="0x1,2x1,2x8", help="workers x batch, comma-separated")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import turboiqa
    from turboiqa.eval.datasets import TID2013

    fn = turboiqa.METRICS[args.metric]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_folder(tmp / "tid", args.pairs)
        ds = TID2013(tmp / "tid")
        pairs = [tuple(t.to(args.device) for t in ds[k].load()) for k in range(len(ds))]
        configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",")]
        metric_only_once(pairs[:2], fn, args.device)  # warm-up: caches, kernels, thread pools
        for workers, batch in configs:
            evaluator_once(ds, args.metric, args.device, workers, batch, tmp / "warm.csv")
        # Interleaved repeats: a shared machine's load drifts, so every configuration sees the same drift.
        bare_runs, runs = [], {c: [] for c in configs}
        for r in range(args.repeats):
            bare_runs.append(metric_only_once(pairs, fn, args.device))
            for c in configs:
                runs[c].append(evaluator_once(ds, args.metric, args.device, *c, tmp / f"scores-{r}.csv"))
        bare = statistics.median(bare_runs)
        results = {"metric": args.metric, "device": args.device, "pairs": args.pairs, "repeats": args.repeats,
                   "torch_threads": torch.get_num_threads(), "metric_only_ms": bare * 1e3, "configs": []}
        print(f"{args.metric} on {args.device}, {args.pairs} pairs of 512x384 RGB, median of {args.repeats} "
              f"interleaved runs, torch threads {torch.get_num_threads()}")
        print(f"metric only (decoded tensors, batch 1): {bare * 1e3:.2f} ms/pair")
        print("| workers | batch | evaluator ms/pair | inside metric ms/pair | waiting for decode ms/pair | "
              "evaluator − metric only |")
        print("|---|---|---|---|---|---|")
        for (workers, batch), values in runs.items():
            wall, inside, wait = (statistics.median(v) for v in zip(*values))
            overhead = wall - bare
            results["configs"].append({"workers": workers, "batch": batch, "evaluator_ms": wall * 1e3,
                                       "metric_ms": inside * 1e3, "waiting_ms": wait * 1e3,
                                       "overhead_ms": overhead * 1e3, "overhead_pct": 100 * overhead / bare})
            print(f"| {workers} | {batch} | {wall * 1e3:.2f} | {inside * 1e3:.2f} | {wait * 1e3:.2f} | "
                  f"{overhead * 1e3:+.2f} ms ({100 * overhead / bare:+.0f} %) |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
