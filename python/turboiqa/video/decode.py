"""Decoding with PyAV: one video → indexed frames, a reference/distorted pair → frames in lockstep, and a
background thread that turns selected pairs into uint8 batches (in pinned host memory when scoring on CUDA), so
decoding the next batch overlaps scoring this one.

Frames are delivered as the metric needs them: the Y plane as stored (8-bit planar YUV, NV12 and grey are read
without conversion; anything else goes through swscale to grey), or RGB converted by swscale with the YUV matrix and
range of the stream's metadata (unspecified → BT.709 from 720 lines up, BT.601 below; limited range unless the pixel
format is a full-range yuvj one), either of which can be overridden.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .errors import VideoDecodeError, VideoMismatchError

# Formats whose plane 0 is the 8-bit luma, read as is.
LUMA_PLANE_FORMATS = {
    "gray", "nv12", "nv21", "yuv410p", "yuv411p", "yuv420p", "yuv422p", "yuv440p", "yuv444p",
    "yuvj411p", "yuvj420p", "yuvj422p", "yuvj440p", "yuvj444p",
}
# User-facing matrix names → swscale colourspace names; AVColorSpace codes → user-facing names.
COLORSPACES = {"bt709": "ITU709", "bt601": "ITU601", "smpte240m": "SMPTE240M", "bt2020": "BT2020", "fcc": "FCC"}
AVCOL_SPC = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
COLOR_RANGES = {"limited": "MPEG", "full": "JPEG"}
AVCOL_RANGE = {1: "limited", 2: "full"}


def require_av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("turboiqa.video needs PyAV: pip install 'turboiqa[video]' (or: pip install av)") from exc
    return av


@dataclass(frozen=True)
class StreamInfo:
    path: str
    width: int
    height: int
    fps: Fraction | None
    frames: int | None  # as declared by the container; None when it does not say
    pix_fmt: str


def open_video(path, what: str):
    """(container, first video stream), with codec frame threading on."""
    av = require_av()
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} video {path} does not exist")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"{what} video {path} cannot be opened (corrupt or truncated?): {exc}",
                               frame=0, path=str(path)) from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{what} file {path} has no video stream", frame=0, path=str(path))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def stream_info(path, stream) -> StreamInfo:
    cc = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate
    return StreamInfo(str(path), cc.width, cc.height, Fraction(rate) if rate else None, stream.frames or None,
                      cc.pix_fmt or "")


def probe(path, what: str = "video") -> StreamInfo:
    container, stream = open_video(path, what)
    try:
        return stream_info(path, stream)
    finally:
        container.close()


def decoded_frames(container, stream, what: str, path):
    """(index, frame) in presentation order; a decoding failure or a stream that ends before the frame count its
    header declares raises VideoDecodeError naming the first frame not delivered."""
    av = require_av()
    index = 0
    try:
        for frame in container.decode(stream):
            yield index, frame
            index += 1
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"{what} video {path}: decoding failed at frame {index} ({exc}); "
                               f"the {index} frame(s) before it were delivered", frame=index, path=str(path)) from exc
    declared = stream.frames
    if declared and index < declared:
        raise VideoDecodeError(f"{what} video {path} ended after {index} frames but its header declares {declared}: "
                               f"truncated or corrupt from frame {index} on", frame=index, path=str(path))


def luma_plane(frame) -> np.ndarray:
    """The 8-bit Y plane (H×W view of the frame's buffer, padding columns dropped)."""
    if frame.format.name not in LUMA_PLANE_FORMATS:
        frame = frame.reformat(format="gray")
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]


def yuv_matrix(frame, override: str | None) -> str:
    if override is not None:
        return override
    code = int(frame.colorspace)
    if code in AVCOL_SPC:
        return AVCOL_SPC[code]
    return "bt709" if frame.height >= 720 else "bt601"  # ffmpeg/players' guess for untagged streams


def yuv_range(frame, override: str | None) -> str:
    if override is not None:
        return override
    code = int(frame.color_range)
    if code in AVCOL_RANGE:
        return AVCOL_RANGE[code]
    return "full" if frame.format.name.startswith("yuvj") else "limited"


def rgb_array(frame, colorspace: str | None, color_range: str | None) -> np.ndarray:
    """H×W×3 uint8 RGB (full range) from the stream's YUV with the chosen matrix and range."""
    matrix = COLORSPACES[yuv_matrix(frame, colorspace)]
    rgb = frame.reformat(format="rgb24", src_colorspace=matrix, dst_colorspace=matrix,
                         src_color_range=COLOR_RANGES[yuv_range(frame, color_range)], dst_color_range="JPEG")
    return rgb.to_ndarray()


