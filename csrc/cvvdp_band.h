// Argument checks of the cvvdp operators (CPU, CUDA and Meta entries; the PyTorch twins are
// python/turboiqa/reference/cvvdp_band.py). cvvdp_band_pool: one Laplacian band of
// ColorVideoVDP, test and reference contrasts N x C x H x W (C <= 4), the reference's log10 background luminance
// N x 1 x H x W, all float32 or float64 on one device; the castleCSF table C x L over a uniform log10 L grid.
#pragma once

#include <ATen/ATen.h>

namespace turboiqa {

constexpr int64_t kCvvdpMaxChannels = 4;

inline void check_cvvdp_band_args(const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
                                  at::ArrayRef<double> csf, double log_l_lo, double log_l_hi,
                                  at::ArrayRef<double> gain, at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm,
                                  double mask_c, double mask_p, double d_max) {
  TORCH_CHECK(test.dim() == 4, "cvvdp_band_pool: test must be N x C x H x W, got shape ", test.sym_sizes());
  TORCH_CHECK(ref.sym_sizes() == test.sym_sizes(), "cvvdp_band_pool: ref must have the shape of test ",
              test.sym_sizes(), ", got ", ref.sym_sizes());
  TORCH_CHECK(test.scalar_type() == at::kFloat || test.scalar_type() == at::kDouble,
              "cvvdp_band_pool: test must be float32 or float64, got ", test.scalar_type());
  TORCH_CHECK(ref.scalar_type() == test.scalar_type() && log_bkg.scalar_type() == test.scalar_type(),
              "cvvdp_band_pool: test, ref and log_bkg must have one dtype, got ", test.scalar_type(), ", ",
              ref.scalar_type(), " and ", log_bkg.scalar_type());
  TORCH_CHECK(ref.device() == test.device() && log_bkg.device() == test.device(),
              "cvvdp_band_pool: test, ref and log_bkg must be on one device");
  TORCH_CHECK(log_bkg.dim() == 4 && log_bkg.sym_size(0) == test.sym_size(0) && log_bkg.sym_size(1) == 1 &&
                  log_bkg.sym_size(2) == test.sym_size(2) && log_bkg.sym_size(3) == test.sym_size(3),
              "cvvdp_band_pool: log_bkg must be N x 1 x H x W of test's N, H, W, got ", log_bkg.sym_sizes());
  // The channel count sizes the per-channel argument lists, so a symbolic one (torch.compile(dynamic=True)) is
  // specialised here (a guard) rather than read with size(1).
  const c10::SymInt c_sym = test.sym_size(1);
  TORCH_CHECK(c_sym >= 1 && c_sym <= kCvvdpMaxChannels, "cvvdp_band_pool: test must have 1 to ", kCvvdpMaxChannels,
              " channels, got ", c_sym);
  const int64_t c = c_sym.guard_int(__FILE__, __LINE__);
  TORCH_CHECK(csf.size() >= static_cast<size_t>(2 * c) && csf.size() % c == 0,
              "cvvdp_band_pool: csf must hold C x L values (L >= 2) for C = ", c, ", got ", csf.size());
  TORCH_CHECK(log_l_hi > log_l_lo, "cvvdp_band_pool: log_l_hi must be > log_l_lo, got ", log_l_lo, " and ",
              log_l_hi);
  TORCH_CHECK(static_cast<int64_t>(gain.size()) == c && static_cast<int64_t>(mask_q.size()) == c,
              "cvvdp_band_pool: gain and mask_q must hold one value per channel (", c, "), got ", gain.size(),
              " and ", mask_q.size());
  TORCH_CHECK(static_cast<int64_t>(xcm.size()) == c * c, "cvvdp_band_pool: xcm must hold C x C = ", c * c,
              " values, got ", xcm.size());
  TORCH_CHECK(mask_c > 0 && mask_p > 0 && d_max > 0, "cvvdp_band_pool: mask_c, mask_p and d_max must be > 0, got ",
              mask_c, ", ", mask_p, " and ", d_max);
}

inline void check_cvvdp_band_backward_args(const at::Tensor& grad, const at::Tensor& test, const at::Tensor& ref,
                                           const at::Tensor& log_bkg, at::ArrayRef<double> csf, double log_l_lo,
                                           double log_l_hi, at::ArrayRef<double> gain, at::ArrayRef<double> mask_q,
                                           at::ArrayRef<double> xcm, double mask_c, double mask_p, double d_max) {
  check_cvvdp_band_args(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max);
  TORCH_CHECK(grad.device() == test.device(), "cvvdp_band_pool backward: grad must be on the device of test (",
              test.device(), "), got ", grad.device());
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), "cvvdp_band_pool backward: grad must be floating point");
  TORCH_CHECK(grad.sym_numel() == test.sym_size(0) * test.sym_size(1), "cvvdp_band_pool backward: expected ",
              test.sym_size(0) * test.sym_size(1), " gradient values (N x C), got ", grad.sym_numel());
}

}  // namespace turboiqa

