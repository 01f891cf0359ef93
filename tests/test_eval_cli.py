"""``turboiqa evaluate`` end to end on the six real TID2013 pairs of ../shared/data/tid2013 (laid out like the
TID2013 release in a temporary folder, MOS/std from its mos.csv), checked against an independent computation;
streaming, per-pair failures and resume after an interrupted run."""
import csv
import json
import shutil

import matlab_oracle as oracle
import numpy as np
import pytest
import torch
import turboiqa
from conftest import TID2013, import_or_skip, load_rgb, skip_missing_shared_data
from matlab_oracle import hwc
from PIL import Image
from scipy import stats as sps
from turboiqa.cli import main
from turboiqa.eval.datasets import TID2013 as TID2013Dataset
from turboiqa.eval.job import evaluate_scores
from turboiqa.eval.runner import read_scores, score_dataset

METRICS = ["psnr", "ssim"]


@pytest.fixture
def tid_root(tmp_path):
    """A TID2013-shaped folder holding the six shared pairs (symlinks), in the order of mos.csv."""
    if not (TID2013 / "mos.csv").is_file():
        skip_missing_shared_data(TID2013 / "mos.csv")
    root = tmp_path / "tid2013"
    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    with open(TID2013 / "mos.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        (root / "distorted_images" / row["dist_img"]).symlink_to(TID2013 / "distorted" / row["dist_img"])
        (root / "reference_images" / row["ref_img"]).symlink_to(TID2013 / "reference" / row["ref_img"])
    (root / "mos_with_names.txt").write_text("".join(f"{r['mos']} {r['dist_img']}\n" for r in rows))
    (root / "mos_std.txt").write_text("".join(f"{r['mos_std']}\n" for r in rows))
    return root, rows


def independent_scores(rows):
    """PSNR (all channels) and ssim_index.m on MATLAB's rounded rgb2gray, by the NumPy/SciPy oracle (not turboiqa)."""
    out = {m: [] for m in METRICS}
    for r in rows:
        dist = hwc(load_rgb(TID2013 / "distorted" / r["dist_img"]))
        ref = hwc(load_rgb(TID2013 / "reference" / r["ref_img"]))
        out["psnr"].append(oracle.psnr_rgb(dist, ref))
        out["ssim"].append(oracle.ssim_index(oracle.rgb2gray(dist, True), oracle.rgb2gray(ref, True)))
    return {m: np.array(v) for m, v in out.items()}


def test_evaluate_end_to_end_on_shared_tid2013(tid_root, tmp_path, capsys):
    import_or_skip("matplotlib")  # the job ends with its plots
    root, rows = tid_root
    out = tmp_path / "out"
    rc = main(["evaluate", "--dataset", "tid2013", "--root", str(root), "--metric", ",".join(METRICS),
               "--out", str(out), "--bootstrap", "200", "--workers", "2", "--batch-size", "4"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "SROCC" in printed and "AUC_BW" in printed and "psnr vs ssim" in printed

    scored = read_scores(out / "tid2013_scores.csv")
    assert [r["distorted"] for r in scored] == [f"distorted_images/{r['dist_img']}" for r in rows]
    mos = np.array([float(r["mos"]) for r in rows])
    assert [r["mos"] for r in scored] == pytest.approx(mos)
    assert [r["mos_std"] for r in scored] == pytest.approx([float(r["mos_std"]) for r in rows])
    ref = independent_scores(rows)
    for m in METRICS:
        np.testing.assert_allclose([r[m] for r in scored], ref[m], rtol=1e-6)
    # SPECS §18 values reached through the whole job (I03: PSNR 21.1136, SSIM 0.6993)
    assert scored[1]["psnr"] == pytest.approx(21.1136, abs=1e-4) and scored[1]["ssim"] == pytest.approx(0.6993, abs=1e-4)

    summary = json.loads((out / "tid2013_summary.json").read_text())
    assert summary["n"] == 6
    for m in METRICS:
        e = summary["metrics"][m]
        assert e["srocc"] == pytest.approx(sps.spearmanr(ref[m], mos).statistic, abs=1e-12)
        assert e["krocc"] == pytest.approx(sps.kendalltau(ref[m], mos).statistic, abs=1e-12)
        b1, b2, b3, b4, b5 = e["fit_params"]
        mapped = b1 * (0.5 - 1 / (1 + np.exp(b2 * (ref[m] - b3)))) + b4 * ref[m] + b5
        assert e["rmse"] == pytest.approx(np.sqrt(np.mean((mos - mapped) ** 2)), rel=1e-9)
        assert e["plcc"] == pytest.approx(sps.pearsonr(mapped, mos).statistic, rel=1e-9)
        assert np.sqrt(np.mean((mos - mapped) ** 2)) <= np.std(mos)  # the fit beats the constant mapping
        lo, hi = e["srocc_ci"]
        assert lo <= e["srocc"] <= hi
        assert 0 <= e["krasula"]["auc_bw"] <= 1 and 0 <= e["krasula"]["cc0"] <= 1
        # independent CC_0: TID2013 MOS ± std → significant pairs, then the fraction ordered right
        z = (mos[:, None] - mos[None, :]) / np.sqrt(np.array([float(r["mos_std"]) for r in rows])[:, None] ** 2
                                                   + np.array([float(r["mos_std"]) for r in rows])[None, :] ** 2)
        iu = np.triu_indices(6, 1)
        sig = np.sign(z[iu]) * (np.abs(z[iu]) > 2)
        d = (ref[m][:, None] - ref[m][None, :])[iu]
        assert e["krasula"]["cc0"] == pytest.approx(np.mean((d * sig)[sig != 0] > 0))
        assert e["krasula"]["n_different"] == int((sig != 0).sum())
    for name in ("tid2013_scatter.png", "tid2013_distortions.png", "tid2013_table.txt"):
        assert (out / name).stat().st_size > 1000 if name.endswith(".png") else (out / name).is_file()

    # the same report from the scores CSV alone
    again = evaluate_scores(out / "tid2013_scores.csv", tmp_path / "again", n_resamples=0, plots=False)
    for m in METRICS:
        assert again["metrics"][m]["srocc"] == pytest.approx(summary["metrics"][m]["srocc"], abs=1e-15)
        assert again["metrics"][m]["plcc"] == pytest.approx(summary["metrics"][m]["plcc"], abs=1e-12)


class Interrupt:
    """A metric that raises KeyboardInterrupt (a kill) on call number ``at``."""

    def __init__(self, fn, at):
        self.fn, self.at, self.calls = fn, at, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.fn(*args, **kwargs)


def test_resume_after_interruption_gives_identical_csv(tid_root, tmp_path):
    root, _ = tid_root
    ds = TID2013Dataset(root)
    fresh = tmp_path / "fresh.csv"
    score_dataset(ds, ["psnr"], fresh, workers=2, batch_size=2, progress=False)

    resumed = tmp_path / "resumed.csv"
    with pytest.raises(KeyboardInterrupt):
        score_dataset(ds, ["psnr"], resumed, workers=2, batch_size=2, progress=False,
                      metric_fns={"psnr": Interrupt(turboiqa.psnr, at=2)})
    assert len(read_scores(resumed)) == 2  # the first batch was streamed before the kill
    with open(resumed, "a") as f:
        f.write("reference_images/I06.BMP,distorted_ima")  # torn line of a killed writer
    _, stats = score_dataset(ds, ["psnr"], resumed, workers=2, batch_size=2, progress=False)
    assert stats.pairs_resumed == 2 and stats.pairs_scored == 4
    assert resumed.read_bytes() == fresh.read_bytes()
    # a third run scores nothing
    _, stats = score_dataset(ds, ["psnr"], resumed, progress=False)
    assert stats.pairs_scored == 0 and resumed.read_bytes() == fresh.read_bytes()
    with pytest.raises(ValueError, match="another output folder"):
        score_dataset(ds, ["psnr", "ssim"], resumed, progress=False)


def test_failed_pairs_are_recorded_and_retried(tid_root, tmp_path, capsys):
    root, rows = tid_root
    moved = tmp_path / "moved.bmp"
    shutil.move(root / "distorted_images" / rows[2]["dist_img"], moved)
    out = tmp_path / "out"
    args = ["evaluate", "--dataset", "tid2013", "--root", str(root), "--metric", "psnr", "--out", str(out),
            "--bootstrap", "0", "--no-plots", "--workers", "0"]
    assert main(args) == 1
    assert "1 pair(s) failed" in capsys.readouterr().err
    scored = read_scores(out / "tid2013_scores.csv")
    assert len(scored) == 6 and "missing image" in scored[2]["error"] and scored[2]["psnr"] is None
    assert all(not r["error"] for k, r in enumerate(scored) if k != 2)
    shutil.move(moved, root / "distorted_images" / rows[2]["dist_img"])
    assert main(args) == 0
    scored = read_scores(out / "tid2013_scores.csv")
    assert len(scored) == 6 and all(not r["error"] for r in scored)


def test_batching_matches_pair_by_pair(tid_root, tmp_path):
    root, _ = tid_root
    ds = TID2013Dataset(root)
    a, _ = score_dataset(ds, ["ssim"], tmp_path / "a.csv", workers=0, batch_size=1, progress=False)
    b, _ = score_dataset(ds, ["ssim"], tmp_path / "b.csv", workers=3, batch_size=6, progress=False)
    np.testing.assert_allclose([r["ssim"] for r in a], [r["ssim"] for r in b], rtol=1e-6)


def test_scores_csv_from_elsewhere(tmp_path, capsys):
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 9, 60)
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["distorted", "mos", "good", "lpips"])
        for k, m in enumerate(mos):
            w.writerow([f"img{k}.png", m, m + rng.normal(0, 0.5), -m + rng.normal(0, 3.0)])
    assert main(["evaluate", "--scores", str(path), "--bootstrap", "0", "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "good" in text and "lpips" in text and "AUC" in text
    summary = json.loads((tmp_path / "mine_summary.json").read_text())
    # lpips is a distance: negated, so its SROCC comes out positive
    assert summary["metrics"]["lpips"]["srocc"] > 0.3
    assert summary["metrics"]["good"]["srocc"] == pytest.approx(
        sps.spearmanr([r["good"] for r in read_scores(path)], mos).statistic, abs=1e-12)
    assert "krasula" not in summary["metrics"]["good"]  # no std column
    assert main(["evaluate", "--scores", str(path), "--dmos", "--bootstrap", "0", "--no-plots"]) == 0
    summary = json.loads((tmp_path / "mine_summary.json").read_text())
    assert summary["metrics"]["good"]["srocc"] < 0


def test_bad_arguments(tmp_path, capsys):
    assert main(["evaluate", "--dataset", "tid2013"]) == 2
    assert "--root" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "live", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "dmos.mat" in err and "refimgs" in err
    assert main(["evaluate", "--scores", str(tmp_path / "none.csv")]) == 2
    (tmp_path / "mos_with_names.txt").write_text("1.0 i01_01_1.bmp\n")
    assert main(["evaluate", "--dataset", "tid2013", "--root", str(tmp_path), "--metric", "nope"]) == 2
    assert "unknown" in capsys.readouterr().err


def test_pinned_cuda_path_matches_cpu(tid_root, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    root, _ = tid_root
    ds = TID2013Dataset(root)
    a, _ = score_dataset(ds, ["ssim"], tmp_path / "a.csv", progress=False)
    b, _ = score_dataset(ds, ["ssim"], tmp_path / "b.csv", device="cuda", progress=False)
    np.testing.assert_allclose([r["ssim"] for r in a], [r["ssim"] for r in b], rtol=1e-4)


def test_evaluate_bapps_2afc_and_jnd(tmp_path, capsys):
    from test_eval_datasets import make_bapps

    judges = make_bapps(tmp_path / "dataset")
    out = tmp_path / "out"
    assert main(["evaluate", "--dataset", "bapps-2afc", "--root", str(tmp_path), "--metric", "psnr",
                 "--out", str(out)]) == 0
    assert "2AFC" in capsys.readouterr().out
    rows = read_scores(out / "bapps-2afc_scores.csv")
    base = tmp_path / "dataset" / "2afc" / "val" / "cnn"

    def psnr_of(side, k):  # independent of the job: PIL + NumPy
        return oracle.psnr_rgb(*(np.array(Image.open(base / s / f"{k:06d}.png").convert("RGB")) for s in (side, "ref")))

    expected = []
    for k, judge in enumerate(judges):  # PSNR: higher = closer to the reference
        p0, p1 = psnr_of("p0", k), psnr_of("p1", k)
        assert [rows[2 * k]["psnr"], rows[2 * k + 1]["psnr"]] == pytest.approx([p0, p1], rel=1e-6)
        expected.append(judge if p1 > p0 else 1 - judge if p0 > p1 else 0.5)
    summary = json.loads((out / "bapps-2afc_summary.json").read_text())
    assert summary["bapps"]["psnr"]["all"]["score"] == pytest.approx(np.mean(expected))
    assert main(["evaluate", "--dataset", "bapps-jnd", "--root", str(tmp_path / "dataset"), "--metric", "psnr",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "bapps-jnd_summary.json").read_text())
    assert 0 < summary["bapps"]["psnr"]["all"]["score"] <= 1
