// Launchers of the CUDA kernels (defined in the .cu files), called by the operator entry points in ops_cuda.cpp.
// Arguments arrive validated: every check that can throw runs in ops_cuda.cpp, compiled by the host compiler, so
// that no exception has to unwind through an nvcc-compiled frame (that crashed on one GPU machine, see
// ops_cuda.cpp).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <utility>

#include "../border.h"
#include "../feature_distance.h"
#include "../grey_planes.h"
#include "../phase_congruency.h"
#include "../ssim_stats.h"

namespace turboiqa::cuda {

std::tuple<at::Tensor, at::Tensor> ssim_stats_launch(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& g,
                                                     at::ArrayRef<double> window, double c1, double c2,
                                                     double cov_norm, bool nonnegative_cs);
std::tuple<at::Tensor, at::Tensor> ssim_stats_backward_launch(const at::Tensor& grad_ssim, const at::Tensor& grad_cs,
                                                              const at::Tensor& x, const at::Tensor& y,
                                                              const SsimGeometry& g, at::ArrayRef<double> window,
                                                              double c1, double c2, double cov_norm,
                                                              bool nonnegative_cs);
std::tuple<at::Tensor, at::Tensor> squared_error_sum_launch(const at::Tensor& x, const at::Tensor& y);
at::Tensor box_downsample_launch(const at::Tensor& x, int64_t factor, int64_t pad_top, int64_t pad_left,
                                 int64_t out_h, int64_t out_w, Border border);
at::Tensor luma_op_launch(const at::Tensor& x, at::ArrayRef<double> coeffs, double offset, bool round_to_uint8);
at::Tensor pc_energy_launch(const at::Tensor& eo, const at::Tensor& threshold, const PcShape& shape, double epsilon,
                            double pc_eps);
// Feature distances (feature_distance.cu): pairs prepared by prepare_features; backward launchers return the
// gradients in the pair's compute dtype and layout.
at::Tensor lpips_distance_launch(const FeaturePair& fp, double eps);
std::tuple<at::Tensor, at::Tensor> lpips_distance_backward_launch(const FeaturePair& fp, const at::Tensor& grad,
                                                                  double eps);
at::Tensor dists_layer_launch(const FeaturePair& fp, double c1, double c2);
std::tuple<at::Tensor, at::Tensor> dists_layer_backward_launch(const FeaturePair& fp, const at::Tensor& grad,
                                                               double c1, double c2);
at::Tensor swd_distance_launch(const FeaturePair& fp, int64_t radius, double eps);
std::tuple<at::Tensor, at::Tensor> swd_distance_backward_launch(const FeaturePair& fp, const at::Tensor& grad,
                                                                int64_t radius, double eps);
// Spatial-pyramid histogram intersection (histogram.cu): fd/fr NCHW contiguous, float32/float64, checked.
at::Tensor histogram_intersection_launch(const at::Tensor& fd, const at::Tensor& fr, int64_t levels);
std::tuple<at::Tensor, at::Tensor> histogram_intersection_backward_launch(const at::Tensor& grad, const at::Tensor& fd,
                                                                          const at::Tensor& fr, int64_t levels);

// VIFp of one scale (ssim_stats.cu, the SSIM tile kernels with the VIFp statistic): per-plane float64 sums.
std::tuple<at::Tensor, at::Tensor> vifp_stats_launch(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& g,
                                                     at::ArrayRef<double> window, double sigma_nsq, double eps,
                                                     double floor_rel);
std::tuple<at::Tensor, at::Tensor> vifp_stats_backward_launch(const at::Tensor& grad_num, const at::Tensor& grad_den,
                                                              const at::Tensor& x, const at::Tensor& y,
                                                              const SsimGeometry& g, at::ArrayRef<double> window,
                                                              double sigma_nsq, double eps, double floor_rel);

// Gradient similarity (gradient_similarity.cu): x, y contiguous in the compute dtype, checked; out (the map, or the
// (N, C, 2) float64 moments) and dx, dy (compute dtype, x's shape) allocated by the caller.
void gradient_similarity_launch(const at::Tensor& x, const at::Tensor& y, bool valid, bool moments,
                                at::ArrayRef<double> smooth, double scale, double c, double alpha, double eps,
                                at::Tensor& out);
void gradient_similarity_backward_launch(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y, bool valid,
                                         bool moments, at::ArrayRef<double> smooth, double scale, double c,
                                         double alpha, double eps, at::Tensor& dx, at::Tensor& dy);
// decimate2 (decimate.cu): x (and grad) contiguous float32/float64, checked; out / dx allocated by the caller.
void decimate2_launch(const at::Tensor& x, at::ArrayRef<double> window, at::Tensor& out);
void decimate2_backward_launch(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> window,
                               at::Tensor& dx);

// grey_planes (grey_planes.cu): x checked by check_grey_planes; returns (planes, per-image extrema).
std::tuple<at::Tensor, at::Tensor> grey_planes_launch(const at::Tensor& x, at::ArrayRef<double> coeffs, double scale,
                                                      GreyRounding mode, int64_t factor, int64_t pad_top,
                                                      int64_t pad_left, int64_t out_h, int64_t out_w);

// Grid-stride kernels (one thread per item, each thread looping with stride gridDim.x * threads): the blocks for
// `total` items, at least 1 (a launch with 0 blocks is an error) and at most kMaxFlatBlocks. Host code only.
constexpr int64_t kMaxFlatBlocks = int64_t(1) << 20;

inline unsigned flat_grid(int64_t total, int threads) {
  return static_cast<unsigned>(std::clamp<int64_t>((total + threads - 1) / threads, 1, kMaxFlatBlocks));
}

// The kernels that put one plane (or image) per grid row launch in batches of at most kMaxPlaneBatch planes
// (grid.y's limit): fn(first, count) launches planes [first, first + count), count <= kMaxPlaneBatch, in ascending
// order on the caller's stream; the kernel adds `first` to blockIdx.y. The three-argument form takes a smaller
// batch (e.g. the planes whose temporaries fit a memory budget), clamped to [1, kMaxPlaneBatch]. Host code only
// (the launch and its C10_CUDA_KERNEL_LAUNCH_CHECK go in fn).
constexpr int64_t kMaxPlaneBatch = 65535;

template <typename Fn>
inline void for_plane_batches(int64_t planes, int64_t batch, Fn&& fn) {
  batch = std::clamp<int64_t>(batch, 1, kMaxPlaneBatch);
  for (int64_t first = 0; first < planes; first += batch)
    fn(first, static_cast<unsigned>(std::min(batch, planes - first)));
}

template <typename Fn>
inline void for_plane_batches(int64_t planes, Fn&& fn) {
  for_plane_batches(planes, kMaxPlaneBatch, std::forward<Fn>(fn));
}

// cvvdp (cvvdp_band.cu, cvvdp_pyramid.cu): tensors contiguous, float32/float64, checked (ops_cuda.cpp); outputs
// allocated here. cvvdp_band_pool_launch returns N x C float64; the backward (dtest, dref, dlog_bkg).
at::Tensor cvvdp_band_pool_launch(const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
                                  at::ArrayRef<double> csf, double log_l_lo, double log_l_hi,
                                  at::ArrayRef<double> gain, at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm,
                                  double mask_c, double mask_p, double d_max);
std::tuple<at::Tensor, at::Tensor, at::Tensor> cvvdp_band_pool_backward_launch(
    const at::Tensor& grad, const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
    at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain, at::ArrayRef<double> mask_q,
    at::ArrayRef<double> xcm, double mask_c, double mask_p, double d_max);
at::Tensor cvvdp_srgb_to_dkl_launch(const at::Tensor& x, at::ArrayRef<double> matrix, at::ArrayRef<double> bias,
                                    double data_range);
at::Tensor cvvdp_srgb_to_dkl_backward_launch(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> matrix,
                                             double data_range);
std::tuple<at::Tensor, at::Tensor> cvvdp_pyramid_step_launch(const at::Tensor& planes);
at::Tensor cvvdp_pyramid_step_backward_launch(const at::Tensor& grad_reduced, const at::Tensor& grad_expanded,
                                              const at::Tensor& planes);
// At most this many CSF table values (C x L) on CUDA: the table travels in the kernel's parameters.
constexpr int64_t kCvvdpCudaMaxCsf = 256;

}  // namespace turboiqa::cuda
