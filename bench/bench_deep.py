"""LPIPS-alex, LPIPS-vgg and DISTS: turboiqa against lpips, torchmetrics, piq, piqa, pyiqa, frame-analytics and the
official DISTS_pytorch, every peer fed turboiqa's own weight tensors (tests/peer_stubs.py: a torchvision stand-in).

Rows per group (metric, size, batch): ``turboiqa`` (the full call), ``turboiqa-backbone`` (both images through the
backbone only), ``turboiqa-distance`` (the distance ops on precomputed features), ``turboiqa-nchw`` (the same call
with the CPU layout choice switched off, for the channels_last measurement), then each installed peer.

Weights: TURBOIQA_WEIGHTS (default ../shared/data/weights). Rows slower than 5 s a call run 1 warm-up + 2 timed
rounds. VGG16 at 1080p (tens of seconds a call on 2 cores): batch 1 runs the turboiqa rows and the official code
(lpips / DISTS_pytorch) only, batch 8 not at all, unless TURBOIQA_BENCH_FULL=1.

    TURBOIQA_WEIGHTS=../shared/data/weights pytest bench/bench_deep.py --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=median,rounds
"""
import os
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import turboiqa
from turboiqa import _ops
from turboiqa.metrics.dists import DISTS_C1, DISTS_C2, dists_model
from turboiqa.metrics.lpips import NORM_EPS, lpips_model

SHARED_WEIGHTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "weights"
os.environ.setdefault("TURBOIQA_WEIGHTS", str(SHARED_WEIGHTS))

from turboiqa.nets import weights as weight_files

if weight_files.find("alexnet")[0] is None or weight_files.find("vgg16")[0] is None:
    pytest.skip("backbone weights not found (set TURBOIQA_WEIGHTS)", allow_module_level=True)

import peer_stubs

SIZES = {"512x384": (384, 512), "1080p": (1080, 1920)}
FULL = os.environ.get("TURBOIQA_BENCH_FULL") == "1"


def make_pair(size: str, batch: int):
    h, w = SIZES[size]
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(batch, 3, h, w, generator=g)
    ref = torch.nn.functional.avg_pool2d(ref, 3, stride=1, padding=1)
    dist = (ref + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return (dist * 255).round() / 255, (ref * 255).round() / 255


def run_deep(benchmark, fn):
    """bench/conftest.py's run_timed, with slow rows (> 5 s a call) cut to 1 warm-up + 2 timed rounds."""
    t = time.perf_counter()
    fn()  # warm-up
    once = time.perf_counter() - t
    if once < 5:
        t = time.perf_counter()
        fn()
        once = time.perf_counter() - t
    rounds = 2 if once > 5 else int(max(3, min(30, 1.5 / max(once, 1e-6))))
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)


_peer_cache: dict = {}


