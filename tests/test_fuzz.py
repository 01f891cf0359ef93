"""Property-based fuzzing (issue 11): every public metric and every native operator on hostile inputs.

Shapes (1×1, odd, 3×2000 strips), dtypes, memory layouts (channels_last, transposed, sliced, stride-0 expand),
value ranges and argument values are drawn by hypothesis. The only allowed outcomes are
  * the documented rejection: ValueError / TypeError from the metrics (both backends alike), RuntimeError from a
    TORCH_CHECK (or ValueError / TypeError) from a raw operator, or
  * a result equal to the reference path within a dtype-appropriate tolerance, finite unless the metric documents
    the non-finite value (PSNR of identical images is +inf; MS-SSIM 'matlab' keeps the NaN of a negative cs to a
    fractional power; IW-SSIM of a flat reference and FSIM of two flat images are NaN, as in iwssim.m and
    FeatureSIM.m; (MS-)SSIM with k1 = 0 on a black window is 0/0).
Anything else — another exception type, a crash, NaN/Inf, a native/reference mismatch — fails.

Runs derandomized (a fixed seed) with a total budget of TURBOIQA_FUZZ_EXAMPLES examples (default 200, ~1 min on
two cores) shared among the tests by weight. The deep metrics are left out: their backbones are torch's own
convolutions, and the feature-distance kernels they call are fuzzed directly below.
"""
from __future__ import annotations

import math
import os
import warnings

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import turboiqa  # noqa: E402
from turboiqa import _ops  # noqa: E402
from turboiqa.reference import feature_distance as ref_features  # noqa: E402
from turboiqa.reference import image_ops as ref_image  # noqa: E402
from turboiqa.reference import iw_ssim as ref_iw  # noqa: E402
from turboiqa.reference import phase_congruency as ref_pc  # noqa: E402
from turboiqa.reference import ssim_stats as ref_ssim  # noqa: E402
from turboiqa.window import gaussian_window, uniform_window  # noqa: E402

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="compiled extension not available")

TOTAL_EXAMPLES = int(os.environ.get("TURBOIQA_FUZZ_EXAMPLES", "200"))
WEIGHTS = {"metrics": 0.45, "ssim_stats": 0.12, "image_ops": 0.13, "pc_energy": 0.05, "features": 0.1, "iw": 0.15}


def fuzz_settings(name: str):
    return settings(derandomize=True, deadline=None, database=None, print_blob=True,
                    max_examples=max(1, round(TOTAL_EXAMPLES * WEIGHTS[name])),
                    suppress_health_check=list(HealthCheck))


METRIC_ERRORS = (ValueError, TypeError)
OP_ERRORS = (RuntimeError, ValueError, TypeError)  # TORCH_CHECK raises RuntimeError
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
LAYOUTS = ["contiguous", "channels_last", "transposed", "sliced", "expanded"]


def tolerance(dtype: torch.dtype) -> dict:
    """float64 computes in float64 on both paths; every other dtype computes in float32 (turboiqa.dtypes)."""
    return dict(rtol=1e-8, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)


def random_values(shape, dtype, seed, low=0.0, high=1.0, kind="uniform"):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(shape, generator=g, dtype=torch.float64)
    if kind == "normal":
        v = torch.randn(shape, generator=g, dtype=torch.float64)
    return (low + (high - low) * v).to(dtype) if dtype != torch.uint8 else (v * 255).round().to(torch.uint8)


def lay_out(t: torch.Tensor, layout: str, expand_dim: int = 0) -> torch.Tensor:
    """The same values as ``t`` in another memory layout (``expanded``: stride 0 along ``expand_dim`` — the values
    along that dim are replaced by copies of its first slice)."""
    if layout == "channels_last" and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "transposed" and t.dim() >= 2:
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "sliced":  # every other column of a twice-as-wide tensor, offset by one row of storage
        wide = torch.cat([t, t], dim=-1)
        return torch.cat([wide[..., :1, :], wide], dim=-2)[..., 1:, ::2]
    if layout == "expanded":
        d = expand_dim % t.dim()
        return t.narrow(d, 0, 1).expand(t.shape)
    return t


