"""``turboiqa train deepqa`` on a tiny TID2013-shaped folder built from the shared pairs (../shared/data/tid2013 and
its mos.csv, as tests/test_eval_cli.py lays them out), cropped to 64×64 and augmented to 12 references with two
distorted images each: the split by reference, the loss going down, resume giving the identical final state, the
written deepqa.pth loading into the metric, and the command line."""
import csv

import numpy as np
import pytest
import torch
import turboiqa
from conftest import TID2013, skip_missing_shared_data
from PIL import Image
from turboiqa.cli import main
from turboiqa.eval.datasets import open_dataset
from turboiqa.train import make_task, split_by_reference, train

CROP = 64


pytestmark = pytest.mark.usefixtures("one_thread")  # small images (conftest.one_thread)
CORNERS = ((96, 160), (224, 320))  # two crops per shared pair → two references


@pytest.fixture(scope="module")
def tiny_tid(tmp_path_factory):
    if not (TID2013 / "mos.csv").is_file():
        skip_missing_shared_data(TID2013 / "mos.csv")
    root = tmp_path_factory.mktemp("tiny") / "tid2013"
    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    with open(TID2013 / "mos.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    lines, ref_id = [], 0
    for row in rows:
        ref = np.array(Image.open(TID2013 / "reference" / row["ref_img"]).convert("RGB"))
        dist = np.array(Image.open(TID2013 / "distorted" / row["dist_img"]).convert("RGB"))
        for top, left in CORNERS:
            ref_id += 1
            r = ref[top:top + CROP, left:left + CROP]
            d = dist[top:top + CROP, left:left + CROP]
            Image.fromarray(r).save(root / "reference_images" / f"I{ref_id:02d}.BMP")
            real = f"i{ref_id:02d}_{int(row['tid2013_type']):02d}_{row['level']}.bmp"
            Image.fromarray(d).save(root / "distorted_images" / real)
            lines.append(f"{row['mos']} {real}")
            sigma = 6.0 + 3.0 * (ref_id % 4)  # synthetic noise: stronger noise, lower made-up MOS
            noisy = np.clip(r + rng.normal(0, sigma, r.shape), 0, 255).astype(np.uint8)
            name = f"i{ref_id:02d}_01_{1 + ref_id % 4}.bmp"
            Image.fromarray(noisy).save(root / "distorted_images" / name)
            lines.append(f"{6.0 - 0.3 * sigma:.5f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def two_epochs(tiny_tid, tmp_path_factory):
    out = tmp_path_factory.mktemp("run2")
    return train("deepqa", "tid2013", tiny_tid, out, epochs=2, seed=1, lr=1e-4, batch_size=4, progress=False)


def test_split_is_by_reference_and_seeded(tiny_tid):
    pairs = list(open_dataset("tid2013", tiny_tid))
    tr, va, tr_refs, va_refs = split_by_reference(pairs, seed=1)
    assert (len(tr_refs), len(va_refs)) == (10, 2)  # ⌈0.8·12⌉ references train
    assert not set(tr_refs) & set(va_refs) and len(tr) == 20 and len(va) == 4
    assert {pairs[k].reference.name.lower() for k in va} == set(va_refs)
    assert split_by_reference(pairs, seed=1) == (tr, va, tr_refs, va_refs)
    assert split_by_reference(pairs, seed=2)[3] != va_refs or split_by_reference(pairs, seed=3)[3] != va_refs


def objective(state, root, seed=1):
    """The training objective over every (unflipped) training image, one batch."""
    task = make_task("deepqa")
    data = open_dataset("tid2013", root)
    pairs = list(data)
    config = task.config("tid2013", data)
    model = task.build_model()  # from torch's current RNG
    if state is not None:
        model.load_state_dict(state)
    train_idx = split_by_reference(pairs, seed)[0]
    examples = [task.example(*pairs[k].load(), pairs[k].score, False, config) for k in train_idx]
    with torch.no_grad():
        return float(task.loss(model, examples)["loss"])


def test_two_epochs_reduce_the_training_loss(two_epochs, tiny_tid):
    torch.manual_seed(1)  # the initial weights of the run
    before = objective(None, tiny_tid)
    final = torch.load(two_epochs.model_path, weights_only=True)
    after = objective(final["state_dict"], tiny_tid)
    assert after < 0.8 * before, (before, after)
    rows = list(csv.DictReader(open(two_epochs.log_path)))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "mse", "tv", "l2", "val_srocc", "val_plcc", "seconds"} <= set(rows[0])
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])


