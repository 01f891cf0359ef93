"""Display models: how display-encoded pixel values become absolute light (cd/m²), and how many pixels one visual
degree holds. Used by the visibility metrics (ColorVideoVDP) and the PU21-encoded metrics.

The model is the gain-offset-gamma display of Mantiuk (2016, "Perceptual display..."), as used by ColorVideoVDP
(cvvdp 0.5.7, ``display_model.py``):

    L = (Y_peak - Y_black) · EOTF(V) + Y_black + Y_refl,   Y_black = Y_peak / contrast,   Y_refl = k_refl · E_amb / π

with EOTF 'sRGB', 'PQ' (absolute, clipped to [0.005, Y_peak], then + Y_black + Y_refl), 'HLG' (BT.2100 with the
system gamma raised for displays over 1000 cd/m²), 'linear' (V already in cd/m², clipped to [max(0.005, Y_black),
Y_peak], + Y_refl) or a number (a plain gamma). Geometry: pixels per degree at the screen centre,
ppd = 1 / (2·atan(0.5·W_m / res_x / d) in degrees).

Named displays come from cvvdp's ``display_models.json`` (shipped in ``turboiqa/data/cvvdp`` under its MIT
licence, version recorded there): 'standard_4k' (default), 'standard_fhd', 'standard_hdr_pq', 'standard_hdr_hlg',
'standard_hdr_linear', 'standard_phone', ...
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

import torch

DATA_DIR = Path(__file__).resolve().parent / "data" / "cvvdp"

# CIE 2006 LMS from XYZ, and DKL (D65 adaptation) from LMS 2006 — the matrices of cvvdp 0.5.7 (display_model.py)
XYZ_TO_LMS2006 = ((0.187596268556126, 0.585168649077728, -0.026384263306304),
                  (-0.133397430663221, 0.405505777260049, 0.034502127690364),
                  (0.000244379021663, -0.000542995890619, 0.019406849066323))
LMS2006_TO_DKLD65 = ((1.0, 1.0, 0.0),
                     (1.0, -2.311130179947035, 0.0),
                     (-1.0, -1.0, 50.977571328718781))

PQ_CONSTANTS = dict(n=0.15930175781250000, m=78.843750000000000, c1=0.83593750000000000,
                    c2=18.851562500000000, c3=18.687500000000000)


@functools.lru_cache(maxsize=None)
def load_json(name: str) -> dict:
    with open(DATA_DIR / name, "r") as f:
        return json.load(f)


def display_names() -> list[str]:
    """The display model names of the shipped ``display_models.json``."""
    return sorted(load_json("display_models.json"))


# --------------------------------------------------------------------------------------------------- EOTFs
def srgb_eotf(v: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded [0, 1] → relative linear [0, 1] (IEC 61966-2-1 piecewise curve)."""
    return torch.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


