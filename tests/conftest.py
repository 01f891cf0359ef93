import importlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(os.environ.get("TURBOIQA_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
TID2013 = SHARED_DATA / "tid2013"


def _switch(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


# CI (CI=true, which .ci/run sets, like most CI services) or TURBOIQA_REQUIRE_ALL=1: the shared data and every peer
# the README claims parity with must be there, so a parity test that cannot run fails instead of skipping quietly.
# TURBOIQA_REQUIRE_ALL=0 turns it off even under CI. Genuinely optional things (a CUDA device) still skip.
REQUIRE_ALL = _switch("TURBOIQA_REQUIRE_ALL") if "TURBOIQA_REQUIRE_ALL" in os.environ else _switch("CI")


def skip_missing(reason: str):
    """Skip for a missing shared-data file or peer; a failure when everything is required (REQUIRE_ALL)."""
    __tracebackhide__ = True  # report the test's line, not this helper's
    if REQUIRE_ALL:
        pytest.fail(f"{reason} [required: CI / TURBOIQA_REQUIRE_ALL is set]", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def skip_missing_shared_data(path, what: str = "shared test data"):
    __tracebackhide__ = True
    skip_missing(f"{what} not found at {path} (set TURBOIQA_SHARED_DATA to the shared data folder)")


def import_or_skip(module: str):
    """``pytest.importorskip`` for peers and test extras, failing instead when everything is required."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        skip_missing(f"could not import {module!r}: {exc}")


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
        skip_missing_shared_data(TID2013)
    return [(load_rgb(TID2013 / "distorted" / d), load_rgb(TID2013 / "reference" / r)) for d, r in TID_PAIRS]


@pytest.fixture(scope="session")
def tid_i01():
    if not TID2013.is_dir():
        skip_missing_shared_data(TID2013)
    return load_rgb(TID2013 / "distorted" / "i01_01_5.bmp"), load_rgb(TID2013 / "reference" / "I01.BMP")


@pytest.fixture(scope="module")
def one_thread():
    """For modules of small-image tests (``pytestmark = pytest.mark.usefixtures("one_thread")``): one thread is
    faster than two there and immune to a busy second core (OpenMP waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
