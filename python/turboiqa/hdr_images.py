"""HDR image files → linear float32 tensors, without clipping or quantising what the file holds.

- OpenEXR (``.exr``) through the Academy Software Foundation's own ``OpenEXR`` bindings: half and float channels
  come back exactly (half → float32 is exact); R, G, B (colour) or Y (grey) channels, fully opaque alpha dropped.
  RGB whose header names its primaries (the ``chromaticities`` attribute, or a linear ``colorInteropID``) is
  converted to the target primaries when they differ: the display's colour space for ``turboiqa score --display``,
  else linear Rec. 709/sRGB; files already in the target primaries (or naming none) come back untouched.
- Radiance RGBE (``.hdr``, ``.pic``) through OpenCV's decoder (``opencv-python-headless``), the maintained reader
  of that format in Python (Pillow and imageio's built-in plugins cannot read it; OpenCV's pip wheels cannot read
  EXR, hence two libraries).

Both are in the ``hdr`` extra: ``pip install "turboiqa[hdr]"``. The values are what the file stores: scene- or
display-referred linear light in the file's own units (often relative, sometimes cd/m²); turning them into absolute
luminance is the display model's job. Files the metrics could only misread raise :class:`HdrReadError` naming the
file and why: NaN or infinite samples, negative samples (out-of-gamut colour a metric would silently clip),
partial transparency, several parts or layers, channels other than RGB(A)/Y(A), a white point other than D65,
colours outside the Rec. 709 gamut.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .images import ImageReadError

HDR_SUFFIXES = {".exr": "exr", ".hdr": "radiance", ".pic": "radiance"}


class HdrReadError(ImageReadError):
    """An HDR file that cannot be read without changing its values; the message names the file and why."""


@dataclass(frozen=True)
class HdrImage:
    """``pixels``: 1×C×H×W float32 linear values (C = 1 grey, 3 RGB), as stored in the file."""

    pixels: torch.Tensor
    path: Path
    format: str  # 'exr' | 'radiance'
    primaries: tuple | None = None  # the file's declared (red, green, blue, white) x, y; None: not declared

    @property
    def peak(self) -> float:
        """The largest stored value (HDR files have no fixed peak)."""
        return float(self.pixels.max())


def is_hdr_file(path) -> bool:
    return Path(path).suffix.lower() in HDR_SUFFIXES


def read_hdr_image(path, rgb_to_xyz=None) -> HdrImage:
    """``rgb_to_xyz``: the 3×3 RGB → XYZ matrix (rows X, Y, Z) of the colour space the pixels are wanted in (a
    display's :meth:`~turboiqa.display.DisplayPhotometry.rgb_to_xyz`); None: linear Rec. 709."""
    path = Path(path)
    kind = HDR_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise HdrReadError(f"{path}: not an HDR image file (expected one of {sorted(HDR_SUFFIXES)})")
    if not path.is_file():
        raise HdrReadError(f"{path}: no such file")
    array, primaries = _read_exr(path, rgb_to_xyz) if kind == "exr" else (_read_radiance(path), None)
    _check_values(array, path)
    pixels = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
    return HdrImage(pixels=pixels, path=path, format=kind, primaries=primaries)


def _missing(package: str, path: Path) -> HdrReadError:
    return HdrReadError(f"{path}: reading it needs the '{package}' package: pip install \"turboiqa[hdr]\"")


def _read_exr(path: Path, rgb_to_xyz) -> tuple[np.ndarray, tuple | None]:
    try:
        import OpenEXR
    except ImportError:
        raise _missing("OpenEXR", path) from None
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            if len(exr.parts) != 1:
                raise HdrReadError(f"{path}: {len(exr.parts)} parts; only single-part EXR files are read")
            channels = {name: np.asarray(c.pixels) for name, c in exr.channels().items()}
            primaries = _exr_primaries(exr.header(), OpenEXR)
    except HdrReadError:
        raise
    except Exception as error:  # the bindings raise RuntimeError/OSError with the library's message
        raise HdrReadError(f"{path}: not a readable OpenEXR file ({error})") from None
    names = set(channels)
    if names in ({"R", "G", "B"}, {"R", "G", "B", "A"}):
        planes = [channels[c] for c in "RGB"]
        if primaries is not None:
            planes = _to_target(planes, primaries, rgb_to_xyz, path)
    elif names in ({"Y"}, {"Y", "A"}):
        planes = [channels["Y"]]
    else:
        raise HdrReadError(f"{path}: channels {sorted(names)}; expected R, G, B or Y (with an optional opaque A)")
    if "A" in names and not np.all(channels["A"] == 1):
        raise HdrReadError(f"{path}: the alpha channel has transparent pixels; the score would depend on the "
                           "background they are composited onto")
    return np.stack([p.astype(np.float32) for p in planes], axis=-1), primaries


# (red x, y, green x, y, blue x, y, white x, y): the EXR ``chromaticities`` layout; Rec. 709 = sRGB primaries, D65
REC709_PRIMARIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
# Two RGB → XYZ matrices this close are one colour space (cvvdp's tables round the standards' matrices differently)
SAME_SPACE_ATOL = 1e-3


def _exr_primaries(header: dict, openexr) -> tuple | None:
    """The file's primaries and white: the ``chromaticities`` attribute, else those of a linear ``colorInteropID``
    (None: neither, or an ID with no primaries such as 'data', taken as Rec. 709 like every EXR reader does)."""
    if header.get("chromaticities") is not None:
        return tuple(float(v) for v in header["chromaticities"])
    interop = header.get("colorInteropID")
    if interop:
        found = openexr.colorInteropIDToChromaticities(str(interop))
        return None if found is None else tuple(float(v) for v in found)
    return None


def _rgb_to_xyz(primaries) -> np.ndarray:
    """3×3 RGB → XYZ matrix of linear RGB with these primaries (white at Y = 1)."""
    xy = np.asarray(primaries, dtype=np.float64).reshape(4, 2)
    xyz = np.stack([xy[:, 0] / xy[:, 1], np.ones(4), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]], axis=1)  # per row
    gains = np.linalg.solve(xyz[:3].T, xyz[3])
    return xyz[:3].T * gains


