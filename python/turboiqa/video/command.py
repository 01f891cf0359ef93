"""``turboiqa video DIST REF``: the command-line face of :func:`turboiqa.video.run`.

Like the Python metrics (and ``turboiqa score``), the command takes the distorted video first and the reference
second; :func:`turboiqa.video.run` is called with both by keyword."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..rows import OutputError


def add_video_parser(sub) -> None:
    p = sub.add_parser("video", help="score every frame of a distorted video against its reference: DIST first, "
                                     "REF second",
                       description="Per-frame scores of DIST (first) against REF (second), the order of "
                                   "`turboiqa score` and of the metric functions (Y plane for luma metrics), "
                                   "streamed to --out as CSV or JSON lines, then a JSON summary (mean, harmonic "
                                   "mean, min, percentiles; cvvdp: one JOD per clip) next to it and on stdout. "
                                   "Sources of more than 8 bits (HDR10) are scored at their depth.")
    p.add_argument("dist", metavar="DIST", help="distorted video (first)")
    p.add_argument("ref", metavar="REF", help="reference video (second)")
    p.add_argument("--metric", default="psnr,ssim",
                   help="comma-separated: psnr, ssim, ssim_libvmaf, ssim_ffmpeg, ms_ssim, iw_ssim, fsim, fsimc, "
                        "pu21_psnr, …, and cvvdp (temporal: one JOD per clip, in the summary) "
                        "(default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8, help="frames per batch (default: %(default)s)")
    p.add_argument("--out", help="per-frame rows: a .csv or .jsonl file (default: CSV on stdout, summary on stderr)")
    p.add_argument("--resume", action="store_true", help="continue an existing --out after its last complete row")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--plot", nargs="?", const=True, default=None, metavar="PNG",
                   help="draw the per-frame curves (default file: <out stem>.png)")
    p.add_argument("--start", type=int, default=0, help="first reference frame scored (0-based)")
    p.add_argument("--end", type=int, default=None, help="stop before this reference frame")
    p.add_argument("--every", type=int, default=1, help="score every N-th frame (default: %(default)s)")
    p.add_argument("--dist-delay", type=int, default=0,
                   help="distorted frame i+D is paired with reference frame i (negative: the reference lags)")
    p.add_argument("--scale", action="store_true", help="resize distorted frames to the reference size (bicubic)")
    p.add_argument("--shortest", action="store_true", help="stop at the shorter video instead of failing")
    p.add_argument("--ignore-fps", action="store_true", help="pair frames by index even if the frame rates differ")
    p.add_argument("--colorspace", choices=["bt709", "bt601", "smpte240m", "bt2020", "fcc"],
                   help="YUV→RGB matrix for RGB metrics (default: from the stream)")
    p.add_argument("--color-range", choices=["limited", "full"], help="YUV range (default: from the stream)")
    p.add_argument("--ssim-convention", default="libvmaf", help="convention of 'ssim' (default: %(default)s)")
    p.add_argument("--psnr-max-db", type=float, default=None,
                   help="cap PSNR (libvmaf uses 60); identical frames give inf otherwise")
    p.add_argument("--scales", type=int, metavar="N",
                   help="scales of ms_ssim and iw_ssim (default 5; 176×144 frames need --scales 4 or fewer)")
    from ..cli import add_display_arguments

    add_display_arguments(p, "from the streams' transfer tag: standard_hdr_pq for PQ, standard_hdr_hlg for HLG, "
                             "else standard_4k", note="")
    p.add_argument("--transfer", choices=["pq", "hlg", "sdr"],
                   help="how the videos are encoded, overriding their colour transfer tags (picks the default "
                        "--display and must agree with its EOTF)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from ..distributed import DEFAULT_CHUNK_FRAMES, add_ray_arguments

    add_ray_arguments(p, "frames", DEFAULT_CHUNK_FRAMES)
    p.set_defaults(func=cmd_video)


def cmd_video(args) -> int:
    try:
        from . import VideoError, run
    except ImportError as exc:
        print(f"turboiqa video: {exc}", file=sys.stderr)
        return 2
    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    options = {"device": args.device, "batch_size": args.batch, "start": args.start, "end": args.end,
               "every": args.every, "dist_delay": args.dist_delay, "scale": args.scale, "shortest": args.shortest,
               "ignore_fps": args.ignore_fps, "colorspace": args.colorspace, "color_range": args.color_range,
               "ssim_convention": args.ssim_convention, "psnr_max_db": args.psnr_max_db,
               "scales": args.scales}
    from ..distributed import ClusterUnreachable, RayNotInstalled

    try:
        display = _display_option(args, metrics)
    except (ValueError, FileNotFoundError, VideoError) as exc:
        print(f"turboiqa video: {exc}", file=sys.stderr)
        return 2
    if display is not None:
        options["display"] = display
    if args.transfer is not None:
        options["transfer"] = args.transfer
    if getattr(args, "ray", None) is not None:
        problem = _ray_problem(args, metrics, options)
        if problem:
            print(f"turboiqa video: {problem}", file=sys.stderr)
            return 2
    try:
        if getattr(args, "ray", None) is not None:
            from ..distributed import ray_options, video

            summary = video(distorted=args.dist, reference=args.ref, metrics=metrics, out=args.out,
                            address=args.ray or None, resume=args.resume, overwrite=args.overwrite,
                            progress=not args.no_progress, plot=args.plot, echo=None if args.out else sys.stdout,
                            **ray_options(args, "frames"), **options)
        else:
            summary = run(distorted=args.dist, reference=args.ref, metrics=metrics, out=args.out,
                          resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                          plot=args.plot, echo=None if args.out else sys.stdout, **options)
    except (ClusterUnreachable, RayNotInstalled) as exc:
        print(f"turboiqa video: {exc}", file=sys.stderr)
        return 2
    except VideoError as exc:
        where = f" (frame {exc.frame})" if exc.frame is not None else ""
        print(f"turboiqa video: error{where}: {exc}", file=sys.stderr)
        if args.out and Path(args.out).is_file() and Path(args.out).stat().st_size > 0:
            print(f"turboiqa video: the frames scored before it are in {args.out}", file=sys.stderr)
        return 1
    except OutputError as exc:
        print(f"turboiqa video: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"turboiqa video: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # --out cannot be written (permissions, missing folder, full disk)
        print(f"turboiqa video: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    print(json.dumps(summary, indent=2), file=sys.stdout if args.out else sys.stderr)
    return 0


def _display_option(args, metrics):
    """--display/--display-param → a Display, or None (the streams decide)."""
    import turboiqa

    from .. import display as _display
    from ..hdr_images import display_metrics

    params = _display.parse_display_parameters(args.display_param)
    if args.display is None and not params:
        return None
    hdr = display_metrics(turboiqa.METRICS)
    if not any(m in hdr for m in metrics):
        raise ValueError(f"--display/--display-param are used only by {', '.join(sorted(hdr))}; none of them is "
                         f"in --metric {','.join(metrics)}")
    name = args.display
    if name is None:  # parameters of the display the streams' transfer picks
        from .decode import probe
        from .score import video_display

        name = video_display(None, args.transfer, ref_info=probe(args.ref, "reference"),
                             dist_info=probe(args.dist, "distorted"), needed=True).name
    return _display.resolve_display(name, **params)


def _ray_problem(args, metrics, options) -> str | None:
    """What --ray cannot do yet: cvvdp (one pass per clip), display models, sources deeper than 8 bits."""
    from .decode import probe
    from .frame_metrics import CLIP_METRICS

    clip = [m for m in metrics if m in CLIP_METRICS]
    if clip:
        return f"{clip[0]} is temporal (one JOD per clip, one pass over the frames): not with --ray"
    if "display" in options or "transfer" in options:
        return "--display/--transfer are not available with --ray yet"
    try:
        deep = [i for i in (probe(args.dist, "distorted"), probe(args.ref, "reference")) if i.bits > 8]
    except Exception:  # noqa: BLE001 - the job itself reports unreadable files
        return None
    if deep:
        return f"{deep[0].path} has {deep[0].bits}-bit samples: --ray scores 8-bit sources only for now"
    return None
