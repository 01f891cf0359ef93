"""turboiqa.images: files come back with the pixel values written and the peak their bit depth implies."""
import json
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from conftest import import_or_skip
from PIL import Image
from turboiqa.cli import main
from turboiqa.eval.datasets import Pair
from turboiqa.eval.runner import score_dataset
from turboiqa.images import ImageReadError, metric_input, read_image, read_pair

RNG = np.random.default_rng(11)
H, W = 9, 13  # odd sizes: a row or column transposed by mistake shows


def write_png(path, array: np.ndarray, bits: int) -> None:
    """PNG written by hand (filter 0 rows): independent of the decoders under test, and any depth Pillow can't
    write (16-bit colour). Colour type from the channel count: grey, grey+alpha, RGB, RGBA."""
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[1 if array.ndim == 2 else array.shape[2]]
    height, width = array.shape[:2]
    rows = array.astype(">u2" if bits == 16 else "u1").reshape(height, -1)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def sixteen_bit(shape) -> np.ndarray:
    """Full 16-bit range with low bytes that differ from the high ones: clipping to 8 bits cannot go unnoticed."""
    values = RNG.integers(0, 65536, size=shape, dtype=np.uint16)
    values.flat[:2] = (0, 65535)
    return values


def planes(array: np.ndarray) -> np.ndarray:
    """H×W[×C] → 1×C×H×W, the layout read_image returns."""
    return (array[None] if array.ndim == 2 else array.transpose(2, 0, 1))[None]


def assert_read_back(path, expected: np.ndarray, bits: int) -> None:
    image = read_image(path)
    assert image.bits == bits and image.peak == (255 if bits == 8 else 65535)
    assert image.pixels.dtype == (torch.uint8 if bits == 8 else torch.float32)
    assert image.pixels.is_contiguous()
    np.testing.assert_array_equal(image.pixels.numpy(), planes(expected).astype(image.pixels.numpy().dtype))


# --- 8-bit: Pillow writes, the reader gives the same values back -------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_eight_bit_grey_and_rgb(tmp_path, suffix):
    grey = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / f"grey{suffix}")
    Image.fromarray(rgb, "RGB").save(tmp_path / f"rgb{suffix}")
    assert_read_back(tmp_path / f"grey{suffix}", grey, 8)
    assert_read_back(tmp_path / f"rgb{suffix}", rgb, 8)


def test_eight_bit_opaque_rgba_drops_alpha(tmp_path):
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((H, W), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert_read_back(tmp_path / "rgba.png", rgb, 8)


@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_palette_is_expanded_to_rgb(tmp_path, suffix):
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    image = Image.fromarray(indices, "L")
    image = image.convert("P")
    image.putpalette(palette.ravel().tolist())
    image.save(tmp_path / f"palette{suffix}")
    assert_read_back(tmp_path / f"palette{suffix}", palette[indices], 8)


@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_one_bit_is_black_and_white_on_0_255(tmp_path, suffix):
    bits = RNG.integers(0, 2, (H, W)).astype(bool)
    Image.fromarray(bits).save(tmp_path / f"bits{suffix}")
    assert Image.open(tmp_path / f"bits{suffix}").mode == "1"
    assert_read_back(tmp_path / f"bits{suffix}", bits.astype(np.uint8) * 255, 8)


def test_camera_jpeg_with_extra_frames_reads_the_first(tmp_path):
    """MPO: phones and cameras append previews or a stereo view to the JPEG; the photograph is frame 0."""
    photo = Image.fromarray(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8))
    preview = Image.new("RGB", (W, H), (1, 2, 3))
    photo.save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[preview])
    with Image.open(tmp_path / "camera.jpg") as im:
        assert im.format == "MPO" and im.n_frames == 2
        first = np.asarray(im.convert("RGB"))
    assert_read_back(tmp_path / "camera.jpg", first, 8)


# --- 16-bit PNG and TIFF ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_png(tmp_path, channels):
    values = sixteen_bit((H, W) if channels == 1 else (H, W, 3))
    write_png(tmp_path / "deep.png", values, 16)
    assert_read_back(tmp_path / "deep.png", values, 16)


def test_sixteen_bit_png_opaque_alpha_dropped(tmp_path):
    rgb = sixteen_bit((H, W, 3))
    write_png(tmp_path / "rgba16.png", np.dstack([rgb, np.full((H, W), 65535, np.uint16)]), 16)
    assert_read_back(tmp_path / "rgba16.png", rgb, 16)


