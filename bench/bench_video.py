"""Video throughput: frames/s of PSNR + SSIM over whole clips, turboiqa vs ffmpeg's filters vs libvmaf.

Inputs (made once into --cache-dir, which git ignores):
  720p   ../shared/data/video/bigbuckbunny.mp4 (1280×720, 132 frames) vs a libx264 CRF 38 re-encode made with PyAV
  1080p  synthetic 1920×1080 clip (textured, moving), libx264 CRF 12 as the reference, CRF 38 as the distorted

Rows, all on the same two files:
  turboiqa pipeline   turboiqa.video.score(psnr, ssim): decode thread + native kernels (ssim convention 'libvmaf').
                      decode = the decoding thread's busy time, scoring = the scorer's time (they overlap)
  turboiqa scoring    psnr + ssim on frames decoded beforehand, batches of --batch (no decoder competing for cores)
  ffmpeg decode       ffmpeg -i DIST -i REF → null: ffmpeg decoding both H.264 streams
  ffmpeg ssim+psnr    the psnr and ssim filters (Y, U and V planes) on the same frames decoded beforehand into
                      .y4m files (raw YUV, read at memory speed); scoring = total − reading the .y4m files
  libvmaf float_ssim+psnr   libvmaf filter on the .y4m files, model= (features only), n_threads = torch threads;
                      scoring = total − reading the .y4m files

Run: python bench/bench_video.py [--repeat 3] [--device cuda] [--json bench/results-video-cpu.json]
Prints a Markdown table (median of --repeat runs). Times are wall-clock seconds over the whole clip.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEO = ROOT / ".." / "shared" / "data" / "video"


def encode(frames, path: Path, fps, crf: int, preset: str = "veryfast") -> Path:
    """Encode an iterable of H×W×3 uint8 RGB arrays (or av.VideoFrame) with libx264 through PyAV."""
    import av

    with av.open(str(path), "w") as out:
        stream = None
        rate = Fraction(fps).limit_denominator(1001)
        for index, item in enumerate(frames):
            frame = item if isinstance(item, av.VideoFrame) else av.VideoFrame.from_ndarray(item, format="rgb24")
            if stream is None:
                stream = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = index, 1 / rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_720p(cache: Path, video_dir: Path):
    import av

    ref = video_dir / "bigbuckbunny.mp4"
    dist = cache / "bigbuckbunny_crf38.mp4"
    if not dist.exists():
        with av.open(str(ref)) as inp:
            stream = inp.streams.video[0]
            encode(inp.decode(stream), dist, stream.average_rate, crf=38)
    return ref, dist


def synthetic_frames(count: int, height: int = 1080, width: int = 1920, seed: int = 0):
    rng = np.random.default_rng(seed)
    small = rng.random((height // 8 + 2 * count // 8 + 4, width // 8 + 4, 3)).astype(np.float32)
    big = np.kron(small, np.ones((8, 8, 1), np.float32))  # blocks…
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        shift = 2 * i
        texture = big[shift:shift + height, :width]
        wave = 0.5 + 0.5 * np.sin((xx + 3 * i) / 37.0)[..., None] * np.cos((yy - 2 * i) / 23.0)[..., None]
        img = 255 * (0.55 * texture + 0.45 * wave)
        yield np.clip(img, 0, 255).astype(np.uint8)


def make_1080p(cache: Path, count: int):
    ref, dist = cache / f"synthetic1080_{count}_crf12.mp4", cache / f"synthetic1080_{count}_crf38.mp4"
    if not ref.exists():
        encode(synthetic_frames(count), ref, 25, crf=12)
    if not dist.exists():
        encode(synthetic_frames(count), dist, 25, crf=38)
    return ref, dist


def count_frames(path: Path) -> int:
    from turboiqa.video.decode import decoded_frames, open_video

    container, stream = open_video(path, "video")
    try:
        return sum(1 for _ in decoded_frames(container, stream, "video", path))
    finally:
        container.close()


def time_turboiqa_pipeline(ref, dist, device, batch):
    import turboiqa.video as tv

    timing = tv.ScoreTiming()
    for _ in tv.score(distorted=dist, reference=ref, metrics=["psnr", "ssim"], device=device, batch_size=batch,
                      timing=timing):
        pass
    return {"total": timing.wall_s, "decode": timing.decode_s, "scoring": timing.score_s}


def decoded_y_batches(ref, dist, batch):
    from turboiqa.video.decode import BatchReader

    with BatchReader(distorted=dist, reference=ref, planes={"y"}, batch_size=batch) as reader:
        return [(b.ref["y"], b.dist["y"]) for b in reader]


def time_turboiqa_scoring(batches, device):
    import turboiqa

    batches = [(r.to(device), d.to(device)) for r, d in batches]
    if device != "cpu":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for r, d in batches:
        p = turboiqa.psnr(d, r, data_range=255, reduction="none")
        s = turboiqa.ssim(d, r, data_range=255, reduction="none", convention="libvmaf")
        torch.stack([p, s]).cpu()
    return {"scoring": time.perf_counter() - t0, "scoring_cpu": time.process_time() - c0}


def run_ffmpeg(args):
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def to_y4m(path: Path, cache: Path) -> Path:
    """The decoded frames as raw YUV (yuv4mpeg), so ffmpeg/libvmaf rows time scoring rather than H.264 decoding."""
    raw = cache / (path.stem + ".y4m")
    if not raw.exists():
        run_ffmpeg(["-y", "-i", str(path), "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(raw)])
    return raw


def time_ffmpeg(ref, dist, threads, raw_ref, raw_dist):
    decode, _ = run_ffmpeg(["-i", str(dist), "-i", str(ref), "-map", "0:v", "-f", "null", "-", "-map", "1:v",
                            "-f", "null", "-"])
    inputs = ["-i", str(raw_dist), "-i", str(raw_ref)]
    read, read_cpu = run_ffmpeg([*inputs, "-map", "0:v", "-f", "null", "-", "-map", "1:v", "-f", "null", "-"])
    filters, filters_cpu = run_ffmpeg([*inputs, "-filter_complex",
                          "[0:v]split[d1][d2];[1:v]split[r1][r2];[d1][r1]psnr[o1];[d2][r2]ssim[o2]",
                          "-map", "[o1]", "-f", "null", "-", "-map", "[o2]", "-f", "null", "-"])
    vmaf, vmaf_cpu = run_ffmpeg([*inputs, "-lavfi",
                       f"[0:v][1:v]libvmaf=model=:feature=name=float_ssim|name=psnr:n_threads={threads}",
                       "-f", "null", "-"])
    return {"decode": decode, "read_y4m": read, "filters": filters, "vmaf": vmaf,
            "filters_cpu": filters_cpu - read_cpu, "vmaf_cpu": vmaf_cpu - read_cpu}


def interleaved_medians(fns: dict, repeat: int) -> dict:
    """Each repeat runs every implementation once, so load from other processes hits all rows alike."""
    runs = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            runs[name].append(fn())
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}


def fps(frames, seconds):
    return frames / seconds if seconds and seconds > 0 else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", default=str(ROOT / "bench" / ".video-cache"))
    parser.add_argument("--video-dir", default=str(SHARED_VIDEO), help="folder holding bigbuckbunny.mp4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames-1080p", type=int, default=60)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=["720p", "1080p"], default=None)
    parser.add_argument("--no-ffmpeg", action="store_true", help="skip the ffmpeg / libvmaf rows")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    inputs = {}
    if args.only in (None, "720p"):
        inputs["720p bigbuckbunny"] = make_720p(cache, Path(args.video_dir))
    if args.only in (None, "1080p"):
        inputs["1080p synthetic"] = make_1080p(cache, args.frames_1080p)
    results = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
               "threads": threads, "device": args.device, "repeat": args.repeat, "inputs": {}}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    results["load_average_before"] = os.getloadavg()
    header = ("| input | implementation | frames | total s | decode s | scoring s | scoring frames/s | "
              "scoring CPU ms/frame | end-to-end frames/s |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for name, (ref, dist) in inputs.items():
        frames = count_frames(ref)
        row = {"frames": frames}
        batches = decoded_y_batches(ref, dist, args.batch)
        fns = {"turboiqa_pipeline": lambda r=ref, d=dist: time_turboiqa_pipeline(r, d, args.device, args.batch),
               "turboiqa_scoring": lambda b=batches: time_turboiqa_scoring(b, args.device)}
        if not args.no_ffmpeg:
            raw_ref, raw_dist = to_y4m(ref, cache), to_y4m(dist, cache)
            fns["ffmpeg"] = lambda r=ref, d=dist, rr=raw_ref, rd=raw_dist: time_ffmpeg(r, d, threads, rr, rd)
        time_turboiqa_scoring(batches[:1], args.device)  # warm-up (CUDA context, kernels, caches)
        medians = interleaved_medians(fns, args.repeat)
        row.update(medians)
        pipe, scoring = medians["turboiqa_pipeline"], medians["turboiqa_scoring"]
        dev = args.device
        lines.append(f"| {name} | turboiqa pipeline ({dev}) | {frames} | {pipe['total']:.2f} | {pipe['decode']:.2f} | "
                     f"{pipe['scoring']:.2f} | {fps(frames, pipe['scoring']):.0f} | — | {fps(frames, pipe['total']):.0f} |")
        lines.append(f"| {name} | turboiqa psnr+ssim on decoded frames ({dev}) | {frames} | — | — | "
                     f"{scoring['scoring']:.3f} | **{fps(frames, scoring['scoring']):.0f}** | "
                     f"{1000 * scoring['scoring_cpu'] / frames:.1f} | — |")
        if not args.no_ffmpeg:
            ff = medians["ffmpeg"]
            lines.append(f"| {name} | ffmpeg decode only | {frames} | {ff['decode']:.2f} | {ff['decode']:.2f} | — | — | "
                         f"— | {fps(frames, ff['decode']):.0f} |")
            for label, key in (("ffmpeg ssim+psnr filters on decoded frames (.y4m)", "filters"),
                               (f"libvmaf float_ssim+psnr on decoded frames (.y4m, n_threads={threads})", "vmaf")):
                score_s = ff[key] - ff["read_y4m"]
                lines.append(f"| {name} | {label} | {frames} | {ff[key]:.2f} | ({ff['read_y4m']:.2f} read) | "
                             f"{score_s:.3f} | {fps(frames, score_s):.0f} | {1000 * ff[key + '_cpu'] / frames:.1f} | — |")
        results["inputs"][name] = row
        print("\n".join(lines[-(5 if not args.no_ffmpeg else 2):]), flush=True)
    results["load_average_after"] = os.getloadavg()
    print()
    print("\n".join(lines))
    print(f"load average before/after: {results['load_average_before']} / {results['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
