"""Decoding with PyAV: one video → indexed frames, a reference/distorted pair → frames in lockstep, and a
background thread that turns selected pairs into batches (in pinned host memory when scoring on CUDA), so
decoding the next batch overlaps scoring this one.

Frames are delivered as the metric needs them: the Y plane as stored (8-bit planar YUV, NV12 and grey are read
without conversion; anything else goes through swscale to grey), or RGB converted by swscale with the YUV matrix and
range of the stream's metadata (unspecified → BT.709 from 720 lines up, BT.601 below; limited range unless the pixel
format is a full-range yuvj one), either of which can be overridden. These 8-bit batches are uint8.

Sources of more than 8 bits (HDR10's yuv420p10le, 12-bit, p010, ...) are never truncated: when either video of a
pair has more than 8 bits, the pair is delivered at the higher depth D (an 8-bit partner is shifted up by D − 8 bits,
as an 8→10-bit conversion does): the Y plane as float32 code values 0 … 2^D − 1 (data_range 2^D − 1), and RGB as
float32 in [0, 1] computed here from the Y, Cb, Cr planes (limited range: Y' = (Y/2^(D−8) − 16)/219,
C = (C/2^(D−8) − 128)/224; full range: Y/(2^D − 1), (C − 2^(D−1))/(2^D − 1); chroma upsampled bilinearly with
centred samples, as ColorVideoVDP does; the matrix's Kr, Kb (BT.2020 non-constant luminance for HDR10) from the
stream or the override; clipped to [0, 1]). The values stay display-encoded (PQ or HLG codes): the display model
of the metric (cvvdp, pu21_*) turns them into light. :attr:`FrameBatch.data_range` holds each plane's peak.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
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
# (Kr, Kb) of each YUV matrix (BT.2020: the non-constant-luminance one of HDR10).
KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "smpte240m": (0.212, 0.087),
         "bt2020": (0.2627, 0.0593), "fcc": (0.30, 0.11)}
# AVColorTransferCharacteristic codes → the transfer a display model must have: PQ (SMPTE ST 2084), HLG
# (ARIB STD-B67); the SDR ones (BT.709, sRGB, BT.601, gamma 2.2, BT.2020 10/12-bit) → 'sdr'.
AVCOL_TRC = {16: "pq", 18: "hlg", 1: "sdr", 4: "sdr", 5: "sdr", 6: "sdr", 7: "sdr", 13: "sdr", 14: "sdr", 15: "sdr"}


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
    bits: int = 8  # bits per sample of the pixel format
    transfer: str | None = None  # 'pq' | 'hlg' | 'sdr' from the stream's colour transfer tag; None: untagged


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
                      cc.pix_fmt or "", format_bits(cc.pix_fmt), AVCOL_TRC.get(int(getattr(cc, "color_trc", 0) or 0)))


def format_bits(pix_fmt) -> int:
    """Bits per sample of a pixel format name (8 when unknown)."""
    if not pix_fmt:
        return 8
    try:
        return max(8, require_av().VideoFormat(pix_fmt).components[0].bits)
    except Exception:  # noqa: BLE001 - an unknown name: the decoder will say more
        return 8


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


def frame_bits(frame) -> int:
    return max(8, frame.format.components[0].bits)


def _planar(frame, bits: int):
    """``frame`` in a planar layout whose planes hold the samples as they are (low bits of little-endian uint16
    above 8 bits): planar YUV and grey as decoded, anything else (p010, NV12, RGB, ...) through swscale into 4:4:4
    YUV of the same depth."""
    name = frame.format.name
    suffix = "p" if bits == 8 else f"p{bits}le"
    if name.startswith(("yuv4", "yuvj4")) and name.endswith(suffix) and len(frame.planes) == 3:
        return frame
    if name == ("gray" if bits == 8 else f"gray{bits}le"):
        return frame
    target = "yuv444p" if bits == 8 else f"yuv444p{bits if bits in (9, 10, 12, 14, 16) else 16}le"
    return frame.reformat(format=target)


def _plane(frame, k: int, bits: int) -> np.ndarray:
    plane = frame.planes[k]
    dtype = np.dtype(np.uint8) if bits == 8 else np.dtype("<u2")
    width = getattr(plane, "width", frame.width)
    height = getattr(plane, "height", frame.height)
    return np.frombuffer(plane, dtype).reshape(height, plane.line_size // dtype.itemsize)[:, :width]


def luma_plane_deep(frame, bits: int) -> np.ndarray:
    """The Y plane at ``bits`` (≥ the frame's depth) as H×W uint16 code values: a shallower frame is shifted up."""
    own = frame_bits(frame)
    if own > bits:
        raise VideoDecodeError(f"a {own}-bit frame in a stream of {bits} bits")
    y = (luma_plane(frame) if own == 8 else _plane(_planar(frame, own), 0, own)).astype(np.uint16)
    return y << (bits - own) if bits > own else y


def _chroma_to_luma_size(cb: np.ndarray, cr: np.ndarray, h: int, w: int):
    """Cb, Cr upsampled to H×W: 2× (4:2:0, 4:2:2) by linear interpolation with centred samples — output 2i weighs
    c[i − 1] and c[i] by 1/4 and 3/4, output 2i + 1 weighs c[i] and c[i + 1] by 3/4 and 1/4, edges replicated:
    torch's bilinear ``interpolate(scale_factor=2, align_corners=False)``, ColorVideoVDP's chroma upsampling; the
    extra row/column of an odd size is cropped. Other ratios (4:1:1, 4:1:0) are resampled to H×W bilinearly."""
    ch, cw = cb.shape
    if (ch, cw) == (h, w):
        return cb, cr
    uv = torch.from_numpy(np.stack([cb, cr]))[None]
    fy = 2 if 2 * ch in (h, h + 1) else 1 if ch == h else 0
    fx = 2 if 2 * cw in (w, w + 1) else 1 if cw == w else 0
    if fy and fx:
        uv = torch.nn.functional.interpolate(uv, scale_factor=(fy, fx), mode="bilinear", align_corners=False)
        uv = uv[..., :h, :w]
    else:
        uv = torch.nn.functional.interpolate(uv, size=(h, w), mode="bilinear", align_corners=False)
    out = uv[0].numpy()
    return out[0], out[1]


def rgb_float(frame, colorspace: str | None, color_range: str | None) -> np.ndarray:
    """3×H×W float32 RGB in [0, 1] (display-encoded) from the frame's Y, Cb, Cr at its own depth (module doc)."""
    bits = frame_bits(frame)
    full = yuv_range(frame, color_range) == "full"
    kr, kb = KR_KB[yuv_matrix(frame, colorspace)]
    planar = _planar(frame, bits)
    planes = [_plane(planar, k, bits) for k in range(len(planar.planes))]
    if full:
        top = float((1 << bits) - 1)
        y_scale, y_offset = 1 / top, 0.0
        c_scale, c_offset = 1 / top, -(1 << (bits - 1)) / top
    else:
        unit = float(1 << (bits - 8))
        y_scale, y_offset = 1 / (219 * unit), -16 / 219
        c_scale, c_offset = 1 / (224 * unit), -128 / 224
    y = planes[0].astype(np.float32)
    y *= np.float32(y_scale)
    y += np.float32(y_offset)
    h, w = y.shape
    rgb = np.empty((3, h, w), np.float32)
    if len(planes) < 3:  # grey: no colour difference
        rgb[:] = y
        return np.clip(rgb, 0, 1, out=rgb)
    cb, cr = _chroma_to_luma_size(*(p.astype(np.float32) * np.float32(c_scale) + np.float32(c_offset)
                                    for p in planes[1:3]), h, w)
    kg = 1 - kr - kb
    # R = Y' + 2(1 − Kr)·Cr, B = Y' + 2(1 − Kb)·Cb, G = (Y' − Kr·R − Kb·B)/Kg
    np.multiply(cr, np.float32(2 * (1 - kr)), out=rgb[0])
    rgb[0] += y
    np.multiply(cb, np.float32(2 * (1 - kb)), out=rgb[2])
    rgb[2] += y
    np.multiply(cb, np.float32(-2 * (1 - kb) * kb / kg), out=rgb[1])
    rgb[1] += y
    rgb[1] -= np.float32(2 * (1 - kr) * kr / kg) * cr
    return np.clip(rgb, 0, 1, out=rgb)


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
    ref: dict[str, torch.Tensor]  # plane ('y' | 'rgb') → B×C×H×W: uint8, or float32 for deeper sources
    dist: dict[str, torch.Tensor]
    data_range: dict[str, float] = field(default_factory=dict)  # plane → its peak (255 for uint8)


class BatchReader:
    """Decodes a distorted/reference pair (``distorted`` first, as :func:`turboiqa.video.score`; keywords work too)
    in a background thread into FrameBatch objects.

    Opening and the size/frame-rate checks happen in the constructor (errors surface at once, in the caller's
    thread); iteration yields batches and then re-raises a decoding error after every batch decoded before it.
    ``decode_seconds`` is the producer's busy time (decoding, conversion, batching), not its waits on the queue.
    """

    def __init__(self, distorted, reference, planes, batch_size: int = 8, selection: Selection = Selection(),
                 scale: bool = False, shortest: bool = False, ignore_fps: bool = False,
                 colorspace: str | None = None, color_range: str | None = None, pin_memory: bool = False,
                 prefetch: int = 2, interpolation: str = "BICUBIC"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if colorspace is not None and colorspace not in COLORSPACES:
            raise ValueError(f"colorspace must be one of {sorted(COLORSPACES)} or None, got {colorspace!r}")
        if color_range is not None and color_range not in COLOR_RANGES:
            raise ValueError(f"color_range must be one of {sorted(COLOR_RANGES)} or None, got {color_range!r}")
        self.paths = (str(reference), str(distorted))  # internal order: reference, distorted (as _streams)
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
            self.bits = max(self.ref_info.bits, self.dist_info.bits)  # > 8: delivered at this depth, as floats
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
        deep = self.bits > 8
        if max(frame_bits(ref_frame), frame_bits(dist_frame)) > self.bits:
            raise VideoDecodeError(f"frame {index}: {max(frame_bits(ref_frame), frame_bits(dist_frame))}-bit "
                                   f"samples in a stream whose header declares {self.bits} bits", frame=index)
        if "y" in self.planes:
            planes["y"] = ((luma_plane_deep(ref_frame, self.bits), luma_plane_deep(dist_frame, self.bits)) if deep
                           else (luma_plane(ref_frame), luma_plane(dist_frame)))
        if "rgb" in self.planes:
            convert = rgb_float if deep else rgb_array
            planes["rgb"] = (convert(ref_frame, self.colorspace, self.color_range),
                             convert(dist_frame, self.colorspace, self.color_range))
        return index, ref_frame.time, planes

    def _collate(self, items) -> FrameBatch:
        ref, dist, data_range = {}, {}, {}
        for plane in items[0][2]:
            for side, target in ((0, ref), (1, dist)):
                arrays = [item[2][plane][side] for item in items]
                deep = arrays[0].dtype != np.uint8  # uint16 Y codes, or float32 C×H×W RGB
                h, w = arrays[0].shape[-2:] if deep and plane == "rgb" else arrays[0].shape[:2]
                channels = 1 if plane == "y" else 3
                # Pinned pages come from torch's caching host allocator, which does not hand a block out again
                # until the non_blocking copy that reads it has completed, so no buffer is overwritten in flight.
                out = torch.empty((len(arrays), channels, h, w), dtype=torch.float32 if deep else torch.uint8,
                                  pin_memory=self.pin_memory)
                view = out.numpy()
                for k, a in enumerate(arrays):
                    if channels == 1:
                        view[k, 0] = a
                    else:
                        view[k] = a if deep else a.transpose(2, 0, 1)
                target[plane] = out
                if not deep:
                    data_range[plane] = 255.0
                else:
                    data_range[plane] = 1.0 if plane == "rgb" else float((1 << self.bits) - 1)
        return FrameBatch([i[0] for i in items], [i[1] for i in items], ref, dist, data_range)

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
