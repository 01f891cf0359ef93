"""Window builders shared by every metric (separable 1-D windows; the 2-D window is their outer product)."""
from __future__ import annotations

import math

_CACHE: dict[tuple, tuple[float, ...]] = {}  # windows are rebuilt per call otherwise (tens of µs each)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> tuple[float, ...]:
    """1-D Gaussian on x = -(size-1)/2 … (size-1)/2, normalised to sum 1.

    Its outer product equals MATLAB ``fspecial('gaussian', size, sigma)`` (whose eps·max cut-off never triggers for
    SSIM's sizes) and the windows of piq, pytorch-msssim, torchmetrics and scikit-image (gaussian_weights=True).
    """
    key = ("gaussian", size, sigma)
    if key in _CACHE:
        return _CACHE[key]
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {size}")
    if not (sigma > 0 and math.isfinite(sigma)):  # NaN passed `sigma <= 0` and made every tap NaN
        raise ValueError(f"kernel_sigma must be a positive finite number, got {sigma}")
    half = (size - 1) / 2
    taps = [math.exp(-((i - half) ** 2) / (2 * sigma * sigma)) for i in range(size)]
    total = sum(taps)
    _CACHE[key] = tuple(t / total for t in taps)
    return _CACHE[key]


def uniform_window(size: int = 7) -> tuple[float, ...]:
    """Box window (scikit-image's default ``win_size=7`` without gaussian weights)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {size}")
    return (1.0 / size,) * size
