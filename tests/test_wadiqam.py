"""WaDIQaM-FR: the official Chainer checkpoint layout read without Chainer, the official model's equations
(transcribed below from deepIQA's fr_model.py / evaluate.py), and pyiqa's wadiqam_fr under its convention.

No checkpoint is available offline, so fixed-seed random weights are written in each layout (Chainer HDF5 and
.npz as the official models/*.model, pyiqa's {'params': ...} .pth) and every implementation loads the same file."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import turboiqa
from conftest import import_or_skip, skip_missing
from deep_common import tid_batch
from peer_stubs import import_pyiqa_arch
from turboiqa.cli import main as cli_main
from turboiqa.metrics.wadiqam import WaDIQaMNet, patch_grid
from turboiqa.nets import chainer
from turboiqa.nets.weights import WeightsNotFoundError

CHANNELS = (32, 32, 64, 64, 128, 128, 256, 256, 512, 512)


def chainer_arrays(weighted=True, seed=0) -> dict:
    """Random parameters named and shaped as the official FRModel's links (Chainer: W is (out, in[, kh, kw]))."""
    rng = np.random.default_rng(seed)
    arrays, cin = {}, 3
    for i, cout in enumerate(CHANNELS, start=1):
        arrays[f"conv{i}/W"] = rng.normal(0, np.sqrt(2 / (9 * cin)), (cout, cin, 3, 3)).astype(np.float32)
        arrays[f"conv{i}/b"] = rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        cin = cout
    heads = [("fc1", 1536, 512), ("fc2", 512, 1)] + ([("fc1_a", 1536, 512), ("fc2_a", 512, 1)] if weighted else [])
    for name, fin, fout in heads:
        arrays[f"{name}/W"] = rng.normal(0, np.sqrt(2 / fin), (fout, fin)).astype(np.float32)
        arrays[f"{name}/b"] = rng.uniform(-0.1, 0.1, fout).astype(np.float32)
    arrays["fc2_a/b"] = np.array([0.5], np.float32) if weighted else None  # keep most weights α above the ReLU
    return {k: v for k, v in arrays.items() if v is not None}


def save_hdf5(arrays: dict, path):
    """As chainer.serializers.save_hdf5: one group per link, one dataset per parameter."""
    h5py = import_or_skip("h5py")
    with h5py.File(path, "w") as f:
        for name, a in arrays.items():
            link, param = name.split("/")
            f.require_group(link).create_dataset(param, data=a)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(arrays, path) of a weighted-variant checkpoint stored as the official fr_tid_weighted.model (HDF5)."""
    arrays = chainer_arrays()
    path = tmp_path_factory.mktemp("wadiqam") / "fr_tid_weighted.model"
    save_hdf5(arrays, path)
    return arrays, path


def official_score(arrays: dict, dist: np.ndarray, ref: np.ndarray, weighted=True, dtype=torch.float64) -> torch.Tensor:
    """deepIQA's evaluate.py + FRModel.forward (dropout off) on H×W×3 images with values in [0, 255]."""
    def extract_patches(img):  # sklearn extract_patches(img, (32, 32, 3), 32).reshape(-1, 32, 32, 3), NCHW
        rows, cols = img.shape[0] // 32, img.shape[1] // 32
        out = [img[32 * i:32 * i + 32, 32 * j:32 * j + 32] for i in range(rows) for j in range(cols)]
        return torch.tensor(np.stack(out).transpose(0, 3, 1, 2), dtype=dtype)

    p = {k: torch.tensor(v, dtype=dtype) for k, v in arrays.items()}

    def extract_features(x):
        h = x
        for i in range(1, 11):
            h = F.relu(F.conv2d(h, p[f"conv{i}/W"], p[f"conv{i}/b"], padding=1))
            if i % 2 == 0:
                h = F.max_pool2d(h, 2)
        return h.reshape(h.shape[0], -1)

    h, h_ref = extract_features(extract_patches(dist)), extract_features(extract_patches(ref))
    h_ = torch.cat([h - h_ref, h, h_ref], dim=1)
    y = F.linear(F.relu(F.linear(h_, p["fc1/W"], p["fc1/b"])), p["fc2/W"], p["fc2/b"]).reshape(-1)
    if not weighted:
        return y.mean()
    a = F.relu(F.linear(F.relu(F.linear(h_, p["fc1_a/W"], p["fc1_a/b"])), p["fc2_a/W"], p["fc2_a/b"])) + 1e-6
    a = a.reshape(-1)
    return (y * a).sum() / a.sum()


def hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def test_chainer_reader_npz_and_hdf5(tmp_path, official):
    arrays, h5_path = official
    npz_path = tmp_path / "fr_tid_weighted.npz"
    np.savez(npz_path, **arrays)  # chainer.serializers.save_npz: keys "link/param"
    assert chainer.chainer_format(h5_path) == "hdf5" and chainer.chainer_format(npz_path) == "npz"
    for path in (h5_path, npz_path):
        state = chainer.load_state_dict(path)
        assert set(state) == {k.replace("/W", ".weight").replace("/b", ".bias") for k in arrays}
        for name, a in arrays.items():
            key = name.replace("/W", ".weight").replace("/b", ".bias")
            assert torch.equal(state[key], torch.from_numpy(a))
    # converted once with the CLI: the same tensors in a PyTorch file that torch.load(weights_only=True) reads
    target = tmp_path / "wadiqam-fr-tid2013-weighted.pth"
    assert cli_main(["weights", "convert", str(h5_path), str(target)]) == 0
    converted = torch.load(target, weights_only=True)
    assert all(torch.equal(converted[k], v) for k, v in chainer.load_state_dict(h5_path).items())
    torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pth")
    assert chainer.chainer_format(tmp_path / "plain.pth") is None  # a torch zip is not mistaken for an npz
    assert cli_main(["weights", "convert", str(tmp_path / "plain.pth")]) == 2
    np.savez(tmp_path / "odd.npz", **{"conv1/W": arrays["conv1/W"], "updater/iteration": np.array(3)})
    with pytest.raises(chainer.ChainerFormatError, match="updater/iteration"):
        chainer.load_state_dict(tmp_path / "odd.npz")


def test_same_as_official_equations(official, tid_pairs):
    arrays, path = official
    d, r = tid_batch(tid_pairs[:2], (101, 139))  # odd sizes: 3×4 patches, the remainder dropped
    kwargs = {"reduction": "none", "weights": path}
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 2e-5)):
        x, y = d.to(dtype) / 255, r.to(dtype) / 255
        with torch.no_grad():
            ours = turboiqa.wadiqam_fr(x, y, **kwargs)
        want = torch.stack([official_score(arrays, hwc(d[i].double()), hwc(r[i].double())) for i in range(2)])
        torch.testing.assert_close(ours.double(), want, rtol=tol, atol=tol)
    # uint8 input with data_range=255 gives the same numbers; the two pairs differ
    torch.testing.assert_close(turboiqa.wadiqam_fr(d, r, 255, **kwargs).double(), want, rtol=2e-5, atol=2e-5)
    assert abs(float(want[0] - want[1])) > 1e-3


def test_patchwise_and_gradient(tmp_path, tid_pairs):
    arrays = chainer_arrays(weighted=False, seed=1)
    path = tmp_path / "fr_live_patchwise.model"
    save_hdf5(arrays, path)
    d, r = tid_batch(tid_pairs[:1], (64, 96))
    x = (d.double() / 255).requires_grad_()
    y = r.double() / 255
    ours = turboiqa.wadiqam_fr(x, y, trained_on="live", pooling="patchwise", weights=path)
    # the transcription is plain torch, so it differentiates too (through the images in [0, 255])
    xo = (d.double() / 255).requires_grad_()
    want = _official_torch(arrays, xo[0] * 255, y[0] * 255, weighted=False)
    torch.testing.assert_close(ours, want, rtol=1e-10, atol=1e-10)
    ours.backward()
    want.backward()
    torch.testing.assert_close(x.grad, xo.grad, rtol=1e-9, atol=1e-12)
    assert x.grad.abs().sum() > 0
    assert turboiqa.WaDIQaM_FR(trained_on="live", pooling="patchwise", weights=path).lower_better  # LIVE DMOS