namespace turboiqa {

// cvvdp_pyramid_step: planes N x C x H x W (float32/float64, H, W >= 2).
inline void check_cvvdp_pyramid_args(const at::Tensor& planes) {
  TORCH_CHECK(planes.dim() == 4, "cvvdp_pyramid_step: planes must be N x C x H x W, got shape ", planes.sym_sizes());
  TORCH_CHECK(planes.scalar_type() == at::kFloat || planes.scalar_type() == at::kDouble,
              "cvvdp_pyramid_step: planes must be float32 or float64, got ", planes.scalar_type());
  TORCH_CHECK(planes.sym_size(2) >= 2 && planes.sym_size(3) >= 2,
              "cvvdp_pyramid_step: planes must be at least 2 x 2, got ", planes.sym_size(2), " x ", planes.sym_size(3));
}

inline void check_cvvdp_pyramid_backward_args(const at::Tensor& grad_reduced, const at::Tensor& grad_expanded,
                                              const at::Tensor& planes) {
  check_cvvdp_pyramid_args(planes);
  const auto h = planes.sym_size(2), w = planes.sym_size(3);
  TORCH_CHECK(grad_reduced.dim() == 4 && grad_reduced.sym_size(0) == planes.sym_size(0) &&
                  grad_reduced.sym_size(1) == planes.sym_size(1) && grad_reduced.sym_size(2) == (h + 1) / 2 &&
                  grad_reduced.sym_size(3) == (w + 1) / 2,
              "cvvdp_pyramid_step backward: grad_reduced must have the reduced planes' shape, got ",
              grad_reduced.sym_sizes());
  TORCH_CHECK(grad_expanded.sym_sizes() == planes.sym_sizes(),
              "cvvdp_pyramid_step backward: grad_expanded must have the planes' shape, got ",
              grad_expanded.sym_sizes());
  TORCH_CHECK(grad_reduced.scalar_type() == planes.scalar_type() &&
                  grad_expanded.scalar_type() == planes.scalar_type() && grad_reduced.device() == planes.device() &&
                  grad_expanded.device() == planes.device(),
              "cvvdp_pyramid_step backward: gradients must match planes in dtype and device");
}

}  // namespace turboiqa

namespace turboiqa {

// cvvdp_srgb_to_dkl: x N x 3 x H x W float32/float64, a 3 x 3 matrix (9 values, row-major) and 3 biases.
inline void check_cvvdp_srgb_args(const at::Tensor& x, at::ArrayRef<double> matrix, at::ArrayRef<double> bias,
                                  double data_range) {
  TORCH_CHECK(x.dim() == 4 && x.sym_size(1) == 3, "cvvdp_srgb_to_dkl: x must be N x 3 x H x W, got shape ",
              x.sym_sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "cvvdp_srgb_to_dkl: x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(matrix.size() == 9 && bias.size() == 3, "cvvdp_srgb_to_dkl: matrix must hold 9 values and bias 3, got ",
              matrix.size(), " and ", bias.size());
  TORCH_CHECK(data_range > 0, "cvvdp_srgb_to_dkl: data_range must be > 0, got ", data_range);
}

inline void check_cvvdp_srgb_backward_args(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> matrix,
                                           at::ArrayRef<double> bias, double data_range) {
  check_cvvdp_srgb_args(x, matrix, bias, data_range);
  TORCH_CHECK(grad.sym_sizes() == x.sym_sizes() && grad.scalar_type() == x.scalar_type() &&
                  grad.device() == x.device(),
              "cvvdp_srgb_to_dkl backward: grad must match x in shape, dtype and device, got ", grad.sym_sizes());
}

}  // namespace turboiqa
