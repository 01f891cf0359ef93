// CUDA entry points of every operator: argument checks, then the launcher from the matching .cu file.
//
// Why the checks live here and not in the .cu files: on the first GPU machine we ran on (torch 2.11, nvcc 13), a
// TORCH_CHECK thrown from a function compiled by nvcc crashed the process while unwinding instead of raising a
// Python error. This file is compiled by the host C++ compiler, so argument errors never unwind through nvcc frames.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <climits>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "../cvvdp_band.h"
#include "../decimate.h"
#include "../dtypes.h"
#include "../gradient_similarity.h"
#include "../grey_planes.h"
#include "../histogram.h"
#include "../image_ops.h"
#include "../psnr.h"
#include "../vifp_stats.h"
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
                                                   c10::string_view padding, double cov_norm, bool nonnegative_cs) {
  check_ssim_args(x, y, window, std::string(padding));
  const SsimGeometry g = ssim_geometry(x, window, std::string(padding));
  check_cuda(x, "ssim_stats");
  check_int_geometry(g);
  return ssim_stats_launch(x, y, g, window, c1, c2, cov_norm, nonnegative_cs);
}

std::tuple<at::Tensor, at::Tensor> ssim_stats_backward_cuda(const at::Tensor& grad_ssim, const at::Tensor& grad_cs,
                                                            const at::Tensor& x, const at::Tensor& y,
                                                            at::ArrayRef<double> window, double c1, double c2,
                                                            c10::string_view padding, double cov_norm,
                                                            bool nonnegative_cs) {
  check_ssim_backward_args(grad_ssim, grad_cs, x, y, window, std::string(padding));
  const SsimGeometry g = ssim_geometry(x, window, std::string(padding));
  check_cuda(x, "ssim_stats backward");
  check_int_geometry(g);
  return ssim_stats_backward_launch(grad_ssim, grad_cs, x, y, g, window, c1, c2, cov_norm, nonnegative_cs);
}

std::tuple<at::Tensor, at::Tensor> squared_error_sum_cuda(const at::Tensor& x, const at::Tensor& y) {
  check_pair_images(x, y, "squared_error_sum");
  check_cuda(x, "squared_error_sum");
  return squared_error_sum_launch(x, y);
}

// The CPU kernel's psnr_decibels per image, as ATen ops on the device (N values: no custom kernel needed).
std::tuple<at::Tensor, at::Tensor> psnr_db_cuda(const at::Tensor& x, const at::Tensor& y, double data_range,
                                                double eps, double max_db, c10::string_view reduction_name) {
  const std::string reduction(reduction_name);
  check_psnr_args(x, y, data_range, eps, reduction);
  check_cuda(x, "psnr_db");
  auto [sse, extrema] = squared_error_sum_launch(x, y);
  const double scale = static_cast<double>(x.size(0) > 0 ? x.numel() / x.size(0) : 1) * data_range * data_range;
  at::Tensor db = at::clamp_max(at::log10(sse / scale + eps) * -10.0, max_db);
  if (reduction == "mean") db = db.mean();
  if (reduction == "sum") db = db.sum();
  extrema = at::where(at::isnan(sse).unsqueeze(1), std::numeric_limits<double>::quiet_NaN(), extrema);
  return {db.to(compute_type(x.scalar_type())), extrema};
}

at::Tensor box_downsample_cuda(const at::Tensor& x, int64_t factor, int64_t pad_top, int64_t pad_left, int64_t out_h,
                               int64_t out_w, c10::string_view border_name) {
  const Border border = check_box_downsample(x, factor, pad_top, pad_left, out_h, out_w, std::string(border_name));
  check_cuda(x, "box_downsample");
  TORCH_CHECK(x.size(2) + 2 * factor < INT_MAX && x.size(3) + 2 * factor < INT_MAX,
              "box_downsample: spatial dims too large for the CUDA kernel");
  return box_downsample_launch(x, factor, pad_top, pad_left, out_h, out_w, border);
}

at::Tensor luma_cuda(const at::Tensor& x, at::ArrayRef<double> coeffs, double offset, bool round_to_uint8) {
  check_luma(x, coeffs);
  check_cuda(x, "luma");
  return luma_op_launch(x, coeffs, offset, round_to_uint8);
}

