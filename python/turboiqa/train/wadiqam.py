"""WaDIQaM-FR's training task (Bosse et al. 2018, §IV; SPECS §12; facts in turboiqa.metrics.wadiqam).

* Examples: 32 random 32×32 patch pairs per image at the same positions in both (drawn from torch's global RNG,
  which the checkpoint saves, so a resumed run draws the same patches), RGB in the convention's range ([0, 255] for
  'original'); every training image also enters flipped left–right.
* Loss: the official L1 — 'weighted': mean over images of |Σα·q/Σα − t|; 'patchwise': mean over patches of
  |q − t| — with dropout p = 0.5 before each head's last layer. Adam, lr 1e−4, 4 images (128 patch pairs) per batch
  as in the paper; 100 epochs by default (the paper trains longer with early stopping on validation).
* Validation: the metric's own scoring (the full non-overlapping patch grid, dropout off) on the held-out
  references. The saved ``wadiqam-fr.pth`` loads with ``turboiqa.wadiqam_fr(d, r, weights=path, pooling=...)``.
"""
from __future__ import annotations

import torch

from ..metrics.wadiqam import (PATCH, WADIQAM_CONVENTIONS, WaDIQaMNet, image_score, patch_grid, random_patch_pairs,
                               training_loss)

DEFAULT_LR, DEFAULT_BATCH, DEFAULT_EPOCHS = 1e-4, 4, 100
PATCHES_PER_IMAGE = 32


def _scaled(t: torch.Tensor, peak: float) -> torch.Tensor:
    """A dataset image (uint8, or float32 holding 16-bit values) → float32 in [0, peak]."""
    return t.float() * (peak / (255.0 if t.dtype == torch.uint8 else 65535.0))


class WaDIQaMTask:
    name = "wadiqam_fr"
    weights_name = "wadiqam-fr.pth"
    loss_parts = ("l1",)

    def __init__(self, pooling: str = "weighted", convention: str = "original",
                 patches_per_image: int = PATCHES_PER_IMAGE):
        if convention not in WADIQAM_CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(WADIQAM_CONVENTIONS)}, got {convention!r}")
        if isinstance(patches_per_image, bool) or not isinstance(patches_per_image, int) or patches_per_image < 1:
            raise ValueError(f"patches_per_image must be a positive int, got {patches_per_image!r}")
        WaDIQaMNet(pooling)  # checks the pooling name
        self.pooling, self.convention, self.patches_per_image = pooling, convention, patches_per_image
        self.conv = WADIQAM_CONVENTIONS[convention]

    def config(self, dataset: str, data) -> dict:
        return {"lr": DEFAULT_LR, "batch_size": DEFAULT_BATCH, "epochs": DEFAULT_EPOCHS, "flip": True,
                "patches_per_image": self.patches_per_image}

    def build_model(self) -> WaDIQaMNet:
        return WaDIQaMNet(self.pooling)

    def example(self, dist: torch.Tensor, ref: torch.Tensor, score: float, flip: bool, config: dict) -> dict:
        d, r = _scaled(dist[0], self.conv.peak), _scaled(ref[0], self.conv.peak)
        if d.shape[0] == 1:
            d, r = d.expand(3, -1, -1), r.expand(3, -1, -1)
        if min(d.shape[-2:]) < PATCH:
            raise ValueError(f"a training image is {d.shape[-2]}×{d.shape[-1]}: WaDIQaM-FR needs at least 32×32")
        if flip:
            d, r = d.flip(-1), r.flip(-1)
        pd, pr = random_patch_pairs(d, r, config["patches_per_image"])
        return {"dist": pd, "ref": pr, "label": float(score)}

    def loss(self, model: WaDIQaMNet, examples: list[dict]) -> dict:
        dist = torch.stack([ex["dist"] for ex in examples])
        ref = torch.stack([ex["ref"] for ex in examples])
        target = torch.tensor([ex["label"] for ex in examples], dtype=dist.dtype, device=dist.device)
        l1 = training_loss(model, dist, ref, target, self.convention)
        return {"loss": l1, "l1": l1}

    def predict(self, model: WaDIQaMNet, dist: torch.Tensor, ref: torch.Tensor, config: dict) -> float:
        d, r = _scaled(dist[0], self.conv.peak), _scaled(ref[0], self.conv.peak)
        if d.shape[0] == 1:
            d, r = d.expand(3, -1, -1), r.expand(3, -1, -1)
        rows, cols = patch_grid(d.shape[-2], d.shape[-1], self.conv.grid)
        return float(image_score(model, d, r, rows, cols, self.conv))

    def metadata(self, config: dict, data) -> dict:
        return {"task": self.name, "lower_better": not data.score_higher_is_better, "score_name": data.score_name,
                "pooling": self.pooling, "convention": self.convention}
