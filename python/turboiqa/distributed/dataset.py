"""Dataset jobs on Ray: ``evaluate``'s pairs (runs of consecutive pairs scored by the evaluator's own code) and
``score``'s image pairs."""
from __future__ import annotations

import math
import time
from pathlib import Path

from .cluster import (DEFAULT_MAX_RETRIES, _placement, _Progress, _slots, _task_options, cluster,
                      ordered_results, require_ray)


def _dataset_task(dataset, indices, metrics, device, workers, batch_size):
    from ..eval.runner import RunStats, resolve_metric_fns, score_rows

    stats = RunStats()
    rows: list = []
    score_rows(dataset, indices, resolve_metric_fns(metrics), device, workers, batch_size, stats, rows.extend)
    return rows, stats.as_dict()


def chunk(indices, size: int) -> list[list]:
    return [indices[k:k + size] for k in range(0, len(indices), size)]


def score_dataset(dataset, metrics, out_csv, *, device: str = "cpu", workers: int = 2, batch_size: int = 8,
                  pairs_per_task: int | None = None, cpus_per_task: float = 1, gpus_per_task: float = 0,
                  max_retries: int = DEFAULT_MAX_RETRIES, progress: bool = True, ray=None):
    """:func:`turboiqa.eval.runner.score_dataset` on Ray (Ray initialised, see :func:`cluster`): same CSV, same
    return value ``(rows, stats)``. Tasks score ``pairs_per_task`` consecutive pairs (default ``4 × batch_size``,
    rounded up to a multiple of it)."""
    from ..eval.runner import RunStats, open_scores, read_scores, resolve_metric_fns

    ray = ray or require_ray()
    resolve_metric_fns(metrics)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    per_task = pairs_per_task or 4 * batch_size
    per_task = batch_size * max(1, math.ceil(per_task / batch_size))
    out_csv = Path(out_csv)
    stats = RunStats(pairs_total=len(dataset))
    start = time.perf_counter()
    done, out, writer, todo = open_scores(dataset, metrics, out_csv)
    stats.pairs_resumed = len(done)
    device, cpus_per_task, gpus_per_task = _placement(device, cpus_per_task, gpus_per_task)
    bar = _Progress(len(dataset), len(dataset) - len(todo), "pair", progress)
    remote = ray.remote(_dataset_task).options(**_task_options(cpus_per_task, gpus_per_task, max_retries))
    try:
        if todo:
            dataset_ref = ray.put(dataset)
            chunks = chunk(todo, per_task)
            jobs = [(dataset_ref, c, list(metrics), device, workers, batch_size) for c in chunks]
            for k, result in ordered_results(ray, remote, jobs, slots=_slots(ray, cpus_per_task, gpus_per_task),
                                             progress=bar):
                if isinstance(result, Exception):  # retries exhausted: every pair of it failed, retried on resume
                    from ..eval.runner import _row_base

                    rows = []
                    for i in chunks[k]:
                        row = _row_base(dataset, i, None)
                        row["error"] = f"ray task failed: {type(result).__name__}: {str(result).splitlines()[0]}"
                        rows.append(row)
                    task_stats = {"pairs_failed": len(rows)}
                else:
                    rows, task_stats = result
                for row in rows:
                    writer.writerow(row)
                out.flush()
                for key in ("pairs_scored", "pairs_failed", "seconds_metric", "seconds_waiting"):
                    setattr(stats, key, getattr(stats, key) + task_stats.get(key, 0))
                bar.update(len(rows))
    finally:
        out.close()
        bar.close()
        stats.seconds_total = time.perf_counter() - start
    return read_scores(out_csv), stats


def evaluate_dataset(dataset: str, root, metrics, out_dir, *, address: str | None = None, num_cpus: int | None = None,
                     **kwargs) -> dict:
    """:func:`turboiqa.eval.job.evaluate_dataset` with the scoring on Ray (``address`` as :func:`cluster`); the
    options of :func:`score_dataset` (``pairs_per_task``, ``cpus_per_task``, ``gpus_per_task``, ``max_retries``)
    are accepted besides the job's."""
    from ..eval.job import evaluate_dataset as evaluate

    ray_options = {k: kwargs.pop(k) for k in ("pairs_per_task", "cpus_per_task", "gpus_per_task", "max_retries")
                   if k in kwargs}
    task_device = kwargs.pop("device", "cpu")
    _placement(task_device, ray_options.get("cpus_per_task", 1), ray_options.get("gpus_per_task", 0))  # checks
    with cluster(address, num_cpus=num_cpus) as ray:
        def scorer(ds, metrics, csv_path, device, workers, batch_size, progress):
            return score_dataset(ds, metrics, csv_path, device=task_device, workers=workers, batch_size=batch_size,
                                 progress=progress, ray=ray, **ray_options)

        # the driver needs no GPU of its own: the device is the tasks'
        return evaluate(dataset, root, metrics, out_dir, device="cpu", scorer=scorer, **kwargs)


# ------------------------------------------------------------------------------------------------------------------
# score: image pairs

def _pairs_task(pairs, metrics, device, data_range, scales, display=None):
    from ..cli import score_pair

    rows = []
    for dist_path, ref_path in pairs:
        try:
            rows.append(score_pair(dist_path, ref_path, metrics, device, data_range, scales, display))
        except Exception as exc:  # noqa: BLE001 - as the single-process command: one bad file is one error row
            rows.append({"reference": str(ref_path), "distorted": str(dist_path), "error": str(exc)})
    return rows


def score_pairs(pairs, metrics, *, device: str = "cpu", data_range=None, scales=None, display=None,
                pairs_per_task: int = 16,
                cpus_per_task: float = 1, gpus_per_task: float = 0, max_retries: int = DEFAULT_MAX_RETRIES,
                progress: bool = True, ray=None):
    """Rows of ``turboiqa score`` for ``pairs`` ((distorted, reference) paths, as
    :func:`turboiqa.cli.folder_pairs` gives them), in order, scored on Ray;
    ``display`` goes to the metrics that take a display model, as in :func:`turboiqa.cli.score_pair`."""
    ray = ray or require_ray()
    device, cpus_per_task, gpus_per_task = _placement(device, cpus_per_task, gpus_per_task)
    remote = ray.remote(_pairs_task).options(**_task_options(cpus_per_task, gpus_per_task, max_retries))
    chunks = chunk(list(pairs), max(1, pairs_per_task))
    jobs = [(c, list(metrics), device, data_range, scales, display) for c in chunks]
    bar = _Progress(len(pairs), 0, "pair", progress and len(pairs) > 1)
    try:
        for k, result in ordered_results(ray, remote, jobs, slots=_slots(ray, cpus_per_task, gpus_per_task),
                                         progress=bar):
            if isinstance(result, Exception):
                result = [{"reference": str(r), "distorted": str(d), "error": f"ray task failed: {result}"}
                          for d, r in chunks[k]]
            yield from result
            bar.update(len(result))
    finally:
        bar.close()
