"""Per-frame rows on disk (CSV or JSON lines, streamed through turboiqa.rows.RowWriter), reading them back to resume
a killed run, and the summary statistics."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .errors import VideoError

PERCENTILES = (1, 5, 10, 25, 50, 75, 95, 99)


def output_format(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "json"
    raise ValueError(f"out must end in .csv or .jsonl (JSON lines), got {str(path)!r}")


def row_fields(metrics) -> list[str]:
    return ["frame", "pts", *metrics]


def summary_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".summary.json")


def _parse_value(text: str):
    return None if text == "" else float(text)


def read_rows(path, metrics) -> list[dict]:
    """Rows already on disk. A last line cut short by a kill is removed from the file (it is scored again);
    a file written with other metrics is refused rather than mixed."""
    path = Path(path)
    raw = path.read_bytes()
    complete = raw.rfind(b"\n") + 1
    if complete < len(raw):
        with open(path, "r+b") as f:
            f.truncate(complete)
    text = raw[:complete].decode("utf-8")
    fields = row_fields(metrics)
    rows = []
    if output_format(path) == "csv":
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None:
            return []
        if header != fields:
            raise VideoError(f"cannot resume {path}: its columns are {header}, this run writes {fields}; use the same "
                             f"metrics or overwrite=True (--overwrite)", path=str(path))
        for values in reader:
            row = {"frame": int(values[0]), "pts": _parse_value(values[1])}
            row.update({m: float(v) for m, v in zip(metrics, values[2:])})
            rows.append(row)
    else:
        for line in text.splitlines():
            row = json.loads(line)
            if list(row) != fields:
                raise VideoError(f"cannot resume {path}: its rows have keys {list(row)}, this run writes {fields}; "
                                 f"use the same metrics or overwrite=True (--overwrite)", path=str(path))
            rows.append(row)
    return rows


def harmonic_mean(v: np.ndarray) -> float | None:
    """n / Σ 1/v; None unless every value is > 0. An infinite value (PSNR of identical frames) adds 0 to the
    denominator; when every value is infinite the denominator is 0 and the harmonic mean is inf (the limit of
    n / Σ 1/v as the values grow), returned as such rather than through a 1/0 division."""
    if not np.all(v > 0):
        return None
    denominator = float(np.sum(1.0 / v))  # 1/inf is 0.0, no warning
    return float(v.size / denominator) if denominator > 0 else float("inf")


def summarize(rows, metrics) -> dict:
    """Per metric: mean, harmonic mean (None unless every value is > 0), min, max and percentiles (linear
    interpolation). Infinite PSNR (identical frames) is counted as such: it makes the mean infinite and adds 0
    to the harmonic mean's denominator (all frames infinite: the harmonic mean is inf too), so cap it with
    psnr_max_db for finite means."""
    stats = {}
    for m in metrics:
        v = np.array([r[m] for r in rows], dtype=np.float64)
        if v.size == 0:
            stats[m] = None
            continue
        entry = {"mean": float(v.mean()), "harmonic_mean": harmonic_mean(v),
                 "min": float(v.min()), "max": float(v.max())}
        finite = v[np.isfinite(v)]
        for p in PERCENTILES:
            entry[f"p{p}"] = float(np.percentile(v, p)) if finite.size == v.size else (
                float(np.percentile(v, p, method="lower")))
        stats[m] = entry
    return stats


def write_summary(path, summary: dict) -> None:
    Path(path).write_text(json.dumps(summary, indent=2) + "\n")
