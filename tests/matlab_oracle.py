"""MATLAB's ``rgb2gray``, Wang's ``ssim_index.m`` and PSNR written again in NumPy/SciPy, sharing no code with turboiqa:
the expected values of tests that must not check the library against itself."""
import numpy as np
from scipy.signal import correlate2d

# rgb2gray.m: the first row of the inverse of the NTSC (YIQ → RGB) matrix, as MATLAB computes it.
RGB2GRAY = np.linalg.inv(np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]]))[0]


def rgb2gray(rgb: np.ndarray, round_to_uint8: bool) -> np.ndarray:
    """H×W×3 (values 0..255) → H×W float64. MATLAB rounds (half away from zero) for uint8 images; float images
    keep the unrounded luma."""
    gray = rgb.astype(np.float64) @ RGB2GRAY
    return np.floor(gray + 0.5).clip(0, 255) if round_to_uint8 else gray


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """``fspecial('gaussian', size, sigma)``."""
    r = np.arange(size) - (size - 1) / 2
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return w / w.sum()


def ssim_index(img1: np.ndarray, img2: np.ndarray, peak: float = 255.0, k1: float = 0.01, k2: float = 0.03) -> float:
    """``ssim_index.m`` (Wang, 2003): ``filter2(window, ·, 'valid')`` moments and the mean of the SSIM map."""
    w = gaussian_window()
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2

    def filt(a):
        return correlate2d(a, w, mode="valid")

    mu1, mu2 = filt(img1), filt(img2)
    s11 = filt(img1 * img1) - mu1 * mu1
    s22 = filt(img2 * img2) - mu2 * mu2
    s12 = filt(img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return float(ssim_map.mean())


def psnr_rgb(dist: np.ndarray, ref: np.ndarray, peak: float = 255.0) -> float:
    """PSNR over every channel: 10·log10(peak² / MSE)."""
    mse = np.mean((dist.astype(np.float64) - ref.astype(np.float64)) ** 2)
    return float(10 * np.log10(peak**2 / mse))


def hwc(t) -> np.ndarray:
    """A 1×3×H×W uint8 tensor (as the tests load images) → H×W×3 numpy array."""
    return t[0].permute(1, 2, 0).numpy()
