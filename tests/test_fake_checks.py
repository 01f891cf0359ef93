"""Issue 11 #5: the Meta (fake) kernels run the CPU kernels' own argument checks, and the metrics accept meta
tensors (shapes only). Every bad-argument case is raised on the CPU first, so none can pass by raising nowhere."""
import math
import re

import pytest
import torch
from torch._subclasses import FakeTensorMode

import turboiqa
from turboiqa import _ops

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="compiled extension not available")

ops = torch.ops.turboiqa
W3 = [0.25, 0.5, 0.25]
W7 = [1 / 7] * 7


def t(*shape, dtype=torch.float32):
    return torch.rand(shape).to(dtype)


def features(n=2, c=4, h=5, w=6):
    return t(n, c, h, w), t(n, c, h, w), t(c)


def iw_args(k=9, window=W7, blk=3, sigma_nsq=0.4, ref_shape=(1, 2, 16, 16), inverse_k=None, eig_shape=None):
    ref = t(*ref_shape, dtype=torch.float64)
    inverse = t(1, 2, inverse_k or k, inverse_k or k, dtype=torch.float64)
    eigenvalues = t(*(eig_shape or (1, 2, k)), dtype=torch.float64)
    return (ref, ref.clone(), None, inverse, eigenvalues, blk, window, 58.5, sigma_nsq, 1e-15)


def ssim_grads(x, planes=None):
    planes = x.shape[0] * x.shape[1] if planes is None else planes
    return t(planes, dtype=x.dtype), t(planes, dtype=x.dtype)


def cvvdp_band(c=3, h=9, w=10, csf_len=4):
    """(test, ref, log_bkg, csf, lo, hi, gain, mask_q, xcm, mask_c, mask_p, d_max) of a cvvdp_band_pool call."""
    return (t(2, c, h, w), t(2, c, h, w), t(2, 1, h, w), [0.5] * (c * csf_len), -2.0, 4.0, [1.0] * c, [1.5] * c,
            [1.0] * (c * c), 0.1, 2.0, 5.0)


