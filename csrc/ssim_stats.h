// Shared argument checks and geometry of the ssim_stats operator (CPU and CUDA entry points).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "border.h"
#include "dtypes.h"

namespace turboiqa {

constexpr int kMaxWindow = 63;

inline Border parse_border(const std::string& padding, const char* op = "ssim_stats") {
  if (padding == "valid") return Border::Valid;
  if (padding == "zeros") return Border::Zeros;
  if (padding == "symmetric") return Border::Symmetric;
  if (padding == "reflect") return Border::Reflect;
  if (padding == "replicate") return Border::Replicate;
  TORCH_CHECK(false, op, ": padding must be 'valid', 'zeros', 'symmetric', 'reflect' or 'replicate', got '",
              padding, "'");
}

struct SsimGeometry {
  int64_t planes, height, width;
  int window_size, pad;  // pad on every side (0 for 'valid')
  int64_t padded_height, padded_width, out_height, out_width;
  Border border;
};

// A separable window of ssim_stats and iw_pooled_cs: odd length (it has a centre), at most kMaxWindow taps (the
// kernels' fixed buffers), positive sum (it is normalised to 1).
inline void check_window(const char* op, at::ArrayRef<double> window) {
  const int64_t k = static_cast<int64_t>(window.size());
  TORCH_CHECK(k % 2 == 1 && k <= kMaxWindow, op, ": window length must be odd and at most ", kMaxWindow, ", got ", k);
  double total = 0;
  for (double v : window) total += v;
  TORCH_CHECK(total > 0, op, ": window must have a positive sum");
}

// The checks run on symbolic sizes too (sym_sizes): the Meta kernel (meta/ops_meta.cpp) calls them on the fake
// tensors torch.compile traces with, so every comparison is one the tracer can guard on.
inline void check_ssim_args(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> window,
                            const std::string& padding, const char* op = "ssim_stats") {
  TORCH_CHECK(x.dim() == 4, op, ": x must be N x C x H x W, got shape ", x.sym_sizes());
  TORCH_CHECK(x.sym_sizes() == y.sym_sizes(), op, ": x and y must have the same shape, got ", x.sym_sizes(),
              " and ", y.sym_sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), op, ": x and y must have the same dtype, got ",
              x.scalar_type(), " and ", y.scalar_type());
  TORCH_CHECK(x.device() == y.device(), op, ": x and y must be on the same device");
  auto dt = x.scalar_type();
  TORCH_CHECK(dt == at::kByte || at::isFloatingType(dt), op, ": x must be uint8 or floating point, got ", dt);
  check_window(op, window);
  const int k = static_cast<int>(window.size());
  const Border border = parse_border(padding, op);
  const c10::SymInt& height = x.sym_size(2);
  const c10::SymInt& width = x.sym_size(3);
  TORCH_CHECK(height >= 1 && width >= 1, op, ": x must have non-empty spatial dims, got ", x.sym_sizes());
  if (border == Border::Valid)
    TORCH_CHECK(height >= k && width >= k, op, ": image ", height, "x", width, " is smaller than the ", k, "x",
                k, " window; use a smaller window or a 'same' padding");
}

// The kernels' geometry of arguments that passed check_ssim_args (concrete sizes: CPU and CUDA only).
inline SsimGeometry ssim_geometry(const at::Tensor& x, at::ArrayRef<double> window, const std::string& padding) {
  const int k = static_cast<int>(window.size());
  SsimGeometry g;
  g.planes = x.size(0) * x.size(1);
  g.height = x.size(2);
  g.width = x.size(3);
  g.window_size = k;
  g.border = parse_border(padding);
  g.pad = g.border == Border::Valid ? 0 : k / 2;
  g.padded_height = g.height + 2 * g.pad;
  g.padded_width = g.width + 2 * g.pad;
  g.out_height = g.padded_height - k + 1;
  g.out_width = g.padded_width - k + 1;
  return g;
}

// The backward's arguments, checked the same way by the CPU, CUDA and Meta entries: the forward's, a
// floating-point pair, and one gradient value per plane (N x C) on the pair's device for each of the two outputs.
inline void check_ssim_backward_args(const at::Tensor& grad_ssim, const at::Tensor& grad_cs, const at::Tensor& x,
                                     const at::Tensor& y, at::ArrayRef<double> window, const std::string& padding) {
  check_ssim_args(x, y, window, padding);
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "ssim_stats backward: x must be floating point, got ",
              x.scalar_type());
  TORCH_CHECK(grad_ssim.device() == x.device() && grad_cs.device() == x.device(),
              "ssim_stats backward: gradients must be on the device of x (", x.device(), "), got ",
              grad_ssim.device(), " and ", grad_cs.device());
  const c10::SymInt planes = x.sym_size(0) * x.sym_size(1);
  TORCH_CHECK(grad_ssim.sym_numel() == planes && grad_cs.sym_numel() == planes, "ssim_stats backward: expected ",
              planes, " gradient values (N x C) for each output, got ", grad_ssim.sym_numel(), " and ",
              grad_cs.sym_numel());
  TORCH_CHECK(at::isFloatingType(grad_ssim.scalar_type()) && at::isFloatingType(grad_cs.scalar_type()),
              "ssim_stats backward: gradients must be floating point");
}

// The window normalised to sum exactly 1 in float64: the shifted-moment algebra (ssim_math.h) relies on it.
inline std::vector<double> normalized_window(at::ArrayRef<double> window) {
  double total = 0;
  for (double v : window) total += v;
  TORCH_CHECK(total > 0, "ssim_stats: window must have a positive sum");
  std::vector<double> w(window.begin(), window.end());
  for (double& v : w) v /= total;
  return w;
}


}  // namespace turboiqa
