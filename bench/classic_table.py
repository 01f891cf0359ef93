"""Markdown table of the classic-metric benches (bench_classic_{grad,vsi,vif,pyr}.py), quiet and busy side by side:
turboiqa's default convention against each peer, and the fastest peer's ratio.

Run: python bench/classic_table.py  (reads bench/results-classic-*-cpu[-busy].json)
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
GROUPS = ("grad", "vsi", "vif", "pyr")


def rows_of(data: dict) -> dict:
    """{metric: {size: {implementation: ms}}} from any of the four scripts' layouts."""
    if "results" in data:  # pyr: {metric: {size: {impl: {median_ms, ...}}}}
        return {m: {s: {i: v["median_ms"] for i, v in impls.items()} for s, impls in sizes.items()}
                for m, sizes in data["results"].items()}
    median = data["median_ms"]
    first = next(iter(median))
    if "x" in first:  # vif: {size: {"turboiqa vif": ms, "piq 0.8.0 vif_p": ms, ...}}
        out = {}
        for size, impls in median.items():
            for name, ms in impls.items():
                metric = name.split(" (")[0].split()[-1]
                metric = "vif_p" if metric in ("vif_p", "vifp") else "vif"
                label = name.replace(f" {metric}", "", 1) if name.startswith("turboiqa") else name
                label = label.replace(" vifp", "").replace(" vif_p", "").replace(" vif", "")
                out.setdefault(metric, {}).setdefault(size, {})[label] = ms
        return out
    return median


def is_peer(name: str) -> bool:
    return not name.startswith("turboiqa")


def main() -> None:
    print("| metric | size | turboiqa quiet ms | peers quiet ms (peer / turboiqa) | turboiqa busy ms | fastest peer busy |")
    print("|---|---|---|---|---|---|")
    for group in GROUPS:
        quiet = rows_of(json.loads((HERE / f"results-classic-{group}-cpu.json").read_text()))
        busy_file = HERE / f"results-classic-{group}-cpu-busy.json"
        busy = rows_of(json.loads(busy_file.read_text())) if busy_file.exists() else {}
        for metric, sizes in quiet.items():
            for size, impls in sizes.items():
                ours = impls["turboiqa"]
                peers = ", ".join(f"{n} {ms:.1f} ({ms / ours:.1f}×)" for n, ms in impls.items() if is_peer(n))
                b = busy.get(metric, {}).get(size, {})
                if any(is_peer(n) for n in b):
                    name, ms = min(((n, v) for n, v in b.items() if is_peer(n)), key=lambda t: t[1])
                    busy_cells = f"{b['turboiqa']:.1f} | {name} {ms:.1f} ({ms / b['turboiqa']:.1f}×)"
                else:
                    busy_cells = "— | —"
                if b and not any(is_peer(n) for n in b):
                    busy_cells = f"{b['turboiqa']:.1f} | —"
                print(f"| {metric} | {size} | **{ours:.1f}** | {peers or '—'} | {busy_cells} |")


if __name__ == "__main__":
    main()
