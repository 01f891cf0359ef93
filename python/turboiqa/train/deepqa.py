"""DeepQA's training task (the official ``FR_sens_1`` set-up, SPECS §11; facts in turboiqa.metrics.deepqa).

* Examples: the whole grey image pair (TID2013/TID2008/CSIQ/KADID) or, for LIVE, all 112×112 patches of the
  shared 'shift_center' grid, pooled over the image; every training image also enters flipped left–right (the
  official loader doubles the set the same way).
* Labels are divided by ``label_scale`` while training (TID MOS / 9 as ``gen_list_TID.m``; CSIQ DMOS as is;
  other sets — LIVE, whose official list holds DMOS min–max normalised to [0, 1], KADID — by their largest
  |score|) so the ReLU output starts near the labels; the saved file records the scale and the metric multiplies it
  back, so scores come out in the dataset's units.
* Initialisation: the official one; a regression head whose ReLU output is dead is drawn again (``build_model``).
* Loss: 1e3·MSE + 1e−2·TV(s, β = 3) + 5e−3·Σ W² (``training_loss``). Adam; lr 5e−4 for TID/CSIQ and 1e−4 for LIVE
  (the official LIVE run used Nadam), 5 images per batch, 80 epochs by default.
"""
from __future__ import annotations

import torch

from ..metrics.deepqa import DeepQANet, check_size, grey, maps, patch_grid, score_grey, training_loss

LABEL_SCALES = {"tid2013": 9.0, "tid2008": 9.0, "csiq": 1.0}  # others: their largest |score|
PATCH_SIZES = {"live": 112}
LEARNING_RATES = {"live": 1e-4}
DEFAULT_LR, DEFAULT_BATCH, DEFAULT_EPOCHS = 5e-4, 5, 80


def _grey(t: torch.Tensor) -> torch.Tensor:
    """A dataset image (uint8, or float32 holding 16-bit values) → grey [0, 1]."""
    return grey(t, 255 if t.dtype == torch.uint8 else 65535)


class DeepQATask:
    name = "deepqa"
    weights_name = "deepqa.pth"
    loss_parts = ("mse", "tv", "l2")

    def config(self, dataset: str, data) -> dict:
        scale = LABEL_SCALES.get(dataset)
        if scale is None:
            scale = max(abs(r["score"]) for r in data.records()) or 1.0
        return {"lr": LEARNING_RATES.get(dataset, DEFAULT_LR), "batch_size": DEFAULT_BATCH,
                "epochs": DEFAULT_EPOCHS, "patch_size": PATCH_SIZES.get(dataset), "label_scale": float(scale),
                "flip": True}

    def build_model(self) -> DeepQANet:
        """The official initialisation, except that the regression head is drawn again (same distribution, same
        RNG) while its final ReLU gives 0 for every mean perceptual error in [0.05, 1]: such a dead start has no
        gradient at all and never trains (about half the draws; the official code has no guard)."""
        model = DeepQANet()
        probe = torch.linspace(0.05, 1.0, 20)[:, None]
        for _ in range(100):
            with torch.no_grad():
                if (model.regress(probe) > 0).any():
                    break
            model.reset_parameters(("fc1", "fc2"))
        return model

    def example(self, dist: torch.Tensor, ref: torch.Tensor, score: float, flip: bool, config: dict) -> dict:
        """Grey [0, 1] float32 (patch stacks for LIVE) and the scaled label."""
        d, r = _grey(dist), _grey(ref)
        if flip:
            d, r = d.flip(-1), r.flip(-1)
        size = config["patch_size"]
        check_size(d.shape[-2], d.shape[-1], size)
        if size is not None:
            corners = patch_grid(d.shape[-2], d.shape[-1], size)
            d = torch.cat([d[..., t:t + size, l:l + size] for t, l in corners])
            r = torch.cat([r[..., t:t + size, l:l + size] for t, l in corners])
        return {"dist": d, "ref": r, "label": score / config["label_scale"]}

    def loss(self, model: DeepQANet, examples: list[dict]) -> dict:
        pooled, sens = [], []
        for ex in examples:
            found = maps(model, ex["dist"], ex["ref"])
            pooled.append(found["pooled"].mean(dim=0, keepdim=True))  # one feature per image (patch mean)
            sens.append(found["sensitivity"])
        predicted = model.regress(torch.cat(pooled))
        target = torch.tensor([ex["label"] for ex in examples], dtype=predicted.dtype, device=predicted.device)
        return training_loss(model, predicted, target, sens)

    def predict(self, model: DeepQANet, dist: torch.Tensor, ref: torch.Tensor, config: dict) -> float:
        """Score in the dataset's units (the network's output times the label scale), as the metric gives it."""
        d, r = _grey(dist), _grey(ref)
        return float(score_grey(model, d, r, config["patch_size"])) * config["label_scale"]

    def metadata(self, config: dict, data) -> dict:
        return {"task": self.name, "lower_better": not data.score_higher_is_better, "score_name": data.score_name,
                "label_scale": config["label_scale"], "patch_size": config["patch_size"]}
