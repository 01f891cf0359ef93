"""Turn a pytest-benchmark JSON into the markdown table of bench/README.md (median ms, ratio to turboiqa)."""
import json
import sys
from collections import defaultdict


def main(paths):
    """Later files override earlier ones row by row (re-timing the fast rows without re-running the slow peers)."""
    groups = defaultdict(dict)
    for path in paths:
        with open(path) as fh:
            data = json.load(fh)
        for b in data["benchmarks"]:
            groups[b["group"]][b["params"]["impl"]] = b["stats"]["median"] * 1e3
    print("| metric, input, device | " + " | ".join(["turboiqa", "reference path", "pytorch-msssim", "piq", "kornia",
                                                     "torchmetrics", "scikit-image", "frame-analytics"]) + " |")
    print("|---" * 9 + "|")
    order = ["turboiqa", "turboiqa-reference", "pytorch-msssim", "piq", "kornia", "torchmetrics", "scikit-image",
             "frame-analytics"]
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
