import csv
import json
import shutil

import pytest
import torch
import turboiqa
from turboiqa.cli import demo_pairs, main
from turboiqa.images import read_image


def test_demo_scores_match_the_api(capsys):
    assert main(["score", "--demo", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3
    for row, (dist, ref) in zip(rows, demo_pairs()):
        r, d = read_image(ref).pixels, read_image(dist).pixels
        assert row["ssim"] == pytest.approx(turboiqa.ssim(d, r, 255).item(), abs=1e-7)
        assert row["ms_ssim"] == pytest.approx(turboiqa.ms_ssim(d, r, 255).item(), abs=1e-7)
        assert row["psnr"] == pytest.approx(turboiqa.psnr(d, r, 255).item(), abs=1e-5)
    # JPEG at quality 15 is visibly worse than the source: sanity of the shipped data
    assert all(0.5 < row["ssim"] < 0.99 for row in rows)


def test_folders_paired_by_name_with_failures_recorded(tmp_path, capsys):
    ref_dir, dist_dir = tmp_path / "ref", tmp_path / "dist"
    ref_dir.mkdir()
    dist_dir.mkdir()
    (_, ref_path), (noise, _), (blur, _) = demo_pairs()
    shutil.copy(ref_path, ref_dir / "a.png")
    shutil.copy(noise, dist_dir / "a.png")
    shutil.copy(ref_path, ref_dir / "b.png")
    shutil.copy(blur, dist_dir / "b.png")
    shutil.copy(ref_path, ref_dir / "only_ref.png")
    shutil.copy(ref_path, ref_dir / "c.png")
    (dist_dir / "c.png").write_bytes(b"not an image")
    out = tmp_path / "scores.csv"
    code = main(["score", str(dist_dir), str(ref_dir), "--metric", "ssim,psnr", "--csv", "--out", str(out)])
    assert code == 1  # one pair failed
    assert out.read_text().splitlines()[0] == "reference,distorted,ssim,psnr,error"
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["distorted"].rsplit("/", 1)[-1] for r in rows] == ["a.png", "b.png", "c.png"]  # only_ref skipped
    assert rows[0]["error"] == "" and float(rows[0]["ssim"]) < float(rows[1]["ssim"])  # noise is worse than blur
    assert rows[2]["error"] and rows[2]["ssim"] == ""
    err = capsys.readouterr().err
    assert "only_ref.png" in err and "1 of 3 pair(s) failed" in err


def test_two_images_and_errors(capsys):
    (dist, ref), *_ = demo_pairs()
    assert main(["score", str(dist), str(ref), "--metric", "psnr"]) == 0
    assert "psnr=" in capsys.readouterr().out
    assert main(["score", str(dist), str(ref), "--metric", "vmaf"]) == 2
    assert main(["score", str(dist), "/nonexistent.png"]) == 2
    assert main(["score", str(dist)]) == 2
    assert "give DIST and REF" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["score", "--demo", "--device", "cuda"]) == 2


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch_version_runtime" in out and "native" in out


def test_cli_output_errors_and_failed_pair_messages(tmp_path, capsys):
    # Issue 11 (clear errors): an unwritable --out printed a traceback with the exit code of a failed pair; a
    # corrupt reference was reported under the distorted file's name; text output pointed at an 'error' column.
    import numpy as np
    from PIL import Image

    from turboiqa.cli import main

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype("uint8")).save(good)
    bad.write_bytes(b"not an image")
    assert main(["score", str(good), str(good), "--out", str(tmp_path / "missing" / "x.csv"), "--csv"]) == 3
    assert "cannot write --out" in capsys.readouterr().err
    assert main(["score", str(good), str(bad)]) == 1  # DIST good, REF corrupt: named in the command's order
    captured = capsys.readouterr()
    assert "good.png vs bad.png: ERROR" in captured.out and "bad.png" in captured.out.split("ERROR", 1)[1]
    assert "ERROR lines above" in captured.err