@dataclass(frozen=True)
class Selection:
    """Which reference frames are scored, and how the distorted stream lines up with the reference."""

    start: int = 0
    end: int | None = None  # exclusive
    every: int = 1
    dist_delay: int = 0  # distorted frame i + dist_delay is paired with reference frame i
    skip_through: int = -1  # frames up to this index are already scored (resume)

    def __post_init__(self):
        if self.start < 0:
            raise ValueError(f"start must be >= 0, got {self.start}")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end must be greater than start ({self.start}), got {self.end}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")

    def wants(self, index: int) -> bool:
        return index >= self.start and index > self.skip_through and (index - self.start) % self.every == 0

    def count(self, frames: int | None) -> int | None:
        """How many frames a full run scores when the reference has ``frames`` frames."""
        stop = frames if self.end is None else (self.end if frames is None else min(frames, self.end))
        if stop is None:
            return None
        first = max(self.start, -self.dist_delay)
        first += (-(first - self.start)) % self.every
        return max(0, (stop - first + self.every - 1) // self.every)


def check_pairable(ref: StreamInfo, dist: StreamInfo, scale: bool, ignore_fps: bool) -> None:
    if (ref.width, ref.height) != (dist.width, dist.height) and not scale:
        raise VideoMismatchError(
            f"frame sizes differ: reference {ref.width}×{ref.height}, distorted {dist.width}×{dist.height}; "
            f"pass scale=True (--scale) to resize the distorted frames to the reference size", frame=0)
    # Containers round rates differently (30000/1001 vs 2997/100): only a real difference counts.
    if ref.fps and dist.fps and abs(ref.fps - dist.fps) > ref.fps / 1000 and not ignore_fps:
        raise VideoMismatchError(
            f"frame rates differ: reference {float(ref.fps):.4g} fps, distorted {float(dist.fps):.4g} fps, so frame "
            f"pairs would drift apart; resample one of them, or pass ignore_fps=True (--ignore-fps) to pair frames "
            f"by index anyway", frame=0)


def frame_pairs(ref_frames, dist_frames, sel: Selection, shortest: bool, paths):
    """(index, ref_frame, dist_frame) in lockstep. Unequal lengths are an error (naming the frame) unless
    ``shortest`` or a ``dist_delay`` makes them expected; reaching ``sel.end`` stops without looking further."""
    ref_path, dist_path = paths
    expect_equal = not shortest and sel.dist_delay == 0
    for _ in range(max(0, sel.dist_delay)):
        if next(dist_frames, None) is None:
            raise VideoMismatchError(f"distorted video {dist_path} has no more than dist_delay={sel.dist_delay} frames",
                                     frame=0, path=str(dist_path))
    for _ in range(max(0, -sel.dist_delay)):
        if next(ref_frames, None) is None:
            raise VideoMismatchError(f"reference video {ref_path} has no more than {-sel.dist_delay} frames "
                                     f"(dist_delay={sel.dist_delay})", frame=0, path=str(ref_path))
    index = -1
    for index, ref_frame in ref_frames:
        if sel.end is not None and index >= sel.end:
            return
        dist = next(dist_frames, None)
        if dist is None:
            if expect_equal:
                raise VideoMismatchError(
                    f"distorted video {dist_path} ended at frame {index} while the reference continues (truncated, or "
                    f"the videos differ in length; shortest=True / --shortest stops at the shorter one)",
                    frame=index, path=str(dist_path))
            return
        yield index, ref_frame, dist[1]
    if expect_equal and (sel.end is None or index + 1 < sel.end) and next(dist_frames, None) is not None:
        raise VideoMismatchError(
            f"reference video {ref_path} ended at frame {index + 1} while the distorted video continues (truncated, "
            f"or the videos differ in length; shortest=True / --shortest stops at the shorter one)",
            frame=index + 1, path=str(ref_path))


@dataclass
class FrameBatch:
    frames: list[int]
    pts: list[float | None]
    ref: dict[str, torch.Tensor]  # plane ('y' | 'rgb') → B×C×H×W uint8
    dist: dict[str, torch.Tensor]


class BatchReader:
    """Decodes a reference/distorted pair in a background thread into FrameBatch objects.

    Opening and the size/frame-rate checks happen in the constructor (errors surface at once, in the caller's
    thread); iteration yields batches and then re-raises a decoding error after every batch decoded before it.
    ``decode_seconds`` is the producer's busy time (decoding, conversion, batching), not its waits on the queue.
    """

    def __init__(self, reference, distorted, planes, batch_size: int = 8, selection: Selection = Selection(),
                 scale: bool = False, shortest: bool = False, ignore_fps: bool = False,
                 colorspace: str | None = None, color_range: str | None = None, pin_memory: bool = False,
                 prefetch: int = 2, interpolation: str = "BICUBIC"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if colorspace is not None and colorspace not in COLORSPACES:
            raise ValueError(f"colorspace must be one of {sorted(COLORSPACES)} or None, got {colorspace!r}")
        if color_range is not None and color_range not in COLOR_RANGES:
            raise ValueError(f"color_range must be one of {sorted(COLOR_RANGES)} or None, got {color_range!r}")
        self.paths = (str(reference), str(distorted))
        self.planes = set(planes)
        self.batch_size, self.selection, self.scale, self.shortest = batch_size, selection, scale, shortest
        self.colorspace, self.color_range, self.pin_memory = colorspace, color_range, pin_memory
        self.interpolation = interpolation
        self.decode_seconds = 0.0
        self._containers = []
        try:
            ref_container, ref_stream = open_video(reference, "reference")
            self._containers.append(ref_container)
            dist_container, dist_stream = open_video(distorted, "distorted")
            self._containers.append(dist_container)
            self.ref_info = stream_info(reference, ref_stream)
            self.dist_info = stream_info(distorted, dist_stream)
            check_pairable(self.ref_info, self.dist_info, scale, ignore_fps)
        except BaseException:
            self.close()
            raise
        self._streams = (ref_stream, dist_stream)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="turboiqa-video-decode", daemon=True)
        self._started = False

    # -- producer ---------------------------------------------------------------------------------------------
    def _convert(self, index, ref_frame, dist_frame):
        if (dist_frame.width, dist_frame.height) != (ref_frame.width, ref_frame.height):
            if not self.scale:
                raise VideoMismatchError(
                    f"frame {index}: distorted frame is {dist_frame.width}×{dist_frame.height}, reference "
                    f"{ref_frame.width}×{ref_frame.height} (the size changed mid-stream); pass scale=True (--scale)",
                    frame=index)
            dist_frame = dist_frame.reformat(width=ref_frame.width, height=ref_frame.height,
                                             interpolation=self.interpolation)
        planes = {}
        if "y" in self.planes:
            planes["y"] = (luma_plane(ref_frame), luma_plane(dist_frame))
        if "rgb" in self.planes:
            planes["rgb"] = (rgb_array(ref_frame, self.colorspace, self.color_range),
                             rgb_array(dist_frame, self.colorspace, self.color_range))
        return index, ref_frame.time, planes

    def _collate(self, items) -> FrameBatch:
        ref, dist = {}, {}
        for plane in items[0][2]:
            for side, target in ((0, ref), (1, dist)):
                arrays = [item[2][plane][side] for item in items]
                h, w = arrays[0].shape[:2]
                channels = 1 if plane == "y" else 3
                # Pinned pages come from torch's caching host allocator, which does not hand a block out again
                # until the non_blocking copy that reads it has completed, so no buffer is overwritten in flight.
                out = torch.empty((len(arrays), channels, h, w), dtype=torch.uint8, pin_memory=self.pin_memory)
                view = out.numpy()
                for k, a in enumerate(arrays):
                    if channels == 1:
                        view[k, 0] = a
                    else:
                        view[k] = a.transpose(2, 0, 1)
                target[plane] = out
        return FrameBatch([i[0] for i in items], [i[1] for i in items], ref, dist)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self):
        (ref_container, dist_container), (ref_stream, dist_stream) = self._containers, self._streams
        ref_frames = decoded_frames(ref_container, ref_stream, "reference", self.paths[0])
        dist_frames = decoded_frames(dist_container, dist_stream, "distorted", self.paths[1])
        self._produce_from(frame_pairs(ref_frames, dist_frames, self.selection, self.shortest, self.paths))

    def _produce_from(self, pairs, restart: tuple = ()):
        """The producer's loop over ``pairs`` ((index, ref_frame, dist_frame)): the selected frames converted and
        queued in batches of ``batch_size``, then the end. An exception is queued after the batch of the frames
        before it, which is dropped when the exception is one of ``restart`` (the caller decodes them again)."""
        pending = []
        busy_since = time.perf_counter()
        try:
            for index, ref_frame, dist_frame in pairs:
                if self._stop.is_set():
                    return
                if not self.selection.wants(index):
                    continue
                pending.append(self._convert(index, ref_frame, dist_frame))
                if len(pending) == self.batch_size:
                    batch, pending = self._collate(pending), []
                    self.decode_seconds += time.perf_counter() - busy_since
                    if not self._put(("batch", batch)):
                        return
                    busy_since = time.perf_counter()
            if pending:
                self._put(("batch", self._collate(pending)))
            self.decode_seconds += time.perf_counter() - busy_since
            self._put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            if pending and not isinstance(exc, restart):
                self._put(("batch", self._collate(pending)))
            self.decode_seconds += time.perf_counter() - busy_since
            self._put(("error", exc))

    # -- consumer ---------------------------------------------------------------------------------------------
    def __iter__(self):
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            kind, payload = self._queue.get()
            if kind == "batch":
                yield payload
            elif kind == "end":
                return
            else:
                raise payload

    def close(self) -> None:
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
            if self._started:
                self._thread.join()
        for container in self._containers:
            container.close()
        self._containers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
