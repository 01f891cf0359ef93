"""What a piq, pyiqa or torchmetrics user gains by switching imports: each piq call against the same call through
turboiqa.compat.piq, pyiqa's create_metric(name) against turboiqa.compat.pyiqa's (metrics built once, outside the
timing), and torchmetrics' update()+compute() against turboiqa.compat.torchmetrics', same inputs (1920×1080
float32 in [0, 1], grey and RGB), timed round-robin in one process so both see the same machine state. Loss rows
include the backward pass. LPIPS/DISTS: both sides hold the same weight tensors (the peers' networks are fed
turboiqa's through tests/peer_stubs.py; needs TURBOIQA_WEIGHTS or the shared weights), built once outside the
timing — except torchmetrics' DISTS, which builds its VGG16 inside every update() by design.

Run: python bench/bench_compat.py [--repeats 7] [--busy 1] [--suites piq pyiqa torchmetrics] [--json FILE]
(``--busy N`` starts N CPU-spinning processes beside the benchmark for the whole run.)
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from peer_stubs import FEATURES, import_pyiqa, install_torchvision_stub  # noqa: E402 - torchvision stand-in


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
        module_case("LPIPS", lambda lib: lib.LPIPS()),
        module_case("DISTS", lambda lib: lib.DISTS()),
    ]


def module_case(name, build, update=False):
    """A peer class built once per library (outside the timing), then called — or update()+compute()d."""
    built = {}

    def run(lib, x, y):
        if id(lib) not in built:
            built[id(lib)] = build(lib)
        metric = built[id(lib)]
        if not update:
            with torch.no_grad():
                return metric(x, y)
        metric.reset()
        metric.update(x, y)
        return metric.compute()

    return (name, 3, run)


def feed_peer_weights():
    """The peers' torchvision trunks and hub downloads answer with turboiqa's tensors (same weights both sides)."""
    from turboiqa.nets.weights import load_backbone_state, load_state

    FEATURES["vgg16"], FEATURES["alexnet"] = load_backbone_state("vgg16"), load_backbone_state("alexnet")
    heads = load_state("lpips-vgg")
    lpips_heads, dists_weights = [heads[f"lin{i}.model.1.weight"] for i in range(5)], load_state("dists")

    def hub(url, *a, **k):
        return lpips_heads if "lpips" in url else dists_weights

    torch.hub.load_state_dict_from_url = hub
    import torchmetrics.functional.image.dists as tm_dists
    import torchmetrics.functional.image.lpips as tm_lpips
    import torchmetrics.image.lpip as tm_lpip

    tm_dists._TORCHVISION_AVAILABLE = tm_lpips._TORCHVISION_AVAILABLE = tm_lpip._TORCHVISION_AVAILABLE = True
    from torchvision.models import VGG16_Weights, vgg16  # the stub's; bound at import only with torchvision

    tm_dists.vgg16, tm_dists.VGG16_Weights = vgg16, VGG16_Weights


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
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes beside the benchmark")
    parser.add_argument("--suites", nargs="+", choices=("piq", "pyiqa", "torchmetrics"),
                        default=["piq", "pyiqa", "torchmetrics"])
    args = parser.parse_args()
    install_torchvision_stub()
    feed_peer_weights()
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

    from torchmetrics.image.dists import DeepImageStructureAndTextureSimilarity
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    tm.LearnedPerceptualImagePatchSimilarity = LearnedPerceptualImagePatchSimilarity  # exported only with torchvision
    tm.DeepImageStructureAndTextureSimilarity = DeepImageStructureAndTextureSimilarity
    tm_deep = [module_case("LearnedPerceptualImagePatchSimilarity update+compute",
                           lambda lib: lib.LearnedPerceptualImagePatchSimilarity(normalize=True), update=True),
               module_case("DeepImageStructureAndTextureSimilarity update+compute",
                           lambda lib: lib.DeepImageStructureAndTextureSimilarity(), update=True)]
    suites = {"piq": (("piq", piq), ("turboiqa.compat.piq", tq), cases(piq, tq)),
              "torchmetrics": (("torchmetrics", tm), ("turboiqa.compat.torchmetrics", ttm),
                               [tm_case(c) for c in ("StructuralSimilarityIndexMeasure",
                                                     "MultiScaleStructuralSimilarityIndexMeasure",
                                                     "PeakSignalNoiseRatio")] + tm_deep)}
    pyiqa = import_pyiqa() if "pyiqa" in args.suites else None  # pyiqa installed --no-deps: peer_stubs' import
    if pyiqa is not None:
        import turboiqa.compat.pyiqa as tpyiqa

        suites["pyiqa"] = (("pyiqa", pyiqa), ("turboiqa.compat.pyiqa", tpyiqa), pyiqa_cases())
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        rows = []
        for suite_name in args.suites:
            if suite_name in suites:
                (peer_name, peer), (ours_name, ours), suite = suites[suite_name]
                rows += measure(peer_name, peer, ours_name, ours, suite, args.repeats)
    finally:
        for p in spinners:
            p.kill()
    if args.json:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "piq": piq.__version__,
                "cpu_isa": turboiqa.build_info().get("cpu_isa_selected"), "repeats": args.repeats,
                "suites": args.suites, "busy_processes": args.busy}
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
