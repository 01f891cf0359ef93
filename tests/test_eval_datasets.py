"""Dataset loaders against temporary folders laid out like each released dataset, with label files written in the
dataset's own format from the real score lists of ../shared/data/mos_lists (skipped when absent). Only a few
tiny images are written: loaders read labels eagerly and images lazily."""
import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, import_or_skip, skip_missing_shared_data
from PIL import Image
from turboiqa.eval.bapps import BAPPS2AFC, jnd_map, summarise_bapps, two_afc_score
from turboiqa.eval.datasets import (CSIQ, LIVE, PIPAL, TID2008, TID2013, DatasetLabelError, DatasetLayoutError, KADID10k,
                                   open_dataset)

MOS_LISTS = SHARED_DATA / "mos_lists"


def mos_list(name):
    path = MOS_LISTS / f"{name}.txt"
    if not path.is_file():
        skip_missing_shared_data(path, "shared score list")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def tiny_image(path: Path, value: int = 128, size=(8, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def strip_prefix(p: str) -> str:
    return p.split("/", 1)[1]


def check_against_list(ds, rows, key=lambda r: strip_prefix(r["dis_img_path"]).lower()):
    """Every list row appears once with its score and reference (file names compared case-insensitively)."""
    recs = ds.records()
    assert len(recs) == len(rows)
    by_dist = {r["distorted"].lower(): r for r in recs}
    assert len(by_dist) == len(recs)
    for row in rows:
        rec = by_dist[key(row)]
        assert rec["score"] == pytest.approx(float(row["score"]), rel=1e-9, abs=1e-12)
        assert Path(rec["reference"]).name.lower() == Path(row["ref_img_path"]).name.lower()
    return recs


@pytest.mark.parametrize("cls, name, n_types", [(TID2013, "TID2013", 24), (TID2008, "TID2008", 17)])
def test_tid(tmp_path, cls, name, n_types):
    rows = mos_list(name)
    stds = np.random.default_rng(0).uniform(0.05, 0.3, len(rows))
    names = [Path(r["dis_img_path"]).name for r in rows]
    (tmp_path / "mos_with_names.txt").write_text("".join(f"{r['score']} {n}\n" for r, n in zip(rows, names)))
    (tmp_path / "mos_std.txt").write_text("".join(f"{s:.5f}\n" for s in stds))
    recs = check_against_list(cls(tmp_path), rows)
    assert [r["std"] for r in recs] == pytest.approx(stds, abs=1e-5)
    counts = Counter(r["distortion"] for r in recs)
    assert len(counts) == n_types and len(set(counts.values())) == 1  # every type × 25 images × levels
    assert recs[0]["distortion"] == "Additive Gaussian noise"
    # lazy images: a missing one is reported with its path and the layout
    ds = cls(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"missing image .*reference_images.I01.BMP.\n.*Expected layout"):
        ds[0]
    # the release's mixed case (I01.BMP reference, i01_… distorted) resolves; the images load
    tiny_image(tmp_path / "reference_images" / "I01.BMP", 1)
    tiny_image(tmp_path / "distorted_images" / names[0].lower(), 2)
    pair = ds[0]
    dist, ref = pair.load()
    assert dist.shape == ref.shape == (1, 3, 6, 8) and pair.key == f"distorted_images/{names[0]}"
    assert pair.score == pytest.approx(float(rows[0]["score"]))
    assert len(ds.missing_images(limit=3)) == 3


def test_tid_without_std_and_missing_label(tmp_path):
    with pytest.raises(DatasetLayoutError, match="mos_with_names.txt") as err:
        TID2008(tmp_path)
    assert "reference_images" in str(err.value)
    (tmp_path / "mos_with_names.txt").write_text("5.9706 I01_01_1.bmp\n")
    assert TID2008(tmp_path).records()[0]["std"] is None
    (tmp_path / "mos_std.txt").write_text("0.1\n0.2\n")
    with pytest.raises(DatasetLayoutError, match="2 values"):
        TID2008(tmp_path)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        TID2013(tmp_path / "nope")


BAD_ROWS = [  # (dataset, label file, its text, line named in the error, what the error must mention)
    (TID2013, "mos_with_names.txt", "5.1 i01_01_1.bmp\nabc i01_01_2.bmp\n", 2, "could not convert"),
    (TID2013, "mos_with_names.txt", "5.1 i01_01_1.bmp\n\n4.0 i0101.bmp\n", 3, "iRR_TT_L.bmp"),
    (TID2013, "mos_with_names.txt", "5.1 i01_01_1.bmp extra\n", 1, "'<MOS> iRR_TT_L.bmp'"),
    (KADID10k, "dmos.csv", "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.5,0.1\nI01.png,I01.png,x,0.1\n", 3,
     "IRR_TT_LL.png"),
    (KADID10k, "dmos.csv", "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.5,-\n", 2, "could not convert"),
    (CSIQ, "csiq_dmos.txt", "1600 1 noise 1 0.01 0.06\n1600 1 noise one 0.01 0.06\n", 2, "one"),
    (CSIQ, "csiq_dmos.txt", "1600 1 noise\n", 1, "3 fields"),
    (CSIQ, "csiq_dmos.txt", "1600 1 fog 1 0.01 0.06\n", 1, "unknown distortion type 'fog'"),
    (PIPAL, "Train_Label/A0001.txt", "A0001_00_00.bmp,1500.5\nA0001.bmp,1400\n", 2, "<ref>_<group>_<index>.bmp"),
    (PIPAL, "Train_Label/A0001.txt", "A0001_00_00.bmp;1500.5\n", 1, "<Elo>"),
]


@pytest.mark.parametrize("cls, label, text, line, mention", BAD_ROWS)
def test_malformed_label_row_names_file_and_line(tmp_path, cls, label, text, line, mention):
    path = tmp_path / label
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(DatasetLabelError) as err:
        cls(tmp_path)
    message = str(err.value)
    assert f"line {line} of {path}" in message and mention in message
    assert isinstance(err.value, ValueError)  # the CLI reports it as bad input (exit code 2), not a crash


def test_malformed_std_row(tmp_path):
    (tmp_path / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp\n4.2 i01_01_2.bmp\n")
    (tmp_path / "mos_std.txt").write_text("0.1\nn/a\n")
    with pytest.raises(DatasetLabelError, match=f"line 2 of {tmp_path / 'mos_std.txt'}"):
        TID2013(tmp_path)


def test_kadid(tmp_path):
    rows = mos_list("KADID-10k")
    var = np.random.default_rng(1).uniform(0.1, 1.0, len(rows))
    with open(tmp_path / "dmos.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        for r, v in zip(rows, var):
            w.writerow([Path(r["dis_img_path"]).name, Path(r["ref_img_path"]).name, r["score"], f"{v:.6f}"])
    ds = KADID10k(tmp_path)
    recs = check_against_list(ds, rows)
    assert [r["std"] for r in recs] == pytest.approx(np.sqrt(var), abs=1e-6)
    counts = Counter(r["distortion"] for r in recs)
    assert len(counts) == 25 and set(counts.values()) == {405}
    assert recs[0]["distortion"] == "Gaussian blur" and ds.score_higher_is_better
    tiny_image(tmp_path / "images" / "I01.png", 1)
    tiny_image(tmp_path / "images" / "I01_01_01.png", 2)
    assert ds[0].load()[0].shape == (1, 3, 6, 8)
    (tmp_path / "dmos.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetLayoutError, match="lacks column"):
        KADID10k(tmp_path)


def write_live(tmp_path, rows, realigned=False):
    from scipy.io import savemat

    by_name = {strip_prefix(r["dis_img_path"]): r for r in rows}
    dmos, orgs, names = [], [], []
    for folder, count in LIVE.folders:
        for k in range(1, count + 1):
            row = by_name.get(f"{folder}/img{k}.bmp")
            dmos.append(float(row["score"]) if row else 0.0)
            orgs.append(0 if row else 1)
            names.append(np.array([Path(row["ref_img_path"]).name if row else "parrots.bmp"]))
    cell = np.empty((1, len(names)), dtype=object)
    cell[0, :] = names
    savemat(tmp_path / "dmos.mat", {"dmos": np.array([dmos]), "orgs": np.array([orgs], dtype=float)})
    savemat(tmp_path / "refnames_all.mat", {"refnames_all": cell})
    if realigned:
        savemat(tmp_path / "dmos_realigned.mat", {"dmos_new": np.array([dmos]) + 1.0,
                                                  "dmos_std": np.full((1, len(dmos)), 2.5),
                                                  "orgs": np.array([orgs], dtype=float)})


def test_live(tmp_path):
    rows = mos_list("LIVE")
    write_live(tmp_path, rows, realigned=True)
    ds = LIVE(tmp_path)
    recs = check_against_list(ds, rows)
    assert not ds.score_higher_is_better and ds.score_name == "DMOS"
    assert Counter(r["distortion"] for r in recs) == Counter(r["dis_type"] for r in rows)
    re = LIVE(tmp_path, realigned=True).records()
    assert re[0]["score"] == pytest.approx(recs[0]["score"] + 1.0) and re[0]["std"] == 2.5
    (tmp_path / "refnames_all.mat").unlink()
    with pytest.raises(DatasetLayoutError, match="refnames_all.mat"):
        LIVE(tmp_path)


CSIQ_XLSX_TYPES = {"AWGN": "noise", "JPEG": "jpeg", "jpeg2000": "jpeg 2000", "fnoise": "1/f noise", "BLUR": "blur",
                   "contrast": "contrast"}


def csiq_rows(rows):
    stds = np.random.default_rng(2).uniform(0.01, 0.1, len(rows))
    out = []
    for r, s in zip(rows, stds):
        image, token, level, _ = Path(r["dis_img_path"]).name.split(".")
        out.append([image, CSIQ_XLSX_TYPES[token], int(level), round(float(s), 4), float(r["score"])])
    return out


@pytest.mark.parametrize("fmt", ["xlsx", "txt"])
def test_csiq(tmp_path, fmt):
    rows = mos_list("CSIQ")
    table = csiq_rows(rows)
    if fmt == "xlsx":
        openpyxl = import_or_skip("openpyxl")
        book = openpyxl.Workbook()
        book.active.title = "note"
        sheet = book.create_sheet("all_by_image")
        sheet.append(["CSIQ DMOS, all images"])  # a title row above the header, as spreadsheets have
        sheet.append(["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
        for image, kind, level, std, dmos in table:
            sheet.append([int(image) if image.isdigit() else image, 1, kind, level, std, dmos])
        book.save(tmp_path / "csiq.DMOS.xlsx")
    else:
        (tmp_path / "csiq_dmos.txt").write_text("".join(f"{i}\t1\t{k}\t{lv}\t{s}\t{d}\n" for i, k, lv, s, d in table))
    ds = CSIQ(tmp_path)
    recs = check_against_list(ds, rows)
    assert [r["std"] for r in recs] == pytest.approx([t[3] for t in table])
    assert Counter(r["distortion"] for r in recs) == {"awgn": 150, "blur": 150, "jpeg": 150, "fnoise": 150,
                                                      "jpeg2000": 150, "contrast": 116}
    # the released folders are lower case while the files say AWGN: resolution ignores case
    first = recs[0]
    tiny_image(tmp_path / "src_imgs" / Path(first["reference"]).name, 1)
    tiny_image(tmp_path / first["distorted"].lower(), 2)
    assert ds[0].distorted.is_file()


def test_pipal(tmp_path):
    rows = mos_list("PIPAL")
    labels = {}
    for r in rows:
        name = Path(r["dis_img_path"]).name
        labels.setdefault(name.split("_")[0], []).append(f"{name},{r['score']}\n")
    (tmp_path / "Train_Label").mkdir()
    for ref, lines in labels.items():
        (tmp_path / "Train_Label" / f"{ref}.txt").write_text("".join(lines))
    ds = PIPAL(tmp_path)
    recs = ds.records()
    assert len(recs) == len(rows) == 23200
    want = {Path(r["dis_img_path"]).name: float(r["score"]) for r in rows}
    assert {r["distorted"]: r["score"] for r in recs} == pytest.approx(want)
    assert all(Path(r["reference"]).name == r["distorted"].split("_")[0] + ".bmp" for r in recs)
    first = rows[0]
    tiny_image(tmp_path / strip_prefix(first["dis_img_path"]), 1)          # Distortion_1/A0001_00_00.bmp
    tiny_image(tmp_path / "Train_Ref" / Path(first["ref_img_path"]).name, 2)
    index = [r["distorted"] for r in recs].index(Path(first["dis_img_path"]).name)
    pair = ds[index]
    assert pair.key == strip_prefix(first["dis_img_path"]) and pair.load()[1].shape == (1, 3, 6, 8)
    with pytest.raises(DatasetLayoutError, match="Distortion_"):
        ds[(index + 1) % len(ds)]
    with pytest.raises(DatasetLayoutError, match="Val_Label"):
        PIPAL(tmp_path, split="val")


def make_bapps(root: Path):
    judges = [0.0, 1.0, 0.25]
    for k, judge in enumerate(judges):
        base = root / "2afc" / "val" / "cnn"
        for side, value in (("ref", 10), ("p0", 11 + k), ("p1", 20 + k)):
            tiny_image(base / side / f"{k:06d}.png", value)
        (base / "judge").mkdir(parents=True, exist_ok=True)
        np.save(base / "judge" / f"{k:06d}.npy", np.array([judge], dtype=np.float32))
    for k, same in enumerate([1.0, 0.0, 0.5]):
        base = root / "jnd" / "val" / "traditional"
        tiny_image(base / "p0" / f"{k:06d}.png", 30 + k)
        tiny_image(base / "p1" / f"{k:06d}.png", 40 + k)
        (base / "same").mkdir(parents=True, exist_ok=True)
        np.save(base / "same" / f"{k:06d}.npy", np.array([same], dtype=np.float32))
    return judges


def test_bapps_layout(tmp_path):
    judges = make_bapps(tmp_path / "dataset")
    ds = BAPPS2AFC(tmp_path)  # the repository folder: dataset/ is found
    assert len(ds) == 6
    p0, p1 = ds[2], ds[3]
    assert p0.reference == p1.reference and p0.distorted.parent.name == "p0" and p1.distorted.parent.name == "p1"
    assert p0.score == p1.score == judges[1] and p0.distortion == "cnn"
    jnd = open_dataset("bapps-jnd", tmp_path / "dataset")
    assert len(jnd) == 3 and jnd[2].score == 0.5 and jnd[0].load()[0].shape == (1, 3, 6, 8)
    with pytest.raises(DatasetLayoutError, match="2afc.*train"):
        BAPPS2AFC(tmp_path, split="train")
    with pytest.raises(DatasetLayoutError, match="colorization"):
        BAPPS2AFC(tmp_path, categories=["colorization"])
    (tmp_path / "dataset" / "2afc" / "val" / "cnn" / "p1" / "000001.png").unlink()
    with pytest.raises(DatasetLayoutError, match="000001.png"):
        ds[3]


def test_two_afc_and_jnd_scores_hand_cases():
    # judge = fraction preferring p1: metric picks p0, p1, tie → (1 − 0.2) + 0.7 + 0.5
    assert two_afc_score([1, 3, 2], [2, 1, 2], [0.2, 0.7, 0.4]) == pytest.approx((0.8 + 0.7 + 0.5) / 3)
    # ranking puts both 'same' pairs first → AP 1; worst ranking of one same among two → precision ½ at recall 1
    assert jnd_map([0.1, 0.2, 0.9], [1, 1, 0]) == pytest.approx(1.0)
    assert jnd_map([0.9, 0.1], [1, 0]) == pytest.approx(0.5)
    # fractional 'same': cumulative TP 0.5, 1.5; FP 0.5, 0.5 → precisions 0.5, 0.75 at recalls 1/3, 1
    assert jnd_map([0.1, 0.2], [0.5, 1.0]) == pytest.approx(0.75 * (1 / 3) + 0.75 * (2 / 3))
    rows = [{"reference": "r0", "distorted": "x/p0/0.png", "distortion": "cnn", "mos": 0.2, "m": 1.0},
            {"reference": "r0", "distorted": "x/p1/0.png", "distortion": "cnn", "mos": 0.2, "m": 2.0}]
    assert summarise_bapps("bapps-2afc", rows, "m", lower_is_better=True)["all"]["score"] == pytest.approx(0.8)
    assert summarise_bapps("bapps-2afc", rows, "m", lower_is_better=False)["all"]["score"] == pytest.approx(0.2)


def test_open_dataset_names():
    with pytest.raises(ValueError, match="tid2013"):
        open_dataset("tid2099", ".")
