"""dnn_features (Amirshahi et al. 2016): the native histogram_intersection operator against its PyTorch twin, and the
whole metric, timed round-robin in one process. No peer library implements this metric (piq, pyiqa, torchmetrics
have nothing like it), so there is no peer row.

(a) Operator, forward and forward+backward, on random ReLU features of AlexNet conv1–conv5's shapes for a 512×384
    image (64×95×127 … 256×23×31) and a 1920×1080 one (64×269×479 … 256×66×119), levels=3, all five layers per
    call, at 1 and 2 threads. (b) The metric (AlexNet + operator) at 512×384 and 1080p, batch 1, float32, no grad.
``--busy N`` starts N CPU-spinning processes beside the benchmark for the whole run.

Run: TURBOIQA_WEIGHTS=../shared/data/weights python bench/bench_dnn_features.py [--repeats 5] [--busy 1]
     [--json bench/results-dnn-features-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from round_robin import timed

SIZES = {"512x384": (384, 512), "1080p": (1080, 1920)}
LEVELS = 3


def alexnet_shapes(h: int, w: int):
    """(K, H, W) of the five ReLU taps, from a weightless meta run of the trunk."""
    from turboiqa.nets.backbones import AlexNet

    net = AlexNet(taps=(1, 4, 7, 9, 11)).to("meta")
    return [tuple(f.shape[1:]) for f in net(torch.empty(1, 3, h, w, device="meta"))]


def feature_pairs(h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for k, fh, fw in alexnet_shapes(h, w):
        base = torch.randn(1, k, fh, fw, generator=g)
        out.append((torch.relu(base), torch.relu(base + 0.3 * torch.randn(base.shape, generator=g))))
    return out


def op_cases(pairs):
    from turboiqa import _ops

    def forward(backend):
        def run():
            with torch.no_grad():
                for a, b in pairs:
                    _ops.histogram_intersection(a, b, LEVELS, backend)
        return run

    def backward(backend):
        leaves = [(a.clone().requires_grad_(), b.clone().requires_grad_()) for a, b in pairs]

        def run():
            for a, b in leaves:
                _ops.histogram_intersection(a, b, LEVELS, backend).sum().backward()
        return run

    return {"native forward": forward("native"), "twin forward": forward("reference"),
            "native fwd+bwd": backward("native"), "twin fwd+bwd": backward("reference")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    import turboiqa

    results = {"operator": {}, "metric": {}}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    threads = torch.get_num_threads()
    try:
        for size, (h, w) in SIZES.items():
            pairs = feature_pairs(h, w)
            for t in (1, 2):
                torch.set_num_threads(t)
                rows = timed(op_cases(pairs), args.repeats)
                results["operator"][f"{size} {t}t"] = rows
                for kind in ("forward", "fwd+bwd"):
                    n, tw = rows[f"native {kind}"], rows[f"twin {kind}"]
                    print(f"op {size:8s} {t}t {kind:8s} native {n:8.2f} ms  twin {tw:8.2f} ms  {tw / n:6.1f}×")
        torch.set_num_threads(threads)
        metric = turboiqa.DNNFeatures()
        for size, (h, w) in SIZES.items():
            g = torch.Generator().manual_seed(1)
            x, y = torch.rand(1, 3, h, w, generator=g), torch.rand(1, 3, h, w, generator=g)
            cases = {"native": lambda: metric(x, y)}
            twin = turboiqa.DNNFeatures(backend="reference")
            cases["twin"] = lambda: twin(x, y)
            rows = timed(cases, args.repeats)
            results["metric"][size] = rows
            print(f"metric {size:8s} {threads}t  native {rows['native']:8.1f} ms  twin {rows['twin']:8.1f} ms")
    finally:
        torch.set_num_threads(threads)
        for p in spinners:
            p.kill()
    if args.json:
        info = {"torch": torch.__version__, "threads": threads, "busy_processes": args.busy, "repeats": args.repeats,
                "levels": LEVELS, "dtype": "float32"}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
