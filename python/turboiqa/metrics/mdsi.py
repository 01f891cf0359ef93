"""MDSI — mean deviation similarity index. Lower = better (0 for identical images).

H. Ziaei Nafchi, A. Shahkolaei, R. Hedjam, M. Cheriet, "Mean deviation similarity index: efficient and reliable
full-reference image quality evaluator", IEEE Access 4, 2016. Reference code: the authors' MATLAB ``MDSI.m``.

On 0–255 RGB: a box mean of F = max(1, round(min(H, W)/256)) sampled every F pixels (``conv2(·, 'same')``, zero
padding), L = 0.2989R + 0.587G + 0.114B, H = 0.30R + 0.04G − 0.35B, M = 0.34R − 0.60G + 0.17B; Prewitt/3 gradient
magnitudes of the reference, the distorted image and their fusion (L1 + L2)/2 (computed here from the first two:
the gradient is linear); GS = GS(dist, ref; C1) + GS(dist, fused; C2) − GS(ref, fused; C2), C1 = 140, C2 = 55;
CS = (2(H1H2 + M1M2) + C3) / (H1² + H2² + M1² + M2² + C3), C3 = 550; GCS = αGS + (1 − α)CS ('sum', α = 0.6) or
GS^γ·CS^β ('mult', γ = 0.2, β = 0.1) with complex powers of negative values (principal branch, as MATLAB); the
score is (mean |GCS^q − mean GCS^q|^ρ)^(o/ρ) with q = o = 0.25, ρ = 1. ``convention=``:

=================  ================================================================================================
'matlab'           MDSI.m: MATLAB round (half away from zero) for F; true complex product in 'mult' [default]
'piq'              piq.mdsi: Python round (half to even: F = 2 for min side 640) and piq's 'mult', which multiplies
                   the real parts and adds the imaginary parts of GS^γ and CS^β (equal to MATLAB where both are ≥ 0)
'frame_analytics'  frame_analytics.mdsi: MATLAB's formula with Python round for F
=================  ================================================================================================

Grayscale input is scored as R = G = B (piq, frame_analytics); MDSI.m itself needs colour. MDSI's value depends on
the argument order (the fused-image terms are not symmetric): MATLAB ``MDSI(Ref, Dist)`` is ``mdsi(dist, ref)``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from .. import _ops
from ..dtypes import compute_dtype
from ..resample import auto_downsample_factor
from ..validate import check_pair, check_reduction, reduce
from .gmsd import PREWITT, _safe_sqrt
from ._grey import grey_pair, pool_geometry
from .module import MetricModule

LHM = ((0.2989, 0.587, 0.114), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))  # MDSI.m
MDSI_COMBINATIONS = ("sum", "mult")


@dataclass(frozen=True)
class MdsiConvention:
    rounding: str  # F = round(min(H, W)/256): 'matlab' | 'python'
    mult: str  # 'complex' (MATLAB) | 'piq'


MDSI_CONVENTIONS = {
    "matlab": MdsiConvention(rounding="matlab", mult="complex"),
    "piq": MdsiConvention(rounding="python", mult="piq"),
    "frame_analytics": MdsiConvention(rounding="python", mult="complex"),
}


def _polar_power(v: torch.Tensor, p: float):
    """v^p of a real map on the principal branch as (modulus, argument): argument πp where v < 0."""
    return v.abs().pow(p), (v < 0).to(v.dtype) * (math.pi * p)


def _abs_power(v: torch.Tensor, p: float, differentiable: bool) -> torch.Tensor:
    """|v|^p; p = 1/4 (MDSI's q) as two square roots: torch's generic scalar pow is ~10× slower than sqrt."""
    a = v.abs() if differentiable else v.abs_()
    if p == 0.25:
        return a.sqrt().sqrt() if differentiable else a.sqrt_().sqrt_()
    return a.pow(p) if differentiable else a.pow_(p)


def mdsi(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    convention: str = "matlab",
    combination: str = "sum",
    c1: float = 140.0,
    c2: float = 55.0,
    c3: float = 550.0,
    alpha: float = 0.6,
    beta: float = 0.1,
    gamma: float = 0.2,
    rho: float = 1.0,
    q: float = 0.25,
    o: float = 0.25,
    backend: str = "auto",
) -> torch.Tensor:
    """MDSI of each image pair (lower = better): (N,) for reduction='none', else a scalar.

    ``x`` distorted, ``y`` reference (MATLAB ``MDSI(y, x)``): N×C×H×W (or C×H×W / H×W) with C = 3 (RGB) or
    1 (gray, scored as R = G = B), uint8 (data_range=255) or float in [0, data_range]. ``combination``: 'sum' or
    'mult'. ``c1``, ``c2``, ``c3`` are in 0–255 units. The image must be at least 2×2 after the F×F averaging.
    """
    check_reduction(reduction)
    x, y = check_pair(x, y, data_range, check_values=False)  # range/NaN/Inf: from the front end's extrema
    if convention not in MDSI_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(MDSI_CONVENTIONS)}, got {convention!r}")
    if combination not in MDSI_COMBINATIONS:
        raise ValueError(f"combination must be one of {MDSI_COMBINATIONS}, got {combination!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"MDSI needs 3 (RGB) or 1 (gray) channels, got {x.shape[1]}")
    if rho <= 0:
        raise ValueError(f"rho must be > 0, got {rho}")
    conv = MDSI_CONVENTIONS[convention]
    n = x.shape[0]
    h, w = x.shape[-2:]
    f = auto_downsample_factor(h, w, rounding=conv.rounding)
    if min(math.ceil(h / f), math.ceil(w / f)) < 2:
        raise ValueError(f"x is {h}×{w}; MDSI needs H and W of at least 2 (after the {f}×{f} averaging)")
    dtype = compute_dtype(x.dtype)
    scale = 255.0 / float(data_range)
    differentiable = _ops.needs_grad(x, y)

    # One read of each image: the L, H, M planes (0–255 rows) of the F×F box mean (conv2(·, ones(F)/F², 'same')
    # sampled at (1:F:end): zero padding, ⌈F/2⌉−1 samples before; the planes are linear, so they commute with it)
    # and the input checks. Gray input is R = G = B: each row's coefficients summed.
    rows = LHM if x.shape[1] == 3 else tuple((sum(row),) for row in LHM)
    coeffs = [c * scale for row in rows for c in row]
    px, py = grey_pair(x, y, data_range, coeffs, 1.0, "none", pool_geometry(h, w, "zeros", f), backend)
    px, py = px.to(dtype), py.to(dtype)
    # (the planes stay in the front end's N×3×h×w buffers as channel views: no copies for N = 1, the operator
    # makes the strided views contiguous for N > 1)
    ld, lr = px[:, :1], py[:, :1]

    # The three gradient similarities by the fused operator: the fused image's gradient is the gradient of the mean
    # luma (Prewitt is linear), and (2·m1·m2 + c) / (m1² + m2² + c) of magnitudes is the operator's α = 0 form.
    lf = (ld + lr) * 0.5 if differentiable else torch.add(ld, lr).mul_(0.5)
    sim = functools.partial(_ops.gradient_similarity, smooth=PREWITT[0], scale=PREWITT[1], alpha=0.0, eps=0.0,
                            padding="zeros", output="map", backend=backend)
    # (three calls on the planes as they are rather than two on concatenated copies)
    gs, to_dist, to_ref = sim(ld, lr, c=c1), sim(ld, lf, c=c2), sim(lr, lf, c=c2)
    gs = gs + to_dist - to_ref if differentiable else gs.add_(to_dist).sub_(to_ref)
    # CS = (2(H1H2 + M1M2) + C3) / (H1² + H2² + M1² + M2² + C3), accumulated plane by plane in place
    hd, sd, hr, sr = px[:, 1:2], px[:, 2:3], py[:, 1:2], py[:, 2:3]
    if differentiable:
        cs = (2 * (hd * hr + sd * sr) + c3) / (hd * hd + hr * hr + sd * sd + sr * sr + c3)
    else:  # half of CS (numerator and denominator halved: exact), doubled where it is used
        num = torch.mul(hd, hr).addcmul_(sd, sr).add_(c3 / 2)
        cs = num.div_(torch.mul(hd, hd).addcmul_(hr, hr).addcmul_(sd, sd).addcmul_(sr, sr).add_(c3))
        if combination == "mult":
            cs = cs.mul_(2)

    im = None
    if combination == "sum":
        # (1 − α)·CS as 2(1 − α)·(CS/2): scaling by 2 is exact
        gcs = alpha * gs + (1 - alpha) * cs if differentiable else gs.mul_(alpha).add_(cs, alpha=2 * (1 - alpha))
        # on the CPU the complex part only when some value is negative (a host test); elsewhere always, no sync
        neg = gcs < 0 if gcs.device.type != "cpu" or bool(gcs.amin() < 0) else None
        if neg is None and not differentiable and q == 0.25:  # all ≥ 0: no absolute value to take
            re = gcs.sqrt_().sqrt_()
        else:
            re = _abs_power(gcs, q, differentiable)
        if neg is not None:  # complex powers of the negative values (principal branch: argument πq)
            im = torch.where(neg, re * math.sin(math.pi * q), 0.0)
            re = torch.where(neg, re * math.cos(math.pi * q), re)
    elif not differentiable and gs.device.type == "cpu" and bool(gs.amin() >= 0) and bool(cs.amin() >= 0):
        # no negative GS or CS (a host test, CPU only): every argument is 0, both conventions' products are the real
        # GS^γ·CS^β, and its q-th power has no imaginary part
        re = _abs_power(gs.pow_(gamma).mul_(cs.pow_(beta)), q, False)  # (|·| of a non-negative map: exact)
    else:
        ra, pa = _polar_power(gs, gamma)
        rb, pb = _polar_power(cs, beta)
        if conv.mult == "piq":  # (Re a·Re b) + i(Im a + Im b)
            re = ra * torch.cos(pa) * rb * torch.cos(pb)
            im = ra * torch.sin(pa) + rb * torch.sin(pb)
            modulus, argument = torch.sqrt(re * re + im * im), torch.atan2(im, re)
        else:
            modulus, argument = ra * rb, pa + pb
            if abs(gamma) + abs(beta) > 1:  # back to the principal branch (−π, π]
                argument = torch.atan2(torch.sin(argument), torch.cos(argument))
        modulus, argument = modulus.pow(q), argument * q
        re = modulus * torch.cos(argument)
        im = modulus * torch.sin(argument)
    # deviation from the mean, in float64 per image (the mean of a 10⁵-pixel map); a real map (no negative GCS in
    # 'sum') has no imaginary part to carry
    if im is None and not differentiable:
        # the mean from row sums (compute dtype) totalled in float64, the deviations written straight in float64
        # (no float64 copy of the map)
        flat = re.flatten(1)
        mean = re.sum(-1).flatten(1).double().sum(1, keepdim=True) / flat.shape[1]
        dev = torch.sub(flat, mean).abs_()
        score = (dev if rho == 1 else dev.pow_(rho)).mean(1).pow(o / rho)
        return reduce(score.to(dtype), reduction)
    re64 = re.flatten(1).double()
    dr = re64 - re64.mean(1, keepdim=True)
    if im is None:
        dev = dr.abs()
    else:
        im64 = im.flatten(1).double()
        di = im64 - im64.mean(1, keepdim=True)
        dev = _safe_sqrt(dr * dr + di * di) if differentiable else torch.hypot(dr, di)
    score = (dev if rho == 1 else dev.pow(rho)).mean(1).pow(o / rho)
    return reduce(score.to(dtype), reduction)


mdsi.lower_is_better = True


class MDSI(MetricModule):
    """Module form of :func:`mdsi` (lower = better)."""

    metric = staticmethod(mdsi)
    bounded_similarity = False
