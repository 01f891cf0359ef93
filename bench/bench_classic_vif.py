"""VIF (wavelet) and VIFp (pixel): turboiqa against pyiqa's 'vif', piq.vif_p and frame_analytics.vifp, timed
round-robin in one process.

Inputs: 1×3×H×W RGB float32 in [0, 1] at 512×384 (TID2013) and 1920×1080, CPU, no autograd. Every peer scores the
luma (pyiqa: its rounded YIQ Y; piq: Y; frame-analytics: ``luma=True``, called as (reference, distorted)).
Ratios are peer time / turboiqa time of the same metric (turboiqa under the convention matching that peer).

Run: python bench/bench_classic_vif.py [--repeats 3] [--json bench/results-classic-vif-cpu.json]
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from round_robin import timed  # noqa: E402
import peer_stubs  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def cases(x, y) -> tuple[dict, dict]:
    """{name: callable} and {peer name: turboiqa name it is compared with}."""
    from turboiqa.metrics.vif import vif, vif_p

    out = {
        "turboiqa vif": lambda: vif(x, y),
        "turboiqa vif (pyiqa convention)": lambda: vif(x, y, convention="pyiqa"),
        "turboiqa vif_p": lambda: vif_p(x, y),
        "turboiqa vif_p (piq convention)": lambda: vif_p(x, y, convention="piq"),
        "turboiqa vif_p (frame_analytics convention)": lambda: vif_p(x, y, convention="frame_analytics"),
    }
    against = {}
    arch = peer_stubs.import_pyiqa_arch("vif_arch")
    if arch is not None:
        net = arch.VIF()
        out["pyiqa 0.1.16 vif"] = lambda: net(x, y)
        against["pyiqa 0.1.16 vif"] = "turboiqa vif (pyiqa convention)"
    piq_vif = peer_stubs.import_piq_module("vif")
    if piq_vif is not None:
        out["piq 0.8.0 vif_p"] = lambda: piq_vif.vif_p(x, y)
        against["piq 0.8.0 vif_p"] = "turboiqa vif_p (piq convention)"
    try:
        fav = importlib.import_module("frame_analytics.vifp")
    except ImportError:
        fav = None
    if fav is not None:
        out["frame_analytics 0.7.0 vifp"] = lambda: fav.vifp(y, x, data_range=1.0, luma=True)
        against["frame_analytics 0.7.0 vifp"] = "turboiqa vif_p (frame_analytics convention)"
    return out, against


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes beside the benchmark")
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    results, ratios = {}, {}
    for size, (h, w) in SIZES.items():
        g = torch.Generator().manual_seed(0)
        y = torch.rand(1, 3, h, w, generator=g)
        x = (y + 0.05 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)
        impls, against = cases(x, y)
        with torch.no_grad():
            rows = timed(impls, args.repeats, busy=args.busy)
        results[size] = rows
        ratios[size] = {peer: rows[peer] / rows[ours] for peer, ours in against.items()}
        for name, ms in rows.items():
            extra = f"   {ratios[size][name]:5.2f}× {against[name]}" if name in against else ""
            print(f"{size:10s} {name:46s} {ms:9.1f} ms{extra}")
    if args.json:
        info = {"busy_processes": args.busy, "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats,
                "input": "1x3xHxW float32 in [0, 1]", "ratio": "peer median / turboiqa median (matching convention)"}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": results, "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
