"""Video jobs on Ray: a video cut into frame ranges, each decoded from the nearest keyframe and identified by
presentation timestamps, so that each frame gets the index and score of a single pass."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from .cluster import (DEFAULT_CHUNK_FRAMES, DEFAULT_MAX_RETRIES, _placement, _Progress, _slots, _task_options,
                      cluster, ordered_results, require_ray)


def frame_index(path) -> dict:
    """What a range task needs to seek in ``path``: ``pts`` (presentation timestamps in presentation order, from
    the packets, nothing decoded), ``keyframes`` (indices of the keyframes in that order) and ``seekable`` (False
    when timestamps are missing or repeated, or the packets disagree with the frame count the header declares:
    then frames are counted from the start, as a single pass counts them)."""
    import numpy as np

    from ..video.decode import open_video

    container, stream = open_video(path, "video")
    pts, key_pts, seekable = [], [], True
    try:
        declared = stream.frames
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None:
                continue  # the flush packet
            if packet.is_discard:
                continue  # cut by an edit list: the decoder does not output it
            if packet.pts is None:
                seekable = False
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                key_pts.append(packet.pts)
    finally:
        container.close()
    order = np.sort(np.asarray(pts, dtype=np.int64))
    if (order.size and np.any(np.diff(order) == 0)) or (declared and declared != order.size):
        seekable = False
    keyframes = sorted(int(np.searchsorted(order, p)) for p in key_pts)
    return {"pts": order, "keyframes": keyframes or [0], "seekable": seekable}


def _indexed_frames(container, stream, what, path, first, index, back: int = 0):
    """(index, frame) from frame ``first`` on: decoded from the ``back``-th keyframe before ``first`` (a seek), the
    frames before ``first`` dropped; the index of a frame is the rank of its timestamp. Raises _Hidden when the
    decoder does not deliver frame ``first`` (an open GOP), so that the caller steps back a keyframe."""
    import numpy as np

    from ..video.decode import decoded_frames
    from ..video.errors import VideoDecodeError

    keys = [k for k in index["keyframes"] if k <= first]
    if not index["seekable"] or not keys or len(keys) <= back or keys[-1 - back] == 0:
        # from the start, counted exactly as a single pass
        for i, frame in decoded_frames(container, stream, what, path):
            if i >= first:
                yield i, frame
        return
    pts = index["pts"]
    container.seek(int(pts[keys[-1 - back]]), stream=stream, backward=True, any_frame=False)
    expected = first
    last = None
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                raise _Hidden
            i = int(np.searchsorted(pts, frame.pts))
            if i >= len(pts) or pts[i] != frame.pts:
                raise _Hidden
            if i < first:
                continue
            if i != expected:
                raise _Hidden
            expected = i + 1
            last = i
            yield i, frame
    except _Hidden:
        raise
    except Exception as exc:  # FFmpegError: as decoded_frames reports it
        from av.error import FFmpegError

        if not isinstance(exc, FFmpegError):
            raise
        raise VideoDecodeError(f"{what} video {path}: decoding failed at frame {expected} ({exc}); the frames "
                               f"before it were delivered", frame=expected, path=str(path)) from exc
    declared = stream.frames
    delivered = (last + 1) if last is not None else first
    if declared and delivered < declared:
        raise VideoDecodeError(f"{what} video {path} ended after {delivered} frames but its header declares "
                               f"{declared}: truncated or corrupt from frame {delivered} on", frame=delivered,
                               path=str(path))


class _Hidden(Exception):
    """A seek did not deliver the wanted frame first: decode from an earlier keyframe."""


def _range_batches(distorted, reference, planes, first, end, index_dist, index_ref, options, back):
    """A BatchReader over reference frames [first, end) that seeks both videos (``back`` keyframes earlier)."""
    from ..video.decode import BatchReader, Selection, frame_pairs

    delay = options.get("dist_delay", 0)
    selection = Selection(start=options.get("start", 0), end=end, every=options.get("every", 1), dist_delay=0,
                          skip_through=max(options.get("skip_through", -1), first - 1))
    shortest = options.get("shortest", False) or delay != 0

    class RangeReader(BatchReader):
        def _produce(self):
            (rc, dc), (rs, ds) = self._containers, self._streams
            r0 = max(first, -delay)
            ref_frames = _indexed_frames(rc, rs, "reference", self.paths[0], r0, index_ref, back)
            dist_frames = ((i - delay, f) for i, f in
                           _indexed_frames(dc, ds, "distorted", self.paths[1], r0 + delay, index_dist, back))
            self._produce_from(frame_pairs(ref_frames, dist_frames, self.selection, shortest, self.paths),
                               restart=(_Hidden,))

    reader = RangeReader(distorted=distorted, reference=reference, planes=planes,
                         batch_size=options.get("batch_size", 8), selection=selection,
                         scale=options.get("scale", False), shortest=shortest,
                         ignore_fps=options.get("ignore_fps", False), colorspace=options.get("colorspace"),
                         color_range=options.get("color_range"), prefetch=options.get("prefetch", 2))
    threads = options.get("decode_threads")
    if threads:  # FFmpeg's automatic count is the node's cores, per decoder: too many with one task per core
        for stream in reader._streams:
            stream.codec_context.thread_count = threads
    return reader


def score_range(distorted, reference, metrics, first: int, stop: int | None, index_dist: dict, index_ref: dict,
                **options) -> tuple[list, Exception | None, dict]:
    """Rows of reference frames ``first`` ≤ i < ``stop`` (None: to the end) of ``distorted`` scored against
    ``reference`` (distorted first, as :func:`turboiqa.video.score`, which gives the same rows in one pass; the
    :func:`frame_index` of each follows in the same order), the :class:`~turboiqa.video.VideoError` that stopped
    it (rows before it are kept) or None, and timings."""
    import torch

    from ..video.errors import VideoError
    from ..video.frame_metrics import build_metrics
    from ..video.score import resolve_device

    device = resolve_device(options.get("device", "cpu"))
    frame_metrics = build_metrics(metrics, ssim_convention=options.get("ssim_convention", "libvmaf"),
                                  psnr_max_db=options.get("psnr_max_db"), scales=options.get("scales"))
    planes = {m.plane for m in frame_metrics}
    began = time.perf_counter()
    for back in range(64):
        rows, error = [], None
        reader = _range_batches(distorted=distorted, reference=reference, planes=planes, first=first, end=stop,
                                index_dist=index_dist, index_ref=index_ref, options=options, back=back)
        try:
            for batch in reader:
                ref = {p: t.to(device) for p, t in batch.ref.items()}
                dist = {p: t.to(device) for p, t in batch.dist.items()}
                values = []
                for m in frame_metrics:
                    try:
                        values.append(m.fn(dist[m.plane], ref[m.plane]).to(torch.float64))
                    except Exception as exc:
                        raise VideoError(f"metric {m.name!r} failed on frames {batch.frames[0]}–{batch.frames[-1]}: "
                                         f"{exc}", frame=batch.frames[0]) from exc
                table = torch.stack(values, dim=1).cpu().tolist()
                for i, pts, row in zip(batch.frames, batch.pts, table):
                    record = {"frame": i, "pts": pts}
                    record.update(zip((m.name for m in frame_metrics), row))
                    rows.append(record)
        except _Hidden:
            continue
        except VideoError as exc:
            error = exc
        finally:
            decode_s = reader.decode_seconds
            reader.close()
        return rows, error, {"frames": len(rows), "decode_s": decode_s, "wall_s": time.perf_counter() - began,
                             "keyframes_back": back}
    raise RuntimeError("no keyframe delivers the frames of this range")  # pragma: no cover


def _video_task(distorted, reference, metrics, first, stop, index_dist, index_ref, options):
    return score_range(distorted=distorted, reference=reference, metrics=metrics, first=first, stop=stop,
                       index_dist=index_dist, index_ref=index_ref, **options)


def plan_ranges(first: int, stop: int, frames_per_task: int, batch_size: int, every: int, start: int) -> list:
    """[(a, b)] covering reference frames [first, stop); every boundary except ``first`` lies on the grid
    ``start + k·batch_size·every``, so the batches of each range are those of a single pass."""
    step = batch_size * every
    size = step * max(1, math.ceil(frames_per_task / step))
    ranges = []
    a = first
    while a < stop:
        b = start + ((a - start) // size + 1) * size
        ranges.append((a, min(b, stop)))
        a = b
    return ranges


class _VideoJob:
    """One distorted/reference pair of a video job on Ray: checks and resume state (:meth:`__init__`), the range
    tasks (``jobs``), the rows of each finished range written in order (:meth:`take`), the summary (:meth:`finish`).
    Nothing is written before every check passed."""

    def __init__(self, ray, distorted, reference, metrics, out, *, resume, overwrite, echo, frames_per_task,
                 cpus_per_task, gpus_per_task, options):
        from ..rows import RowWriter, open_output
        from ..video.decode import Selection, probe
        from ..video.frame_metrics import build_metrics
        from ..video.output import output_format, read_rows, row_fields
        from ..video.score import resolve_device

        self.reference, self.distorted, self.metrics, self.options = reference, distorted, list(metrics), options
        self.frames_per_task = frames_per_task
        task_options = dict(options)
        task_options["device"], self.cpus, self.gpus = _placement(options.get("device", "cpu"), cpus_per_task,
                                                                  gpus_per_task)
        task_options["decode_threads"] = max(1, math.ceil(self.cpus))
        if not self.gpus:  # with GPUs the device is the tasks', checked there
            resolve_device(task_options["device"])
        build_metrics(self.metrics, ssim_convention=options.get("ssim_convention", "libvmaf"),
                      psnr_max_db=options.get("psnr_max_db"), scales=options.get("scales"))
        selection = Selection(start=options.get("start", 0), end=options.get("end"), every=options.get("every", 1),
                              dist_delay=options.get("dist_delay", 0))
        info = probe(reference, "reference")
        probe(distorted, "distorted")
        self.done, self.out, handle = [], None if out is None else Path(out), None
        if self.out is not None:
            fmt = output_format(self.out)
            if self.out.exists() and self.out.stat().st_size > 0:
                if resume:
                    self.done = read_rows(self.out, self.metrics)
                elif not overwrite:
                    raise FileExistsError(f"{self.out} exists; pass resume=True (--resume) to continue it or "
                                          f"overwrite=True (--overwrite) to start again")
        self.began = time.perf_counter()
        index_ref, index_dist = frame_index(reference), frame_index(distorted)
        n_ref = len(index_ref["pts"]) if index_ref["seekable"] else (info.frames or len(index_ref["pts"]))
        stop = n_ref if selection.end is None else min(n_ref, selection.end)
        first = max(selection.start, (self.done[-1]["frame"] + 1) if self.done else 0)
        ranges = plan_ranges(first, stop, frames_per_task, options.get("batch_size", 8), selection.every,
                             selection.start)
        if ranges and selection.end is None:
            ranges[-1] = (ranges[-1][0], None)  # the last range runs to the end of the stream: checks as one pass
        elif not ranges and selection.end is None:
            ranges = [(first, None)]  # nothing left to score; still the end-of-stream checks of a single pass
        self.ranges = ranges
        for what, path, index in (("reference", reference, index_ref), ("distorted", distorted, index_dist)):
            if len(ranges) > 1 and (not index["seekable"] or index["keyframes"][-1] == 0):
                print(f"turboiqa: the {what} video {path} has no keyframe after frame 0 a range can seek to"
                      f"{'' if index['seekable'] else ' (or its timestamps cannot identify frames)'}: each of the "
                      f"{len(ranges)} ranges decodes it from the start (exact, but decoding grows with the square "
                      f"of the length); --frames-per-task ≥ its length makes it one task", file=sys.stderr)
        ref_ix, dist_ix = ray.put(index_ref), ray.put(index_dist)
        self.jobs = [(str(distorted), str(reference), self.metrics, a, b, dist_ix, ref_ix, task_options)
                     for a, b in ranges]  # _video_task's arguments
        self.total = selection.count(info.frames)
        if self.out is not None:
            handle = open_output(self.out, "a" if self.done else "w")
        self.handle = handle
        fields = row_fields(self.metrics)
        self.writer = RowWriter(fmt, self.metrics, handle, fields=fields, header=not self.done) if handle else None
        self.echo = RowWriter("csv", self.metrics, echo, fields=fields) if echo is not None else None
        self.rows = list(self.done)
        self.error = None
        self.timing = {"frames": 0, "decode_s": 0.0, "score_s": 0.0, "wall_s": 0.0, "tasks": len(self.jobs)}

    def take(self, k, result) -> int:
        """Write the rows of range ``k`` (results come in range order); the number written. After an error the
        rest of the ranges are ignored, as a single pass stops there."""
        from ..video.errors import VideoError

        if self.error is not None:
            return 0
        if isinstance(result, Exception):
            a, b = self.ranges[k]
            self.error = VideoError(f"ray task for frames {a}–{'end' if b is None else b} failed: {result}", frame=a)
            return 0
        rows, error, timing = result
        for row in rows:
            if self.writer:
                self.writer.write(row)
            if self.echo:
                self.echo.write(row)
        self.rows.extend(rows)
        self.timing["frames"] += timing["frames"]
        self.timing["decode_s"] += timing["decode_s"]
        self.timing["score_s"] += timing["wall_s"]
        self.error = error
        return len(rows)

    def finish(self, plot=None) -> dict:
        """Close the file, write the summary (also after an error); the summary."""
        from ..video.output import summarize, summary_path, write_summary

        if self.handle:
            self.handle.close()
            self.handle = None
        t = self.timing
        t["wall_s"] = time.perf_counter() - self.began
        t["scored_fps"] = t["frames"] / t["wall_s"] if t["wall_s"] else None
        summary = {"reference": str(self.reference), "distorted": str(self.distorted), "frames": len(self.rows),
                   "resumed_frames": len(self.done), "metrics": summarize(self.rows, self.metrics),
                   "options": dict(self.options), "timing": t,
                   "ray": {"tasks": len(self.jobs), "frames_per_task": self.frames_per_task}}
        if self.error is not None:
            summary["error"] = str(self.error)
            summary["error_frame"] = self.error.frame
        if self.out is not None:
            write_summary(summary_path(self.out), summary)
        if plot and self.rows and self.error is None:
            from ..video.plot import plot_curves

            target = Path(plot) if not isinstance(plot, bool) else (
                summary_path(self.out).with_name(self.out.stem + ".png") if self.out is not None
                else Path("video_scores.png"))
            plot_curves(self.rows, self.metrics, target,
                        title=f"{Path(self.distorted).name} vs {Path(self.reference).name}")
            summary["plot"] = str(target)
        return summary


def run_video(distorted, reference, metrics=("psnr", "ssim"), out=None, *, resume: bool = False,
              overwrite: bool = False, progress: bool = True, plot=None, echo=None,
              frames_per_task: int = DEFAULT_CHUNK_FRAMES, cpus_per_task: float = 1, gpus_per_task: float = 0,
              max_retries: int = DEFAULT_MAX_RETRIES, ray=None, **options) -> dict:
    """:func:`turboiqa.video.run` on Ray (initialised, see :func:`cluster`), ``distorted`` first as there: same
    rows file (byte-identical), same resume, same summary (computed once at the end; ``timing`` holds the tasks'
    sums and the wall time). The reference is cut into frame ranges of ``frames_per_task`` frames (one task when
    it is not longer)."""
    ray = ray or require_ray()
    job = _VideoJob(ray, distorted=distorted, reference=reference, metrics=metrics, out=out, resume=resume,
                    overwrite=overwrite, echo=echo, frames_per_task=frames_per_task, cpus_per_task=cpus_per_task,
                    gpus_per_task=gpus_per_task, options=options)
    remote = ray.remote(_video_task).options(**_task_options(job.cpus, job.gpus, max_retries))
    bar = _Progress(job.total, len(job.done), "frame", progress)
    try:
        for k, result in ordered_results(ray, remote, job.jobs, slots=_slots(ray, job.cpus, job.gpus),
                                         progress=bar):
            bar.update(job.take(k, result))
            if job.error is not None:
                break
    finally:
        bar.close()
        summary = job.finish(plot)
    if job.error is not None:
        raise job.error
    return summary


def run_videos(pairs, out_dir, metrics=("psnr", "ssim"), *, fmt: str = "csv", resume: bool = False,
               overwrite: bool = False, progress: bool = True, frames_per_task: int = DEFAULT_CHUNK_FRAMES,
               cpus_per_task: float = 1, gpus_per_task: float = 0, max_retries: int = DEFAULT_MAX_RETRIES,
               ray=None, **options) -> list[dict]:
    """A catalogue: every (distorted, reference) of ``pairs`` scored as :func:`run_video` would, into
    ``out_dir/<distorted stem>.<fmt>`` (+ ``.summary.json``), all videos' tasks sharing the cluster (a video up to
    ``frames_per_task`` frames is one task). A video that fails (decoding, pairing) keeps the rows before the error
    and its summary says so (``error``); the others go on. Returns the summaries, in the order of ``pairs``."""
    ray = ray or require_ray()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = [(Path(d), Path(r)) for d, r in pairs]
    names = [d.stem for d, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("run_videos: the distorted videos' file names must differ (they name the output files)")
    videos = []
    try:
        for d, r in pairs:
            videos.append(_VideoJob(ray, distorted=d, reference=r, metrics=metrics,
                                    out=out_dir / f"{d.stem}.{'jsonl' if fmt == 'json' else fmt}", resume=resume,
                                    overwrite=overwrite, echo=None, frames_per_task=frames_per_task,
                                    cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task, options=options))
    except BaseException:
        for v in videos:
            v.finish()
        raise
    owner = [(v, k) for v in videos for k in range(len(v.jobs))]
    jobs = [v.jobs[k] for v, k in owner]
    cpus, gpus = videos[0].cpus if videos else cpus_per_task, videos[0].gpus if videos else gpus_per_task
    remote = ray.remote(_video_task).options(**_task_options(cpus, gpus, max_retries))
    totals = [v.total for v in videos]
    bar = _Progress(sum(totals) if None not in totals else None, sum(len(v.done) for v in videos), "frame", progress)
    try:
        for n, result in ordered_results(ray, remote, jobs, slots=_slots(ray, cpus, gpus), progress=bar):
            video, k = owner[n]
            bar.update(video.take(k, result))
    finally:
        bar.close()
        summaries = [v.finish() for v in videos]
    return summaries


def video(distorted, reference, metrics=("psnr", "ssim"), out=None, *, address: str | None = None,
          num_cpus: int | None = None, **kwargs) -> dict:
    """:func:`run_video` (``distorted`` first) in its own cluster context (``address`` as :func:`cluster`)."""
    with cluster(address, num_cpus=num_cpus) as ray:
        return run_video(distorted=distorted, reference=reference, metrics=metrics, out=out, ray=ray, **kwargs)
