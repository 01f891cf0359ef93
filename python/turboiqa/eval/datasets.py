"""Loaders for the standard full-reference IQA datasets, reading each dataset's own files as released.

Every loader takes the folder the archive was unpacked into (``root``), reads only the label files when it is
created (a missing one raises :class:`DatasetLayoutError` naming the file and drawing the expected layout) and
yields :class:`Pair` records lazily; images are decoded only by :meth:`Pair.load`. File names are matched
case-insensitively (TID2013 mixes ``I25.BMP``/``i25.bmp``, CSIQ's list says ``AWGN`` for the ``awgn`` folder).

``score_higher_is_better`` tells the direction of the subjective score (False for LIVE and CSIQ DMOS).
"""
from __future__ import annotations

import csv
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetLayoutError(FileNotFoundError):
    """A label or image file is not where the dataset's own layout puts it."""


class DatasetLabelError(ValueError):
    """A label file is there but one of its rows cannot be read (the message names the file and the line)."""


@contextmanager
def _label_row(dataset: str, path: Path, line_no: int, text: str, form: str):
    """Turns any parse failure of one label row into a :class:`DatasetLabelError` naming file, line and form."""
    try:
        yield
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        if isinstance(exc, DatasetLabelError):
            raise
        raise DatasetLabelError(f"{dataset}: line {line_no} of {path} is not {form}: {text!r} ({exc})") from None


@dataclass(frozen=True)
class Pair:
    reference: Path
    distorted: Path
    score: float
    std: float | None
    distortion: str
    key: str                     # distorted path relative to the root: the row key of the scores CSV

    def read(self):
        """(distorted, reference) as :class:`~turboiqa.images.DecodedImage` (pixels, bit depth, peak); files of
        different bit depths raise :class:`~turboiqa.images.ImageReadError`."""
        from ..images import read_pair

        return read_pair(self.distorted, self.reference)

    def load(self):
        """(distorted, reference) as 1×C×H×W tensors: uint8 for 8-bit files, float32 for 16-bit (peak 65535,
        see :meth:`read`)."""
        distorted, reference = self.read()
        return distorted.pixels, reference.pixels


