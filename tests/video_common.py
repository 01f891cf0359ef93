"""Helpers of the video tests: the shared clips, synthetic clips written with PyAV, and the ffmpeg oracle
(the binary inside the imageio-ffmpeg wheel: psnr / ssim filters and libvmaf float_ssim / psnr)."""
from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, import_or_skip, skip_missing, skip_missing_shared_data

VIDEO_DIR = SHARED_DATA / "video"


def carphone():
    """(pristine, distorted) paths of the shared 176×144, 120-frame pair; skips without PyAV or the data."""
    import_or_skip("av")
    ref, dist = VIDEO_DIR / "carphone_pristine.mp4", VIDEO_DIR / "carphone_distorted.mp4"
    if not (ref.is_file() and dist.is_file()):
        skip_missing_shared_data(VIDEO_DIR, "shared video clips")
    return ref, dist


def smooth_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """count×H×W uint8 frames of blurred noise drifting over time (textured, not white noise)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((height + 16, width + 16 + 2 * count)).astype(np.float32)
    kernel = np.exp(-np.linspace(-2, 2, 9) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        base = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, base)
    base = (base - base.mean()) / base.std() * 45 + 128
    frames = np.stack([base[8:8 + height, 8 + 2 * i:8 + 2 * i + width] for i in range(count)])
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def add_noise(frames: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(frames + rng.normal(0, sigma, frames.shape)), 0, 255).astype(np.uint8)


def write_video(path: Path, luma: np.ndarray, fps=25, codec: str = "ffv1", pix_fmt: str = "yuv444p") -> Path:
    """Encode count×H×W luma frames (chroma flat 128) with PyAV; ffv1 is lossless, so Y planes decode exactly."""
    import av

    _, height, width = luma.shape
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for y in luma:
            if pix_fmt == "yuv444p":
                planes = np.stack([y, np.full_like(y, 128), np.full_like(y, 128)])
                frame = av.VideoFrame.from_ndarray(planes, format="yuv444p")
            else:
                frame = av.VideoFrame.from_ndarray(np.repeat(y[..., None], 3, axis=2), format="rgb24")
                frame = frame.reformat(format=pix_fmt)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def remux_faststart(src: Path, dst: Path) -> Path:
    """Copy the packets into an MP4 whose index (moov) comes first, as streamed files have it: cutting such a
    file keeps it openable, with frames missing from the cut on."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        for packet in inp.demux(in_stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)
    return dst


def ffmpeg_exe() -> str:
    imageio_ffmpeg = import_or_skip("imageio_ffmpeg")
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # wheel without its binary
        skip_missing(f"no ffmpeg binary: {exc}")


def ffmpeg_oracle(reference: Path, distorted: Path, workdir: Path) -> dict[str, np.ndarray]:
    """Per-frame values from ffmpeg: 'psnr_y' and 'ssim_y' of the psnr / ssim filters (frame metadata, 6
    decimals), 'vmaf_psnr_y' and 'vmaf_float_ssim' from libvmaf (features only: model= empty)."""
    exe = ffmpeg_exe()
    meta, vmaf = workdir / "meta.txt", workdir / "vmaf.json"
    graph = (f"[1:v]split[r1][r2];[0:v][r1]psnr[m];[m][r2]ssim,metadata=mode=print:file={meta.name}[out0];"
             f"[0:v][1:v]libvmaf=model=:feature=name=float_ssim|name=psnr:log_fmt=json:log_path={vmaf.name}"
             f":n_threads=1[out1]")
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(distorted), "-i", str(reference),
           "-filter_complex", graph, "-map", "[out0]", "-f", "null", "-", "-map", "[out1]", "-f", "null", "-"]
    done = subprocess.run(cmd, check=False, cwd=workdir, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        if "libvmaf" in done.stderr and "No such filter" in done.stderr:
            skip_missing("this ffmpeg has no libvmaf")
        raise RuntimeError(f"ffmpeg failed: {done.stderr[-2000:]}")
    blocks = meta.read_text().split("frame:")[1:]
    values = [dict(line.split("=", 1) for line in block.strip().splitlines()[1:]) for block in blocks]
    frames = json.loads(vmaf.read_text())["frames"]
    return {
        "psnr_y": np.array([float(v["lavfi.psnr.psnr.y"]) for v in values]),
        "ssim_y": np.array([float(v["lavfi.ssim.Y"]) for v in values]),
        "vmaf_psnr_y": np.array([f["metrics"]["psnr_y"] for f in frames]),
        "vmaf_float_ssim": np.array([f["metrics"]["float_ssim"] for f in frames]),
    }