def _official_torch(arrays, dist_chw, ref_chw, weighted):
    """official_score on C×H×W tensors (keeps the autograd graph)."""
    def patches(img):
        rows, cols = img.shape[1] // 32, img.shape[2] // 32
        return torch.stack([img[:, 32 * i:32 * i + 32, 32 * j:32 * j + 32] for i in range(rows) for j in range(cols)])

    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in arrays.items()}

    def feats(x):
        for i in range(1, 11):
            x = F.relu(F.conv2d(x, p[f"conv{i}/W"], p[f"conv{i}/b"], padding=1))
            x = F.max_pool2d(x, 2) if i % 2 == 0 else x
        return x.flatten(1)

    h, h_ref = feats(patches(dist_chw)), feats(patches(ref_chw))
    h_ = torch.cat([h - h_ref, h, h_ref], dim=1)
    y = F.linear(F.relu(F.linear(h_, p["fc1/W"], p["fc1/b"])), p["fc2/W"], p["fc2/b"]).reshape(-1)
    if not weighted:
        return y.mean()
    a = F.relu(F.linear(F.relu(F.linear(h_, p["fc1_a/W"], p["fc1_a/b"])), p["fc2_a/W"], p["fc2_a/b"])).reshape(-1)
    return (y * (a + 1e-6)).sum() / (a + 1e-6).sum()


def test_same_as_pyiqa(tmp_path, tid_pairs):
    arch = import_pyiqa_arch("wadiqam_arch")
    if arch is None:
        skip_missing("pyiqa not installed")
    torch.manual_seed(2)
    theirs = arch.WaDIQaM(metric_type="FR", pretrained=False).eval()
    for m in theirs.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    torch.nn.init.constant_(theirs.fc_w[3].bias, 0.5)
    path = tmp_path / "WaDIQaM-kadid-f7541ea5.pth"
    torch.save({"params": theirs.state_dict()}, path)
    # 96×128: multiples of 32, where pyiqa's range(0, H - 32, 32) drops the last patch row and column
    d, r = tid_batch(tid_pairs[:2], (96, 128))
    x, y = d.float() / 255, r.float() / 255
    kwargs = {"reduction": "none", "trained_on": "kadid", "weights": path}
    with torch.no_grad():
        want = theirs(x, y).flatten()
        torch.testing.assert_close(turboiqa.wadiqam_fr(x, y, **kwargs), want, rtol=1e-5, atol=1e-6)
        want64 = theirs.double()(x.double(), y.double()).flatten()
        torch.testing.assert_close(turboiqa.wadiqam_fr(x.double(), y.double(), **kwargs), want64,
                                   rtol=1e-10, atol=1e-12)
        # the original grid takes the dropped row and column: 3×4 patches instead of 2×3
        assert patch_grid(96, 128, "pyiqa") == (2, 3) and patch_grid(96, 128, "floor") == (3, 4)
        original = turboiqa.wadiqam_fr(x.double(), y.double(), convention="original", **kwargs)
        assert not torch.allclose(original, want64)


def test_chunks_batches_module_and_grey(official):
    _, path = official
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 3, 70, 100, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    whole = turboiqa.wadiqam_fr(x, y, reduction="none", weights=path)
    torch.testing.assert_close(turboiqa.wadiqam_fr(x, y, reduction="none", chunk_size=1, weights=path), whole,
                               rtol=1e-12, atol=1e-12)
    one = torch.stack([turboiqa.wadiqam_fr(x[i:i + 1], y[i:i + 1], weights=path) for i in range(3)])
    torch.testing.assert_close(one, whole, rtol=1e-12, atol=1e-12)
    module = turboiqa.WaDIQaM_FR(reduction="sum", weights=path).double()
    assert not module.lower_better  # TID2013 MOS
    torch.testing.assert_close(module(x, y), whole.sum(), rtol=1e-12, atol=1e-12)
    grey = turboiqa.wadiqam_fr(x[:, :1], y[:, :1], reduction="none", weights=path)
    torch.testing.assert_close(grey, turboiqa.wadiqam_fr(x[:, :1].expand(-1, 3, -1, -1),
                                                         y[:, :1].expand(-1, 3, -1, -1), reduction="none",
                                                         weights=path), rtol=1e-12, atol=1e-12)
    assert turboiqa.METRICS["wadiqam_fr"] is turboiqa.wadiqam_fr


