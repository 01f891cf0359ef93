"""Image files → tensors for the metrics, at the bit depth the file really has.

One reader for ``turboiqa score`` and ``turboiqa evaluate``. 8-bit images (and 1-, 2-, 4-bit ones, which Pillow
scales exactly onto 0..255) come back as uint8 with peak 255; 16-bit PNG and TIFF as float32 holding the 16-bit
integers (exact: float32 holds every integer below 2^24), peak 65535, because the metrics take uint8 or float.

Pillow opens every file (cheap: header only) and decodes what it holds faithfully. It cannot hold 16-bit colour
(it silently keeps the high byte), so 16-bit PNG and TIFF are decoded by imagecodecs (libpng, libtiff: every
compression, grey and colour alike). Alpha that is fully opaque is dropped; any transparency is refused, since a
score would then depend on the background chosen to composite onto. Whatever cannot be read faithfully (float or
signed samples, more than 16 bits, CMYK and other colour spaces, several frames (but a camera JPEG's previews,
MPO, are skipped for its frame 0), other formats) raises
:class:`ImageReadError` naming the file and the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Formats whose bit depth is known here; others (JPEG 2000, SGI, PSD, ...) may hide a depth Pillow clips.
SUPPORTED_FORMATS = {"PNG", "TIFF", "BMP", "JPEG", "MPO", "WEBP", "PPM", "GIF"}

# TIFF tags read to learn the true sample layout (Pillow's mode alone hides 16-bit colour).
_TIFF_BITS_PER_SAMPLE, _TIFF_PHOTOMETRIC, _TIFF_PLANAR_CONFIG, _TIFF_SAMPLE_FORMAT = 258, 262, 284, 339
_TIFF_GREY, _TIFF_RGB, _TIFF_SEPARATE_PLANES = 1, 2, 2

# Pillow modes that hold the file's samples as they are, and the mode each becomes before alpha is checked.
_EIGHT_BIT_MODES = {"1": "L", "L": "L", "LA": "LA", "P": "RGB", "PA": "RGBA", "RGB": "RGB", "RGBA": "RGBA"}


class ImageReadError(ValueError):
    """A file that cannot be read without changing its pixel values; the message names the file and why."""


@dataclass(frozen=True)
class DecodedImage:
    """``pixels``: 1×C×H×W (C = 1 grey, 3 colour); uint8 for 8-bit files, float32 with integer values for 16-bit."""

    pixels: torch.Tensor
    bits: int
    path: Path

    @property
    def peak(self) -> int:
        """The largest value the bit depth allows: the data_range a metric should be given."""
        return (1 << self.bits) - 1


def read_image(path) -> DecodedImage:
    path = Path(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            _check_single_frame(im, path)
            bits = _bits_per_sample(im, path)
            try:
                array = _decode_sixteen_bit(im, path) if bits == 16 else _decode_with_pillow(im, path)
            except ImageReadError:
                raise
            except (OSError, ValueError, RuntimeError) as exc:  # truncated/corrupt data: libpng, libtiff, Pillow
                raise ImageReadError(f"{path}: corrupt or truncated image data ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not an image file Pillow recognises") from exc
    return DecodedImage(_to_tensor(array), bits, path)


def read_pair(distorted_path, reference_path) -> tuple[DecodedImage, DecodedImage]:
    distorted, reference = read_image(distorted_path), read_image(reference_path)
    check_same_bit_depth(distorted, reference)
    return distorted, reference


def check_same_bit_depth(distorted: DecodedImage, reference: DecodedImage) -> None:
    """One peak must serve both images of a pair: 8-bit against 16-bit has no common data_range."""
    if distorted.bits != reference.bits:
        raise ImageReadError(f"bit depths differ: {distorted.path} is {distorted.bits}-bit, "
                             f"{reference.path} is {reference.bits}-bit")


def metric_input(image: DecodedImage, data_range: float | None = None) -> torch.Tensor:
    """The pixels a metric can take with ``data_range`` (default: the image's peak).

    Metrics insist on data_range=255 for uint8, so 8-bit pixels scored against another peak become float32."""
    if image.pixels.dtype == torch.uint8 and data_range is not None and data_range != 255:
        return image.pixels.to(torch.float32)
    return image.pixels


def _check_single_frame(im, path: Path) -> None:
    if im.format == "MPO":  # a camera JPEG whose extra frames are previews or stereo views: frame 0 is the photo
        return
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise ImageReadError(f"{path}: {frames} frames (animation or multi-page file); give one image per file")


def _bits_per_sample(im, path: Path) -> int:
    """8 (also for 1-, 2-, 4-bit files, which Pillow widens exactly) or 16; refuses anything else."""
    if im.format not in SUPPORTED_FORMATS:
        raise ImageReadError(f"{path}: {im.format or 'unknown'} files are not supported "
                             f"(supported: {', '.join(sorted(SUPPORTED_FORMATS))})")
    if im.format == "TIFF":
        return _tiff_bits(im, path)
    if im.format == "PNG":
        return 16 if _rawmode(im).endswith(";16B") else 8  # PNG stores 16-bit samples big-endian
    if im.format == "PPM" and (im.mode == "I" or _ppm_max_value(im) > 255):
        raise ImageReadError(f"{path}: PNM with more than 8 bits per sample; Pillow rescales or clips those "
                             "samples: convert it to a 16-bit PNG or TIFF")
    return 8  # BMP, JPEG, MPO, WebP, GIF: at most 8 bits per sample


def _tiff_bits(im, path: Path) -> int:
    tags = im.tag_v2
    bits = set(_as_tuple(tags.get(_TIFF_BITS_PER_SAMPLE, 1)))
    sample_format = set(_as_tuple(tags.get(_TIFF_SAMPLE_FORMAT, 1)))
    if sample_format != {1}:
        kind = "floating-point" if 3 in sample_format else "signed-integer"
        raise ImageReadError(f"{path}: {kind} samples; only unsigned 8- and 16-bit images are read")
    if len(bits) != 1 or max(bits) not in (1, 2, 4, 8, 16):
        raise ImageReadError(f"{path}: {sorted(bits)} bits per sample; only 8- and 16-bit images are read")
    depth = bits.pop()
    if depth == 16 and tags.get(_TIFF_PHOTOMETRIC) not in (_TIFF_GREY, _TIFF_RGB):
        raise ImageReadError(f"{path}: 16-bit TIFF with photometric interpretation "
                             f"{tags.get(_TIFF_PHOTOMETRIC)}; only grey (min-is-black) and RGB are read")
    return 16 if depth == 16 else 8


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _rawmode(im) -> str:
    args = im.tile[0].args if im.tile else ""
    return args if isinstance(args, str) else str(args[0])


def _ppm_max_value(im) -> int:
    args = im.tile[0].args if im.tile else ()
    return int(args[1]) if isinstance(args, tuple) and len(args) > 1 else 255


def _decode_with_pillow(im, path: Path) -> np.ndarray:
    """H×W or H×W×C uint8."""
    if im.mode not in _EIGHT_BIT_MODES:
        raise ImageReadError(f"{path}: Pillow mode {im.mode!r} ({im.format}) cannot be read faithfully; "
                             "only greyscale, RGB, RGBA and palette images are read")
    target = _EIGHT_BIT_MODES[im.mode]
    if "transparency" in im.info:  # a palette entry or colour key marks transparent pixels
        target = {"L": "LA", "RGB": "RGBA"}.get(target, target)
    converted = im if im.mode == target else im.convert(target)
    return _drop_opaque_alpha(np.asarray(converted), path, peak=255)


def _decode_sixteen_bit(im, path: Path) -> np.ndarray:
    """H×W or H×W×C uint16, decoded by libpng or libtiff (through imagecodecs)."""
    import imagecodecs

    data = path.read_bytes()
    if im.format == "PNG":
        array = imagecodecs.png_decode(data)
    else:
        array = imagecodecs.tiff_decode(data)
        if array.ndim == 3 and im.tag_v2.get(_TIFF_PLANAR_CONFIG) == _TIFF_SEPARATE_PLANES:
            array = np.moveaxis(array, 0, -1)  # a view: C×H×W as stored; _to_tensor copies once
    if array.dtype != np.uint16:
        raise ImageReadError(f"{path}: 16-bit {im.format} decoded as {array.dtype}; expected uint16")
    return _drop_opaque_alpha(array, path, peak=65535)


def _drop_opaque_alpha(array: np.ndarray, path: Path, peak: int) -> np.ndarray:
    """Grey+alpha (2 channels) or RGBA (4) → grey or RGB; alpha must be fully opaque (peak everywhere)."""
    if array.ndim == 2 or array.shape[2] in (1, 3):
        return array
    if array.shape[2] not in (2, 4):
        raise ImageReadError(f"{path}: {array.shape[2]} channels; only grey, RGB and their alpha forms are read")
    alpha = array[..., -1]
    if alpha.min() != peak:
        transparent = int(np.count_nonzero(alpha != peak))
        raise ImageReadError(f"{path}: alpha channel is not fully opaque ({transparent} pixel(s) below {peak}); "
                             "composite the image onto a background first, the score depends on it")
    return array[..., :-1]


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """H×W[×C] → 1×C×H×W: uint8 stays uint8, 16-bit becomes float32 (exact for integers below 2^24)."""
    planes = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    dtype = np.uint8 if array.dtype == np.uint8 else np.float32
    # One copy, transposed by NumPy: torch's uint8 permute().contiguous() took ~20× longer (bench/bench_eval.py).
    contiguous = np.ascontiguousarray(planes, dtype=dtype)
    if not contiguous.flags.writeable:  # grey 8-bit needs no transpose: a view of Pillow's read-only buffer
        contiguous = contiguous.copy()
    return torch.from_numpy(contiguous)[None]
