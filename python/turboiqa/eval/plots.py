"""Figures of an evaluation (matplotlib, Agg backend — no display needed): metric score vs MOS with the fitted
logistic, and per-distortion SROCC bars."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..plotting import pyplot, save


def _pyplot():
    return pyplot("eval")


def scatter_plot(summary, rows, path, score_name: str = "MOS", title: str = "") -> Path:
    """One panel per metric: raw score vs raw MOS, coloured by distortion, with the fitted mapping."""
    plt = _pyplot()
    metrics = list(summary["metrics"])
    cols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 4.0 * nrows), squeeze=False)
    usable = [r for r in rows if not r.get("error") and r.get("mos") is not None
              and all(isinstance(r.get(m), float) and math.isfinite(r[m]) for m in metrics)]
    types = sorted({r.get("distortion") or "all" for r in usable})
    palette = (list(plt.get_cmap("tab10").colors) if len(types) <= 10 else
               list(plt.get_cmap("tab20").colors) + list(plt.get_cmap("tab20b").colors))  # 40 distinct colours
    colour = {t: palette[k % len(palette)] for k, t in enumerate(types)}
    mos = np.array([r["mos"] for r in usable])
    for ax, m in zip(axes.ravel(), metrics):
        e = summary["metrics"][m]
        x = np.array([r[m] for r in usable])
        ax.scatter(x, mos, s=9 if len(x) > 200 else 28, alpha=0.6 if len(x) > 200 else 0.9, linewidths=0,
                   c=[colour[r.get("distortion") or "all"] for r in usable])
        fit = e.get("_fit")
        if fit is not None and np.ptp(x) > 0:
            grid = np.linspace(x.min(), x.max(), 300)
            so, sq = e["orientation"]["metric"], e["orientation"]["mos"]
            ax.plot(grid, sq * fit(so * grid), color="black", lw=1.6, label=f"{fit.kind}-param logistic")
            ax.legend(loc="best", fontsize=8, frameon=False)
        ax.set_xlabel(f"{m}" + (" (distance)" if e["orientation"]["metric"] < 0 else ""))
        ax.set_ylabel(score_name)
        ax.set_title(f"{m}: SROCC {e['srocc']:.3f}  PLCC {e['plcc']:.3f}", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    if len(types) <= 30 and len(types) > 1:
        handles = [plt.Line2D([], [], ls="", marker="o", color=colour[t], label=t) for t in types]
        fig.legend(handles=handles, loc="lower center", ncol=min(4, len(types)), fontsize=7, frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
        fig.subplots_adjust(bottom=0.12 + 0.025 * math.ceil(len(types) / 4))
    if title:
        fig.suptitle(title)
    return save(fig, path, rect=(0, 0.04 + 0.03 * math.ceil(len(types) / 4) if len(types) > 1 else 0, 1, 1))


def distortion_plot(summary, path, title: str = "") -> Path:
    """Grouped horizontal bars: SROCC per distortion type and metric (types with < 3 pairs show no bar)."""
    plt = _pyplot()
    metrics = list(summary["metrics"])
    types = sorted({t for e in summary["metrics"].values() for t in e["per_distortion"]}, key=str)
    height = 0.8 / max(1, len(metrics))
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.32 * len(types) * max(1, len(metrics) / 2) + 1.2)))
    y = np.arange(len(types))
    for k, m in enumerate(metrics):
        per = summary["metrics"][m]["per_distortion"]
        values = [per.get(t, {}).get("srocc", float("nan")) for t in types]
        offsets = y + (k - (len(metrics) - 1) / 2) * height
        ax.barh(offsets, np.nan_to_num(values, nan=0.0), height=height, label=m)
        for off, v in zip(offsets, values):
            if not np.isfinite(v):
                ax.text(0.01, off, "n/a (n < 3)", va="center", fontsize=6, color="grey")
    labels = [f"{t} (n={next(iter(summary['metrics'].values()))['per_distortion'][t]['n']})" for t in types]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(min(-0.1, ax.get_xlim()[0]), 1.05)
    ax.set_xlabel("SROCC within distortion type")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return save(fig, path)
