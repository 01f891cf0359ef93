"""Frame-by-frame scoring of a distorted video against its reference.

``turboiqa.video.score(dist, ref, metrics)`` yields one record per frame (notebooks); ``turboiqa.video.run(dist, ref,
...)`` is the job behind ``turboiqa video DIST REF`` (streamed CSV / JSON lines, resume, summary, plot). Distorted
first, reference second, as every turboiqa metric; ``distorted=`` / ``reference=`` keywords work too. Needs PyAV
(``pip install 'turboiqa[video]'``).
"""
from __future__ import annotations

from .decode import StreamInfo, probe
from .errors import VideoDecodeError, VideoError, VideoMismatchError
from .frame_metrics import available_metrics
from .score import ScoreTiming, run, score

__all__ = [
    "ScoreTiming",
    "StreamInfo",
    "VideoDecodeError",
    "VideoError",
    "VideoMismatchError",
    "available_metrics",
    "probe",
    "run",
    "score",
]
