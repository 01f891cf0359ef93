"""Weight files for the deep metrics, offline first (SPECS §19).

Search order for each file, stopping at the first hit:

1. an explicit ``path=`` (a file, or a folder searched under the names below);
2. the folder named by ``TURBOIQA_WEIGHTS`` (``../shared/data/weights`` layout: ``alexnet-features-imagenet.pth``,
   ``vgg16-features-imagenet.pth``, ``lpips-v0.1-alex-lin.pth``, ``dists-alpha-beta.pth``, …; torchvision's own file
   names are accepted there too);
3. the torch hub cache — ``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``) and
   ``~/.cache/torch/hub/checkpoints`` — where lpips, piq, pyiqa and torchvision users already hold
   ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``, ``squeezenet1_1-b8a52dc0.pth`` — then pyiqa's own cache
   ``<hub dir>/pyiqa`` (``PieAPPv0.1-0937b014.pth``);
4. for the small LPIPS heads and DISTS α/β: the copies shipped inside this package (``turboiqa/data/weights``);
5. only if allowed (``download=True`` or ``TURBOIQA_DOWNLOAD=1``): the official URL, saved into the hub cache.

Every file whose content is known is checked by sha256 before it is loaded (full digests for the files of
``../shared/data/weights`` and the packaged heads, torchvision's 8-hex-digit prefix embedded in its file names), and
loaded with ``torch.load(weights_only=True)``. A file that cannot be found raises :class:`WeightsNotFoundError`
listing every place searched and the URL to fetch.

Backbone files may be torchvision's full checkpoints (``features.*`` plus ``classifier.*``) or features-only state
dicts (``features.*`` keys, or the same keys without the ``features.`` prefix): :func:`load_backbone_state` returns
the ``features`` part keyed without the prefix.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

ENV_FOLDER = "TURBOIQA_WEIGHTS"
ENV_DOWNLOAD = "TURBOIQA_DOWNLOAD"
ENV_TIMEOUT = "TURBOIQA_DOWNLOAD_TIMEOUT"


@dataclass(frozen=True)
class WeightFile:
    """One logical weight file: the names it goes by, their digests, where it comes from."""

    key: str
    description: str
    names: tuple[str, ...]  # accepted file names, preferred first
    sha256: dict = field(default_factory=dict)  # file name → full hex digest
    url: str | None = None  # official download (the last name in ``names`` is the file it saves as)
    hub_cache: bool = False  # torchvision checkpoint that may sit in the torch hub cache
    packaged: str | None = None  # file name inside turboiqa/data/weights
    licence: str = ""
    missing_hint: str = ""  # how to get a file that has no official download (e.g. train it)

    def hash_prefix(self, name: str) -> str | None:
        """torchvision convention: ``<stem>-<first 8 hex digits of the sha256>.pth``."""
        if self.hub_cache and name == self.names[-1]:
            return name.rsplit("-", 1)[-1].split(".")[0]
        return None


TORCHVISION = "https://download.pytorch.org/models/"

REGISTRY: dict[str, WeightFile] = {w.key: w for w in [
    WeightFile("alexnet", "AlexNet ImageNet trunk (torchvision)",
               ("alexnet-features-imagenet.pth", "alexnet-owt-7be5be79.pth"),
               {"alexnet-features-imagenet.pth": "711ecb07da5116d159f1a3c4186f4fb7a0f411c542a131bcd3f2a874bb38bb71"},
               url=TORCHVISION + "alexnet-owt-7be5be79.pth", hub_cache=True, licence="BSD-3-Clause (torchvision)"),
    WeightFile("vgg16", "VGG16 ImageNet trunk (torchvision)",
               ("vgg16-features-imagenet.pth", "vgg16-397923af.pth"),
               {"vgg16-features-imagenet.pth": "bda7160d2ba16c797a1c51a323c8e8044094d4479e8b40b3c330c396e7e0f100"},
               url=TORCHVISION + "vgg16-397923af.pth", hub_cache=True, licence="BSD-3-Clause (torchvision)"),
    # Only torchvision's file name, whose embedded digest prefix is checked: no features-only copy with a known
    # digest exists (an unchecked name let a random-weights file load silently). An explicit weights= path is
    # taken as the user's choice.
    WeightFile("squeezenet1_1", "SqueezeNet 1.1 ImageNet trunk (torchvision)",
               ("squeezenet1_1-b8a52dc0.pth",),
               url=TORCHVISION + "squeezenet1_1-b8a52dc0.pth", hub_cache=True, licence="BSD-3-Clause (torchvision)"),
    WeightFile("lpips-alex", "LPIPS v0.1 linear heads for AlexNet", ("lpips-v0.1-alex-lin.pth",),
               {"lpips-v0.1-alex-lin.pth": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"},
               url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
               packaged="lpips-v0.1-alex-lin.pth", licence="BSD-2-Clause (LPIPS)"),
    WeightFile("lpips-vgg", "LPIPS v0.1 linear heads for VGG16", ("lpips-v0.1-vgg-lin.pth",),
               {"lpips-v0.1-vgg-lin.pth": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"},
               url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
               packaged="lpips-v0.1-vgg-lin.pth", licence="BSD-2-Clause (LPIPS)"),
    WeightFile("lpips-squeeze", "LPIPS v0.1 linear heads for SqueezeNet 1.1", ("lpips-v0.1-squeeze-lin.pth",),
               {"lpips-v0.1-squeeze-lin.pth": "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76"},
               url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/squeeze.pth",
               packaged="lpips-v0.1-squeeze-lin.pth", licence="BSD-2-Clause (LPIPS)"),
    WeightFile("dists", "DISTS alpha/beta (1x1475x1x1 each)", ("dists-alpha-beta.pth",),
               {"dists-alpha-beta.pth": "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"},
               url="https://github.com/dingkeyan93/DISTS/raw/master/DISTS_pytorch/weights.pt",
               packaged="dists-alpha-beta.pth", licence="MIT (DISTS)"),
    # Official file, piq's mirror (same name) or pyiqa's copy; ≈270 MB, never shipped. No digest is recorded
    # (none could be checked offline): an unknown name would load unverified, so only these names are searched.
    WeightFile("pieapp", "PieAPP v0.1 network (official PyTorch checkpoint)",
               ("PieAPPv0.1.pth", "PieAPPv0.1-0937b014.pth"),
               url="https://web.ece.ucsb.edu/~ekta/projects/PieAPPv0.1//weights/PieAPPv0.1.pth",
               licence="see github.com/prashnani/PerceptualImageError"),
    # Official deepIQA Chainer checkpoints (HDF5, read directly, or converted once by `turboiqa weights convert`
    # to the .pth name listed first) and pyiqa's KADID-10k retrain. No digests recorded (none checkable offline).
    *[WeightFile(f"wadiqam-fr-{data}-{pooling}",
                 f"WaDIQaM-FR trained on {label}, {pooling} pooling (official deepIQA Chainer model)",
                 (f"wadiqam-fr-{data}-{pooling}.pth", f"fr_{short}_{pooling}.model"),
                 url=f"https://github.com/dmaniry/deepIQA/raw/master/models/fr_{short}_{pooling}.model",
                 licence="MIT (deepIQA)")
      for data, short, label in (("live", "live", "LIVE"), ("tid2013", "tid", "TID2013"))
      for pooling in ("weighted", "patchwise")],
    WeightFile("wadiqam-fr-kadid", "WaDIQaM-FR retrained on KADID-10k by pyiqa", ("WaDIQaM-kadid-f7541ea5.pth",),
               url="https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/WaDIQaM-kadid-f7541ea5.pth",
               licence="see github.com/chaofengc/IQA-PyTorch"),
    # No official weights were ever released (SPECS §11): the file is what `turboiqa train deepqa` writes.
    WeightFile("deepqa", "DeepQA network (trained locally; no official weights exist)", ("deepqa.pth",),
               licence="your own training run",
               missing_hint="No official DeepQA weights exist (the authors released training code only). Train a "
               "model with `turboiqa train deepqa --dataset tid2013 --root PATH` and pass the deepqa.pth it writes "
               "as weights=…, or put it in a folder named by TURBOIQA_WEIGHTS."),
]}

# What each metric needs, for ``turboiqa weights`` and the error messages.
METRIC_WEIGHTS = {
    "lpips (net='alex')": ("alexnet", "lpips-alex"),
    "lpips (net='vgg')": ("vgg16", "lpips-vgg"),
    "lpips (net='squeeze')": ("squeezenet1_1", "lpips-squeeze"),
    "dists": ("vgg16", "dists"),
    "deepsim": ("vgg16",),
    "lpips_swd": ("alexnet", "lpips-alex"),
    "pieapp": ("pieapp",),
    "wadiqam_fr": ("wadiqam-fr-tid2013-weighted",),
    "wadiqam_fr (trained_on='live')": ("wadiqam-fr-live-weighted",),
    "wadiqam_fr (pooling='patchwise')": ("wadiqam-fr-tid2013-patchwise",),
    "wadiqam_fr (trained_on='live', pooling='patchwise')": ("wadiqam-fr-live-patchwise",),
    "wadiqam_fr (trained_on='kadid')": ("wadiqam-fr-kadid",),
    "deepqa": ("deepqa",),
    "dnn_features": ("alexnet",),
}
# Configurations that are not any metric's default, and checkpoints only their metric's users fetch (PieAPP's
# 270 MB): a missing file there is reported but is no failure.
OPTIONAL_METRICS = {"lpips (net='squeeze')", "pieapp", "wadiqam_fr", "wadiqam_fr (trained_on='live')",
                    "wadiqam_fr (pooling='patchwise')", "wadiqam_fr (trained_on='live', pooling='patchwise')",
                    "wadiqam_fr (trained_on='kadid')", "deepqa"}


class WeightsNotFoundError(FileNotFoundError):
    pass


class WeightsHashError(ValueError):
    pass


def hub_checkpoint_dirs() -> list[Path]:
    """``torch.hub.get_dir()/checkpoints`` (honours $TORCH_HOME) and the default ~/.cache location."""
    dirs = [Path(torch.hub.get_dir()) / "checkpoints", Path("~/.cache/torch/hub/checkpoints").expanduser()]
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def packaged_dir() -> Path:
    return Path(str(resources.files("turboiqa") / "data" / "weights"))


def candidates(spec: WeightFile, path: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """Every (source, file) looked at, in search order."""
    out = []
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            out += [("path", p / n) for n in spec.names]
        else:
            out.append(("path", p))
    folder = os.environ.get(ENV_FOLDER)
    if folder:
        out += [(ENV_FOLDER, Path(folder).expanduser() / n) for n in spec.names]
    for d in hub_checkpoint_dirs():
        out += [("torch hub cache", d / n) for n in spec.names]
    out += [("pyiqa cache", Path(torch.hub.get_dir()) / "pyiqa" / n) for n in spec.names]
    if spec.packaged:
        out.append(("package", packaged_dir() / spec.packaged))
    return out


_verified: dict = {}  # (path, size, mtime) → digest, so a large file is hashed once per process


def sha256_of(p: Path) -> str:
    stat = p.stat()
    key = (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _verified[key] = h.hexdigest()
    return _verified[key]


def verify(spec: WeightFile, p: Path) -> None:
    """Check ``p`` against the known digest for its file name (nothing to check for an unknown name)."""
    full = spec.sha256.get(p.name)
    prefix = spec.hash_prefix(p.name)
    if full is None and prefix is None:
        return
    digest = sha256_of(p)
    if (full is not None and digest != full) or (prefix is not None and not digest.startswith(prefix)):
        raise WeightsHashError(
            f"{p} does not have the sha256 expected for {spec.description}: got {digest}, expected "
            f"{full or prefix + '…'}. The file is corrupt or a different file under a known name; delete it and "
            f"fetch {spec.url}")


def download_timeout() -> float:
    """Seconds a download may wait for the server at a time (connect, or between two reads)."""
    return float(os.environ.get(ENV_TIMEOUT, "30"))


def download_file(url: str, target: Path) -> None:
    """``url`` → ``target``, through a temporary file in the same folder renamed at the end (a failed or killed
    download leaves nothing under the real name). A server that does not answer within download_timeout()
    seconds raises instead of hanging (torch.hub's downloader has no timeout)."""
    timeout = download_timeout()
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(partial, target)
    except (OSError, urllib.error.URLError) as exc:  # socket.timeout is an OSError
        partial.unlink(missing_ok=True)
        raise WeightsNotFoundError(
            f"download of {url} to {target} failed after at most {timeout:g} s without data ({exc}); "
            f"set {ENV_TIMEOUT} for a slow connection, or fetch the file yourself and put it at {target}") from exc


def download_allowed(download: bool | None) -> bool:
    if download is not None:
        return bool(download)
    return os.environ.get(ENV_DOWNLOAD, "").lower() in ("1", "true", "yes")


def find(key: str, path: str | os.PathLike | None = None) -> tuple[Path | None, list[tuple[str, Path]]]:
    """The first existing candidate (or None) and the list searched; does not verify or download."""
    searched = candidates(REGISTRY[key], path)
    for _, p in searched:
        if p.is_file():
            return p, searched
    return None, searched


def resolve(key: str, path: str | os.PathLike | None = None, download: bool | None = None) -> Path:
    """The verified file for ``key`` (see the module docstring for the search order)."""
    if key not in REGISTRY:
        raise ValueError(f"unknown weight file {key!r}; known: {sorted(REGISTRY)}")
    spec = REGISTRY[key]
    if path is not None and not Path(path).expanduser().exists():
        raise WeightsNotFoundError(f"weights path {path!r} (for {spec.description}) does not exist")
    found, searched = find(key, path)
    if found is not None:
        verify(spec, found)
        return found
    if spec.url and download_allowed(download):
        target = hub_checkpoint_dirs()[0] / spec.names[-1]  # torchvision's own name for the trunks
        target.parent.mkdir(parents=True, exist_ok=True)
        download_file(spec.url, target)
        verify(spec, target)
        return target
    listed = "\n".join(f"  - {p}  ({source})" for source, p in searched)
    if spec.url is None and spec.missing_hint:
        raise WeightsNotFoundError(f"{spec.description}: {'/'.join(spec.names)} not found. Searched:\n{listed}\n"
                                   f"{spec.missing_hint}")
    raise WeightsNotFoundError(
        f"{spec.description} not found. Searched:\n{listed}\n"
        f"Get it from {spec.url} and put it in the torch hub cache ({hub_checkpoint_dirs()[0]}) or in a folder named "
        f"by {ENV_FOLDER}=…, pass weights=… to the metric, or allow the download with download=True / "
        f"{ENV_DOWNLOAD}=1.")


def load_state(key: str, path=None, download: bool | None = None) -> dict:
    """``torch.load(weights_only=True)`` of the resolved file, on the CPU."""
    p = resolve(key, path, download)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, not a torch file, unsafe pickle: say which file
        raise WeightsHashError(
            f"{p} ({REGISTRY[key].description}) could not be loaded: {exc}. The file is damaged or not a weight "
            f"file; delete it and fetch {REGISTRY[key].url}") from exc
    if not isinstance(state, dict):
        raise TypeError(f"{p} holds a {type(state).__name__}, expected a state dict")
    return state


def load_backbone_state(key: str, path=None, download: bool | None = None) -> dict:
    """The ``features`` part of a torchvision checkpoint (full or features-only), keys without ``features.``."""
    state = load_state(key, path, download)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if any(k.startswith("features.") for k in state):
        return {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    return dict(state)


def status() -> list[dict]:
    """One row per (metric, file): where it was found (or the searched list) — for ``turboiqa weights``."""
    rows = []
    for metric, keys in METRIC_WEIGHTS.items():
        for key in keys:
            spec = REGISTRY[key]
            found, searched = find(key)
            rows.append({"metric": metric, "optional": metric in OPTIONAL_METRICS, "file": key,
                         "description": spec.description,
                         "found": str(found) if found else None, "searched": [str(p) for _, p in searched],
                         "url": spec.url, "licence": spec.licence, "hint": spec.missing_hint})
    return rows
