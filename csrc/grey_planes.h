// grey_planes: the metrics' front end in one read of the image (CPU, CUDA and Meta share these checks).
//
// x: N x C x H x W (uint8, float32, float64; other floats are computed in float32). coeffs: R x C values, row-major
// (R output planes, each a weighted sum of the C channels), or empty: every channel as given (R = C). Per input
// sample, v = sum_c coeffs[r, c] x_c formed left to right in the compute dtype (uint8 input: in double, as the luma
// operator; 'half_away' rounds it there, MATLAB rgb2gray of uint8, other modes cast it to float32 first), then
// v *= scale (when scale != 1) and rounded by `rounding`: 'none' | 'half_away' (floor(v + 0.5)) | 'half_even'.
// Then the factor x factor box mean sampled every factor pixels, box (i, j) starting at (i f - pad_top,
// j f - pad_left), samples outside the image counted as zeros, always divided by f^2 (box_downsample's 'zeros'
// border, same order of additions). Outputs: planes N x R x out_height x out_width in the compute dtype; extrema
// (N, 2) float64 = (min, max) of each image's input samples, all of them (also those no box reads), NaN for an
// image holding a NaN or an infinity, and (0, 255) unread for uint8 (the dtype's bounds). The extrema replace the
// metrics' separate range/NaN pass (validate.check_extrema).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <string>

#include "image_ops.h"

namespace turboiqa {

enum class GreyRounding { None, HalfAway, HalfEven };

inline GreyRounding parse_grey_rounding(const std::string& rounding) {
  if (rounding == "none") return GreyRounding::None;
  if (rounding == "half_away") return GreyRounding::HalfAway;
  if (rounding == "half_even") return GreyRounding::HalfEven;
  TORCH_CHECK(false, "grey_planes: rounding must be 'none', 'half_away' or 'half_even', got '", rounding, "'");
}

// Checks every argument; returns the parsed rounding.
inline GreyRounding check_grey_planes(const at::Tensor& x, at::ArrayRef<double> coeffs, double scale,
                                      const std::string& rounding, int64_t factor, int64_t pad_top, int64_t pad_left,
                                      int64_t out_h, int64_t out_w) {
  check_image(x, "grey_planes");
  const GreyRounding mode = parse_grey_rounding(rounding);
  const c10::SymInt& channels = x.sym_size(1);
  TORCH_CHECK(channels >= 1, "grey_planes: x must have at least one channel, got ", x.sym_sizes());
  TORCH_CHECK(coeffs.empty() || c10::SymInt(static_cast<int64_t>(coeffs.size())) % channels == 0,
              "grey_planes: coeffs must hold R x C values (C = ", channels, " channels), got ", coeffs.size());
  TORCH_CHECK(coeffs.size() <= 64, "grey_planes: at most 64 coefficients, got ", coeffs.size());
  TORCH_CHECK(std::isfinite(scale), "grey_planes: scale must be finite, got ", scale);
  TORCH_CHECK(factor >= 1 && factor <= kMaxDownsampleFactor, "grey_planes: factor must be in [1, ",
              kMaxDownsampleFactor, "], got ", factor);
  TORCH_CHECK(out_h <= kMaxDownsampleOutput && out_w <= kMaxDownsampleOutput, "grey_planes: output size ", out_h,
              "x", out_w, " is too large");
  const c10::SymInt& height = x.sym_size(2);
  const c10::SymInt& width = x.sym_size(3);
  TORCH_CHECK(height >= 1 && width >= 1, "grey_planes: x must have non-empty spatial dims, got ", x.sym_sizes());
  TORCH_CHECK(pad_top >= 0 && pad_left >= 0 && pad_top < factor && pad_left < factor,
              "grey_planes: pads must be in [0, factor)");
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "grey_planes: output size must be positive");
  TORCH_CHECK((out_h - 1) * factor - pad_top < height && (out_w - 1) * factor - pad_left < width,
              "grey_planes: output ", out_h, "x", out_w, " reads past a ", height, "x", width, " image");
  return mode;
}

// Output planes R (symbolic for the Meta kernel).
inline c10::SymInt grey_planes_count(const at::Tensor& x, at::ArrayRef<double> coeffs) {
  if (coeffs.empty()) return x.sym_size(1);
  return c10::SymInt(static_cast<int64_t>(coeffs.size())) / x.sym_size(1);
}

}  // namespace turboiqa
