"""The one place the jobs get matplotlib from: headless (Agg) pyplot and a save helper."""
from __future__ import annotations

from pathlib import Path


def pyplot(extra: str):
    """matplotlib.pyplot on the Agg backend; a missing matplotlib names the extra that brings it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(f"plots need matplotlib: pip install 'turboiqa[{extra}]' (or matplotlib)") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, rect=None) -> Path:
    """Lay out (``rect``: the area tight_layout may fill), write (format from the suffix) and close ``fig``."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=rect)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