at::Tensor pc_energy_cuda(const at::Tensor& eo, const at::Tensor& threshold, double epsilon, double pc_eps) {
  check_pc_energy(eo, threshold, epsilon, pc_eps);
  const PcShape shape = pc_shape(eo);
  check_cuda(eo, "pc_energy");
  return pc_energy_launch(eo, threshold, shape, epsilon, pc_eps);
}

// Feature distances: prepare_features (cpu/feature_distance.cpp) checks and converts; DISTS reads NCHW on CUDA.
FeaturePair feature_pair_cuda(const char* op, const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight,
                              const at::Tensor& weight2, const at::Tensor& grad, std::optional<int64_t> radius,
                              bool channels_last) {
  check_cuda(f0, op);
  FeaturePair fp = prepare_features(op, f0, f1, weight, weight2, grad, radius, channels_last);
  TORCH_CHECK(fp.layout.batch <= 65535 && fp.layout.channels <= 65535, op,
              ": at most 65535 images and channels in the CUDA kernels, got ", f0.sizes());
  return fp;
}

at::Tensor lpips_distance_cuda(const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight, double eps) {
  return lpips_distance_launch(
      feature_pair_cuda("lpips_distance", f0, f1, weight, at::Tensor(), at::Tensor(), kNoRadius, true), eps);
}

std::tuple<at::Tensor, at::Tensor> lpips_distance_backward_cuda(const at::Tensor& grad, const at::Tensor& f0,
                                                                const at::Tensor& f1, const at::Tensor& weight,
                                                                double eps) {
  const FeaturePair fp =
      feature_pair_cuda("_lpips_distance_backward", f0, f1, weight, at::Tensor(), grad, kNoRadius, true);
  auto [ga, gb] = lpips_distance_backward_launch(fp, grad, eps);
  return {gradient_like_input(f0, ga), gradient_like_input(f1, gb)};
}

at::Tensor dists_layer_cuda(const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& alpha,
                            const at::Tensor& beta, double c1, double c2) {
  return dists_layer_launch(feature_pair_cuda("dists_layer", f0, f1, alpha, beta, at::Tensor(), kNoRadius, false), c1,
                            c2);
}

std::tuple<at::Tensor, at::Tensor> dists_layer_backward_cuda(const at::Tensor& grad, const at::Tensor& f0,
                                                             const at::Tensor& f1, const at::Tensor& alpha,
                                                             const at::Tensor& beta, double c1, double c2) {
  const FeaturePair fp = feature_pair_cuda("_dists_layer_backward", f0, f1, alpha, beta, grad, kNoRadius, false);
  auto [ga, gb] = dists_layer_backward_launch(fp, grad, c1, c2);
  return {gradient_like_input(f0, ga), gradient_like_input(f1, gb)};
}

at::Tensor swd_distance_cuda(const at::Tensor& fd, const at::Tensor& fr, const at::Tensor& weight, int64_t radius,
                             double eps) {
  const FeaturePair fp = feature_pair_cuda("swd_distance", fd, fr, weight, at::Tensor(), at::Tensor(), radius, true);
  return swd_distance_launch(fp, swd_effective_radius("swd_distance", radius, fp.layout), eps);
}

std::tuple<at::Tensor, at::Tensor> swd_distance_backward_cuda(const at::Tensor& grad, const at::Tensor& fd,
                                                              const at::Tensor& fr, const at::Tensor& weight,
                                                              int64_t radius, double eps) {
  const FeaturePair fp = feature_pair_cuda("_swd_distance_backward", fd, fr, weight, at::Tensor(), grad, radius, true);
  auto [ga, gb] = swd_distance_backward_launch(fp, grad, swd_effective_radius("_swd_distance_backward", radius,
                                                                                 fp.layout), eps);
  return {gradient_like_input(fd, ga), gradient_like_input(fr, gb)};
}

// Histogram intersection: the shared checks, then NCHW contiguous maps for the kernels.
// The finest-level cell sums run one block per (image, channel, cell): N x K x 4^(levels-1) blocks on grid.x.
void check_histogram_cuda(const at::Tensor& fd, int64_t levels, const char* op) {
  check_cuda(fd, op);
  const int64_t cells = int64_t{1} << (2 * (levels - 1));
  TORCH_CHECK(fd.size(0) * fd.size(1) <= INT_MAX / cells, op, ": N x K x 4^(levels-1) = ", fd.size(0), " x ",
              fd.size(1), " x ", cells, " cells exceed the CUDA kernel's grid (at most 2^31 - 1)");
}