def _white_xy(rgb_to_xyz: np.ndarray) -> np.ndarray:
    white = rgb_to_xyz.sum(1)
    return white[:2] / white.sum()


def _to_target(planes, primaries, rgb_to_xyz, path: Path):
    """Linear RGB in the file's primaries → linear RGB of the target matrix (Rec. 709 when None), in float64; the
    planes untouched when both name one colour space. The whites must agree (no chromatic adaptation is guessed)."""
    source = _rgb_to_xyz(primaries)
    target = _rgb_to_xyz(REC709_PRIMARIES) if rgb_to_xyz is None else np.asarray(rgb_to_xyz, dtype=np.float64)
    if np.allclose(source, target, atol=SAME_SPACE_ATOL):
        return planes
    if not np.allclose(_white_xy(source), _white_xy(target), atol=SAME_SPACE_ATOL):
        want = _white_xy(target)
        raise HdrReadError(f"{path}: white point (x, y) = ({primaries[6]:.4f}, {primaries[7]:.4f}), the target "
                           f"colour space's is ({want[0]:.4f}, {want[1]:.4f}); convert the file to that white first")
    matrix = np.linalg.solve(target, source)
    rgb = np.stack([p.astype(np.float64) for p in planes], axis=-1) @ matrix.T
    return [rgb[..., k] for k in range(3)]


def _read_radiance(path: Path) -> np.ndarray:
    try:
        import cv2
    except ImportError:
        raise _missing("opencv-python-headless", path) from None
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.float32 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise HdrReadError(f"{path}: not a readable Radiance RGBE file")
    return bgr[..., ::-1]  # OpenCV's BGR order → RGB


def _check_values(array: np.ndarray, path: Path) -> None:
    if not np.isfinite(array).all():
        raise HdrReadError(f"{path}: NaN or infinite samples")
    if (array < 0).any():
        raise HdrReadError(f"{path}: negative samples (smallest {float(array.min()):g}, in the target primaries): "
                           "out-of-gamut colour that a metric would clip; score it on a display of a wider colour "
                           "space (e.g. --display-param colorspace=BT.2020-linear), or clip it explicitly first")


