"""Dataset folders built from the shared data, for tests and benchmarks (bench/ puts tests/ on sys.path, as it does
for peer_stubs). Plain functions: no pytest, no conftest, so a benchmark can import them."""
from __future__ import annotations

import csv
from pathlib import Path


def build_tid_folder(root: Path, tid2013: Path, per_reference: int = 12) -> int:
    """A TID2013-layout folder at ``root`` holding, for each of the references listed in ``tid2013/mos.csv``,
    ``per_reference`` renamed copies (symlinks) of its distorted image (6 references in the shared data: 72 pairs by
    default). MOS are made distinct so that a correlation report has something to rank. Returns the pair count."""
    with open(tid2013 / "mos.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    lines = []
    for ref_id, row in enumerate(rows, 1):
        (root / "reference_images" / f"I{ref_id:02d}.BMP").symlink_to(tid2013 / "reference" / row["ref_img"])
        for k in range(per_reference):
            name = f"i{ref_id:02d}_{k // 5 + 1:02d}_{k % 5 + 1}.bmp"
            (root / "distorted_images" / name).symlink_to(tid2013 / "distorted" / row["dist_img"])
            lines.append(f"{float(row['mos']) + (k * 7 % 12) / 10:.5f} {name}\n")
    (root / "mos_with_names.txt").write_text("".join(lines))
    return len(lines)