def pq_eotf(v: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 (PQ) code values [0, 1] → absolute luminance in cd/m² (0 … 10,000)."""
    c = PQ_CONSTANTS
    t = v ** (1 / c["m"])
    return 10000.0 * ((t - c["c1"]).clamp(min=0) / (c["c2"] - c["c3"] * t)) ** (1 / c["n"])


def pq_inverse_eotf(lum: torch.Tensor) -> torch.Tensor:
    """Absolute luminance in cd/m² → PQ code values in [0, 1]."""
    c = PQ_CONSTANTS
    t = (lum.clamp(0, 10000) / 10000.0) ** c["n"]
    return ((c["c2"] * t + c["c1"]) / (1 + c["c3"] * t)) ** c["m"]


def hlg_eotf(v: torch.Tensor, gamma: float) -> torch.Tensor:
    """BT.2100 HLG signal (N×3×… RGB, [0, 1]) → display-relative linear RGB: inverse OETF then the OOTF
    (Y_s^(gamma-1) with BT.2020 luminance weights)."""
    a = 0.17883277
    b = 1 - 4 * a
    c = 0.5 - a * math.log(4 * a)
    scene = torch.where(v <= 0.5, v * v / 3.0, (torch.exp((v - c) / a) + b) / 12.0)
    y = 0.2627 * scene[:, 0] + 0.6780 * scene[:, 1] + 0.0593 * scene[:, 2]
    return (y ** (gamma - 1)).unsqueeze(1) * scene


# --------------------------------------------------------------------------------------------------- photometry
@dataclasses.dataclass(frozen=True)
class DisplayPhotometry:
    """Photometric display model (see the module docstring). ``colorspace`` names an entry of cvvdp's
    ``color_spaces.json`` (primaries and default EOTF); ``eotf`` overrides its EOTF."""

    peak: float = 200.0                 # Y_peak, cd/m²
    contrast: float = 1000.0            # Y_peak / Y_black
    ambient: float = 250.0              # E_ambient, lux
    k_refl: float = 0.005               # screen reflectivity
    exposure: float = 1.0
    colorspace: str = "sRGB"
    eotf: str | None = None

    def __post_init__(self):
        spaces = load_json("color_spaces.json")
        if self.colorspace not in spaces:
            raise ValueError(f"colorspace {self.colorspace!r} unknown; one of {sorted(spaces)}")
        if not (self.peak > 0 and self.contrast > 0 and self.ambient >= 0 and self.k_refl >= 0):
            raise ValueError(f"display photometry needs peak > 0, contrast > 0, ambient >= 0, k_refl >= 0, got {self}")
        e = self.transfer
        if e not in ("sRGB", "PQ", "HLG", "linear") and not e[:1].isdigit():
            raise ValueError(f"eotf must be 'sRGB', 'PQ', 'HLG', 'linear' or a gamma such as '2.2', got {e!r}")

    @property
    def transfer(self) -> str:
        return self.eotf if self.eotf is not None else load_json("color_spaces.json")[self.colorspace]["EOTF"]

    @property
    def black(self) -> float:
        return self.peak / self.contrast

    @property
    def reflected(self) -> float:
        return self.ambient / math.pi * self.k_refl

    @property
    def is_linear(self) -> bool:
        return self.transfer == "linear"

    def rgb_to_xyz(self) -> tuple:
        space = load_json("color_spaces.json")[self.colorspace]
        if "RGB2X" not in space:
            raise ValueError(f"colorspace {self.colorspace!r} has no RGB primaries (luminance only)")
        return (tuple(space["RGB2X"]), tuple(space["RGB2Y"]), tuple(space["RGB2Z"]))

    def luminance_weights(self) -> tuple:
        return self.rgb_to_xyz()[1]

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Display-encoded values (N×C×H×W, [0, 1]; cd/m² for 'linear') → absolute linear light in cd/m²."""
        e = self.transfer
        if e != "linear":
            v = v.clamp(0.0, 1.0)
        black, refl = self.black, self.reflected
        if e == "sRGB":
            rel = srgb_eotf(v)
            if self.exposure != 1:
                rel = (rel * self.exposure).clamp(0.0, 1.0)
            return (self.peak - black) * rel + black + refl
        if e == "PQ":
            return (pq_eotf(v) * self.exposure).clamp(0.005, self.peak) + black + refl
        if e == "linear":
            return (v * self.exposure).clamp(max(0.005, black), self.peak) + refl
        if e == "HLG":
            gamma = 1.2
            if self.peak > 1000:
                gamma = 1.2 + 0.42 * math.log10(self.peak / 1000) - 0.07623 * math.log10(self.ambient / 5)
            rel = hlg_eotf(v, gamma)
            if self.exposure != 1:
                rel = (rel * self.exposure).clamp(0.0, 1.0)
            return (self.peak - black) * rel + black + refl
        rel = (v ** float(e) * self.exposure).clamp(0.0, 1.0)
        return (self.peak - black) * rel + black + refl


# --------------------------------------------------------------------------------------------------- geometry
@dataclasses.dataclass(frozen=True)
class DisplayGeometry:
    """Screen resolution (width, height), diagonal in inches and viewing distance in metres — or a fixed ``ppd``."""

    resolution: tuple = (3840, 2160)
    diagonal_inches: float | None = 30.0
    distance_m: float | None = 0.7472
    ppd_fixed: float | None = None

    @property
    def ppd(self) -> float:
        """Pixels per visual degree at the centre of the screen."""
        if self.ppd_fixed is not None:
            return float(self.ppd_fixed)
        if self.diagonal_inches is None or self.distance_m is None:
            raise ValueError("display geometry needs diagonal_inches and distance_m, or ppd")
        w, h = self.resolution
        aspect = w / h
        height_m = math.sqrt((self.diagonal_inches * 25.4) ** 2 / (1 + aspect ** 2)) / 1000
        width_m = aspect * height_m
        pix_deg = 2 * math.degrees(math.atan(0.5 * width_m / w / self.distance_m))
        return 1 / pix_deg


@dataclasses.dataclass(frozen=True)
class Display:
    name: str
    photometry: DisplayPhotometry
    geometry: DisplayGeometry


@functools.lru_cache(maxsize=None)
def named_display(name: str) -> Display:
    """A display of cvvdp's ``display_models.json`` by name (same defaults as cvvdp 0.5.7: contrast 500 and
    k_refl 0.005 when absent, ambient 0 lux, sRGB)."""
    models = load_json("display_models.json")
    if name not in models:
        raise ValueError(f"display {name!r} unknown; one of {sorted(models)}")
    m = models[name]
    peak = m["max_luminance"]
    if "min_luminance" in m:
        contrast = peak / m["min_luminance"]
    else:
        contrast = m.get("contrast", 500)
    photo = DisplayPhotometry(peak=peak, contrast=contrast, ambient=m.get("E_ambient", 0), k_refl=m.get("k_refl", 0.005),
                              exposure=m.get("exposure", 1), colorspace=m.get("colorspace", "sRGB"))
    w, h = m["resolution"]
    if "pixels_per_degree" in m:
        geo = DisplayGeometry((w, h), None, None, m["pixels_per_degree"])
    else:
        if "fov_diagonal" in m:
            raise ValueError(f"display {name!r} is given by its field of view, which turboiqa does not model yet")
        dist = m.get("viewing_distance_meters")
        if dist is None and "viewing_distance_inches" in m:
            dist = m["viewing_distance_inches"] * 0.0254
        diag = m.get("diagonal_size_inches")
        if diag is None and "diagonal_size_meters" in m:
            diag = m["diagonal_size_meters"] / 0.0254
        geo = DisplayGeometry((w, h), diag, dist)
    return Display(name, photo, geo)


def resolve_display(display, **overrides) -> Display:
    """``display``: a name, a :class:`Display`, or a dict of parameters (peak, contrast, ambient, k_refl, exposure,
    colorspace, eotf, resolution, diagonal_inches, distance_m, ppd). ``overrides``: the same keys, replacing the
    named display's values (None = keep)."""
    if isinstance(display, Display):
        base = display
    elif isinstance(display, str):
        base = named_display(display)
    elif isinstance(display, dict):
        base = named_display("standard_4k")
        overrides = {**display, **{k: v for k, v in overrides.items() if v is not None}}
        base = Display("custom", base.photometry, base.geometry)
    else:
        raise TypeError(f"display must be a name, a dict of parameters or a Display, got {type(display).__name__}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return base
    photo_keys = {f.name for f in dataclasses.fields(DisplayPhotometry)}
    geo_map = {"resolution": "resolution", "diagonal_inches": "diagonal_inches", "distance_m": "distance_m",
               "ppd": "ppd_fixed"}
    unknown = set(overrides) - photo_keys - set(geo_map)
    if unknown:
        raise ValueError(f"unknown display parameter(s) {sorted(unknown)}; known: {sorted(photo_keys | set(geo_map))}")
    photo = dataclasses.replace(base.photometry, **{k: v for k, v in overrides.items() if k in photo_keys})
    geo = dataclasses.replace(base.geometry, **{geo_map[k]: v for k, v in overrides.items() if k in geo_map})
    name = base.name if base.name == "custom" else base.name + "+custom"
    return Display(name, photo, geo)


_STRING_PARAMETERS = {"colorspace", "eotf"}


def parse_display_parameters(items) -> dict:
    """``["peak=1000", "ambient=5", "resolution=1920x1080", "eotf=PQ", ...]`` (the command line's
    ``--display-param``) → keyword overrides for :func:`resolve_display`; ValueError naming a bad item."""
    known = {f.name for f in dataclasses.fields(DisplayPhotometry)} | {"resolution", "diagonal_inches",
                                                                         "distance_m", "ppd"}
    out = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key or not text:
            raise ValueError(f"display parameter {item!r}: expected KEY=VALUE")
        if key not in known:
            raise ValueError(f"display parameter {item!r}: unknown key {key!r}; known: {sorted(known)}")
        if key in _STRING_PARAMETERS:
            out[key] = text
        elif key == "resolution":
            try:
                w, h = (int(v) for v in text.lower().split("x"))
            except ValueError:
                raise ValueError(f"display parameter {item!r}: resolution must be WIDTHxHEIGHT") from None
            out[key] = (w, h)
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"display parameter {item!r}: {key} must be a number") from None
            if not math.isfinite(value):
                raise ValueError(f"display parameter {item!r}: {key} must be finite")
            out[key] = value
    return out
