"""PieAPP at 4K (3840×2160) with stride 6 ('dense'): peak memory stays at one chunk's activations.

A 4K pair at stride 6 has 350 × 630 = 220,500 patch pairs (original and unfold grids alike), hours of CPU time. The run is stopped after ``--chunks`` network calls; the peak resident set size is read after each
call, so the table shows whether memory grows with the number of patches scored (it must not: only two float64
sums are kept between chunks) and the time per chunk projects the whole run. Random weights in the original layout.

Run: python bench/bench_pieapp_memory.py [--chunks 12] [--chunk-size 128] [--json bench/results-pieapp-memory-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch


class Stop(Exception):
    pass


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=12)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--json")
    args = parser.parse_args()
    import turboiqa
    from turboiqa.metrics.pieapp import PieAPPNet, patch_starts, pieapp_score

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "PieAPPv0.1.pth"
        torch.save(PieAPPNet(pretrained=False).state_dict(), path)
        model = PieAPPNet(weights=path)
    x, y = torch.rand(1, 3, 2160, 3840), torch.rand(1, 3, 2160, 3840)
    rows, cols = patch_starts(2160, 3840, 6, "original")
    total_patches = len(rows) * len(cols)
    before = peak_rss_mb()
    samples = []
    call = model.errors_and_weights_pooled  # the per-chunk call of the no-grad (shared-stem) path
    t0 = time.perf_counter()

    def counted(*a):
        out = call(*a)
        samples.append({"chunk": len(samples) + 1, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()})
        if len(samples) >= args.chunks:
            raise Stop
        return out

    model.errors_and_weights_pooled = counted
    try:
        with torch.no_grad():
            pieapp_score(model, x, y, stride="dense", chunk_size=args.chunk_size)
    except Stop:
        pass
    per_chunk = (samples[-1]["seconds"] - samples[0]["seconds"]) / max(len(samples) - 1, 1)
    projected = per_chunk * total_patches / args.chunk_size
    print(f"4K pair, stride 6, original grid: {total_patches} patch pairs, chunk_size {args.chunk_size}")
    print(f"peak RSS before scoring (model + two 4K images): {before:.0f} MB")
    for s in samples:
        print(f"after chunk {s['chunk']:3d}: {s['seconds']:7.1f} s, peak RSS {s['peak_rss_mb']:.0f} MB")
    print(f"{per_chunk:.2f} s per chunk -> whole image ≈ {projected / 3600:.1f} h on this machine")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(), "turboiqa": turboiqa.__version__,
            "patch_pairs": total_patches, "chunk_size": args.chunk_size, "peak_rss_before_mb": before,
            "samples": samples, "seconds_per_chunk": per_chunk, "projected_hours": projected / 3600}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
