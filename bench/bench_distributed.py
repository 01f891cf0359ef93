"""Ray scale-out (turboiqa.distributed) against the single-process jobs on this machine.

* dataset: ``evaluate``'s scoring (psnr, ssim) of a TID2013-layout folder of renamed copies of the shared TID2013
  pairs (512×384), pairs/s;
* video: psnr + ssim (libvmaf convention) of a 720p pair (``bigbuckbunny.mp4`` looped ``--loops`` times,
  re-encoded with libx264 with a keyframe every 25 frames: CRF 12 as the reference, CRF 38 as the distorted),
  frames/s, cut into ranges of ``--frames-per-task``;
* Ray's overhead: the round trip of an empty task (submit → result, one at a time), and empty tasks per second
  when many are in flight.

The single process runs with torch on 1 and on 2 threads; the Ray runs start a local cluster with 1 and 2 CPUs
(one task per CPU, torch on 1 thread in each), warmed up before the timed jobs (a worker's first task imports
torch, turboiqa and PyAV: the warm-up, one dataset and one video job, is reported as ``first_job_s``). Results:
``--json`` (default bench/results-distributed-cpu.json).

    PYTHONPATH=python python bench/bench_distributed.py
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TURBOIQA_SHARED_DATA", ROOT.parent / "shared" / "data"))
METRICS = ["psnr", "ssim"]

sys.path.insert(0, str(ROOT / "tests"))
from dataset_folders import build_tid_folder  # noqa: E402 - the folder tests/test_distributed.py scores


def encode(src: Path, dst: Path, crf: int, loops: int, gop: int = 25) -> Path:
    import av

    with av.open(str(dst), "w") as out:
        o = None
        i = 0
        for _ in range(loops):
            with av.open(str(src)) as inp:
                s = inp.streams.video[0]
                rate = Fraction(s.average_rate)
                if o is None:
                    o = out.add_stream("libx264", rate=rate)
                    o.width, o.height, o.pix_fmt = s.codec_context.width, s.codec_context.height, "yuv420p"
                    o.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "crf": str(crf),
                                 "preset": "veryfast"}
                for frame in inp.decode(s):
                    frame.pts, frame.time_base = i, 1 / rate
                    i += 1
                    for packet in o.encode(frame):
                        out.mux(packet)
        for packet in o.encode():
            out.mux(packet)
    return dst


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-reference", type=int, default=24, help="copies per reference (6 references)")
    parser.add_argument("--loops", type=int, default=3, help="times the 720p clip is looped (132 frames each)")
    parser.add_argument("--frames-per-task", type=int, default=64)
    parser.add_argument("--pairs-per-task", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results-distributed-cpu.json"))
    args = parser.parse_args(argv)

    import torch

    import turboiqa
    from turboiqa import distributed
    from turboiqa.eval.datasets import TID2013
    from turboiqa.eval.runner import score_dataset
    from turboiqa.video import run

    work = Path(tempfile.mkdtemp(prefix="turboiqa-bench-ray-"))
    try:
        n_pairs = build_tid_folder(work / "tid", SHARED / "tid2013", args.per_reference)
        dataset = TID2013(work / "tid")
        bbb = SHARED / "video" / "bigbuckbunny.mp4"
        ref = encode(bbb, work / "ref.mp4", 12, args.loops)
        dist = encode(bbb, work / "dist.mp4", 38, args.loops)
        n_frames = len(distributed.frame_index(ref)["pts"])
        results = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(),
                               "torch": torch.__version__, "turboiqa": turboiqa.__version__},
                   "dataset": {"pairs": n_pairs, "size": "512x384 RGB", "metrics": METRICS},
                   "video": {"frames": n_frames, "size": "1280x720", "gop": 25, "metrics": METRICS,
                             "frames_per_task": args.frames_per_task},
                   "runs": []}

        def dataset_job(score):
            path = work / "scores.csv"
            path.unlink(missing_ok=True)
            score(path)

        def video_job(runner):
            path = work / "video.csv"
            path.unlink(missing_ok=True)
            runner(path)

        for threads in (1, 2):
            torch.set_num_threads(threads)
            d, dt = timed(lambda: dataset_job(lambda p: score_dataset(dataset, METRICS, p, progress=False)),
                          args.repeat)
            v, vt = timed(lambda: video_job(lambda p: run(distorted=dist, reference=ref, metrics=METRICS, out=p,
                                                          progress=False)), args.repeat)
            results["runs"].append({"mode": f"single process, torch {threads} thread(s)", "pairs_per_s": n_pairs / d,
                                    "frames_per_s": n_frames / v, "dataset_s": dt, "video_s": vt})
            print(results["runs"][-1], flush=True)
        torch.set_num_threads(1)

        for workers in (1, 2):
            t0 = time.perf_counter()
            with distributed.cluster(num_cpus=workers) as ray:
                start_s = time.perf_counter() - t0

                def ray_dataset(p, ray=ray):
                    distributed.score_dataset(dataset, METRICS, p, pairs_per_task=args.pairs_per_task, progress=False,
                                              ray=ray)

                def ray_video(p, ray=ray):
                    distributed.run_video(distorted=dist, reference=ref, metrics=METRICS, out=p,
                                          frames_per_task=args.frames_per_task, progress=False, ray=ray)

                first, _ = timed(lambda: (dataset_job(ray_dataset), video_job(ray_video)), 1)  # warm-up
                d, dt = timed(lambda: dataset_job(ray_dataset), args.repeat)
                v, vt = timed(lambda: video_job(ray_video), args.repeat)

                @ray.remote(num_cpus=1)
                def empty():
                    return None

                ray.get([empty.remote() for _ in range(20)])
                t1 = time.perf_counter()
                for _ in range(200):
                    ray.get(empty.remote())
                round_trip = (time.perf_counter() - t1) / 200
                t1 = time.perf_counter()
                ray.get([empty.remote() for _ in range(2000)])
                per_s = 2000 / (time.perf_counter() - t1)
            results["runs"].append({"mode": f"ray local, {workers} worker(s)", "pairs_per_s": n_pairs / d,
                                    "frames_per_s": n_frames / v, "dataset_s": dt, "video_s": vt,
                                    "cluster_start_s": start_s, "first_job_s": first,
                                    "empty_task_round_trip_ms": round_trip * 1e3, "empty_tasks_per_s": per_s})
            print(results["runs"][-1], flush=True)
        results["machine"]["load_avg_end"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"| mode | pairs/s | frames/s (720p) |\n|---|---|---|")
    for r in results["runs"]:
        print(f"| {r['mode']} | {r['pairs_per_s']:.1f} | {r['frames_per_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