at::Tensor histogram_intersection_cuda(const at::Tensor& fd, const at::Tensor& fr, int64_t levels) {
  check_histogram_args("histogram_intersection", fd, fr, at::Tensor(), levels);
  check_histogram_cuda(fd, levels, "histogram_intersection");
  return histogram_intersection_launch(fd.contiguous(), fr.contiguous(), levels);
}

std::tuple<at::Tensor, at::Tensor> histogram_intersection_backward_cuda(const at::Tensor& grad, const at::Tensor& fd,
                                                                        const at::Tensor& fr, int64_t levels) {
  check_histogram_args("_histogram_intersection_backward", fd, fr, grad, levels);
  check_histogram_cuda(fd, levels, "_histogram_intersection_backward");
  auto [gd, gr] = histogram_intersection_backward_launch(grad, fd.contiguous(), fr.contiguous(), levels);
  return {gradient_like_input(fd, gd), gradient_like_input(fr, gr)};
}

// Gradient similarity: the shared checks, then contiguous compute-dtype planes for the kernels.
void check_grad_sim_cuda(const at::Tensor& x, const char* op) {
  check_cuda(x, op);
  TORCH_CHECK(x.size(2) < INT_MAX / 4 && x.size(3) < INT_MAX / 4 && x.size(2) * x.size(3) < INT_MAX / 2, op,
              ": spatial dims too large for the CUDA kernel, got ", x.sizes());
}

at::Tensor gradient_similarity_cuda(const at::Tensor& x_in, const at::Tensor& y_in, at::ArrayRef<double> smooth,
                                   double scale, double c, double alpha, double eps, c10::string_view padding_name,
                                   c10::string_view output_name) {
  const std::string padding(padding_name), output(output_name);
  check_grad_sim_args(x_in, y_in, smooth, scale, c, alpha, eps, padding, output);
  check_grad_sim_cuda(x_in, "gradient_similarity");
  const bool valid = grad_sim_valid(padding);
  const bool moments = grad_sim_output(output) == GradSimOutput::Moments;
  const auto dt = compute_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  std::vector<int64_t> shape;
  for (const auto& s : grad_sim_output_shape(x_in, padding, output)) shape.push_back(s.expect_int());
  at::Tensor out = at::empty(shape, x.options().dtype(moments ? at::kDouble : dt));
  if (x.numel() == 0) return out.zero_();
  gradient_similarity_launch(x, y, valid, moments, smooth, scale, c, alpha, eps, out);
  return out;
}

std::tuple<at::Tensor, at::Tensor> gradient_similarity_backward_cuda(
    const at::Tensor& grad_in, const at::Tensor& x_in, const at::Tensor& y_in, at::ArrayRef<double> smooth,
    double scale, double c, double alpha, double eps, c10::string_view padding_name, c10::string_view output_name) {
  return grad_sim_backward(
      grad_in, x_in, y_in, smooth, scale, c, alpha, eps, std::string(padding_name), std::string(output_name),
      [](const at::Tensor& x) { check_grad_sim_cuda(x, "_gradient_similarity_backward"); },
      [&](const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y, bool valid, bool moments, at::Tensor& dx,
          at::Tensor& dy) {
        gradient_similarity_backward_launch(grad, x, y, valid, moments, smooth, scale, c, alpha, eps, dx, dy);
      });
}

// decimate2: the shared checks, then contiguous planes.
at::Tensor decimate2_cuda(const at::Tensor& x_in, at::ArrayRef<double> window) {
  check_decimate_args(x_in, window);
  check_cuda(x_in, "decimate2");
  TORCH_CHECK(x_in.size(2) * x_in.size(3) < INT_MAX / 2, "decimate2: spatial dims too large for the CUDA kernel, got ",
              x_in.sizes());
  const int64_t k = static_cast<int64_t>(window.size());
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), x.size(1), (x.size(2) - k) / 2 + 1, (x.size(3) - k) / 2 + 1}, x.options());
  if (out.numel() > 0) decimate2_launch(x, window, out);
  return out;
}

