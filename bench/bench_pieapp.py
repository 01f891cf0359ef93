"""PieAPP: turboiqa against piq and pyiqa on the same weights and inputs, timed round-robin in one process.

The official checkpoint is not available offline, so every implementation loads the same fixed-seed random weights
in the original's layout (the network's cost does not depend on the values). Inputs: RGB float32 in [0, 1],
512×384 by default (the TID2013 size; ``--size 1920x1080`` for 1080p), stride 27 ('sparse', 204 patch pairs on
every grid at 512×384, 2,622 at 1080p). ``--busy N`` starts N CPU-spinning processes beside the benchmark.

``--isolated`` times each implementation in a fresh process per round instead (turboiqa keeps freed memory for reuse
during its call and trims it after, but glibc's heap layout it leaves behind still spares a peer timed next in the
same process some page faults: in one process piq ran 4.06 s, alone 4.45–4.85 s).

Run: python bench/bench_pieapp.py [--repeats 5] [--size WxH] [--busy 1] [--isolated] [--json bench/results-pieapp-cpu.json]
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from round_robin import spinning, timed  # noqa: E402
from peer_stubs import import_pyiqa_arch, install_torchvision_stub, patched_hub_load  # noqa: E402


def random_checkpoint(path: Path) -> None:
    from turboiqa.metrics.pieapp import PieAPPNet

    torch.manual_seed(0)
    net = PieAPPNet(pretrained=False)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight)
    state = net.state_dict()
    state["ref_score_subtract.weight"] = state["ref_score_subtract.weight"].reshape(1)  # the original's layout
    torch.save(state, path)


def implementations(checkpoint: Path) -> dict:
    import turboiqa

    impls = {"turboiqa (original grid)": turboiqa.PieAPP(weights=checkpoint),
             "turboiqa (piq grid)": turboiqa.PieAPP(convention="piq", weights=checkpoint)}
    install_torchvision_stub()
    try:
        import piq

        with patched_hub_load(torch.load(checkpoint)):
            impls["piq 0.8"] = piq.PieAPP(stride=27)
    except ImportError:
        pass
    arch = import_pyiqa_arch("pieapp_arch")
    if arch is not None:
        impls["pyiqa"] = arch.PieAPP(pretrained_model_path=str(checkpoint)).eval()
    return impls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--size", default="512x384", help="WxH")
    parser.add_argument("--only", help="time this one implementation (by its row name) in this process: glibc's heap "
                                       "state left by one implementation can speed up the next one in the same process")
    parser.add_argument("--isolated", action="store_true",
                        help="each timing in a fresh process (round-robin over the implementations): what a user of "
                             "one library sees, with no heap state handed from one implementation to the next")
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pyiqa's loading messages
    if args.isolated:
        return isolated(args)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "PieAPPv0.1.pth"
        random_checkpoint(checkpoint)
        impls = implementations(checkpoint)
        if args.only:
            if args.only not in impls:
                parser.error(f"--only must be one of {sorted(impls)}")
            impls = {args.only: impls[args.only]}
        width, height = (int(v) for v in args.size.split("x"))
        x, y = torch.rand(1, 3, height, width), torch.rand(1, 3, height, width)
        with torch.no_grad():
            rows = timed({name: functools.partial(f, x, y) for name, f in impls.items()}, args.repeats, busy=args.busy)
        ours = rows.get("turboiqa (piq grid)")
        for name, ms in rows.items():
            print(f"{name:28s} {ms:9.1f} ms" + (f"   {ms / ours:5.2f}× turboiqa (piq grid)" if ours else ""))
    if args.json:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "busy_processes": args.busy,
                "repeats": args.repeats, "input": f"1x3x{height}x{width} float32, stride 27"}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": rows}, indent=1))
    return 0


ROWS = ("turboiqa (original grid)", "turboiqa (piq grid)", "piq 0.8", "pyiqa")


def isolated(args) -> int:
    """``--repeats`` rounds; in each, every implementation is timed once (after its warm-up) in its own process."""
    times = {name: [] for name in ROWS}
    with spinning(args.busy), tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name in ROWS[r % len(ROWS):] + ROWS[:r % len(ROWS)]:
                out = Path(tmp) / "one.json"
                subprocess.run([sys.executable, __file__, "--only", name, "--repeats", "1", "--size", args.size,
                                "--json", str(out)], check=True, capture_output=True)
                times[name].append(json.loads(out.read_text())["median_ms"][name])
    rows = {name: statistics.median(t) for name, t in times.items()}
    ours = rows["turboiqa (piq grid)"]
    for name, ms in rows.items():
        print(f"{name:28s} {ms:9.1f} ms   {ms / ours:5.2f}× turboiqa (piq grid)   (runs: {', '.join(f'{t:.0f}' for t in times[name])})")
    if args.json:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "busy_processes": args.busy,
                "rounds": args.repeats, "isolated": True, "input": f"1x3x{args.size} float32, stride 27"}
        Path(args.json).write_text(json.dumps({"machine": info, "median_ms": rows, "runs_ms": times}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
