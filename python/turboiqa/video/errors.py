"""Errors of the video job; each names the video and, where it applies, the frame."""
from __future__ import annotations


class VideoError(RuntimeError):
    """Base class. ``frame`` is the 0-based index of the first frame that could not be paired or decoded
    (every frame before it was delivered), or None when the problem is found before the first frame."""

    def __init__(self, message: str, frame: int | None = None, path: str | None = None):
        super().__init__(message)
        self.frame = frame
        self.path = path


class VideoDecodeError(VideoError):
    """A stream is corrupt or truncated: it could not be opened, a packet failed to decode, or it ended before
    the frame count its header declares (or before its partner, when lengths must match)."""


class VideoMismatchError(VideoError, ValueError):
    """Reference and distorted videos cannot be paired as given (frame size, frame rate or length differ)."""
