"""What a piq, pyiqa or torchmetrics user gains by switching imports: each piq call against the same call through
turboiqa.compat.piq, pyiqa's create_metric(name) against turboiqa.compat.pyiqa's (metrics built once, outside the
timing), and torchmetrics' update()+compute() against turboiqa.compat.torchmetrics', same inputs (1920×1080
float32 in [0, 1], grey and RGB), timed round-robin in one process so both see the same machine state. Loss rows
include the backward pass.

Run: python bench/bench_compat.py [--repeats 7] [--suites piq pyiqa torchmetrics] [--json FILE]
(bench/results-compat-cpu.json: piq and torchmetrics; bench/results-compat-pyiqa-cpu.json: pyiqa, --repeats 3)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from peer_stubs import import_pyiqa, install_torchvision_stub  # noqa: E402 - piq's __init__ imports torchvision


def frames(channels: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, 1080, 1920, generator=g)
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def cases(piq, tq):
    """(name, input channels, call(lib, x, y)); the same lambda runs on piq and on the compat module."""
    def loss(cls):
        def run(lib, x, y):
            x = x.clone().requires_grad_()
            getattr(lib, cls)()(x, y).backward()
        return run

    return [
        ("ssim", 1, lambda lib, x, y: lib.ssim(x, y)),
        ("ssim", 3, lambda lib, x, y: lib.ssim(x, y)),
        ("multi_scale_ssim", 3, lambda lib, x, y: lib.multi_scale_ssim(x, y)),
        ("psnr", 3, lambda lib, x, y: lib.psnr(x, y)),
        ("fsim", 3, lambda lib, x, y: lib.fsim(x, y)),
        ("information_weighted_ssim", 3, lambda lib, x, y: lib.information_weighted_ssim(x, y)),
        ("SSIMLoss fwd+bwd", 3, loss("SSIMLoss")),
        ("MultiScaleSSIMLoss fwd+bwd", 3, loss("MultiScaleSSIMLoss")),
    ]


def pyiqa_cases():
    """pyiqa's names on RGB frames; each library's metric object is built on first use and reused."""
    built = {}

    def named(name):
        def run(lib, x, y):
            key = (lib.__name__, name)
            if key not in built:
                built[key] = lib.create_metric(name, device="cpu")
            built[key](x, y)
        return (f"create_metric('{name}')", 3, run)

    return [named(name) for name in ("ssim", "psnr", "ms_ssim", "fsim")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write the medians here")
    parser.add_argument("--suites", nargs="+", choices=("piq", "pyiqa", "torchmetrics"),
                        default=["piq", "pyiqa", "torchmetrics"])
    args = parser.parse_args()
    install_torchvision_stub()
    import piq

    import turboiqa
    import turboiqa.compat.piq as tq

    import torchmetrics.image as tm

    import turboiqa.compat.torchmetrics as ttm

    def tm_case(cls):
        def run(lib, x, y):
            metric = getattr(lib, cls)(data_range=1.0)
            metric.update(x, y)
            metric.compute()
        return (f"{cls} update+compute", 3, run)

    suites = {"piq": (("piq", piq), ("turboiqa.compat.piq", tq), cases(piq, tq)),
              "torchmetrics": (("torchmetrics", tm), ("turboiqa.compat.torchmetrics", ttm),
                               [tm_case(c) for c in ("StructuralSimilarityIndexMeasure",
                                                     "MultiScaleStructuralSimilarityIndexMeasure",
                                                     "PeakSignalNoiseRatio")])}
    pyiqa = import_pyiqa() if "pyiqa" in args.suites else None  # pyiqa installed --no-deps: peer_stubs' import
    if pyiqa is not None:
        import turboiqa.compat.pyiqa as tpyiqa

        suites["pyiqa"] = (("pyiqa", pyiqa), ("turboiqa.compat.pyiqa", tpyiqa), pyiqa_cases())
    rows = []
    for suite_name in args.suites:
        if suite_name in suites:
            (peer_name, peer), (ours_name, ours), suite = suites[suite_name]
            rows += measure(peer_name, peer, ours_name, ours, suite, args.repeats)
    if args.json:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "piq": piq.__version__,
                "cpu_isa": turboiqa.build_info().get("cpu_isa_selected"), "repeats": args.repeats,
                "suites": args.suites}
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    return 0


def measure(peer_name, peer, ours_name, ours, suite, repeats):
    rows = []
    for name, channels, call in suite:
        x, y = frames(channels)
        libs = {peer_name: peer, ours_name: ours}
        for lib in libs.values():  # warm-up: window caches, thread pools, first-touch pages
            call(lib, x, y)
        times = {label: [] for label in libs}
        for _ in range(repeats):
            for label, lib in libs.items():
                t0 = time.perf_counter()
                call(lib, x, y)
                times[label].append((time.perf_counter() - t0) * 1e3)
        medians = {label: statistics.median(t) for label, t in times.items()}
        rows.append({"call": name, "input": "grey" if channels == 1 else "rgb", "peer": peer_name,
                     "peer_ms": medians[peer_name], "compat_ms": medians[ours_name],
                     "speedup": medians[peer_name] / medians[ours_name]})
        print(f"{name:44s} {rows[-1]['input']:4s}  {peer_name} {medians[peer_name]:9.2f} ms   compat "
              f"{medians[ours_name]:8.2f} ms   {rows[-1]['speedup']:6.1f}×", flush=True)
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