def test_score_scales(tmp_path, capsys):
    # Issue 11: the multi-scale metrics' advice "pass scales=N" had no command-line form.
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    ref = rng.integers(0, 256, (100, 120), dtype=np.uint8)
    dist = np.clip(ref + rng.normal(0, 12, ref.shape), 0, 255).astype(np.uint8)
    Image.fromarray(ref).save(tmp_path / "ref.png")
    Image.fromarray(dist).save(tmp_path / "dist.png")
    args = ["score", str(tmp_path / "dist.png"), str(tmp_path / "ref.png"), "--metric", "ms_ssim", "--json"]
    assert main(args) == 1
    assert "--scales 4" in json.loads(capsys.readouterr().out)["error"]
    assert main([*args, "--scales", "4"]) == 0
    got = json.loads(capsys.readouterr().out)["ms_ssim"]
    want = turboiqa.ms_ssim(torch.from_numpy(dist)[None, None], torch.from_numpy(ref)[None, None], 255, scales=4)
    assert got == pytest.approx(want.item(), abs=1e-7)
    assert main([*args, "--scales", "0"]) == 2


CLASSIC = ["gmsd", "ms_gmsd", "ms_gmsdc", "mdsi", "mdsi_mult", "srsim", "srsimc", "vsi", "haarpsi", "dss", "vif", "vif_p"]


def test_score_classic_metrics(capsys):
    """Every classic FR metric by name through ``turboiqa score``: the same values as ``turboiqa.METRICS``."""
    names = [n for n in CLASSIC + ["nlpd", "mad", "cw_ssim"] if n in turboiqa.METRICS]
    dist, ref = demo_pairs()[0]
    assert main(["score", str(dist), str(ref), "--metric", ",".join(names), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    r, d = read_image(ref).pixels, read_image(dist).pixels
    for name in names:
        assert row[name] == pytest.approx(turboiqa.METRICS[name](d, r, data_range=255).item(), rel=1e-6, abs=1e-9), name
    assert set(CLASSIC) <= set(turboiqa.METRICS)


def test_score_takes_distorted_first(tmp_path, capsys):
    """``turboiqa score A B`` scores A as the distorted image and B as the reference, as ``vif_p(A, B)`` does:
    VIFp is asymmetric, so the swapped call gives another value; the rows name A under 'distorted'."""
    dist, ref = demo_pairs()[2]  # blur: VIFp < 1 one way, very different the other
    d, r = read_image(dist).pixels, read_image(ref).pixels
    want = turboiqa.vif_p(d, r, 255).item()
    swapped = turboiqa.vif_p(r, d, 255).item()
    assert abs(want - swapped) > 0.05 * abs(want)  # the check below can tell the orders apart
    out = tmp_path / "one.csv"
    assert main(["score", str(dist), str(ref), "--metric", "vif_p", "--csv", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["distorted"], row["reference"]) == (str(dist), str(ref))
    assert float(row["vif_p"]) == pytest.approx(want, rel=1e-6)
    assert main(["score", str(ref), str(dist), "--metric", "vif_p", "--json"]) == 0  # swapped on purpose
    row = json.loads(capsys.readouterr().out)
    assert (row["distorted"], row["reference"]) == (str(ref), str(dist))
    assert row["vif_p"] == pytest.approx(swapped, rel=1e-6)

    # folders: DIST_DIR first, paired by name; the 'distorted' column holds the first folder's files
    dists, refs = tmp_path / "dists", tmp_path / "refs"
    dists.mkdir()
    refs.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(dist, dists / name)
        shutil.copy(ref, refs / name)
    out = tmp_path / "folders.csv"
    assert main(["score", str(dists), str(refs), "--metric", "vif_p", "--csv", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = ("a.png", "b.png")
    assert [(r["distorted"], r["reference"]) for r in rows] == [(str(dists / n), str(refs / n)) for n in names]
    assert [float(r["vif_p"]) for r in rows] == pytest.approx([want, want], rel=1e-6)


def test_help_names_dist_before_ref(capsys):
    for command in ("score", "video"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        usage = " ".join(capsys.readouterr().out.split("\n\n")[0].split())  # the usage lines
        assert usage.endswith("[DIST] [REF]" if command == "score" else " DIST REF"), usage
