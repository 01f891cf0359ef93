"""Fixtures shared by the deep-metric tests: the weights folder of ../shared/data and the TID2013 pairs as a batch."""
import os

import pytest
import torch
from conftest import SHARED_DATA, skip_missing, skip_missing_shared_data
from turboiqa.nets import weights as weights_module

WEIGHTS_DIR = SHARED_DATA / "weights"


@pytest.fixture(scope="session")
def weights_dir():
    """Points TURBOIQA_WEIGHTS at ../shared/data/weights (unless the user set it); skips without the trunks."""
    if not os.environ.get(weights_module.ENV_FOLDER):
        if not WEIGHTS_DIR.is_dir():
            skip_missing_shared_data(WEIGHTS_DIR, "no TURBOIQA_WEIGHTS, and the shared weights were")
        os.environ[weights_module.ENV_FOLDER] = str(WEIGHTS_DIR)
    for key in ("alexnet", "vgg16"):
        if weights_module.find(key)[0] is None:
            skip_missing(f"{key} weights not found (set TURBOIQA_WEIGHTS or TURBOIQA_SHARED_DATA)")
    return WEIGHTS_DIR


def features_state(key: str) -> dict:
    """The features state dict turboiqa loads, with torchvision's keys inside ``features`` (``<i>.weight``)."""
    return weights_module.load_backbone_state(key)


def random_features_state(model_cls, seed: int = 0) -> dict:
    """Fixed-seed random trunk weights (architectures without public weights offline: SqueezeNet 1.1)."""
    torch.manual_seed(seed)
    model = model_cls()
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    return {k: v.clone() for k, v in model.features.state_dict().items()}


def tid_batch(tid_pairs, size=None):
    """Distorted and reference batches (uint8 N×3×H×W); ``size`` crops the top-left corner."""
    d = torch.cat([p[0] for p in tid_pairs])
    r = torch.cat([p[1] for p in tid_pairs])
    if size is not None:
        d, r = d[..., :size[0], :size[1]].contiguous(), r[..., :size[0], :size[1]].contiguous()
    return d, r
