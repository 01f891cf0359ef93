"""The ``turboiqa evaluate`` job: score a dataset (resumable), then table + JSON + plots; or the same report
from a scores CSV computed elsewhere."""
from __future__ import annotations

import json
from pathlib import Path

from .runner import lower_is_better, read_scores, score_dataset
from .summary import format_table, summarise, to_json

KNOWN_COLUMNS = {"reference", "distorted", "distortion", "mos", "mos_std", "error"}


def report(rows, metrics, out_dir, name: str, mos_higher_is_better: bool = True, lower_better=(),
           score_name: str = "MOS", n_resamples: int = 1000, plots: bool = True, mapping: str = "5",
           bapps: str | None = None) -> dict:
    """Summary (dict), with ``table`` text, written to ``out_dir`` as ``<name>_summary.json``/``_table.txt``
    and, with ``plots``, ``<name>_scatter.png`` and ``<name>_distortions.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if bapps:
        from .bapps import summarise_bapps

        result = {m: summarise_bapps(bapps, [r for r in rows if not r.get("error") and r.get(m) is not None], m,
                                     m in lower_better) for m in metrics}
        label = "2AFC agreement" if bapps == "bapps-2afc" else "JND mAP"
        cats = list(next(iter(result.values())))
        lines = [f"{name}: {label} per category", "metric  " + "  ".join(f"{c:>12}" for c in cats)]
        lines += [f"{m:<7} " + "  ".join(f"{r[c]['score']:12.4f}" for c in cats) for m, r in result.items()]
        summary = {"bapps": result, "table": "\n".join(lines), "files": {}}
    else:
        summary = summarise(rows, metrics, mos_higher_is_better, set(lower_better), mapping=mapping,
                            n_resamples=n_resamples)
        summary["table"] = format_table(summary, title=f"{name}: {len(rows)} pairs")
        summary["files"] = {}
        if plots:
            from .plots import distortion_plot, scatter_plot

            summary["files"]["scatter"] = str(scatter_plot(summary, rows, out_dir / f"{name}_scatter.png",
                                                           score_name, title=name))
            summary["files"]["distortions"] = str(distortion_plot(summary, out_dir / f"{name}_distortions.png",
                                                                  title=f"{name}: SROCC per distortion"))
    (out_dir / f"{name}_table.txt").write_text(summary["table"] + "\n")
    summary["files"]["table"] = str(out_dir / f"{name}_table.txt")
    summary["files"]["summary"] = str(out_dir / f"{name}_summary.json")
    (out_dir / f"{name}_summary.json").write_text(json.dumps(to_json(summary), indent=1))
    return summary


def evaluate_dataset(dataset: str, root, metrics, out_dir, device: str = "cpu", workers: int = 2,
                     batch_size: int = 8, progress: bool = True, n_resamples: int = 1000, plots: bool = True,
                     mapping: str = "5", scorer=None, **dataset_kwargs) -> dict:
    """Score ``dataset`` under ``root`` with ``metrics`` into ``out_dir/<dataset>_scores.csv`` (resuming it
    when present), then :func:`report`. The summary also carries the run statistics (``run``). ``scorer``
    replaces :func:`~turboiqa.eval.runner.score_dataset` (same arguments and result; :mod:`turboiqa.distributed`
    passes its Ray one)."""
    import torch

    import turboiqa

    from .datasets import open_dataset

    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but CUDA is not available")
    ds = open_dataset(dataset, root, **dataset_kwargs)
    unknown = [m for m in metrics if m not in turboiqa.METRICS]
    if unknown:
        raise ValueError(f"metric: unknown {unknown}; available: {sorted(turboiqa.METRICS)}")
    name = dataset.lower()
    csv_path = Path(out_dir) / f"{name}_scores.csv"
    rows, stats = (scorer or score_dataset)(ds, metrics, csv_path, device=device, workers=workers,
                                            batch_size=batch_size, progress=progress)
    lower = [m for m in metrics if lower_is_better(m, turboiqa.METRICS[m])]
    good = [r for r in rows if not r.get("error")]
    if len(good) < 3:
        first = next((r["error"] for r in rows if r.get("error")), "no error recorded")
        raise ValueError(f"only {len(good)} of {len(rows)} pairs were scored (see the 'error' column of "
                         f"{csv_path}); first error: {first}")
    summary = report(rows, metrics, out_dir, name, ds.score_higher_is_better, lower, ds.score_name,
                     n_resamples=n_resamples, plots=plots, mapping=mapping,
                     bapps=name if name.startswith("bapps") else None)
    summary["run"] = stats.as_dict()
    summary["files"]["scores"] = str(csv_path)
    return summary


def evaluate_scores(scores_csv, out_dir=None, metrics=None, mos_higher_is_better: bool = True,
                    lower_better=None, n_resamples: int = 1000, plots: bool = True, mapping: str = "5",
                    dataset: str | None = None) -> dict:
    """Report from a CSV with a ``mos`` column (optional ``mos_std``, ``distortion``) and one column per metric
    (every other numeric column, unless ``metrics`` names them)."""
    path = Path(scores_csv)
    if not path.is_file():
        raise FileNotFoundError(f"scores: {path} does not exist")
    rows = read_scores(path)
    if not rows:
        raise ValueError(f"scores: {path} has no rows")
    if "mos" not in rows[0]:
        raise ValueError(f"scores: {path} needs a 'mos' column (columns: {sorted(rows[0])})")
    if metrics is None:
        metrics = [k for k in rows[0] if k not in KNOWN_COLUMNS
                   and any(isinstance(r.get(k), float) for r in rows)]
    missing = [m for m in metrics if m not in rows[0]]
    if missing or not metrics:
        raise ValueError(f"scores: no metric column{'s ' + str(missing) if missing else 's'} in {path} "
                         f"(columns: {sorted(rows[0])})")
    if lower_better is None:
        lower_better = [m for m in metrics if lower_is_better(m)]
    name = dataset.lower() if dataset else path.stem.removesuffix("_scores")
    return report(rows, metrics, out_dir or path.parent, name, mos_higher_is_better, lower_better,
                  n_resamples=n_resamples, plots=plots, mapping=mapping,
                  bapps=name if name.startswith("bapps") else None)
