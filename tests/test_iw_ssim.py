"""IW-SSIM: the published MATLAB value, parity with piq, and the metric's properties (SPECS §4.1)."""
import math

import pytest
import torch
from test_peers import import_piq_module, pair
from turboiqa.metrics.iw_ssim import IW_SSIM, iw_ssim, upsample_axis
from turboiqa.metrics.ms_ssim import WANG_WEIGHTS

# iwssim.m(oimg, img) takes the information weights from oimg, the original; iw_ssim(x, y) from y, the reference:
# iw_ssim(distorted, reference) must be iwssim.m(reference, distorted).
# The published MATLAB value (piq tests/test_iw_ssim.py, "rgb case": YIQ luma, unrounded) is checked there as
# information_weighted_ssim(I01, i01_01_5): piq's second argument is its reference (it builds the weights), so the
# value is iwssim.m(i01_01_5, I01), the distorted image in the original's role. Reproducing it with
# iw_ssim(I01, i01_01_5) pins y to oimg; the same computation with the roles as in TID2013 (iwssim.m(I01, i01_01_5))
# is the distorted-first call iw_ssim(i01_01_5, I01), 0.946239578522783, which piq gives to 1e-5 as
# information_weighted_ssim(i01_01_5, I01) (test_piq_real_images).
MATLAB_I01_01_5_AS_ORIGINAL = 0.946804801436296  # iwssim.m(i01_01_5, I01), published
MATLAB_I01_AS_ORIGINAL = 0.946239578522783  # iwssim.m(I01, i01_01_5), the TID2013 roles


def as_kind(t, kind):
    if kind == "uint8":
        return t, 255
    return t.to(torch.float64 if kind == "float64" else torch.float32) / 255, 1.0


@pytest.mark.parametrize("convention", ["matlab", "piq"])  # identical at 512×384: every pyramid level is even
@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_matlab_value_i01(tid_i01, kind, convention, device):
    dist, ref = tid_i01
    i01, data_range = as_kind(ref, kind)
    i01_01_5, _ = as_kind(dist, kind)
    i01, i01_01_5 = i01.to(device), i01_01_5.to(device)
    # float64 reproduces MATLAB to the last digit; float32 (uint8 computes in float32) to ~1e-7.
    tolerance = 1e-12 if kind == "float64" else 1e-6
    published = iw_ssim(i01, i01_01_5, data_range, convention=convention).item()  # y = i01_01_5 plays oimg
    assert published == pytest.approx(MATLAB_I01_01_5_AS_ORIGINAL, abs=tolerance)
    distorted_first = iw_ssim(i01_01_5, i01, data_range, convention=convention).item()
    assert distorted_first == pytest.approx(MATLAB_I01_AS_ORIGINAL, abs=tolerance)


# upConv(lo, binom5, 'reflect1', [2 1], [1 1], n) on unit impulses, in units of sqrt(2)/16 (rows: output sample,
# columns: input sample), as produced by a line-by-line port of matlabPyrTools' convolve.c/edges.c.
UPCONV_10 = [[6, 2, 0, 0, 0], [4, 4, 0, 0, 0], [1, 6, 1, 0, 0], [0, 4, 4, 0, 0], [0, 1, 6, 1, 0],
             [0, 0, 4, 4, 0], [0, 0, 1, 6, 1], [0, 0, 0, 4, 4], [0, 0, 0, 1, 7], [0, 0, 0, 0, 8]]
UPCONV_9 = UPCONV_10[:8] + [[0, 0, 0, 2, 6]]  # odd length: mirrored about the last sample itself


@pytest.mark.parametrize("n, convention, want", [(10, "matlab", UPCONV_10), (9, "matlab", UPCONV_9),
                                                 (10, "piq", UPCONV_10), (9, "piq", UPCONV_10[:9])])
def test_expansion_borders(n, convention, want):
    impulses = torch.eye(5, dtype=torch.float64).view(5, 1, 1, 5)
    for dim, lo in ((-1, impulses), (-2, impulses.mT)):
        got = upsample_axis(lo, n, dim, convention).reshape(5, n).T * 16 / math.sqrt(2)
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), atol=1e-13, rtol=0)


@pytest.mark.parametrize("shape", [(2, 3, 181, 179), (1, 1, 200, 256), (2, 1, 161, 167), (1, 3, 177, 300)])
def test_piq_random(shape):
    piq_iw = import_piq_module("iw_ssim")
    x, y = pair(shape)
    want = piq_iw.information_weighted_ssim(x, y, data_range=1.0, reduction="none")
    torch.testing.assert_close(iw_ssim(x, y, 1.0, "none", convention="piq"), want, atol=1e-11, rtol=0)


@pytest.mark.parametrize("scales, parent, blk_size", [(2, True, 3), (3, True, 3), (5, False, 3), (5, True, 5)])
def test_piq_options(scales, parent, blk_size):
    piq_iw = import_piq_module("iw_ssim")
    x, y = pair((2, 1, 181, 190))
    weights = torch.tensor(WANG_WEIGHTS[:scales], dtype=torch.float64)
    want = piq_iw.information_weighted_ssim(x, y, 1.0, parent=parent, blk_size=blk_size, scale_weights=weights,
                                            reduction="none")
    got = iw_ssim(x, y, 1.0, "none", convention="piq", scales=scales, parent=parent, blk_size=blk_size)
    torch.testing.assert_close(got, want, atol=1e-11, rtol=0)


