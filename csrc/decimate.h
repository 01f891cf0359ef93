// Argument checks of the decimate2 operator (CPU, CUDA and Meta entries): planes N x C x H x W, float32/float64,
// a window of odd length <= kMaxWindow that fits.
#pragma once

#include <ATen/ATen.h>

#include "ssim_stats.h"

namespace turboiqa {

inline void check_decimate_args(const at::Tensor& x, at::ArrayRef<double> window) {
  TORCH_CHECK(x.dim() == 4, "decimate2: x must be N x C x H x W, got shape ", x.sym_sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "decimate2: x must be float32 or float64, got ", x.scalar_type());
  const int64_t k = static_cast<int64_t>(window.size());
  TORCH_CHECK(k % 2 == 1 && k <= kMaxWindow, "decimate2: window length must be odd and at most ", kMaxWindow,
              ", got ", k);
  TORCH_CHECK(x.sym_size(2) >= k && x.sym_size(3) >= k, "decimate2: image ", x.sym_size(2), "x", x.sym_size(3),
              " is smaller than the ", k, "x", k, " window");
}

inline void check_decimate_backward_args(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> window) {
  check_decimate_args(x, window);
  const int64_t k = static_cast<int64_t>(window.size());
  TORCH_CHECK(grad.dim() == 4 && grad.sym_size(0) == x.sym_size(0) && grad.sym_size(1) == x.sym_size(1) &&
                  grad.sym_size(2) == (x.sym_size(2) - k) / 2 + 1 && grad.sym_size(3) == (x.sym_size(3) - k) / 2 + 1,
              "decimate2 backward: grad must have the output's shape, got ", grad.sym_sizes());
  TORCH_CHECK(grad.scalar_type() == x.scalar_type() && grad.device() == x.device(),
              "decimate2 backward: grad must match x in dtype and device");
}

}  // namespace turboiqa
