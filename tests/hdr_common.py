"""HDR files written for the tests (and the README's HDR examples): 16-bit PQ PNG/TIFF, OpenEXR in cd/m², and 10-bit
PQ video (HDR10 tags) through PyAV."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from conftest import import_or_skip


def pq_codes(lum: np.ndarray) -> np.ndarray:
    """Absolute luminance → 16-bit PQ code values (what an HDR10 still holds)."""
    from turboiqa import display

    v = display.pq_inverse_eotf(torch.from_numpy(lum.astype(np.float64))).numpy()
    return np.rint(v * 65535).astype(np.uint16)


def hdr_luminance(h: int = 40, w: int = 56, seed: int = 0):
    """(reference, distorted) H×W×3 float32 luminance in cd/m² (0.05 … 1200, ±15 % distortion)."""
    rng = np.random.default_rng(seed)
    ref = np.exp(rng.uniform(np.log(0.05), np.log(1200), (h, w, 3))).astype(np.float32)
    return ref, (ref * rng.uniform(0.85, 1.15, ref.shape)).astype(np.float32)


def write_png16(path, array):
    imagecodecs = import_or_skip("imagecodecs")
    Path(path).write_bytes(imagecodecs.png_encode(array))
    return path


def write_tiff16(path, array):
    tifffile = import_or_skip("tifffile")
    tifffile.imwrite(path, array, photometric="rgb")
    return path


def write_exr(path, rgb):
    OpenEXR = import_or_skip("OpenEXR")
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {c: np.ascontiguousarray(rgb[..., k]) for k, c in enumerate("RGB")}).write(str(path))
    return path


def write_yuv10(path, y, u, v, *, fps=25, codec="ffv1", pix_fmt="yuv444p10le", trc=16, matrix=9, options=None):
    """Encode 10-bit planes (count×H×W each, chroma at the format's size) with the given colour tags (AVCOL codes:
    transfer 16 = PQ, 18 = HLG; matrix 9 = BT.2020 NCL; limited range)."""
    av = import_or_skip("av")
    n, h, w = y.shape
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps), options=options or {})
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        cc = stream.codec_context
        cc.color_trc, cc.colorspace, cc.color_primaries, cc.color_range = trc, matrix, 9, 1
        for i in range(n):
            frame = av.VideoFrame(w, h, pix_fmt)
            for k, a in enumerate((y[i], u[i], v[i])):
                plane = frame.planes[k]
                buf = np.zeros((plane.height, plane.line_size // 2), np.uint16)
                buf[:, : a.shape[1]] = a
                plane.update(buf.tobytes())
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def hdr10_planes(n: int = 8, h: int = 32, w: int = 48, seed: int = 3):
    """(reference, distorted) 10-bit 4:4:4 Y, Cb, Cr planes: a drifting pattern, and it with code noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    y = np.stack([(64 + (xx * 17 + yy * 5 + 9 * i) % 877) for i in range(n)]).astype(np.uint16)
    u = np.stack([(300 + (xx * 7 + yy * 11 + i) % 424) for i in range(n)]).astype(np.uint16)
    v = np.stack([(300 + (xx * 3 + yy * 13 + 2 * i) % 424) for i in range(n)]).astype(np.uint16)

    def jitter(a, s):
        return np.clip(a.astype(int) + rng.integers(-s, s + 1, a.shape), 64, 940).astype(np.uint16)

    return (y, u, v), (jitter(y, 24), jitter(u, 12), jitter(v, 12))


def make_hdr_files(folder: Path) -> None:
    """The files of the README's HDR examples: ref_pq.png / dist_pq.png (16-bit PQ), ref.exr / dist.exr (cd/m²),
    hdr10_ref.mkv / hdr10_dist.mkv (10-bit PQ, BT.2020, lossless FFV1)."""
    folder = Path(folder)
    ref, dist = hdr_luminance()
    write_png16(folder / "ref_pq.png", pq_codes(ref))
    write_png16(folder / "dist_pq.png", pq_codes(dist))
    write_exr(folder / "ref.exr", ref)
    write_exr(folder / "dist.exr", dist)
    ref_planes, dist_planes = hdr10_planes()
    write_yuv10(folder / "hdr10_ref.mkv", *ref_planes)
    write_yuv10(folder / "hdr10_dist.mkv", *dist_planes)