def test_piq_real_images(tid_pairs, tid_i01):
    piq_iw = import_piq_module("iw_ssim")
    # float64 (piq takes ~1 s per call there): a full-size pair (every pyramid level even) and two odd crops, where
    # the expansions of piq and matlabPyrTools differ.
    odd_end, odd_both = (slice(0, 383), slice(0, 511)), (slice(3, 380), slice(1, 506))
    for (dist, ref), (rows, cols) in ((tid_i01, (slice(None),) * 2), (tid_pairs[0], odd_both), (tid_pairs[4], odd_end)):
        x, y = dist[..., rows, cols].double(), ref[..., rows, cols].double()
        want = piq_iw.information_weighted_ssim(x, y, data_range=255)
        torch.testing.assert_close(iw_ssim(x, y, 255, convention="piq"), want, atol=1e-12, rtol=0)
    for dist, ref in tid_pairs + [tid_i01]:
        # uint8: both compute in float32; piq's low-pass statistics lose ~1e-6 to cancellation there, ours run
        # in float64 (see iw_ssim), hence the wider tolerance.
        want = piq_iw.information_weighted_ssim(dist, ref, data_range=255)
        torch.testing.assert_close(iw_ssim(dist, ref, 255, convention="piq"), want, atol=1e-5, rtol=0)


def test_conventions_differ_only_at_odd_sizes(tid_pairs):
    dist, ref = (t.double() for t in tid_pairs[0])
    assert iw_ssim(dist, ref, 255).item() == iw_ssim(dist, ref, 255, convention="piq").item()
    x, y = dist[..., 3:380, 1:506], ref[..., 3:380, 1:506]
    difference = abs(iw_ssim(x, y, 255).item() - iw_ssim(x, y, 255, convention="piq").item())
    assert 1e-8 < difference < 1e-5


@pytest.mark.parametrize("convention", ["matlab", "piq"])
def test_identical_images_give_one(convention, device):
    x, _ = pair((2, 3, 180, 190))
    torch.testing.assert_close(iw_ssim(x.to(device), x.to(device), 1.0, "none", convention=convention),
                               torch.ones(2, dtype=torch.float64, device=device), atol=1e-12, rtol=0)
    u = (x * 255).round().to(torch.uint8).to(device)
    assert IW_SSIM(data_range=255, loss=True)(u, u).item() == pytest.approx(0.0, abs=1e-6)


def test_flat_reference_scores_nan_for_that_pair_only():
    x, y = pair((2, 1, 180, 180))
    y[0] = 0.5  # no texture: singular neighbourhood covariance (MATLAB: inv warns, the score is NaN)
    got = iw_ssim(x, y, 1.0, "none")
    assert torch.isnan(got[0])
    assert got[1].item() == pytest.approx(iw_ssim(x[1:], y[1:]).item(), abs=1e-13)


def test_gradient(device):
    x, y = pair((1, 1, 176, 181))
    x, y = (0.1 + 0.8 * t.to(device) for t in (x, y))  # away from 0 and 1, so the difference below stays in range
    x, y = x.requires_grad_(), y.requires_grad_()
    loss = IW_SSIM(loss=True)(x, y)
    loss.backward()
    for t in (x, y):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    # The gradient w.r.t. the reference (which also shapes the information weights) matches a central difference.
    direction = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype).to(device) * 1e-3
    eps = 1e-3
    with torch.no_grad():
        plus = iw_ssim(x, y + eps * direction, 1.0).item()
        minus = iw_ssim(x, y - eps * direction, 1.0).item()
    assert (plus - minus) / (2 * eps) == pytest.approx(-(y.grad * direction).sum().item(), rel=1e-5)


def test_too_small():
    x, y = pair((1, 1, 175, 300))
    with pytest.raises(ValueError, match=r"5 scales needs images of at least 176×176.*175×300.*scales=4"):
        iw_ssim(x, y)
    assert 0 < iw_ssim(x, y, scales=4).item() < 1
    with pytest.raises(ValueError, match=r"at least 161×161"):
        iw_ssim(x[..., :160, :], y[..., :160, :], convention="piq")
    iw_ssim(x[..., :161, :], y[..., :161, :], convention="piq")
    with pytest.raises(ValueError, match="scales must be 1…5"):
        iw_ssim(x, y, scales=6)
    with pytest.raises(ValueError, match="blk_size must be a positive odd integer"):
        iw_ssim(x, y, blk_size=4)


def test_batch_equals_one_by_one():
    x, y = pair((3, 3, 181, 200))
    batched = iw_ssim(x, y, 1.0, "none")
    single = torch.cat([iw_ssim(x[i:i + 1], y[i:i + 1], 1.0, "none") for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-13, rtol=0)
    assert iw_ssim(x, y, 1.0, "sum").item() == pytest.approx(batched.sum().item(), abs=1e-13)


def test_channels_scored_separately():
    x, y = pair((2, 3, 181, 179))
    per_channel = torch.stack([iw_ssim(x[:, c:c + 1], y[:, c:c + 1], 1.0, "none") for c in range(3)], 1)
    torch.testing.assert_close(iw_ssim(x, y, 1.0, "none", color="per_channel"), per_channel.mean(1))
    torch.testing.assert_close(iw_ssim(x[:, :2], y[:, :2], 1.0, "none"), per_channel[:, :2].mean(1))


def test_float32_matches_float64(tid_pairs):
    x, y = pair((2, 3, 181, 179))
    torch.testing.assert_close(iw_ssim(x.float(), y.float(), 1.0, "none"), iw_ssim(x, y, 1.0, "none").float(),
                               atol=1e-6, rtol=0)
    for dist, ref in tid_pairs:
        want = iw_ssim(dist.double() / 255, ref.double() / 255, 1.0).item()
        assert iw_ssim(dist.float() / 255, ref.float() / 255, 1.0).item() == pytest.approx(want, abs=1e-6)
        assert iw_ssim(dist, ref, 255).item() == pytest.approx(want, abs=1e-6)
