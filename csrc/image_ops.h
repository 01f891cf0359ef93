// Argument checks shared by the CPU, CUDA and Meta versions of the small image operators (squared_error_sum,
// box_downsample, luma). Sizes are read as sym_sizes: the Meta kernels run these checks on symbolic shapes.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "border.h"
#include "dtypes.h"

namespace turboiqa {

inline void check_image(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be N x C x H x W, got shape ", x.sym_sizes());
  TORCH_CHECK(x.scalar_type() == at::kByte || at::isFloatingType(x.scalar_type()), op,
              ": x must be uint8 or floating point, got ", x.scalar_type());
}

inline void check_pair_images(const at::Tensor& x, const at::Tensor& y, const char* op) {
  check_image(x, op);
  TORCH_CHECK(x.sym_sizes() == y.sym_sizes(), op, ": x and y must have the same shape, got ", x.sym_sizes(), " and ",
              y.sym_sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), op, ": x and y must have the same dtype");
  TORCH_CHECK(x.device() == y.device(), op, ": x and y must be on the same device");
}

inline Border parse_downsample_border(const std::string& border) {
  if (border == "symmetric") return Border::Symmetric;
  if (border == "replicate") return Border::Replicate;
  if (border == "zeros") return Border::Zeros;
  TORCH_CHECK(false, "box_downsample: border must be 'symmetric', 'replicate' or 'zeros', got '", border, "'");
}

constexpr int64_t kMaxDownsampleFactor = 1 << 16;
constexpr int64_t kMaxDownsampleOutput = int64_t(1) << 31;

// box_downsample's arguments; returns the parsed border.
inline Border check_box_downsample(const at::Tensor& x, int64_t factor, int64_t pad_top, int64_t pad_left,
                                   int64_t out_h, int64_t out_w, const std::string& border) {
  check_image(x, "box_downsample");
  // Bounded first, so that the products below cannot overflow int64 (a factor of 2^62 used to wrap the bounds
  // check and end in an integer division by zero).
  TORCH_CHECK(factor >= 1 && factor <= kMaxDownsampleFactor, "box_downsample: factor must be in [1, ",
              kMaxDownsampleFactor, "], got ", factor);
  TORCH_CHECK(out_h <= kMaxDownsampleOutput && out_w <= kMaxDownsampleOutput, "box_downsample: output size ", out_h,
              "x", out_w, " is too large");
  const c10::SymInt& height = x.sym_size(2);
  const c10::SymInt& width = x.sym_size(3);
  TORCH_CHECK(height >= 1 && width >= 1, "box_downsample: x must have non-empty spatial dims, got ", x.sym_sizes());
  TORCH_CHECK(pad_top >= 0 && pad_left >= 0 && pad_top < factor && pad_left < factor,
              "box_downsample: pads must be in [0, factor)");
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "box_downsample: output size must be positive");
  TORCH_CHECK((out_h - 1) * factor - pad_top < height && (out_w - 1) * factor - pad_left < width,
              "box_downsample: output ", out_h, "x", out_w, " reads past a ", height, "x", width, " image");
  return parse_downsample_border(border);
}

inline void check_luma(const at::Tensor& x, at::ArrayRef<double> coeffs) {
  check_image(x, "luma");
  TORCH_CHECK(x.sym_size(1) == 3, "luma: x must have 3 channels (RGB), got ", x.sym_size(1));
  TORCH_CHECK(coeffs.size() == 3, "luma: coeffs must have 3 values");
}

}  // namespace turboiqa