at::Tensor decimate2_backward_cuda(const at::Tensor& grad_in, const at::Tensor& x, at::ArrayRef<double> window) {
  check_decimate_backward_args(grad_in, x, window);
  check_cuda(x, "_decimate2_backward");
  TORCH_CHECK(x.size(2) * x.size(3) < INT_MAX / 2, "_decimate2_backward: spatial dims too large for the CUDA kernel, "
              "got ", x.sizes());
  const at::Tensor grad = grad_in.contiguous();
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (dx.numel() == 0) return dx;
  if (grad.numel() == 0) return dx.zero_();
  decimate2_backward_launch(grad, x, window, dx);
  return dx;
}

std::tuple<at::Tensor, at::Tensor> vifp_stats_cuda(const at::Tensor& x, const at::Tensor& y,
                                                   at::ArrayRef<double> window, double sigma_nsq, double eps,
                                                   double floor_rel, c10::string_view padding) {
  check_vifp_args(x, y, window, sigma_nsq, eps, floor_rel, std::string(padding));
  const SsimGeometry g = ssim_geometry(x, window, std::string(padding));
  check_cuda(x, "vifp_stats");
  check_int_geometry(g);
  return vifp_stats_launch(x, y, g, window, sigma_nsq, eps, floor_rel);
}

std::tuple<at::Tensor, at::Tensor> vifp_stats_backward_cuda(const at::Tensor& grad_num, const at::Tensor& grad_den,
                                                            const at::Tensor& x, const at::Tensor& y,
                                                            at::ArrayRef<double> window, double sigma_nsq,
                                                            double eps, double floor_rel, c10::string_view padding) {
  check_vifp_backward_args(grad_num, grad_den, x, y, window, sigma_nsq, eps, floor_rel, std::string(padding));
  const SsimGeometry g = ssim_geometry(x, window, std::string(padding));
  check_cuda(x, "vifp_stats backward");
  check_int_geometry(g);
  return vifp_stats_backward_launch(grad_num, grad_den, x, y, g, window, sigma_nsq, eps, floor_rel);
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CUDA, m) {
  m.impl("ssim_stats", &ssim_stats_cuda);
  m.impl("_ssim_stats_backward", &ssim_stats_backward_cuda);
  m.impl("squared_error_sum", &squared_error_sum_cuda);
  m.impl("psnr_db", &psnr_db_cuda);
  m.impl("box_downsample", &box_downsample_cuda);
  m.impl("luma", &luma_cuda);
  m.impl("pc_energy", &pc_energy_cuda);
  m.impl("lpips_distance", &lpips_distance_cuda);
  m.impl("_lpips_distance_backward", &lpips_distance_backward_cuda);
  m.impl("dists_layer", &dists_layer_cuda);
  m.impl("_dists_layer_backward", &dists_layer_backward_cuda);
  m.impl("swd_distance", &swd_distance_cuda);
  m.impl("_swd_distance_backward", &swd_distance_backward_cuda);
  m.impl("histogram_intersection", &histogram_intersection_cuda);
  m.impl("_histogram_intersection_backward", &histogram_intersection_backward_cuda);
  m.impl("gradient_similarity", &gradient_similarity_cuda);
  m.impl("vifp_stats", &vifp_stats_cuda);
  m.impl("_vifp_stats_backward", &vifp_stats_backward_cuda);
  m.impl("_gradient_similarity_backward", &gradient_similarity_backward_cuda);
  m.impl("decimate2", &decimate2_cuda);
  m.impl("_decimate2_backward", &decimate2_backward_cuda);
}

