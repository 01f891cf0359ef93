"""Scores every pair of a dataset with one or more metrics, streaming rows to a CSV that a re-run resumes from.

Images are decoded by a pool of worker threads ahead of the metric (PIL releases the GIL while decoding), recent
references are cached (TID2013 pairs 120 distorted images with each reference), consecutive pairs of the same
size go through the metric as one batch (``reduction='none'``), and on CUDA batches are staged in pinned memory
and copied asynchronously. A pair that fails (missing file, bad image, metric error) is recorded in the
``error`` column and retried by the next run; rows already scored are skipped.
"""
from __future__ import annotations

import csv
import math
import sys
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

BASE_FIELDS = ["reference", "distorted", "distortion", "mos", "mos_std"]

# SPECS §0.3: metrics whose score is a distance (lower = better quality).
LOWER_IS_BETTER = {"lpips", "lpips_alex", "lpips_vgg", "lpips_squeeze", "dists", "pieapp", "lpips_swd", "swd",
                   "mse", "mae", "hdrvdp2_q", "gmsd", "ms_gmsd", "ms_gmsdc", "mdsi", "mdsi_mult", "nlpd", "mad"}


def lower_is_better(metric: str, fn=None) -> bool:
    """Direction of a metric: a ``lower_is_better`` / ``higher_is_better`` attribute on the function wins, then
    the table of SPECS §0.3."""
    for attr, flip in (("lower_is_better", False), ("higher_is_better", True)):
        value = getattr(fn, attr, None) if fn is not None else None
        if isinstance(value, bool):
            return value != flip
    return metric.lower() in LOWER_IS_BETTER


@dataclass
class RunStats:
    pairs_total: int = 0
    pairs_resumed: int = 0
    pairs_scored: int = 0
    pairs_failed: int = 0
    seconds_total: float = 0.0
    seconds_metric: float = 0.0     # inside the metric calls (device-synchronised)
    seconds_waiting: float = 0.0    # waiting for decoded images

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_scores(path, metrics=None) -> list[dict]:
    """Rows of a scores CSV, last row per ``distorted`` key winning (a resumed run appends retried rows); numeric
    columns become floats (empty → None)."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows: OrderedDict[str, dict] = OrderedDict()
        for raw in reader:
            if raw.get("distorted") is None or None in raw:
                continue  # a torn last line of a killed run
            row = dict(raw)
            for key in fields:
                if key not in ("reference", "distorted", "distortion", "error"):
                    row[key] = _number(raw[key]) if raw[key] not in ("", None) else None
            rows.pop(row["distorted"], None)
            rows[row["distorted"]] = row
    return list(rows.values())


def _repair_tail(path: Path) -> None:
    """A killed run may leave half a line: cut the file back to its last newline."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)


def _open_csv(path: Path, fields: list[str]):
    """Existing rows (for resume) and an append-mode writer; a header for other metrics is an error."""
    done = {}
    if path.exists() and path.stat().st_size > 0:
        _repair_tail(path)
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
        if header != fields:
            raise ValueError(f"{path} holds scores for columns {header}, not {fields}; choose another output "
                             "folder (--out) or delete the file to start over")
        for row in read_scores(path):
            if not row.get("error"):
                done[row["distorted"]] = row
        out = open(path, "a", newline="")  # noqa: SIM115 - closed by the caller
        return done, out, csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = open(path, "w", newline="")  # noqa: SIM115 - closed by the caller
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    out.flush()
    return done, out, writer


class _ImageCache:
    """A few decoded images by path (references repeat); decoding happens outside the lock."""

    def __init__(self, size: int = 8):
        self.size, self.items, self.lock = size, OrderedDict(), Lock()

    def get(self, path: Path):
        from ..images import read_image

        with self.lock:
            if path in self.items:
                self.items.move_to_end(path)
                return self.items[path]
        image = read_image(path)
        with self.lock:
            self.items[path] = image
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return image


