"""torchmetrics' image-quality ``Metric`` classes with turboiqa's kernels: ``from turboiqa.compat.torchmetrics import
StructuralSimilarityIndexMeasure`` instead of ``from torchmetrics.image import …``.

Each class *is* torchmetrics' class (a subclass): same constructor, states, ``dist_reduce_fx``, ``compute``,
``forward``, DDP synchronisation and ``merge_state``. Only ``update`` changes: where the arguments are ones turboiqa
computes (a Gaussian window of one int size, a numeric ``data_range`` the values lie in, 4-D float input, no
full-image returns), the per-image values come from turboiqa's ``convention="torchmetrics"`` and are added to
torchmetrics' own states; any other call runs torchmetrics' own ``update``. Needs torchmetrics installed
(``pip install torchmetrics``).

LPIPS and DISTS score every call with turboiqa's networks (the same weights: the official LPIPS v0.1 heads, DISTS'
α/β and torchvision's ImageNet trunks, found by :mod:`turboiqa.nets.weights`), so they also work where torchvision
is missing; the LPIPS class builds turboiqa's network instead of torchmetrics' (``self.net``).
"""
from __future__ import annotations

import torch

try:
    from torchmetrics.image import MultiScaleStructuralSimilarityIndexMeasure as _TmMultiScaleSsim
    from torchmetrics.image import PeakSignalNoiseRatio as _TmPsnr
    from torchmetrics.image import StructuralSimilarityIndexMeasure as _TmSsim
except ImportError as exc:  # pragma: no cover - exercised only without torchmetrics
    raise ImportError("turboiqa.compat.torchmetrics subclasses torchmetrics' metrics: pip install torchmetrics") from exc

from torchmetrics import Metric
from torchmetrics.image.dists import DeepImageStructureAndTextureSimilarity as _TmDists
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity as _TmLpips

from ..metrics import dists as _dists
from ..metrics import lpips as _lpips
from ..metrics.ms_ssim import ms_ssim as _ms_ssim
from ..metrics.ssim import ssim as _ssim
from . import fused_bounds

__all__ = ["DeepImageStructureAndTextureSimilarity", "LearnedPerceptualImagePatchSimilarity",
           "MultiScaleStructuralSimilarityIndexMeasure", "PeakSignalNoiseRatio", "StructuralSimilarityIndexMeasure"]


def _squared_errors(preds: torch.Tensor, target: torch.Tensor, data_range) -> torch.Tensor | None:
    """Per-image Σ(preds − target)² (float64) when turboiqa can take the pair as given: same-shape 4-D float tensors
    with every value in [0, data_range], checked in the same fused pass. None otherwise: out-of-range values are
    torchmetrics' business, its code runs instead."""
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        return None
    if preds.dim() != 4 or preds.shape != target.shape or preds.dtype != target.dtype:
        return None
    if not preds.dtype.is_floating_point or preds.device != target.device:
        return None
    total, low, high = fused_bounds(preds, target)
    inside = bool(torch.isfinite(total).all()) and low >= 0 and high <= data_range
    return total if inside else None


def _within(preds: torch.Tensor, target: torch.Tensor, data_range) -> bool:
    return _squared_errors(preds, target, data_range) is not None


def _single_size(kernel_size, sigma) -> bool:
    return isinstance(kernel_size, int) and isinstance(sigma, (int, float)) and not isinstance(sigma, bool)


class _SimilarityStates:
    """Adds per-image similarities to torchmetrics' 'similarity'/'total' states exactly as its update does (SSIM
    counts images only when it sums them; MS-SSIM always)."""

    counts_every_update = False

    def _add(self, values: torch.Tensor, count: int) -> None:
        if self.reduction in ("elementwise_mean", "sum"):
            self.similarity += values.sum().to(self.similarity.dtype)
        else:
            self.similarity.append(values)
        if self.reduction in ("elementwise_mean", "sum") or self.counts_every_update:
            self.total += count


class StructuralSimilarityIndexMeasure(_SimilarityStates, _TmSsim):
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if (not self.gaussian_kernel or self.return_full_image or self.return_contrast_sensitivity
                or not _single_size(self.kernel_size, self.sigma) or not _within(preds, target, self.data_range)):
            return super().update(preds, target)
        values = _ssim(preds, target, float(self.data_range), "none", convention="torchmetrics", k1=self.k1,
                       k2=self.k2, kernel_size=self.kernel_size, kernel_sigma=float(self.sigma))
        self._add(values.to(preds.dtype), preds.shape[0])