// grey_planes (appended block): checks here, the kernel in grey_planes.cu (launcher declared in launch.h).
namespace {

std::tuple<at::Tensor, at::Tensor> grey_planes_cuda(const at::Tensor& x, at::ArrayRef<double> coeffs, double scale,
                                                    c10::string_view rounding, int64_t factor, int64_t pad_top,
                                                    int64_t pad_left, int64_t out_h, int64_t out_w) {
  const GreyRounding mode =
      check_grey_planes(x, coeffs, scale, std::string(rounding), factor, pad_top, pad_left, out_h, out_w);
  check_cuda(x, "grey_planes");
  return grey_planes_launch(x, coeffs, scale, mode, factor, pad_top, pad_left, out_h, out_w);
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CUDA, m) { m.impl("grey_planes", &grey_planes_cuda); }

// cvvdp (appended block): the shared checks (cvvdp_band.h), then contiguous tensors for the kernels in
// cvvdp_band.cu (band pool, sRGB -> DKL) and cvvdp_pyramid.cu.
namespace {

void check_cvvdp_cuda(const at::Tensor& x, const char* op) {
  check_cuda(x, op);
  TORCH_CHECK(x.size(2) < INT_MAX / 4 && x.size(3) < INT_MAX / 4, op,
              ": spatial dims too large for the CUDA kernel, got ", x.sizes());
}

void check_cvvdp_csf_cuda(at::ArrayRef<double> csf, const char* op) {
  TORCH_CHECK(static_cast<int64_t>(csf.size()) <= kCvvdpCudaMaxCsf, op, ": the CUDA kernel takes at most ",
              kCvvdpCudaMaxCsf, " csf values (C x L), got ", csf.size());
}

at::Tensor cvvdp_band_pool_cuda(const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
                                at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain,
                                at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm, double mask_c, double mask_p,
                                double d_max) {
  check_cvvdp_band_args(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max);
  check_cvvdp_cuda(test, "cvvdp_band_pool");
  check_cvvdp_csf_cuda(csf, "cvvdp_band_pool");
  return cvvdp_band_pool_launch(test.contiguous(), ref.contiguous(), log_bkg.contiguous(), csf, log_l_lo, log_l_hi,
                                gain, mask_q, xcm, mask_c, mask_p, d_max);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cvvdp_band_pool_backward_cuda(
    const at::Tensor& grad, const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
    at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain, at::ArrayRef<double> mask_q,
    at::ArrayRef<double> xcm, double mask_c, double mask_p, double d_max) {
  check_cvvdp_band_backward_args(grad, test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                                 d_max);
  check_cvvdp_cuda(test, "_cvvdp_band_pool_backward");
  check_cvvdp_csf_cuda(csf, "_cvvdp_band_pool_backward");
  return cvvdp_band_pool_backward_launch(grad.to(at::kDouble).contiguous(), test.contiguous(), ref.contiguous(),
                                         log_bkg.contiguous(), csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c,
                                         mask_p, d_max);
}

std::tuple<at::Tensor, at::Tensor> cvvdp_pyramid_step_cuda(const at::Tensor& planes) {
  check_cvvdp_pyramid_args(planes);
  check_cvvdp_cuda(planes, "cvvdp_pyramid_step");
  return cvvdp_pyramid_step_launch(planes.contiguous());
}

at::Tensor cvvdp_pyramid_step_backward_cuda(const at::Tensor& grad_reduced, const at::Tensor& grad_expanded,
                                            const at::Tensor& planes) {
  check_cvvdp_pyramid_backward_args(grad_reduced, grad_expanded, planes);
  check_cvvdp_cuda(planes, "_cvvdp_pyramid_step_backward");
  return cvvdp_pyramid_step_backward_launch(grad_reduced.contiguous(), grad_expanded.contiguous(), planes);
}

at::Tensor cvvdp_srgb_to_dkl_cuda(const at::Tensor& x, at::ArrayRef<double> matrix, at::ArrayRef<double> bias,
                                  double data_range) {
  check_cvvdp_srgb_args(x, matrix, bias, data_range);
  check_cvvdp_cuda(x, "cvvdp_srgb_to_dkl");
  return cvvdp_srgb_to_dkl_launch(x.contiguous(), matrix, bias, data_range);
}

at::Tensor cvvdp_srgb_to_dkl_backward_cuda(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> matrix,
                                           at::ArrayRef<double> bias, double data_range) {
  check_cvvdp_srgb_backward_args(grad, x, matrix, bias, data_range);
  check_cvvdp_cuda(x, "_cvvdp_srgb_to_dkl_backward");
  return cvvdp_srgb_to_dkl_backward_launch(grad.contiguous(), x.contiguous(), matrix, data_range);
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CUDA, m) {
  m.impl("cvvdp_band_pool", &cvvdp_band_pool_cuda);
  m.impl("_cvvdp_band_pool_backward", &cvvdp_band_pool_backward_cuda);
  m.impl("cvvdp_pyramid_step", &cvvdp_pyramid_step_cuda);
  m.impl("_cvvdp_pyramid_step_backward", &cvvdp_pyramid_step_backward_cuda);
  m.impl("cvvdp_srgb_to_dkl", &cvvdp_srgb_to_dkl_cuda);
  m.impl("_cvvdp_srgb_to_dkl_backward", &cvvdp_srgb_to_dkl_backward_cuda);
}

}  // namespace turboiqa::cuda
