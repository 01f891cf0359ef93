"""CPU speed under load: SSIM, MS-SSIM, PSNR, FSIM and GMSD at 1920×1080, turboiqa against frame-analytics, with 1 and 2
threads, on a quiet machine and with busy background processes that this script starts itself.

Users score while decoders, data loaders and other processes run; a kernel that splits its work statically waits
for its slowest thread, so a second thread can make it slower. Each (library, thread count) runs in a Python
process of its own — frame-analytics sizes its thread pool once, at its first call, and the idle spinning of one
library's pool threads would steal the cores of the other in a shared process — and this script calls them
round-robin, one call at a time, the order rotating every round, so every cell sees the same load over time; the
median of the rounds is reported.

    python bench/bench_contention.py                       # table on stdout + bench/results-contention.json
    python bench/bench_contention.py --busy 1 3 --rounds 15 --json out.json
    python bench/bench_contention.py --markdown bench/results-contention.json   # print the table again
    # a second turboiqa (e.g. an earlier commit, `pip install --no-deps --target DIR .`) as an extra column:
    python bench/bench_contention.py --baseline before=/tmp/turboiqa-before

Needs the compiled extension and frame-analytics (the `bench` extra); without frame-analytics only turboiqa runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ("ssim grey-f32", "ms_ssim grey-f32", "psnr rgb-u8", "psnr rgb-f32", "fsim rgb-f32", "gmsd rgb-f32")


def implementations(case, frames):
    """case -> {name: zero-argument callable}: the same inputs and window for both libraries."""
    import torch  # noqa: F401  (imported here: the parent process never loads torch)
    import turboiqa  # a --baseline worker has put its own copy first on sys.path

    metric, kind = case.split()
    ref, dist = frames[kind]
    impls = {}
    if metric == "ssim":
        impls["turboiqa"] = lambda: turboiqa.ssim(dist, ref, 1.0, convention="pytorch_msssim")
    elif metric == "ms_ssim":
        impls["turboiqa"] = lambda: turboiqa.ms_ssim(dist, ref, 1.0, convention="pytorch_msssim")
    elif metric == "psnr":
        peak = 255 if kind.endswith("u8") else 1.0
        impls["turboiqa"] = lambda: turboiqa.psnr(dist, ref, peak)
    elif metric == "fsim":
        impls["turboiqa"] = lambda: turboiqa.fsim(dist, ref, 1.0)
    elif metric == "gmsd":  # the per-channel convention does frame-analytics' work
        impls["turboiqa"] = lambda: turboiqa.gmsd(dist, ref, 1.0, convention="frame_analytics")
    try:
        import frame_analytics as fa
    except Exception:  # noqa: BLE001 - a missing or broken peer is a missing column
        return impls
    peak = 255 if kind.endswith("u8") else 1.0
    impls["frame-analytics"] = {
        "ssim": lambda: fa.ssim(dist, ref, data_range=peak),
        "ms_ssim": lambda: fa.ms_ssim(dist, ref, data_range=peak),
        "psnr": lambda: fa.psnr(dist, ref, data_range=peak),
        "fsim": lambda: fa.fsim(dist, ref, data_range=peak),
        "gmsd": lambda: fa.gmsd(dist, ref, data_range=peak),
    }[metric]
    return impls


def make_frames():
    import torch

    g = torch.Generator().manual_seed(0)
    ref = torch.randint(0, 256, (1, 3, 1080, 1920), generator=g, dtype=torch.uint8)
    noise = torch.randint(-12, 13, ref.shape, generator=g, dtype=torch.int16)
    dist = (ref.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
    # Smooth content (a blurred copy) so the SSIM family sees image-like statistics, not white noise.
    ref_f = torch.nn.functional.avg_pool2d(ref.float(), 5, 1, 2) / 255
    dist_f = (ref_f + (dist.float() - ref.float()) / 255).clamp(0, 1)
    return {
        "grey-f32": (ref_f[:, :1].contiguous(), dist_f[:, :1].contiguous()),
        "rgb-f32": (ref_f.contiguous(), dist_f.contiguous()),
        "rgb-u8": (ref, dist),
    }


def busy_processes(count):
    """`count` processes that spin on the CPU (plain Python loops: no threads, no memory traffic)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def serve(library, threads, cases, path=None):
    """Worker: one library at one thread count, in a process of its own (frame-analytics sizes its pool once, and a
    peer's spinning pool threads in the same process would steal the other's cores). Reads a case per line from
    stdin, runs it once, answers the milliseconds. ``path``: where a baseline turboiqa is installed."""
    if path:
        sys.path.insert(0, path)
    import torch

    torch.set_num_threads(threads)
    frames = make_frames()
    impls = {case: implementations(case, frames).get("turboiqa" if path else library) for case in cases}
    for fn in impls.values():  # first calls: lazy loads, thread pools, caches
        if fn is not None:
            fn()
    print("ready", flush=True)
    for line in sys.stdin:
        fn = impls[line.strip()]
        if fn is None:
            print("nan", flush=True)
            continue
        start = time.perf_counter()
        fn()
        print((time.perf_counter() - start) * 1e3, flush=True)


