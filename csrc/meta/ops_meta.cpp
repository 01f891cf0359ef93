// Meta kernels of every operator: the argument checks of the CPU and CUDA entries (the same functions, from the
// shared headers), then empty outputs of the shapes, dtypes and layouts the real kernels return.
//
// They are also the fake kernels: FakeTensorMode (torch.compile, opcheck) runs an operator's Meta kernel on the fake
// tensors, which read as 'meta' inside it, so there is no Python copy of the shapes or the checks (_ops.py registers
// none). The checks read sizes as sym_sizes, so tracing with dynamic shapes works and guards on what they compare.
#include <ATen/ATen.h>
#include <c10/util/StringUtil.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "../decimate.h"
#include "../dtypes.h"
#include "../feature_distance.h"
#include "../gradient_similarity.h"
#include "../grey_planes.h"
#include "../grey_gradient_moments.h"
#include "../histogram.h"
#include "../image_ops.h"
#include "../iw_ssim.h"
#include "../phase_congruency.h"
#include "../psnr.h"
#include "../ssim_stats.h"
#include "../vifp_stats.h"
#include "../cvvdp_band.h"
#include "../cvvdp_weber.h"

namespace turboiqa::meta {

namespace {

// A call mixing 'meta' with CPU tensors dispatches here; answering it would hand uninitialised memory to the CPU
// caller, so every tensor must be on 'meta' (fake tensors read as 'meta' here, whatever device they stand for).
void check_all_meta(const char* op, std::initializer_list<std::optional<at::Tensor>> tensors) {
  bool mixed = false;
  for (const auto& t : tensors) mixed = mixed || (t && t->defined() && !t->is_meta());
  if (!mixed) return;
  std::vector<std::string> devices;
  for (const auto& t : tensors)
    if (t && t->defined()) devices.push_back(t->device().str());
  TORCH_CHECK(false, op, ": all tensors must be on one device, got [", c10::Join(", ", devices), "]");
}

at::TensorOptions compute_options(const at::Tensor& x) { return x.options().dtype(compute_type(x.scalar_type())); }

std::tuple<at::Tensor, at::Tensor> ssim_stats_meta(const at::Tensor& x, const at::Tensor& y,
                                                   at::ArrayRef<double> window, double, double,
                                                   c10::string_view padding, double, bool) {
  check_all_meta("ssim_stats", {x, y});
  check_ssim_args(x, y, window, std::string(padding));
  at::Tensor out = at::empty_symint({x.sym_size(0), x.sym_size(1)}, compute_options(x));
  return {out, at::empty_like(out)};
}

std::tuple<at::Tensor, at::Tensor> ssim_stats_backward_meta(const at::Tensor& grad_ssim, const at::Tensor& grad_cs,
                                                            const at::Tensor& x, const at::Tensor& y,
                                                            at::ArrayRef<double> window, double, double,
                                                            c10::string_view padding, double, bool) {
  check_all_meta("_ssim_stats_backward", {grad_ssim, grad_cs, x, y});
  check_ssim_backward_args(grad_ssim, grad_cs, x, y, window, std::string(padding));
  return {at::empty_symint(x.sym_sizes(), x.options()), at::empty_symint(y.sym_sizes(), y.options())};
}

std::tuple<at::Tensor, at::Tensor> squared_error_sum_meta(const at::Tensor& x, const at::Tensor& y) {
  check_all_meta("squared_error_sum", {x, y});
  check_pair_images(x, y, "squared_error_sum");
  const auto doubles = x.options().dtype(at::kDouble);
  return {at::empty_symint({x.sym_size(0)}, doubles), at::empty_symint({x.sym_size(0), 4}, doubles)};
}

std::tuple<at::Tensor, at::Tensor> psnr_db_meta(const at::Tensor& x, const at::Tensor& y, double data_range,
                                                double eps, double, c10::string_view reduction_name) {
  check_all_meta("psnr_db", {x, y});
  const std::string reduction(reduction_name);
  check_psnr_args(x, y, data_range, eps, reduction);
  const std::vector<c10::SymInt> shape =
      reduction == "none" ? std::vector<c10::SymInt>{x.sym_size(0)} : std::vector<c10::SymInt>{};
  return {at::empty_symint(shape, compute_options(x)),
          at::empty_symint({x.sym_size(0), 4}, x.options().dtype(at::kDouble))};
}

at::Tensor box_downsample_meta(const at::Tensor& x, int64_t factor, int64_t pad_top, int64_t pad_left, int64_t out_h,
                               int64_t out_w, c10::string_view border) {
  check_all_meta("box_downsample", {x});
  check_box_downsample(x, factor, pad_top, pad_left, out_h, out_w, std::string(border));
  return at::empty_symint({x.sym_size(0), x.sym_size(1), out_h, out_w}, compute_options(x));
}

at::Tensor luma_meta(const at::Tensor& x, at::ArrayRef<double> coeffs, double, bool round_to_uint8) {
  check_all_meta("luma", {x});
  check_luma(x, coeffs);
  const bool to_u8 = round_to_uint8 && x.scalar_type() == at::kByte;
  return at::empty_symint({x.sym_size(0), 1, x.sym_size(2), x.sym_size(3)},
                          to_u8 ? x.options() : compute_options(x));
}

at::Tensor pc_energy_meta(const at::Tensor& eo, const at::Tensor& threshold, double epsilon, double pc_eps) {
  check_all_meta("pc_energy", {eo, threshold});
  check_pc_energy(eo, threshold, epsilon, pc_eps);
  return at::empty_symint({eo.sym_size(0), eo.sym_size(1), eo.sym_size(4), eo.sym_size(5)}, eo.options());
}

// Feature distances: (N,) in the compute dtype; the backward's gradients like their inputs (gradient_like_input).
at::Tensor feature_distance_meta(const at::Tensor& f0) {
  return at::empty_symint({f0.sym_size(0)}, compute_options(f0));
}

at::Tensor lpips_distance_meta(const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight, double) {
  check_all_meta("lpips_distance", {f0, f1, weight});
  check_feature_args("lpips_distance", f0, f1, weight, at::Tensor(), at::Tensor(), kNoRadius);
  return feature_distance_meta(f0);
}

std::tuple<at::Tensor, at::Tensor> lpips_distance_backward_meta(const at::Tensor& grad, const at::Tensor& f0,
                                                                const at::Tensor& f1, const at::Tensor& weight,
                                                                double) {
  check_all_meta("_lpips_distance_backward", {grad, f0, f1, weight});
  check_feature_args("_lpips_distance_backward", f0, f1, weight, at::Tensor(), grad, kNoRadius);
  return {at::empty_like(f0), at::empty_like(f1)};
}

at::Tensor dists_layer_meta(const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& alpha,
                            const at::Tensor& beta, double, double) {
  check_all_meta("dists_layer", {f0, f1, alpha, beta});
  check_feature_args("dists_layer", f0, f1, alpha, beta, at::Tensor(), kNoRadius);
  return feature_distance_meta(f0);
}

std::tuple<at::Tensor, at::Tensor> dists_layer_backward_meta(const at::Tensor& grad, const at::Tensor& f0,
                                                             const at::Tensor& f1, const at::Tensor& alpha,
                                                             const at::Tensor& beta, double, double) {
  check_all_meta("_dists_layer_backward", {grad, f0, f1, alpha, beta});
  check_feature_args("_dists_layer_backward", f0, f1, alpha, beta, grad, kNoRadius);
  return {at::empty_like(f0), at::empty_like(f1)};
}

at::Tensor swd_distance_meta(const at::Tensor& fd, const at::Tensor& fr, const at::Tensor& weight, int64_t radius,
                             double) {
  check_all_meta("swd_distance", {fd, fr, weight});
  check_feature_args("swd_distance", fd, fr, weight, at::Tensor(), at::Tensor(), radius);
  check_swd_radius("swd_distance", radius, fd.sym_size(2), fd.sym_size(3));
  return feature_distance_meta(fd);
}

std::tuple<at::Tensor, at::Tensor> swd_distance_backward_meta(const at::Tensor& grad, const at::Tensor& fd,
                                                              const at::Tensor& fr, const at::Tensor& weight,
                                                              int64_t radius, double) {
  check_all_meta("_swd_distance_backward", {grad, fd, fr, weight});
  check_feature_args("_swd_distance_backward", fd, fr, weight, at::Tensor(), grad, radius);
  check_swd_radius("_swd_distance_backward", radius, fd.sym_size(2), fd.sym_size(3));
  return {at::empty_like(fd), at::empty_like(fr)};
}

at::Tensor histogram_intersection_meta(const at::Tensor& fd, const at::Tensor& fr, int64_t levels) {
  check_all_meta("histogram_intersection", {fd, fr});
  check_histogram_args("histogram_intersection", fd, fr, at::Tensor(), levels);
  return at::empty_symint({fd.sym_size(0), c10::SymInt(levels)}, fd.options().memory_format(at::MemoryFormat::Contiguous));
}

std::tuple<at::Tensor, at::Tensor> histogram_intersection_backward_meta(const at::Tensor& grad, const at::Tensor& fd,
                                                                        const at::Tensor& fr, int64_t levels) {
  check_all_meta("_histogram_intersection_backward", {grad, fd, fr});
  check_histogram_args("_histogram_intersection_backward", fd, fr, grad, levels);
  return {at::empty_like(fd), at::empty_like(fr)};
}

std::tuple<at::Tensor, at::Tensor> laplacian_level_meta(const at::Tensor& planes, c10::string_view expand) {
  check_all_meta("laplacian_level", {planes});
  check_laplacian_level(planes, std::string(expand));
  const auto half = [](const c10::SymInt& n) { return (n + 1) / 2; };
  return {at::empty_symint(planes.sym_sizes(), planes.options()),
          at::empty_symint({planes.sym_size(0), planes.sym_size(1), half(planes.sym_size(2)), half(planes.sym_size(3))},
                           planes.options())};
}

at::Tensor iw_neighbour_covariance_meta(const at::Tensor& band, const std::optional<at::Tensor>& parent,
                                        int64_t blk_size) {
  check_all_meta("iw_neighbour_covariance", {band, parent});
  check_iw_neighbour_covariance(band, parent, blk_size);
  const int64_t k = iw_components(blk_size, parent);
  return at::empty_symint({band.sym_size(0), band.sym_size(1), k, k}, band.options());
}

std::tuple<at::Tensor, at::Tensor> iw_pooled_cs_meta(const at::Tensor& ref, const at::Tensor& dist,
                                                     const std::optional<at::Tensor>& parent,
                                                     const at::Tensor& inverse, const at::Tensor& eigenvalues,
                                                     int64_t blk_size, at::ArrayRef<double> window, double,
                                                     double sigma_nsq, double) {
  check_all_meta("iw_pooled_cs", {ref, dist, parent, inverse, eigenvalues});
  check_iw_pooled_cs(ref, dist, parent, inverse, eigenvalues, blk_size, window, sigma_nsq);
  at::Tensor weighted_cs = at::empty_symint({ref.sym_size(0), ref.sym_size(1)}, ref.options().dtype(at::kDouble));
  return {weighted_cs, at::empty_like(weighted_cs)};
}

at::Tensor gradient_similarity_meta(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> smooth, double scale,
                                   double c, double alpha, double eps, c10::string_view padding_name,
                                   c10::string_view output_name) {
  check_all_meta("gradient_similarity", {x, y});
  const std::string padding(padding_name), output(output_name);
  check_grad_sim_args(x, y, smooth, scale, c, alpha, eps, padding, output);
  const bool moments = grad_sim_output(output) == GradSimOutput::Moments;
  return at::empty_symint(grad_sim_output_shape(x, padding, output),
                          moments ? x.options().dtype(at::kDouble) : compute_options(x));
}

std::tuple<at::Tensor, at::Tensor> vifp_stats_meta(const at::Tensor& x, const at::Tensor& y,
                                                   at::ArrayRef<double> window, double sigma_nsq, double eps,
                                                   double floor_rel, c10::string_view padding) {
  check_all_meta("vifp_stats", {x, y});
  check_vifp_args(x, y, window, sigma_nsq, eps, floor_rel, std::string(padding));
  at::Tensor out = at::empty_symint({x.sym_size(0), x.sym_size(1)}, x.options().dtype(at::kDouble));
  return {out, at::empty_like(out)};
}

std::tuple<at::Tensor, at::Tensor> vifp_stats_backward_meta(const at::Tensor& grad_num, const at::Tensor& grad_den,
                                                            const at::Tensor& x, const at::Tensor& y,
                                                            at::ArrayRef<double> window, double sigma_nsq,
                                                            double eps, double floor_rel, c10::string_view padding) {
  check_all_meta("_vifp_stats_backward", {grad_num, grad_den, x, y});
  check_vifp_backward_args(grad_num, grad_den, x, y, window, sigma_nsq, eps, floor_rel, std::string(padding));
  return {at::empty_symint(x.sym_sizes(), x.options()), at::empty_symint(y.sym_sizes(), y.options())};
}

at::Tensor decimate2_meta(const at::Tensor& x, at::ArrayRef<double> window) {
  check_all_meta("decimate2", {x});
  check_decimate_args(x, window);
  const int64_t k = static_cast<int64_t>(window.size());
  return at::empty_symint({x.sym_size(0), x.sym_size(1), (x.sym_size(2) - k) / 2 + 1, (x.sym_size(3) - k) / 2 + 1},
                          x.options());
}

at::Tensor decimate2_backward_meta(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> window) {
  check_all_meta("_decimate2_backward", {grad, x});
  check_decimate_backward_args(grad, x, window);
  return at::empty_symint(x.sym_sizes(), x.options());
}

at::Tensor cvvdp_band_pool_meta(const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
                                at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain,
                                at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm, double mask_c, double mask_p,
                                double d_max) {
  check_all_meta("cvvdp_band_pool", {test, ref, log_bkg});
  check_cvvdp_band_args(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max);
  return at::empty_symint({test.sym_size(0), test.sym_size(1)}, test.options().dtype(at::kDouble));
}

at::Tensor cvvdp_band_difference_meta(const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
                                      at::ArrayRef<double> csf, double log_l_lo, double log_l_hi,
                                      at::ArrayRef<double> gain, at::ArrayRef<double> mask_q,
                                      at::ArrayRef<double> xcm, double mask_c, double mask_p, double d_max) {
  check_all_meta("cvvdp_band_difference", {test, ref, log_bkg});
  check_cvvdp_band_args(test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max);
  return at::empty_symint(test.sym_sizes(), test.options().memory_format(at::MemoryFormat::Contiguous));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cvvdp_weber_contrast_meta(const at::Tensor& planes,
                                                                       const at::Tensor& expanded) {
  check_all_meta("cvvdp_weber_contrast", {planes, expanded});
  check_cvvdp_weber_args(planes, expanded);
  const auto n = planes.sym_size(0) / 2;
  const auto o = planes.options().memory_format(at::MemoryFormat::Contiguous);
  return {at::empty_symint({n, planes.sym_size(1), planes.sym_size(2), planes.sym_size(3)}, o),
          at::empty_symint({n, planes.sym_size(1), planes.sym_size(2), planes.sym_size(3)}, o),
          at::empty_symint({n, 1, planes.sym_size(2), planes.sym_size(3)}, o)};
}

std::tuple<at::Tensor, at::Tensor> cvvdp_weber_contrast_backward_meta(const at::Tensor& grad_test,
                                                                      const at::Tensor& grad_ref,
                                                                      const at::Tensor& grad_log_bkg,
                                                                      const at::Tensor& planes,
                                                                      const at::Tensor& expanded) {
  check_all_meta("_cvvdp_weber_contrast_backward", {grad_test, grad_ref, grad_log_bkg, planes, expanded});
  check_cvvdp_weber_backward_args(grad_test, grad_ref, grad_log_bkg, planes, expanded);
  const auto o = planes.options().memory_format(at::MemoryFormat::Contiguous);
  return {at::empty_symint(planes.sym_sizes(), o), at::empty_symint(planes.sym_sizes(), o)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cvvdp_band_pool_backward_meta(
    const at::Tensor& grad, const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
    at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain, at::ArrayRef<double> mask_q,
    at::ArrayRef<double> xcm, double mask_c, double mask_p, double d_max) {
  check_all_meta("_cvvdp_band_pool_backward", {grad, test, ref, log_bkg});
  check_cvvdp_band_backward_args(grad, test, ref, log_bkg, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                                 d_max);
  return {at::empty_symint(test.sym_sizes(), test.options()), at::empty_symint(ref.sym_sizes(), ref.options()),
          at::empty_symint(log_bkg.sym_sizes(), log_bkg.options())};
}

std::tuple<at::Tensor, at::Tensor> cvvdp_pyramid_step_meta(const at::Tensor& planes) {
  check_all_meta("cvvdp_pyramid_step", {planes});
  check_cvvdp_pyramid_args(planes);
  return {at::empty_symint({planes.sym_size(0), planes.sym_size(1), (planes.sym_size(2) + 1) / 2,
                            (planes.sym_size(3) + 1) / 2},
                           planes.options()),
          at::empty_symint(planes.sym_sizes(), planes.options())};
}

at::Tensor cvvdp_pyramid_step_backward_meta(const at::Tensor& grad_reduced, const at::Tensor& grad_expanded,
                                            const at::Tensor& planes) {
  check_all_meta("_cvvdp_pyramid_step_backward", {grad_reduced, grad_expanded, planes});
  check_cvvdp_pyramid_backward_args(grad_reduced, grad_expanded, planes);
  return at::empty_symint(planes.sym_sizes(), planes.options());
}

at::Tensor cvvdp_srgb_to_dkl_meta(const at::Tensor& x, at::ArrayRef<double> matrix, at::ArrayRef<double> bias,
                                  double data_range) {
  check_all_meta("cvvdp_srgb_to_dkl", {x});
  check_cvvdp_srgb_args(x, matrix, bias, data_range);
  return at::empty_symint(x.sym_sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
}

at::Tensor cvvdp_srgb_to_dkl_backward_meta(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> matrix,
                                           at::ArrayRef<double> bias, double data_range) {
  check_all_meta("_cvvdp_srgb_to_dkl_backward", {grad, x});
  check_cvvdp_srgb_backward_args(grad, x, matrix, bias, data_range);
  return at::empty_symint(x.sym_sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
}

std::tuple<at::Tensor, at::Tensor> gradient_similarity_backward_meta(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> smooth, double scale,
    double c, double alpha, double eps, c10::string_view padding, c10::string_view output) {
  check_all_meta("_gradient_similarity_backward", {grad, x, y});
  check_grad_sim_backward_args(grad, x, y, smooth, scale, c, alpha, eps, std::string(padding), std::string(output));
  const auto options = x.options().dtype(grad_sim_grad_type(x.scalar_type()));
  return {at::empty_symint(x.sym_sizes(), options), at::empty_symint(x.sym_sizes(), options)};
}

}  // namespace

// _parallel_chunks_probe has none: it tests the CPU work distribution and means nothing on another device.
TORCH_LIBRARY_IMPL(turboiqa, Meta, m) {
  m.impl("ssim_stats", &ssim_stats_meta);
  m.impl("_ssim_stats_backward", &ssim_stats_backward_meta);
  m.impl("squared_error_sum", &squared_error_sum_meta);
  m.impl("psnr_db", &psnr_db_meta);
  m.impl("box_downsample", &box_downsample_meta);
  m.impl("luma", &luma_meta);
  m.impl("pc_energy", &pc_energy_meta);
  m.impl("lpips_distance", &lpips_distance_meta);
  m.impl("_lpips_distance_backward", &lpips_distance_backward_meta);
  m.impl("dists_layer", &dists_layer_meta);
  m.impl("_dists_layer_backward", &dists_layer_backward_meta);
  m.impl("swd_distance", &swd_distance_meta);
  m.impl("_swd_distance_backward", &swd_distance_backward_meta);
  m.impl("histogram_intersection", &histogram_intersection_meta);
  m.impl("_histogram_intersection_backward", &histogram_intersection_backward_meta);
  m.impl("laplacian_level", &laplacian_level_meta);
  m.impl("iw_neighbour_covariance", &iw_neighbour_covariance_meta);
  m.impl("iw_pooled_cs", &iw_pooled_cs_meta);
  m.impl("gradient_similarity", &gradient_similarity_meta);
  m.impl("vifp_stats", &vifp_stats_meta);
  m.impl("_vifp_stats_backward", &vifp_stats_backward_meta);
  m.impl("decimate2", &decimate2_meta);
  m.impl("_decimate2_backward", &decimate2_backward_meta);
  m.impl("cvvdp_band_pool", &cvvdp_band_pool_meta);
  m.impl("_cvvdp_band_pool_backward", &cvvdp_band_pool_backward_meta);
  m.impl("cvvdp_pyramid_step", &cvvdp_pyramid_step_meta);
  m.impl("_cvvdp_pyramid_step_backward", &cvvdp_pyramid_step_backward_meta);
  m.impl("cvvdp_srgb_to_dkl", &cvvdp_srgb_to_dkl_meta);
  m.impl("_cvvdp_srgb_to_dkl_backward", &cvvdp_srgb_to_dkl_backward_meta);
  m.impl("cvvdp_band_difference", &cvvdp_band_difference_meta);
  m.impl("cvvdp_weber_contrast", &cvvdp_weber_contrast_meta);
  m.impl("_cvvdp_weber_contrast_backward", &cvvdp_weber_contrast_backward_meta);
  m.impl("_gradient_similarity_backward", &gradient_similarity_backward_meta);
}

// grey_planes (appended block)
namespace {

std::tuple<at::Tensor, at::Tensor> grey_planes_meta(const at::Tensor& x, at::ArrayRef<double> coeffs, double scale,
                                                    c10::string_view rounding, int64_t factor, int64_t pad_top,
                                                    int64_t pad_left, int64_t out_h, int64_t out_w) {
  check_all_meta("grey_planes", {x});
  check_grey_planes(x, coeffs, scale, std::string(rounding), factor, pad_top, pad_left, out_h, out_w);
  at::Tensor planes = at::empty_symint({x.sym_size(0), grey_planes_count(x, coeffs), c10::SymInt(out_h),
                                        c10::SymInt(out_w)}, compute_options(x));
  return {planes, at::empty_symint({x.sym_size(0), c10::SymInt(2)}, x.options().dtype(at::kDouble))};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, Meta, m) { m.impl("grey_planes", &grey_planes_meta); }

// grey_gradient_moments (appended block)
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> grey_gradient_moments_meta(
    const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> coeffs, double scale, c10::string_view rounding,
    int64_t factor, int64_t pad_top, int64_t pad_left, int64_t out_h, int64_t out_w, at::ArrayRef<double> smooth,
    double grad_scale, double c, double alpha, double eps, c10::string_view padding) {
  check_all_meta("grey_gradient_moments", {x, y});
  bool valid = false;
  check_grey_gradient_moments(x, y, coeffs, scale, std::string(rounding), factor, pad_top, pad_left, out_h, out_w,
                              smooth, grad_scale, c, alpha, eps, std::string(padding), &valid);
  const auto opts = x.options().dtype(at::kDouble);
  at::Tensor moments = at::empty_symint({x.sym_size(0), grey_planes_count(x, coeffs), c10::SymInt(2)}, opts);
  return {moments, at::empty_symint({x.sym_size(0), c10::SymInt(2)}, opts),
          at::empty_symint({x.sym_size(0), c10::SymInt(2)}, opts)};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, Meta, m) { m.impl("grey_gradient_moments", &grey_gradient_moments_meta); }

}  // namespace turboiqa::meta
