"""HDR image files (turboiqa.hdr_images): OpenEXR half/float channels read exactly, Radiance RGBE decoded as its
mantissa × 2^(exponent − 136), and the files a metric could only misread refused with the file's name."""
import numpy as np
import pytest
import torch
from conftest import import_or_skip
from turboiqa.hdr_images import HdrReadError, is_hdr_file, read_hdr_image


def write_exr(path, channels, **attributes):
    OpenEXR = import_or_skip("OpenEXR")
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, **attributes}
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


# ITU-R BT.2087-0, equation (4): linear BT.2020 RGB → linear BT.709 RGB, the published 4-decimal matrix
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]])
REC709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
REC2020 = (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290)


def rgb_channels(rgb):
    return {c: rgb[..., k] for k, c in enumerate("RGB")}


def test_exr_rec2020_converted_to_rec709(tmp_path):
    """Rec. 2020 primaries (the chromaticities attribute) → Rec. 709 by the published BT.2087 matrix (its 4
    decimals: 5e-5 per entry); D65 white (R = G = B) stays where it is; Rec. 709 colours round-trip."""
    rng = np.random.default_rng(1)
    rec709 = (0.2 + rng.random((5, 6, 3)) * 100).astype(np.float64)  # well inside the gamut
    rec2020 = np.linalg.solve(BT2020_TO_BT709, rec709.reshape(-1, 3).T).T.reshape(rec709.shape).astype(np.float32)
    write_exr(tmp_path / "a.exr", rgb_channels(rec2020), chromaticities=REC2020)
    got = read_hdr_image(tmp_path / "a.exr").pixels[0].permute(1, 2, 0).double().numpy()
    bound = 5e-5 * np.abs(rec2020.astype(np.float64)).sum(-1, keepdims=True) + 1e-5 * rec709  # matrix rounding
    assert (np.abs(got - rec709) <= bound).all(), float((np.abs(got - rec709) / bound).max())
    grey = np.full((3, 4, 3), 37.5, np.float32)
    write_exr(tmp_path / "grey.exr", rgb_channels(grey), chromaticities=REC2020)
    np.testing.assert_allclose(read_hdr_image(tmp_path / "grey.exr").pixels.numpy(), 37.5, rtol=1e-6)


def test_exr_rec709_and_interop_id(tmp_path):
    """Rec. 709 chromaticities: the samples untouched (bit for bit); a linear colorInteropID is honoured like the
    chromaticities it stands for."""
    rgb = (np.random.default_rng(2).random((4, 5, 3)) * 50).astype(np.float32)
    write_exr(tmp_path / "709.exr", rgb_channels(rgb), chromaticities=REC709)
    assert torch.equal(read_hdr_image(tmp_path / "709.exr").pixels[0].permute(1, 2, 0), torch.from_numpy(rgb))
    grey_ish = np.full((2, 3, 3), 10.0, np.float32) + np.array([0.0, 0.5, 1.0], np.float32)
    write_exr(tmp_path / "id.exr", rgb_channels(grey_ish), colorInteropID="lin_rec2020_scene")
    write_exr(tmp_path / "chroma.exr", rgb_channels(grey_ish), chromaticities=REC2020)
    by_id, by_chroma = (read_hdr_image(tmp_path / f).pixels for f in ("id.exr", "chroma.exr"))
    assert torch.equal(by_id, by_chroma) and not torch.equal(by_id[0].permute(1, 2, 0), torch.from_numpy(grey_ish))


@pytest.mark.parametrize("case, match", [("white", "white point"), ("gamut", "colorspace=BT.2020-linear")])
def test_exr_primaries_refused(tmp_path, case, match):
    rgb = np.ones((3, 3, 3), np.float32)
    if case == "white":  # D50 white: converting would need a chromatic adaptation the file does not specify
        attributes = {"chromaticities": REC709[:6] + (0.3457, 0.3585)}
    else:  # pure Rec. 2020 green lies outside Rec. 709
        rgb[..., 0] = rgb[..., 2] = 0
        attributes = {"chromaticities": REC2020}
    write_exr(tmp_path / "a.exr", rgb_channels(rgb), **attributes)
    with pytest.raises(HdrReadError, match=match):
        read_hdr_image(tmp_path / "a.exr")


def test_exr_read_in_the_display_colour_space(tmp_path):
    """turboiqa score --display: a Rec. 2020 file on a BT.2020-linear display comes back untouched (also its
    out-of-Rec. 709-gamut green), a Rec. 709 file on that display is converted by the inverse BT.2087 matrix."""
    from turboiqa.display import resolve_display
    from turboiqa.hdr_images import read_hdr_pair

    wide = resolve_display("standard_hdr_linear", colorspace="BT.2020-linear")
    green = np.zeros((3, 4, 3), np.float32)
    green[..., 1] = 80.0
    write_exr(tmp_path / "2020.exr", rgb_channels(green), chromaticities=REC2020)
    dist, ref = read_hdr_pair(tmp_path / "2020.exr", tmp_path / "2020.exr", wide)
    assert torch.equal(dist.pixels[0].permute(1, 2, 0), torch.from_numpy(green)) and dist.primaries is not None
    rgb = (1 + np.random.default_rng(3).random((2, 3, 3)) * 10).astype(np.float32)
    write_exr(tmp_path / "709.exr", rgb_channels(rgb), chromaticities=REC709)
    got = read_hdr_pair(tmp_path / "709.exr", tmp_path / "709.exr", wide)[0].pixels[0].permute(1, 2, 0).numpy()
    want = np.linalg.solve(BT2020_TO_BT709, rgb.reshape(-1, 3).T.astype(np.float64)).T.reshape(rgb.shape)
    np.testing.assert_allclose(got, want, rtol=2e-3)
    assert torch.equal(read_hdr_pair(tmp_path / "709.exr", tmp_path / "709.exr")[0].pixels[0].permute(1, 2, 0),
                       torch.from_numpy(rgb))


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