class Worker:
    def __init__(self, library, threads, cases, path=None):
        cmd = [sys.executable, __file__, "--serve", library, str(threads), "--cases", *cases]
        if path:
            cmd += ["--serve-path", path]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{library} worker ({threads} threads) failed to start")

    def time(self, case):
        self.proc.stdin.write(case + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def run(thread_counts, busy_levels, rounds, cases, baselines=()):
    """All workers alive at once, called round-robin (rotating order) so every cell sees the same load over time;
    one idle worker costs nothing (it blocks on its stdin). ``baselines``: (name, path) of other turboiqa installs."""
    paths = dict(baselines)
    libraries = ["turboiqa", *(f"turboiqa-{name}" for name in paths)]
    try:
        import frame_analytics  # noqa: F401

        libraries.append("frame-analytics")
    except Exception:  # noqa: BLE001
        pass
    keys = [(lib, t) for t in thread_counts for lib in libraries]
    workers = {key: Worker(key[0], key[1], cases, paths.get(key[0].removeprefix("turboiqa-"))) for key in keys}
    results = {str(t): {str(b): {c: {} for c in cases} for b in busy_levels} for t in thread_counts}
    try:
        for busy in busy_levels:
            spinners = busy_processes(busy)
            try:
                time.sleep(0.3 if busy else 0)
                for case in cases:
                    times = {key: [] for key in keys}
                    for r in range(rounds):
                        for k in range(len(keys)):
                            key = keys[(r + k) % len(keys)]
                            times[key].append(workers[key].time(case))
                    for (lib, t), values in times.items():
                        if all(v == v for v in values):  # NaN: the library has no such metric
                            results[str(t)][str(busy)][case][lib] = values
                    print(f"# {case}, {busy} busy: done", file=sys.stderr, flush=True)
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
    finally:
        for w in workers.values():
            w.close()
    return {"machine": machine(), "rounds": rounds, "libraries": libraries, "results": results}


def machine():
    import platform

    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()[0]}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    probe = ("import json, torch, turboiqa; i = turboiqa.build_info(); "
             "print(json.dumps({'torch': torch.__version__, 'isa': i['cpu_isa_selected']}))")
    try:
        import frame_analytics

        info["frame_analytics"] = getattr(frame_analytics, "__version__", "?")
    except Exception:  # noqa: BLE001
        pass
    info.update(json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                          check=True).stdout))
    return info


def markdown(data):
    """One row per (case, background): medians per library and thread count, and the ratios the targets are
    stated in (turboiqa's 2-thread speed-up, and the fastest frame-analytics over the fastest turboiqa)."""
    res = data["results"]
    threads = sorted(res, key=int)
    libraries = data.get("libraries", ["turboiqa", "frame-analytics"])
    busy_levels = list(next(iter(res.values())))
    cases = list(next(iter(next(iter(res.values())).values())))
    cols = [f"{lib}, {t} thr" for lib in libraries for t in threads]
    lines = ["| case | background | " + " | ".join(cols) + " | turboiqa 2 thr vs 1 | frame-analytics / turboiqa |",
             "|---" * (len(cols) + 4) + "|"]
    for case in cases:
        for busy in busy_levels:
            med = {(lib, t): statistics.median(times)
                   for t in threads for lib, times in res[t][busy][case].items()}
            cells = [f"{med[(lib, t)]:.2f}" if (lib, t) in med else "—" for lib in libraries for t in threads]
            scaling = ratio = "—"
            if ("turboiqa", "1") in med and ("turboiqa", "2") in med:
                scaling = f"{med[('turboiqa', '1')] / med[('turboiqa', '2')]:.2f}×"
            tq = [v for (lib, _), v in med.items() if lib == "turboiqa"]
            fa = [v for (lib, _), v in med.items() if lib == "frame-analytics"]
            if tq and fa:
                ratio = f"{min(fa) / min(tq):.2f}×"
            label = "quiet" if busy == "0" else f"{busy} busy process{'es' if busy != '1' else ''}"
            lines.append(f"| {case} | {label} | " + " | ".join(cells) + f" | {scaling} | {ratio} |")
    m = data["machine"]
    lines.append("")
    lines.append(f"Median ms of {data['rounds']} round-robin calls per cell; {m.get('cpu', '?')}, {m['cpus']} CPUs, "
                 f"torch {m.get('torch')}, ISA {m.get('isa')}, frame-analytics {m.get('frame_analytics', '—')}.")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="background spinners per run (0 = quiet)")
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--cases", nargs="+", default=list(CASES), help=f"quoted, from: {', '.join(CASES)}")
    p.add_argument("--json", default=os.path.join(HERE, "results-contention.json"))
    p.add_argument("--markdown", metavar="JSON", help="only print the table of an earlier run")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME=PATH",
                   help="another turboiqa installed under PATH (pip install --target), timed as turboiqa-NAME")
    p.add_argument("--serve", nargs=2, metavar=("LIBRARY", "THREADS"), help=argparse.SUPPRESS)
    p.add_argument("--serve-path", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.cases, args.serve_path)
        return
    baselines = [tuple(b.split("=", 1)) for b in args.baseline]
    if any(len(b) != 2 or not os.path.isdir(b[1]) for b in baselines):
        p.error(f"--baseline takes NAME=PATH with an existing folder, got {args.baseline}")
    data = run(args.threads, args.busy, args.rounds, args.cases, baselines)
    with open(args.json, "w") as f:
        json.dump(data, f, indent=1)
    print(markdown(data))


if __name__ == "__main__":
    main()
