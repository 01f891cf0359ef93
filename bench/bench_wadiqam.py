"""WaDIQaM-FR: turboiqa against pyiqa's wadiqam_fr on the same weights and inputs, timed round-robin in one process.

No checkpoint is available offline, so both load the same fixed-seed random weights (pyiqa's layout; the cost does
not depend on the values). Inputs: RGB float32 in [0, 1] at 512×384 (TID2013) and 1920×1080; turboiqa under
pyiqa's convention (same patch grid, same numbers) and under the original one (one more patch row/column where a
side is a multiple of 32). ``--busy N`` starts N CPU-spinning processes beside the benchmark.

Run: python bench/bench_wadiqam.py [--repeats 5] [--busy 1] [--json bench/results-wadiqam-cpu.json]
"""
from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from round_robin import timed  # noqa: E402
from peer_stubs import import_pyiqa_arch  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def implementations(checkpoint: Path) -> dict:
    import turboiqa

    impls = {"turboiqa (pyiqa convention)": turboiqa.WaDIQaM_FR(trained_on="kadid", weights=checkpoint),
             "turboiqa (original convention)": turboiqa.WaDIQaM_FR(trained_on="kadid", convention="original",
                                                                   weights=checkpoint)}
    arch = import_pyiqa_arch("wadiqam_arch")
    if arch is not None:
        net = arch.WaDIQaM(metric_type="FR", pretrained=False)
        net.load_state_dict(torch.load(checkpoint)["params"])
        impls["pyiqa 0.1.16"] = net.eval()
    return impls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        arch = import_pyiqa_arch("wadiqam_arch")
        torch.manual_seed(0)
        checkpoint = Path(tmp) / "WaDIQaM-kadid-f7541ea5.pth"
        if arch is not None:
            torch.save({"params": arch.WaDIQaM(metric_type="FR", pretrained=False).state_dict()}, checkpoint)
        else:  # no peer: turboiqa's own layout
            from turboiqa.metrics.wadiqam import WaDIQaMNet

            torch.save(WaDIQaMNet().state_dict(), checkpoint)
        impls = implementations(checkpoint)
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        try:
            for size, (h, w) in SIZES.items():
                x, y = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
                with torch.no_grad():
                    rows = timed({name: functools.partial(f, x, y) for name, f in impls.items()}, args.repeats)
                results[size] = rows
                ours = rows["turboiqa (pyiqa convention)"]
                for name, ms in rows.items():
                    print(f"{size:10s} {name:32s} {ms:9.1f} ms   {ms / ours:5.2f}× turboiqa (pyiqa convention)")
        finally:
            for p in spinners:
                p.kill()
    if args.json:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "busy_processes": args.busy,
                "repeats": args.repeats, "input": "1x3xHxW float32 in [0, 1]"}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
