"""The fused GMSD operator grey_gradient_moments (csrc/grey_gradient_moments.h) against the two operators it fuses,
grey_planes then gradient_similarity(..., 'moments'): bit for bit (torch.equal) over dtypes, sizes around the strips
and their halos, channel counts, coefficients, factors, pads, rounding modes, paddings, alpha, eps, batches,
NaN/Inf extrema, thread counts and every ISA build; the PyTorch twin; opcheck, Meta, argument errors; gmsd() on the
fused route against its differentiable route."""
import math
import os
import subprocess
import sys

import pytest
import torch
import turboiqa
from turboiqa import _ops
from turboiqa.colour import BT601, RGB2GRAY
from turboiqa.metrics._grey import GREY_COEFFS

pytestmark = pytest.mark.skipif(not _ops._has_op("grey_gradient_moments"), reason="compiled op not available")

OP = torch.ops.turboiqa.grey_gradient_moments
PREWITT = [1.0, 1.0, 1.0]
# (coeffs, scale, rounding) for 3-channel input; per channel: (), scale
SPECS3 = [
    ((), 1.0, "none"),
    ((), 255.0, "half_even"),
    (tuple(c * 255 for c in BT601), 1.0, "none"),
    (tuple(c * 255 for c in RGB2GRAY), 1.0, "half_away"),
    (GREY_COEFFS["yiq_f32"], 255.0, "half_even"),
    ((0.3, 0.6, 0.1, 0.5, -0.2, -0.3), 255.0, "none"),  # two planes
]
SPECS1 = [((), 1.0, "none"), ((), 255.0, "half_away"), ((2.0,), 1.0, "none")]


