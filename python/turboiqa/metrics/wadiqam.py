"""WaDIQaM-FR — Bosse, Maniry, Müller, Wiegand, Samek, "Deep neural networks for no-reference and full-reference
image quality assessment", IEEE TIP 27(1), 2018 (arXiv:1612.01697). SPECS §12.

Reference code: dmaniry/deepIQA (Chainer; ``fr_model.py``, ``evaluate.py``, checkpoints ``models/fr_{live,tid}_
{patchwise,weighted}.model`` trained on all of LIVE or TID2013). Per 32×32 patch a VGG-like trunk (ten 3×3
convolutions with ReLU, 32-32-64-64-128-128-256-256-512-512 channels, a 2×2 max-pool after every second one) maps the
distorted and the reference patch to 512-vectors f_d, f_r; fused as **(f_d − f_r, f_d, f_r)** (the code's order; the
paper writes another); quality q = fc2(dropout(relu(fc1(·)))); for the 'weighted' variant a weight
α = relu(fc2_a(dropout(relu(fc1_a(·))))) + ε; the image's score is Σ α·q / Σ α ('weighted') or the mean of q
('patchwise'). Dropout is off here (``evaluate.py`` never switches Chainer's train flag off, so the official script
scores with dropout active — a random score; the paper's numbers are deterministic).

Scores are in the units of the checkpoint's training labels: LIVE DMOS (**lower = better**), TID2013 MOS (**higher =
better**, the default), KADID-10k DMOS as pyiqa stores it (higher = better). :data:`WADIQAM_CHECKPOINTS` says which.

Conventions (``convention``):

* ``'original'``: RGB in [0, 255] (``data_range`` maps to 255), no normalisation, ε = 1e−6, the ⌊H/32⌋×⌊W/32⌋
  non-overlapping patches from the top-left corner (``sklearn.extract_patches`` with step 32), remainder dropped.
* ``'pyiqa'``: pyiqa's ``wadiqam_fr`` (its KADID-10k retrain, pyiqa 0.1.16): RGB in [0, 1], fusion
  (f_r, f_d, f_d − f_r), ε = 1e−8, patch starts ``range(0, H − 32, 32)`` — one patch row/column fewer than the
  original when H or W is a multiple of 32.

Patch pairs go through the network ``chunk_size`` at a time; only two sums per image are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..allocator import reuse_freed_memory
from ..nets import cached
from ..nets.chainer import chainer_format, load_state_dict as load_chainer
from ..nets.runtime import conv_relu, needs_grad, prepare_module
from ..nets.weights import WeightsHashError, resolve
from ..validate import as_batch, check_pair, check_reduction, reduce
from .module import check_leading_arguments

PATCH = 32
DEFAULT_CHUNK = 512
CHANNELS = (32, 32, 64, 64, 128, 128, 256, 256, 512, 512)
POOLINGS = ("weighted", "patchwise")


@dataclass(frozen=True)
class WaDIQaMConvention:
    peak: float  # the network's input range: [0, peak]
    eps: float  # added to the patch weights
    grid: str  # 'floor' (⌊H/32⌋ patches) | 'pyiqa' (range(0, H − 32, 32))
    fusion: str  # 'diff_dist_ref' = (f_d − f_r, f_d, f_r) | 'ref_dist_diff' = (f_r, f_d, f_d − f_r)


WADIQAM_CONVENTIONS = {
    "original": WaDIQaMConvention(peak=255.0, eps=1e-6, grid="floor", fusion="diff_dist_ref"),
    "pyiqa": WaDIQaMConvention(peak=1.0, eps=1e-8, grid="pyiqa", fusion="ref_dist_diff"),
}


@dataclass(frozen=True)
class Checkpoint:
    weights_key: str  # turboiqa.nets.weights registry key
    lower_better: bool
    convention: str  # the convention the checkpoint was trained under


def _checkpoints() -> dict:
    out = {}
    for data, lower in (("live", True), ("tid2013", False)):
        for pooling in POOLINGS:
            out[(data, pooling)] = Checkpoint(f"wadiqam-fr-{data}-{pooling}", lower, "original")
    out[("kadid", "weighted")] = Checkpoint("wadiqam-fr-kadid", False, "pyiqa")
    return out


WADIQAM_CHECKPOINTS = _checkpoints()  # (trained_on, pooling) → Checkpoint
TRAINED_ON = ("tid2013", "live", "kadid")


class WaDIQaMNet(nn.Module):
    """The FR network with the official Chainer model's link names (``conv1``…``conv10``, ``fc1``, ``fc2``,
    ``fc1_a``, ``fc2_a``); pyiqa's layout (``features.*``, ``fc_q.*``, ``fc_w.*``) is renamed on load."""

    def __init__(self, pooling: str = "weighted"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        cin = 3
        for i, cout in enumerate(CHANNELS, start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1))
            cin = cout
        self.fc1 = nn.Linear(3 * 512, 512)
        self.fc2 = nn.Linear(512, 1)
        if pooling == "weighted":
            self.fc1_a = nn.Linear(3 * 512, 512)
            self.fc2_a = nn.Linear(512, 1)

    def features(self, patches: torch.Tensor) -> torch.Tensor:
        """P×3×32×32 → P×512."""
        h = patches
        for i in range(1, len(CHANNELS) + 1):
            h = conv_relu(getattr(self, f"conv{i}"), h)
            if i % 2 == 0:
                h = F.max_pool2d(h, 2)
        return h.flatten(1)

    def quality_and_weight(self, dist: torch.Tensor, ref: torch.Tensor, eps: float, fusion: str = "diff_dist_ref",
                           dropout: bool = False):
        """Per-patch quality q and weight α (ones for 'patchwise'), two (P,) tensors. ``dropout``: the training
        runs' p = 0.5 dropout (off for scoring whatever the module's train/eval mode: a metric is deterministic)."""
        f = self.features(torch.cat([dist, ref]))
        fd, fr = f[:dist.shape[0]], f[dist.shape[0]:]
        parts = [fd - fr, fd, fr] if fusion == "diff_dist_ref" else [fr, fd, fd - fr]
        fused = torch.cat(parts, dim=1)
        q = self.fc2(F.dropout(F.relu(self.fc1(fused)), 0.5, dropout)).reshape(-1)
        if self.pooling == "patchwise":
            return q, torch.ones_like(q)
        a = F.relu(self.fc2_a(F.dropout(F.relu(self.fc1_a(fused)), 0.5, dropout))).reshape(-1) + eps
        return q, a


