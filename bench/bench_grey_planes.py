"""The grey_planes front end against one read of the image (``torch.aminmax``) and its PyTorch twin: luma (BT.601
× 255, 'half_away', GMSD's call) and the identity planes, 2×2 box mean and factor 1, float32 / float64 / uint8,
512×384 and 1920×1080, 1 and 2 threads, CPU, round-robin in one process (bench/round_robin.py).

Run: python bench/bench_grey_planes.py [--repeats 50] [--json bench/results-grey-planes-cpu.json]
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
DTYPES = {"float32": torch.float32, "float64": torch.float64, "uint8": torch.uint8}
LUMA = [0.299, 0.587, 0.114]
# name: (coeffs, scale, rounding, factor); uint8 input takes scale 1 (its samples are the 0..255 levels)
VARIANTS = {
    "luma f2 half_away": (LUMA, 255.0, "half_away", 2),
    "luma f2 none": (LUMA, 255.0, "none", 2),
    "luma f1 half_even": (LUMA, 255.0, "half_even", 1),
    "identity f2 none": ([], 255.0, "none", 2),
    "identity f1 none": ([], 1.0, "none", 1),
}


def with_threads(n, f):
    def run():
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return f()
        finally:
            torch.set_num_threads(old)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--twin-repeats", type=int, default=5)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-twin", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from turboiqa import _ops
    from turboiqa.reference.grey_planes import grey_planes as twin

    g = torch.Generator().manual_seed(0)
    results = {}
    for size in args.sizes.split(","):
        h, w = SIZES[size]
        base = torch.rand(1, 3, h, w, generator=g)
        for dname in args.dtypes.split(","):
            dtype = DTYPES[dname]
            x = (base * 255).round().to(dtype) if dtype == torch.uint8 else base.to(dtype)
            cases, twins = {}, {}
            for n in (int(t) for t in args.threads.split(",")):
                cases[f"aminmax {n}t"] = with_threads(n, functools.partial(torch.aminmax, x))
                for vname in args.variants.split(","):
                    coeffs, scale, rounding, f = VARIANTS[vname]
                    if dtype == torch.uint8:
                        scale = 1.0
                    geo = (f, 0, 0, h // f, w // f)
                    cases[f"{vname} {n}t"] = with_threads(
                        n, functools.partial(_ops.grey_planes, x, coeffs, scale, rounding, *geo, backend="native"))
                    if not args.no_twin and n == 1:
                        twins[f"twin {vname} 1t"] = with_threads(
                            n, functools.partial(twin, x, coeffs, scale, rounding, *geo))
            with torch.no_grad():
                rows = timed(cases, args.repeats)
                if twins:
                    rows.update(timed(twins, args.twin_repeats))
            rows = {k: v * 1e3 for k, v in rows.items()}  # microseconds
            results[f"{size} {dname}"] = rows
            for name, us in rows.items():
                t = name.rsplit(" ", 1)[1]
                floor = rows.get(f"aminmax {t}")
                ratio = f"{us / floor:6.2f}x aminmax" if floor and not name.startswith("aminmax") else ""
                print(f"{size:10s} {dname:8s} {name:30s} {us:9.1f} us {ratio}", flush=True)
    if args.json:
        import turboiqa

        info = {"torch": torch.__version__, "repeats": args.repeats, "twin_repeats": args.twin_repeats,
                "isa": turboiqa.build_info().get("cpu_isa_selected")}
        Path(args.json).write_text(json.dumps({"machine": info, "median_us": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
