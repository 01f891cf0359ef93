"""Result rows streamed to a file as they are produced (the score, video and evaluate jobs never lose finished
work), and opening that file with an error that says it is the output that failed."""
from __future__ import annotations

import csv
import json
from pathlib import Path


class OutputError(OSError):
    """The output file cannot be opened for writing (exit code 3 of the jobs); the message names it."""


def open_output(path, mode: str = "w"):
    """``open(path, mode)`` for a results file (text, newline=''), raising :class:`OutputError` naming the path."""
    try:
        return open(path, mode, newline="")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise OutputError(f"cannot write --out {path}: {exc.strerror or exc}") from exc


class RowWriter:
    """Streams rows as they are produced (a long folder run never loses finished work).

    ``fields`` replaces the image columns (the video job writes frame, pts, metrics); ``header=False`` appends to
    a CSV that already has its header (a resumed run)."""

    def __init__(self, fmt: str, metrics, out, fields=None, header: bool = True):
        self.fmt, self.out = fmt, out
        self.fields = list(fields) if fields is not None else ["reference", "distorted", *metrics, "error"]
        if fmt == "csv":
            self.csv = csv.DictWriter(out, fieldnames=self.fields, extrasaction="ignore")
            if header:
                self.csv.writeheader()

    def write(self, row: dict) -> None:
        if self.fmt == "csv":
            self.csv.writerow(row)
        elif self.fmt == "json":
            self.out.write(json.dumps(row) + "\n")
        else:
            values = "  ".join(f"{k}={row[k]:.6f}" for k in self.fields[2:-1] if k in row)
            name = Path(row["distorted"]).name
            if "error" in row:  # either file may be the bad one: name both, in the command's order (DIST REF)
                name = f"{name} vs {Path(row['reference']).name}"
            self.out.write(f"{name}: {values}" if "error" not in row else f"{name}: ERROR {row['error']}")
            self.out.write("\n")
        self.out.flush()
