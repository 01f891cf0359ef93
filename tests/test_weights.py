"""The weight resolver on temporary folders laid out like each source: explicit path, TURBOIQA_WEIGHTS, the torch
hub cache (full torchvision files and features-only files), packaged heads, wrong sha256, missing files."""
import hashlib

import pytest
import torch
from turboiqa.nets import weights as w
from turboiqa.nets.backbones import AlexNet, build_backbone


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No TURBOIQA_WEIGHTS, an empty TORCH_HOME and HOME: nothing found unless a test puts it there."""
    monkeypatch.delenv(w.ENV_FOLDER, raising=False)
    monkeypatch.delenv(w.ENV_DOWNLOAD, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    w._verified.clear()
    return tmp_path


def small_alexnet_state(seed=0):
    torch.manual_seed(seed)
    return {f"features.{k}": v.clone() for k, v in AlexNet().features.state_dict().items()}


def torchvision_name(path_stem: str, state: dict, folder):
    """Save a full torchvision-style checkpoint under ``<stem>-<sha256[:8]>.pth`` (torchvision's convention)."""
    full = dict(state)
    full["classifier.1.weight"] = torch.zeros(4, 4)
    tmp = folder / "tmp.pth"
    torch.save(full, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    target = folder / f"{path_stem}-{digest[:8]}.pth"
    tmp.rename(target)
    return target, digest


def test_missing_lists_every_place(clean_env, monkeypatch):
    monkeypatch.setenv(w.ENV_FOLDER, str(clean_env / "weights_folder"))
    with pytest.raises(w.WeightsNotFoundError) as info:
        w.resolve("alexnet")
    message = str(info.value)
    assert str(clean_env / "weights_folder" / "alexnet-features-imagenet.pth") in message
    assert str(clean_env / "torch_home" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in message
    assert str(clean_env / "home" / ".cache" / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in message
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    assert "TURBOIQA_DOWNLOAD" in message and "download=True" in message


def test_turboiqa_weights_folder_names(clean_env, monkeypatch):
    folder = clean_env / "shared"
    folder.mkdir()
    state = small_alexnet_state()
    torch.save(state, folder / "alexnet-features-imagenet.pth")
    monkeypatch.setenv(w.ENV_FOLDER, str(folder))
    # a known file name with other content fails its sha256 (the recorded digest is of the real file)
    with pytest.raises(w.WeightsHashError, match="sha256"):
        w.resolve("alexnet")
    known = _with_digest(w.REGISTRY["alexnet"], folder / "alexnet-features-imagenet.pth")
    monkeypatch.setitem(w.REGISTRY, "alexnet", known)
    assert w.resolve("alexnet") == folder / "alexnet-features-imagenet.pth"
    loaded = w.load_backbone_state("alexnet")
    assert set(loaded) == {k[len("features."):] for k in state}


def _with_digest(spec, path):
    from dataclasses import replace

    return replace(spec, sha256={path.name: hashlib.sha256(path.read_bytes()).hexdigest()})


def test_hub_cache_full_torchvision_file(clean_env, monkeypatch):
    hub = clean_env / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    state = small_alexnet_state(1)
    target, digest = torchvision_name("alexnet-owt", state, hub)
    # registry entry whose torchvision name carries this file's hash prefix (as alexnet-owt-7be5be79.pth does)
    from dataclasses import replace

    spec = replace(w.REGISTRY["alexnet"], names=("alexnet-features-imagenet.pth", target.name))
    monkeypatch.setitem(w.REGISTRY, "alexnet", spec)
    assert w.resolve("alexnet") == target
    features = w.load_backbone_state("alexnet")
    assert "classifier.1.weight" not in features and "0.weight" in features  # full file → features part
    model = build_backbone("alex")
    torch.testing.assert_close(model.features[0].weight, state["features.0.weight"])
    # same name, different bytes: the hash prefix no longer matches
    torch.save(small_alexnet_state(2), target)
    w._verified.clear()
    with pytest.raises(w.WeightsHashError, match=digest[:8]):
        w.resolve("alexnet")


def test_default_home_cache_and_features_only_without_prefix(clean_env, tmp_path):
    """~/.cache/torch/hub/checkpoints is searched too (and what is found there is checked); a features-only file
    may omit the 'features.' prefix."""
    home_cache = clean_env / "home" / ".cache" / "torch" / "hub" / "checkpoints"
    home_cache.mkdir(parents=True)
    state = {k[len("features."):]: v for k, v in small_alexnet_state(3).items()}
    # Issue 11 #10: a SqueezeNet file under a name without a recorded digest is no longer picked up.
    torch.save(state, home_cache / "squeezenet1_1-features-imagenet.pth")
    with pytest.raises(w.WeightsNotFoundError):
        w.resolve("squeezenet1_1")
    torch.save(state, home_cache / "squeezenet1_1-b8a52dc0.pth")  # torchvision's name: its digest prefix is checked
    with pytest.raises(w.WeightsHashError, match="b8a52dc0"):
        w.resolve("squeezenet1_1")
    explicit = tmp_path / "trunk.pth"
    torch.save(state, explicit)
    assert set(w.load_backbone_state("alexnet", explicit)) == set(state)


def test_explicit_path_file_and_folder(clean_env, tmp_path):
    state = small_alexnet_state(4)
    f = tmp_path / "my-alexnet.pth"
    torch.save(state, f)
    assert w.resolve("alexnet", f) == f  # unknown name: nothing to verify
    model = build_backbone("alex", weights=f)
    torch.testing.assert_close(model.features[3].weight, state["features.3.weight"])
    with pytest.raises(w.WeightsNotFoundError, match="does not exist"):
        w.resolve("alexnet", tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="do not fit"):
        bad = {k: v for k, v in state.items() if "10." not in k}
        torch.save(bad, f)
        w._verified.clear()
        build_backbone("alex", weights=f)


def test_packaged_heads_verified(clean_env):
    for key in ("lpips-alex", "lpips-vgg", "lpips-squeeze", "dists"):
        p = w.resolve(key)
        assert p.parent == w.packaged_dir()
        assert (p.parent / ("LICENSE.DISTS" if key == "dists" else "LICENSE.LPIPS")).is_file()
    assert w.load_state("dists")["alpha"].shape == (1, 1475, 1, 1)


def test_download_only_when_allowed(clean_env, monkeypatch):
    calls = []

    def fake_download(url, target):
        calls.append(url)
        raise w.WeightsNotFoundError("offline")

    monkeypatch.setattr(w, "download_file", fake_download)
    with pytest.raises(w.WeightsNotFoundError, match="not found"):
        w.resolve("vgg16")
    assert calls == []
    with pytest.raises(w.WeightsNotFoundError, match="offline"):
        w.resolve("vgg16", download=True)
    assert calls == ["https://download.pytorch.org/models/vgg16-397923af.pth"]
    monkeypatch.setenv(w.ENV_DOWNLOAD, "1")
    with pytest.raises(w.WeightsNotFoundError, match="offline"):
        w.resolve("alexnet")


def test_download_times_out_on_a_silent_server(clean_env, monkeypatch, tmp_path):
    # Issue 11 #10: downloads had no timeout (hung > 40 s on a proxy that never answers).
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # accepts the connection in the kernel, never answers
    monkeypatch.setenv(w.ENV_TIMEOUT, "1")
    target = tmp_path / "file.pth"
    start = time.perf_counter()
    try:
        with pytest.raises(w.WeightsNotFoundError, match="failed after at most 1 s"):
            w.download_file(f"http://127.0.0.1:{server.getsockname()[1]}/file.pth", target)
    finally:
        server.close()
    assert time.perf_counter() - start < 10
    assert not target.exists() and not target.with_name("file.pth.partial").exists()


def test_unreadable_file_error_names_it(clean_env, tmp_path):
    # Issue 11 #10: a truncated weight file's error did not say which file.
    good = tmp_path / "trunk.pth"
    torch.save(small_alexnet_state(5), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(w.WeightsHashError, match="truncated.pth"):
        w.load_state("alexnet", truncated)


def test_shared_folder_digests(weights_dir_or_skip):
    """The digests recorded in the registry are those of ../shared/data/weights."""
    for key in ("alexnet", "vgg16", "lpips-alex", "lpips-vgg", "lpips-squeeze", "dists"):
        spec = w.REGISTRY[key]
        p = weights_dir_or_skip / spec.names[0]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == spec.sha256[spec.names[0]]


@pytest.fixture
def weights_dir_or_skip():
    from conftest import skip_missing_shared_data
    from deep_common import WEIGHTS_DIR

    if not WEIGHTS_DIR.is_dir():
        skip_missing_shared_data(WEIGHTS_DIR, "shared weights folder")
    return WEIGHTS_DIR


def test_cli_weights_and_score(weights_dir_or_skip, monkeypatch, capsys):
    import json

    from turboiqa.cli import main

    monkeypatch.setenv(w.ENV_FOLDER, str(weights_dir_or_skip))
    main(["weights", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    found = {(r["metric"], r["file"]): r["found"] for r in rows}
    assert found[("dists", "vgg16")] == str(weights_dir_or_skip / "vgg16-features-imagenet.pth")
    assert found[("lpips (net='alex')", "lpips-alex")].endswith("lpips-v0.1-alex-lin.pth")
    missing = [r for r in rows if not r["found"]]
    assert all((r["url"] or r["hint"]) and r["searched"] for r in missing)  # deepqa: no URL, how to train it
    assert main(["score", "--demo", "--metric", "lpips,lpips_swd", "--json"]) == 0
    scores = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(scores) == 3 and all(0 < s["lpips_swd"] <= s["lpips"] < 1 for s in scores)


def test_too_small_images_get_a_clear_error(clean_env, tmp_path):
    # Issue 11 (clear errors): LPIPS below 31 px failed inside torch's pooling with "Output size is too small".
    f = tmp_path / "trunk.pth"
    torch.save(small_alexnet_state(6), f)
    model = build_backbone("alex", weights=f)
    with pytest.raises(ValueError, match=r"7×7 images are too small .* at least 31×31 pixels"):
        model(torch.rand(1, 3, 7, 7))
    assert len(model(torch.rand(1, 3, 31, 31))) == len(model.taps)


def test_weights_command_exit_code(clean_env, monkeypatch, capsys, weights_dir_or_skip):
    # Issue 11: `turboiqa weights` exited 1 with every default file present (only the optional SqueezeNet missing).
    from turboiqa.cli import main

    monkeypatch.setenv(w.ENV_FOLDER, str(weights_dir_or_skip))
    assert main(["weights"]) == 0
    assert "lpips (net='squeeze') (optional)" in capsys.readouterr().out
    monkeypatch.setenv(w.ENV_FOLDER, str(clean_env))  # nothing there: the defaults are missing
    assert main(["weights"]) == 1