def peer(name: str, metric: str):
    """A peer's scoring function for ``metric`` ('lpips-alex', 'lpips-vgg', 'dists') or None if unavailable."""
    key = (name, metric)
    if key in _peer_cache:
        return _peer_cache[key]
    fn = None
    net = metric.split("-")[1] if metric.startswith("lpips") else "vgg"
    trunk = weight_files.load_backbone_state("alexnet" if net == "alex" else "vgg16")
    heads_path = weight_files.resolve(f"lpips-{net}")
    try:
        if metric.startswith("lpips"):
            if name == "lpips":
                m = peer_stubs.lpips_package(net, heads_path, trunk)
                fn = m and (lambda x, y: m(x, y, normalize=True))
            elif name == "torchmetrics":
                m = peer_stubs.torchmetrics_lpips(net, heads_path, trunk)
                fn = m and (lambda x, y: m(x, y, normalize=True))
            elif name == "piqa":
                m = peer_stubs.piqa_lpips(net, weight_files.load_state(f"lpips-{net}"), trunk)
                fn = m
            elif name == "pyiqa":
                m = peer_stubs.pyiqa_lpips(net, heads_path, trunk)
                fn = m and (lambda x, y: m(y, x))
            elif name == "piq" and net == "vgg":
                perceptual = peer_stubs.import_piq_module("perceptual")
                peer_stubs.FEATURES["vgg16"] = trunk
                heads = weight_files.load_state("lpips-vgg")
                with peer_stubs.patched_hub_load([heads[f"lin{i}.model.1.weight"] for i in range(5)]):
                    fn = perceptual.LPIPS(reduction="none")
            elif name == "frame-analytics" and net == "alex":
                import frame_analytics.perceptual as fa

                fn = lambda x, y: fa.lpips(x, y, data_range=1.0, reduction="none")
        else:
            if name == "DISTS_pytorch":
                fn = peer_stubs.dists_package(trunk, weight_files.load_state("dists"))
            elif name == "pyiqa":
                fn = peer_stubs.pyiqa_dists(trunk, weight_files.resolve("dists"))
            elif name == "piq":
                perceptual = peer_stubs.import_piq_module("perceptual")
                peer_stubs.FEATURES["vgg16"] = trunk
                with peer_stubs.patched_hub_load(weight_files.load_state("dists")):
                    fn = perceptual.DISTS(reduction="none")
    except Exception as exc:  # noqa: BLE001 - a broken peer is a skipped row
        print(f"bench_deep: {name} unavailable for {metric}: {exc}", file=sys.stderr)
        fn = None
    _peer_cache[key] = fn
    return fn


PEERS = {"lpips-alex": ["lpips", "torchmetrics", "piqa", "pyiqa", "frame-analytics"],
         "lpips-vgg": ["lpips", "torchmetrics", "piq", "piqa", "pyiqa"],
         "dists": ["DISTS_pytorch", "piq", "pyiqa"]}
CASES = [(m, s, b) for m in PEERS for s in SIZES for b in (1, 8)]
ROWS = ["turboiqa", "turboiqa-backbone", "turboiqa-distance", "turboiqa-nchw"]


# VGG16 at 1080p batch 1 (tens of seconds a call on 2 cores): only the official code as the peer unless FULL.
VGG_1080P_PEERS = {"lpips-vgg": {"lpips"}, "dists": {"DISTS_pytorch"}}


def skip_slow(metric, size, batch, row=None):
    if metric == "lpips-alex" or size != "1080p" or FULL:
        return
    if batch == 8:
        pytest.skip("VGG16 at 1080p batch 8: minutes per call; run with TURBOIQA_BENCH_FULL=1")
    if row == "turboiqa-nchw" or (row not in ROWS and row is not None and row not in VGG_1080P_PEERS[metric]):
        pytest.skip("VGG16 at 1080p: official peer only; run with TURBOIQA_BENCH_FULL=1 for every row")


def score_fn(metric):
    if metric == "dists":
        return lambda x, y: turboiqa.dists(x, y, reduction="none")
    net = metric.split("-")[1]
    return lambda x, y: turboiqa.lpips(x, y, net=net, reduction="none")


def parts(metric, x, y):
    """(backbone-only, distance-only) callables on the same inputs as the full call."""
    n = x.shape[0]
    if metric == "dists":
        model = dists_model(torch.device("cpu"), torch.float32)

        def backbone():
            with torch.inference_mode():
                return model.features(torch.cat([x, y]))

        feats = backbone()

        def distance():
            with torch.inference_mode():
                return sum(_ops.dists_layer(f[:n], f[n:], *model.weights_of(k), DISTS_C1, DISTS_C2)
                           for k, f in enumerate(feats))
    else:
        model = lpips_model(metric.split("-")[1], torch.device("cpu"), torch.float32)

        with torch.inference_mode():
            batch = model.scaled_pair(x, y, 1.0, True, torch.float32)  # prepared input: the backbone alone

        def backbone():
            with torch.inference_mode():
                return model.backbone(batch)

        feats = backbone()

        def distance():
            with torch.inference_mode():
                return sum(_ops.lpips_distance(f[:n], f[n:], h, NORM_EPS) for f, h in zip(feats, model.heads))
    return backbone, distance