# (op, arguments on the CPU): a valid call of every operator, whose meta outputs must look like the CPU's.
VALID = {
    "ssim_stats": (t(2, 3, 12, 13), t(2, 3, 12, 13), W3, 1e-4, 9e-4, "reflect", 1.0),
    "_ssim_stats_backward": (*ssim_grads(t(2, 3, 12, 13)), t(2, 3, 12, 13), t(2, 3, 12, 13), W3, 1e-4, 9e-4,
                             "valid", 1.0),
    "squared_error_sum": (t(2, 3, 5, 7, dtype=torch.float64), t(2, 3, 5, 7, dtype=torch.float64)),
    "psnr_db": (t(2, 3, 5, 7), t(2, 3, 5, 7), 1.0, 0.0, math.inf, "none"),
    "box_downsample": (t(2, 3, 9, 11, dtype=torch.uint8), 2, 1, 0, 5, 5, "symmetric"),
    "luma": (t(2, 3, 5, 7, dtype=torch.uint8), [0.299, 0.587, 0.114], 0.0, True),
    "pc_energy": (t(2, 1, 4, 3, 8, 9, 2), t(2, 1, 4), 1e-4, 1e-4),
    "lpips_distance": (*features(), 1e-10),
    "_lpips_distance_backward": (t(2), *features(), 1e-10),
    "dists_layer": (*features(), t(4), 1e-6, 1e-6),
    "_dists_layer_backward": (t(2), *features(), t(4), 1e-6, 1e-6),
    "swd_distance": (*features(), 2, 1e-10),
    "_swd_distance_backward": (t(2), *features(), 2, 1e-10),
    "histogram_intersection": (*features()[:2], 3),
    "_histogram_intersection_backward": (t(2, 3), *features()[:2], 3),
    "laplacian_level": (t(2, 1, 9, 12, dtype=torch.float64), "matlab"),
    "iw_neighbour_covariance": (t(1, 2, 8, 9), t(1, 2, 4, 5), 3),
    "iw_pooled_cs": iw_args(),
    "gradient_similarity": (t(2, 3, 9, 11), t(2, 3, 9, 11), [1.0, 1.0, 1.0], 1 / 3, 170.0, 0.0, 0.0, "zeros", "map"),
    "vifp_stats": (t(2, 3, 12, 13), t(2, 3, 12, 13), W3, 2.0, 1e-10, 0.0, "valid"),
    "_vifp_stats_backward": (t(2, 3, dtype=torch.float64), t(2, 3, dtype=torch.float64), t(2, 3, 12, 13),
                             t(2, 3, 12, 13), W3, 2.0, 1e-10, 0.0, "valid"),
    "decimate2": (t(2, 3, 12, 13), W3),
    "_decimate2_backward": (t(2, 3, 5, 6), t(2, 3, 12, 13), W3),
    "cvvdp_band_pool": cvvdp_band(),
    "_cvvdp_band_pool_backward": (t(2, 3, dtype=torch.float64), *cvvdp_band()),
    "cvvdp_pyramid_step": (t(2, 3, 9, 12),),
    "_cvvdp_pyramid_step_backward": (t(2, 3, 5, 6), t(2, 3, 9, 12), t(2, 3, 9, 12)),
    "cvvdp_srgb_to_dkl": (t(2, 3, 5, 7), [0.5] * 9, [0.1] * 3, 1.0),
    "_cvvdp_srgb_to_dkl_backward": (t(2, 3, 5, 7), t(2, 3, 5, 7), [0.5] * 9, [0.1] * 3, 1.0),
    "cvvdp_band_difference": cvvdp_band(),
    "cvvdp_weber_contrast": (t(4, 3, 5, 7), t(4, 3, 5, 7)),
    "_cvvdp_weber_contrast_backward": (t(2, 3, 5, 7), t(2, 3, 5, 7), t(2, 1, 5, 7), t(4, 3, 5, 7), t(4, 3, 5, 7)),
    "_gradient_similarity_backward": (t(2, 3, 2, dtype=torch.float64), t(2, 3, 9, 11, dtype=torch.uint8),
                                      t(2, 3, 9, 11, dtype=torch.uint8), [1.0, 2.0, 1.0], 1 / 4, 170.0, 0.5, 0.0,
                                      "valid", "moments"),
    "grey_planes": (t(2, 3, 9, 11), [0.299, 0.587, 0.114], 255.0, "half_away", 2, 0, 0, 5, 6),
    "grey_gradient_moments": (t(2, 3, 9, 11), t(2, 3, 9, 11), [0.299, 0.587, 0.114], 255.0, "none", 2, 0, 0, 5, 6,
                              [1.0, 1.0, 1.0], 1 / 3, 170.0, 0.0, 0.0, "zeros"),
}

