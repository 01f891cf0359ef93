"""dnn_features (Amirshahi, Pedersen & Yu 2016): no reference code or published values exist offline, so the metric is
checked by its defining properties on TID2013 reference crops (identical images → 1, monotone in noise and blur),
against a transcription written here on the same AlexNet features (torch.minimum histogram intersection), and for
its input handling and gradients."""
import pytest
import torch
import torch.nn.functional as F
import turboiqa
from deep_common import tid_batch, weights_dir  # noqa: F401
from turboiqa.metrics.dnn_features import DNNFeaturesNet, level_weights
from turboiqa.nets.backbones import build_backbone

pytestmark = pytest.mark.usefixtures("weights_dir")

SIZE = (96, 128)  # conv3–5 maps of 5×7: room for the default 3 levels (4×4 cells)


def references(tid_pairs, dtype=torch.float32):
    _, r = tid_batch(tid_pairs[:3], SIZE)
    return r.to(dtype) / 255


def transcription(x, y, levels=3, level_w=None):
    """The metric written out: torchvision-normalised input, AlexNet ReLU taps, explicit cells, Σ min(h, h')."""
    net = build_backbone("alex", taps=(1, 4, 7, 9, 11)).double()
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        fx, fy = net((x.double() - mean) / std), net((y.double() - mean) / std)
    scores = torch.zeros(x.shape[0], dtype=torch.float64)
    w = torch.full((levels,), 1 / levels, dtype=torch.float64) if level_w is None else level_w
    for a, b in zip(fx, fy):
        h, wd = a.shape[-2:]
        for v in range(levels):
            m, sims = 2**v, []
            for ci in range(m):
                for cj in range(m):
                    cell = (slice(None), slice(None), slice(ci * h // m, (ci + 1) * h // m),
                            slice(cj * wd // m, (cj + 1) * wd // m))
                    s, t = a[cell].sum(dim=(2, 3)), b[cell].sum(dim=(2, 3))
                    sims.append(torch.minimum(s / s.sum(1, keepdim=True), t / t.sum(1, keepdim=True)).sum(1))
            scores += w[v] * torch.stack(sims, 1).mean(1) / len(fx)
    return scores


def blur(x, sigma):
    r = int(3 * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_images_score_one(tid_pairs, dtype):
    r = references(tid_pairs, dtype)
    s = turboiqa.dnn_features(r, r.clone(), reduction="none")
    assert s.dtype == dtype and s.shape == (3,)
    torch.testing.assert_close(s, torch.ones_like(s), rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-6)


def test_matches_transcription_on_tid_pairs(tid_pairs):
    d, r = tid_batch(tid_pairs, SIZE)
    x, y = d.double() / 255, r.double() / 255
    got = turboiqa.dnn_features(x, y, reduction="none")
    torch.testing.assert_close(got, transcription(x, y), rtol=0, atol=1e-10)
    assert ((got > 0.3) & (got <= 1)).all() and (got < 0.9).sum() >= 3  # one crop misses its distortion
    pyramid = turboiqa.dnn_features(x, y, reduction="none", level_pooling="pyramid")
    torch.testing.assert_close(pyramid, transcription(x, y, level_w=level_weights(3, "pyramid")), rtol=0, atol=1e-10)
    f32 = turboiqa.dnn_features(d, r, 255.0, reduction="none")
    torch.testing.assert_close(f32.double(), got, rtol=0, atol=2e-5)


def test_falls_with_noise_and_blur(tid_pairs):
    r = references(tid_pairs)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(r.shape, generator=g)
    noisy = [turboiqa.dnn_features((r + s * noise).clamp(0, 1), r, reduction="none") for s in (0.02, 0.05, 0.1, 0.2)]
    blurred = [turboiqa.dnn_features(blur(r, s), r, reduction="none") for s in (0.6, 1.2, 2.0, 3.0)]
    for scores in (noisy, blurred):
        for a, b in zip(scores, scores[1:]):
            assert (a > b).all(), scores
        assert (scores[0] < 1).all()


def test_module_grey_uint8_and_options(tid_pairs):
    d, r = tid_batch(tid_pairs[:2], SIZE)
    module = turboiqa.DNNFeatures(255.0, "none", levels=2, level_pooling="pyramid", layer_pooling=[1, 2, 0, 0, 1])
    want = turboiqa.dnn_features(d, r, 255.0, "none", levels=2, level_pooling="pyramid", layer_pooling=[1, 2, 0, 0, 1])
    torch.testing.assert_close(module(d, r), want, rtol=0, atol=0)
    # uint8 with data_range=255 is the float image / 255.
    torch.testing.assert_close(turboiqa.dnn_features(d, r, 255.0, "none"),
                               turboiqa.dnn_features(d.float() / 255, r.float() / 255, 1.0, "none"), rtol=0, atol=1e-6)
    # Layer weights: a one-hot weight is that layer alone; reduction 'mean' is the mean.
    one = turboiqa.dnn_features(d, r, 255.0, "none", layer_pooling=[0, 0, 1, 0, 0])
    torch.testing.assert_close(one, turboiqa.dnn_features(d, r, 255.0, "none", layers=(3,)), rtol=0, atol=1e-7)
    torch.testing.assert_close(turboiqa.dnn_features(d, r, 255.0), want.new_tensor(
        turboiqa.dnn_features(d, r, 255.0, "none").mean().item()), rtol=0, atol=1e-7)
    # Grey input is repeated to RGB.
    grey_d, grey_r = d[:, :1], r[:, :1]
    torch.testing.assert_close(turboiqa.dnn_features(grey_d, grey_r, 255.0, "none"),
                               turboiqa.dnn_features(grey_d.expand(-1, 3, -1, -1), grey_r.expand(-1, 3, -1, -1),
                                                     255.0, "none"), rtol=0, atol=0)
    # The reference twin of the operator gives the same score.
    torch.testing.assert_close(turboiqa.dnn_features(d, r, 255.0, "none", backend="reference"),
                               turboiqa.dnn_features(d, r, 255.0, "none"), rtol=0, atol=2e-6)
    assert "dnn_features" in turboiqa.METRICS
    torch.testing.assert_close(level_weights(3, "pyramid"), torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64))


def test_bad_arguments(tid_pairs):
    d, r = tid_batch(tid_pairs[:1], SIZE)
    cases = [(dict(levels=0), "levels must be"), (dict(level_pooling="max"), "level_pooling must be"),
             (dict(layer_pooling=[1, 1]), "one per layer"), (dict(layer_pooling="max"), "layer_pooling must be"),
             (dict(layers=(0, 1)), "layers must be"), (dict(layers=(3, 1)), "layers must be"),
             (dict(levels=5), "conv2's map")]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            turboiqa.dnn_features(d, r, 255.0, **kwargs)
    with pytest.raises(ValueError, match="conv3's map of a 64×64 image is only 3×3"):
        turboiqa.dnn_features(d[..., :64, :64], r[..., :64, :64], 255.0)
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\) channels"):
        turboiqa.dnn_features(d[:, :2], r[:, :2], 255.0)
    with pytest.raises(ValueError, match="levels must be"):
        turboiqa.DNNFeatures(levels=0, pretrained=False)


def test_gradient(tid_pairs):
    # Random trunk (default PyTorch init), one layer, a tiny input: gradcheck through the backbone and the operator.
    torch.manual_seed(0)
    model = DNNFeaturesNet(layers=(1,), pretrained=False).double()
    from turboiqa.metrics.dnn_features import dnn_features_score

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 15, 15, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 3, 15, 15, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: dnn_features_score(model, a, b, reduction="none", levels=2), (x, y),
                                    fast_mode=True)
    # The pretrained model on a real crop: gradients flow to both images.
    d, r = tid_batch(tid_pairs[:1], SIZE)
    x, y = (d.float() / 255).requires_grad_(), (r.float() / 255).requires_grad_()
    gx, gy = torch.autograd.grad(turboiqa.dnn_features(x, y), (x, y))
    assert torch.isfinite(gx).all() and gx.abs().sum() > 0 and gy.abs().sum() > 0