PYIQA_NAMES = {"fc_q.0": "fc1", "fc_q.3": "fc2", "fc_w.0": "fc1_a", "fc_w.3": "fc2_a"}
PYIQA_FEATURES = (0, 2, 5, 7, 10, 12, 15, 17, 20, 22)  # nn.Sequential indices of the ten convolutions


def official_state(state: dict) -> dict:
    """A state dict in the official link names, from the official names or pyiqa's checkpoint layout."""
    for wrapper in ("state_dict", "params"):  # lightning-style / pyiqa's checkpoint wrappers
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    state = {k[len("net."):] if k.startswith("net.") else k: v for k, v in state.items()}
    conv_of = {f"features.{j}": f"conv{i}" for i, j in enumerate(PYIQA_FEATURES, start=1)}
    out = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        out[f"{conv_of.get(module, PYIQA_NAMES.get(module, module))}.{param}"] = value
    return out


def load_weights(key: str, path=None, download: bool | None = None) -> tuple[dict, dict]:
    """(state dict in the official names, metadata) of the checkpoint for registry ``key`` (or the explicit
    ``path``): a PyTorch file or an official Chainer ``.model`` read directly. The metadata is what ``turboiqa train
    wadiqam_fr`` recorded (pooling, convention, lower_better, dataset); empty for other files."""
    p = resolve(key, path, download)
    if chainer_format(p):
        return official_state(load_chainer(p)), {}
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - say which file could not be read
        raise WeightsHashError(f"{p} could not be loaded as a WaDIQaM-FR checkpoint: {exc}") from exc
    meta = state.get("meta", {}) if isinstance(state.get("meta"), dict) else {}
    return official_state({k: v for k, v in state.items() if k != "meta"}), meta


