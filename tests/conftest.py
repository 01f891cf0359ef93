import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(os.environ.get("TURBOIQA_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
TID2013 = SHARED_DATA / "tid2013"

# (distorted, reference) pairs of SPECS §18 in the order of its table.
TID_PAIRS = [("i03_11_5.bmp", "I03.BMP"), ("i04_18_5.bmp", "I04.BMP"), ("i06_18_3.bmp", "I06.BMP"),
             ("i08_15_3.bmp", "I08.BMP"), ("i19_10_5.bmp", "I19.BMP")]


def devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


@pytest.fixture(params=devices())
def device(request):
    return request.param


def load_rgb(path) -> torch.Tensor:
    from PIL import Image

    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].contiguous()


@pytest.fixture(scope="session")
def tid_pairs():
    """The five TID2013 pairs as uint8 1×3×H×W tensors (distorted, reference); skips without ../shared/data."""
    if not TID2013.is_dir():
        pytest.skip(f"shared test data not found at {TID2013} (set TURBOIQA_SHARED_DATA to the data folder)")
    return [(load_rgb(TID2013 / "distorted" / d), load_rgb(TID2013 / "reference" / r)) for d, r in TID_PAIRS]


@pytest.fixture(scope="session")
def tid_i01():
    if not TID2013.is_dir():
        pytest.skip(f"shared test data not found at {TID2013} (set TURBOIQA_SHARED_DATA to the data folder)")
    return load_rgb(TID2013 / "distorted" / "i01_01_5.bmp"), load_rgb(TID2013 / "reference" / "I01.BMP")
