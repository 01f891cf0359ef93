"""DeepSim: no reference values exist offline (MatConvNet model), so the metric is checked against a direct
transcription of FR_DeepSim.m / MSSIM.m / pooling.m written here with F.conv2d on the same VGG16 features."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import turboiqa
from deep_common import tid_batch, weights_dir  # noqa: F401
from turboiqa.metrics.deepsim import pool
from turboiqa.nets.backbones import build_backbone

pytestmark = pytest.mark.usefixtures("weights_dir")


def mssim_same(a, b):
    """MSSIM.m on each feature map pair (C×H×W, float64; one map per row of the result): 'same' zero padding,
    L = max(|a|, |b|, 1) per map."""
    L = torch.maximum(a.abs().amax(dim=(1, 2)), b.abs().amax(dim=(1, 2))).clamp_min(1.0).view(-1, 1, 1, 1)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    x = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-x**2 / (2 * 1.5**2))
    w = torch.outer(g, g)
    w = (w / w.sum())[None, None]
    a, b = a[:, None], b[:, None]

    def filt(t):
        return F.conv2d(t, w, padding=5)

    mu1, mu2 = filt(a), filt(b)
    s11, s22, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return m.flatten(1)


def pooling_m(v: np.ndarray, method: str, p=0.1) -> float:
    if method == "mean":
        return float(np.mean(v))
    if method == "sd":
        return float(np.std(v, ddof=1))
    if method == "mad":
        return float(np.mean(np.abs(v - v.mean())))
    if method == "fd":
        return 0.5 * pooling_m(v, "sd") + 0.5 * pooling_m(v, "mad")
    return float(np.sort(v)[: math.ceil(len(v) * p)].mean())


@pytest.mark.parametrize("method", ["mean", "sd", "mad", "fd", "percentile"])
def test_pooling_functions(method):
    v = torch.randn(3, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    want = torch.tensor([pooling_m(row.numpy(), method, 0.25) for row in v], dtype=torch.float64)
    torch.testing.assert_close(pool(v, method, 0.25), want)


@pytest.mark.parametrize("spatial,channel", [("mean", "mean"), ("mean", "sd"), ("percentile", "fd")])
def test_against_transcription(tid_pairs, spatial, channel):
    layers = (1, 4, 8)  # relu1_1, pool1, relu2_2: full and reduced resolutions, post-ReLU and pool
    d, r = tid_batch(tid_pairs[:2], (32, 48))
    x, y = d.double() / 255, r.double() / 255
    score, per_layer = turboiqa.metrics.deepsim.deepsim_score(
        turboiqa.metrics.deepsim.DeepSimNet(layers).double(), x, y, reduction="none", spatial_pooling=spatial,
        channel_pooling=channel, return_layers=True)
    net = build_backbone("vgg", taps=layers).double()
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        fx, fy = net((x - mean) / std), net((y - mean) / std)
    for n in range(2):
        for li in range(len(layers)):
            maps = mssim_same(fx[li][n], fy[li][n]).numpy()
            per_map = np.array([pooling_m(m, spatial) for m in maps])
            assert per_layer[n, li].item() == pytest.approx(pooling_m(per_map, channel), abs=1e-7)
    torch.testing.assert_close(score, per_layer.mean(dim=1))


def test_direction_and_identity(tid_pairs):
    d, r = tid_batch(tid_pairs, (48, 64))
    layers = (3, 8, 15)
    same = turboiqa.deepsim(r, r, data_range=255, layers=layers, reduction="none")
    torch.testing.assert_close(same, torch.ones(5), atol=1e-6, rtol=0)
    sim = turboiqa.deepsim(d, r, data_range=255, layers=layers, reduction="none")
    # i08_15_3's local block distortions lie outside this 48×64 crop: that pair is identical and scores 1.
    differ = (d != r).flatten(1).any(dim=1)
    assert differ.tolist() == [True, True, True, False, True]
    assert (sim[differ] < 1).all() and (sim > 0).all() and sim[~differ].tolist() == pytest.approx([1.0], abs=1e-6)
    # i03 (JPEG2000 level 5) is much worse than i06 (mild saturation change): higher = better
    assert sim[0] < sim[2]
    dev = turboiqa.deepsim(d, r, data_range=255, layers=layers, channel_pooling="sd", reduction="none")
    assert dev[0] > dev[2] and float(turboiqa.deepsim(r, r, 255, layers=layers, channel_pooling="sd")) < 1e-6
    # float32 close to float64; differentiable
    x = (d.float() / 255).requires_grad_()
    turboiqa.deepsim(x, r.float() / 255, layers=layers).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    sim64 = turboiqa.deepsim(d.double() / 255, r.double() / 255, layers=layers, reduction="none")
    torch.testing.assert_close(sim.double(), sim64, atol=2e-5, rtol=0)


def test_errors():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="channel_pooling must be one of"):
        turboiqa.deepsim(x, x, layers=(1,), channel_pooling="median")
    with pytest.raises(ValueError, match="taps must be indices"):
        turboiqa.deepsim(x, x, layers=(31,))
    with pytest.raises(ValueError, match="percentile"):
        turboiqa.deepsim(x, x, layers=(1,), percentile=0)
