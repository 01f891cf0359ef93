"""HDR image files (turboiqa.hdr_images): OpenEXR half/float channels read exactly, Radiance RGBE decoded as its
mantissa × 2^(exponent − 136), and the files a metric could only misread refused with the file's name."""
import numpy as np
import pytest
import torch
from conftest import import_or_skip
from turboiqa.hdr_images import HdrReadError, is_hdr_file, read_hdr_image


def write_exr(path, channels):
    OpenEXR = import_or_skip("OpenEXR")
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    # contiguous copies: the bindings write a strided view (rgb[..., 0]) as if it were contiguous
    OpenEXR.File(header, {k: np.ascontiguousarray(v) for k, v in channels.items()}).write(str(path))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_exr_rgb_exact(tmp_path, dtype):
    rng = np.random.default_rng(0)
    rgb = (rng.random((7, 9, 3)) * 4000).astype(dtype)  # cd/m²-like values above 1
    write_exr(tmp_path / "a.exr", {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2]})
    image = read_hdr_image(tmp_path / "a.exr")
    assert image.format == "exr" and image.pixels.dtype == torch.float32 and image.pixels.shape == (1, 3, 7, 9)
    assert torch.equal(image.pixels[0].permute(1, 2, 0), torch.from_numpy(rgb.astype(np.float32)))
    assert image.peak == float(rgb.astype(np.float32).max())


def test_exr_grey_and_opaque_alpha(tmp_path):
    y = np.linspace(0, 10, 30, dtype=np.float32).reshape(5, 6)
    write_exr(tmp_path / "y.exr", {"Y": y, "A": np.ones_like(y)})
    image = read_hdr_image(tmp_path / "y.exr")
    assert image.pixels.shape == (1, 1, 5, 6) and torch.equal(image.pixels[0, 0], torch.from_numpy(y))


@pytest.mark.parametrize("case, match", [
    ("nan", "NaN or infinite"), ("negative", "negative samples"), ("alpha", "transparent"), ("channels", "channels"),
])
def test_exr_refused(tmp_path, case, match):
    y = np.ones((4, 4), np.float32)
    channels = {"Y": y}
    if case == "nan":
        channels = {"Y": np.where(np.eye(4, dtype=bool), np.float32(np.nan), y)}
    elif case == "negative":
        channels = {"Y": y - 2}
    elif case == "alpha":
        channels = {"Y": y, "A": y * 0.5}
    elif case == "channels":
        channels = {"Z": y}
    path = tmp_path / f"{case}.exr"
    write_exr(path, channels)
    with pytest.raises(HdrReadError, match=match) as error:
        read_hdr_image(path)
    assert str(path) in str(error.value)


def test_radiance_rgbe_decoded(tmp_path):
    """A hand-written flat RGBE file (width < 8: no run-length coding): value = mantissa · 2^(exponent − 136),
    the decoding of the format's reference rgbe.c that OpenCV follows; RGB order, not OpenCV's BGR."""
    import_or_skip("cv2")
    rgbe = np.array([[[128, 64, 0, 129], [200, 100, 50, 140], [255, 1, 2, 120]]], np.uint8)  # 1 × 3 pixels
    header = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 3\n"
    (tmp_path / "a.hdr").write_bytes(header + rgbe.tobytes())
    image = read_hdr_image(tmp_path / "a.hdr")
    want = rgbe[..., :3].astype(np.float64) * np.exp2(rgbe[..., 3:].astype(np.float64) - 136)
    assert image.format == "radiance" and image.pixels.shape == (1, 3, 1, 3)
    np.testing.assert_array_equal(image.pixels[0].permute(1, 2, 0).numpy(), want.astype(np.float32))
    assert image.pixels[0, :, 0, 0].tolist() == [1.0, 0.5, 0.0]


def test_not_hdr_or_missing(tmp_path):
    assert is_hdr_file("x.EXR") and is_hdr_file("x.hdr") and not is_hdr_file("x.png")
    with pytest.raises(HdrReadError, match="not an HDR image file"):
        read_hdr_image(tmp_path / "x.png")
    with pytest.raises(HdrReadError, match="no such file"):
        read_hdr_image(tmp_path / "x.exr")
    (tmp_path / "bad.exr").write_bytes(b"not an exr")
    import_or_skip("OpenEXR")
    with pytest.raises(HdrReadError, match="not a readable OpenEXR"):
        read_hdr_image(tmp_path / "bad.exr")
