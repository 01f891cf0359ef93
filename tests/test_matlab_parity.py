"""Parity with the original MATLAB values on the TID2013 pairs (SPECS §18, ../shared/data/tid2013)."""
import csv

import pytest
import torch
import matlab_oracle as oracle
import turboiqa
from conftest import TID2013
from matlab_oracle import hwc

# SPECS §18, order i03, i04, i06, i08, i19.
PSNR_RGB = [21.1136, 20.9872, 27.0139, 23.3003, 21.6187]
SSIM_INDEX = [0.6993, 0.9978, 0.9989, 0.9669, 0.6519]  # ssim_index.m on rgb2gray (uint8) input
SSIM_M = [0.6423, 0.9994, 0.9997, 0.9645, 0.7617]  # ssim.m (f = 2 at 512×384)
MS_SSIM = [0.6700, 0.9996, 0.9998, 0.9565, 0.8418]  # msssim.m on rgb2gray input
BACKENDS = ["native", "reference"] if turboiqa.HAVE_NATIVE else ["reference"]
TOL = 5.01e-5  # the published values carry 4 decimals


def as_input(t, kind, device):
    """uint8 as decoded, or float in [0, 1] (float32 / float64)."""
    if kind == "uint8":
        return t.to(device), 255
    return (t.to(torch.float64 if kind == "float64" else torch.float32) / 255).to(device), 1.0


# Float input skips MATLAB's uint8 rounding of rgb2gray, so no published value applies: the expected values come from
# the NumPy/SciPy re-implementation of ssim_index.m on the unrounded luma. float32 computes in float32.
FLOAT_TOL = {"float64": 1e-10, "float32": 1e-6}


@pytest.fixture(scope="module")
def ssim_index_oracle(tid_pairs):
    """ssim_index.m by matlab_oracle: {'uint8': on rgb2gray rounded like MATLAB, 'float': on the unrounded luma}."""
    out = {}
    for rounded, kind in ((True, "uint8"), (False, "float")):
        out[kind] = [oracle.ssim_index(oracle.rgb2gray(hwc(d), rounded), oracle.rgb2gray(hwc(r), rounded))
                     for d, r in tid_pairs]
    return out


def test_oracle_reproduces_published_ssim_index(ssim_index_oracle):
    # The oracle is only trusted for float input because it reproduces the published uint8 values.
    assert ssim_index_oracle["uint8"] == pytest.approx(SSIM_INDEX, abs=TOL)
    assert ssim_index_oracle["float"] != pytest.approx(ssim_index_oracle["uint8"], abs=1e-5)


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_ssim_index_m(tid_pairs, ssim_index_oracle, kind, backend, device):
    got = []
    for dist, ref in tid_pairs:
        x, L = as_input(dist, kind, device)
        y, _ = as_input(ref, kind, device)
        got.append(turboiqa.ssim(x, y, data_range=L, convention="ssim_index", backend=backend).item())
    if kind == "uint8":  # rgb2gray rounds to uint8 exactly as MATLAB does: the published values apply
        assert got == pytest.approx(SSIM_INDEX, abs=TOL)
        assert got == pytest.approx(ssim_index_oracle["uint8"], abs=1e-6)
    else:
        assert got == pytest.approx(ssim_index_oracle["float"], abs=FLOAT_TOL[kind])


@pytest.mark.parametrize("backend", BACKENDS)
def test_ssim_m_and_ms_ssim(tid_pairs, backend, device):
    for (dist, ref), want_ssim, want_ms in zip(tid_pairs, SSIM_M, MS_SSIM):
        x, y = dist.to(device), ref.to(device)
        assert turboiqa.ssim(x, y, 255, convention="matlab", backend=backend).item() == pytest.approx(want_ssim, abs=TOL)
        assert turboiqa.ms_ssim(x, y, 255, convention="matlab", backend=backend).item() == pytest.approx(want_ms, abs=TOL)


