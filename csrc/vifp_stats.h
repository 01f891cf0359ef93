// Argument checks of the vifp_stats operator (CPU, CUDA and Meta entries): ssim_stats' pair, window and padding
// checks under the operator's own name, plus the VIFp constants.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "ssim_stats.h"

namespace turboiqa {

inline void check_vifp_args(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> window, double sigma_nsq,
                            double eps, double floor_rel, const std::string& padding) {
  check_ssim_args(x, y, window, padding, "vifp_stats");
  TORCH_CHECK(sigma_nsq > 0, "vifp_stats: sigma_nsq must be > 0, got ", sigma_nsq);
  TORCH_CHECK(eps > 0, "vifp_stats: eps must be > 0, got ", eps);
  TORCH_CHECK(floor_rel >= 0, "vifp_stats: floor_rel must be >= 0, got ", floor_rel);
}

inline void check_vifp_backward_args(const at::Tensor& grad_num, const at::Tensor& grad_den, const at::Tensor& x,
                                     const at::Tensor& y, at::ArrayRef<double> window, double sigma_nsq, double eps,
                                     double floor_rel, const std::string& padding) {
  check_vifp_args(x, y, window, sigma_nsq, eps, floor_rel, padding);
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "vifp_stats backward: x must be floating point, got ",
              x.scalar_type());
  TORCH_CHECK(grad_num.device() == x.device() && grad_den.device() == x.device(),
              "vifp_stats backward: gradients must be on the device of x (", x.device(), "), got ",
              grad_num.device(), " and ", grad_den.device());
  const c10::SymInt planes = x.sym_size(0) * x.sym_size(1);
  TORCH_CHECK(grad_num.sym_numel() == planes && grad_den.sym_numel() == planes, "vifp_stats backward: expected ",
              planes, " gradient values (N x C) for each output, got ", grad_num.sym_numel(), " and ",
              grad_den.sym_numel());
  TORCH_CHECK(at::isFloatingType(grad_num.scalar_type()) && at::isFloatingType(grad_den.scalar_type()),
              "vifp_stats backward: gradients must be floating point");
}

}  // namespace turboiqa
