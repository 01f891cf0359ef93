// CUDA entry points of every operator: argument checks, then the launcher from the matching .cu file.
//
// Why the checks live here and not in the .cu files: on the first GPU machine we ran on (torch 2.11, nvcc 13), a
// TORCH_CHECK thrown from a function compiled by nvcc crashed the process while unwinding instead of raising a
// Python error. This file is compiled by the host C++ compiler, so argument errors never unwind through nvcc frames.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <climits>
#include <string>
#include <tuple>

#include "../image_ops.h"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

void check_cuda(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.is_cuda(), op, ": expected CUDA tensors, got ", x.device());
}

void check_int_geometry(const SsimGeometry& g) {
  TORCH_CHECK(g.padded_height < INT_MAX / 2 && g.padded_width < INT_MAX / 2,
              "ssim_stats: spatial dims too large for the CUDA kernels");
}

std::tuple<at::Tensor, at::Tensor> ssim_stats_cuda(const at::Tensor& x, const at::Tensor& y,
                                                   at::ArrayRef<double> window, double c1, double c2,
                                                   c10::string_view padding, double cov_norm) {
  const SsimGeometry g = check_ssim_args(x, y, window, std::string(padding));
  check_cuda(x, "ssim_stats");
  check_int_geometry(g);
  return ssim_stats_launch(x, y, g, window, c1, c2, cov_norm);
}

std::tuple<at::Tensor, at::Tensor> ssim_stats_backward_cuda(const at::Tensor& grad_ssim, const at::Tensor& grad_cs,
                                                            const at::Tensor& x, const at::Tensor& y,
                                                            at::ArrayRef<double> window, double c1, double c2,
                                                            c10::string_view padding, double cov_norm) {
  const SsimGeometry g = check_ssim_args(x, y, window, std::string(padding));
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "ssim_stats backward: x must be floating point");
  check_cuda(x, "ssim_stats backward");
  TORCH_CHECK(grad_ssim.device() == x.device() && grad_cs.device() == x.device(),
              "ssim_stats backward: gradients must be on the device of x");
  TORCH_CHECK(grad_ssim.numel() == g.planes && grad_cs.numel() == g.planes,
              "ssim_stats backward: expected ", g.planes, " gradient values (N x C), got ", grad_ssim.numel(),
              " and ", grad_cs.numel());
  check_int_geometry(g);
  return ssim_stats_backward_launch(grad_ssim, grad_cs, x, y, g, window, c1, c2, cov_norm);
}

std::tuple<at::Tensor, at::Tensor> squared_error_sum_cuda(const at::Tensor& x, const at::Tensor& y) {
  check_pair_images(x, y, "squared_error_sum");
  check_cuda(x, "squared_error_sum");
  return squared_error_sum_launch(x, y);
}

at::Tensor box_downsample_cuda(const at::Tensor& x, int64_t factor, int64_t pad_top, int64_t pad_left, int64_t out_h,
                               int64_t out_w, c10::string_view border_name) {
  check_downsample(x, factor, pad_top, pad_left, out_h, out_w);
  const Border border = parse_downsample_border(std::string(border_name));
  check_cuda(x, "box_downsample");
  TORCH_CHECK(x.size(2) + 2 * factor < INT_MAX && x.size(3) + 2 * factor < INT_MAX,
              "box_downsample: spatial dims too large for the CUDA kernel");
  return box_downsample_launch(x, factor, pad_top, pad_left, out_h, out_w, border);
}

at::Tensor luma_cuda(const at::Tensor& x, at::ArrayRef<double> coeffs, double offset, bool round_to_uint8) {
  check_image(x, "luma");
  TORCH_CHECK(x.size(1) == 3, "luma: x must have 3 channels (RGB), got ", x.size(1));
  TORCH_CHECK(coeffs.size() == 3, "luma: coeffs must have 3 values");
  check_cuda(x, "luma");
  return luma_op_launch(x, coeffs, offset, round_to_uint8);
}

at::Tensor pc_energy_cuda(const at::Tensor& eo, const at::Tensor& threshold, double epsilon, double pc_eps) {
  const PcShape shape = check_pc_energy(eo, threshold);
  check_cuda(eo, "pc_energy");
  return pc_energy_launch(eo, threshold, shape, epsilon, pc_eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CUDA, m) {
  m.impl("ssim_stats", &ssim_stats_cuda);
  m.impl("_ssim_stats_backward", &ssim_stats_backward_cuda);
  m.impl("squared_error_sum", &squared_error_sum_cuda);
  m.impl("box_downsample", &box_downsample_cuda);
  m.impl("luma", &luma_cuda);
  m.impl("pc_energy", &pc_energy_cuda);
}

}  // namespace turboiqa::cuda
