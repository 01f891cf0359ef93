"""DeepQA — J. Kim, S. Lee, "Deep learning of human visual sensitivity in image quality assessment framework",
CVPR 2017, pp. 1676–1684. SPECS §11.

A small CNN predicts a *sensitivity map* s from the distorted image and the error map; the perceptual error map
p = s ⊙ e (at 1/4 resolution) is averaged (border shaved) and a tiny regressor maps the mean to the subjective
score.

**No official weights exist** (the authors released training code only). ``turboiqa train deepqa --dataset
tid2013 --root PATH`` trains a model and writes ``deepqa.pth``; ``weights=`` or the usual weight folders
(``TURBOIQA_WEIGHTS``, the torch hub cache) find it. ``pretrained=False`` builds random weights (seed torch first)
for tests and training.

Facts read in the official Theano code (github.com/jongyookim/IQA_DeepQA_FR_release):

* ``laplacian_pyr.py``: binomial kernel k = outer([1 4 6 4 1])/256; ``downsample_img`` = 5×5 convolution with
  'half' (zero, 2 px) padding and stride 2 (output ⌈H/2⌉); ``upsample_img`` = the transposed convolution
  (``conv2d_grad_wrt_inputs``) with 4·k back to the recorded size; ``normalize_lowpass_subt(img, 3)`` =
  img − up(up(down(down(img)))).
* ``models/FR_sens_1.py``: error map ``log_diff_fn(ref, dist, eps=1.0)`` =
  [2 ln 255 − ln((255 (I_r − I_d))² + ε)] / (2 ln 255 − ln ε); e_ds4 = down(down(e)); branch on the normalised
  *distorted* image (conv1_1 32, conv2_1 32 stride 2) and branch on e (conv1_2 32, conv2_2 32 stride 2), concat,
  conv3 64, conv4 64 stride 2, conv5 64, conv6 1 with ReLU and bias initialised to 1 → s; p = s ⊙ e_ds4; shave
  ``ign`` = 4 at the 1/4 scale; mean over space (patch mode: over all patches of the image too); FC 1→4 leaky
  ReLU, FC 4→1 ReLU. Loss = 1e3·MSE + 1e−2·TV(s, β=3) + 5e−3·L2 where TV = mean((g_y² + g_x²)^{β/2}) with 'valid'
  3×3 Sobel filters and L2 = Σ of the squared *weights* (not biases) of every layer (``model_basis.py``,
  ``mode='sum'``). In ``train_iqa.py`` the model's ``x`` is the reference and ``x_c`` the distorted image.
* ``layers/layers.py``: leaky ReLU slope 0.1; convolutions 'half' (zero) padding; He-uniform initialisation with
  gain √(2/(1+0.1²)) for leaky ReLU and √2 for ReLU, bound gain·√(3/fan_in); biases zero except conv6's.
* ``data_load/data_loader_IQA.py``: grey = RGB (uint8) · [0.299, 0.587, 0.114] unrounded, /255; horizontal-flip
  augmentation doubles the training set; patches of the same grid for reference and distorted images
  ('shift_center': the non-covered margin split, rounded to even). ``gen_list_TID.m`` divides TID MOS by 9;
  CSIQ DMOS is used as is; the shipped LIVE list holds DMOS min–max normalised to [0, 1].
  ``configs/FR_sens_1.yaml``: Adam, lr 5e−4 (TID/CSIQ, full images), Nadam lr 1e−4 (LIVE, 112×112 patches),
  batch 5 images, 80 epochs, 80/20 split.

From SPECS §11 (not re-derived): the paper's protocol (80/20 reference split, 10 repetitions) and the output units.

Differences from the Theano code, by design: Theano's ``conv2d`` flips its filters (a true convolution), PyTorch
correlates, so a Theano checkpoint's conv kernels would need ``[..., ::-1, ::-1]`` and its FC matrices a transpose
(no such checkpoint exists). Scores are multiplied by the checkpoint's ``label_scale`` (9 for TID) so they come out
in the dataset's own units.

Direction: that of the training labels — a checkpoint trained on TID2013/TID2008/KADID MOS is **higher = better**,
on LIVE/CSIQ DMOS **lower = better**; the trained file records it and :class:`DeepQA` / :func:`load_deepqa` expose
it as ``lower_better`` (``None`` for random weights).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..colour import to_luma
from ..nets import cached
from ..nets import runtime
from ..nets.runtime import needs_grad, prepare_module, to_unit_range
from ..nets.weights import WeightsHashError, resolve
from ..validate import as_batch, check_pair, check_reduction, reduce
from .module import check_leading_arguments

LRELU_SLOPE = 0.1
EPS = 1.0  # log_diff_fn's ε as FR_sens_1 calls it
IGN = 4  # border shaved at 1/4 scale
LEVELS = 3  # normalize_lowpass_subt(img, 3)
LOSS_WEIGHTS = {"mse": 1e3, "tv": 1e-2, "l2": 5e-3}  # wl_subj, wr_tv, wr_l2
TV_BETA = 3.0
# The smallest side whose 1/4-scale map keeps one pixel after shaving IGN on each side: ⌈⌈H/2⌉/2⌉ ≥ 2·IGN + 1.
MIN_SIDE = 4 * (2 * IGN) + 1


def binomial_kernel(dtype=torch.float32, device=None) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
    return (torch.outer(k, k) / 256.0).to(dtype=dtype, device=device)[None, None]


def downsample(img: torch.Tensor) -> torch.Tensor:
    """N×1×H×W → N×1×⌈H/2⌉×⌈W/2⌉: binomial 5×5, zero padding 2, stride 2 (``downsample_img``)."""
    return F.conv2d(img, binomial_kernel(img.dtype, img.device), stride=2, padding=2)


def upsample(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Transposed ``downsample`` with 4·k back to ``size`` (``upsample_img``)."""
    extra = (size[0] - (2 * img.shape[-2] - 1), size[1] - (2 * img.shape[-1] - 1))
    return F.conv_transpose2d(img, 4 * binomial_kernel(img.dtype, img.device), stride=2, padding=2,
                              output_padding=extra)