class _CaseInsensitiveFiles:
    """Resolves ``root/relative`` even when the case of any component differs; directory listings are cached."""

    def __init__(self, root: Path):
        self.root = root
        self._listings: dict[Path, dict[str, str]] = {}

    def _entries(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                self._listings[folder] = {name.lower(): name for name in os.listdir(folder)}
            except OSError:
                self._listings[folder] = {}
        return self._listings[folder]

    def resolve(self, relative: str) -> Path | None:
        path = self.root / relative
        if path.exists():
            return path
        current = self.root
        for part in Path(relative).parts:
            name = self._entries(current).get(part.lower())
            if name is None:  # the folder may have changed since it was listed: look once more
                self._listings.pop(current, None)
                name = self._entries(current).get(part.lower())
            if name is None:
                return None
            current = current / name
        return current


class IQADataset:
    """Base class: subclasses set the class attributes and implement :meth:`_read_labels`."""

    name = "dataset"
    score_name = "MOS"
    score_higher_is_better = True
    layout = ""

    def __init__(self, root):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetLayoutError(f"{self.name}: root folder {self.root} does not exist.\n{self.expected()}")
        self._files = _CaseInsensitiveFiles(self.root)
        self._records = self._read_labels()
        if not self._records:
            raise DatasetLayoutError(f"{self.name}: the label files under {self.root} list no images.\n"
                                     f"{self.expected()}")

    def expected(self) -> str:
        return f"Expected layout of {self.name} (as released):\n{self.layout.rstrip()}"

    def label_file(self, *candidates: str) -> Path:
        """The first of ``candidates`` present under the root (case-insensitive), else a clear error."""
        for name in candidates:
            path = self._files.resolve(name)
            if path is not None and path.is_file():
                return path
        raise DatasetLayoutError(f"{self.name}: missing label file {self.root / candidates[0]}"
                                 + (f" (or {', '.join(candidates[1:])})" if len(candidates) > 1 else "")
                                 + f".\n{self.expected()}")

    def _read_labels(self) -> list[tuple]:
        """[(reference_rel, distorted_rel, score, std or None, distortion)]"""
        raise NotImplementedError

    def _path(self, relative: str) -> Path:
        path = self._files.resolve(relative)
        if path is None:
            raise DatasetLayoutError(f"{self.name}: missing image {self.root / relative}.\n{self.expected()}")
        return path

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> Pair:
        ref, dist, score, std, distortion = self._records[index]
        return Pair(self._path(ref), self._path(dist), float(score), None if std is None else float(std),
                    distortion, dist)

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def records(self) -> list[dict]:
        """The label table without touching images: reference, distorted, score, std, distortion."""
        return [{"reference": r, "distorted": d, "score": s, "std": sd, "distortion": t}
                for r, d, s, sd, t in self._records]

    def missing_images(self, limit: int = 10) -> list[str]:
        """Up to ``limit`` image paths (relative) that are not on disk."""
        out = []
        for ref, dist, *_ in self._records:
            for rel in (ref, dist):
                if self._files.resolve(rel) is None and rel not in out:
                    out.append(rel)
                    if len(out) >= limit:
                        return out
        return out


TID_TYPES = ["Additive Gaussian noise", "Additive noise in colour components", "Spatially correlated noise",
             "Masked noise", "High frequency noise", "Impulse noise", "Quantization noise", "Gaussian blur",
             "Image denoising", "JPEG compression", "JPEG2000 compression", "JPEG transmission errors",
             "JPEG2000 transmission errors", "Non eccentricity pattern noise",
             "Local block-wise distortions of different intensity", "Mean shift (intensity shift)",
             "Contrast change", "Change of color saturation", "Multiplicative Gaussian noise", "Comfort noise",
             "Lossy compression of noisy images", "Image color quantization with dither",
             "Chromatic aberrations", "Sparse sampling and reconstruction"]


class TID2013(IQADataset):
    """Ponomarenko et al. 2015: 25 references × 24 distortions × 5 levels, MOS 0–9 (higher = better)."""

    name = "TID2013"
    n_types = 24
    layout = """\
  ROOT/
    mos_with_names.txt      one line per image: "<MOS> <name>", e.g. "5.51429 i01_01_1.bmp"
    mos_std.txt             one standard deviation per line, same order (optional for TID2008)
    reference_images/I01.BMP … I25.BMP
    distorted_images/i01_01_1.bmp … (iRR_TT_L.bmp: reference, distortion type, level)"""
    image_name = re.compile(r"i(\d\d)_(\d\d)_(\d+)\.bmp", re.IGNORECASE)

    def _read_labels(self):
        names_file = self.label_file("mos_with_names.txt")
        std_path = self._files.resolve("mos_std.txt")
        lines = [(k + 1, ln) for k, ln in enumerate(names_file.read_text().splitlines()) if ln.strip()]
        stds = None
        if std_path is not None:
            stds = []
            for line_no, line in enumerate(std_path.read_text().splitlines(), 1):
                if line.strip():
                    with _label_row(self.name, std_path, line_no, line, "one standard deviation"):
                        stds.append(float(line))
            if len(stds) != len(lines):
                raise DatasetLayoutError(f"{self.name}: {std_path} has {len(stds)} values but {names_file} "
                                         f"has {len(lines)} lines.\n{self.expected()}")
        records = []
        for k, (line_no, line) in enumerate(lines):
            with _label_row(self.name, names_file, line_no, line, "'<MOS> iRR_TT_L.bmp'"):
                mos, name = line.split()
                match = self.image_name.fullmatch(name)
                if match is None:
                    raise ValueError(f"{name!r} is not named iRR_TT_L.bmp")
                ref_id, type_id = match.group(1), int(match.group(2))
                distortion = TID_TYPES[type_id - 1] if 1 <= type_id <= self.n_types else f"type {type_id}"
                records.append((f"reference_images/I{ref_id}.BMP", f"distorted_images/{name}", float(mos),
                                None if stds is None else stds[k], distortion))
        return records


class TID2008(TID2013):
    """Ponomarenko et al. 2009: 25 references × 17 distortions × 4 levels, MOS 0–9 (higher = better)."""

    name = "TID2008"
    n_types = 17


KADID_TYPES = ["Gaussian blur", "Lens blur", "Motion blur", "Color diffusion", "Color shift",
               "Color quantization", "Color saturation (HSV)", "Color saturation (LAB)", "JPEG2000", "JPEG",
               "White noise", "White noise in color component", "Impulse noise", "Multiplicative noise",
               "Denoise", "Brighten", "Darken", "Mean shift", "Jitter", "Non-eccentricity patch", "Pixelate",
               "Quantization", "Color block", "High sharpen", "Contrast change"]


class KADID10k(IQADataset):
    """Lin, Hosu & Saupe 2019: 81 references × 25 distortions × 5 levels; ``dmos`` is on the 1–5 ACR scale with
    higher = better despite its name; ``var`` is the variance of the ratings (std = √var)."""

    name = "KADID-10k"
    layout = """\
  ROOT/                     (the unpacked kadid10k/ folder)
    dmos.csv                header "dist_img,ref_img,dmos,var"
    images/I01.png … I81.png and I01_01_01.png … (IRR_TT_LL.png: reference, distortion type, level)"""

    def _read_labels(self):
        path = self.label_file("dmos.csv")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"dist_img", "ref_img", "dmos"} - set(reader.fieldnames or [])
            if missing:
                raise DatasetLayoutError(f"{self.name}: {path} lacks column(s) {sorted(missing)}.\n"
                                         f"{self.expected()}")
            records = []
            for row in reader:
                text = ",".join(str(v) for v in row.values())
                with _label_row(self.name, path, reader.line_num, text, "'IRR_TT_LL.png,IRR.png,<dmos>,<var>'"):
                    type_id = int(row["dist_img"].split("_")[1])
                    var = row.get("var")
                    records.append((f"images/{row['ref_img']}", f"images/{row['dist_img']}", float(row["dmos"]),
                                    None if var in (None, "") else float(np.sqrt(float(var))),
                                    KADID_TYPES[type_id - 1] if 1 <= type_id <= 25 else f"type {type_id}"))
        return records


