// Shared argument checks and geometry of the gradient_similarity operator (CPU, CUDA and Meta entry points).
//
// Per plane pair: the x/y responses of the separable 3×3 stencil smooth ⊗ [−1, 0, 1] (Prewitt, Scharr, Sobel: the
// smoothing taps are arguments), squared magnitudes M = scale²·(gx² + gy²) + eps, and the gradient similarity
// q = ((2 − α)·√(M1·M2) + c) / (M1 + M2 − α·√(M1·M2) + c) (α = 0: GMSD's GMS; α > 0: MS-GMSD's masked form).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <tuple>

#include "dtypes.h"

namespace turboiqa {

enum class GradSimOutput { Map, Moments };

inline bool grad_sim_valid(const std::string& padding) {
  TORCH_CHECK(padding == "zeros" || padding == "valid",
              "gradient_similarity: padding must be 'zeros' or 'valid', got '", padding, "'");
  return padding == "valid";
}

inline GradSimOutput grad_sim_output(const std::string& output) {
  TORCH_CHECK(output == "map" || output == "moments",
              "gradient_similarity: output must be 'map' or 'moments', got '", output, "'");
  return output == "map" ? GradSimOutput::Map : GradSimOutput::Moments;
}

// Symbolic-size checks (the Meta kernel runs them on fake tensors too).
inline void check_grad_sim_args(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> smooth, double scale,
                                double c, double alpha, double eps, const std::string& padding,
                                const std::string& output) {
  TORCH_CHECK(x.dim() == 4, "gradient_similarity: x must be N x C x H x W, got shape ", x.sym_sizes());
  TORCH_CHECK(x.sym_sizes() == y.sym_sizes(), "gradient_similarity: x and y must have the same shape, got ",
              x.sym_sizes(), " and ", y.sym_sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "gradient_similarity: x and y must have the same dtype, got ",
              x.scalar_type(), " and ", y.scalar_type());
  TORCH_CHECK(x.device() == y.device(), "gradient_similarity: x and y must be on the same device");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()) || x.scalar_type() == at::kByte,
              "gradient_similarity: x must be uint8 or floating point, got ", x.scalar_type());
  TORCH_CHECK(smooth.size() == 3, "gradient_similarity: smooth must hold 3 taps, got ", smooth.size());
  TORCH_CHECK(scale > 0, "gradient_similarity: scale must be > 0, got ", scale);
  TORCH_CHECK(c > 0, "gradient_similarity: c must be > 0, got ", c);
  TORCH_CHECK(alpha >= 0 && alpha < 1, "gradient_similarity: alpha must be in [0, 1), got ", alpha);
  TORCH_CHECK(eps >= 0, "gradient_similarity: eps must be >= 0, got ", eps);
  const bool valid = grad_sim_valid(padding);
  grad_sim_output(output);
  const int least = valid ? 3 : 1;
  TORCH_CHECK(x.sym_size(2) >= least && x.sym_size(3) >= least, "gradient_similarity: x must be at least ", least,
              "x", least, " for padding='", padding, "', got ", x.sym_sizes());
}

// The output's shape: the map N x C x Ho x Wo ('valid' trims one pixel per side) or (N, C, 2) = (Σq, Σq²).
inline std::vector<c10::SymInt> grad_sim_output_shape(const at::Tensor& x, const std::string& padding,
                                                      const std::string& output) {
  const int trim = grad_sim_valid(padding) ? 2 : 0;
  if (grad_sim_output(output) == GradSimOutput::Moments) return {x.sym_size(0), x.sym_size(1), 2};
  return {x.sym_size(0), x.sym_size(1), x.sym_size(2) - trim, x.sym_size(3) - trim};
}

// The backward's extra checks: grad has the forward output's shape ((N, C, 2) for the moments), on x's device.
inline void check_grad_sim_backward_args(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y,
                                         at::ArrayRef<double> smooth, double scale, double c, double alpha, double eps,
                                         const std::string& padding, const std::string& output) {
  check_grad_sim_args(x, y, smooth, scale, c, alpha, eps, padding, output);
  const auto shape = grad_sim_output_shape(x, padding, output);
  TORCH_CHECK(grad.sym_sizes() == c10::SymIntArrayRef(shape), "gradient_similarity backward: grad must have the ",
              "output's shape ", c10::SymIntArrayRef(shape), ", got ", grad.sym_sizes());
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), "gradient_similarity backward: grad must be floating point, got ",
              grad.scalar_type());
  TORCH_CHECK(grad.device() == x.device(), "gradient_similarity backward: grad must be on x's device");
}

// dtype of the backward's gradients: x's when floating point, else the compute dtype (float32).
inline at::ScalarType grad_sim_grad_type(at::ScalarType input) {
  return at::isFloatingType(input) ? input : at::kFloat;
}

// The backward entry point of every device: the checks (then check_device(x), which raises before anything runs),
// compute-dtype contiguous x, y and grad (float64 for the moments), the gradient buffers, run(grad, x, y, valid,
// moments, dx, dy) unless the planes are empty, and the gradients cast back to grad_sim_grad_type.
template <typename CheckDevice, typename Run>
std::tuple<at::Tensor, at::Tensor> grad_sim_backward(const at::Tensor& grad_in, const at::Tensor& x_in,
                                                     const at::Tensor& y_in, at::ArrayRef<double> smooth, double scale,
                                                     double c, double alpha, double eps, const std::string& padding,
                                                     const std::string& output, const CheckDevice& check_device,
                                                     const Run& run) {
  check_grad_sim_backward_args(grad_in, x_in, y_in, smooth, scale, c, alpha, eps, padding, output);
  check_device(x_in);
  const bool valid = grad_sim_valid(padding);
  const bool moments = grad_sim_output(output) == GradSimOutput::Moments;
  const auto dt = compute_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  const at::Tensor grad = grad_in.to(moments ? at::kDouble : dt).contiguous();
  at::Tensor dx = at::empty(x.sizes(), x.options()), dy = at::empty(x.sizes(), x.options());
  if (x.numel() > 0) run(grad, x, y, valid, moments, dx, dy);
  const auto gt = grad_sim_grad_type(x_in.scalar_type());
  return {dx.to(gt), dy.to(gt)};
}

}  // namespace turboiqa
