"""Phase congruency as computed by ``phasecong2`` inside ``FeatureSIM.m`` (P. Kovesi's code, fixed to PC_2 with a
per-orientation noise threshold), in pure PyTorch: a log-Gabor filter bank applied with ``torch.fft`` (SPECS §5).

The filter bank, its mean squared value at the finest scale and the noise-energy sums of its spatial responses only
depend on the image size and the parameters, so they are built once per (H, W, parameters, device, dtype).
"""
from __future__ import annotations

import functools
import math

import torch

NOISE_MEDIANS = ("matlab", "lower")
THETA_AXES = ("matlab", "transposed")


def frequency_range(n: int) -> torch.Tensor:
    """phasecong2's normalised frequencies along one axis: [-(n-1)/2 … (n-1)/2]/(n-1) for odd n (so the extremes
    are ±0.5, not ±(n-1)/(2n) as an FFT would have them), [-n/2 … n/2-1]/n for even n."""
    if n % 2:
        return torch.arange(-(n - 1) // 2, (n - 1) // 2 + 1, dtype=torch.float64) / (n - 1)
    return torch.arange(-n // 2, n // 2, dtype=torch.float64) / n


@functools.lru_cache(maxsize=8)
def filter_bank(height: int, width: int, nscale: int, norient: int, min_wavelength: float, mult: float,
                sigma_onf: float, d_theta_on_sigma: float, theta_axes: str, device: torch.device,
                dtype: torch.dtype):
    """Filters (norient, nscale, H, W) with zero frequency at [0, 0], and per orientation the factor
    (2·ΣAn² + 4·ΣAiAj) / EM_n that turns the median noise response into the squared noise energy.

    Built in float64 (as MATLAB does) and cast once, so float32 runs share the float64 filter values. Built outside
    inference mode: a bank first made under ``torch.inference_mode()`` could not be saved for a later backward.
    """
    with torch.inference_mode(False):
        return _filter_bank(height, width, nscale, norient, min_wavelength, mult, sigma_onf, d_theta_on_sigma,
                            theta_axes, device, dtype)


def _filter_bank(height, width, nscale, norient, min_wavelength, mult, sigma_onf, d_theta_on_sigma, theta_axes,
                 device, dtype):
    x = frequency_range(width)[None, :]  # MATLAB meshgrid(xrange, yrange): x runs along columns
    y = frequency_range(height)[:, None]
    radius = torch.sqrt(x**2 + y**2)
    if theta_axes == "matlab":
        theta = torch.atan2(-y, x)  # -y: angles grow anticlockwise on screen
    else:  # piq builds its meshgrid with 'ij' indexing, which swaps the roles of rows and columns
        theta = torch.atan2(-x, y)
    # lowpassfilter([rows, cols], .45, 15) evaluates the same grid before radius(1,1) is set to 1.
    lowpass = torch.fft.ifftshift(1.0 / (1.0 + (radius / 0.45) ** (2 * 15)))
    radius = torch.fft.ifftshift(radius)
    theta = torch.fft.ifftshift(theta)
    radius[0, 0] = 1.0  # log(0) guard at the DC sample; the filters are zeroed there below

    log_gabor = []
    for s in range(nscale):
        f0 = 1.0 / (min_wavelength * mult**s)
        g = torch.exp(-torch.log(radius / f0) ** 2 / (2 * math.log(sigma_onf) ** 2)) * lowpass
        g[0, 0] = 0.0
        log_gabor.append(g)

    theta_sigma = math.pi / norient / d_theta_on_sigma
    sin_theta, cos_theta = torch.sin(theta), torch.cos(theta)
    spread = []
    for o in range(norient):
        angle = o * math.pi / norient
        # Angular distance through atan2 of the sine/cosine differences: no wrap-around at ±π.
        ds = sin_theta * math.cos(angle) - cos_theta * math.sin(angle)
        dc = cos_theta * math.cos(angle) + sin_theta * math.sin(angle)
        spread.append(torch.exp(-torch.atan2(ds, dc).abs() ** 2 / (2 * theta_sigma**2)))

    filters = torch.stack(spread)[:, None] * torch.stack(log_gabor)[None]  # (O, S, H, W)

    # Spatial filter responses, rescaled "to match power" as phasecong2 does.
    spatial = torch.fft.ifft2(filters).real * math.sqrt(height * width)
    sum_an2 = spatial.square().sum(dim=(1, 2, 3))
    sum_ai_aj = sum((spatial[:, i] * spatial[:, j]).sum(dim=(1, 2))
                    for i in range(nscale) for j in range(i + 1, nscale))
    em_n = filters[:, 0].square().sum(dim=(1, 2))  # mean squared filter value at the smallest scale
    noise_gain = (2 * sum_an2 + 4 * sum_ai_aj) / em_n
    return filters.to(device, dtype), noise_gain.to(device, dtype)


def median_last(v: torch.Tensor, mode: str) -> torch.Tensor:
    """Median over the last dim: MATLAB averages the two middle values of an even count, torch.median (piq)
    returns the lower one."""
    if mode not in NOISE_MEDIANS:
        raise ValueError(f"noise_median must be one of {NOISE_MEDIANS}, got {mode!r}")
    n = v.shape[-1]
    # The n//2 + 1 smallest values (a partial selection, much cheaper than a full sort); their two largest are the
    # (n//2 + 1)-th and (n//2)-th smallest, the two middle values for even n. For odd n the median is the largest.
    smallest = torch.topk(v, n // 2 + 1, dim=-1, largest=False, sorted=False).values
    upper, lower = torch.topk(smallest, 2, dim=-1).values.unbind(-1)
    if n % 2:
        return upper
    return lower if mode == "lower" else (lower + upper) / 2


def phase_congruency(
    y: torch.Tensor,
    nscale: int = 4,
    norient: int = 4,
    min_wavelength: float = 6,
    mult: float = 2.0,
    sigma_onf: float = 0.55,
    d_theta_on_sigma: float = 1.2,
    k: float = 2.0,
    epsilon: float = 1e-4,
    noise_median: str = "matlab",
    pc_eps: float = 0.0,
    theta_axes: str = "matlab",
    backend: str = "auto",
) -> torch.Tensor:
    """Phase congruency map of each plane of ``y`` (N×C×H×W float; FeatureSIM passes N×1×H×W luma in 0–255).

    Defaults reproduce ``phasecong2``. piq's variant: ``epsilon=torch.finfo(dtype).eps``, ``noise_median='lower'``,
    ``pc_eps=torch.finfo(dtype).eps`` (added to both sums of the final ratio) and ``theta_axes='transposed'`` (its
    grid mirrors three of the four orientations, which only matters at the Nyquist row/column of even sizes).
    MATLAB adds nothing to the final ratio, so a plane without any filter response (a constant image) divides 0 by
    0 there; turboiqa returns 0, the limit of Kovesi's EnergyAll / (AnAll + ε) (piq's convention gives 1).
    """
    if not y.dtype.is_floating_point or y.dim() != 4:
        raise ValueError(f"phase_congruency needs an N×C×H×W float tensor, got {tuple(y.shape)} {y.dtype}")
    if theta_axes not in THETA_AXES:
        raise ValueError(f"theta_axes must be one of {THETA_AXES}, got {theta_axes!r}")
    height, width = y.shape[-2:]
    if height < 2 or width < 2:
        raise ValueError(f"phase congruency needs at least 2×2 pixels, got {height}×{width}")
    filters, noise_gain = filter_bank(height, width, nscale, norient, float(min_wavelength), float(mult),
                                      float(sigma_onf), float(d_theta_on_sigma), theta_axes, y.device, y.dtype)

    # EO{s,o} = ifft2(fft2(im) .* filter): even response = real part, odd response = imaginary part.
    eo = torch.fft.ifft2(torch.fft.fft2(y)[:, :, None, None] * filters)  # (N, C, O, S, H, W)

    # Noise: median of |EO|² at the smallest scale → Rayleigh mean → threshold, per orientation and plane.
    smallest = eo[:, :, :, 0]
    median_e2n = median_last((smallest.real.square() + smallest.imag.square()).flatten(-2), noise_median)  # (N,C,O)
    mean_e2n = -median_e2n / math.log(0.5)
    tau_sq = mean_e2n * noise_gain / 2
    # τ = √(τ²), Rayleigh parameter of the noise energy; τ² is 0 on a flat plane, where √'s gradient is infinite:
    # a safe argument keeps the gradient finite (the value is the same).
    noisy = tau_sq > 0
    tau = torch.where(noisy, torch.where(noisy, tau_sq, torch.ones_like(tau_sq)).sqrt(), torch.zeros_like(tau_sq))
    # sqrt((2 - π/2)·τ²) written as τ·sqrt(2 - π/2) (τ ≥ 0) so the gradient stays finite at τ = 0;
    # /1.7 is phasecong2's empirical rescaling of the PC_1 noise estimate to PC_2.
    threshold = (tau * math.sqrt(math.pi / 2) + k * math.sqrt(2 - math.pi / 2) * tau) / 1.7
    # The energy step reads the 16 complex response planes once in the native kernel (pc_energy).
    from .. import _ops  # late import: turboiqa._ops imports this package

    pc = _ops.pc_energy(torch.view_as_real(eo), threshold, float(epsilon), float(pc_eps), backend)
    # A constant plane: the filters have no DC term, so every response is 0 and PC is (0 + pc_eps) / (0 + pc_eps),
    # 1 with piq's pc_eps and 0/0 → 0 without (pc_energy). FFT round-off leaves tiny responses whose ratio is noise
    # (up to 0.1 in float32, and device-dependent), so the exact value is written instead.
    lo, hi = torch.aminmax(y.flatten(-2), dim=-1)
    return pc.masked_fill((lo == hi)[..., None, None], 1.0 if pc_eps > 0 else 0.0)


def pc_energy(eo: torch.Tensor, threshold: torch.Tensor, epsilon: float, pc_eps: float) -> torch.Tensor:
    """Twin of the native ``pc_energy`` op: ``eo`` is N×C×O×S×H×W×2 (view_as_real), ``threshold`` N×C×O."""
    eo = torch.view_as_complex(eo.contiguous())
    amplitude = eo.abs()  # An per orientation and scale
    sum_eo = eo.sum(dim=3, keepdim=True)  # sumE + i·sumO per orientation
    mean_eo = sum_eo / (sum_eo.abs() + epsilon)  # MeanE + i·MeanO
    # With z = EO·conj(Mean): Re z = E·MeanE + O·MeanO and |Im z| = |E·MeanO − O·MeanE|.
    z = eo * mean_eo.conj()
    energy = (z.real - z.imag.abs()).sum(dim=3)  # (N, C, O, H, W)

    energy = torch.clamp(energy - threshold[..., None, None], min=0)
    num, den = energy.sum(dim=2) + pc_eps, amplitude.sum(dim=(2, 3)) + pc_eps  # EnergyAll, AnAll
    # Where no filter responds at all (AnAll = 0: a flat image with pc_eps = 0) phasecong2 divides 0 by 0; the value
    # there is 0 (EnergyAll is 0 too; the limit of Kovesi's EnergyAll / (AnAll + ε)). The safe denominator keeps the
    # gradient finite.
    has_response = den > 0
    return torch.where(has_response, num / torch.where(has_response, den, torch.ones_like(den)),
                       torch.zeros_like(num))