def test_float_input_gives_unrounded_luma(tid_pairs):
    # Float input skips MATLAB's uint8 rounding of rgb2gray: close to, but not exactly, the published value.
    dist, ref = tid_pairs[0]
    got = turboiqa.ssim(dist.double() / 255, ref.double() / 255, 1.0).item()
    assert got == pytest.approx(SSIM_INDEX[0], abs=2e-3)
    assert got != pytest.approx(turboiqa.ssim(dist, ref, 255).item(), abs=1e-7)


def test_psnr_rgb(tid_pairs, device):
    for (dist, ref), want in zip(tid_pairs, PSNR_RGB):
        assert turboiqa.psnr(dist.to(device), ref.to(device), 255).item() == pytest.approx(want, abs=TOL)
        f = turboiqa.psnr(dist.double().to(device) / 255, ref.double().to(device) / 255, 1.0).item()
        assert f == pytest.approx(want, abs=TOL)


def reference_values():
    rows = {}
    with open(TID2013 / "reference_values.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rows[(row["dist_img"], row["metric"])] = float(row["value"])
    return rows


def test_psnr_y_matches_tid2013_files(tid_pairs, tid_i01):
    # TID2013's own PSNR.txt: Y of MATLAB rgb2ycbcr (uint8); 100000 marks an unchanged Y (we return inf).
    values = reference_values()
    pairs = dict(zip(["i03_11_5.bmp", "i04_18_5.bmp", "i06_18_3.bmp", "i08_15_3.bmp", "i19_10_5.bmp"], tid_pairs))
    pairs["i01_01_5.bmp"] = tid_i01
    checked = 0
    for name, (dist, ref) in pairs.items():
        got = turboiqa.psnr(dist, ref, 255, color="ycbcr").item()
        if (name, "psnr_y_matlab_rgb2ycbcr") in values:
            assert got == pytest.approx(values[(name, "psnr_y_matlab_rgb2ycbcr")], abs=TOL)
            checked += 1
        else:
            assert got == float("inf")
        if (name, "psnr_rgb") in values:
            assert turboiqa.psnr(dist, ref, 255).item() == pytest.approx(values[(name, "psnr_rgb")], abs=TOL)
    assert checked == 4


def test_batched_equals_one_by_one(tid_pairs):
    dist = torch.cat([d for d, _ in tid_pairs])
    ref = torch.cat([r for _, r in tid_pairs])
    for fn, want in ((turboiqa.ssim, SSIM_INDEX), (turboiqa.ms_ssim, MS_SSIM), (turboiqa.psnr, PSNR_RGB)):
        batched = fn(dist, ref, 255, reduction="none")
        assert batched.shape == (5,)
        assert batched.tolist() == pytest.approx(want, abs=TOL)
        assert fn(dist, ref, 255).item() == pytest.approx(sum(want) / 5, abs=TOL)


def test_float32_kernel_within_1e5_of_float64_on_real_images(tid_pairs, tid_i01, device):
    # The numeric bar: float32 compute (uint8 or float32 input) within 1e-5 of the float64 reference.
    for dist, ref in [*tid_pairs, tid_i01]:
        d, r = dist.to(device), ref.to(device)
        truth = turboiqa.ssim(d.double(), r.double(), 255, convention="pytorch_msssim", reduction="none",
                              backend="reference")
        for x, y in ((d, r), (d.float(), r.float())):
            got = turboiqa.ssim(x, y, 255, convention="pytorch_msssim", reduction="none")
            assert (got.double() - truth).abs().max().item() < 1e-5
            got_ms = turboiqa.ms_ssim(x, y, 255, convention="pytorch_msssim", reduction="none")
            truth_ms = turboiqa.ms_ssim(d.double(), r.double(), 255, convention="pytorch_msssim", reduction="none",
                                        backend="reference")
            assert (got_ms.double() - truth_ms).abs().max().item() < 1e-5
