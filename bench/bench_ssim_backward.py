"""The CPU SSIM backward operator of this install against another turboiqa install (a baseline), in alternating
processes — one interleaved run — at 1 and 2 threads, optionally beside N CPU-spinning processes.

Usage: python bench/bench_ssim_backward.py BASELINE_PATH [ROUNDS] [BUSY]
(BASELINE_PATH: a `pip install --no-deps --target PATH <old checkout>` of the version to compare with)"""
import ast, os, statistics, subprocess, sys
CHILD = r'''
import sys, time, torch
import turboiqa
from turboiqa import _ops
from turboiqa.window import gaussian_window
torch.set_num_threads(int(sys.argv[1]))
w = gaussian_window()
res = {}
for name, shape, pad in [("piq SSIMLoss 1080p rgb (270x480 after pooling)", (1, 3, 270, 480), "valid"),
                         ("loss batch 4x3x256x256", (4, 3, 256, 256), "valid"),
                         ("1080p grey same-padding", (1, 1, 1080, 1920), "symmetric")]:
    x = torch.rand(shape); y = torch.rand(shape)
    gs = torch.ones(shape[:2]); gc = torch.ones(shape[:2])
    ts = []
    for i in range(8):
        t0 = time.perf_counter()
        torch.ops.turboiqa._ssim_stats_backward(gs, gc, x, y, w, 1e-4, 9e-4, pad, 1.0)
        ts.append((time.perf_counter() - t0) * 1e3)
    res[name] = sorted(ts[2:])[len(ts[2:]) // 2]
print(repr(res))
'''
baseline = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
busy = int(sys.argv[3]) if len(sys.argv) > 3 else 0
spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
out = {}
try:
    for r in range(rounds):
        for label, path in ([("before", baseline), ("after", None)] if r % 2 == 0 else [("after", None), ("before", baseline)]):
            for threads in (1, 2):
                env = dict(os.environ)
                if path: env["PYTHONPATH"] = path
                res = ast.literal_eval(subprocess.run([sys.executable, "-c", CHILD, str(threads)], env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
                for k, v in res.items():
                    out.setdefault(f"{k} | {threads}t", {}).setdefault(label, []).append(v)
finally:
    for p in spin: p.kill()
for k, v in out.items():
    b, a = statistics.median(v["before"]), statistics.median(v["after"])
    print(f"{k:60s} before {b:8.2f} ms  after {a:8.2f} ms  {b/a:5.2f}x")