# ------------------------------------------------------------------------------------------------------------------
# Scoring HDR files (``turboiqa score --display``)
#
# Two kinds of HDR input, told apart by the file itself:
#
# - linear light (.exr, .hdr, .pic): the values are absolute RGB (or Y) in cd/m², as ColorVideoVDP takes them. They
#   are handed to the metrics unchanged and only a display whose EOTF is 'linear' can interpret them ('standard_hdr_
#   linear', or any display with ``eotf=linear``); the display's ``exposure`` scales files stored in relative units.
#   Only the metrics that take a display model (cvvdp, pu21_psnr, pu21_ssim: :func:`display_metrics`) can score
#   them; an SDR metric has no peak to measure them against and is refused (:class:`HdrInputError`).
# - display-encoded code values (16-bit PNG/TIFF, read exactly by :func:`turboiqa.images.read_image`, and every
#   8-bit file): e.g. PQ or HLG codes of HDR10 stills. The display's EOTF turns them into light (data_range = the
#   file's peak, 65535); SDR metrics score the code values themselves, as without ``--display``.
#
# Readers, and why: OpenEXR's own bindings for .exr (every compression, half exactly; OpenCV's wheels disable their
# EXR codec unless an environment variable is set before import, imageio needs a FreeImage download); OpenCV for
# Radiance (the maintained decoder; Pillow and imageio's plugins have none); 16-bit PNG/TIFF through imagecodecs
# (libpng/libtiff, already the score reader's: Pillow keeps only the high byte of 16-bit colour, imageio reads
# PNG through Pillow, and tifffile's compressed TIFF goes through the same imagecodecs codecs anyway).


class HdrInputError(ValueError):
    """HDR input that the chosen metric or display cannot interpret; the message names the file, the metric or
    display and what to do instead."""


def display_metrics(metric_functions: dict) -> set[str]:
    """The names (of a ``{name: function}`` dict such as ``turboiqa.METRICS``) whose function takes ``display=``:
    the metrics that read absolute light through a display model."""
    import inspect

    names = set()
    for name, fn in metric_functions.items():
        try:
            if "display" in inspect.signature(fn).parameters:
                names.add(name)
        except (TypeError, ValueError):
            continue
    return names


def check_linear_pair(distorted, reference, metrics, hdr_metrics, display) -> None:
    """Refuse (:class:`HdrInputError`) a pair (distorted first) with a linear-light file that ``metrics`` or ``display`` cannot
    interpret: a display-encoded partner, a metric outside ``hdr_metrics``, no display or one without a linear EOTF.
    ``display``: None or a :class:`turboiqa.display.Display`."""
    ref_hdr, dist_hdr = is_hdr_file(reference), is_hdr_file(distorted)
    if not (ref_hdr or dist_hdr):
        return
    hdr_path = Path(reference if ref_hdr else distorted)
    if ref_hdr != dist_hdr:
        other = distorted if ref_hdr else reference
        raise HdrInputError(f"{hdr_path} holds linear light but its partner {other} holds display-encoded pixels; "
                            "give both images in one form (both .exr/.hdr, or both PNG/TIFF)")
    sdr = [m for m in metrics if m not in hdr_metrics]
    if sdr:
        raise HdrInputError(f"{hdr_path}: a linear-light HDR file cannot be scored by {', '.join(sdr)} (metrics of "
                            f"display-encoded pixels, no peak for linear light); use {', '.join(sorted(hdr_metrics))}, "
                            "or encode the file (e.g. PQ in a 16-bit PNG) first")
    if display is None:
        raise HdrInputError(f"{hdr_path}: a linear-light HDR file needs a display model with a linear EOTF: "
                            "--display standard_hdr_linear (absolute cd/m²), or --display NAME --display-param "
                            "eotf=linear")
    if not display.photometry.is_linear:
        raise HdrInputError(f"{hdr_path}: a linear-light HDR file needs a display with a linear EOTF, display "
                            f"{display.name!r} has {display.photometry.transfer!r}: use --display "
                            "standard_hdr_linear or add --display-param eotf=linear")


def read_hdr_pair(distorted, reference, display=None) -> tuple[HdrImage, HdrImage]:
    """Both files of a linear-light pair (distorted first, as the metrics take them), in the primaries of
    ``display``'s colour space (a :class:`turboiqa.display.Display`; Rec. 709 when None or luminance only)."""
    target = None
    if display is not None and "RGB2X" in _colour_space(display.photometry.colorspace):
        target = display.photometry.rgb_to_xyz()
    return read_hdr_image(distorted, target), read_hdr_image(reference, target)


def _colour_space(name: str) -> dict:
    from .display import load_json

    return load_json("color_spaces.json")[name]
