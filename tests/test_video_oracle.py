"""Per-frame PSNR and SSIM of ``turboiqa.video`` against an independent oracle: ffmpeg's psnr / ssim filters and
libvmaf's psnr / float_ssim features, from the ffmpeg binary in the imageio-ffmpeg wheel.

Matching conventions (all on the decoded Y plane, 8-bit):

* ``psnr`` ↔ ffmpeg psnr_y and libvmaf psnr_y: 10·log10(255²/MSE) of the Y plane. turboiqa returns float32 and
  the oracles print 6 decimals: agreement to ~2e-6 dB.
* ``ssim_ffmpeg`` ↔ ffmpeg ssim Y (x264 8×8 block SSIM): exact integer sums here, float32 ratios there: ~1e-6.
* ``ssim_libvmaf`` ↔ libvmaf float_ssim, reproduced with libvmaf's 6-decimal Gaussian taps and σ clamps: ~1e-5
  (libvmaf keeps its filtered maps in float32).
* ``ssim`` (native kernel, convention 'libvmaf': exact Gaussian) ↔ libvmaf float_ssim: up to ~3e-4 on the carphone
  clip. The cause is libvmaf's rounded taps (sum 1.000002 → σ² biased by about −4e-6·μ², then clamped at 0 in flat
  windows); the test shows it by reproducing the native value with the exact taps and no clamp.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import import_or_skip
from video_common import add_noise, carphone, ffmpeg_oracle, smooth_frames, write_video

METRICS = ["psnr", "ssim", "ssim_libvmaf", "ssim_ffmpeg"]


def scores(distorted, reference, **kwargs):
    from turboiqa.video import score

    rows = list(score(distorted, reference, METRICS, **kwargs))
    return {m: np.array([r[m] for r in rows]) for m in METRICS}, rows


@pytest.fixture(scope="module")
def carphone_scores(tmp_path_factory):
    ref, dist = carphone()
    oracle = ffmpeg_oracle(ref, dist, tmp_path_factory.mktemp("oracle"))
    ours, rows = scores(dist, ref)
    return ours, oracle, rows


def test_carphone_frame_count(carphone_scores):
    _, oracle, rows = carphone_scores
    assert [r["frame"] for r in rows] == list(range(120))
    assert all(len(v) == 120 for v in oracle.values())


def test_psnr_matches_ffmpeg_and_libvmaf(carphone_scores):
    ours, oracle, _ = carphone_scores
    np.testing.assert_allclose(ours["psnr"], oracle["psnr_y"], atol=5e-6, rtol=0)
    np.testing.assert_allclose(ours["psnr"], oracle["vmaf_psnr_y"], atol=5e-6, rtol=0)


def test_ssim_ffmpeg_matches_ssim_filter(carphone_scores):
    ours, oracle, _ = carphone_scores
    np.testing.assert_allclose(ours["ssim_ffmpeg"], oracle["ssim_y"], atol=2e-6, rtol=0)


def test_ssim_libvmaf_matches_float_ssim(carphone_scores):
    ours, oracle, _ = carphone_scores
    np.testing.assert_allclose(ours["ssim_libvmaf"], oracle["vmaf_float_ssim"], atol=2e-5, rtol=0)


def test_native_ssim_residual_is_libvmafs_tap_rounding(carphone_scores):
    """The fast native SSIM differs from libvmaf only through libvmaf's rounded taps and clamps."""
    from turboiqa.video.decode import BatchReader
    from turboiqa.video.libvmaf import float_ssim
    from turboiqa.window import gaussian_window

    ours, oracle, _ = carphone_scores
    residual = np.abs(ours["ssim"] - oracle["vmaf_float_ssim"])
    assert residual.max() < 3e-4
    ref, dist = carphone()
    with BatchReader(dist, ref, {"y"}, batch_size=16) as reader:
        batch = next(iter(reader))
    exact = float_ssim(batch.dist["y"], batch.ref["y"], taps=gaussian_window(11, 1.5), clamp=False).numpy()
    np.testing.assert_allclose(ours["ssim"][:16], exact, atol=2e-6, rtol=0)


@pytest.mark.parametrize("size", [(512, 544), (722, 771)], ids=["f2", "f3-odd-width"])
def test_libvmaf_decimation_at_larger_sizes(tmp_path, size):
    """min(H, W) ≥ 384 makes libvmaf decimate (f = 2, 3); an odd width exercises its ⌊W/f⌋ + 1 rule."""
    import_or_skip("av")
    frames = smooth_frames(2, *size)
    ref = write_video(tmp_path / "ref.mkv", frames)
    dist = write_video(tmp_path / "dist.mkv", add_noise(frames, 20))
    oracle = ffmpeg_oracle(ref, dist, tmp_path)
    ours, _ = scores(dist, ref)
    np.testing.assert_allclose(ours["ssim_libvmaf"], oracle["vmaf_float_ssim"], atol=2e-5, rtol=0)
    np.testing.assert_allclose(ours["ssim"], oracle["vmaf_float_ssim"], atol=3e-4, rtol=0)
    np.testing.assert_allclose(ours["ssim_ffmpeg"], oracle["ssim_y"], atol=2e-6, rtol=0)
    np.testing.assert_allclose(ours["psnr"], oracle["psnr_y"], atol=5e-6, rtol=0)


def test_identical_planes():
    from turboiqa.video.libvmaf import float_ssim
    from turboiqa.video.x264_ssim import block_ssim

    y = torch.from_numpy(smooth_frames(2, 64, 80))[:, None]
    assert torch.allclose(block_ssim(y, y), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(float_ssim(y, y), torch.ones(2, dtype=torch.float64))
