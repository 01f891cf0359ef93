"""Scoring a video pair frame by frame: the streaming generator :func:`score` (notebooks) and the job :func:`run`
(CLI): rows streamed to CSV / JSON lines as they are produced, resume from what is on disk, summary, progress
bar, plot."""
from __future__ import annotations

import sys
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..rows import RowWriter, open_output
from .decode import BatchReader, Selection, probe
from .errors import VideoError
from .frame_metrics import build_metrics, split_metrics
from .output import (
    output_format,
    read_rows,
    row_fields,
    summarize,
    summary_path,
    write_summary,
)


@dataclass
class ScoreTiming:
    """Filled in while :func:`score` runs. ``decode_s``: the decoding thread's busy time (decode, conversion,
    batching); ``score_s``: host-to-device copies plus every metric until the values are back on the host;
    ``wall_s``: from the first request to the last row."""

    frames: int = 0
    decode_s: float = 0.0
    score_s: float = 0.0
    wall_s: float = 0.0


def resolve_device(device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available (torch {torch.__version__}, "
                         f"built {'with' if torch.version.cuda else 'without'} CUDA)")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {str(device)!r}")
    return device


TRANSFERS = ("pq", "hlg", "sdr")
_EOTF_OF = {"pq": "PQ", "hlg": "HLG"}


def video_display(display, transfer, ref_info, dist_info, needed: bool):
    """The display model of the metrics that take one (None when ``needed`` is False and none is given).

    ``transfer`` ('pq', 'hlg', 'sdr'; None: the streams' colour transfer tags) picks the default display
    (PQ → 'standard_hdr_pq', HLG → 'standard_hdr_hlg', otherwise 'standard_4k') and must agree with the display's
    EOTF; ValueError names the video and what to pass instead."""
    from .. import display as _display

    if transfer is not None and transfer not in TRANSFERS:
        raise ValueError(f"transfer must be one of {list(TRANSFERS)} or None, got {transfer!r}")
    if display is None and not needed:
        return None
    tags = {info.path: info.transfer for info in (ref_info, dist_info) if info.transfer is not None}
    if transfer is None:
        if len(set(tags.values())) > 1:
            listed = ", ".join(f"{p}: {t}" for p, t in tags.items())
            raise ValueError(f"the videos' colour transfer tags differ ({listed}); pass transfer= "
                             "(--transfer pq|hlg|sdr) to say how both are encoded")
        transfer = next(iter(tags.values()), None)
        source = f"{next(iter(tags))}'s colour transfer tag" if tags else None
    else:
        source = f"transfer={transfer!r}"
    if display is None:
        display = {"pq": "standard_hdr_pq", "hlg": "standard_hdr_hlg"}.get(transfer, "standard_4k")
    disp = _display.resolve_display(display)
    eotf = disp.photometry.transfer
    if eotf == "linear":
        raise ValueError(f"display {disp.name!r} has a linear EOTF (absolute cd/m²) but video frames are "
                         "display-encoded; choose a display with an sRGB, PQ or HLG EOTF")
    wanted = _EOTF_OF.get(transfer)
    if transfer is not None and (eotf != wanted if wanted else eotf in ("PQ", "HLG")):
        raise ValueError(f"{source} says {transfer.upper()} but display {disp.name!r} has the {eotf!r} EOTF; "
                         f"choose a matching display (e.g. "
                         f"{ {'pq': 'standard_hdr_pq', 'hlg': 'standard_hdr_hlg'}.get(transfer, 'standard_4k') }) "
                         "or --transfer to override a wrong tag")
    return disp


def score(distorted, reference, metrics=("psnr", "ssim"), *, device="cpu", batch_size: int = 8, start: int = 0,
          end: int | None = None, every: int = 1, dist_delay: int = 0, scale: bool = False, shortest: bool = False,
          ignore_fps: bool = False, colorspace: str | None = None, color_range: str | None = None,
          ssim_convention: str = "libvmaf", psnr_max_db: float | None = None, scales: int | None = None,
          display=None, transfer: str | None = None, clip: dict | None = None, prefetch: int = 2,
          skip_through: int = -1, timing: ScoreTiming | None = None):
    """Yield ``{"frame": i, "pts": seconds, <metric>: value, ...}`` for each scored reference frame i, in order.

    ``distorted`` first, ``reference`` second (video paths): the order of every turboiqa metric and of
    ``turboiqa video DIST REF``; both may also be given by keyword (``score(distorted=..., reference=...)``).

    Reference frame i is paired with distorted frame i + ``dist_delay``; frames ``start`` ≤ i < ``end`` are scored,
    every ``every``-th one. ``scale`` resizes distorted frames to the reference size (bicubic) instead of refusing
    a size mismatch; ``shortest`` stops at the shorter video instead of treating unequal lengths as truncation.
    ``colorspace`` ('bt709', 'bt601', …) and ``color_range`` ('limited', 'full') override the stream metadata for
    the metrics that read RGB; ``scales`` is passed to ms_ssim and iw_ssim (small frames). Decoding runs in a
    background thread, ``prefetch`` batches ahead; on CUDA the batches are pinned and copied asynchronously. A
    corrupt or truncated stream raises :class:`~turboiqa.video.VideoDecodeError` (its ``frame`` is the first frame
    not scored) after every frame before it was yielded. ``skip_through`` skips frames up to that index (resume).

    HDR: sources of more than 8 bits are scored at their depth (turboiqa.video.decode). ``display`` (a name, dict
    or :class:`turboiqa.display.Display`) is the display model of cvvdp and pu21_*; by default it follows the
    streams' transfer tag or ``transfer`` ('pq' → 'standard_hdr_pq', 'hlg' → 'standard_hdr_hlg', else
    'standard_4k'), and a display whose EOTF contradicts it is refused. 'cvvdp' is temporal: it is not in the
    per-frame records; its clip JOD is stored in ``clip`` (a dict: ``clip['cvvdp']``, with ``clip['frames']``) once
    the generator is exhausted (see :mod:`turboiqa.video.clip_metrics`; needs every=1 and no skip_through).
    """
    device = resolve_device(device)
    frame_names, clip_names = split_metrics(metrics)
    if not frame_names and not clip_names:
        raise ValueError("metrics must name at least one metric")
    if clip_names and every != 1:
        raise ValueError(f"{clip_names[0]} is temporal (filters over consecutive frames): every must be 1, got {every}")
    if clip_names and skip_through >= 0:
        raise ValueError(f"{clip_names[0]} is one value per clip: a run cannot be resumed part way; start again")
    ref_info, dist_info = probe(reference, "reference"), probe(distorted, "distorted")
    from ..hdr_images import display_metrics
    import turboiqa

    hdr = display_metrics(turboiqa.METRICS)
    disp = video_display(display, transfer, ref_info, dist_info, any(m in hdr for m in metrics))
    frame_metrics = build_metrics(frame_names, ssim_convention=ssim_convention, psnr_max_db=psnr_max_db,
                                  scales=scales, display=disp, allow_empty=True)
    if clip is not None and disp is not None:
        clip["display"] = disp.name
    clip_metrics = []
    if clip_names:
        from .clip_metrics import TemporalCvvdp

        clip_metrics = [TemporalCvvdp(disp, float(ref_info.fps) if ref_info.fps else None)]
    selection = Selection(start=start, end=end, every=every, dist_delay=dist_delay, skip_through=skip_through)
    timing = timing if timing is not None else ScoreTiming()
    began = time.perf_counter()
    reader = BatchReader(distorted=distorted, reference=reference,
                         planes={m.plane for m in frame_metrics} | ({"rgb"} if clip_metrics else set()),
                         batch_size=batch_size, selection=selection, scale=scale, shortest=shortest,
                         ignore_fps=ignore_fps, colorspace=colorspace, color_range=color_range,
                         pin_memory=device.type == "cuda", prefetch=prefetch)
    try:
        for batch in reader:
            t0 = time.perf_counter()
            ref = {p: t.to(device, non_blocking=True) for p, t in batch.ref.items()}
            dist = {p: t.to(device, non_blocking=True) for p, t in batch.dist.items()}
            values = []
            for m in frame_metrics:
                try:
                    values.append(m.fn(dist[m.plane], ref[m.plane], batch.data_range[m.plane]).to(torch.float64))
                except Exception as exc:
                    raise VideoError(f"metric {m.name!r} failed on frames {batch.frames[0]}–{batch.frames[-1]}: {exc}",
                                     frame=batch.frames[0]) from exc
            for c in clip_metrics:
                try:
                    c.update(dist["rgb"], ref["rgb"], batch.data_range["rgb"])
                except Exception as exc:
                    raise VideoError(f"metric {c.name!r} failed on frames {batch.frames[0]}–{batch.frames[-1]}: {exc}",
                                     frame=batch.frames[0]) from exc
            # one device sync per batch
            table = torch.stack(values, dim=1).cpu().tolist() if values else [[] for _ in batch.frames]
            timing.score_s += time.perf_counter() - t0
            for index, pts, row in zip(batch.frames, batch.pts, table):
                record = {"frame": index, "pts": pts}
                record.update(zip((m.name for m in frame_metrics), row))
                timing.frames += 1
                yield record
            timing.decode_s = reader.decode_seconds
            timing.wall_s = time.perf_counter() - began
        if clip is not None:
            for c in clip_metrics:
                clip[c.name] = c.result()
            if clip_metrics:
                clip["frames"] = clip_metrics[0].frames
                clip["display"] = disp.name
                clip["fps"] = clip_metrics[0].fps
    finally:
        reader.close()
        timing.decode_s = reader.decode_seconds
        timing.wall_s = time.perf_counter() - began


def run(distorted, reference, metrics=("psnr", "ssim"), out=None, *, resume: bool = False, overwrite: bool = False,
        progress: bool = True, plot=None, echo=None, **options) -> dict:
    """Score ``distorted`` against ``reference`` (distorted first, as :func:`score`; keywords work too), streaming
    rows to ``out`` (.csv or .jsonl) as they are produced, then write the summary to ``<out stem>.summary.json``
    and return it. With ``resume`` an existing ``out`` is continued after its last
    complete row (a killed run loses at most the row being written); the finished file equals an uninterrupted
    run's. ``plot`` (a path, or True for ``<out stem>.png``) draws the per-frame curves. ``echo`` (a text stream)
    also receives the rows, for runs without ``out``. Options are those of :func:`score`.

    A decoding or pairing error still writes the summary of the frames scored (with ``error`` and
    ``error_frame``), then propagates.
    """
    metrics = list(metrics)
    frame_names, clip_names = split_metrics(metrics)  # clip metrics (cvvdp) go to the summary, not the rows
    # Everything that can be refused is checked before a file is touched.
    resolve_device(options.get("device", "cpu"))
    build_metrics(frame_names, ssim_convention=options.get("ssim_convention", "libvmaf"),
                  psnr_max_db=options.get("psnr_max_db"), scales=options.get("scales"), allow_empty=bool(clip_names))
    selection = Selection(start=options.get("start", 0), end=options.get("end"), every=options.get("every", 1),
                          dist_delay=options.get("dist_delay", 0))
    info = probe(reference, "reference")
    dist_info = probe(distorted, "distorted")
    import turboiqa

    from ..hdr_images import display_metrics

    video_display(options.get("display"), options.get("transfer"), info, dist_info,
                  any(m in display_metrics(turboiqa.METRICS) for m in metrics))
    if clip_names and options.get("every", 1) != 1:
        raise ValueError(f"{clip_names[0]} is temporal (filters over consecutive frames): every must be 1 "
                         f"(--every 1), got {options.get('every')}")
    if clip_names and resume and out is not None and Path(out).exists() and Path(out).stat().st_size > 0:
        raise ValueError(f"{clip_names[0]} is one value per clip, so {out} cannot be resumed part way; pass "
                         "overwrite=True (--overwrite) to score the clip again")
    metrics = frame_names
    clip = {}
    done = []
    handle = None
    if out is not None:
        out = Path(out)
        fmt = output_format(out)
        if out.exists() and out.stat().st_size > 0:
            if resume:
                done = read_rows(out, metrics)
            elif not overwrite:
                raise FileExistsError(f"{out} exists; pass resume=True (--resume) to continue it or overwrite=True "
                                      f"(--overwrite) to start again")
        handle = open_output(out, "a" if done else "w")  # closed in finally

    writer = RowWriter(fmt, metrics, handle, fields=row_fields(metrics), header=not done) if handle else None
    echo_writer = RowWriter("csv", metrics, echo, fields=row_fields(metrics)) if echo is not None else None
    total = selection.count(info.frames)
    timing = ScoreTiming()
    rows = list(done)
    error = None
    bar = None
    try:
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=len(done), desc="scoring", unit="frame", file=sys.stderr, disable=None,
                       dynamic_ncols=True)
        skip_through = done[-1]["frame"] if done else -1
        # closing(): an interrupt stops the decoding thread at once instead of whenever the generator is collected.
        with closing(score(distorted=distorted, reference=reference, metrics=metrics + clip_names,
                           skip_through=skip_through, timing=timing, clip=clip, **options)) as records:
            for row in records:
                if writer:
                    writer.write(row)
                if echo_writer:
                    echo_writer.write(row)
                rows.append(row)
                if bar is not None:
                    bar.update(1)
    except VideoError as exc:
        error = exc
        raise
    finally:
        if bar is not None:
            bar.close()
        if handle:
            handle.close()
        summary = {
            "reference": str(reference), "distorted": str(distorted), "frames": len(rows),
            "resumed_frames": len(done), "metrics": summarize(rows, metrics),
            "options": _json_options(options),
            "timing": {**asdict(timing), "scored_fps": timing.frames / timing.wall_s if timing.wall_s else None},
        }
        if clip.get("display"):
            summary["display"] = clip["display"]  # the display model of cvvdp / pu21_*
        for name in clip_names:  # one value per clip (None when the run stopped before the end)
            summary["metrics"][name] = {"jod": clip.get(name), "frames": clip.get("frames", 0),
                                        "display": clip.get("display"), "fps": clip.get("fps")}
        if error is not None:
            summary["error"] = str(error)
            summary["error_frame"] = error.frame
        if out is not None:
            write_summary(summary_path(out), summary)
        if plot and rows and metrics:
            from .plot import plot_curves

            target = Path(plot) if not isinstance(plot, bool) else (
                summary_path(out).with_name(out.stem + ".png") if out is not None else Path("video_scores.png"))
            plot_curves(rows, metrics, target, title=f"{Path(distorted).name} vs {Path(reference).name}")
            summary["plot"] = str(target)
    return summary


def _json_options(options: dict) -> dict:
    """The options as the summary records them (a Display object as its parameters)."""
    from dataclasses import is_dataclass

    out = dict(options)
    if is_dataclass(out.get("display")):
        out["display"] = asdict(out["display"])
    return out
