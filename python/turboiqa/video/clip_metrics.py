"""Clip metrics of the video job: ColorVideoVDP's one JOD per clip, computed while the frames stream past.

cvvdp is temporal: every frame's DKL image goes through causal 250 ms filters, so a frame's score depends on the
frames before it and the clip's JOD pools all frames (normalised 2-norm over time). It cannot be a per-frame column
without becoming a different metric, so the video job scores it as one value per clip, in the same single pass as
the per-frame metrics: :class:`TemporalCvvdp` keeps the filter's window of DKL frames (about fps/4 frames per video)
between batches and the per-frame pooled differences (one number per frame). The result equals
``turboiqa.cvvdp(dist_clip, ref_clip, fps=fps)`` on the whole clip (the frames scored, in order, at the stream's
frame rate; the frames before the first are copies of it, cvvdp's 'replicate' padding). It therefore needs
consecutive frames (``every=1``) and one pass (no ``resume``, no frame ranges spread over Ray tasks).
"""
from __future__ import annotations

import torch

from .. import display as _display


class TemporalCvvdp:
    """ColorVideoVDP JOD of a clip fed batch by batch (B×C×H×W consecutive frames, distorted and reference, uint8
    with data_range 255 or float in [0, data_range]), for ``display`` (name, dict or Display) at ``fps``."""

    name = "cvvdp"

    def __init__(self, display="standard_4k", fps: float | None = None):
        if fps is None or not fps > 0:
            raise ValueError(f"cvvdp on a video needs its frame rate; the reference stream declares {fps!r}")
        self.display = _display.resolve_display(display)
        self.fps = float(fps)
        self._taps = None
        self._hist = None  # the L − 1 DKL frames (2 × 3 × H × W each: test, reference) before the next batch
        self._q_frame = []
        self._first = None

    @property
    def frames(self) -> int:
        return sum(q.numel() for q in self._q_frame)

    def update(self, dist: torch.Tensor, ref: torch.Tensor, data_range: float = 255) -> None:
        from ..metrics import cvvdp as _c
        from ..metrics.pu21 import _check_inputs

        photo = self.display.photometry
        dist, ref = _check_inputs(dist, ref, data_range, photo)
        k, _, h, w = dist.shape
        if min(h, w) < 4:
            raise ValueError(f"cvvdp needs frames of at least 4×4 pixels, got {h}×{w}")
        dkl = torch.stack([_c._dkl(dist, photo, data_range), _c._dkl(ref, photo, data_range)])  # 2 × k × 3 × H × W
        if self._taps is None:
            self._first = (dist[:1], ref[:1], data_range)  # a one-frame clip is scored as an image (as cvvdp)
            self._taps = _c._temporal_taps(self.fps, dkl.dtype, dkl.device)  # L × 4
        filt, self._hist = _c._temporal_filter(self._hist, dkl, self._taps)  # 2 × k × 4 × H × W
        freqs = _c.band_frequencies(h, w, self.display.geometry.ppd)
        q, _ = _c._band_differences(filt.reshape(2 * k, 4, h, w), freqs)  # k × 4 × bands
        prm = _c.parameters()
        band_w = torch.ones(q.shape[1:], dtype=q.dtype, device=q.device)
        band_w[:, -1] = torch.tensor(prm["baseband_weight"][:4], dtype=q.dtype, device=q.device)
        chrom = prm["ch_chrom_w"]
        ch_w = torch.tensor([1.0, chrom, chrom, prm["ch_trans_w"]], dtype=q.dtype, device=q.device).view(4, 1)
        q_ch = _c._pool(q * ch_w * band_w, prm["beta_sch"], -1, False)  # k × 4
        self._q_frame.append(_c._pool(q_ch, prm["beta_tch"], -1, False).detach())  # k

    def result(self) -> float | None:
        """The clip's JOD (None before any frame). A single frame is scored as an image, as cvvdp does."""
        from ..metrics import cvvdp as _c

        if not self._q_frame:
            return None
        q_frame = torch.cat(self._q_frame)
        if q_frame.numel() == 1:
            dist, ref, data_range = self._first
            return float(_c.cvvdp(dist, ref, data_range, display=self.display))
        prm = _c.parameters()
        return float(_c.met2jod(_c._pool(q_frame, prm["beta_t"], -1, True)))