def test_errors(official, tmp_path, monkeypatch):
    _, path = official
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match="at least 32×32"):
        turboiqa.wadiqam_fr(x[..., :31], x[..., :31], weights=path)
    with pytest.raises(ValueError, match="at least 33×33"):  # pyiqa's grid needs one more pixel
        turboiqa.wadiqam_fr(x[..., :32, :32], x[..., :32, :32], convention="pyiqa", weights=path)
    with pytest.raises(ValueError, match="trained_on"):
        turboiqa.wadiqam_fr(x, x, trained_on="csiq", weights=path)
    with pytest.raises(ValueError, match="pooling"):
        turboiqa.wadiqam_fr(x, x, pooling="max", weights=path)
    with pytest.raises(ValueError, match="'patchwise' checkpoint was trained on 'kadid'"):
        turboiqa.wadiqam_fr(x, x, trained_on="kadid", pooling="patchwise")
    with pytest.raises(ValueError, match="channel"):
        turboiqa.wadiqam_fr(torch.rand(1, 2, 40, 40), torch.rand(1, 2, 40, 40), weights=path)
    with pytest.raises(ValueError, match="chunk_size"):
        turboiqa.wadiqam_fr(x, x, chunk_size=0, weights=path)
    with pytest.raises(RuntimeError, match="fc1_a"):  # a patchwise file for the weighted network
        arrays = chainer_arrays(weighted=False)
        save_hdf5(arrays, tmp_path / "pw.model")
        turboiqa.WaDIQaM_FR(weights=tmp_path / "pw.model")
    monkeypatch.setenv("TURBOIQA_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsNotFoundError) as info:
        turboiqa.wadiqam_fr(x, x, trained_on="live")
    message = str(info.value)
    assert "wadiqam-fr-live-weighted.pth" in message and "fr_live_weighted.model" in message
    assert "github.com/dmaniry/deepIQA" in message


def test_network_layout():
    net = WaDIQaMNet("weighted")
    # trunk: sum of 9·cin·cout + cout = 4,712,224; each 1536→512→1 head: 786,944 + 513
    assert sum(p.numel() for p in net.parameters()) == 4_712_224 + 2 * (786_944 + 513)
    assert not hasattr(WaDIQaMNet("patchwise"), "fc1_a")


def test_score_command(official, tmp_path, monkeypatch, capsys):
    """`turboiqa score --metric wadiqam_fr` finds the official file name in TURBOIQA_WEIGHTS and gives the
    functional's value (the CLI takes the distorted image first, as the functional)."""
    import json

    from PIL import Image

    arrays, path = official
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "fr_tid_weighted.model").write_bytes(path.read_bytes())
    monkeypatch.setenv("TURBOIQA_WEIGHTS", str(folder))
    g = torch.Generator().manual_seed(4)
    ref = (torch.rand(3, 70, 90, generator=g) * 255).to(torch.uint8)
    dist = (ref.float() + 20 * torch.randn(ref.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    Image.fromarray(hwc(ref)).save(tmp_path / "ref.png")
    Image.fromarray(hwc(dist)).save(tmp_path / "dist.png")
    assert cli_main(["score", str(tmp_path / "dist.png"), str(tmp_path / "ref.png"), "--metric", "wadiqam_fr",
                     "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    want = official_score(arrays, hwc(dist).astype(np.float64), hwc(ref).astype(np.float64))
    assert abs(row["wadiqam_fr"] - float(want)) < 2e-5 * max(1.0, abs(float(want)))