class LIVE(IQADataset):
    """LIVE IQA release 2 (Sheikh et al.): 29 references, 5 distortions, 779 distorted images, DMOS (lower =
    better). ``realigned=True`` reads ``dmos_realigned.mat`` (``dmos_new``, ``dmos_std``) instead of ``dmos.mat``."""

    name = "LIVE"
    score_name = "DMOS"
    score_higher_is_better = False
    folders = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
    layout = """\
  ROOT/                     (the unpacked databaserelease2/ folder)
    dmos.mat                'dmos' (1×982) and 'orgs' (1×982, 1 = reference image, excluded)
    dmos_realigned.mat      'dmos_new', 'dmos_std', 'orgs' (only with realigned=True)
    refnames_all.mat        'refnames_all' (1×982 cell of reference file names)
    refimgs/*.bmp
    jp2k/img1.bmp … img227.bmp, jpeg/img1 … img233, wn/, gblur/, fastfading/ img1 … img174 (982 in this order)"""

    def __init__(self, root, realigned: bool = False):
        self.realigned = realigned
        super().__init__(root)

    def _read_labels(self):
        from scipy.io import loadmat

        if self.realigned:
            mat = loadmat(self.label_file("dmos_realigned.mat"))
            dmos, std = mat["dmos_new"].ravel(), mat["dmos_std"].ravel()
        else:
            mat = loadmat(self.label_file("dmos.mat"))
            dmos, std = mat["dmos"].ravel(), None
        orgs = mat["orgs"].ravel()
        names = loadmat(self.label_file("refnames_all.mat"))["refnames_all"].ravel()
        expected = sum(count for _, count in self.folders)
        if not (dmos.size == orgs.size == names.size == expected):
            raise DatasetLayoutError(f"{self.name}: expected {expected} entries in dmos/orgs/refnames_all, got "
                                     f"{dmos.size}/{orgs.size}/{names.size}.\n{self.expected()}")
        records, k = [], 0
        for folder, count in self.folders:
            for index in range(1, count + 1):
                if orgs[k] != 1:
                    ref = str(np.asarray(names[k]).ravel()[0])
                    records.append((f"refimgs/{ref}", f"{folder}/img{index}.bmp", float(dmos[k]),
                                    None if std is None else float(std[k]), folder))
                k += 1
        return records


