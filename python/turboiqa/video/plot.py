"""Per-frame curves of a video run (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

from ..plotting import pyplot, save


def plot_curves(rows, metrics, path, title: str = "") -> Path:
    """One panel per metric, frame index on x; saved to ``path`` (format from its suffix)."""
    plt = pyplot("video")
    frames = [r["frame"] for r in rows]
    fig, axes = plt.subplots(len(metrics), 1, sharex=True, figsize=(9, 2.2 * len(metrics) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], metrics):
        ax.plot(frames, [r[name] for r in rows], linewidth=1)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("frame")
    if title:
        fig.suptitle(title)
    return save(fig, path)
