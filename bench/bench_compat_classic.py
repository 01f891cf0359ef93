"""The classic metrics a piq or pyiqa user switches with one import: each piq call (gmsd, multi_scale_gmsd, mdsi,
srsim, vsi, haarpsi, dss, vif_p, and GMSDLoss's backward) against the same call through turboiqa.compat.piq, and
pyiqa's create_metric('gmsd' | 'vsi' | 'vif') against turboiqa.create_metric (metrics built once, outside the
timing); RGB float32 in [0, 1] at 512×384 and 1920×1080, CPU, timed round-robin in one process (bench/round_robin.py).

Run: python bench/bench_compat_classic.py [--repeats 3] [--sizes 512x384 1920x1080] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_stubs import import_pyiqa, install_torchvision_stub  # noqa: E402 - torchvision stand-in
from round_robin import timed  # noqa: E402

PIQ_CALLS = ["gmsd", "multi_scale_gmsd", "mdsi", "srsim", "vsi", "haarpsi", "dss", "vif_p"]
PYIQA_NAMES = ["gmsd", "vsi", "vif"]


def pair(h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=g)
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def loss_call(lib, x, y):
    xi = x.clone().requires_grad_()
    lib.GMSDLoss()(xi, y).backward()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=["512x384", "1920x1080"])
    parser.add_argument("--json", default=str(Path(__file__).with_name("results-compat-classic-cpu.json")))
    args = parser.parse_args()
    install_torchvision_stub()
    import piq

    import turboiqa
    import turboiqa.compat.piq as tq

    pyiqa = import_pyiqa()
    results = {"threads": torch.get_num_threads(), "repeats": args.repeats, "rows": []}
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        x, y = pair(h, w)
        cases = {}
        for name in PIQ_CALLS:
            for label, lib in (("piq", piq), ("turboiqa", tq)):
                cases[(f"piq.{name}", label)] = (lambda lib=lib, name=name: getattr(lib, name)(x, y))
        for label, lib in (("piq", piq), ("turboiqa", tq)):
            cases[("piq.GMSDLoss fwd+bwd", label)] = (lambda lib=lib: loss_call(lib, x, y))
        if pyiqa is not None:
            for name in PYIQA_NAMES:
                for label, factory in (("pyiqa", pyiqa.create_metric), ("turboiqa", turboiqa.create_metric)):
                    metric = factory(name, device="cpu")
                    cases[(f"create_metric('{name}')", label)] = (lambda m=metric: m(x, y))
        medians = timed(cases, args.repeats)
        for call in dict.fromkeys(c for c, _ in medians):
            peer = next(lib for c, lib in medians if c == call and lib != "turboiqa")
            row = {"size": size, "call": call, "peer": peer, "peer_ms": medians[(call, peer)],
                   "turboiqa_ms": medians[(call, "turboiqa")]}
            row["speedup"] = row["peer_ms"] / row["turboiqa_ms"]
            results["rows"].append(row)
            print(f"{size:>10} {call:32} {peer:6} {row['peer_ms']:9.1f} ms  turboiqa {row['turboiqa_ms']:8.1f} ms  "
                  f"{row['speedup']:6.1f}×", flush=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