CSIQ_TYPES = {"noise": ("awgn", "AWGN"), "awgn": ("awgn", "AWGN"), "jpeg": ("jpeg", "JPEG"),
              "jpeg 2000": ("jpeg2000", "jpeg2000"), "jpeg2000": ("jpeg2000", "jpeg2000"),
              "1/f noise": ("fnoise", "fnoise"), "fnoise": ("fnoise", "fnoise"), "blur": ("blur", "BLUR"),
              "contrast": ("contrast", "contrast")}


class CSIQ(IQADataset):
    """Larson & Chandler 2010: 30 references, 6 distortions, 866 images, DMOS 0–1 (lower = better)."""

    name = "CSIQ"
    score_name = "DMOS"
    score_higher_is_better = False
    columns = ("image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos")
    layout = """\
  ROOT/
    csiq.DMOS.xlsx          sheet 'all_by_image' with columns image, dst_idx, dst_type, dst_lev, dmos_std, dmos
                            (or csiq_dmos.txt: those six columns, whitespace/tab separated, no header)
    src_imgs/1600.png …
    dst_imgs/awgn|jpeg|jpeg2000|fnoise|blur|contrast/1600.AWGN.1.png … (<image>.<TYPE>.<level>.png)"""

    def _rows_from_xlsx(self, path: Path):
        try:
            import openpyxl
        except ImportError as exc:
            raise DatasetLayoutError(f"{self.name}: reading {path} needs openpyxl (pip install openpyxl), or "
                                     "export the 'all_by_image' sheet to csiq_dmos.txt") from exc
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        sheet = book["all_by_image"] if "all_by_image" in book.sheetnames else book.worksheets[0]
        rows, header = [], None
        for row_no, values in enumerate(sheet.iter_rows(values_only=True), 1):
            cells = [("" if v is None else str(v).strip()) for v in values]
            if header is None:
                lowered = [c.lower() for c in cells]
                if all(col in lowered for col in self.columns):
                    header = [lowered.index(col) for col in self.columns]
                continue
            if any(cells[i] for i in header):
                rows.append((row_no, [cells[i] for i in header]))
        book.close()
        if header is None:
            raise DatasetLayoutError(f"{self.name}: no header row with {', '.join(self.columns)} in {path}.\n"
                                     f"{self.expected()}")
        return rows

    def _read_labels(self):
        path = self.label_file("csiq.DMOS.xlsx", "csiq_dmos.txt")
        if path.suffix.lower() == ".xlsx":
            rows = self._rows_from_xlsx(path)
        else:
            rows = []
            for line_no, line in enumerate(path.read_text().splitlines(), 1):
                parts = line.replace("\t", " ").split()
                if not parts or parts[0].lower() == "image":
                    continue
                if len(parts) < 6:
                    raise DatasetLabelError(f"{self.name}: line {line_no} of {path} has {len(parts)} fields, not "
                                            f"the six {' '.join(self.columns)}: {line!r}")
                # dst_type may contain a space ("jpeg 2000", "1/f noise"): the last three fields are numbers.
                rows.append((line_no, [parts[0], parts[1], " ".join(parts[2:-3]), parts[-3], parts[-2], parts[-1]]))
        records = []
        for line_no, (image, _idx, dst_type, level, std, dmos) in rows:
            with _label_row(self.name, path, line_no, " ".join((image, _idx, dst_type, level, std, dmos)),
                            f"the six columns {', '.join(self.columns)}"):
                key = dst_type.strip().lower()
                if key not in CSIQ_TYPES:
                    raise ValueError(f"unknown distortion type {dst_type!r}")
                folder, token = CSIQ_TYPES[key]
                image = image.removesuffix(".0")  # numeric names read from a spreadsheet
                level = str(int(float(level)))
                records.append((f"src_imgs/{image}.png", f"dst_imgs/{folder}/{image}.{token}.{level}.png",
                                float(dmos), float(std), folder))
        return records


