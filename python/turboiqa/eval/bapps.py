"""BAPPS (Zhang et al., CVPR 2018, the LPIPS dataset): two-alternative forced choice (2AFC) triplets and
just-noticeable-difference (JND) pairs — human *judgements*, not MOS.

2AFC: each triplet (ref, p0, p1) carries ``judge`` = fraction of subjects who found p1 closer to ref; a metric
scores ``judge`` when it prefers p1, ``1 − judge`` when it prefers p0, ½ on a tie (LPIPS ``score_2afc_dataset``).
JND: each pair (p0, p1) carries ``same`` = fraction of subjects who saw no difference; the metric's distance ranks
the pairs and the score is the average precision of finding the "same" pairs first (LPIPS ``score_jnd_dataset``).

For the runner a triplet becomes two :class:`~turboiqa.eval.datasets.Pair` rows (p0 vs ref, p1 vs ref) with
``score = judge``; a JND pair becomes one row (p1 vs p0) with ``score = same``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import DatasetLayoutError, Pair

CATEGORIES_2AFC = ("traditional", "cnn", "superres", "deblur", "frameinterp", "colorization", "mix")
CATEGORIES_JND = ("traditional", "cnn")


def _npy_value(path: Path) -> float:
    return float(np.asarray(np.load(path)).ravel()[0])


class _BAPPS:
    name = "BAPPS"
    score_name = "judgement"
    score_higher_is_better = True

    def __init__(self, root, split: str = "val", categories=None):
        self.root = Path(root).expanduser()
        if self.root.is_dir() and (self.root / "dataset").is_dir() and not (self.root / self.kind).is_dir():
            self.root = self.root / "dataset"  # the repository checkout rather than its dataset/ folder
        self.split = split
        base = self.root / self.kind / split
        if not base.is_dir():
            raise DatasetLayoutError(f"{self.name}: missing folder {base}.\n{self.expected()}")
        present = sorted(p.name for p in base.iterdir() if p.is_dir())
        wanted = present if categories is None else list(categories)
        absent = [c for c in wanted if c not in present]
        if absent:
            raise DatasetLayoutError(f"{self.name}: missing category folder(s) {[str(base / c) for c in absent]}."
                                     f"\n{self.expected()}")
        self._items = []  # (category, stem): judgements are read lazily, one .npy per item
        for category in wanted:
            label_dir = base / category / self.label
            if not label_dir.is_dir():
                raise DatasetLayoutError(f"{self.name}: missing folder {label_dir}.\n{self.expected()}")
            self._items += [(category, p.stem) for p in sorted(label_dir.glob("*.npy"))]
        if not self._items:
            raise DatasetLayoutError(f"{self.name}: no {self.label}/*.npy files under {base}.\n{self.expected()}")

    def expected(self) -> str:
        return f"Expected layout of {self.name} (the LPIPS repository's dataset/ folder):\n{self.layout.rstrip()}"

    def _file(self, category: str, folder: str, stem: str, suffix: str = ".png") -> Path:
        path = self.root / self.kind / self.split / category / folder / f"{stem}{suffix}"
        if not path.is_file():
            raise DatasetLayoutError(f"{self.name}: missing file {path}.\n{self.expected()}")
        return path

    def _key(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def records(self) -> list[dict]:
        return [{"distortion": c, "item": s} for c, s in self._items]


class BAPPS2AFC(_BAPPS):
    name = "BAPPS-2AFC"
    kind, label = "2afc", "judge"
    layout = """\
  ROOT/2afc/{train,val}/{traditional,cnn,superres,deblur,frameinterp,colorization,mix}/
        ref/000000.png  p0/000000.png  p1/000000.png  judge/000000.npy (fraction preferring p1)"""

    def __len__(self) -> int:
        return 2 * len(self._items)

    def __getitem__(self, index: int) -> Pair:
        category, stem = self._items[index // 2]
        side = "p0" if index % 2 == 0 else "p1"
        ref = self._file(category, "ref", stem)
        dist = self._file(category, side, stem)
        judge = _npy_value(self._file(category, "judge", stem, ".npy"))
        return Pair(ref, dist, judge, None, category, self._key(dist))


class BAPPSJND(_BAPPS):
    name = "BAPPS-JND"
    kind, label = "jnd", "same"
    layout = """\
  ROOT/jnd/val/{traditional,cnn}/p0/000000.png  p1/000000.png  same/000000.npy (fraction judging them the same)"""

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Pair:
        category, stem = self._items[index]
        p0, p1 = self._file(category, "p0", stem), self._file(category, "p1", stem)
        same = _npy_value(self._file(category, "same", stem, ".npy"))
        return Pair(p0, p1, same, None, category, self._key(p1))


BAPPS_DATASETS = {"bapps-2afc": BAPPS2AFC, "bapps-jnd": BAPPSJND}


def two_afc_score(d0, d1, judge) -> float:
    """Mean agreement with humans; ``d0``/``d1`` are distances of p0/p1 to the reference (lower = closer)."""
    d0, d1, judge = (np.asarray(a, dtype=np.float64).ravel() for a in (d0, d1, judge))
    return float(np.mean((d0 < d1) * (1 - judge) + (d1 < d0) * judge + (d0 == d1) * 0.5))


def jnd_map(distance, same) -> float:
    """Average precision of retrieving the 'same' pairs by increasing distance (VOC AP with the precision
    envelope, as LPIPS)."""
    distance, same = (np.asarray(a, dtype=np.float64).ravel() for a in (distance, same))
    order = np.argsort(distance, kind="stable")
    hits = same[order]
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    recall = tp / same.sum()
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def summarise_bapps(kind: str, rows: list[dict], metric: str, lower_is_better: bool) -> dict:
    """Per-category and overall 2AFC score / JND mAP of ``metric`` from scored rows (runner output)."""
    sign = 1.0 if lower_is_better else -1.0  # distances: lower = more similar
    by_category: dict[str, list] = {}
    if kind == "bapps-2afc":
        triplets: dict[str, dict] = {}
        for row in rows:
            side = Path(row["distorted"]).parent.name
            t = triplets.setdefault(row["reference"], {"category": row["distortion"], "judge": row["mos"]})
            t[side] = sign * row[metric]
        for t in triplets.values():
            if "p0" in t and "p1" in t:
                by_category.setdefault(t["category"], []).append((t["p0"], t["p1"], t["judge"]))
        score = lambda items: two_afc_score(*np.array(items).T)
    else:
        for row in rows:
            by_category.setdefault(row["distortion"], []).append((sign * row[metric], row["mos"]))
        score = lambda items: jnd_map(*np.array(items).T)
    out = {c: {"n": len(v), "score": score(v)} for c, v in sorted(by_category.items())}
    everything = [item for v in by_category.values() for item in v]
    out["all"] = {"n": len(everything), "score": score(everything) if everything else float("nan")}
    return out
