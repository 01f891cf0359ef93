"""GMSD as a loss (forward + backward w.r.t. the distorted image) on the CPU, RGB float32 in [0, 1] at 512×384 and
1920×1080: turboiqa with the native backward (_gradient_similarity_backward) against the path before it (the native
forward, backward = autograd through the PyTorch twin, reproduced here by a custom autograd.Function), turboiqa's
pure-PyTorch route (backend='reference') and piq's GMSDLoss; timed round-robin in one process
(bench/round_robin.py). Also the operator alone (moments of one 0–255 luma plane, forward + backward).

Run: python bench/bench_gradient_similarity_backward.py [--repeats 5] [--threads 1]
     [--json bench/results-gradient-similarity-backward-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from round_robin import timed  # noqa: E402
from peer_stubs import import_piq_module  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


class _TwinVjpGradSim(torch.autograd.Function):
    """The pre-native-backward path: native forward, backward = vjp of the twin (as _ops did before)."""

    @staticmethod
    def forward(ctx, x, y, *params):
        ctx.save_for_backward(x, y)
        ctx.params = params
        with torch.no_grad():
            return torch.ops.turboiqa.gradient_similarity(x, y, *params)

    @staticmethod
    def backward(ctx, grad):
        from turboiqa import _ops
        from turboiqa.reference.gradient_similarity import gradient_similarity as reference

        x, y = ctx.saved_tensors
        gx, gy = _ops._reference_vjp(lambda a, b: reference(a, b, *ctx.params), [x, y],
                                     list(ctx.needs_input_grad[:2]), grad)
        return gx, gy, *([None] * len(ctx.params))


def twin_vjp_gradient_similarity(x, y, smooth, scale, c, alpha=0.0, eps=0.0, padding="zeros", output="map",
                                 backend="auto"):
    return _TwinVjpGradSim.apply(x, y, [float(v) for v in smooth], float(scale), float(c), float(alpha), float(eps),
                                 str(padding), str(output))


def loss_step(fn, x, y):
    xg = x.detach().requires_grad_()
    fn(xg, y).backward()
    return xg.grad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="bench/results-gradient-similarity-backward-cpu.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from turboiqa import _ops
    from turboiqa.metrics import gmsd as gmsd_module

    native_op = _ops.gradient_similarity

    def with_op(op, fn):
        def run(x, y):
            gmsd_module._ops.gradient_similarity = op
            try:
                return fn(x, y)
            finally:
                gmsd_module._ops.gradient_similarity = native_op
        return run

    piq_gmsd = import_piq_module("gmsd")
    impls = {
        "turboiqa native backward": lambda x, y: gmsd_module.gmsd(x, y, 1.0),
        "turboiqa twin-vjp backward (before)": with_op(twin_vjp_gradient_similarity,
                                                       lambda x, y: gmsd_module.gmsd(x, y, 1.0)),
        "turboiqa backend='reference'": lambda x, y: gmsd_module.gmsd(x, y, 1.0, backend="reference"),
    }
    if piq_gmsd:
        loss = piq_gmsd.GMSDLoss(data_range=1.0)
        impls["piq GMSDLoss"] = lambda x, y: loss(x, y)

    results = {}
    for size, (h, w) in SIZES.items():
        g = torch.Generator().manual_seed(0)
        y = torch.rand(1, 3, h, w, generator=g)
        x = (y + 0.05 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)
        cases = {f"gmsd loss {size} | {name}": (lambda f=f: loss_step(f, x, y)) for name, f in impls.items()}
        # the operator alone: moments of one 0–255 plane pair, forward + backward
        px, py = x[:, :1] * 255, y[:, :1] * 255
        op_args = ((1.0, 1.0, 1.0), 1 / 3, 170.0, 0.0, 0.0, "zeros", "moments")
        cases[f"op moments {size} | native backward"] = lambda: loss_step(
            lambda a, b: native_op(a, b, *op_args).sum(), px, py)
        cases[f"op moments {size} | twin-vjp backward (before)"] = lambda: loss_step(
            lambda a, b: twin_vjp_gradient_similarity(a, b, *op_args).sum(), px, py)
        results.update(timed(cases, args.repeats))
    base = {}
    for name, ms in results.items():
        group, impl = name.split(" | ")
        if impl in ("turboiqa native backward", "native backward"):
            base[group] = ms
    out = {"threads": args.threads, "repeats": args.repeats, "median_ms": results,
           "ratio_vs_native": {n: ms / base[n.split(" | ")[0]] for n, ms in results.items()}}
    for name, ms in results.items():
        print(f"{name:70s} {ms:9.2f} ms  {out['ratio_vs_native'][name]:6.2f}x native")
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
