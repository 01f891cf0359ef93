"""VSI, HaarPSI and DSS: turboiqa against piq, pyiqa and frame-analytics on CPU, timed round-robin in one process.

Inputs: one RGB float32 pair in [0, 1] at 512×384 (TID2013's size) and 1920×1080. turboiqa runs its default
(original MATLAB) convention and, where it differs in cost, the peer's convention; each peer runs its defaults
(frame-analytics with its torch.compile'd epilogues switched off: their compile workers
would compete with the timed code on a small machine). ``ratio`` is peer time / turboiqa time (> 1: turboiqa
is faster).

Run: python bench/bench_classic_vsi.py [--repeats 5] [--json bench/results-classic-vsi-cpu.json]
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
import peer_stubs  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def implementations() -> dict:
    """{metric: {name: f(x, y)}}; the first entry of each metric is turboiqa's default."""
    from turboiqa.metrics.dss import dss
    from turboiqa.metrics.haarpsi import haarpsi
    from turboiqa.metrics.vsi import vsi

    impls = {
        "haarpsi": {"turboiqa": haarpsi, "turboiqa (piq convention)": functools.partial(haarpsi, convention="piq")},
        "vsi": {"turboiqa": vsi, "turboiqa (matlab_imresize)": functools.partial(vsi, convention="matlab_imresize"),
                "turboiqa (piq convention)": functools.partial(vsi, convention="piq")},
        "dss": {"turboiqa": dss, "turboiqa (piq convention)": functools.partial(dss, convention="piq")},
    }
    for metric in impls:
        try:
            module = peer_stubs.import_piq_module(metric)
        except Exception:  # noqa: BLE001 - a peer that does not import is left out
            module = None
        if module is not None:
            impls[metric]["piq 0.8.0"] = getattr(module, metric)
    arch = peer_stubs.import_pyiqa_arch("vsi_arch")
    if arch is not None:
        impls["vsi"]["pyiqa 0.1.16"] = arch.vsi
    try:
        import frame_analytics as fa

        fa.functional.set_compile_enabled(False)
        for metric in impls:
            impls[metric]["frame-analytics"] = functools.partial(getattr(fa, metric), data_range=1.0)
    except ImportError:
        pass
    return impls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes beside the benchmark")
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    results, ratios = {}, {}
    impls = implementations()
    for metric, cases in impls.items():
        for size, (h, w) in SIZES.items():
            torch.manual_seed(0)
            x = torch.rand(1, 3, h, w)
            y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
            with torch.no_grad():
                calls = {name: functools.partial(f, x, y) for name, f in cases.items()}
                rows = timed(calls, args.repeats, busy=args.busy)
            results.setdefault(metric, {})[size] = rows
            ours = rows["turboiqa"]
            ratios.setdefault(metric, {})[size] = {name: ms / ours for name, ms in rows.items()}
            for name, ms in rows.items():
                print(f"{metric:8s} {size:10s} {name:28s} {ms:9.1f} ms   ratio {ms / ours:5.2f}")
    if args.json:
        info = {"busy_processes": args.busy, "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats,
                "input": "1x3xHxW float32 in [0, 1]", "ratio": "implementation ms / turboiqa (default) ms"}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": results, "ratio": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