def test_resume_gives_the_identical_state(two_epochs, tiny_tid, tmp_path):
    first = train("deepqa", "tid2013", tiny_tid, tmp_path, epochs=1, seed=1, lr=1e-4, batch_size=4, progress=False)
    assert len(first.history) == 1
    resumed = train("deepqa", "tid2013", tiny_tid, tmp_path, epochs=2, seed=1, lr=1e-4, batch_size=4, resume=True,
                    progress=False)
    a = torch.load(two_epochs.model_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.model_path, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ca = torch.load(two_epochs.checkpoint_path, weights_only=False)["optimiser"]["state"]
    cb = torch.load(resumed.checkpoint_path, weights_only=False)["optimiser"]["state"]
    assert all(torch.equal(ca[i]["exp_avg_sq"], cb[i]["exp_avg_sq"]) for i in ca)
    assert len(list(csv.DictReader(open(resumed.log_path)))) == 2
    with pytest.raises(ValueError, match="another run"):
        train("deepqa", "tid2013", tiny_tid, tmp_path, epochs=3, seed=2, lr=1e-4, batch_size=4, resume=True,
              progress=False)


def test_saved_model_loads_into_the_metric(two_epochs, tiny_tid):
    saved = torch.load(two_epochs.model_path, weights_only=True)
    meta = saved["meta"]
    assert meta["dataset"] == "tid2013" and meta["lower_better"] is False and meta["epochs"] == 2
    assert meta["seed"] == 1 and meta["label_scale"] == 9.0 and len(meta["val_references"]) == 2
    module = turboiqa.DeepQA(data_range=255, weights=two_epochs.model_path)
    assert module.lower_better is False
    pair = open_dataset("tid2013", tiny_tid)[0]
    dist, ref = pair.load()
    task = make_task("deepqa")
    with torch.no_grad():
        want = task.predict(module.model, dist, ref, {"patch_size": None, "label_scale": 9.0})
    assert want > 0  # a live output, in TID MOS units (label × 9)
    got = turboiqa.deepqa(dist, ref, data_range=255, weights=two_epochs.model_path)
    assert abs(float(got) - want) <= 1e-6 * max(1.0, abs(want))
    assert abs(float(module(dist, ref)) - want) <= 1e-6 * max(1.0, abs(want))


def test_command_line(tiny_tid, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["train", "deepqa", "--dataset", "tid2013", "--root", str(tiny_tid), "--out", str(out), "--epochs", "1",
               "--seed", "3", "--batch-size", "8", "--lr", "1e-4"])
    printed = capsys.readouterr().out
    assert rc == 0 and f"model: {out / 'deepqa.pth'}" in printed and "validation SROCC" in printed
    assert (out / "checkpoint.pt").is_file() and len(list(csv.DictReader(open(out / "log.csv")))) == 1
    assert main(["train", "deepqa", "--dataset", "tid2013", "--root", str(tmp_path / "nope"), "--out", str(out)]) == 2


def test_patch_examples_as_the_official_live_set_up():
    """LIVE's scheme: all patches of the shift-center grid, flipped with the image, one pooled feature per image;
    predict() gives what the metric gives with the same patch size and label scale."""
    from turboiqa.metrics.deepqa import deepqa_score

    task = make_task("deepqa")
    config = {"patch_size": 40, "label_scale": 2.0}
    g = torch.Generator().manual_seed(0)
    ref = torch.randint(0, 256, (1, 3, 90, 100), generator=g, dtype=torch.uint8)
    dist = (ref.int() + torch.randint(-30, 31, ref.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    ex = task.example(dist, ref, 1.0, False, config)
    flipped = task.example(dist, ref, 1.0, True, config)
    assert ex["dist"].shape == (4, 1, 40, 40) and ex["label"] == 0.5  # 2×2 grid, label / scale
    grey = ex["ref"].new_tensor([0.299, 0.587, 0.114])[:, None, None]
    top_left = (ref[0, :, 4:44, 10:50].double() / 255 * grey.double()).sum(0)  # margins 10, 20 → shifts 4 (even), 10
    torch.testing.assert_close(ex["ref"][0, 0].double(), top_left, rtol=0, atol=1e-6)
    torch.testing.assert_close(flipped["ref"][0, 0].double(), (ref.flip(-1)[0, :, 4:44, 10:50].double() / 255
                                                               * grey.double()).sum(0), rtol=0, atol=1e-6)
    torch.manual_seed(0)
    model = task.build_model()
    parts = task.loss(model, [ex, flipped])
    assert set(parts) == {"loss", "mse", "tv", "l2"} and torch.isfinite(parts["loss"])
    with torch.no_grad():
        want = task.predict(model, dist, ref, config)
        model.meta = {"patch_size": 40, "label_scale": 2.0}
        got = float(deepqa_score(model, dist, ref, data_range=255))
    assert abs(got - want) <= 1e-6 * max(1.0, abs(want))


# WaDIQaM-FR: the same loop with the official L1 loss on random 32×32 patch pairs (4 per image here, 32 in the paper)
WADIQAM = {"pooling": "weighted", "patches_per_image": 4}


def wadiqam_objective(state, root, seed=1):
    """Mean |score − MOS| over the (unflipped) training images, scored as the metric scores (full grid, no dropout)."""
    task = make_task("wadiqam_fr", **WADIQAM)
    data = open_dataset("tid2013", root)
    pairs = list(data)
    model = task.build_model()
    if state is not None:
        model.load_state_dict(state)
    with torch.no_grad():
        return float(np.mean([abs(task.predict(model, *pairs[k].load(), {}) - pairs[k].score)
                              for k in split_by_reference(pairs, seed)[0]]))


@pytest.fixture(scope="module")
def wadiqam_two_epochs(tiny_tid, tmp_path_factory):
    out = tmp_path_factory.mktemp("wadiqam2")
    return train("wadiqam_fr", "tid2013", tiny_tid, out, epochs=2, seed=1, lr=1e-3, batch_size=4, progress=False,
                 task_options=WADIQAM)


def test_wadiqam_two_epochs_reduce_the_loss_and_load_into_the_metric(wadiqam_two_epochs, tiny_tid):
    torch.manual_seed(1)
    before = wadiqam_objective(None, tiny_tid)
    saved = torch.load(wadiqam_two_epochs.model_path, weights_only=True)
    after = wadiqam_objective(saved["state_dict"], tiny_tid)
    assert after < 0.8 * before, (before, after)
    assert saved["meta"]["pooling"] == "weighted" and saved["meta"]["lower_better"] is False
    rows = list(csv.DictReader(open(wadiqam_two_epochs.log_path)))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and {"loss", "l1", "val_srocc"} <= set(rows[0])
    # the written file is what the metric loads (its direction read from the file)
    pair = open_dataset("tid2013", tiny_tid)[0]
    dist, ref = pair.load()
    module = turboiqa.WaDIQaM_FR(data_range=255, weights=wadiqam_two_epochs.model_path)
    assert module.lower_better is False
    want = make_task("wadiqam_fr").predict(module.model, dist, ref, {})
    got = turboiqa.wadiqam_fr(dist, ref, data_range=255, weights=wadiqam_two_epochs.model_path)
    assert abs(float(got) - want) <= 1e-5 * max(1.0, abs(want))


def test_wadiqam_resume_gives_the_identical_state(wadiqam_two_epochs, tiny_tid, tmp_path):
    kwargs = {"seed": 1, "lr": 1e-3, "batch_size": 4, "progress": False, "task_options": WADIQAM}
    train("wadiqam_fr", "tid2013", tiny_tid, tmp_path, epochs=1, **kwargs)
    resumed = train("wadiqam_fr", "tid2013", tiny_tid, tmp_path, epochs=2, resume=True, **kwargs)
    a = torch.load(wadiqam_two_epochs.model_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.model_path, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_wadiqam_command_line_options(tiny_tid, tmp_path, capsys):
    assert main(["train", "deepqa", "--dataset", "tid2013", "--root", str(tiny_tid), "--out", str(tmp_path),
                 "--pooling", "patchwise"]) == 2
    assert "--pooling: only for wadiqam_fr" in capsys.readouterr().err
    assert main(["train", "wadiqam_fr", "--dataset", "tid2013", "--root", str(tiny_tid), "--out", str(tmp_path),
                 "--patches-per-image", "0"]) == 2
    assert "patches_per_image must be a positive int" in capsys.readouterr().err