def _decoded(dataset, indices, workers: int, ahead: int):
    """(index, pair, dist, ref, error) in dataset order, dist and ref as :class:`~turboiqa.images.DecodedImage`,
    decoded ``ahead`` items in advance by ``workers`` threads; files of different bit depths are an error."""
    from ..images import check_same_bit_depth, read_image

    cache = _ImageCache()

    def job(index):
        try:
            pair = dataset[index]
        except Exception as exc:  # noqa: BLE001 - a missing file is one failed pair
            return index, None, None, None, str(exc)
        try:
            dist, ref = read_image(pair.distorted), cache.get(pair.reference)
            check_same_bit_depth(dist, ref)
            return index, pair, dist, ref, None
        except Exception as exc:  # noqa: BLE001
            return index, pair, None, None, f"{type(exc).__name__}: {exc}"

    if workers <= 0:
        for index in indices:
            yield job(index)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="turboiqa-decode") as pool:
        pending = []
        it = iter(indices)
        for index in it:
            pending.append(pool.submit(job, index))
            if len(pending) >= ahead:
                break
        while pending:
            future = pending.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(job, nxt))
            yield future.result()


def _row_base(dataset, index, pair) -> dict:
    if pair is None:
        records = getattr(dataset, "_records", None)
        if records is None:
            return {"reference": "", "distorted": f"#{index}", "distortion": "", "mos": "", "mos_std": ""}
        ref, dist, score, std, distortion = records[index]
        return {"reference": ref, "distorted": dist, "distortion": distortion, "mos": score,
                "mos_std": "" if std is None else std}
    root = getattr(dataset, "root", None)
    try:
        ref = str(pair.reference.relative_to(root)) if root is not None else str(pair.reference)
    except ValueError:
        ref = str(pair.reference)
    return {"reference": ref, "distorted": pair.key, "distortion": pair.distortion, "mos": pair.score,
            "mos_std": "" if pair.std is None else pair.std}


def resolve_metric_fns(metrics) -> dict:
    """``{name: turboiqa.METRICS[name]}``; an unknown name is a ValueError listing the available ones."""
    import turboiqa

    unknown = [m for m in metrics if m not in turboiqa.METRICS]
    if unknown:
        raise ValueError(f"metric: unknown {unknown}; available: {sorted(turboiqa.METRICS)}")
    return {m: turboiqa.METRICS[m] for m in metrics}


def score_rows(dataset, indices, metric_fns: dict, device: str = "cpu", workers: int = 2, batch_size: int = 8,
               stats: RunStats | None = None, emit=None) -> None:
    """Score the pairs ``indices`` of ``dataset`` in that order, calling ``emit(rows)`` with each group of finished
    rows (a batch, or one failed pair), in order. Consecutive pairs of one shape and bit depth share a metric call
    (up to ``batch_size``); a failing batch is retried pair by pair; failures fill ``error``. This is the whole
    scoring step of :func:`score_dataset`, also run by the Ray tasks of :mod:`turboiqa.distributed` on slices."""
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    stats = stats if stats is not None else RunStats()
    cuda = torch.device(device).type == "cuda"

    def run_metrics(dist, ref, peak):
        t0 = time.perf_counter()
        if cuda:
            dist, ref = dist.pin_memory().to(device, non_blocking=True), ref.pin_memory().to(device, non_blocking=True)
        elif device != "cpu":
            dist, ref = dist.to(device), ref.to(device)
        values = {}
        for name, fn in metric_fns.items():
            values[name] = fn(dist, ref, data_range=peak, reduction="none").detach().reshape(-1).double().cpu().tolist()
        stats.seconds_metric += time.perf_counter() - t0
        return values

    def failed(index, pair, error):
        row = _row_base(dataset, index, pair)
        row["error"] = error
        stats.pairs_failed += 1
        emit([row])

    def flush(batch):
        if not batch:
            return
        rows = [_row_base(dataset, i, p) for i, p, _, _ in batch]
        try:
            peak = batch[0][2].peak  # a batch shares one bit depth (see the grouping below)
            values = run_metrics(_stack([d.pixels for _, _, d, _ in batch]), _stack([r.pixels for _, _, _, r in batch]),
                                 peak)
            for k, row in enumerate(rows):
                for name in metric_fns:
                    row[name] = values[name][k]
        except Exception:  # noqa: BLE001 - isolate the failing pair(s) one by one
            for row, (_, _, d, r) in zip(rows, batch):
                try:
                    for name, v in run_metrics(d.pixels, r.pixels, d.peak).items():
                        row[name] = v[0]
                except Exception as exc:  # noqa: BLE001
                    row["error"] = f"{type(exc).__name__}: {exc}"
        for row in rows:
            if row.get("error") or any(not math.isfinite(row.get(n, math.nan)) for n in metric_fns):
                row.setdefault("error", "non-finite score")
                stats.pairs_failed += 1
            else:
                stats.pairs_scored += 1
        emit(rows)
        batch.clear()

    batch: list = []
    source = _decoded(dataset, indices, workers, ahead=max(2 * batch_size, 2 * workers))
    while True:
        t0 = time.perf_counter()
        item = next(source, None)
        stats.seconds_waiting += time.perf_counter() - t0
        if item is None:
            break
        index, pair, dist, ref, error = item
        if error is not None:
            flush(batch)
            failed(index, pair, error)
            continue
        if dist.pixels.shape != ref.pixels.shape:
            flush(batch)
            failed(index, pair, f"distorted {tuple(dist.pixels.shape)} and reference {tuple(ref.pixels.shape)} "
                   "differ in shape")
            continue
        if batch and (batch[0][2].pixels.shape != dist.pixels.shape or batch[0][2].bits != dist.bits):
            flush(batch)
        batch.append((index, pair, dist, ref))
        if len(batch) >= batch_size:
            flush(batch)
    flush(batch)