def patch_grid(height: int, width: int, grid: str) -> tuple[int, int]:
    """(patch rows, patch columns) of the non-overlapping grid from the top-left corner."""
    if grid == "pyiqa":
        return len(range(0, height - PATCH, PATCH)), len(range(0, width - PATCH, PATCH))
    return height // PATCH, width // PATCH


def patches(image: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """C×H×W → (rows·cols)×C×32×32, row-major (the order ``extract_patches(...).reshape(-1, 32, 32, 3)`` gives)."""
    c = image.shape[0]
    grid = image[:, :rows * PATCH, :cols * PATCH].reshape(c, rows, PATCH, cols, PATCH)
    return grid.permute(1, 3, 0, 2, 4).reshape(rows * cols, c, PATCH, PATCH)


def check_options(pooling: str, convention: str, trained_on: str):
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if convention not in WADIQAM_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(WADIQAM_CONVENTIONS)}, got {convention!r}")
    if trained_on not in TRAINED_ON:
        raise ValueError(f"trained_on must be one of {TRAINED_ON}, got {trained_on!r}")
    if (trained_on, pooling) not in WADIQAM_CHECKPOINTS:
        raise ValueError(f"no {pooling!r} checkpoint was trained on {trained_on!r}; "
                         f"available: {sorted(WADIQAM_CHECKPOINTS)}")


def wadiqam_score(model: WaDIQaMNet, x, y, data_range: float = 1.0, reduction: str = "mean",
                  convention: str = "original", chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """WaDIQaM-FR of a pair with an already built :class:`WaDIQaMNet` (its ``pooling`` decides the pooling)."""
    check_reduction(reduction)
    if convention not in WADIQAM_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(WADIQAM_CONVENTIONS)}, got {convention!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    conv = WADIQAM_CONVENTIONS[convention]
    x, y = check_pair(x, y, data_range)
    if x.shape[1] == 1:  # grey: the three channels the network takes
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) or 1 channel, got {x.shape[1]}")
    height, width = x.shape[-2:]
    rows, cols = patch_grid(height, width, conv.grid)
    if rows < 1 or cols < 1:
        least = PATCH if conv.grid == "floor" else PATCH + 1
        raise ValueError(f"x is {height}×{width}: WaDIQaM-FR ({convention!r} grid) needs at least {least}×{least} "
                         f"pixels (one {PATCH}×{PATCH} patch)")
    dtype = prepare_module(model, x.device)
    with torch.enable_grad() if needs_grad(x, y) else torch.no_grad(), reuse_freed_memory(x.device.type == "cpu"):
        scores = [image_score(model, x[n].to(dtype) * (conv.peak / data_range),
                              y[n].to(dtype) * (conv.peak / data_range), rows, cols, conv, chunk_size)
                  for n in range(x.shape[0])]
    return reduce(torch.stack(scores), reduction)