@pytest.mark.parametrize("channels, options", [
    (1, {}),
    (3, {}),
    (3, {"compression": "lzw"}),
    (3, {"compression": "zlib", "tile": (16, 16)}),
    (3, {"planarconfig": "separate"}),
])
def test_sixteen_bit_tiff(tmp_path, channels, options):
    tifffile = import_or_skip("tifffile")
    values = sixteen_bit((H, W) if channels == 1 else (H, W, 3))
    stored = values.transpose(2, 0, 1) if options.get("planarconfig") == "separate" else values
    tifffile.imwrite(tmp_path / "deep.tif", stored, photometric="minisblack" if channels == 1 else "rgb", **options)
    assert_read_back(tmp_path / "deep.tif", values, 16)


def test_sixteen_bit_grey_tiff_written_by_pillow(tmp_path):
    values = sixteen_bit((H, W))
    Image.fromarray(values).save(tmp_path / "pillow16.tif")
    assert_read_back(tmp_path / "pillow16.tif", values, 16)


# --- the peak reaches the metric ----------------------------------------------------------------------------------

def psnr_by_hand(distorted: np.ndarray, reference: np.ndarray, peak: float) -> float:
    mse = np.mean((distorted.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return 10 * math.log10(peak**2 / mse)


def score_json(capsys, *args) -> dict:
    assert main(["score", *map(str, args), "--metric", "psnr", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_sixteen_bit_pair_scored_with_peak_65535(tmp_path, capsys):
    reference = sixteen_bit((H, W, 3))
    noise = RNG.integers(-200, 200, reference.shape)  # below one 8-bit step: clipping to 8 bits changes the score
    distorted = np.clip(reference.astype(np.int64) + noise, 0, 65535).astype(np.uint16)
    write_png(tmp_path / "ref.png", reference, 16)
    write_png(tmp_path / "dist.png", distorted, 16)
    row = score_json(capsys, tmp_path / "dist.png", tmp_path / "ref.png")
    assert row["psnr"] == pytest.approx(psnr_by_hand(distorted, reference, 65535), abs=1e-5)


def test_data_range_option_replaces_the_peak(tmp_path, capsys):
    # 12-bit data in 16-bit files: the user knows the peak is 4095
    reference = RNG.integers(0, 4096, (H, W), dtype=np.uint16)
    distorted = np.clip(reference.astype(np.int64) + RNG.integers(-60, 60, (H, W)), 0, 4095).astype(np.uint16)
    write_png(tmp_path / "ref.png", reference, 16)
    write_png(tmp_path / "dist.png", distorted, 16)
    row = score_json(capsys, tmp_path / "dist.png", tmp_path / "ref.png", "--data-range", "4095")
    assert row["psnr"] == pytest.approx(psnr_by_hand(distorted, reference, 4095), abs=1e-5)
    # 8-bit files with another peak: uint8 must become float for the metric to accept it
    reference8, distorted8 = (RNG.integers(0, 256, (H, W), dtype=np.uint8) for _ in range(2))
    Image.fromarray(reference8).save(tmp_path / "ref8.png")
    Image.fromarray(distorted8).save(tmp_path / "dist8.png")
    row = score_json(capsys, tmp_path / "dist8.png", tmp_path / "ref8.png", "--data-range", "510")
    assert row["psnr"] == pytest.approx(psnr_by_hand(distorted8, reference8, 510), abs=1e-5)


def test_metric_input_keeps_uint8_at_its_own_peak(tmp_path):
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "zero.png")
    image = read_image(tmp_path / "zero.png")
    assert metric_input(image).dtype == torch.uint8 and metric_input(image, 255).dtype == torch.uint8
    assert metric_input(image, 1000).dtype == torch.float32


def test_pair_of_different_bit_depths_names_both_files(tmp_path, capsys):
    write_png(tmp_path / "ref16.png", sixteen_bit((H, W)), 16)
    Image.fromarray(RNG.integers(0, 256, (H, W), dtype=np.uint8)).save(tmp_path / "dist8.png")
    with pytest.raises(ImageReadError, match=r"dist8\.png is 8-bit.*ref16\.png is 16-bit"):
        read_pair(tmp_path / "dist8.png", tmp_path / "ref16.png")
    assert main(["score", str(tmp_path / "dist8.png"), str(tmp_path / "ref16.png"), "--metric", "psnr"]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "ref16.png" in out and "dist8.png" in out


def test_data_range_must_be_positive(tmp_path, capsys):
    assert main(["score", "--demo", "--data-range", "0"]) == 2
    assert "--data-range" in capsys.readouterr().err


def test_evaluator_scores_sixteen_bit_pairs_and_records_mixed_depths(tmp_path):
    reference = sixteen_bit((H, W, 3))
    distorted = np.clip(reference.astype(np.int64) + RNG.integers(-900, 900, reference.shape), 0, 65535)
    write_png(tmp_path / "ref.png", reference, 16)
    write_png(tmp_path / "dist.png", distorted.astype(np.uint16), 16)
    Image.fromarray(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(tmp_path / "dist8.png")
    pairs = [Pair(tmp_path / "ref.png", tmp_path / "dist.png", 1.0, None, "noise", "dist.png"),
             Pair(tmp_path / "ref.png", tmp_path / "dist8.png", 2.0, None, "noise", "dist8.png")]
    assert pairs[0].load()[0].dtype == torch.float32 and pairs[0].read()[1].peak == 65535
    rows, stats = score_dataset(pairs, ["psnr"], tmp_path / "scores.csv", workers=0, progress=False)
    assert stats.pairs_scored == 1 and stats.pairs_failed == 1
    assert float(rows[0]["psnr"]) == pytest.approx(psnr_by_hand(distorted, reference, 65535), abs=1e-5)
    assert "bit depths differ" in rows[1]["error"] and "dist8.png" in rows[1]["error"]


# --- refused, with the file named ---------------------------------------------------------------------------------

def refused(path, reason: str) -> None:
    with pytest.raises(ImageReadError, match=reason) as caught:
        read_image(path)
    assert str(path) in str(caught.value)


def test_transparent_alpha_is_refused(tmp_path):
    rgba = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 254
    Image.fromarray(rgba, "RGBA").save(tmp_path / "see-through.png")
    refused(tmp_path / "see-through.png", "not fully opaque")
    rgba16 = sixteen_bit((H, W, 4))
    rgba16[..., 3] = 65535
    rgba16[-1, -1, 3] = 0
    write_png(tmp_path / "see-through16.png", rgba16, 16)
    refused(tmp_path / "see-through16.png", "not fully opaque")


def test_float_signed_and_deep_tiff_are_refused(tmp_path):
    tifffile = import_or_skip("tifffile")
    tifffile.imwrite(tmp_path / "float.tif", RNG.random((H, W), dtype=np.float32))
    tifffile.imwrite(tmp_path / "signed.tif", RNG.integers(-5, 5, (H, W), dtype=np.int16))
    tifffile.imwrite(tmp_path / "deep.tif", RNG.integers(0, 2**20, (H, W), dtype=np.uint32))
    refused(tmp_path / "float.tif", "floating-point")
    refused(tmp_path / "signed.tif", "signed-integer")
    refused(tmp_path / "deep.tif", "bits per sample")


def test_cmyk_multiframe_pnm16_and_unknown_files_are_refused(tmp_path):
    Image.new("CMYK", (W, H), (10, 20, 30, 40)).save(tmp_path / "cmyk.jpg")
    refused(tmp_path / "cmyk.jpg", "CMYK")
    frames = [Image.new("L", (W, H), v) for v in (0, 128)]
    frames[0].save(tmp_path / "two.tif", save_all=True, append_images=frames[1:])
    refused(tmp_path / "two.tif", "2 frames")
    (tmp_path / "deep.pgm").write_bytes(b"P5 2 1 65535\n" + np.array([1, 60000], ">u2").tobytes())
    refused(tmp_path / "deep.pgm", "more than 8 bits")
    Image.new("RGB", (W, H)).save(tmp_path / "picture.tga")
    refused(tmp_path / "picture.tga", "TGA files are not supported")
    (tmp_path / "text.png").write_bytes(b"not an image")
    refused(tmp_path / "text.png", "not an image file")


@pytest.mark.parametrize("mode", ["L", "1", "P", "I;16", "RGB"])
def test_reading_and_scoring_raise_no_warning(tmp_path, mode):
    # Issue 11: grey images raised NumPy's "non-writable array" UserWarning when turned into tensors.
    import warnings

    pixels = np.random.default_rng(5).integers(0, 256, (40, 48), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image = image.convert(mode) if mode != "I;16" else Image.fromarray(pixels.astype(np.uint16) * 257)
    path = tmp_path / "a.png"
    image.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = read_image(path)
        pixels_in = metric_input(decoded, decoded.peak)
        pixels_in.add_(0) if pixels_in.is_floating_point() else pixels_in.mul_(1)  # the tensor owns writable memory
    assert pixels_in.shape[-2:] == (40, 48)