def images(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
        return x, (x.int() + torch.randint(-20, 21, shape, generator=g)).clamp(0, 255).to(torch.uint8)
    base = torch.nn.functional.avg_pool2d(torch.rand(shape, generator=g, dtype=torch.float64), 3, 1, 1,
                                          count_include_pad=False)
    noisy = (base + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return base.to(dtype), noisy.to(dtype)


def composed(x, y, front, tail):
    px, ex = torch.ops.turboiqa.grey_planes(x, *front)
    py, ey = torch.ops.turboiqa.grey_planes(y, *front)
    return torch.ops.turboiqa.gradient_similarity(px, py, *tail, "moments"), ex, ey


def same(got, want):
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def geometries(h, w, f, pad):
    """(factor, pad_top, pad_left, out_h, out_w): the 'zeros' (ceil) and 'floor' outputs that read inside."""
    out = []
    for oh in {-(-(h + pad) // f), (h + pad) // f}:
        for ow in {-(-(w + pad) // f), (w + pad) // f}:
            if oh >= 1 and ow >= 1 and (oh - 1) * f - pad < h and (ow - 1) * f - pad < w:
                out.append((f, pad, pad, oh, ow))
    return out


def cases(h, w, channels, dtype, k):
    """The argument lists of one size: a rotation through specs, factors/pads, paddings, alpha and eps (k: seed)."""
    specs = SPECS3 if channels == 3 else SPECS1
    for i, (f, pad) in enumerate(((1, 0), (2, 0), (2, 1))):
        coeffs, scale, rounding = specs[(k + i) % len(specs)]
        if dtype == torch.uint8 and scale == 255.0:
            scale = 1.0
        for geo in geometries(h, w, f, pad):
            for j, padding in enumerate(("zeros", "valid")):
                least = 3 if padding == "valid" else 1
                if min(geo[3], geo[4]) < least:
                    continue
                alpha = 0.5 if (k + j) % 2 else 0.0
                eps = 1e-3 if (k + i + j) % 3 == 0 else 0.0
                yield (list(coeffs), scale, rounding, *geo), (PREWITT, 1 / 3 * (1 if coeffs else 255.0 / scale),
                                                              170.0, alpha, eps, padding)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_equals_the_two_operators_bit_for_bit(dtype):
    """Heights 4..70 (strip boundaries at 32 output rows: pooled heights around 32/64), widths 4..67 (vector bodies
    and tails), C = 1 and 3, batch 1 and 2."""
    k = 0
    for h in range(4, 71):
        for w in (4 + (h * 7) % 64, 4 + (h * 13 + 5) % 64):
            channels = 3 if (h + w) % 3 else 1
            n = 2 if h % 5 == 0 else 1
            x, y = images((n, channels, h, w), dtype, seed=h * 100 + w)
            for front, tail in cases(h, w, channels, dtype, k):
                k += 1
                same(OP(x, y, *front, *tail), composed(x, y, front, tail))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_strip_boundaries_of_taller_images(dtype):
    """Pooled heights around 64 and 96 (two and three strips, the last one short or one row long) for both
    paddings ('valid' has 2 output rows fewer), factor 2 with both pads."""
    k = 0
    for h in (126, 127, 128, 129, 130, 131, 132, 133, 134, 190, 192, 194, 195, 196, 197, 198):
        w = 9 + h % 23
        x, y = images((2, 3, h, w), dtype, seed=h)
        for front, tail in cases(h, w, 3, dtype, k):
            k += 1
            same(OP(x, y, *front, *tail), composed(x, y, front, tail))


def test_tall_images_take_longer_strips():
    """Over 256 output rows the strips grow (an eighth of the map, up to ~256 KiB of planes): same bits."""
    for h, w, channels in ((1100, 40, 3), (1031, 23, 1), (2200, 9, 3)):
        x, y = images((1, channels, h, w), torch.float32, seed=h)
        for front, tail in cases(h, w, channels, torch.float32, h):
            same(OP(x, y, *front, *tail), composed(x, y, front, tail))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_finite_samples_anywhere(dtype):
    """NaN/Inf in x or y: in a strip's first/last row, a halo row, a row or column no box reads, the last image of a
    batch: the extrema (NaN for that image only) and moments equal the two operators'."""
    h, w = 71, 37  # factor 2: the last row and column are read by no 'floor' box
    for where in ((0, 0, 0), (1, 64, 5), (1, 63, 36), (2, 70, 10), (0, 66, 36), (2, 31, 0), (1, 32, 12)):
        for bad in (math.nan, math.inf, -math.inf):
            for target in (0, 1):
                x, y = images((2, 3, h, w), dtype, seed=7)
                (x if target == 0 else y)[(1, *where)] = bad
                for spec in (SPECS3[0], SPECS3[2]):
                    for geo in geometries(h, w, 2, 0):
                        front = (list(spec[0]), spec[1], spec[2], *geo)
                        for padding in ("zeros", "valid"):
                            tail = (PREWITT, 1 / 3, 170.0, 0.0, 0.0, padding)
                            got = OP(x, y, *front, *tail)
                            same(got, composed(x, y, front, tail))
                            ext = got[1 + target]
                            assert ext[1].isnan().all() and torch.isfinite(ext[0]).all()
                            assert torch.isfinite(got[2 - target]).all()


def test_huge_values_and_uint8_extrema():
    x, y = images((1, 3, 20, 21), torch.float64)
    x[0, :, 5, 7] = torch.finfo(torch.float64).max / 4
    front = ([], 1.0, "none", 2, 0, 0, 10, 10)
    tail = (PREWITT, 1 / 3, 170.0, 0.0, 0.0, "zeros")
    same(OP(x, y, *front, *tail), composed(x, y, front, tail))
    u, v = images((2, 3, 9, 9), torch.uint8)
    _, ex, ey = OP(u, v, *front[:3], 2, 0, 0, 5, 5, *tail)
    assert ex.tolist() == ey.tolist() == [[0.0, 255.0]] * 2


def test_half_noncontiguous_and_empty_batch():
    x, y = images((2, 3, 40, 30), torch.float32)
    front = (list(BT601), 255.0, "none", 2, 0, 0, 20, 15)
    tail = (PREWITT, 1 / 3, 170.0, 0.0, 0.0, "zeros")
    same(OP(x.half(), y.half(), *front, *tail), composed(x.half(), y.half(), front, tail))
    xt, yt = x.transpose(-1, -2), y.transpose(-1, -2)
    front_t = (list(BT601), 255.0, "none", 2, 0, 0, 15, 20)
    same(OP(xt, yt, *front_t, *tail), composed(xt.contiguous(), yt.contiguous(), front_t, tail))
    m, ex, ey = OP(x[:0], y[:0], *front, *tail)
    assert m.shape == (0, 1, 2) and ex.shape == ey.shape == (0, 2)


def test_batch_equals_single_images():
    x, y = images((3, 3, 67, 45), torch.float32)
    front = ([], 255.0, "none", 2, 0, 0, 33, 22)
    tail = (PREWITT, 1 / 3, 170.0, 0.0, (1e-6 * 255) ** 2, "valid")
    whole = OP(x, y, *front, *tail)
    for i in range(3):
        one = OP(x[i:i + 1], y[i:i + 1], *front, *tail)
        same(one, [t[i:i + 1] for t in whole])


def test_result_independent_of_thread_count():
    """Large enough for several tasks per thread (1080p-like rows): 1 and 2 threads give the same bits."""
    x, y = images((2, 3, 300, 700), torch.float32)
    calls = [(([c * 255 for c in BT601], 1.0, "none", 2, 0, 0, 150, 350), (PREWITT, 1 / 3, 170.0, 0.0, 0.0, "zeros")),
             (([], 1.0, "none", 2, 0, 0, 150, 350), (PREWITT, 255 / 3, 170.0, 0.5, 1e-3, "valid"))]
    threads = torch.get_num_threads()
    try:
        results = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            results[n] = [OP(x, y, *front, *tail) for front, tail in calls]
    finally:
        torch.set_num_threads(threads)
    for one, two, (front, tail) in zip(results[1], results[2], calls):
        same(one, two)
        same(two, composed(x, y, front, tail))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_twin_and_python_entry(dtype):
    """The PyTorch twin (reference/grey_gradient_moments.py) and the _ops entry with every backend; a gradient
    takes the composed operators."""
    x, y = images((2, 3, 29, 38), dtype)
    for front, tail in cases(29, 38, 3, dtype, 1):
        got = _ops.grey_gradient_moments(x, y, *front, *tail, backend="native")
        same(got, OP(x, y, *front, *tail))
        same(_ops.grey_gradient_moments(x, y, *front, *tail), got)
        want = _ops.grey_gradient_moments(x, y, *front, *tail, backend="reference")
        rtol = 1e-12 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(got[0], want[0], rtol=rtol, atol=0)
        assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2])
    if dtype == torch.float64:
        xg = x.clone().requires_grad_()
        front, tail = next(cases(29, 38, 3, dtype, 2))
        m, _, _ = _ops.grey_gradient_moments(xg, y, *front, *tail)
        assert m.requires_grad
        m.sum().backward()
        assert xg.grad is not None and torch.isfinite(xg.grad).all()


def test_opcheck_and_meta():
    x, y = images((2, 3, 21, 18), torch.float32)
    torch.library.opcheck(OP.default, (x, y, list(BT601), 255.0, "none", 2, 0, 0, 11, 9, PREWITT, 1 / 3, 170.0,
                                       0.0, 0.0, "zeros"))
    torch.library.opcheck(OP.default, (x.double(), y.double(), [], 1.0, "half_even", 2, 1, 1, 11, 10,
                                       [3.0, 10.0, 3.0], 1 / 16, 225.0, 0.5, 1e-3, "valid"))
    xm = torch.empty(2, 3, 21, 18, device="meta")
    m, ex, ey = OP(xm, xm, [0.3, 0.6, 0.1, 0.5, -0.2, -0.3], 1.0, "none", 2, 0, 0, 11, 9, PREWITT, 1 / 3, 170.0,
                   0.0, 0.0, "zeros")
    assert m.shape == (2, 2, 2) and ex.shape == ey.shape == (2, 2)
    assert m.dtype == ex.dtype == ey.dtype == torch.float64 and m.device.type == "meta"


def test_torch_compile():
    x, y = images((1, 3, 24, 24), torch.float32)
    front = (list(BT601), 255.0, "none", 2, 0, 0, 12, 12)
    tail = (PREWITT, 1 / 3, 170.0, 0.0, 0.0, "zeros")
    fn = torch.compile(lambda a, b: OP(a, b, *front, *tail), fullgraph=True, backend="eager")
    same(fn(x, y), OP(x, y, *front, *tail))


def test_op_errors_name_the_argument():
    x = torch.rand(1, 3, 8, 8)
    front = ([], 1.0, "none", 2, 0, 0, 4, 4)
    tail = (PREWITT, 1 / 3, 170.0, 0.0, 0.0, "zeros")
    bad = [
        ((x, torch.rand(1, 3, 8, 9)), front, tail, "same shape"),
        ((x, x.double()), front, tail, "same dtype"),
        ((x[0], x[0]), front, tail, "N x C x H x W"),
        ((x.int(), x.int()), front, tail, "uint8 or floating"),
        ((x, x), ([], 1.0, "up", *front[3:]), tail, "rounding must be"),
        ((x, x), ([1.0, 2.0], *front[1:]), tail, "coeffs must hold"),
        ((x, x), ([], math.inf, *front[2:]), tail, "scale must be finite"),
        ((x, x), (*front[:3], 0, 0, 0, 4, 4), tail, "factor must be"),
        ((x, x), (*front[:4], 2, 0, 4, 4), tail, "pads must be"),
        ((x, x), (*front[:6], 6, 4), tail, "reads past"),
        ((x, x), front, ([1.0, 1.0], *tail[1:]), "smooth must hold 3 taps"),
        ((x, x), front, (PREWITT, 0.0, *tail[2:]), "grad_scale must be > 0"),
        ((x, x), front, (*tail[:2], 0.0, *tail[3:]), "c must be > 0"),
        ((x, x), front, (*tail[:3], 1.0, *tail[4:]), "alpha must be in"),
        ((x, x), front, (*tail[:4], -1.0, "zeros"), "eps must be >= 0"),
        ((x, x), front, (*tail[:5], "reflect"), "padding must be"),
        ((x, x), (*front[:6], 2, 4), (*tail[:5], "valid"), "at least 3x3"),
    ]
    for tensors, f, t, message in bad:
        with pytest.raises(RuntimeError, match=message) as info:
            OP(*tensors, *f, *t)
        assert "grey_gradient_moments" in str(info.value)
        meta = [torch.empty(a.shape, dtype=a.dtype, device="meta") for a in tensors]
        with pytest.raises(RuntimeError, match=message):
            OP(*meta, *f, *t)


ISA_SCRIPT = """
import sys, torch, turboiqa
ok = True
g = torch.Generator().manual_seed(5)
op = torch.ops.turboiqa
for dtype in (torch.uint8, torch.float32, torch.float64):
    for shape in ((2, 3, 9, 37), (1, 3, 70, 67), (1, 1, 133, 19), (1, 3, 1100, 21)):
        if dtype == torch.uint8:
            x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
            y = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
        else:
            x = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
            y = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
        c = shape[1]
        h, w = shape[-2:]
        for coeffs, scale, rounding in (((), 1.0, "none"), ((0.299 * 255, 0.587 * 255, 0.114 * 255) * (c == 3), 1.0,
                                         "half_away"), ((0.299, 0.587, 0.114) * (c == 3), 255.0, "half_even")):
            for f, pad, oh, ow in ((1, 0, h, w), (2, 0, h // 2, w // 2), (2, 1, (h + 2) // 2, (w + 2) // 2)):
                for padding, alpha in (("zeros", 0.0), ("valid", 0.5)):
                    front = (list(coeffs), 1.0 if dtype == torch.uint8 else scale, rounding, f, pad, pad, oh, ow)
                    tail = ([1.0, 1.0, 1.0], 1 / 3, 170.0, alpha, 1e-3, padding)
                    got = op.grey_gradient_moments(x, y, *front, *tail)
                    px, ex = op.grey_planes(x, *front)
                    py, ey = op.grey_planes(y, *front)
                    want = (op.gradient_similarity(px, py, *tail, "moments"), ex, ey)
                    ok = ok and all(torch.equal(a, b) for a, b in zip(got, want))
print("ISA", turboiqa.build_info()["cpu_isa_selected"], "OK" if ok else "MISMATCH")
"""


def test_every_isa_build_equals_the_two_operators():
    """baseline (SSE2), AVX2 and AVX-512 rows: each build's fused operator gives that build's two-operator bits."""
    compiled = turboiqa.build_info()["cpu_isa_compiled"].split(",")
    ran = []
    for isa in ("baseline", "avx2", "avx512"):
        if isa not in compiled:
            continue
        env = dict(os.environ, TURBOIQA_CPU_ISA=isa, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, "-c", ISA_SCRIPT], env=env, check=True, capture_output=True,
                             text=True).stdout.split()
        assert out[0] == "ISA" and out[2] == "OK", out
        ran.append(out[1])
    assert "baseline" in ran


# ---- gmsd() on the fused route (no gradient) against its differentiable route (the two operators) ----

@pytest.mark.parametrize("convention", ["matlab", "piq", "pyiqa", "frame_analytics"])
def test_gmsd_fused_route_equals_differentiable_route(convention):
    x, y = images((2, 3, 45, 62), torch.float64, seed=3)
    for color in (None, "yiq", "rgb2gray_uint8", "yiq_uint8", "per_channel"):
        fused = turboiqa.gmsd(x, y, reduction="none", convention=convention, color=color)
        graded = turboiqa.gmsd(x.clone().requires_grad_(), y, reduction="none", convention=convention, color=color)
        torch.testing.assert_close(fused, graded.detach(), rtol=1e-12, atol=1e-15)
        reference = turboiqa.gmsd(x, y, reduction="none", convention=convention, color=color, backend="reference")
        torch.testing.assert_close(fused, reference, rtol=1e-9, atol=1e-12)
        for reduction in ("mean", "sum"):
            torch.testing.assert_close(turboiqa.gmsd(x, y, reduction=reduction, convention=convention, color=color),
                                       getattr(fused, reduction)(), rtol=1e-14, atol=0)
        one = turboiqa.gmsd(x[1:], y[1:], convention=convention, color=color)
        assert one.shape == () and one.dtype == torch.float64
        torch.testing.assert_close(one, fused[1], rtol=1e-14, atol=0)
    x32, y32 = x.float(), y.float()
    fused32 = turboiqa.gmsd(x32, y32, reduction="none", convention=convention)
    assert fused32.dtype == torch.float32
    torch.testing.assert_close(fused32, turboiqa.gmsd(x32.requires_grad_(), y32, reduction="none",
                                                      convention=convention).detach(), rtol=1e-6, atol=1e-7)


def test_gmsd_fused_route_value_errors_and_warning():
    x, y = images((1, 3, 16, 16), torch.float32)
    for bad, name in ((x.clone(), "x"), (y.clone(), "y")):
        bad[0, 1, 15, 15] = math.nan
        args = (bad, y) if name == "x" else (x, bad)
        with pytest.raises(ValueError, match=f"{name} contains NaN or Inf"):
            turboiqa.gmsd(*args)
    with pytest.raises(ValueError, match=r"y has values in .*outside \[0, data_range=1.0\]"):
        turboiqa.gmsd(x, y * 2)
    with pytest.raises(ValueError, match=r"x has values in"):
        turboiqa.gmsd(x - 0.5, y, convention="frame_analytics")
    with pytest.warns(UserWarning, match="data_range"):
        turboiqa.gmsd(x, y, data_range=255.0)


def test_gmsd_host_and_tensor_deviations_agree():
    """The CPU route's Python-float deviations and the tensor ops of the other devices, from the same moments."""
    from turboiqa.metrics.gmsd import _deviations, _deviations_on_host

    x, y = images((3, 3, 41, 52), torch.float64, seed=9)
    for coeffs in ([], list(BT601)):
        m, _, _ = OP(x, y, coeffs, 255.0, "none", 2, 0, 0, 20, 26, PREWITT, 1 / 3, 170.0, 0.0, 0.0, "zeros")
        count = m.shape[1] * 20 * 26
        for dtype in (torch.float32, torch.float64):
            for correction in (0, 1):
                for reduction in ("none", "mean", "sum"):
                    for rows in (m, m[1:2]):
                        host = _deviations_on_host(rows, count, correction, dtype, reduction)
                        tensor = _deviations(rows.clone(), count, correction, dtype, reduction)
                        assert host.dtype == tensor.dtype == dtype and host.shape == tensor.shape
                        torch.testing.assert_close(host, tensor, rtol=1e-12, atol=1e-15)