def turboiqa_row(benchmark, metric, size, batch, row):
    x, y = make_pair(size, batch)
    if row == "turboiqa":
        fn = score_fn(metric)
        run_deep(benchmark, lambda: fn(x, y))
    elif row == "turboiqa-nchw":
        from turboiqa.nets import runtime

        fn = score_fn(metric)
        runtime.CPU_CHANNELS_LAST = False
        try:
            run_deep(benchmark, lambda: fn(x, y))
        finally:
            runtime.CPU_CHANNELS_LAST = True
    else:
        backbone, distance = parts(metric, x, y)
        run_deep(benchmark, backbone if row == "turboiqa-backbone" else distance)


def peer_row(benchmark, metric, size, batch, name):
    fn = peer(name, metric)
    if fn is None:
        pytest.skip(f"{name} not available")
    x, y = make_pair(size, batch)

    def call():
        with torch.no_grad():
            return fn(x, y)

    run_deep(benchmark, call)


# One test, group-major: every row of a group is timed back to back (same machine load for the comparison).
ALL = [(m, s, b, impl) for m, s, b in CASES for impl in ROWS + PEERS[m]]


@pytest.mark.parametrize("metric,size,batch,impl", ALL)
def test_deep(benchmark, metric, size, batch, impl):
    skip_slow(metric, size, batch, impl)
    benchmark.group = f"{metric} {size} batch {batch}"
    benchmark.extra_info["impl"] = impl
    if impl in ROWS:
        turboiqa_row(benchmark, metric, size, batch, impl)
    else:
        peer_row(benchmark, metric, size, batch, impl)


def bind(fn, x, y):
    return lambda: fn(x, y)


def interleaved(cases, repeats: int = 5):
    """Round-robin medians: each round calls every implementation of a group once, so a load change on a shared
    machine hits all rows alike (``python bench/bench_deep.py``; pytest-benchmark times rows one after another)."""
    for metric, size, batch in cases:
        x, y = make_pair(size, batch)
        backbone, distance = parts(metric, x, y)
        fns = {"turboiqa": bind(score_fn(metric), x, y), "turboiqa-backbone": backbone,
               "turboiqa-distance": distance}
        for name in PEERS[metric]:
            fn = peer(name, metric)
            if fn is not None:
                fns[name] = bind(fn, x, y)
        times = {k: [] for k in fns}
        for k, f in fns.items():  # warm-up
            with torch.no_grad():
                f()
        for _ in range(repeats):
            for k, f in fns.items():
                t = time.perf_counter()
                with torch.no_grad():
                    f()
                times[k].append(time.perf_counter() - t)
        med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
        peers = {k: v for k, v in med.items() if not k.startswith("turboiqa")}
        best = min(peers, key=peers.get)
        t, b, d = med["turboiqa"], med["turboiqa-backbone"], med["turboiqa-distance"]
        cells = ", ".join(f"{k} {v:.0f}" for k, v in peers.items())
        print(f"| {metric} {size} batch {batch} | **{t:.0f}** | {b:.0f} | {d:.1f} ({100 * d / b:.1f} %) | {cells} | "
              f"{best} {peers[best] / t:.2f}× |", flush=True)


if __name__ == "__main__":
    which = sys.argv[1:] or ["lpips-alex", "lpips-vgg", "dists"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()}")
    print("| metric, input | turboiqa | backbone | distance (% of backbone) | peers | fastest peer / turboiqa |")
    print("|---|---|---|---|---|---|")
    plan = {"lpips-alex": [("512x384", 1), ("512x384", 8), ("1080p", 1)],
            "lpips-vgg": [("512x384", 1)], "dists": [("512x384", 1)]}
    interleaved([(m, s, b) for m in which for s, b in plan[m]], repeats=3 if "1080p" in which else 5)
    print(f"load {os.getloadavg()}")