def image_score(model: WaDIQaMNet, dist: torch.Tensor, ref: torch.Tensor, rows: int, cols: int,
                conv: WaDIQaMConvention, chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Score of one C×H×W pair already scaled to the network's range, over its rows×cols patch grid."""
    pd, pr = patches(dist, rows, cols), patches(ref, rows, cols)
    weighted = total = 0
    for begin in range(0, pd.shape[0], chunk_size):
        q, a = model.quality_and_weight(pd[begin:begin + chunk_size], pr[begin:begin + chunk_size], conv.eps,
                                        conv.fusion)
        weighted = weighted + (q * a).sum().double()
        total = total + a.sum().double()
    return (weighted / total).to(dist.dtype)


def random_patch_pairs(dist: torch.Tensor, ref: torch.Tensor, count: int, generator: torch.Generator | None = None):
    """``count`` random 32×32 patches of a C×H×W pair, at the same positions in both (the paper's training
    sampling: 32 patches per image and step)."""
    height, width = dist.shape[-2:]
    rows = torch.randint(0, height - PATCH + 1, (count,), generator=generator).tolist()
    cols = torch.randint(0, width - PATCH + 1, (count,), generator=generator).tolist()
    pick = lambda img: torch.stack([img[:, r:r + PATCH, c:c + PATCH] for r, c in zip(rows, cols)])  # noqa: E731
    return pick(dist), pick(ref)


def training_loss(model: WaDIQaMNet, dist: torch.Tensor, ref: torch.Tensor, target: torch.Tensor,
                  convention: str = "original") -> torch.Tensor:
    """The official L1 loss of a batch: ``dist``/``ref`` are B×P×3×32×32 patch pairs already scaled to the
    convention's range, ``target`` (B,). 'weighted': mean over images of |Σα·q/Σα − t| (``weighted_loss``);
    'patchwise': mean over patches of |q − t| (``patchwise_loss``). Dropout on, as in training."""
    conv = WADIQAM_CONVENTIONS[convention]
    b, p = dist.shape[:2]
    q, a = model.quality_and_weight(dist.flatten(0, 1), ref.flatten(0, 1), conv.eps, conv.fusion, dropout=True)
    q, a = q.reshape(b, p), a.reshape(b, p)
    if model.pooling == "patchwise":
        return (q - target[:, None]).abs().mean()
    return ((q * a).sum(1) / a.sum(1) - target).abs().mean()


def build_model(trained_on: str, pooling: str, weights=None, download=None) -> WaDIQaMNet:
    model = WaDIQaMNet(pooling)
    state, model.meta = load_weights(WADIQAM_CHECKPOINTS[(trained_on, pooling)].weights_key, weights, download)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def default_convention(trained_on: str, convention: str | None) -> str:
    if trained_on not in TRAINED_ON:
        raise ValueError(f"trained_on must be one of {TRAINED_ON}, got {trained_on!r}")
    return WADIQAM_CHECKPOINTS[(trained_on, "weighted")].convention if convention is None else convention


def wadiqam_fr(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    trained_on: str = "tid2013",
    pooling: str = "weighted",
    convention: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    weights=None,
    download: bool | None = None,
) -> torch.Tensor:
    """WaDIQaM-FR score of each pair: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference: N×3×H×W RGB (or N×1×H×W grey, repeated), uint8 or float in [0, data_range],
    at least 32×32. ``trained_on``: 'tid2013' (default; MOS, **higher = better**), 'live' (DMOS, **lower =
    better**) — the official deepIQA checkpoints — or 'kadid' (pyiqa's retrain, higher = better, weighted only).
    ``pooling``: 'weighted' (default, as ``evaluate.py``) or 'patchwise'. ``convention``: 'original' or 'pyiqa'
    (default: the checkpoint's). ``weights``: an explicit checkpoint (PyTorch ``.pth`` or the Chainer ``.model``).
    Differentiable w.r.t. both images.
    """
    check_options(pooling, default_convention(trained_on, convention), trained_on)
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32

    def build():
        model = build_model(trained_on, pooling, weights, download).to(device=xb.device, dtype=dtype)
        prepare_module(model, xb.device)
        return model

    model = cached(("wadiqam_fr", trained_on, pooling, str(weights), str(xb.device), dtype), build)
    return wadiqam_score(model, x, y, data_range, reduction, default_convention(trained_on, convention), chunk_size)


class WaDIQaM_FR(nn.Module):
    """Module form of :func:`wadiqam_fr`; holds the network (``.to(device)`` / ``.double()`` move it).
    ``forward(x, y)``: ``x`` distorted, ``y`` reference. ``lower_better`` tells the checkpoint's direction."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, trained_on: str = "tid2013",
                 pooling: str = "weighted", convention: str | None = None, chunk_size: int = DEFAULT_CHUNK,
                 weights=None, download: bool | None = None):
        super().__init__()
        check_leading_arguments("WaDIQaM_FR", data_range, reduction)
        convention = default_convention(trained_on, convention)
        check_options(pooling, convention, trained_on)
        self.model = build_model(trained_on, pooling, weights, download)
        # a file written by `turboiqa train wadiqam_fr` records its dataset's direction
        registry = WADIQAM_CHECKPOINTS[(trained_on, pooling)]
        self.lower_better = self.model.meta.get("lower_better", registry.lower_better)
        self.kwargs = {"data_range": data_range, "reduction": reduction, "convention": convention,
                       "chunk_size": chunk_size}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return wadiqam_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
