"""Command line: ``turboiqa score`` (two images, two folders, or the bundled demo), ``info``, ``weights``,
``evaluate``, ``train`` and ``video``.

Like the Python API, the commands take the distorted input first and the reference second
(``turboiqa score DIST REF``, ``turboiqa video DIST REF``); pairs here are (distorted, reference) too."""
from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

from .distributed import ClusterUnreachable, RayNotInstalled
from .rows import OutputError, RowWriter, open_output

RAY_ERRORS = (ClusterUnreachable, RayNotInstalled)  # --ray: Ray missing, or the address does not answer

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".exr", ".hdr", ".pic"}  # the last three: linear-light HDR (turboiqa.hdr_images)

# Exit codes of the jobs (README, "Command line"): 0 done, 1 some pairs or frames failed (recorded in the output),
# 2 bad arguments or input, 3 the output file cannot be written.
EXIT_FAILED_PAIRS, EXIT_OUTPUT = 1, 3


def demo_pairs():
    """(distorted, reference) paths of the bundled sample images."""
    root = resources.files("turboiqa") / "data" / "demo"
    ref = Path(str(root / "astronaut.png"))
    return [(Path(str(root / f"astronaut_{kind}.png")), ref) for kind in ("jpeg", "noise", "blur")]


def folder_pairs(dist_dir: Path, ref_dir: Path):
    """(distorted, reference) pairs by file name; names present on one side only are reported, not silently
    dropped."""
    refs = {p.name: p for p in ref_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    dists = {p.name: p for p in dist_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    missing = sorted(set(refs) ^ set(dists))
    if missing:
        print(f"turboiqa: {len(missing)} file(s) without a partner, skipped: {', '.join(missing[:5])}"
              + (" …" if len(missing) > 5 else ""), file=sys.stderr)
    return [(dists[name], refs[name]) for name in sorted(set(refs) & set(dists))]


def score_pair(dist_path: Path, ref_path: Path, metrics, device: str, data_range: float | None = None,
               scales: int | None = None, display=None) -> dict:
    """Scores of one pair (distorted first, as the metrics take it); the peak is the images' bit depth's (255 or
    65535) unless ``data_range`` is given; ``scales`` goes to the multi-scale metrics; ``display`` (None, a name or
    a :class:`turboiqa.display.Display`) to the metrics that take a display model (cvvdp, pu21_*; None: their
    default).

    Linear-light HDR files (.exr, .hdr) go to those metrics unchanged (absolute cd/m²) and need a display with a
    linear EOTF; the rules are :func:`turboiqa.hdr_images.check_linear_pair`'s. 16-bit PNG/TIFF are read exactly
    (display-encoded codes, e.g. PQ, with peak 65535)."""
    import turboiqa
    from . import display as _display
    from .hdr_images import check_linear_pair, display_metrics, is_hdr_file, read_hdr_pair
    from .images import metric_input, read_pair

    if isinstance(display, str):
        display = _display.resolve_display(display)
    hdr_metrics = display_metrics(turboiqa.METRICS)
    row = {"reference": str(ref_path), "distorted": str(dist_path)}
    if is_hdr_file(ref_path) or is_hdr_file(dist_path):
        check_linear_pair(reference=ref_path, distorted=dist_path, metrics=metrics, hdr_metrics=hdr_metrics,
                          display=display)
        dist_image, ref_image = read_hdr_pair(dist_path, ref_path, display)
        dist, ref = dist_image.pixels.to(device), ref_image.pixels.to(device)
        peak = 1.0 if data_range is None else data_range  # not used by linear displays
    else:
        dist_image, ref_image = read_pair(dist_path, ref_path)
        peak = ref_image.peak if data_range is None else data_range
        dist = metric_input(dist_image, peak).to(device)
        ref = metric_input(ref_image, peak).to(device)
    for name in metrics:
        options = turboiqa.metric_options(name, scales)
        if display is not None and name in hdr_metrics:
            options["display"] = display
        row[name] = float(turboiqa.METRICS[name](dist, ref, data_range=peak, **options))
    return row


def resolve_display_argument(args, metrics, hdr_metrics):
    """``--display`` and ``--display-param`` → a Display (or None); ValueError for bad values or a display no
    metric would use."""
    from . import display as _display

    params = _display.parse_display_parameters(getattr(args, "display_param", None))
    if args.display is None and not params:
        return None
    users = [m for m in metrics if m in hdr_metrics]
    if not users:
        raise ValueError(f"--display/--display-param are used only by {', '.join(sorted(hdr_metrics))}; none of "
                         f"them is in --metric {','.join(metrics)}")
    return _display.resolve_display(args.display or "standard_4k", **params)


def ray_arguments(args, per_task: str) -> dict:
    """The Ray options of a job's arguments (ValueError for bad values)."""
    from .distributed import ray_options

    return ray_options(args, per_task)


def cmd_score(args) -> int:
    import turboiqa

    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in turboiqa.METRICS]
    if unknown:
        print(f"turboiqa: unknown metric(s) {unknown}; available: {sorted(turboiqa.METRICS)}", file=sys.stderr)
        return 2
    if args.scales is not None and args.scales < 1:
        print(f"turboiqa score: --scales must be at least 1, got {args.scales}", file=sys.stderr)
        return 2
    if args.data_range is not None and not args.data_range > 0:
        print(f"turboiqa score: --data-range must be positive, got {args.data_range}", file=sys.stderr)
        return 2
    if args.demo:
        pairs = demo_pairs()
    elif args.dist is None or args.ref is None:
        print("turboiqa score: give DIST and REF (two images or two folders, distorted first), or --demo",
              file=sys.stderr)
        return 2
    else:
        dist, ref = Path(args.dist), Path(args.ref)
        for p in (dist, ref):
            if not p.exists():
                print(f"turboiqa score: {p} does not exist", file=sys.stderr)
                return 2
        if dist.is_dir() != ref.is_dir():
            print("turboiqa score: DIST and REF must both be images or both be folders", file=sys.stderr)
            return 2
        pairs = folder_pairs(dist, ref) if dist.is_dir() else [(dist, ref)]
        if not pairs:
            print(f"turboiqa score: no image names shared by {dist} and {ref}", file=sys.stderr)
            return 2
    import turboiqa.hdr_images as hdr

    hdr_metrics = hdr.display_metrics(turboiqa.METRICS)
    try:
        display = resolve_display_argument(args, metrics, hdr_metrics)
        for dist_path, ref_path in pairs:  # the file kinds are known from the names: refuse before scoring
            hdr.check_linear_pair(reference=ref_path, distorted=dist_path, metrics=metrics, hdr_metrics=hdr_metrics,
                                  display=display)
    except ValueError as exc:
        print(f"turboiqa score: {exc}", file=sys.stderr)
        return 2
    ray_options = {}
    if args.ray is not None:
        try:
            ray_options = ray_arguments(args, "pairs")
        except ValueError as exc:
            print(f"turboiqa score: {exc}", file=sys.stderr)
            return 2
    if args.device == "cuda" and args.ray is None:
        import torch

        if not torch.cuda.is_available():
            print("turboiqa score: --device cuda but CUDA is not available", file=sys.stderr)
            return 2

    fmt = "csv" if args.csv else "json" if args.json else "text"
    try:
        out = open_output(args.out, "w") if args.out else sys.stdout
    except OutputError as exc:
        print(f"turboiqa score: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    writer = RowWriter(fmt, metrics, out)
    failures = 0
    try:
        if args.ray is not None:
            from . import distributed

            with distributed.cluster(args.ray or None) as ray:
                for row in distributed.score_pairs(pairs, metrics, device=args.device, data_range=args.data_range,
                                                   scales=args.scales, display=display, ray=ray, **ray_options):
                    failures += "error" in row
                    writer.write(row)
        else:
            iterator = pairs
            if len(pairs) > 1:
                from tqdm import tqdm

                iterator = tqdm(pairs, desc="scoring", unit="pair", file=sys.stderr, disable=None)
            for dist_path, ref_path in iterator:
                try:
                    row = score_pair(dist_path, ref_path, metrics, args.device, args.data_range, args.scales,
                                     display)
                except Exception as exc:  # noqa: BLE001 - one bad file must not end a folder run
                    failures += 1
                    row = {"reference": str(ref_path), "distorted": str(dist_path), "error": str(exc)}
                writer.write(row)
    except RAY_ERRORS as exc:
        print(f"turboiqa score: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.out:
            out.close()
    if failures:
        where = "the ERROR lines above" if fmt == "text" else "the 'error' field" if fmt == "json" else "the 'error' column"
        print(f"turboiqa score: {failures} of {len(pairs)} pair(s) failed (see {where})", file=sys.stderr)
    return EXIT_FAILED_PAIRS if failures else 0


def cmd_info(args) -> int:
    import turboiqa

    for key, value in turboiqa.build_info().items():
        print(f"{key}: {value}")
    from .metrics.cvvdp import CVVDP_DATA_VERSION

    print(f"cvvdp_parameters: {CVVDP_DATA_VERSION}")
    if getattr(args, "ray", None) is not None:
        from .distributed import cluster_resources, format_resources

        try:
            print(format_resources(cluster_resources(args.ray or None)))
        except RAY_ERRORS as exc:
            print(f"turboiqa info: {exc}", file=sys.stderr)
            return 2
    return 0


def cmd_weights(args) -> int:
    """What each deep metric needs, where it was found (or every place searched), and how to get it."""
    from turboiqa.nets import weights

    rows = weights.status()
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    for row in rows:
        print(f"{row['metric']}{' (optional)' if row['optional'] else ''}: {row['description']} [{row['licence']}]")
        if row["found"]:
            print(f"  found: {row['found']}")
        else:
            print("  MISSING; searched:")
            for p in row["searched"]:
                print(f"    {p}")
            if row["url"] is None and row.get("hint"):
                print(f"  {row['hint']}")
                continue
            print(f"  get it: {row['url']} -> {weights.hub_checkpoint_dirs()[0]}, or set {weights.ENV_FOLDER}=<folder>,"
                  f" or allow download=True / {weights.ENV_DOWNLOAD}=1")
    return 0 if all(r["found"] or r["optional"] for r in rows) else 1  # exit 1: a default configuration lacks a file


def cmd_weights_convert(args) -> int:
    from turboiqa.nets.chainer import ChainerFormatError, convert

    try:
        target = convert(args.source, args.target)
    except (OSError, ChainerFormatError, ImportError) as exc:
        print(f"turboiqa weights convert: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


def task_options(args) -> dict:
    """The task-specific flags (WaDIQaM-FR's); an error for a task that has no such option."""
    options = {k: v for k, v in (("pooling", args.pooling), ("patches_per_image", args.patches_per_image))
               if v is not None}
    if options and args.task != "wadiqam_fr":
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in options)}: only for wadiqam_fr")
    return options


def cmd_train(args) -> int:
    from .eval.datasets import DatasetLayoutError
    from .train import train

    try:
        result = train(args.task, args.dataset, args.root, args.out or f"turboiqa-train-{args.task}-{args.dataset}",
                       epochs=args.epochs, seed=args.seed, resume=args.resume, batch_size=args.batch_size,
                       lr=args.lr, device=args.device, task_options=task_options(args))
    except (DatasetLayoutError, FileNotFoundError, ValueError) as exc:
        print(f"turboiqa train: {exc}", file=sys.stderr)
        return 2
    last = result.history[-1] if result.history else {}
    if last:
        print(f"epoch {last['epoch']}: loss {last['loss']:.5g}, validation SROCC {last['val_srocc']:.4f}, "
              f"PLCC {last['val_plcc']:.4f}")
    print(f"log: {result.log_path}")
    print(f"checkpoint: {result.checkpoint_path}")
    print(f"model: {result.model_path}")
    return 0


def _cmd_evaluate(args) -> int:
    from .eval.datasets import DatasetLayoutError
    from .eval.job import evaluate_dataset, evaluate_scores

    metrics = [m.strip() for m in (args.metric or "psnr,ssim,ms_ssim").split(",") if m.strip()]
    try:
        if args.scores:
            summary = evaluate_scores(args.scores, args.out, metrics if args.metric else None,
                                      mos_higher_is_better=not args.dmos, n_resamples=args.bootstrap,
                                      plots=not args.no_plots, mapping=args.mapping)
        else:
            if not args.root:
                print("turboiqa evaluate: --dataset needs --root (the folder the dataset was unpacked into)",
                      file=sys.stderr)
                return 2
            kwargs = {"split": args.split} if args.split else {}
            out = args.out or f"turboiqa-eval-{args.dataset.lower()}"
            if args.ray is not None:
                from . import distributed

                evaluate_dataset = distributed.evaluate_dataset
                kwargs.update(ray_arguments(args, "pairs"), address=args.ray or None)
            summary = evaluate_dataset(args.dataset, args.root, metrics, out, device=args.device,
                                       workers=args.workers, batch_size=args.batch_size,
                                       n_resamples=args.bootstrap, plots=not args.no_plots, mapping=args.mapping,
                                       **kwargs)
    except RAY_ERRORS as exc:
        print(f"turboiqa evaluate: {exc}", file=sys.stderr)
        return 2
    except (DatasetLayoutError, FileNotFoundError, ValueError) as exc:
        print(f"turboiqa evaluate: {exc}", file=sys.stderr)
        return 2
    print(summary["table"])
    for kind, path in summary["files"].items():
        print(f"{kind}: {path}")
    failed = summary.get("run", {}).get("pairs_failed", 0)
    if failed:
        print(f"turboiqa evaluate: {failed} pair(s) failed (see the 'error' column of the scores CSV)",
              file=sys.stderr)
    return 1 if failed else 0


def add_display_arguments(parser, default_help: str = "each metric's default, standard_4k",
                          note: str = ". Linear-light .exr/.hdr files need a linear EOTF (standard_hdr_linear: "
                                      "values in cd/m²)") -> None:
    """``--display NAME`` and ``--display-param KEY=VALUE`` (viewing conditions) for cvvdp and pu21_*."""
    parser.add_argument("--display", metavar="NAME",
                        help="display model of cvvdp and pu21_* (names of cvvdp's display_models.json: standard_4k, "
                             "standard_fhd, standard_hdr_pq, standard_hdr_hlg, standard_hdr_linear, ...; "
                             f"default: {default_help}){note}")
    parser.add_argument("--display-param", action="append", metavar="KEY=VALUE",
                        help="override one parameter of the display (repeatable): peak, contrast, ambient (lux), "
                             "k_refl, exposure, colorspace, eotf (sRGB, PQ, HLG, linear, 2.2), resolution (WxH), "
                             "diagonal_inches, distance_m, ppd")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="turboiqa", description="Full-reference image quality metrics.")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score distorted image(s) against reference(s): DIST first, REF second",
                           description="Scores of DIST against REF: two images, or two folders paired by file "
                                       "name. Like the Python API, the distorted input comes first and the "
                                       "reference second.")
    score.add_argument("dist", nargs="?", metavar="DIST", help="distorted image or folder (first)")
    score.add_argument("ref", nargs="?", metavar="REF",
                       help="reference image or folder (second; folders are paired by file name)")
    score.add_argument("--metric", default="psnr,ssim,ms_ssim", help="comma-separated metrics (default: %(default)s)")
    score.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    score.add_argument("--scales", type=int, metavar="N",
                       help="scales of ms_ssim and iw_ssim (default 5; fewer for small images)")
    score.add_argument("--data-range", type=float, metavar="PEAK",
                       help="peak pixel value (default: from the bit depth, 255 for 8-bit and 65535 for 16-bit "
                       "files; e.g. 4095 for 12-bit data stored in 16-bit files)")
    add_display_arguments(score)
    fmt = score.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per line")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    score.add_argument("--out", help="write results to this file instead of stdout")
    score.add_argument("--demo", action="store_true", help="score the sample images shipped with the package")
    from .distributed import add_ray_arguments  # Ray itself is imported only when --ray is given

    add_ray_arguments(score, "pairs", 16)
    score.set_defaults(func=cmd_score)
    info = sub.add_parser("info", help="what was compiled: CPU ISA, OpenMP, CUDA archs, torch version")
    info.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                      help="also report the resources of a Ray cluster (a local one started for it without ADDRESS)")
    info.set_defaults(func=cmd_info)
    weights = sub.add_parser("weights", help="weight files of the deep metrics: where each was found, how to get it")
    weights.add_argument("--json", action="store_true", help="one JSON object per (metric, file)")
    weights.set_defaults(func=cmd_weights)
    weights_sub = weights.add_subparsers(dest="weights_action", metavar="convert")
    convert = weights_sub.add_parser(
        "convert", help="convert an official Chainer checkpoint (deepIQA .model, HDF5 or .npz) to a PyTorch .pth",
        description="Reads the Chainer file without Chainer (HDF5 needs h5py) and writes the same tensors as a "
        "PyTorch state dict, e.g. `turboiqa weights convert fr_tid_weighted.model wadiqam-fr-tid2013-weighted.pth`.")
    convert.add_argument("source", help="the Chainer .model / .npz file")
    convert.add_argument("target", nargs="?", help="output .pth file or folder (default: next to the source)")
    convert.set_defaults(func=cmd_weights_convert)
    evaluate = sub.add_parser("evaluate", help="correlate metric scores with a dataset's human scores",
                              description="Score a dataset (resumable CSV) or read scores.csv, then print SROCC, "
                              "KROCC, PLCC, RMSE, Krasula AUCs with CIs and write the table, JSON and plots.")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="tid2013, tid2008, kadid10k, live, csiq, pipal, bapps-2afc, bapps-jnd")
    source.add_argument("--scores", help="CSV with a 'mos' column and one column per metric (scored elsewhere)")
    evaluate.add_argument("--root", help="folder the dataset archive was unpacked into (with --dataset)")
    evaluate.add_argument("--metric", help="comma-separated (default: psnr,ssim,ms_ssim; with --scores: every "
                          "numeric column other than mos/mos_std)")
    evaluate.add_argument("--out", help="output folder (default: ./turboiqa-eval-<dataset>, or next to --scores)")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    evaluate.add_argument("--workers", type=int, default=2, help="image-decoding threads (default: %(default)s)")
    evaluate.add_argument("--batch-size", type=int, default=8, help="pairs per metric call when sizes match")
    evaluate.add_argument("--mapping", default="5", choices=["4", "5"], help="logistic before PLCC/RMSE")
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="resamples for the CIs (0: none)")
    evaluate.add_argument("--split", help="PIPAL: train or val; BAPPS: train or val")
    evaluate.add_argument("--dmos", action="store_true", help="--scores: lower 'mos' = better quality")
    evaluate.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
    add_ray_arguments(evaluate, "pairs")
    evaluate.set_defaults(func=_cmd_evaluate)
    from .train import TASKS

    trainer = sub.add_parser("train", help="train a learned metric (DeepQA, WaDIQaM-FR) on an IQA dataset",
                             description="Split the dataset 80/20 by reference image (seeded), train with Adam, "
                             "checkpoint every epoch (--resume continues), log validation SROCC/PLCC per epoch, and "
                             "write the weight file the metric loads (deepqa.pth, wadiqam-fr.pth).")
    trainer.add_argument("task", choices=sorted(TASKS), help="what to train")
    trainer.add_argument("--dataset", required=True, help="tid2013, tid2008, kadid10k, live, csiq")
    trainer.add_argument("--root", required=True, help="folder the dataset archive was unpacked into")
    trainer.add_argument("--out", help="output folder (default: ./turboiqa-train-<task>-<dataset>)")
    trainer.add_argument("--epochs", type=int, help="default: the task's (DeepQA: 80, WaDIQaM-FR: 100)")
    trainer.add_argument("--seed", type=int, default=0, help="weights, split and order (default: %(default)s)")
    trainer.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    trainer.add_argument("--batch-size", type=int, help="images per step (default: the task's; DeepQA: 5, WaDIQaM-FR: 4)")
    trainer.add_argument("--lr", type=float, help="Adam learning rate (default: the task's for the dataset)")
    trainer.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    trainer.add_argument("--pooling", choices=("weighted", "patchwise"),
                         help="wadiqam_fr: the variant (default weighted)")
    trainer.add_argument("--patches-per-image", type=int, metavar="P",
                         help="wadiqam_fr: random 32×32 patch pairs per image and step (default 32, as the paper)")
    trainer.set_defaults(func=cmd_train)
    from .video.command import add_video_parser  # imports PyAV only when the command runs

    add_video_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
