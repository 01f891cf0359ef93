"""NLPD, CW-SSIM and MAD: turboiqa against pyiqa 0.1.16 (and frame-analytics' NLPD), timed round-robin in one process.
Inputs: RGB float32 in [0, 1] at 512×384 (TID2013 size) and 1920×1080, CPU, no autograd. pyiqa's MAD takes ~20 s
at 512×384 and its 16×16-patch unfold needs several GB at 1080p: it is timed at 512×384 only (``--pyiqa-mad-1080p``
adds it). frame-analytics' NLPD is another formulation (Hepburn et al.: bilinear expand, L0.6 pooling over levels,
RGB per channel), compared with turboiqa's convention='frame_analytics'. turboiqa runs under its default
convention and under each peer's.
Run: python bench/bench_classic_pyr.py [--repeats 3] [--json bench/results-classic-pyr-cpu.json]
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from round_robin import timed  # noqa: E402
from peer_stubs import import_pyiqa_arch  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def implementations(size: str, pyiqa_mad_1080p: bool) -> dict:
    from turboiqa.metrics.cw_ssim import cw_ssim
    from turboiqa.metrics.mad import mad
    from turboiqa.metrics.nlpd import nlpd

    impls = {
        "nlpd": {"turboiqa": nlpd, "turboiqa (pyiqa convention)": functools.partial(nlpd, convention="pyiqa"),
                 "turboiqa (frame_analytics convention)": functools.partial(nlpd, convention="frame_analytics")},
        "cw_ssim": {"turboiqa": cw_ssim, "turboiqa (pyiqa convention)": functools.partial(cw_ssim, convention="pyiqa")},
        "mad": {"turboiqa": mad},
    }
    arch = import_pyiqa_arch("nlpd_arch")
    if arch is not None:
        if not hasattr(arch.tf, "rotate"):  # the torchvision stub: a 180° rotation of the 3×3 DN filters is a flip
            arch.tf.rotate = lambda t, angle: torch.flip(t, (-2, -1))
        impls["nlpd"]["pyiqa 0.1.16"] = arch.NLPD(channels=1, test_y_channel=True)
        impls["cw_ssim"]["pyiqa 0.1.16"] = import_pyiqa_arch("ssim_arch").CW_SSIM(channels=1, level=4, ori=8)
        if size != "1920x1080" or pyiqa_mad_1080p:
            impls["mad"]["pyiqa 0.1.16"] = import_pyiqa_arch("mad_arch").MAD()
    try:
        import frame_analytics

        impls["nlpd"]["frame-analytics 0.7.0"] = functools.partial(frame_analytics.nlpd, data_range=1.0)
    except ImportError:
        pass
    return impls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes beside the benchmark")
    parser.add_argument("--mad-repeats", type=int, default=1, help="repeats for MAD (pyiqa's takes ~20 s a call)")
    parser.add_argument("--pyiqa-mad-1080p", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    results = {}
    for size, (h, w) in SIZES.items():
        g = torch.Generator().manual_seed(0)
        x = torch.rand(1, 3, h, w, generator=g)
        y = (x + 0.05 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)
        for metric, impls in implementations(size, args.pyiqa_mad_1080p).items():
            repeats = args.mad_repeats if metric == "mad" else args.repeats
            with torch.no_grad():
                rows = timed({name: functools.partial(f, x, y) for name, f in impls.items()}, repeats, busy=args.busy)
            ours = rows["turboiqa"]
            results.setdefault(metric, {})[size] = {
                name: {"median_ms": round(ms, 2), "ratio_to_turboiqa": round(ms / ours, 3)}
                for name, ms in rows.items()}
            for name, ms in rows.items():
                print(f"{metric:8s} {size:10s} {name:44s} {ms:10.1f} ms  {ms / ours:6.2f}× turboiqa", flush=True)
    if args.json:
        info = {"busy_processes": args.busy, "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats,
                "mad_repeats": args.mad_repeats, "input": "1x3xHxW float32 in [0, 1]",
                "note": "shared 2-vCPU VM with other jobs running: indicative"}
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
