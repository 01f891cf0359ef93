"""Feature-distance kernels (LPIPS, DISTS, PIPAL SWD) at the real tap shapes of the deep metrics, against the
pure-PyTorch reference path, next to the backbone time the metric spends before them.

Groups: ``<distance> <net> <input> b<batch>``; rows: ``native`` (NCHW taps), ``native-cl`` (channels-last taps, as a
channels_last backbone hands them over), ``reference``. The ``backbone`` groups time torch's own convolutions of
the same network (random weights, inference mode, channels_last, the image pair as one batch), which is what the
distance has to be compared with. Tap shapes come from running the backbone on the meta device.

    python -m pytest bench/bench_feature_distance.py --benchmark-only --benchmark-json=bench/results-features-cpu.json
"""
import pytest
import torch
from torch import nn

from conftest import run_timed
from turboiqa import _ops

SIZES = {"512x384": (384, 512), "1080p": (1080, 1920)}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def alexnet():
    """torchvision's AlexNet features up to relu5; LPIPS taps relu1..relu5."""
    layers = [nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
              nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1),
              nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers), {1, 4, 7, 9, 11}


def vgg16(l2pool=False):
    """VGG16 features up to relu5_3 (taps relu1_2 … relu5_3); DISTS replaces the max-pools by L2 pooling
    (3×3 Hann, stride 2, padding 1), timed here as a depth-wise conv of x² and a sqrt."""
    layers, taps, c_in = [], set(), 3
    for block, (width, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        if block:
            layers.append(L2Pool(c_in) if l2pool else nn.MaxPool2d(2, 2))
        for _ in range(convs):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
            c_in = width
        taps.add(len(layers) - 1)
    return nn.Sequential(*layers), taps


class L2Pool(nn.Module):
    def __init__(self, channels):
        super().__init__()
        h = torch.tensor([0.5, 1.0, 0.5])
        self.register_buffer("kernel", (h[:, None] * h[None] / (h.sum() ** 2)).expand(channels, 1, 3, 3).clone())

    def forward(self, x):
        return torch.sqrt(nn.functional.conv2d(x * x, self.kernel, stride=2, padding=1, groups=x.shape[1]) + 1e-12)


NETS = {"alex": lambda: alexnet(), "vgg": lambda: vgg16(), "vgg-l2": lambda: vgg16(l2pool=True)}


def tap_shapes(net, size):
    model, taps = NETS[net]()
    x = torch.empty(1, 3, *SIZES[size], device="meta")
    shapes = [] if net != "vgg-l2" else [(3, *SIZES[size])]  # DISTS' first "layer" is the input image itself
    for k, layer in enumerate(model.to("meta")):
        x = layer(x)
        if k in taps:
            shapes.append(tuple(x.shape[1:]))
    return shapes


def tap_pairs(net, size, batch, device, channels_last=False):
    """ReLU-like feature pairs at every tap: the second a perturbation of the first (an image pair)."""
    g = torch.Generator().manual_seed(0)
    pairs = []
    for c, h, w in tap_shapes(net, size):
        f0 = torch.relu(torch.randn(batch, c, h, w, generator=g))
        f1 = torch.relu(f0 + 0.1 * torch.randn(batch, c, h, w, generator=g))
        weight = torch.rand(c, generator=g) / c
        if channels_last:
            f0, f1 = f0.to(memory_format=torch.channels_last), f1.to(memory_format=torch.channels_last)
        pairs.append((f0.to(device), f1.to(device), weight.to(device)))
    return pairs


def cases(nets):
    out = []
    for net in nets:
        for size in SIZES:
            for batch in (1, 8):
                marks = []
                if net.startswith("vgg") and size == "1080p" and batch == 8:
                    marks = [pytest.mark.skip(reason="16 GB of taps: more than this 24 GiB machine can hold twice")]
                out.append(pytest.param(net, size, batch, marks=marks, id=f"{net}-{size}-b{batch}"))
    return out


def distance_fn(kind, pairs, backend):
    if kind == "lpips":
        return lambda: sum(_ops.lpips_distance(f0, f1, w, backend=backend) for f0, f1, w in pairs)
    if kind == "swd":
        return lambda: sum(_ops.swd_distance(f0, f1, w, 1, backend=backend) for f0, f1, w in pairs)
    return lambda: sum(_ops.dists_layer(f0, f1, w / 2, w / 2, backend=backend) for f0, f1, w in pairs)


ROWS = ["native", "native-cl", "reference"]


def _run(benchmark, kind, net, size, batch, row, device):
    benchmark.group = f"{kind} {net} {size} b{batch} {device}"
    if row == "reference" and size == "1080p" and (batch == 8 or net.startswith("vgg") or kind == "swd"):
        pytest.skip("reference path too slow / too large here")
    pairs = tap_pairs(net, size, batch, device, channels_last=row == "native-cl")
    with torch.inference_mode():
        run_timed(benchmark, distance_fn(kind, pairs, "reference" if row == "reference" else "native"), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("net,size,batch", cases(["alex", "vgg"]))
def test_lpips_distance(benchmark, net, size, batch, row, device):
    _run(benchmark, "lpips", net, size, batch, row, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("net,size,batch", cases(["vgg-l2"]))
def test_dists_layers(benchmark, net, size, batch, row, device):
    _run(benchmark, "dists", net, size, batch, row, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("net,size,batch", cases(["alex"]))
def test_swd_distance(benchmark, net, size, batch, row, device):
    _run(benchmark, "swd", net, size, batch, row, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("net,size", [(n, s) for n in ("alex", "vgg", "vgg-l2") for s in SIZES])
def test_backbone(benchmark, net, size, device):
    """The image pair (batch 2) through the backbone: the time the distance is to be compared with (batch 8
    costs about 8× this on the CPU)."""
    benchmark.group = f"backbone {net} {size} b1 {device}"
    model = NETS[net]()[0].eval().to(device).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, *SIZES[size], device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        if device == "cpu" and net.startswith("vgg") and size == "1080p":  # ~10 s a call: one timed call
            benchmark.pedantic(lambda: model(x), rounds=1, iterations=1, warmup_rounds=0)
        else:
            run_timed(benchmark, lambda: model(x), device)