# (op, what is wrong, arguments on the CPU, a piece of the expected message).
BAD = [
    ("ssim_stats", "even window", (t(1, 1, 9, 9), t(1, 1, 9, 9), [0.5, 0.5], 1e-4, 9e-4, "valid", 1.0),
     "window length must be odd"),
    ("ssim_stats", "bogus padding", (t(1, 1, 9, 9), t(1, 1, 9, 9), W3, 1e-4, 9e-4, "bogus", 1.0),
     "padding must be"),
    ("ssim_stats", "rank 3", (t(1, 9, 9), t(1, 9, 9), W3, 1e-4, 9e-4, "valid", 1.0), "N x C x H x W"),
    ("ssim_stats", "shapes differ", (t(1, 1, 9, 9), t(1, 1, 9, 8), W3, 1e-4, 9e-4, "valid", 1.0), "same shape"),
    ("ssim_stats", "dtypes differ", (t(1, 1, 9, 9), t(1, 1, 9, 9, dtype=torch.float64), W3, 1e-4, 9e-4, "valid",
                                     1.0), "same dtype"),
    ("ssim_stats", "int32 input", (t(1, 1, 9, 9, dtype=torch.int32),) * 2 + (W3, 1e-4, 9e-4, "valid", 1.0),
     "uint8 or floating point"),
    ("ssim_stats", "image under the window", (t(1, 1, 9, 2), t(1, 1, 9, 2), W3, 1e-4, 9e-4, "valid", 1.0),
     "smaller than the 3x3 window"),
    ("ssim_stats", "zero-sum window", (t(1, 1, 9, 9), t(1, 1, 9, 9), [0.0, 0.0, 0.0], 1e-4, 9e-4, "valid", 1.0),
     "positive sum"),
    ("_ssim_stats_backward", "gradients of the wrong size",
     (*ssim_grads(t(2, 3, 9, 9), planes=5), t(2, 3, 9, 9), t(2, 3, 9, 9), W3, 1e-4, 9e-4, "valid", 1.0),
     "expected 6 gradient values"),
    ("_ssim_stats_backward", "uint8 pair",
     (*ssim_grads(t(1, 1, 9, 9)), t(1, 1, 9, 9, dtype=torch.uint8), t(1, 1, 9, 9, dtype=torch.uint8), W3, 1e-4,
      9e-4, "valid", 1.0), "x must be floating point"),
    ("_ssim_stats_backward", "even window",
     (*ssim_grads(t(1, 1, 9, 9)), t(1, 1, 9, 9), t(1, 1, 9, 9), [0.5, 0.5], 1e-4, 9e-4, "valid", 1.0),
     "window length must be odd"),
    ("_ssim_stats_backward", "bogus padding",
     (*ssim_grads(t(1, 1, 9, 9)), t(1, 1, 9, 9), t(1, 1, 9, 9), W3, 1e-4, 9e-4, "bogus", 1.0), "padding must be"),
    ("squared_error_sum", "shapes differ", (t(1, 3, 4, 4), t(1, 3, 4, 5)), "same shape"),
    ("squared_error_sum", "rank 2", (t(4, 4), t(4, 4)), "N x C x H x W"),
    ("squared_error_sum", "int64 input", (t(1, 1, 4, 4, dtype=torch.int64),) * 2, "uint8 or floating point"),
    ("psnr_db", "zero data_range", (t(1, 3, 4, 4), t(1, 3, 4, 4), 0.0, 0.0, math.inf, "mean"), "data_range"),
    ("psnr_db", "negative eps", (t(1, 3, 4, 4), t(1, 3, 4, 4), 1.0, -1.0, math.inf, "mean"), "eps"),
    ("psnr_db", "bogus reduction", (t(1, 3, 4, 4), t(1, 3, 4, 4), 1.0, 0.0, math.inf, "bogus"), "reduction"),
    ("psnr_db", "shapes differ", (t(1, 3, 4, 4), t(2, 3, 4, 4), 1.0, 0.0, math.inf, "mean"), "same shape"),
    ("box_downsample", "zero factor", (t(1, 1, 8, 8), 0, 0, 0, 4, 4, "symmetric"), "factor must be in"),
    ("box_downsample", "bogus border", (t(1, 1, 8, 8), 2, 0, 0, 4, 4, "bogus"), "border must be"),
    ("box_downsample", "pad of a whole factor", (t(1, 1, 8, 8), 2, 2, 0, 4, 4, "zeros"), "pads must be"),
    ("box_downsample", "output past the image", (t(1, 1, 8, 8), 2, 0, 0, 5, 4, "zeros"), "reads past"),
    ("box_downsample", "rank 3", (t(1, 8, 8), 2, 0, 0, 4, 4, "zeros"), "N x C x H x W"),
    ("luma", "two channels", (t(1, 2, 4, 4), [0.3, 0.6, 0.1], 0.0, False), "3 channels"),
    ("luma", "two coefficients", (t(1, 3, 4, 4), [0.5, 0.5], 0.0, False), "coeffs must have 3 values"),
    ("pc_energy", "rank 6", (t(1, 1, 4, 3, 8, 9), t(1, 1, 4), 1e-4, 1e-4), "eo must be"),
    ("pc_energy", "threshold of other orientations", (t(1, 1, 4, 3, 8, 9, 2), t(1, 1, 3), 1e-4, 1e-4),
     "threshold must be"),
    ("pc_energy", "NaN epsilon", (t(1, 1, 4, 3, 8, 9, 2), t(1, 1, 4), math.nan, 1e-4), "epsilon must be"),
    ("pc_energy", "float16 eo", (t(1, 1, 4, 3, 8, 9, 2, dtype=torch.float16), t(1, 1, 4), 1e-4, 1e-4),
     "float32 or float64"),
    ("lpips_distance", "weight of the wrong length", (*features()[:2], t(3), 1e-10), "must hold C = 4"),
    ("lpips_distance", "shapes differ", (t(2, 4, 5, 6), t(2, 4, 5, 7), t(4), 1e-10), "same shape"),
    ("lpips_distance", "uint8 features", (t(2, 4, 5, 6, dtype=torch.uint8),) * 2 + (t(4), 1e-10), "features must be"),
    ("lpips_distance", "no positions", (t(2, 4, 0, 6), t(2, 4, 0, 6), t(4), 1e-10), "at least one channel"),
    ("_lpips_distance_backward", "gradient of the wrong size", (t(3), *features(), 1e-10), "gradient must have shape"),
    ("dists_layer", "beta of the wrong length", (*features(), t(5), 1e-6, 1e-6), "beta must hold"),
    ("_dists_layer_backward", "gradient of the wrong rank", (t(2, 1), *features(), t(4), 1e-6, 1e-6),
     "gradient must have shape"),
    ("swd_distance", "negative radius", (*features(), -1, 1e-10), "radius must be >= 0"),
    ("swd_distance", "radius past the scratch budget", (t(1, 1, 1, 600), t(1, 1, 1, 600), t(1), 500, 1e-10),
     "MiB of scratch"),
    ("_swd_distance_backward", "gradient of the wrong size", (t(1), *features(), 1, 1e-10),
     "gradient must have shape"),
    ("_swd_distance_backward", "negative radius", (t(2), *features(), -3, 1e-10), "radius must be >= 0"),
    ("histogram_intersection", "level finer than the map", (*features(h=3)[:2], 3), "finer than the 3 x 6"),
    ("histogram_intersection", "zero levels", (*features()[:2], 0), "levels must be in"),
    ("histogram_intersection", "float16 maps", (t(2, 4, 5, 6, dtype=torch.float16),) * 2 + (1,), "float32 or float64"),
    ("_histogram_intersection_backward", "gradient of the wrong shape", (t(2, 2), *features()[:2], 3),
     "grad must have shape"),
    ("laplacian_level", "bogus expand", (t(1, 1, 8, 8), "bogus"), "expand must be"),
    ("laplacian_level", "2x2 planes", (t(1, 1, 2, 8), "piq"), "at least 3x3"),
    ("laplacian_level", "float16 planes", (t(1, 1, 8, 8, dtype=torch.float16), "piq"), "float32 or float64"),
    ("iw_neighbour_covariance", "even blk_size", (t(1, 2, 8, 9), None, 2), "blk_size must be odd"),
    ("iw_neighbour_covariance", "blk_size 9", (t(1, 2, 12, 12), None, 9), "blk_size must be odd"),
    ("iw_neighbour_covariance", "band under the neighbourhood", (t(1, 2, 2, 9), None, 3), "is smaller than"),
    ("iw_neighbour_covariance", "parent of other planes", (t(1, 2, 8, 9), t(1, 3, 4, 5), 3), "parent must have"),
    ("iw_pooled_cs", "even window", iw_args(window=[0.5, 0.5]), "window length must be odd"),
    ("iw_pooled_cs", "blk_size over the window", iw_args(window=W3, blk=5, k=25), "must not exceed"),
    ("iw_pooled_cs", "inverse of the wrong K", iw_args(inverse_k=10), "inverse must be"),
    ("iw_pooled_cs", "eigenvalues of the wrong shape", iw_args(eig_shape=(1, 9)), "eigenvalues must be"),
    ("iw_pooled_cs", "zero sigma_nsq", iw_args(sigma_nsq=0.0), "sigma_nsq must be positive"),
    ("iw_pooled_cs", "band under the window", iw_args(ref_shape=(1, 2, 16, 6)), "is smaller than the 7x7 window"),
    ("gradient_similarity", "bogus padding", (t(1, 1, 8, 8), t(1, 1, 8, 8), [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "bogus",
                                              "map"), "padding must be"),
    ("gradient_similarity", "two taps", (t(1, 1, 8, 8), t(1, 1, 8, 8), [1.0] * 2, 1.0, 1.0, 0.0, 0.0, "zeros", "map"),
     "smooth must hold 3 taps"),
    ("gradient_similarity", "bogus output", (t(1, 1, 8, 8), t(1, 1, 8, 8), [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "zeros",
                                             "bogus"), "output must be"),
    ("vifp_stats", "zero sigma_nsq", (t(1, 1, 8, 8), t(1, 1, 8, 8), W3, 0.0, 1e-10, 0.0, "valid"),
     "sigma_nsq must be > 0"),
    ("vifp_stats", "negative floor_rel", (t(1, 1, 8, 8), t(1, 1, 8, 8), W3, 2.0, 1e-10, -1.0, "valid"),
     "floor_rel must be >= 0"),
    ("_vifp_stats_backward", "gradient of the wrong size", (t(2, dtype=torch.float64), t(2, dtype=torch.float64),
                                                           t(1, 3, 8, 8), t(1, 3, 8, 8), W3, 2.0, 1e-10, 0.0,
                                                           "valid"), "gradient values"),
    ("decimate2", "even window", (t(1, 1, 8, 8), [0.5, 0.5]), "window length must be odd"),
    ("decimate2", "float16 planes", (t(1, 1, 8, 8, dtype=torch.float16), W3), "float32 or float64"),
    ("decimate2", "image under the window", (t(1, 1, 2, 8), W3), "is smaller than"),
    ("_decimate2_backward", "gradient of the wrong shape", (t(1, 1, 4, 4), t(1, 1, 8, 8), W3),
     "grad must have the output's shape"),
    ("cvvdp_band_pool", "float16 contrasts", tuple(a.half() if isinstance(a, torch.Tensor) else a
                                                    for a in cvvdp_band()), "float32 or float64"),
    ("cvvdp_band_pool", "five channels", cvvdp_band(c=5), "channels"),
    ("cvvdp_band_pool", "log_bkg of another size", (*cvvdp_band()[:2], t(2, 1, 9, 9), *cvvdp_band()[3:]),
     "log_bkg must be N x 1 x H x W"),
    ("_cvvdp_band_pool_backward", "gradient of the wrong size", (t(3, dtype=torch.float64), *cvvdp_band()),
     "gradient values"),
    ("cvvdp_pyramid_step", "one row", (t(1, 1, 1, 8),), "at least 2 x 2"),
    ("cvvdp_pyramid_step", "uint8 planes", (t(1, 1, 4, 4, dtype=torch.uint8),), "float32 or float64"),
    ("_cvvdp_pyramid_step_backward", "reduced gradient of the wrong shape", (t(1, 1, 4, 4), t(1, 1, 9, 9),
                                                                            t(1, 1, 9, 9)), "grad_reduced must have"),
    ("cvvdp_band_difference", "five channels", cvvdp_band(c=5), "channels"),
    ("cvvdp_weber_contrast", "odd image count", (t(3, 3, 5, 7), t(3, 3, 5, 7)), "2N images"),
    ("_cvvdp_weber_contrast_backward", "log_bkg gradient of 3 channels",
     (t(2, 3, 5, 7), t(2, 3, 5, 7), t(2, 3, 5, 7), t(4, 3, 5, 7), t(4, 3, 5, 7)), "grad_log_bkg must be"),
    ("cvvdp_srgb_to_dkl", "four channels", (t(1, 4, 5, 5), [0.5] * 9, [0.1] * 3, 1.0), "N x 3 x H x W"),
    ("cvvdp_srgb_to_dkl", "short matrix", (t(1, 3, 5, 5), [0.5] * 8, [0.1] * 3, 1.0), "matrix must hold 9"),
    ("_cvvdp_srgb_to_dkl_backward", "gradient of another shape", (t(1, 3, 5, 4), t(1, 3, 5, 5), [0.5] * 9,
                                                                 [0.1] * 3, 1.0), "grad must match x"),
    ("_gradient_similarity_backward", "map gradient of the wrong shape",
     (t(1, 1, 8, 8), t(1, 1, 8, 8), t(1, 1, 8, 8), [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "valid", "map"),
     "grad must have the output's shape"),
    ("_gradient_similarity_backward", "integer gradient",
     (t(1, 1, 8, 8, dtype=torch.int32), t(1, 1, 8, 8), t(1, 1, 8, 8), [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "zeros",
      "map"), "grad must be floating point"),
    ("_gradient_similarity_backward", "bogus output",
     (t(1, 1, 8, 8), t(1, 1, 8, 8), t(1, 1, 8, 8), [1.0] * 3, 1.0, 1.0, 0.0, 0.0, "zeros", "bogus"),
     "output must be"),
    ("grey_planes", "bogus rounding", (t(1, 3, 8, 8), [], 1.0, "bogus", 1, 0, 0, 8, 8), "rounding must be"),
    ("grey_planes", "coefficients not R x C", (t(1, 3, 8, 8), [1.0, 1.0], 1.0, "none", 1, 0, 0, 8, 8),
     "coeffs must hold R x C"),
    ("grey_planes", "output past the image", (t(1, 1, 8, 8), [], 1.0, "none", 2, 0, 0, 5, 4), "reads past"),
    ("grey_gradient_moments", "bogus rounding", (t(1, 3, 8, 8), t(1, 3, 8, 8), [], 1.0, "bogus", 2, 0, 0, 4, 4,
                                                 [1.0] * 3, 1 / 3, 170.0, 0.0, 0.0, "zeros"), "rounding must be"),
    ("grey_gradient_moments", "y of another shape", (t(1, 3, 8, 8), t(1, 3, 8, 9), [], 1.0, "none", 2, 0, 0, 4, 4,
                                                     [1.0] * 3, 1 / 3, 170.0, 0.0, 0.0, "zeros"), "same shape"),
    ("grey_gradient_moments", "planes too small for 'valid'", (t(1, 1, 8, 8), t(1, 1, 8, 8), [], 1.0, "none", 4, 0,
                                                               0, 2, 2, [1.0] * 3, 1 / 3, 170.0, 0.0, 0.0, "valid"),
     "at least 3x3"),
    ("grey_gradient_moments", "two taps", (t(1, 1, 8, 8), t(1, 1, 8, 8), [], 1.0, "none", 1, 0, 0, 8, 8, [1.0] * 2,
                                           1 / 3, 170.0, 0.0, 0.0, "zeros"), "smooth must hold 3 taps"),
]


def on(device, args):
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)


def error_of(call):
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value).splitlines()[0]


def test_every_operator_has_cases():
    schemas = {s.name.split("::")[1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("turboiqa::")}
    probes = {"_parallel_chunks_probe"}  # a CPU test hook of the work distribution, no Meta kernel
    assert schemas - probes == set(VALID) == {op for op, *_ in BAD}


@pytest.mark.parametrize("op", sorted(VALID))
def test_meta_outputs_look_like_cpu_outputs(op):
    args = VALID[op]
    want = getattr(ops, op)(*args)
    got = getattr(ops, op)(*on("meta", args))
    for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
        assert g.device.type == "meta"
        assert (g.shape, g.dtype, g.stride()) == (w.shape, w.dtype, w.stride())


@pytest.mark.parametrize("op, what, args, message", BAD, ids=[f"{op}-{what}" for op, what, *_ in BAD])
def test_meta_and_fake_raise_the_cpu_error(op, what, args, message):
    call = getattr(ops, op)
    cpu_error = error_of(lambda: call(*args))
    assert message in cpu_error[1], cpu_error  # the case is really wrong on the CPU
    assert error_of(lambda: call(*on("meta", args))) == cpu_error
    with FakeTensorMode() as mode:
        fake_args = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args)
        assert error_of(lambda: call(*fake_args)) == cpu_error


def test_traced_call_raises_the_cpu_error():
    # torch.compile traces the op through its Meta kernel: a bad window fails at trace time with the same words.
    x = t(1, 1, 9, 9)
    bad = (x, x, [0.5, 0.5], 1e-4, 9e-4, "valid", 1.0)
    _, message = error_of(lambda: ops.ssim_stats(*bad))
    torch._dynamo.reset()
    compiled = torch.compile(lambda a, b: ops.ssim_stats(a, b, *bad[2:]), fullgraph=True, backend="eager",
                             dynamic=True)
    with pytest.raises(Exception, match=re.escape(message)):
        compiled(x, x)


def test_meta_mixed_with_cpu_raises_for_every_operator():
    # Issue 11 #5: a call mixing 'meta' and CPU tensors reaches the Meta kernel, which must not answer it.
    for op, args in VALID.items():
        tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        for moved in tensors if len(tensors) > 1 else ():  # one tensor cannot be mixed
            mixed = tuple(a.to("meta") if i == moved else a for i, a in enumerate(args))
            with pytest.raises(RuntimeError, match="all tensors must be on one device"):
                getattr(ops, op)(*mixed)


# ---- the metrics on meta tensors: shape-only results, the argument checks still on -----------------------------

METRICS = ["psnr", "ssim", "ms_ssim", "fsim", "iw_ssim"]


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_metric_on_meta_has_the_cpu_result_shape(name, dtype):
    fn = getattr(turboiqa, name)
    data_range = 255 if dtype == torch.uint8 else 1.0
    x = (torch.rand(2, 3, 180, 181) * data_range).to(dtype)
    y = (torch.rand(2, 3, 180, 181) * data_range).to(dtype)
    for reduction in ("none", "mean"):
        want = fn(x, y, data_range, reduction=reduction)
        got = fn(x.to("meta"), y.to("meta"), data_range, reduction=reduction)
        assert got.device.type == "meta" and (got.shape, got.dtype) == (want.shape, want.dtype)


@pytest.mark.parametrize("name", METRICS)
def test_metric_on_meta_keeps_the_argument_checks(name):
    fn = getattr(turboiqa, name)
    x = torch.rand(1, 3, 180, 180)
    cases = [
        ((x, x, 0.0), "data_range must be a positive finite number"),
        ((x, x[..., :179], 1.0), "must have the same shape"),
        ((x, x, 1.0), "reduction must be"),
    ]
    for (a, b, data_range), message in cases:
        kwargs = {"reduction": "bogus"} if message.startswith("reduction") else {}
        cpu_error = error_of(lambda: fn(a, b, data_range, **kwargs))
        assert message in cpu_error[1], cpu_error
        assert error_of(lambda: fn(a.to("meta"), b.to("meta"), data_range, **kwargs)) == cpu_error


def test_metric_value_checks_need_values():
    # Out-of-range values are caught on the CPU; on meta there are none to read, so the call is shape-only.
    x = torch.rand(1, 3, 32, 32) * 2
    with pytest.raises(ValueError, match="outside"):
        turboiqa.ssim(x, x, 1.0)
    assert turboiqa.ssim(x.to("meta"), x.to("meta"), 1.0).shape == ()