def normalize_lowpass_subt(img: torch.Tensor, levels: int = LEVELS) -> torch.Tensor:
    """img minus its low-pass at 1/2^(levels−1) scale, brought back up level by level."""
    sizes, low = [], img
    for _ in range(levels - 1):
        sizes.append(tuple(low.shape[-2:]))  # the size each upsampling must restore
        low = downsample(low)
    for size in reversed(sizes):
        low = upsample(low, size)
    return img - low


def log_diff(ref: torch.Tensor, dist: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Error map in [0, 1], 1 where the images agree (intensities in [0, 1], differences in 8-bit units)."""
    log_255_sq = 2.0 * math.log(255.0)
    return (log_255_sq - torch.log((255.0 * (ref - dist)) ** 2 + eps)) / (log_255_sq - math.log(eps))


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


class DeepQANet(nn.Module):
    """The FR_sens_1 network; parameter names follow the official layer names (``conv1_1`` … ``conv6``, ``fc1``,
    ``fc2``). ``lower_better``/``meta`` describe the checkpoint loaded into it (None/{} for random weights)."""

    def __init__(self):
        super().__init__()
        self.conv1_1 = nn.Conv2d(1, 32, 3, padding=1)  # on the normalised distorted image
        self.conv2_1 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv1_2 = nn.Conv2d(1, 32, 3, padding=1)  # on the error map
        self.conv2_2 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv4 = nn.Conv2d(64, 64, 3, stride=2, padding=1)
        self.conv5 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv6 = nn.Conv2d(64, 1, 3, padding=1)
        self.fc1 = nn.Linear(1, 4)
        self.fc2 = nn.Linear(4, 1)
        self.lower_better: bool | None = None
        self.meta: dict = {}
        self.reset_parameters()

    def reset_parameters(self, names: tuple[str, ...] | None = None) -> None:
        """He-uniform as ``layers.init_he``: bound = gain·√(3/fan_in); zero biases, conv6's bias 1. ``names``:
        only these layers (default all)."""
        for name, layer in self.named_children():
            if names is not None and name not in names:
                continue
            relu_out = name in ("conv6", "fc2")
            gain = math.sqrt(2.0) if relu_out else math.sqrt(2.0 / (1.0 + LRELU_SLOPE ** 2))
            fan_in = layer.weight[0].numel()
            bound = gain * math.sqrt(3.0 / fan_in)
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound)
                layer.bias.fill_(1.0 if name == "conv6" else 0.0)

    def sensitivity(self, dist_norm: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        """Sensitivity map s (N×1×⌈⌈H/2⌉/2⌉×…) from the normalised distorted image and the error map."""
        a = lrelu(self.conv2_1(lrelu(self.conv1_1(dist_norm))))
        b = lrelu(self.conv2_2(lrelu(self.conv1_2(error))))
        h = torch.cat([a, b], dim=1)
        for conv in (self.conv3, self.conv4, self.conv5):
            h = lrelu(conv(h))
        return F.relu(self.conv6(h))

    def regress(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, 1) mean perceptual error → (N,) predicted score (in the network's label units)."""
        return F.relu(self.fc2(lrelu(self.fc1(pooled)))).reshape(-1)

    def l2(self) -> torch.Tensor:
        """Σ squared weights of every layer (biases excluded), the official L2 term."""
        return sum((layer.weight ** 2).sum() for layer in self.children())


def maps(model: DeepQANet, dist: torch.Tensor, ref: torch.Tensor) -> dict:
    """All intermediate maps for grey N×1×H×W images in [0, 1]: 'error' (full scale), 'error_ds4', 'sensitivity',
    'perceptual' (s ⊙ e_ds4), 'pooled' (N, 1: the shaved spatial mean)."""
    error = log_diff(ref, dist)
    sens = model.sensitivity(normalize_lowpass_subt(dist), error)
    error_ds4 = downsample(downsample(error))
    perceptual = sens * error_ds4
    pooled = perceptual[..., IGN:-IGN, IGN:-IGN].mean(dim=(2, 3))
    return {"error": error, "error_ds4": error_ds4, "sensitivity": sens, "perceptual": perceptual,
            "pooled": pooled}


def patch_grid(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping size×size grid, 'shift_center' as the official loader: the
    uncovered margin halved (rounded up) then made even."""
    ny, nx = (height - size) // size + 1, (width - size) // size + 1
    shift = []
    for n, side in ((ny, height), (nx, width)):
        s = (side - (size * (n - 1) + size) + 1) // 2
        shift.append(s - 1 if s % 2 == 1 else s)
    return [(i * size + shift[0], j * size + shift[1]) for i in range(ny) for j in range(nx)]


def grey(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """N×C×H×W in [0, data_range] → N×1×H×W float in [0, 1]; RGB by 0.299/0.587/0.114, unrounded, as the
    official loader (``rgb2gray`` then /255)."""
    x = to_unit_range(x, data_range)
    return x if x.shape[1] == 1 else to_luma(x, "yiq", 1.0)


def check_size(height: int, width: int, patch_size: int | None) -> None:
    side = min(height, width) if patch_size is None else patch_size
    if side < MIN_SIDE:
        what = f"x is {height}×{width}" if patch_size is None else f"patch_size={patch_size}"
        raise ValueError(f"{what}: DeepQA needs at least {MIN_SIDE}×{MIN_SIDE} pixels (two 2× reductions, then "
                         f"{IGN} pixels shaved off each border at 1/4 scale)")
    if patch_size is not None and (height < patch_size or width < patch_size):
        raise ValueError(f"x is {height}×{width}: smaller than one {patch_size}×{patch_size} patch")


def score_grey(model: DeepQANet, dist: torch.Tensor, ref: torch.Tensor, patch_size: int | None = None,
               return_maps: bool = False):
    """Raw network score (N,) of grey [0, 1] images (label units before ``label_scale``); with ``return_maps`` also
    the maps of :func:`maps` (full-image mode only)."""
    if patch_size is None:
        out = maps(model, dist, ref)
        score = model.regress(out["pooled"])
        return (score, out) if return_maps else score
    if return_maps:
        raise ValueError("return_maps needs patch_size=None (maps of whole images)")
    corners = patch_grid(dist.shape[-2], dist.shape[-1], patch_size)
    pooled = []
    for n in range(dist.shape[0]):
        pd = torch.cat([dist[n:n + 1, :, t:t + patch_size, l:l + patch_size] for t, l in corners])
        pr = torch.cat([ref[n:n + 1, :, t:t + patch_size, l:l + patch_size] for t, l in corners])
        pooled.append(maps(model, pd, pr)["pooled"].mean(dim=0, keepdim=True))  # mean over the image's patches
    return model.regress(torch.cat(pooled))


def total_variation(s: torch.Tensor, beta: float = TV_BETA) -> torch.Tensor:
    """mean((g_y² + g_x²)^(β/2)) with 'valid' 3×3 Sobel gradients of the N×1×H×W map (the official TV term)."""
    sobel_y = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]], dtype=s.dtype, device=s.device)
    kernels = torch.stack([sobel_y, sobel_y.T])[:, None]  # x kernel = −transposed y kernel; the square drops the sign
    g = F.conv2d(s, kernels)
    return ((g ** 2).sum(dim=1) ** (beta / 2)).mean()


def training_loss(model: DeepQANet, predicted: torch.Tensor, target: torch.Tensor, sensitivity_maps,
                  weights: dict | None = None) -> dict:
    """The official cost: wl·MSE(predicted, target) + wtv·TV(s) + wl2·L2(weights); ``sensitivity_maps`` one map
    batch or a list (the TV is then the mean of the per-map TVs, equal to the official mean when sizes agree).
    Returns the total ('loss') and its parts."""
    w = {**LOSS_WEIGHTS, **(weights or {})}
    if isinstance(sensitivity_maps, torch.Tensor):
        sensitivity_maps = [sensitivity_maps]
    mse = ((predicted - target) ** 2).mean()
    tv = torch.stack([total_variation(s) for s in sensitivity_maps]).mean()
    l2 = model.l2()
    return {"loss": w["mse"] * mse + w["tv"] * tv + w["l2"] * l2, "mse": mse, "tv": tv, "l2": l2}


def load_state(weights=None, download: bool | None = None) -> tuple[dict, dict]:
    """(state dict, metadata) of a trained DeepQA file: ``{'state_dict': …, 'meta': …}`` as ``turboiqa train``
    writes it, or a bare state dict."""
    p = resolve("deepqa", weights, download)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - say which file could not be read
        raise WeightsHashError(f"{p} could not be loaded as a DeepQA checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise TypeError(f"{p} holds a {type(state).__name__}, expected a DeepQA state dict")
    if isinstance(state.get("state_dict"), dict):
        return state["state_dict"], dict(state.get("meta") or {})
    return state, {}


def load_deepqa(weights=None, download: bool | None = None, pretrained: bool = True) -> DeepQANet:
    """A :class:`DeepQANet` in eval mode with frozen parameters: the trained file (see the module docstring) or,
    with ``pretrained=False``, random weights from torch's current RNG."""
    model = DeepQANet()
    if pretrained:
        state, meta = load_state(weights, download)
        model.load_state_dict(state)
        model.meta = meta
        if "lower_better" in meta:
            model.lower_better = bool(meta["lower_better"])
    return model.eval().requires_grad_(False)


def channels_last(model: DeepQANet, device: torch.device) -> None:
    """channels_last weights on the CPU (oneDNN without reorders: 451 vs 624 ms at 512×384, one thread).
    prepare_module looks at the first weight only, which with one input channel is both layouts at once."""
    if device.type == "cpu" and runtime.CPU_CHANNELS_LAST and \
            not model.conv3.weight.is_contiguous(memory_format=torch.channels_last):
        model.to(memory_format=torch.channels_last)


def deepqa_score(model: DeepQANet, x, y, data_range: float = 1.0, reduction: str = "mean",
                 patch_size: int | None = None, return_maps: bool = False):
    """DeepQA of a pair with an already built :class:`DeepQANet`; see :func:`deepqa`."""
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"x must have 1 (grey) or 3 (RGB) channels, got {x.shape[1]}")
    if patch_size is None:
        patch_size = model.meta.get("patch_size")
    if patch_size is not None and (isinstance(patch_size, bool) or not isinstance(patch_size, int)):
        raise ValueError(f"patch_size must be None or an int, got {patch_size!r}")
    check_size(x.shape[-2], x.shape[-1], patch_size)
    dtype = prepare_module(model, x.device)
    channels_last(model, x.device)
    scale = float(model.meta.get("label_scale", 1.0))
    with torch.enable_grad() if needs_grad(x, y) else torch.no_grad():
        dist, ref = grey(x, data_range).to(dtype), grey(y, data_range).to(dtype)
        out = score_grey(model, dist, ref, patch_size, return_maps)
    if return_maps:
        score, found = out
        result = {"sensitivity": found["sensitivity"], "perceptual": found["perceptual"],
                  "error": found["error_ds4"]}
        return reduce(score * scale, reduction), result
    return reduce(out * scale, reduction)


def _model(weights, download, pretrained, device, dtype):
    def build():
        model = load_deepqa(weights, download, pretrained).to(device=device, dtype=dtype)
        prepare_module(model, device)
        return model

    if not pretrained:  # random weights follow the caller's RNG: never cached
        return build()
    return cached(("deepqa", str(weights), str(device), dtype), build)


def deepqa(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    weights=None,
    download: bool | None = None,
    pretrained: bool = True,
    patch_size: int | None = None,
    return_maps: bool = False,
):
    """DeepQA score of each pair: (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference: N×1×H×W grey or N×3×H×W RGB (converted to grey as the official loader),
    uint8 or float in [0, data_range], at least 33×33. Direction and units are the trained checkpoint's (see the
    module docstring; ``load_deepqa(weights).lower_better``). ``weights``: the trained ``deepqa.pth`` (default:
    searched in the weight folders; there are no official weights). ``pretrained=False``: random weights from torch's
    RNG (tests). ``patch_size``: score the mean over non-overlapping patches as the official LIVE set-up (default:
    the checkpoint's, whole images otherwise). ``return_maps``: also return a dict of the 1/4-scale sensitivity map
    s, perceptual error map p = s ⊙ e and downsampled error map e. Differentiable w.r.t. both images.
    """
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32
    model = _model(weights, download, pretrained, xb.device, dtype)
    return deepqa_score(model, x, y, data_range, reduction, patch_size, return_maps)


def deepqa_maps(x, y, data_range: float = 1.0, *, weights=None, download=None, pretrained: bool = True) -> dict:
    """The sensitivity map s, the perceptual error map p and the error map e (all N×1×H/4×W/4) and the scores."""
    score, found = deepqa(x, y, data_range, "none", weights=weights, download=download, pretrained=pretrained,
                          return_maps=True)
    return {**found, "score": score}


class DeepQA(nn.Module):
    """Module form of :func:`deepqa`; holds the network (``.to(device)`` / ``.double()`` move it).
    ``forward(x, y)``: ``x`` distorted, ``y`` reference. ``lower_better`` tells the checkpoint's direction."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, weights=None,
                 download: bool | None = None, pretrained: bool = True, patch_size: int | None = None):
        super().__init__()
        check_leading_arguments("DeepQA", data_range, reduction)
        self.model = load_deepqa(weights, download, pretrained)
        self.lower_better = self.model.lower_better
        self.kwargs = {"data_range": data_range, "reduction": reduction, "patch_size": patch_size}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return deepqa_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
