"""Pure-PyTorch twin of the native ``turboiqa::cvvdp_band_pool`` operator (one Laplacian band of ColorVideoVDP:
castleCSF look-up, contrast, cvvdp 0.5.7's 'mult-mutual' masking and the band's pooling; schema in csrc/ops.cpp).

Also the twin of ``turboiqa::cvvdp_pyramid_step`` (one level of cvvdp's decimated Laplacian pyramid:
:func:`pyramid_step`). Same signatures and numbers as the C++ kernels; autograd provides the backward. It materialises a dozen band-sized
maps per band (sensitivities, scaled contrasts, the masker and its blur, the difference), which the fused kernel
avoids. It is also the code path of the per-pixel heat map (:func:`band_difference`) and of non-CPU devices.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

EPS = 1e-5
KERNEL_A = 0.4
K = (0.25 - KERNEL_A / 2, 0.25, KERNEL_A, 0.25, 0.25 - KERNEL_A / 2)  # cvvdp's 5-tap pyramid kernel


@functools.lru_cache(maxsize=None)
def gauss13_weights() -> tuple:
    """The masker blur's 13 taps (Gaussian, σ = 3, normalised), float64."""
    t = torch.linspace(-6.0, 6.0, 13, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / 3.0) ** 2)
    return tuple((g / g.sum()).tolist())