class PIPAL(IQADataset):
    """Gu et al. 2020 (NTIRE 2021 challenge release): Elo scores (higher = better). ``split='train'`` (200
    references, 23 200 images) or ``'val'`` when its labels are present."""

    name = "PIPAL"
    score_name = "Elo"
    layout = """\
  ROOT/
    Train_Label/A0001.txt … one line per image: "<distorted name>,<Elo>", e.g. "A0001_00_00.bmp,1520.0648"
    Train_Ref/A0001.bmp …
    Train_Dis/A0001_00_00.bmp … (or the archive's Distortion_1 … Distortion_4 folders, directly or inside
                                 Train_Dis; names <ref>_<distortion group>_<index>.bmp)
    Val_Label/, Val_Ref/, Val_Dis/ likewise for split='val'"""

    def __init__(self, root, split: str = "train"):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.prefix = "Train" if split == "train" else "Val"
        self._dis_index: dict[str, str] | None = None
        super().__init__(root)

    def _read_labels(self):
        folder = self._files.resolve(f"{self.prefix}_Label")
        if folder is None or not folder.is_dir():
            raise DatasetLayoutError(f"{self.name}: missing label folder {self.root / (self.prefix + '_Label')}."
                                     f"\n{self.expected()}")
        records = []
        for path in sorted(folder.glob("*.txt")):
            for line_no, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                with _label_row(self.name, path, line_no, line, "'<ref>_<group>_<index>.bmp,<Elo>'"):
                    name, elo = (s.strip() for s in line.split(","))
                    ref_id, group, _index = name.split("_")
                    records.append((f"{self.prefix}_Ref/{ref_id}.bmp", name, float(elo), None, f"group {group}"))
        return records

    def _path(self, relative: str) -> Path:
        if "/" in relative:
            return super()._path(relative)
        if self._dis_index is None:  # distorted images: wherever the archive put them, indexed once
            self._dis_index = {}
            for top in sorted(os.listdir(self.root)):
                low = top.lower()
                if low == f"{self.prefix.lower()}_dis" or low.startswith("distortion"):
                    for dirpath, _dirs, files in os.walk(self.root / top):
                        for f in files:
                            self._dis_index.setdefault(f.lower(), os.path.join(dirpath, f))
        found = self._dis_index.get(relative.lower())
        if found is None:
            raise DatasetLayoutError(f"{self.name}: missing image {relative} (searched {self.prefix}_Dis/ and "
                                     f"Distortion_*/ under {self.root}).\n{self.expected()}")
        return Path(found)

    def __getitem__(self, index: int) -> Pair:
        ref, dist, score, std, distortion = self._records[index]
        return Pair(self._path(ref), self._path(dist), float(score), std, distortion,
                    str(self._path(dist).relative_to(self.root)))

    def missing_images(self, limit: int = 10) -> list[str]:
        out = []
        for ref, dist, *_ in self._records:
            for rel in (ref, dist):
                try:
                    self._path(rel)
                except DatasetLayoutError:
                    if rel not in out:
                        out.append(rel)
                        if len(out) >= limit:
                            return out
        return out


DATASETS = {"tid2013": TID2013, "tid2008": TID2008, "kadid10k": KADID10k, "kadid-10k": KADID10k,
            "live": LIVE, "csiq": CSIQ, "pipal": PIPAL}


def open_dataset(name: str, root, **kwargs):
    """``open_dataset('tid2013', '/data/tid2013')``; names: tid2013, tid2008, kadid10k, live, csiq, pipal,
    bapps-2afc, bapps-jnd."""
    from .bapps import BAPPS_DATASETS

    key = name.lower()
    table = {**DATASETS, **BAPPS_DATASETS}
    if key not in table:
        raise ValueError(f"unknown dataset {name!r}; available: {sorted(set(table))}")
    return table[key](root, **kwargs)
