"""HDR input of the jobs: `turboiqa score --display` on 16-bit PNG/TIFF (PQ codes), OpenEXR and Radiance files,
and `turboiqa video` on 10-bit PQ/HLG clips (decoded at their depth, cvvdp as one JOD per clip). Every file is
written here; the expected values come from the Python API on independently decoded pixels."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import turboiqa
from conftest import import_or_skip
from hdr_common import (
    hdr10_planes,
    hdr_luminance,
    make_hdr_files,
    pq_codes,
    write_exr,
    write_png16,
    write_tiff16,
    write_yuv10,
)
from turboiqa import display as tdisplay
from turboiqa.cli import main

HDR_PQ = "standard_hdr_pq"


# ---------------------------------------------------------------------------------------------------- images
@pytest.fixture(scope="module")
def luminance():
    return hdr_luminance()


def as_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)).astype(np.float32))[None]


def json_rows(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("writer", [write_png16, write_tiff16])
def test_score_16bit_pq_equals_api(tmp_path, capsys, luminance, writer):
    ref_lum, dist_lum = luminance
    ref_codes, dist_codes = pq_codes(ref_lum), pq_codes(dist_lum)
    suffix = ".png" if writer is write_png16 else ".tif"
    ref, dist = writer(tmp_path / f"ref{suffix}", ref_codes), writer(tmp_path / f"dist{suffix}", dist_codes)
    assert main(["score", str(dist), str(ref), "--metric", "cvvdp,pu21_psnr", "--display", HDR_PQ, "--json"]) == 0
    (row,) = json_rows(capsys)
    r, d = as_tensor(ref_codes), as_tensor(dist_codes)
    jod = turboiqa.cvvdp(d, r, data_range=65535, display=HDR_PQ).item()
    psnr = turboiqa.pu21_psnr(d, r, data_range=65535, display=HDR_PQ).item()
    assert row["cvvdp"] == pytest.approx(jod, abs=1e-6) and row["pu21_psnr"] == pytest.approx(psnr, abs=1e-5)
    # not truncated to 8 bits: the high bytes alone give another score
    trunc = turboiqa.pu21_psnr(torch.floor(d / 257) * 257, torch.floor(r / 257) * 257, data_range=65535,
                               display=HDR_PQ).item()
    assert abs(trunc - psnr) > 0.05
    assert 5 < jod < 10 and 20 < psnr < 60


def test_score_exr_linear_equals_api(tmp_path, capsys, luminance):
    ref_lum, dist_lum = luminance
    ref, dist = write_exr(tmp_path / "ref.exr", ref_lum), write_exr(tmp_path / "dist.exr", dist_lum)
    assert main(["score", str(dist), str(ref), "--metric", "cvvdp,pu21_psnr,pu21_ssim", "--display",
                 "standard_hdr_linear", "--json"]) == 0
    (row,) = json_rows(capsys)
    r, d = as_tensor(ref_lum), as_tensor(dist_lum)
    for name in ("cvvdp", "pu21_psnr", "pu21_ssim"):
        assert row[name] == pytest.approx(turboiqa.METRICS[name](d, r, display="standard_hdr_linear").item(),
                                          abs=1e-5), name


def test_score_display_parameters(tmp_path, capsys, luminance):
    """--display-param overrides the named display's viewing conditions (the API's resolve_display overrides)."""
    ref_lum, dist_lum = luminance
    ref, dist = write_exr(tmp_path / "ref.exr", ref_lum), write_exr(tmp_path / "dist.exr", dist_lum)
    args = ["score", str(dist), str(ref), "--metric", "cvvdp", "--json", "--display", HDR_PQ]
    assert main(args + ["--display-param", "eotf=linear", "--display-param", "ambient=200",
                        "--display-param", "distance_m=2"]) == 0
    (row,) = json_rows(capsys)
    disp = tdisplay.resolve_display(HDR_PQ, eotf="linear", ambient=200.0, distance_m=2.0)
    expected = turboiqa.cvvdp(as_tensor(dist_lum), as_tensor(ref_lum), display=disp).item()
    assert row["cvvdp"] == pytest.approx(expected, abs=1e-6)
    assert main(args + ["--display-param", "eotf=linear"]) == 0
    (plain,) = json_rows(capsys)
    assert abs(plain["cvvdp"] - row["cvvdp"]) > 1e-3  # the viewing conditions matter


def test_score_radiance_and_folders(tmp_path, capsys, luminance):
    cv2 = import_or_skip("cv2")
    ref_lum, dist_lum = luminance
    (tmp_path / "r").mkdir()
    (tmp_path / "d").mkdir()
    for side, lum in (("r", ref_lum), ("d", dist_lum)):
        assert cv2.imwrite(str(tmp_path / side / "a.hdr"), np.ascontiguousarray(lum[..., ::-1]))
        write_exr(tmp_path / side / "b.exr", lum)
    assert main(["score", str(tmp_path / "d"), str(tmp_path / "r"), "--metric", "pu21_psnr", "--display",
                 "standard_hdr_linear", "--json"]) == 0
    rows = json_rows(capsys)
    assert [r["distorted"].rsplit("/", 1)[1] for r in rows] == ["a.hdr", "b.exr"]
    decoded = [as_tensor(cv2.imread(str(tmp_path / s / "a.hdr"), cv2.IMREAD_UNCHANGED)[..., ::-1]) for s in "dr"]
    expected = turboiqa.pu21_psnr(*decoded, display="standard_hdr_linear").item()
    assert rows[0]["pu21_psnr"] == pytest.approx(expected, abs=1e-5)
    assert abs(rows[0]["pu21_psnr"] - rows[1]["pu21_psnr"]) < 0.5  # RGBE keeps ~1% precision


@pytest.mark.parametrize("args, message", [
    (["--metric", "cvvdp,psnr", "--display", "standard_hdr_linear"], "cannot be scored by psnr"),
    (["--metric", "cvvdp"], "needs a display model with a linear EOTF"),
    (["--metric", "pu21_psnr", "--display", HDR_PQ], "display 'standard_hdr_pq' has 'PQ'"),
    (["--metric", "cvvdp", "--display", "no_such_display"], "unknown"),
    (["--metric", "cvvdp", "--display", HDR_PQ, "--display-param", "peak"], "expected KEY=VALUE"),
    (["--metric", "cvvdp", "--display", HDR_PQ, "--display-param", "gamma=2"], "unknown key 'gamma'"),
])
def test_score_hdr_refusals(tmp_path, capsys, luminance, args, message):
    ref, dist = write_exr(tmp_path / "ref.exr", luminance[0]), write_exr(tmp_path / "dist.exr", luminance[1])
    assert main(["score", str(dist), str(ref), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    if "EOTF" in message or "scored by" in message:
        assert str(ref) in err  # names the file


def test_score_mixed_pair_and_sdr_only_display(tmp_path, capsys, luminance):
    exr = write_exr(tmp_path / "ref.exr", luminance[0])
    png = write_png16(tmp_path / "dist.png", pq_codes(luminance[1]))
    assert main(["score", str(png), str(exr), "--metric", "cvvdp", "--display", "standard_hdr_linear"]) == 2
    assert "display-encoded" in capsys.readouterr().err
    assert main(["score", str(png), str(png), "--metric", "psnr", "--display", HDR_PQ]) == 2
    assert "used only by" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["exr", "png"])
def test_score_corrupt_hdr_file(tmp_path, capsys, luminance, kind):
    if kind == "exr":
        ref = write_exr(tmp_path / "ref.exr", luminance[0])
        bad = tmp_path / "dist.exr"
        bad.write_bytes(ref.read_bytes()[:200])
        args = ["--metric", "cvvdp", "--display", "standard_hdr_linear"]
    else:
        ref = write_png16(tmp_path / "ref.png", pq_codes(luminance[0]))
        bad = tmp_path / "dist.png"
        bad.write_bytes(ref.read_bytes()[:300])
        args = ["--metric", "cvvdp", "--display", HDR_PQ]
    assert main(["score", str(bad), str(ref), *args, "--json"]) == 1
    captured = capsys.readouterr()
    (row,) = json_rows_from(captured.out)
    assert str(bad) in row["error"] and "cvvdp" not in row


def json_rows_from(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------------------------------------------- video
def expected_rgb(y, u, v) -> np.ndarray:
    """BT.2020 NCL limited-range 10-bit Y'CbCr (4:4:4) → display-encoded R'G'B' in [0, 1], float64, written out
    from BT.2020 Table 4 independently of the decoder."""
    yn = (y / 4.0 - 16) / 219
    cb, cr = (u / 4.0 - 128) / 224, (v / 4.0 - 128) / 224
    r = yn + 1.4746 * cr
    b = yn + 1.8814 * cb
    g = (yn - 0.2627 * r - 0.0593 * b) / 0.6780
    return np.clip(np.stack([r, g, b], axis=-3), 0, 1)


@pytest.fixture(scope="module")
def pq_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("hdr_clips")
    (y, u, v), (yd, ud, vd) = hdr10_planes()
    return {"planes": (y, u, v), "dist_planes": (yd, ud, vd), "root": root,
            "ref": write_yuv10(root / "ref.mkv", y, u, v), "dist": write_yuv10(root / "dist.mkv", yd, ud, vd),
            "hlg": write_yuv10(root / "hlg.mkv", yd, ud, vd, trc=18)}


def test_10bit_pq_clip_decodes_to_absolute_luminance(pq_clips):
    video = import_or_skip("turboiqa.video")
    from turboiqa.video.decode import BatchReader

    info = video.probe(pq_clips["ref"])
    assert (info.bits, info.transfer, info.pix_fmt) == (10, "pq", "yuv444p10le")
    y, u, v = pq_clips["planes"]
    with BatchReader(pq_clips["ref"], pq_clips["ref"], {"y", "rgb"}, batch_size=8) as reader:
        (batch,) = list(reader)
    assert batch.data_range == {"y": 1023.0, "rgb": 1.0}
    assert batch.ref["y"].dtype == torch.float32 and torch.equal(batch.ref["y"][:, 0], torch.from_numpy(y).float())
    rgb = expected_rgb(y.astype(np.float64), u.astype(np.float64), v.astype(np.float64))
    np.testing.assert_allclose(batch.ref["rgb"].numpy(), rgb, atol=2e-6)  # lossless codec: float32 rounding only
    photo = tdisplay.named_display(HDR_PQ).photometry
    got = photo.forward(batch.ref["rgb"].double())
    expected = (tdisplay.pq_eotf(torch.from_numpy(rgb)).clamp(0.005, photo.peak) + photo.black + photo.reflected)
    torch.testing.assert_close(got, expected, rtol=2e-5, atol=1e-6)
    assert float(expected.max()) > 1000  # genuinely HDR: above any SDR white


def test_10bit_420_grey_and_x265(tmp_path):
    """4:2:0 10-bit from libx265 (lossless): neutral chroma gives R = G = B = Y'; nothing is cut to 8 bits."""
    import_or_skip("turboiqa.video")
    from turboiqa.video.decode import BatchReader

    n, h, w = 3, 32, 64
    y = (64 + (np.arange(w)[None, None, :] * 13 + np.arange(n)[:, None, None]) % 877 + np.zeros((n, h, 1))).astype(
        np.uint16)
    c = np.full((n, h // 2, w // 2), 512, np.uint16)
    try:
        path = write_yuv10(tmp_path / "x265.mkv", y, c, c, codec="libx265", pix_fmt="yuv420p10le",
                           options={"x265-params": "lossless=1:log-level=none"})
    except Exception as exc:  # noqa: BLE001 - an FFmpeg build without libx265
        pytest.skip(f"libx265 unavailable: {exc}")
    with BatchReader(path, path, {"y", "rgb"}, batch_size=4) as reader:
        (batch,) = list(reader)
    assert torch.equal(batch.ref["y"][:, 0], torch.from_numpy(y).float())
    assert len(set((batch.ref["y"][0, 0].numpy() % 4).ravel().tolist())) > 1  # the two low bits survive
    grey = torch.from_numpy((y / 4.0 - 16) / 219).float()
    for k in range(3):
        torch.testing.assert_close(batch.ref["rgb"][:, k], grey, atol=2e-6, rtol=0)


def rgb_clip(planes) -> torch.Tensor:
    return torch.from_numpy(expected_rgb(*(p.astype(np.float64) for p in planes))).float()


def test_video_hdr_metrics_equal_api(pq_clips, tmp_path):
    import_or_skip("turboiqa.video")
    out = tmp_path / "rows.jsonl"
    assert main(["video", str(pq_clips["dist"]), str(pq_clips["ref"]), "--metric", "psnr,pu21_psnr,cvvdp",
                 "--out", str(out), "--batch", "3", "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    summary = json.loads((tmp_path / "rows.summary.json").read_text())
    assert summary["display"] == HDR_PQ and "cvvdp" not in rows[0]
    ref, dist = rgb_clip(pq_clips["planes"]), rgb_clip(pq_clips["dist_planes"])
    jod = turboiqa.cvvdp(dist, ref, data_range=1.0, display=HDR_PQ, fps=25).item()
    assert summary["metrics"]["cvvdp"]["jod"] == pytest.approx(jod, abs=1e-4)
    assert summary["metrics"]["cvvdp"]["frames"] == 8 and 4 < jod < 10
    pu = turboiqa.pu21_psnr(dist, ref, data_range=1.0, display=HDR_PQ, reduction="none")
    np.testing.assert_allclose([r["pu21_psnr"] for r in rows], pu.numpy(), atol=1e-3)
    yr = torch.from_numpy(pq_clips["planes"][0]).double()
    yd = torch.from_numpy(pq_clips["dist_planes"][0]).double()
    psnr10 = 10 * torch.log10(1023 ** 2 / (yr - yd).square().mean((1, 2)))  # 10-bit codes, peak 1023
    np.testing.assert_allclose([r["psnr"] for r in rows], psnr10.numpy(), atol=1e-4)


def test_video_10bit_luma_metrics_match_ffmpeg(pq_clips, tmp_path):
    """ffmpeg's psnr/ssim filters and libvmaf's psnr/float_ssim on the 10-bit clips (their own 10-bit paths)."""
    video = import_or_skip("turboiqa.video")
    from video_common import ffmpeg_oracle

    oracle = ffmpeg_oracle(pq_clips["ref"], pq_clips["dist"], tmp_path)
    rows = list(video.score(pq_clips["dist"], pq_clips["ref"], ["psnr", "ssim_ffmpeg", "ssim_libvmaf"]))
    np.testing.assert_allclose([r["psnr"] for r in rows], oracle["psnr_y"], atol=1e-4)
    np.testing.assert_allclose([r["ssim_ffmpeg"] for r in rows], oracle["ssim_y"], atol=2e-6)
    np.testing.assert_allclose([r["ssim_libvmaf"] for r in rows], oracle["vmaf_float_ssim"], atol=1e-5)


def test_video_transfer_and_display_rules(pq_clips, tmp_path, capsys):
    video = import_or_skip("turboiqa.video")
    ref, dist, hlg = (str(pq_clips[k]) for k in ("ref", "dist", "hlg"))
    # a PQ stream with an SDR display, or tags that disagree: refused before anything is scored
    assert main(["video", dist, ref, "--metric", "pu21_psnr", "--display", "standard_4k", "--no-progress"]) == 2
    assert "says PQ" in capsys.readouterr().err
    assert main(["video", hlg, ref, "--metric", "pu21_psnr", "--no-progress"]) == 2
    assert "transfer tags differ" in capsys.readouterr().err
    clip = {}
    rows = list(video.score(hlg, ref, ["pu21_psnr"], transfer="hlg", clip=clip))
    assert clip["display"] == "standard_hdr_hlg" and len(rows) == 8
    # cvvdp is one JOD per clip: no sparse frames, no resume, no --ray
    assert main(["video", dist, ref, "--metric", "cvvdp", "--every", "2", "--no-progress"]) == 2
    assert "every must be 1" in capsys.readouterr().err
    out = tmp_path / "r.csv"
    assert main(["video", dist, ref, "--metric", "psnr,cvvdp", "--out", str(out), "--no-progress"]) == 0
    assert out.read_text().splitlines()[0] == "frame,pts,psnr"
    assert main(["video", dist, ref, "--metric", "psnr,cvvdp", "--out", str(out), "--resume", "--no-progress"]) == 2
    assert "cannot be resumed" in capsys.readouterr().err
    assert main(["video", dist, ref, "--metric", "cvvdp", "--ray", "--no-progress"]) == 2
    assert "temporal" in capsys.readouterr().err


def test_video_mixed_depth_and_8bit_fast_path(pq_clips, tmp_path):
    """An 8-bit partner of a 10-bit clip is shifted up 2 bits; 8-bit pairs stay uint8."""
    import_or_skip("turboiqa.video")
    from turboiqa.video.decode import BatchReader
    from video_common import write_video

    y = pq_clips["planes"][0]
    y8 = (y >> 2).astype(np.uint8)
    eight = write_video(tmp_path / "eight.mkv", y8, pix_fmt="yuv444p")
    with BatchReader(eight, pq_clips["ref"], {"y"}, batch_size=8) as reader:
        (batch,) = list(reader)
    assert batch.data_range["y"] == 1023.0
    assert torch.equal(batch.dist["y"][:, 0], torch.from_numpy(y8.astype(np.float32) * 4))
    with BatchReader(eight, eight, {"y", "rgb"}, batch_size=8) as reader:
        (batch,) = list(reader)
    assert batch.ref["y"].dtype == torch.uint8 and batch.ref["rgb"].dtype == torch.uint8
    assert batch.data_range == {"y": 255.0, "rgb": 255.0}


def test_video_corrupt_10bit_clip(pq_clips, tmp_path, capsys):
    import_or_skip("turboiqa.video")
    data = pq_clips["dist"].read_bytes()
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(data[: len(data) // 2])
    code = main(["video", str(broken), str(pq_clips["ref"]), "--metric", "psnr,cvvdp", "--no-progress"])
    assert code == 1
    assert "broken.mkv" in capsys.readouterr().err


def test_video_cvvdp_8bit_streams_like_the_api(tmp_path):
    """8-bit SDR clips (uint8 fast path): the clip JOD over several batches equals turboiqa.cvvdp(fps=) on the same
    frames; a one-frame selection is scored as an image, as cvvdp does."""
    video = import_or_skip("turboiqa.video")
    from turboiqa.video.decode import BatchReader
    from video_common import add_noise, smooth_frames, write_video

    frames = smooth_frames(9, 32, 48)
    ref = write_video(tmp_path / "ref.mkv", frames, pix_fmt="yuv420p")
    dist = write_video(tmp_path / "dist.mkv", add_noise(frames, 6), pix_fmt="yuv420p")
    with BatchReader(dist, ref, {"rgb"}, batch_size=16) as reader:
        (batch,) = list(reader)
    assert batch.ref["rgb"].dtype == torch.uint8
    clip = {}
    rows = list(video.score(dist, ref, ["psnr", "cvvdp"], batch_size=4, clip=clip))
    assert len(rows) == 9 and clip["display"] == "standard_4k" and clip["frames"] == 9
    expected = turboiqa.cvvdp(batch.dist["rgb"], batch.ref["rgb"], data_range=255, fps=25).item()
    assert clip["cvvdp"] == pytest.approx(expected, abs=1e-4)
    one = {}
    list(video.score(dist, ref, ["cvvdp"], start=3, end=4, clip=one))
    image = turboiqa.cvvdp(batch.dist["rgb"][3:4], batch.ref["rgb"][3:4], data_range=255).item()
    assert one["cvvdp"] == pytest.approx(image, abs=1e-5)


@pytest.mark.parametrize("h, w", [(8, 10), (7, 9), (6, 11)])
def test_chroma_upsampling_is_centred_bilinear(h, w):
    """4:2:0 chroma → luma size: torch's bilinear 2× (align_corners=False, as ColorVideoVDP), odd sizes cropped;
    4:2:2 only horizontally."""
    import_or_skip("av")
    from turboiqa.video.decode import _chroma_to_luma_size

    rng = np.random.default_rng(h * w)
    c = rng.random(((h + 1) // 2, (w + 1) // 2)).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(c)[None, None], scale_factor=2, mode="bilinear",
                                         align_corners=False)[0, 0, :h, :w]
    cb, cr = _chroma_to_luma_size(c, c * 2, h, w)
    assert torch.equal(torch.from_numpy(cb), up) and torch.equal(torch.from_numpy(cr), up * 2)
    c422 = rng.random((h, (w + 1) // 2)).astype(np.float32)
    cb, _ = _chroma_to_luma_size(c422, c422, h, w)
    expected = torch.nn.functional.interpolate(torch.from_numpy(c422)[None, None], scale_factor=(1, 2),
                                               mode="bilinear", align_corners=False)[0, 0, :, :w]
    assert torch.equal(torch.from_numpy(cb), expected)


def test_video_display_param_applies_to_the_streams_display(pq_clips, tmp_path):
    import_or_skip("turboiqa.video")
    out = tmp_path / "p.csv"
    assert main(["video", str(pq_clips["dist"]), str(pq_clips["ref"]), "--metric", "pu21_psnr", "--out", str(out),
                 "--display-param", "peak=600", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "p.summary.json").read_text())
    assert summary["display"] == "standard_hdr_pq+custom" and summary["options"]["display"]["photometry"]["peak"] == 600
    rows = [float(line.split(",")[2]) for line in out.read_text().splitlines()[1:]]
    ref, dist = rgb_clip(pq_clips["planes"]), rgb_clip(pq_clips["dist_planes"])
    disp = tdisplay.resolve_display(HDR_PQ, peak=600.0)
    expected = turboiqa.pu21_psnr(dist, ref, display=disp, reduction="none")
    np.testing.assert_allclose(rows, expected.numpy(), atol=1e-3)


def test_readme_hdr_examples(tmp_path, monkeypatch, capsys):
    """The README's HDR commands, on the files make_hdr_files writes (tests/test_readme.py can use it too)."""
    import_or_skip("turboiqa.video")
    make_hdr_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for line in (
        "score --demo --metric cvvdp,pu21_psnr --display standard_fhd --display-param ambient=50 "
        "--display-param distance_m=1.2",
        "score dist_pq.png ref_pq.png --metric cvvdp,pu21_psnr --display standard_hdr_pq",
        "score dist.exr ref.exr --metric cvvdp,pu21_psnr,pu21_ssim --display standard_hdr_linear",
        "video hdr10_dist.mkv hdr10_ref.mkv --metric psnr,pu21_psnr,cvvdp --out hdr10.csv --no-progress",
    ):
        assert main(line.split()) == 0, line
    assert json.loads((tmp_path / "hdr10.summary.json").read_text())["display"] == HDR_PQ