@st.composite
def image_pairs(draw, min_side=1, max_side=64, dtypes=None, channels=(1, 3)):
    """(x, y, data_range, meta): an image pair in a hostile layout, value range and content."""
    dtype = draw(st.sampled_from(dtypes or [torch.uint8, *FLOAT_DTYPES]))
    side = st.one_of(st.sampled_from([1, 2, 3, 5, 11, 12, 17, 33, 64]), st.integers(min_side, max_side))
    h, w = draw(side), draw(side)
    if draw(st.integers(0, 9)) == 0:  # a 3×2000 strip, either way up
        h, w = draw(st.sampled_from([(3, 2000), (2000, 3)]))
    h, w = max(h, min_side), max(w, min_side)
    n, c = draw(st.integers(1, 2)), draw(st.sampled_from(channels))
    if dtype == torch.uint8:
        data_range = 255.0
    else:
        data_range = draw(st.sampled_from([1e-6, 1e-3, 1.0, 255.0, 65535.0, 1e6]))
    content = draw(st.sampled_from(["noisy_copy", "noisy_copy", "independent", "identical", "constant", "extremes",
                                    "black_square"]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    shape = (n, c, h, w)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    if content == "independent":
        y = torch.rand(shape, generator=g, dtype=torch.float64)
    elif content == "identical":
        y = x.clone()
    elif content == "constant":
        x = torch.full(shape, torch.rand((), generator=g, dtype=torch.float64).item(), dtype=torch.float64)
        y = x.clone()
    elif content == "extremes":
        x = (x > 0.5).double()
        y = (torch.rand(shape, generator=g, dtype=torch.float64) > 0.5).double()
    else:
        y = (x + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        if content == "black_square":
            x[..., : h // 2, : w // 2] = 0
            y[..., : h // 2, : w // 2] = 0
    if dtype == torch.uint8:
        x, y = (x * 255).round().to(torch.uint8), (y * 255).round().to(torch.uint8)
    else:
        x, y = (x * data_range).to(dtype), (y * data_range).to(dtype)
    hostile = draw(st.sampled_from(["none"] * 10 + ["nan", "out_of_range"]))
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        hostile = "overflow"  # data_range beyond float16's 65504
    if hostile == "nan" and dtype != torch.uint8:
        x.view(-1)[seed % x.numel()] = float("nan")
    elif hostile == "out_of_range" and dtype != torch.uint8:
        y = y + 1.5 * data_range
    layout = draw(st.sampled_from(LAYOUTS))
    expand_dim = draw(st.integers(0, 3))
    x, y = lay_out(x, layout, expand_dim), lay_out(y, layout, expand_dim)
    if hostile == "nan" and not x.isnan().any():
        hostile = "none"  # the expanded slice does not hold the NaN
    return x, y, data_range, dict(dtype=dtype, layout=layout, content=content, hostile=hostile)


def call(fn, errors):
    """('ok', value) or ('error', exception type) for the allowed error types; anything else propagates."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the data_range sliver warning is not an outcome
            return "ok", fn()
    except errors as exc:
        return "error", type(exc)


def assert_same(got, want, dtype, what, allow_non_finite=False):
    got = got if isinstance(got, (tuple, list)) else (got,)
    want = want if isinstance(want, (tuple, list)) else (want,)
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert g.shape == w.shape, (what, g.shape, w.shape)
        if not allow_non_finite:
            assert torch.isfinite(g).all(), (what, "non-finite native result", g)
        torch.testing.assert_close(g.double(), w.double(), equal_nan=True, msg=lambda m: f"{what}: {m}",
                                   **tolerance(dtype))


# ------------------------------------------------------------------------------------------------------ metrics

SSIM_PADDINGS = [None, "valid", "zeros", "symmetric", "reflect", "replicate"]
COLORS = [None, "per_channel", "rgb2gray", "yiq", "ycbcr"]


@st.composite
def metric_calls(draw):
    """(metric name, keyword arguments, 'function' | 'module'). One call in four may also draw invalid argument
    values; the others stay valid, so that most examples reach the native-vs-reference comparison."""
    hostile = draw(st.integers(0, 3)) == 0

    def pick(valid, invalid=()):
        return draw(st.sampled_from(list(valid) + (list(invalid) if hostile else [])))

    name = draw(st.sampled_from(["psnr", "ssim", "ms_ssim", "fsim", "iw_ssim"]))
    kw = {"reduction": pick(["mean", "none", "sum"], ["max"])}
    if name == "psnr":
        kw.update(color=pick(["rgb", "ycbcr", "yiq", "rgb2gray"], ["lab"]), crop_border=pick([0, 0, 1, 3], [-1]),
                  max_db=pick([None, 30.0, 1e9]), eps=pick([0.0, 1e-8, 1e-3]))
    elif name in ("ssim", "ms_ssim"):
        table = turboiqa.SSIM_CONVENTIONS if name == "ssim" else turboiqa.MS_SSIM_CONVENTIONS
        kw.update(convention=pick(sorted(table), ["bogus"]), kernel_size=pick([None, None, 1, 3, 7, 11], [12, 0]),
                  kernel_sigma=pick([None, None, 0.5, 1.5, 10.0], [0.0, math.nan]),
                  k1=pick([0.01, 0.0, 0.5]), k2=pick([0.03, 1e-4, 0.5]), color=pick(COLORS, ["lab"]))
        if name == "ssim":
            kw.update(padding=pick(SSIM_PADDINGS, ["mirror"]), downsample=pick([None, None, "matlab", "avgpool",
                                                                                 "libvmaf"]))
        else:
            kw.update(scales=pick([None, 1, 2, 3, 5], [6, 0]))
    elif name == "fsim":
        kw.update(color=pick(["yiq", "yiq_chromatic"], ["rgb"]), convention=pick(["matlab", "piq"], ["bogus"]))
    else:
        kw.update(convention=pick(["matlab", "piq"], ["bogus"]), scales=pick([1, 2, 3, 5], [0, 6]),
                  parent=pick([False, True]), blk_size=pick([1, 3, 3, 5, 9], [2, 0]),
                  sigma_nsq=pick([0.4, 1e-3, 100.0]), color=pick(COLORS, ["lab"]))
    form = draw(st.sampled_from(["function", "module"]))
    return name, kw, form


def documented_non_finite(name, kw, x, y) -> bool:
    if name == "psnr":  # +inf for a pair of identical images (1×1 uint8 noisy copies can round to one)
        identical = (x.reshape(-1, *x.shape[-3:]) == y.reshape(-1, *y.shape[-3:])).flatten(1).all(1).any()
        return kw["max_db"] is None and kw["eps"] == 0.0 and bool(identical)
    if name == "ms_ssim":  # a negative cs to a fractional power without the peers' ReLU; k1 = 0 as for SSIM
        conv = turboiqa.MS_SSIM_CONVENTIONS.get(kw["convention"], turboiqa.MS_SSIM_CONVENTIONS["piq"])
        return not conv.relu or kw["k1"] == 0.0
    if name == "fsim":  # two flat images have no phase congruency: Σ PCm = 0, 0/0 as in FeatureSIM.m
        flat = lambda t: t.flatten(-3).amax(-1) == t.flatten(-3).amin(-1)  # noqa: E731
        return bool((flat(x) & flat(y)).any())
    if name == "iw_ssim":
        return True  # a flat reference band has no information content (NaN, as iwssim.m)
    if name == "ssim":
        return kw["k1"] == 0.0  # 0/0 luminance on a black window
    return False


def score(name, kw, form, x, y, data_range, backend):
    if form == "module":
        module = {"psnr": turboiqa.PSNR, "ssim": turboiqa.SSIM, "ms_ssim": turboiqa.MS_SSIM, "fsim": turboiqa.FSIM,
                  "iw_ssim": turboiqa.IW_SSIM}[name]
        return module(data_range=data_range, backend=backend, **kw)(x, y)
    return getattr(turboiqa, name)(x, y, data_range, backend=backend, **kw)


@fuzz_settings("metrics")
@given(metric_calls(), st.data())
def test_metric_native_equals_reference(call_spec, data):
    name, kw, form = call_spec
    big = name in ("ms_ssim", "iw_ssim") and data.draw(st.booleans())  # big enough for the default scales
    x, y, data_range, meta = data.draw(image_pairs(min_side=176 if big else 1, max_side=192 if big else 64))
    native = call(lambda: score(name, kw, form, x, y, data_range, "native"), METRIC_ERRORS)
    reference = call(lambda: score(name, kw, form, x, y, data_range, "reference"), METRIC_ERRORS)
    event(f"{name}: {native[0] if native[0] == 'ok' else native[1].__name__}")  # --hypothesis-show-statistics
    assert native[0] == reference[0] and (native[0] == "ok" or native[1] is reference[1]), (native, reference)
    if native[0] == "error":  # a documented rejection, the same from both backends
        return
    got, want = native[1], reference[1]
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if meta["hostile"] != "none" and meta["dtype"] != torch.uint8:
        pytest.fail(f"{name} accepted {meta['hostile']} input: {got}")
    assert_same(got, want, meta["dtype"], f"{name}({kw}, {form}) {meta}",
                allow_non_finite=documented_non_finite(name, kw, x, y))


# --------------------------------------------------------------------------------------------------- operators

@st.composite
def windows(draw):
    kind = draw(st.sampled_from(["gaussian", "gaussian", "uniform", "even", "empty"]))
    if kind == "even":
        return [0.25, 0.25, 0.25, 0.25]
    if kind == "empty":
        return []
    size = draw(st.sampled_from([1, 3, 5, 7, 11, 15]))
    return list(gaussian_window(size, draw(st.sampled_from([0.5, 1.5, 5.0]))) if kind == "gaussian"
                else uniform_window(size))


def native_vs_reference(native_fn, reference_fn, dtype, what, finite=True):
    outcome = call(native_fn, OP_ERRORS)
    event(f"{what.split()[0]}: {outcome[0] if outcome[0] == 'ok' else outcome[1].__name__}")
    if outcome[0] == "error":
        return None
    want = reference_fn()
    assert_same(outcome[1], want, dtype, what, allow_non_finite=not finite)
    return outcome[1]


@fuzz_settings("ssim_stats")
@given(image_pairs(max_side=40, channels=(1, 2, 3)), windows(),
       st.sampled_from([0.0, 0.01, 0.1]), st.sampled_from([0.03, 0.01, 0.0]),
       st.sampled_from(["valid", "zeros", "symmetric", "reflect", "replicate", "mirror"]),
       st.sampled_from([1.0, 49 / 48]), st.booleans())
def test_ssim_stats_op(pair, window, c1, c2, padding, cov_norm, requires_grad):
    x, y, data_range, meta = pair
    c1, c2 = (c1 * data_range) ** 2, (c2 * data_range) ** 2  # (k · L)², in the units of the data
    if meta["hostile"] != "none":
        return  # the operator does not check values; the metrics do
    grad = requires_grad and x.dtype.is_floating_point and x.numel() <= 4096  # the twin's backward is slow
    if grad:
        x = x.detach().clone().requires_grad_()
    got = native_vs_reference(lambda: _ops.ssim_stats(x, y, window, c1, c2, padding, cov_norm, backend="native"),
                              lambda: ref_ssim.ssim_stats(x, y, window, c1, c2, padding, cov_norm), x.dtype,
                              f"ssim_stats {meta} {padding}", finite=c1 > 0 and c2 > 0)
    if got is not None and grad and c1 > 0 and c2 > 0:
        (gx,) = torch.autograd.grad(got[0].sum() + got[1].sum(), x)
        xr = x.detach().clone().requires_grad_()
        want = ref_ssim.ssim_stats(xr, y, window, c1, c2, padding, cov_norm)
        (ex,) = torch.autograd.grad(want[0].sum() + want[1].sum(), xr)
        scale = max(ex.abs().max().item(), 1 / data_range)  # d(SSIM)/dx is in units of 1/data_range
        assert torch.isfinite(gx).all()
        torch.testing.assert_close(gx.double() / scale, ex.double() / scale, equal_nan=False,
                                   **(dict(rtol=0, atol=1e-8) if x.dtype == torch.float64 else dict(rtol=0, atol=5e-3)))


@st.composite
def box_downsample_args(draw, h, w):
    factor = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 2**31]))
    pad_top, pad_left = (draw(st.integers(-1, max(0, min(factor, 9)))) for _ in range(2))
    small = min(factor, 2**20)
    out_h = draw(st.sampled_from([math.ceil((h + pad_top) / small), (h + max(pad_top, 0)) // small, 1, 0, 2**40]))
    out_w = draw(st.sampled_from([math.ceil((w + pad_left) / small), (w + max(pad_left, 0)) // small, 1]))
    border = draw(st.sampled_from(["symmetric", "replicate", "zeros", "reflect"]))
    return factor, pad_top, pad_left, out_h, out_w, border


@fuzz_settings("image_ops")
@given(image_pairs(max_side=90, channels=(1, 3, 4)), st.sampled_from(["squared_error_sum", "psnr_db", "box", "luma"]),
       st.data())
def test_image_ops(pair, op, data):
    x, y, data_range, meta = pair
    dtype = x.dtype
    if op == "squared_error_sum":
        # With NaN input only the sum is specified (NaN); the extrema skip NaN natively and propagate it in the twin.
        clean = meta["hostile"] == "none"
        got = native_vs_reference(lambda: _ops.squared_error_sum(x, y, backend="native")[:2 if clean else 1],
                                  lambda: ref_image.squared_error_sum(x, y)[:2 if clean else 1], dtype,
                                  f"{op} {meta}", finite=clean)
        if got is not None and clean:  # min/max are exact
            assert torch.equal(got[1], ref_image.squared_error_sum(x, y)[1])
    elif op == "psnr_db":
        eps = data.draw(st.sampled_from([0.0, 1e-8]))
        max_db = data.draw(st.sampled_from([math.inf, 60.0]))
        reduction = data.draw(st.sampled_from(["none", "mean", "sum", "max"]))
        peak = data.draw(st.sampled_from([data_range, data_range, 0.0, math.nan]))
        native_vs_reference(lambda: _ops.psnr_db(x, y, peak, eps, max_db, reduction, backend="native"),
                            lambda: ref_image.psnr_db(x, y, peak, eps, max_db, reduction), dtype, f"{op} {meta}",
                            finite=False)  # +inf for identical images, NaN extrema for NaN input (documented)
    elif op == "box":
        args = data.draw(box_downsample_args(*x.shape[-2:]))
        native_vs_reference(lambda: _ops.box_downsample(x, *args, backend="native"),
                            lambda: ref_image.box_downsample(x, *args), dtype, f"box_downsample{args} {meta}",
                            finite=meta["hostile"] == "none")
    else:
        coeffs = data.draw(st.sampled_from([[0.299, 0.587, 0.114], [65.481 / 255, 128.553 / 255, 24.966 / 255],
                                            [0.596, -0.274, -0.322], [1.0, 1.0]]))
        offset = data.draw(st.sampled_from([0.0, 16.0, -300.0]))
        rounding = data.draw(st.booleans())
        native_vs_reference(lambda: _ops.luma(x, coeffs, offset, rounding, backend="native"),
                            lambda: ref_image.luma(x, coeffs, offset, rounding), dtype, f"luma {meta}",
                            finite=meta["hostile"] == "none")


@fuzz_settings("pc_energy")
@given(st.integers(1, 2), st.integers(1, 2), st.integers(1, 6), st.integers(1, 4), st.integers(1, 40),
       st.integers(1, 40), st.sampled_from([torch.float32, torch.float64]), st.sampled_from(LAYOUTS),
       st.sampled_from([(1e-4, 0.0), (2.2e-16, 2.2e-16), (0.0, 0.0), (-1.0, 0.0)]),
       st.sampled_from(["random", "zeros", "threshold_shape"]), st.integers(0, 2**31 - 1))
def test_pc_energy_op(n, c, orientations, scales, h, w, dtype, layout, eps, content, seed):
    shape = (n, c, orientations, scales, h, w)
    eo = random_values((*shape, 2), dtype, seed, -1, 1, "normal")
    if content == "zeros":
        eo = torch.zeros_like(eo)
    threshold = random_values(shape[:3], dtype, seed + 1, 0, 0.5)
    if content == "threshold_shape":
        threshold = threshold[:, :, :1]
    if layout == "expanded":
        eo = eo[..., :1, :].expand(eo.shape)  # stride 0 along W
    elif layout in ("transposed", "sliced"):
        eo = lay_out(eo.movedim(-1, 0), layout).movedim(0, -1)  # H, W in the last two dims
    native_vs_reference(lambda: _ops.pc_energy(eo, threshold, *eps, backend="native"),
                        lambda: ref_pc.pc_energy(eo, threshold, *eps), dtype, f"pc_energy {shape} {layout} {eps}",
                        finite=eps[1] > 0 or content != "zeros")  # pc_eps = 0 on zero responses: 0/0 in both


@fuzz_settings("features")
@given(st.integers(1, 2), st.sampled_from([1, 3, 8, 17, 64]), st.integers(1, 19), st.integers(1, 19),
       st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]), st.sampled_from(LAYOUTS),
       st.integers(0, 3), st.sampled_from(["lpips", "dists", "swd"]), st.sampled_from(["random", "relu", "zeros"]),
       st.sampled_from([0, 1, 2, 5, -1]), st.sampled_from([1e-10, 0.0]), st.sampled_from([1e-6, 0.0]),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_feature_distance_ops(n, c, h, w, dtype, layout, expand_dim, op, content, radius, eps, c12, bad_weight,
                              seed):
    shape = (n, c, h, w)
    f0 = random_values(shape, dtype, seed, -1, 1, "normal")
    f1 = random_values(shape, dtype, seed + 1, -1, 1, "normal")
    if content == "relu":
        f0, f1 = f0.relu(), f1.relu()
    elif content == "zeros":
        f0, f1 = torch.zeros_like(f0), f1.relu()
    f0, f1 = lay_out(f0, layout, expand_dim), lay_out(f1, layout, expand_dim)
    weights = [random_values((c - bad_weight,) if bad_weight and c > 1 else (c,), dtype, seed + 2 + i) / c
               for i in range(3)]
    # eps = 0 on an all-zero position (zeros, or ReLU features) is 0/0 in both paths, as in LPIPS' own code.
    finite = eps > 0 or content == "random"
    if op == "lpips":
        native_vs_reference(lambda: _ops.lpips_distance(f0, f1, weights[0], eps, backend="native"),
                            lambda: ref_features.lpips_distance(f0, f1, weights[0], eps), dtype,
                            f"lpips {shape} {layout}", finite=finite)
    elif op == "dists":
        native_vs_reference(lambda: _ops.dists_layer(f0, f1, weights[1], weights[2], c12, c12, backend="native"),
                            lambda: ref_features.dists_layer(f0, f1, weights[1], weights[2], c12, c12), dtype,
                            f"dists {shape} {layout}", finite=c12 > 0)
    else:
        native_vs_reference(lambda: _ops.swd_distance(f0, f1, weights[0], radius, eps, backend="native"),
                            lambda: ref_features.swd_distance(f0, f1, weights[0], radius, eps), dtype,
                            f"swd r={radius} {shape} {layout}", finite=finite)


@fuzz_settings("iw")
@given(st.integers(1, 2), st.integers(1, 2), st.integers(1, 60), st.integers(1, 60),
       st.sampled_from([torch.float32, torch.float64, torch.float16]), st.sampled_from(LAYOUTS), st.integers(0, 3),
       st.sampled_from(["laplacian_level", "covariance", "pooled_cs"]), st.sampled_from(["matlab", "piq", "none"]),
       st.sampled_from([1, 3, 5, 7, 9, 2, 0]), st.booleans(), st.sampled_from(["random", "flat"]),
       st.integers(0, 2**31 - 1))
def test_iw_ssim_ops(n, c, h, w, dtype, layout, expand_dim, op, expand, blk_size, with_parent, content, seed):
    band = lay_out(random_values((n, c, h, w), dtype, seed, -50, 50, "normal"), layout, expand_dim)
    if content == "flat":
        band = torch.zeros_like(band)
    what = f"{op} {(n, c, h, w)} {dtype} {layout} blk={blk_size} parent={with_parent} {content}"
    if op == "laplacian_level":
        native_vs_reference(lambda: _ops.laplacian_level(band, expand, backend="native"),
                            lambda: ref_iw.laplacian_level(band, expand), dtype, what)
        return
    parent = random_values((n, c, (h + 1) // 2, (w + 1) // 2), dtype, seed + 1, -50, 50) if with_parent else None
    if op == "covariance":
        native_vs_reference(lambda: _ops.iw_neighbour_covariance(band, parent, blk_size, backend="native"),
                            lambda: ref_iw.neighbour_covariance(band, parent, blk_size), dtype, what)
        return
    dist = lay_out(0.8 * band + random_values(band.shape, dtype, seed + 2, -3, 3, "normal"), layout, expand_dim)
    if blk_size < 1 or blk_size % 2 == 0 or min(h, w) < blk_size:
        inverse, eigenvalues = torch.zeros(n, c, 1, 1, dtype=dtype), torch.zeros(n, c, 1, dtype=dtype)
    else:  # the spectral terms of the float64 covariance, as iw_ssim hands them over
        covariance = ref_iw.neighbour_covariance(band.double(), None if parent is None else parent.double(), blk_size)
        inverse, eigenvalues = (t.to(dtype) for t in ref_iw.spectral_terms(covariance))
    window = list(gaussian_window(11, 1.5))
    args = (blk_size, window, (0.03 * 255) ** 2, 0.4, 1e-15)
    # A flat reference band has a singular covariance: non-finite weights in both paths (iw_ssim then scores NaN).
    native_vs_reference(lambda: _ops.iw_pooled_cs(band, dist, parent, inverse, eigenvalues, *args, backend="native"),
                        lambda: ref_iw.pooled_cs(band, dist, parent, inverse, eigenvalues, *args), dtype, what,
                        finite=content != "flat")
