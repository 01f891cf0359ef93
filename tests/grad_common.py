"""Shared by the gradient-similarity metric tests (GMSD, MS-GMSD, MDSI, SR-SIM): the published values of
reference_values.csv, the TID2013 pairs as inputs of each dtype, and smooth random pairs."""
from __future__ import annotations

import csv

import torch
from conftest import TID2013, load_rgb, skip_missing_shared_data


def reference_values(metric: str) -> dict:
    """{distorted file name: value} of ``metric`` in reference_values.csv (skips without the shared data)."""
    path = TID2013 / "reference_values.csv"
    if not path.is_file():
        skip_missing_shared_data(path)
    with open(path, newline="") as f:
        return {r["dist_img"]: float(r["value"]) for r in csv.DictReader(f) if r["metric"] == metric}


def tid_pair(dist: str):
    """(distorted, reference) of a TID2013 file name, uint8 1×3×H×W."""
    return load_rgb(TID2013 / "distorted" / dist), load_rgb(TID2013 / "reference" / f"I{dist[1:3]}.BMP")


def as_input(t: torch.Tensor, kind: str):
    """uint8 as decoded, or float in [0, 1] (float32 / float64); returns (tensor, data_range)."""
    if kind == "uint8":
        return t, 255
    return t.to(torch.float64 if kind == "float64" else torch.float32) / 255, 1.0


def smooth_pair(shape=(2, 3, 61, 67), seed=0, noise=0.05, dtype=torch.float64):
    """Smoothed noise and a noisy copy in [0, 1] (structure, so the gradient maps are far from flat)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    y = torch.nn.functional.avg_pool2d(y, 5, stride=1, padding=2, count_include_pad=False)
    x = (y + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


# float64 reproduces the published values to their last digit; float32 (and uint8, computed in float32) to ~1e-7
TOLERANCE = {"float64": 1e-9, "float32": 2e-7, "uint8": 2e-7}
