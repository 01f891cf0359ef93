"""Scale-out on Ray: the ``evaluate``, ``video`` and ``score`` jobs split into Ray tasks, with the same output files
as a single process.

``turboiqa evaluate|video|score ... --ray`` starts a local Ray cluster on this machine; ``--ray ADDRESS`` (``auto``,
``HOST:6379`` or ``ray://HOST:10001``) joins an existing one. Needs ``pip install 'turboiqa[ray]'``; every node
needs turboiqa and the input files at the same paths (a shared file system or the same copy everywhere).

How work is cut:

* dataset pairs (``evaluate``): runs of consecutive pairs, a multiple of ``batch_size`` long, each scored by the
  evaluator's own code (:func:`turboiqa.eval.runner.score_rows`: decoding threads, reference cache, batching of
  same-size pairs, per-pair failures in the ``error`` column);
* image pairs (``score``): runs of consecutive pairs, each pair scored as the single-process command does;
* videos: a video no longer than ``chunk_frames`` is one task; a longer one is cut into frame ranges (a multiple of
  ``batch_size × every`` frames, so the batches are those of a single pass). A range task seeks to the nearest
  keyframe at or before its first frame and decodes from there, identifying frames by their presentation
  timestamp, so each frame gets the index and score of a single pass (it steps back one keyframe at a time if an
  open GOP hides frames, and decodes from the start when the timestamps cannot identify frames).

Exactly-once output: the driver alone writes the file. Task results arriving out of order are buffered and written
in the single-process order, each run of rows once, then flushed; the file is byte-identical to a single-process
run. A task whose worker dies is re-run by Ray (``max_retries``); its result is still received once. ``resume``
reads what is on disk, as the single-process jobs do, and submits only what is missing. The summary and plots are
computed once, by the driver, at the end.

The package: :mod:`.cluster` (starting or joining a cluster, task placement, results in order), :mod:`.dataset`
(``evaluate`` and ``score`` pairs), :mod:`.videos` (``video``: frame ranges), :mod:`.command` (the ``--ray`` options).
"""
from __future__ import annotations

from .cluster import (DEFAULT_CHUNK_FRAMES, DEFAULT_MAX_RETRIES, RAY_INSTALL, ClusterUnreachable, RayNotInstalled,
                      cluster, cluster_resources, ordered_results, require_ray)
from .command import add_ray_arguments, format_resources, ray_options
from .dataset import chunk, evaluate_dataset, score_dataset, score_pairs
from .videos import frame_index, plan_ranges, run_video, run_videos, score_range, video

__all__ = ["DEFAULT_CHUNK_FRAMES", "DEFAULT_MAX_RETRIES", "RAY_INSTALL", "ClusterUnreachable", "RayNotInstalled",
           "add_ray_arguments", "chunk", "cluster", "cluster_resources", "evaluate_dataset", "format_resources",
           "frame_index", "ordered_results", "plan_ranges", "ray_options", "require_ray", "run_video", "run_videos",
           "score_dataset", "score_pairs", "score_range", "video"]
