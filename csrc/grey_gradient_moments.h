// grey_gradient_moments: grey_planes of x and of y, then gradient_similarity(..., output='moments') of the two stacks
// of planes, fused (CPU): one read of each image, nothing image-sized written. The same bits as the two operators
// (csrc/grey_planes.h, csrc/gradient_similarity.h): it runs their row kernels. Argument checks shared by the CPU and
// Meta entry points; the messages name this operator and the argument.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "grey_planes.h"

namespace turboiqa {

// Checks every argument; returns grey_planes' parsed rounding. padding: 'zeros' or 'valid' (sets *valid).
inline GreyRounding check_grey_gradient_moments(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> coeffs,
                                                double scale, const std::string& rounding, int64_t factor,
                                                int64_t pad_top, int64_t pad_left, int64_t out_h, int64_t out_w,
                                                at::ArrayRef<double> smooth, double grad_scale, double c, double alpha,
                                                double eps, const std::string& padding, bool* valid) {
  constexpr const char* op = "grey_gradient_moments";
  check_pair_images(x, y, op);
  GreyRounding mode = GreyRounding::None;
  try {  // grey_planes' checks of the front end's arguments, under this operator's name
    mode = check_grey_planes(x, coeffs, scale, rounding, factor, pad_top, pad_left, out_h, out_w);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    const std::string prefix = "grey_planes: ";
    if (msg.compare(0, prefix.size(), prefix) == 0) msg = msg.substr(prefix.size());
    TORCH_CHECK(false, op, ": ", msg);
  }
  TORCH_CHECK(smooth.size() == 3, op, ": smooth must hold 3 taps, got ", smooth.size());
  TORCH_CHECK(grad_scale > 0, op, ": grad_scale must be > 0, got ", grad_scale);
  TORCH_CHECK(c > 0, op, ": c must be > 0, got ", c);
  TORCH_CHECK(alpha >= 0 && alpha < 1, op, ": alpha must be in [0, 1), got ", alpha);
  TORCH_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  TORCH_CHECK(padding == "zeros" || padding == "valid", op, ": padding must be 'zeros' or 'valid', got '", padding,
              "'");
  *valid = padding == "valid";
  const int64_t least = *valid ? 3 : 1;
  TORCH_CHECK(out_h >= least && out_w >= least, op, ": the planes (out_height x out_width = ", out_h, "x", out_w,
              ") must be at least ", least, "x", least, " for padding='", padding, "'");
  return mode;
}

}  // namespace turboiqa