def open_scores(dataset, metrics, out_csv):
    """Open (or resume) the scores CSV of ``dataset``: ``(done, out, writer, todo)`` with the rows already scored
    without error, the append-mode file and its ``csv.DictWriter``, and the indices still to score, in order."""
    fields = BASE_FIELDS + list(metrics) + ["error"]
    done, out, writer = _open_csv(Path(out_csv), fields)
    if done:
        keys = _dataset_keys(dataset)
        todo = [i for i, key in enumerate(keys) if key not in done]
    else:
        todo = list(range(len(dataset)))
    return done, out, writer, todo


def score_dataset(dataset, metrics, out_csv, device: str = "cpu", workers: int = 2, batch_size: int = 8,
                  progress: bool = True, metric_fns: dict | None = None, stats: RunStats | None = None):
    """Score every pair of ``dataset`` (iterable of :class:`Pair` with ``len`` and indexing) with ``metrics``,
    appending to ``out_csv``; returns ``(rows, stats)`` with rows as :func:`read_scores` gives them."""
    if metric_fns is None:
        metric_fns = resolve_metric_fns(metrics)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    out_csv = Path(out_csv)
    stats = stats or RunStats()
    stats.pairs_total = len(dataset)
    start = time.perf_counter()
    done, out, writer, todo = open_scores(dataset, metrics, out_csv)
    stats.pairs_resumed = len(done)

    from tqdm import tqdm

    bar = tqdm(total=len(dataset), initial=len(dataset) - len(todo), desc="scoring", unit="pair",
               file=sys.stderr, disable=not progress or None)

    def emit(rows):
        for row in rows:
            writer.writerow(row)
        out.flush()
        bar.update(len(rows))

    try:
        score_rows(dataset, todo, metric_fns, device, workers, batch_size, stats, emit)
    finally:
        out.close()
        bar.close()
        stats.seconds_total = time.perf_counter() - start
    return read_scores(out_csv), stats


def _stack(images):
    """Batch of decoded CPU images. NumPy's concatenate: torch.cat on uint8 CPU tensors measured ~80× slower
    here (84 ms vs 1 ms for 8×3×384×512, bench/bench_eval.py), more than the SSIM of the batch."""
    import numpy as np
    import torch

    if len(images) == 1:
        return images[0]
    return torch.from_numpy(np.concatenate([im.numpy() for im in images]))


def _dataset_keys(dataset) -> list[str]:
    """Row keys of all items without decoding (label tables know them; others are asked item by item)."""
    if hasattr(dataset, "_records") and type(dataset).__getitem__ is _base_getitem():
        return [rec[1] for rec in dataset._records]
    keys = []
    for index in range(len(dataset)):
        try:
            keys.append(dataset[index].key)
        except Exception:  # noqa: BLE001 - a missing file: not done, will be retried and recorded
            keys.append(None)
    return keys


def _base_getitem():
    from .datasets import IQADataset

    return IQADataset.__getitem__
