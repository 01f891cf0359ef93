"""Turn pytest-benchmark JSON files into a markdown table (median ms, ratio to turboiqa).

Later files override earlier ones row by row (re-timing the fast rows without re-running the slow peers).
"""
import json
import sys
from collections import defaultdict

PREFERRED = ["turboiqa", "turboiqa-reference", "pytorch-msssim", "piq", "piqa", "kornia", "torchmetrics",
             "scikit-image", "frame-analytics"]
LABELS = {"turboiqa-reference": "reference path"}


def main(paths):
    groups = defaultdict(dict)
    for path in paths:
        with open(path) as fh:
            data = json.load(fh)
        for b in data["benchmarks"]:
            groups[b["group"]][b["params"]["impl"]] = b["stats"]["median"] * 1e3
    seen = {impl for rows in groups.values() for impl in rows}
    order = [impl for impl in PREFERRED if impl in seen] + sorted(seen - set(PREFERRED))
    print("| metric, input, device | " + " | ".join(LABELS.get(i, i) for i in order) + " |")
    print("|---" * (len(order) + 1) + "|")
    for group, rows in groups.items():
        base = rows.get("turboiqa")
        cells = []
        for impl in order:
            if impl not in rows:
                cells.append("—")
            elif impl == "turboiqa" or base is None:
                cells.append(f"**{rows[impl]:.2f}**")
            else:
                value = f"{rows[impl]:.2f}" if rows[impl] < 10 else f"{rows[impl]:.1f}"
                cells.append(f"{value} ({rows[impl] / base:.1f}×)")
        print(f"| {group} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
