// Argument checks of turboiqa::cvvdp_weber_contrast (CPU and Meta entries; other devices run the PyTorch twin,
// python/turboiqa/reference/cvvdp_band.py): ColorVideoVDP's Weber contrast of one pyramid band, planes and their
// expanded coarser level 2N x C x H x W (test images first, then the references), float32/float64.
#pragma once

#include <ATen/ATen.h>

namespace turboiqa {

inline void check_cvvdp_weber_args(const at::Tensor& planes, const at::Tensor& expanded) {
  TORCH_CHECK(planes.dim() == 4, "cvvdp_weber_contrast: planes must be 2N x C x H x W, got shape ", planes.sym_sizes());
  TORCH_CHECK(planes.scalar_type() == at::kFloat || planes.scalar_type() == at::kDouble,
              "cvvdp_weber_contrast: planes must be float32 or float64, got ", planes.scalar_type());
  TORCH_CHECK(expanded.sym_sizes() == planes.sym_sizes() && expanded.scalar_type() == planes.scalar_type() &&
                  expanded.device() == planes.device(),
              "cvvdp_weber_contrast: expanded must match planes in shape, dtype and device, got ",
              expanded.sym_sizes());
  TORCH_CHECK(planes.sym_size(0) % 2 == 0 && planes.sym_size(1) >= 1,
              "cvvdp_weber_contrast: planes must hold 2N images (test, then reference) of >= 1 channel, got ",
              planes.sym_sizes());
}

inline void check_cvvdp_weber_backward_args(const at::Tensor& grad_test, const at::Tensor& grad_ref,
                                            const at::Tensor& grad_log_bkg, const at::Tensor& planes,
                                            const at::Tensor& expanded) {
  check_cvvdp_weber_args(planes, expanded);
  const auto n = planes.sym_size(0) / 2;
  for (const at::Tensor* g : {&grad_test, &grad_ref})
    TORCH_CHECK(g->dim() == 4 && g->sym_size(0) == n && g->sym_size(1) == planes.sym_size(1) &&
                    g->sym_size(2) == planes.sym_size(2) && g->sym_size(3) == planes.sym_size(3),
                "cvvdp_weber_contrast backward: grad_test and grad_ref must be N x C x H x W, got ", g->sym_sizes());
  TORCH_CHECK(grad_log_bkg.dim() == 4 && grad_log_bkg.sym_size(0) == n && grad_log_bkg.sym_size(1) == 1 &&
                  grad_log_bkg.sym_size(2) == planes.sym_size(2) && grad_log_bkg.sym_size(3) == planes.sym_size(3),
              "cvvdp_weber_contrast backward: grad_log_bkg must be N x 1 x H x W, got ", grad_log_bkg.sym_sizes());
  for (const at::Tensor* g : {&grad_test, &grad_ref, &grad_log_bkg})
    TORCH_CHECK(g->scalar_type() == planes.scalar_type() && g->device() == planes.device(),
                "cvvdp_weber_contrast backward: gradients must match planes in dtype and device");
}

}  // namespace turboiqa
