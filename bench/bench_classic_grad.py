"""GMSD, MS-GMSD, MDSI and SR-SIM: turboiqa against piq, pyiqa and frame-analytics (whichever have the metric), RGB
float32 in [0, 1] at 512×384 and 1920×1080 on the CPU, timed round-robin in one process (bench/round_robin.py).

Each peer runs under its defaults and turboiqa under the convention that reproduces it (the default MATLAB
convention does the same work). frame-analytics' GMSD uses its native kernel where it loads.

Run: python bench/bench_classic_grad.py [--repeats 5] [--json bench/results-classic-grad-cpu.json]
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
from peer_stubs import import_piq_module, import_pyiqa_arch  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def implementations() -> dict:
    """{metric: {name: f(x_distorted, y_reference)}}."""
    from turboiqa.metrics.gmsd import gmsd, ms_gmsd
    from turboiqa.metrics.mdsi import mdsi
    from turboiqa.metrics.srsim import srsim

    try:
        import frame_analytics as fa
    except Exception:  # noqa: BLE001 - a broken peer install is a missing row
        fa = None
    piq_gmsd, piq_mdsi, piq_srsim = (import_piq_module(m) for m in ("gmsd", "mdsi", "srsim"))
    pyiqa_gmsd = import_pyiqa_arch("gmsd_arch")
    impls = {"gmsd": {}, "ms_gmsd": {}, "mdsi": {}, "srsim": {}}

    impls["gmsd"]["turboiqa"] = lambda x, y: gmsd(x, y, 1.0)
    impls["gmsd"]["turboiqa (pyiqa convention)"] = lambda x, y: gmsd(x, y, 1.0, convention="pyiqa")
    if piq_gmsd:
        impls["gmsd"]["piq"] = lambda x, y: piq_gmsd.gmsd(x, y, data_range=1.0)
    if pyiqa_gmsd:
        impls["gmsd"]["pyiqa"] = lambda x, y: pyiqa_gmsd.gmsd(x, y)
    if fa:
        impls["gmsd"]["turboiqa (frame_analytics convention)"] = (
            lambda x, y: gmsd(x, y, 1.0, convention="frame_analytics"))
        impls["gmsd"]["frame-analytics"] = lambda x, y: fa.gmsd(x, y, data_range=1.0)

    impls["ms_gmsd"]["turboiqa"] = lambda x, y: ms_gmsd(x, y, 1.0)
    impls["ms_gmsd"]["turboiqa chromatic"] = lambda x, y: ms_gmsd(x, y, 1.0, chromatic=True)
    if piq_gmsd:
        impls["ms_gmsd"]["piq"] = lambda x, y: piq_gmsd.multi_scale_gmsd(x, y, data_range=1.0)
        impls["ms_gmsd"]["piq chromatic"] = lambda x, y: piq_gmsd.multi_scale_gmsd(x, y, data_range=1.0,
                                                                                  chromatic=True)
    if fa:
        impls["ms_gmsd"]["turboiqa (frame_analytics convention)"] = (
            lambda x, y: ms_gmsd(x, y, 1.0, convention="frame_analytics"))
        impls["ms_gmsd"]["frame-analytics"] = lambda x, y: fa.ms_gmsd(x, y, data_range=1.0)

    impls["mdsi"]["turboiqa"] = lambda x, y: mdsi(x, y, 1.0)
    impls["mdsi"]["turboiqa mult"] = lambda x, y: mdsi(x, y, 1.0, combination="mult")
    if piq_mdsi:
        impls["mdsi"]["piq"] = lambda x, y: piq_mdsi.mdsi(x, y, data_range=1.0)
        impls["mdsi"]["piq mult"] = lambda x, y: piq_mdsi.mdsi(x, y, data_range=1.0, combination="mult")
    if fa:
        impls["mdsi"]["frame-analytics"] = lambda x, y: fa.mdsi(x, y, data_range=1.0)

    impls["srsim"]["turboiqa"] = lambda x, y: srsim(x, y, 1.0)
    impls["srsim"]["turboiqa (piq convention)"] = lambda x, y: srsim(x, y, 1.0, convention="piq")
    if piq_srsim:
        impls["srsim"]["piq"] = lambda x, y: piq_srsim.srsim(x, y, data_range=1.0)
    if fa:
        impls["srsim"]["frame-analytics"] = lambda x, y: fa.srsim(x, y, data_range=1.0)
    return impls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes beside the benchmark")
    parser.add_argument("--json")
    parser.add_argument("--metrics", default="gmsd,ms_gmsd,mdsi,srsim")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    impls = implementations()
    results, ratios = {}, {}
    g = torch.Generator().manual_seed(0)
    for size, (h, w) in SIZES.items():
        y = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w, generator=g), 3, stride=1, padding=1)
        x = (y + 0.03 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)
        for metric in args.metrics.split(","):
            with torch.no_grad():
                cases = {name: functools.partial(f, x, y) for name, f in impls[metric].items()}
                rows = timed(cases, args.repeats, busy=args.busy)
            results.setdefault(metric, {})[size] = rows
            ours = rows["turboiqa"]
            ratios.setdefault(metric, {})[size] = {name: ms / ours for name, ms in rows.items()}
            for name, ms in rows.items():
                print(f"{metric:8s} {size:10s} {name:40s} {ms:9.2f} ms   {ms / ours:6.2f}× turboiqa")
    if args.json:
        info = {"busy_processes": args.busy, "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats,
                "input": "1x3xHxW float32 in [0, 1]"}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": results,
                                               "ratio_to_turboiqa": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