class MultiScaleStructuralSimilarityIndexMeasure(_SimilarityStates, _TmMultiScaleSsim):
    counts_every_update = True

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if (not self.gaussian_kernel or self.normalize != "relu" or not _single_size(self.kernel_size, self.sigma)
                or not _within(preds, target, self.data_range)):
            return super().update(preds, target)
        values = _ms_ssim(preds, target, float(self.data_range), "none", convention="torchmetrics",
                          scale_weights=torch.tensor(self.betas, dtype=torch.float64), kernel_size=self.kernel_size,
                          kernel_sigma=float(self.sigma), k1=self.k1, k2=self.k2)
        self._add(values.to(preds.dtype), preds.shape[0])


class PeakSignalNoiseRatio(_TmPsnr):
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        total = None
        if self.dim is None and self.clamping_fn is None:
            total = _squared_errors(preds, target, self.data_range.item())  # one fused native pass
        if total is None:
            return super().update(preds, target)
        self.sum_squared_error += total.sum().to(self.sum_squared_error.dtype)
        self.total += preds.numel()


class LearnedPerceptualImagePatchSimilarity(_TmLpips):
    """torchmetrics' LPIPS (states ``all_scores``, ``compute``, ``plot``) on turboiqa's network and fused distance;
    input checked as torchmetrics does (ValueError): N×3×H×W in [−1, 1], or [0, 1] with ``normalize=True``."""

    def __init__(self, net_type: str = "alex", reduction: str | None = "mean", normalize: bool = False,
                 **kwargs) -> None:
        Metric.__init__(self, **kwargs)  # not torchmetrics' constructor: it builds its network through torchvision
        if net_type not in _lpips.LPIPS_NETS:
            raise ValueError(f"Argument `net_type` must be one of {_lpips.LPIPS_NETS}, but got {net_type}.")
        if reduction not in ("mean", "sum", "none", None):
            raise ValueError(f"Argument `reduction` must be one of ('mean', 'sum', 'none', None), but got {reduction}")
        if not isinstance(normalize, bool):
            raise ValueError(f"Argument `normalize` should be an bool but got {normalize}")
        self.net = _lpips.LPIPSNet(net_type).eval().requires_grad_(False)
        self.reduction, self.normalize = reduction, normalize
        self.add_state("all_scores", default=[], dist_reduce_fx=None)

    def update(self, img1: torch.Tensor, img2: torch.Tensor) -> None:
        for img in (img1, img2):
            low, high = img.min(), img.max()
            inside = (low >= 0 and high <= 1) if self.normalize else low >= -1
            if img.ndim != 4 or img.shape[1] != 3 or not inside:
                raise ValueError(
                    "Expected both input arguments to be normalized tensors with shape [N, 3, H, W]. Got input with "
                    f"shape {img1.shape} and {img2.shape} and values in range {[img1.min(), img1.max()]} and "
                    f"{[img2.min(), img2.max()]} when all values are expected to be in the "
                    f"{[0, 1] if self.normalize else [-1, 1]} range.")
        scores = _lpips.lpips_of_checked(self.net, img1, img2, 1.0, self.normalize)
        self.all_scores.append(scores.squeeze())  # torchmetrics keeps a 0-d tensor for a batch of one


class DeepImageStructureAndTextureSimilarity(_TmDists):
    """torchmetrics' DISTS (states ``score``/``total``) with turboiqa's network, built once per device and dtype
    (torchmetrics builds and loads a new VGG16 on every ``update``). Float input in [0, 1]; other dtypes run
    torchmetrics' own ``update``."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if not preds.is_floating_point() or preds.dtype != target.dtype or preds.dim() != 4:
            return super().update(preds, target)
        dtype = torch.float64 if preds.dtype == torch.float64 else torch.float32
        model = _dists.dists_model(preds.device, dtype)
        with torch.enable_grad() if preds.requires_grad else torch.no_grad():
            scores = _dists.dists_of_unit_range(model, preds.to(dtype), target.to(dtype))
        self.score += scores.sum()
        self.total += preds.shape[0]
