"""DeepQA (SPECS §11) against an independent NumPy transcription of the official Theano equations
(jongyookim/IQA_DeepQA_FR_release: laplacian_pyr.py, models/FR_sens_1.py, layers/layers.py) run with the same
random weights; preprocessing pieces checked by hand; input handling and errors. No official weights exist, so
there is no test against published scores."""
import math

import numpy as np
import pytest
import torch
import turboiqa
from turboiqa.metrics import deepqa as dq
from turboiqa.nets.weights import WeightsNotFoundError

# ---------------------------------------------------------------- the transcription (NumPy, float64, no turboiqa)
K5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def conv(x, w, b=None, stride=1, pad=0):
    """Cross-correlation of N×C×H×W with O×C×kh×kw, zero padding (Theano 'half' = (k−1)/2)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out if b is None else out + b[None, :, None, None]


def down(x):
    return conv(x, K5[None, None], stride=2, pad=2)


def up(x, shape):
    """conv2d_grad_wrt_inputs of the strided 'half' convolution: zeros with x at the even positions, then the
    (symmetric) 4·k convolution with 'half' padding."""
    z = np.zeros(x.shape[:2] + tuple(shape))
    z[:, :, ::2, ::2] = x
    return conv(z, 4 * K5[None, None], pad=2)


def normalize_lowpass_subt(img, n_level=3):
    low, shapes = img, []
    for _ in range(n_level - 1):
        shapes.append(low.shape[2:])
        low = down(low)
    for i in range(n_level - 1):
        low = up(low, shapes[n_level - 2 - i])
    return img - low


def log_diff(a, b, eps=1.0):
    log_255_sq = 2 * np.log(255.0)
    return (log_255_sq - np.log((255.0 * (a - b)) ** 2 + eps)) / (log_255_sq - np.log(eps))


def lrelu(x):
    return np.where(x > 0, x, 0.1 * x)


def reference_deepqa(model, dist_rgb, ref_rgb):
    """Scores, s and p of N×3×H×W float [0, 1] images, with the weights of ``model``."""
    p = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    gray = np.array([0.299, 0.587, 0.114])
    x_c = np.einsum("nchw,c->nhw", dist_rgb, gray)[:, None]  # distorted
    x = np.einsum("nchw,c->nhw", ref_rgb, gray)[:, None]  # reference
    e = log_diff(x, x_c)
    e_ds4 = down(down(e))
    a = lrelu(conv(lrelu(conv(normalize_lowpass_subt(x_c), p["conv1_1.weight"], p["conv1_1.bias"], pad=1)),
                   p["conv2_1.weight"], p["conv2_1.bias"], stride=2, pad=1))
    b = lrelu(conv(lrelu(conv(e, p["conv1_2.weight"], p["conv1_2.bias"], pad=1)),
                   p["conv2_2.weight"], p["conv2_2.bias"], stride=2, pad=1))
    h = np.concatenate([a, b], axis=1)
    h = lrelu(conv(h, p["conv3.weight"], p["conv3.bias"], pad=1))
    h = lrelu(conv(h, p["conv4.weight"], p["conv4.bias"], stride=2, pad=1))
    h = lrelu(conv(h, p["conv5.weight"], p["conv5.bias"], pad=1))
    s = np.maximum(conv(h, p["conv6.weight"], p["conv6.bias"], pad=1), 0)
    pred = s * e_ds4
    feat = pred[:, :, 4:-4, 4:-4].mean(axis=(2, 3))
    hidden = lrelu(feat @ p["fc1.weight"].T + p["fc1.bias"])
    score = np.maximum(hidden @ p["fc2.weight"].T + p["fc2.bias"], 0)[:, 0]
    return score, s, pred


def sobel_tv(s, beta=3.0):
    sy = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)[None, None]
    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)[None, None]
    return np.mean((conv(s, sy) ** 2 + conv(s, sx) ** 2) ** (beta / 2))


# ---------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("one_thread")  # small images (conftest.one_thread)


def random_model(seed=0):
    torch.manual_seed(seed)
    return dq.load_deepqa(pretrained=False)


def pair(shape, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    x = (y + 0.08 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def perturbed(model, seed=3):
    """Random biases too (the official init leaves them 0 except conv6's), so every bias term is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            if name.endswith("bias") and name != "conv6.bias":
                prm.add_(0.05 * torch.randn(prm.shape, generator=g))
    return model


# ---------------------------------------------------------------- parity


@pytest.mark.parametrize("shape", [(2, 3, 67, 45), (1, 3, 96, 80), (1, 3, 33, 40)])
def test_parity_float64(shape):
    model = perturbed(random_model()).double()
    x, y = pair(shape)
    score, maps = dq.deepqa_score(model, x, y, reduction="none", return_maps=True)
    want, s, p = reference_deepqa(model, x.numpy(), y.numpy())
    assert np.abs(maps["sensitivity"].numpy() - s).max() <= 1e-10 * max(1, np.abs(s).max())
    assert np.abs(maps["perceptual"].numpy() - p).max() <= 1e-10 * max(1, np.abs(p).max())
    np.testing.assert_allclose(score.numpy(), want, rtol=1e-10, atol=1e-12)
    assert (want > 0).all()  # not the trivial ReLU-zero case


def test_parity_float32():
    model = perturbed(random_model(2))
    x, y = pair((2, 3, 71, 58), seed=5, dtype=torch.float32)
    score, maps = dq.deepqa_score(model, x, y, reduction="none", return_maps=True)
    want, s, p = reference_deepqa(model, x.double().numpy(), y.double().numpy())
    assert (want > 0).all()  # not the trivial ReLU-zero case
    np.testing.assert_allclose(score.numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(maps["sensitivity"].numpy(), s, rtol=1e-5, atol=1e-5 * np.abs(s).max())
    np.testing.assert_allclose(maps["perceptual"].numpy(), p, rtol=1e-5, atol=1e-5 * np.abs(p).max())


def test_patch_mode_is_the_mean_over_the_shift_center_grid():
    model = perturbed(random_model(6)).double()
    x, y = pair((1, 3, 80, 75), seed=7)
    got = dq.deepqa_score(model, x, y, patch_size=36)
    # grid by hand: ny = 2 (cover 72, margin 8 → shift 4), nx = 2 (cover 72, margin 3 → 2 → even 2)
    corners = [(4, 2), (4, 38), (40, 2), (40, 38)]
    p = {k: v.numpy() for k, v in model.state_dict().items()}
    feats = []
    for t, l in corners:
        _, _, pred = reference_deepqa(model, x[..., t:t + 36, l:l + 36].numpy(), y[..., t:t + 36, l:l + 36].numpy())
        feats.append(pred[:, :, 4:-4, 4:-4].mean())
    hidden = lrelu(np.mean(feats) * p["fc1.weight"][:, 0] + p["fc1.bias"])
    want = max(hidden @ p["fc2.weight"][0] + p["fc2.bias"][0], 0)
    assert want > 0
    assert abs(float(got) - want) <= 1e-10 * max(1, abs(want))


# ---------------------------------------------------------------- preprocessing by hand


def test_binomial_kernel_and_resampling_sizes():
    k = dq.binomial_kernel(torch.float64)[0, 0]
    assert float(k.sum()) == 1.0 and float(k[2, 2]) == 36 / 256 and float(k[0, 0]) == 1 / 256
    img = torch.rand(1, 1, 37, 50, dtype=torch.float64)
    d = dq.downsample(img)
    assert d.shape[-2:] == (19, 25)
    assert dq.upsample(d, (37, 50)).shape[-2:] == (37, 50)
    # away from the zero-padded border, down/up keep a constant image (4·k spread over the 2×2 phases sums to 1)
    c = torch.full((1, 1, 40, 40), 0.7, dtype=torch.float64)
    assert torch.allclose(dq.upsample(dq.downsample(c), (40, 40))[..., 6:-6, 6:-6], c[..., 6:-6, 6:-6])
    assert dq.normalize_lowpass_subt(c)[..., 12:-12, 12:-12].abs().max() < 1e-12


def test_error_map_values():
    y = torch.rand(1, 1, 40, 40, dtype=torch.float64)
    assert torch.equal(dq.log_diff(y, y), torch.ones_like(y))  # identical → 1
    one_level = dq.log_diff(torch.full((1,), 1 / 255, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    assert abs(float(one_level) - (2 * math.log(255) - math.log(2)) / (2 * math.log(255))) < 1e-15
    full = dq.log_diff(torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    assert abs(float(full) + math.log1p(255.0 ** -2) / (2 * math.log(255))) < 1e-15  # just below 0 (ε = 1)


def test_identical_images_give_error_map_one():
    torch.manual_seed(0)
    _, y = pair((1, 3, 48, 48))
    found = turboiqa.deepqa_maps(y, y, pretrained=False)
    assert torch.allclose(found["error"], dq.downsample(dq.downsample(torch.ones(1, 1, 48, 48, dtype=torch.float64))))
    assert torch.equal(found["perceptual"], found["sensitivity"] * found["error"])


def test_total_variation_and_loss_pieces():
    s = torch.rand(2, 1, 13, 11, dtype=torch.float64)
    assert abs(float(dq.total_variation(s)) - sobel_tv(s.numpy())) < 1e-12
    model = random_model().double()
    pred, target = torch.tensor([0.3, 0.5], dtype=torch.float64), torch.tensor([0.2, 0.9], dtype=torch.float64)
    parts = dq.training_loss(model, pred, target, s)
    l2 = sum(float((p ** 2).sum()) for n, p in model.named_parameters() if n.endswith("weight"))
    assert abs(float(parts["l2"]) - l2) < 1e-9
    assert abs(float(parts["mse"]) - (0.01 + 0.16) / 2) < 1e-15
    assert abs(float(parts["loss"]) - (1e3 * float(parts["mse"]) + 1e-2 * sobel_tv(s.numpy()) + 5e-3 * l2)) < 1e-9


def test_dead_regression_head_is_drawn_again_for_training():
    from turboiqa.train.deepqa import DeepQATask

    probe = torch.linspace(0.05, 1.0, 20)[:, None]
    dead = 0
    for seed in range(6):
        torch.manual_seed(seed)
        dead += int(not dq.DeepQANet().regress(probe).detach().any())
        torch.manual_seed(seed)
        assert DeepQATask().build_model().regress(probe).detach().any()
    assert dead > 0  # the guard was exercised


def test_initialisation_follows_init_he():
    model = random_model()
    assert torch.equal(model.conv6.bias, torch.ones(1)) and not model.conv3.bias.any()
    bound = math.sqrt(2 / 1.01) * math.sqrt(3 / (64 * 9))
    assert 0.9 * bound < float(model.conv3.weight.abs().max()) <= bound


# ---------------------------------------------------------------- API


def test_gradient_flows_to_both_images():
    torch.manual_seed(0)
    x, y = pair((1, 3, 40, 44), dtype=torch.float32)
    x.requires_grad_(True)
    y.requires_grad_(True)
    turboiqa.deepqa(x, y, pretrained=False).backward()
    for t in (x, y):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_module_equals_functional_and_batch_equals_single_calls():
    x, y = pair((3, 3, 41, 52), seed=9, dtype=torch.float32)
    torch.manual_seed(2)
    module = turboiqa.DeepQA(reduction="none", pretrained=False)
    torch.manual_seed(2)
    functional = turboiqa.deepqa(x, y, reduction="none", pretrained=False)
    batched = module(x, y)
    assert (batched > 0).all()
    assert torch.equal(batched, functional)
    singles = torch.cat([module(x[i:i + 1], y[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, singles, rtol=1e-6, atol=0)
    assert module.lower_better is None  # random weights: no direction
    assert float(turboiqa.deepqa(x, y, pretrained=False) * 0 + 1) == 1


def test_uint8_and_grey_inputs():
    model = perturbed(random_model(2))
    g = torch.Generator().manual_seed(0)
    y8 = torch.randint(0, 256, (1, 3, 45, 47), generator=g, dtype=torch.uint8)
    x8 = (y8.int() + torch.randint(-20, 21, y8.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    from_uint8 = dq.deepqa_score(model, x8, y8, data_range=255)
    from_float = dq.deepqa_score(model, x8.float() / 255, y8.float() / 255)
    assert float(from_float) > 0  # not the trivial ReLU-zero case
    torch.testing.assert_close(from_uint8, from_float, rtol=1e-6, atol=0)
    coeffs = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)[:, None, None]

    def grey(t):
        return (t.double() / 255 * coeffs).sum(1, keepdim=True)

    model = model.double()  # grey input = RGB converted with the official coefficients, unrounded
    torch.testing.assert_close(dq.deepqa_score(model, grey(x8), grey(y8)),
                               dq.deepqa_score(model, x8.double() / 255, y8.double() / 255), rtol=1e-10, atol=0)


def test_clear_errors(monkeypatch, tmp_path):
    x, y = pair((1, 3, 40, 40), dtype=torch.float32)
    with pytest.raises(ValueError, match="at least 33×33"):
        turboiqa.deepqa(x[..., :32, :], y[..., :32, :], pretrained=False)
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\) channels"):
        turboiqa.deepqa(x[:, :2], y[:, :2], pretrained=False)
    with pytest.raises(ValueError, match="patch_size"):
        turboiqa.deepqa(x, y, pretrained=False, patch_size=20)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TURBOIQA_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError) as info:
        turboiqa.deepqa(x, y)
    message = str(info.value)
    assert "deepqa.pth" in message and "No official DeepQA weights exist" in message
    assert "turboiqa train deepqa --dataset tid2013 --root PATH" in message


def test_trained_file_metadata_and_scale(tmp_path):
    model = perturbed(random_model(0))
    meta = {"lower_better": False, "label_scale": 9.0, "dataset": "tid2013", "patch_size": None}
    path = tmp_path / "deepqa.pth"
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
    x, y = pair((1, 3, 40, 40), dtype=torch.float32)
    module = turboiqa.DeepQA(weights=path)
    assert module.lower_better is False and module.model.meta["dataset"] == "tid2013"
    assert float(dq.deepqa_score(model, x, y)) > 0
    torch.testing.assert_close(module(x, y), 9.0 * dq.deepqa_score(model, x, y), rtol=1e-6, atol=0)
    torch.testing.assert_close(turboiqa.deepqa(x, y, weights=path), module(x, y), rtol=0, atol=0)