def blur13(m: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """13-tap Gaussian (σ = 3) with reflect borders, separable, times ``scale`` (folded into the vertical taps);
    B×C×h×w. Accumulated in place over shifted views (3-5× faster on CPU than a 1-channel conv2d of the taps)."""
    b, c, h, w = m.shape
    g = [v * scale for v in gauss13_weights()]
    p = F.pad(m.reshape(b * c, 1, h, w), (0, 0, 6, 6), mode="reflect")[:, 0]
    acc = p[:, 0:h] * g[0]
    for k in range(1, 13):
        acc.add_(p[:, k:k + h], alpha=g[k])
    p = F.pad(acc[:, None], (6, 6, 0, 0), mode="reflect")[:, 0]
    g = gauss13_weights()
    acc = p[..., 0:w] * g[0]
    for k in range(1, 13):
        acc.add_(p[..., k:k + w], alpha=g[k])
    return acc.view(b, c, h, w)


def spow(x: torch.Tensor, p) -> torch.Tensor:
    """cvvdp's differentiable power: (x + 1e-5)^p − 1e-5^p."""
    return (x + EPS) ** p - EPS ** p


def band_sensitivity(log_bkg, csf, log_l_lo, log_l_hi, gain):
    """castleCSF sensitivity × gain, N×C×h×w, from the C×L log10 table ``csf`` (a flat sequence), linear over the
    uniform grid [log_l_lo, log_l_hi] of log10 luminance (clamped to it)."""
    dtype, device = log_bkg.dtype, log_bkg.device
    c = len(gain)
    table = torch.tensor(csf, dtype=dtype, device=device).view(c, -1)
    n = table.shape[1]
    pos = ((log_bkg - log_l_lo) * ((n - 1) / (log_l_hi - log_l_lo))).clamp(0, n - 1)
    i0 = pos.detach().floor().long()
    frac = pos - i0
    i1 = (i0 + 1).clamp(max=n - 1)
    v0 = table[:, i0[:, 0]].movedim(0, 1)  # N×C×h×w
    v1 = table[:, i1[:, 0]].movedim(0, 1)
    return 10 ** (v0 + (v1 - v0) * frac) * torch.tensor(gain, dtype=dtype, device=device).view(1, c, 1, 1)


def band_difference(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max):
    """The per-pixel visible difference D of the band (N×C×h×w, soft-clamped at d_max)."""
    dtype, device = test.dtype, test.device
    c = test.shape[1]
    sg = band_sensitivity(log_bkg, csf, log_l_lo, log_l_hi, gain)
    tp = test * sg
    rp = ref * sg
    mm = torch.minimum(tp.abs(), rp.abs())  # >= 0, and so is its blur
    if mm.shape[-2] > 6 and mm.shape[-1] > 6:
        mm = blur13(mm, mask_c)
    else:
        mm = mm * mask_c
    mq = spow(mm, torch.tensor(mask_q, dtype=dtype, device=device).view(1, c, 1, 1))
    m = torch.tensor(xcm, dtype=dtype, device=device).view(c, c)  # [to, from]
    n, _, h, w = mq.shape
    masker = torch.matmul(m, mq.reshape(n, c, h * w)).view(n, c, h, w)  # one batched GEMM
    du = spow((tp - rp).abs(), mask_p) / (1 + masker)
    return d_max * du / (d_max + du)


def cvvdp_band_pool(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max):
    """N×C float64: Σ over pixels of (D + 1e-5)^2 (see the schema in csrc/ops.cpp)."""
    d = band_difference(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max)
    return ((d + EPS) ** 2).sum((-2, -1), dtype=torch.float64)


# --------------------------------------------------------------------------------------------------- pyramid
def reduce(x: torch.Tensor) -> torch.Tensor:
    """Blur with the 5-tap kernel and keep every second row and column (B×H×W → B×ceil(H/2)×ceil(W/2)), symmetric
    (edge-repeating) borders. The right-edge term of the horizontal pass follows the parity of H, as in cvvdp."""
    k0, k1, k2, k3, k4 = K
    h, w = x.shape[-2:]
    # vertical: rows −2, −1 ← 1, 0; below the last row ← last, last−1
    top = x[:, 1:2] if h > 1 else x[:, 0:1]
    xp = torch.cat([top, x[:, 0:1], x, x[:, -1:], x[:, -2:-1] if h > 1 else x[:, -1:]], 1)
    ho = (h + 1) // 2
    ya = xp[:, 2:2 * ho + 2:2] * k2
    ya.add_(xp[:, 0:2 * ho:2] + xp[:, 4:2 * ho + 4:2], alpha=k0)  # k0 == k4
    ya.add_(xp[:, 1:2 * ho + 1:2] + xp[:, 3:2 * ho + 3:2], alpha=k1)  # k1 == k3
    # horizontal: left border symmetric; right border: zero pad, then cvvdp's correction
    wo = (w + 1) // 2
    left = ya[:, :, 1:2] if w > 1 else ya[:, :, 0:1]
    yp = torch.cat([left, ya[:, :, 0:1], ya, torch.zeros_like(ya[:, :, :2])], 2)
    y = yp[:, :, 2:2 * wo + 2:2] * k2
    y.add_(yp[:, :, 0:2 * wo:2] + yp[:, :, 4:2 * wo + 4:2], alpha=k0)
    y.add_(yp[:, :, 1:2 * wo + 1:2] + yp[:, :, 3:2 * wo + 3:2], alpha=k1)
    if h % 2 == 1:
        fix = ya[:, :, -1] * k3 + ya[:, :, -2] * k4
    else:
        fix = ya[:, :, -1] * k4
    return torch.cat([y[:, :, :-1], (y[:, :, -1] + fix).unsqueeze(2)], 2)


def expand_dim(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Upsample ×2 along ``dim`` (zero insertion, 2×5-tap kernel, edge-replicated ends), cropped to ``size``."""
    n = x.shape[dim]
    first = x.narrow(dim, 0, 1)
    last = x.narrow(dim, n - 1, 1)
    xp = torch.cat([first, x, last], dim)
    a, b, c = xp.narrow(dim, 0, n), xp.narrow(dim, 1, n), xp.narrow(dim, 2, n)
    even = b * (2 * K[2])  # 2·(K0·a + K2·b + K4·c), K0 == K4
    even.add_(a + c, alpha=2 * K[0])
    odd = b + c  # 2·(K1·b + K3·c), K1 == K3
    odd.mul_(2 * K[1])
    out = torch.stack([even, odd], dim + 1 if dim >= 0 else dim)
    shape = list(x.shape)
    shape[dim] = 2 * n
    return out.reshape(shape).narrow(dim, 0, size)


def expand(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return expand_dim(expand_dim(x, h, -2), w, -1)


def pyramid_step(planes: torch.Tensor):
    """One pyramid level of N×C×H×W planes: (reduced N×C×ceil(H/2)×ceil(W/2), reduced expanded back to H×W)."""
    n, c, h, w = planes.shape
    nxt = reduce(planes.reshape(n * c, h, w))
    return nxt.view(n, c, *nxt.shape[-2:]), expand(nxt, h, w).view(n, c, h, w)


# --------------------------------------------------------------------------------------------------- colour
def srgb_to_dkl(x: torch.Tensor, matrix, bias, data_range: float) -> torch.Tensor:
    """Twin of ``turboiqa::cvvdp_srgb_to_dkl``: N×3×H×W display-encoded sRGB → Σ_k matrix[c, k] eotf(v_k) + bias[c],
    v = clamp(x / data_range, 0, 1), eotf the sRGB curve; one batched GEMM with bias."""
    dtype, device = x.dtype, x.device
    v = (x / data_range).clamp(0.0, 1.0)
    rel = torch.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
    m = torch.tensor(matrix, dtype=dtype, device=device).view(3, 3)
    b = torch.tensor(bias, dtype=dtype, device=device).view(1, 3, 1)
    n, _, h, w = rel.shape
    return torch.baddbmm(b.expand(n, -1, 1), m.expand(n, -1, -1), rel.reshape(n, 3, h * w)).view(n, 3, h, w)


# --------------------------------------------------------------------------------------------------- Weber contrast
def weber_contrast(planes: torch.Tensor, expanded: torch.Tensor):
    """Twin of ``turboiqa::cvvdp_weber_contrast``: 2N×C×H×W planes (test images, then references) and their expanded
    coarser level → (test contrast N×C×H×W, reference contrast, the references' log10 background N×1×H×W);
    contrast = min((planes − expanded) / max(expanded[:, 0], 0.01), 1000) (cvvdp's 'weber_g1')."""
    n = planes.shape[0] // 2
    bkg = expanded[:, 0:1].clamp(min=0.01)
    band = ((planes - expanded) / bkg).clamp(max=1000.0)
    t, r = band.chunk(2)
    return t, r, torch.log10(bkg[n:])
