// Feature distances of the deep metrics, shared by the CPU and CUDA kernels: LPIPS' per-position distance of
// unit-normalised features, DISTS' per-channel global statistics and terms, and PIPAL's spatially-warped
// difference (SWD). The per-position math below is the single definition both devices use.
//
// Layout: a feature image is C x H x W with element (c, p), p = i * W + j, at c * channel_stride +
// p * position_stride: NCHW (channel_stride = H*W, position_stride = 1) or channels-last (1, C). Images are
// C*H*W apart in both. The kernels take both layouts as the backbone hands them over (no copy), except DISTS on
// CUDA, which reads NCHW.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include <cmath>
#include <cstdint>

#include "border.h"  // HOST_DEVICE_INLINE

namespace turboiqa {

struct FeatureLayout {
  int64_t batch, channels, height, width;
  int64_t channel_stride, position_stride;
  bool channels_last;
  HOST_DEVICE_INLINE int64_t positions() const { return height * width; }
  HOST_DEVICE_INLINE int64_t image_stride() const { return channels * height * width; }
};

// Inputs of one operator call after validation: both feature maps in the compute dtype (float32, or float64
// for float64 input) and one memory format, the per-channel vectors flattened to C values of that dtype.
struct FeaturePair {
  at::Tensor a, b, weight, weight2;  // weight2: DISTS' beta, undefined otherwise
  FeatureLayout layout;
};

// prepare_features' radius for the operators without one (an optional, not a sentinel value: any int64 the user
// passes as SWD's radius is checked as a radius; -2^63 used to pass as "no radius").
inline constexpr std::nullopt_t kNoRadius = std::nullopt;

// Host helpers, defined in cpu/feature_distance.cpp: every TORCH_CHECK of the three operators lives there. The CUDA
// entry points (cuda/ops_cuda.cpp, host-compiled) call them before launching; feature_distance.cu throws nothing
// but the launch checks. `weight2`/`grad` undefined
// and radius kNoRadius when the operator has no such argument; `grad` is the (N,) upstream gradient of a backward op.
// check_feature_args is the checking half of prepare_features, on symbolic sizes too: the Meta kernels
// (meta/ops_meta.cpp) call it alone.
void check_feature_args(const char* op, const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight,
                        const at::Tensor& weight2, const at::Tensor& grad, std::optional<int64_t> radius);
FeaturePair prepare_features(const char* op, const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight,
                             const at::Tensor& weight2, const at::Tensor& grad, std::optional<int64_t> radius,
                             bool allow_channels_last);
// SWD's radius as the kernels use it: offsets past the map never match, so it is bounded by the map size (same
// result; work and per-thread scratch then follow the map, not the argument), then checked against a fixed
// scratch budget.
c10::SymInt check_swd_radius(const char* op, int64_t radius, const c10::SymInt& height, const c10::SymInt& width);
inline int64_t swd_effective_radius(const char* op, int64_t radius, const FeatureLayout& layout) {
  return check_swd_radius(op, radius, layout.height, layout.width).expect_int();
}
// The (N,) result in the compute dtype.
at::Tensor feature_distance_output(const FeaturePair& p);
// The gradient for `input` as autograd expects it (input's dtype and memory format, like empty_like(input)),
// from `computed` (compute dtype, the pair's layout); no copy when they already agree.
at::Tensor gradient_like_input(const at::Tensor& input, const at::Tensor& computed);

// ---- LPIPS: d = sum_c w_c (a_c / (|a| + eps) - b_c / (|b| + eps))^2 -------------------------------------------

template <typename T>
HOST_DEVICE_INLINE T channel_norm(const T* f, int64_t stride, int64_t channels) {
  T s = 0;
  for (int64_t c = 0; c < channels; ++c) s += f[c * stride] * f[c * stride];
  return sqrt(s);
}

// The unit normalisation is applied as a multiplication by 1 / (|f| + eps) (one division per position).
template <typename T>
HOST_DEVICE_INLINE T weighted_distance(const T* a, T inv_a, const T* b, T inv_b, int64_t stride, const T* w,
                                       int64_t channels) {
  T d = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const T e = a[c * stride] * inv_a - b[c * stride] * inv_b;
    d += w[c] * e * e;
  }
  return d;
}

// Gradient of g * d with respect to a (at channel stride `stride`) through the unit normalisation, given
// u_c = dd/d(a_c * inv_a) and dot = sum_c u_c a_c: g * (u_c inv_a - a_c inv_a^2 dot / |a|); an all-zero position
// (|a| = 0) takes a zero second term, as torch.linalg.vector_norm's backward does.
template <typename T>
HOST_DEVICE_INLINE T normalised_gradient(T u, T a, T norm, T inv, T dot) {
  return u * inv - (norm > 0 ? a * inv * inv * dot / norm : T(0));
}

// Backward of g * d(a, b) for one pair of positions, d = weighted_distance: writes g * dd/da at ga and
// g * dd/db at gb (same stride as a, b); either may be null.
template <typename T>
HOST_DEVICE_INLINE void distance_backward(const T* a, T norm_a, const T* b, T norm_b, int64_t stride, const T* w,
                                          int64_t channels, T eps, T g, T* ga, T* gb) {
  const T inv_a = T(1) / (norm_a + eps), inv_b = T(1) / (norm_b + eps);
  T dot_a = 0, dot_b = 0;  // sum_c u_c a_c and sum_c u_c b_c, u_c = 2 w_c (a^_c - b^_c)
  for (int64_t c = 0; c < channels; ++c) {
    const T u = 2 * w[c] * (a[c * stride] * inv_a - b[c * stride] * inv_b);
    dot_a += u * a[c * stride];
    dot_b += u * b[c * stride];
  }
  for (int64_t c = 0; c < channels; ++c) {
    const T u = 2 * w[c] * (a[c * stride] * inv_a - b[c * stride] * inv_b);
    if (ga) ga[c * stride] = g * normalised_gradient(u, a[c * stride], norm_a, inv_a, dot_a);
    if (gb) gb[c * stride] = -g * normalised_gradient(u, b[c * stride], norm_b, inv_b, dot_b);
  }
}

template <typename T>
HOST_DEVICE_INLINE void lpips_position_backward(const T* a, const T* b, int64_t stride, const T* w, int64_t channels,
                                                T eps, T g, T* ga, T* gb) {
  distance_backward(a, channel_norm(a, stride, channels), b, channel_norm(b, stride, channels), stride, w, channels,
                    eps, g, ga, gb);
}

// ---- DISTS: per-channel global statistics -------------------------------------------------------------------

// Shifted sums of one plane (or part of one): with x' = x - shift_x, y' = y - shift_y (the plane's first samples),
// sx = sum x', sxx = sum x'^2, sxy = sum x'y'. Float64 whatever the input: the variances are differences of these
// sums and the shift only removes the cancellation due to the mean, not that of a small variance.
struct MomentSums {
  double sx, sy, sxx, syy, sxy;
};

struct ChannelStats {
  double mu_x, mu_y, var_x, var_y, cov;
};

HOST_DEVICE_INLINE ChannelStats channel_stats(const MomentSums& m, double shift_x, double shift_y, int64_t count) {
  const double n = static_cast<double>(count);
  const double mx = m.sx / n, my = m.sy / n;  // means of the shifted samples
  return {mx + shift_x, my + shift_y, m.sxx / n - mx * mx, m.syy / n - my * my, m.sxy / n - mx * my};
}

// texture l = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1), structure s = (2 cov + c2) / (var_x + var_y + c2).
HOST_DEVICE_INLINE double dists_term(const ChannelStats& s, double alpha, double beta, double c1, double c2) {
  const double texture = (2 * s.mu_x * s.mu_y + c1) / (s.mu_x * s.mu_x + s.mu_y * s.mu_y + c1);
  const double structure = (2 * s.cov + c2) / (s.var_x + s.var_y + c2);
  return alpha * texture + beta * structure;
}

// d(alpha l + beta s) / dx_p = k_x + k_xx (x_p - mu_x) + k_xy (y_p - mu_y), times the upstream gradient g; the
// same with x and y swapped for y. Coefficients already include g and 1 / count.
struct DistsGradient {
  double k_x, k_xx, k_xy, k_y, k_yy, k_yx;
};

HOST_DEVICE_INLINE DistsGradient dists_gradient(const ChannelStats& s, double alpha, double beta, double c1,
                                                double c2, double g, int64_t count) {
  const double scale = g / static_cast<double>(count);
  const double num_l = 2 * s.mu_x * s.mu_y + c1, den_l = s.mu_x * s.mu_x + s.mu_y * s.mu_y + c1;
  const double num_s = 2 * s.cov + c2, den_s = s.var_x + s.var_y + c2;
  const double dl_dmx = (2 * s.mu_y * den_l - num_l * 2 * s.mu_x) / (den_l * den_l);
  const double dl_dmy = (2 * s.mu_x * den_l - num_l * 2 * s.mu_y) / (den_l * den_l);
  const double ds_dvar = -num_s / (den_s * den_s), ds_dcov = 2 / den_s;
  return {scale * alpha * dl_dmx, scale * beta * ds_dvar * 2, scale * beta * ds_dcov,
          scale * alpha * dl_dmy, scale * beta * ds_dvar * 2, scale * beta * ds_dcov};
}

// ---- SWD: min over the (2r+1)^2 neighbourhood, inside the map only ------------------------------------------

// Offsets are numbered k = (di + r) * (2r + 1) + (dj + r): raster order, di outer. A strictly smaller distance
// replaces the best one, so ties keep the first offset in that order; a NaN distance is kept (as torch.min does).
// Returns the minimum and writes its offset number to *best_offset (-1 if no finite candidate was seen).
// norm_a / norm_b: the channel norms of every position of the image (|f|, eps not added).
template <typename T>
HOST_DEVICE_INLINE T swd_position(const T* a_image, const T* b_image, const T* norm_a, const T* norm_b,
                                  const FeatureLayout& l, int64_t i, int64_t j, int64_t radius, const T* w, T eps,
                                  int* best_offset) {
  const int64_t p = i * l.width + j, side = 2 * radius + 1;
  const T* a = a_image + p * l.position_stride;
  const T inv_a = T(1) / (norm_a[p] + eps);
  T best = INFINITY;
  int best_k = -1;
  for (int64_t di = -radius; di <= radius; ++di) {
    const int64_t qi = i + di;
    if (qi < 0 || qi >= l.height) continue;
    for (int64_t dj = -radius; dj <= radius; ++dj) {
      const int64_t qj = j + dj;
      if (qj < 0 || qj >= l.width) continue;
      const int64_t q = qi * l.width + qj;
      const T d = weighted_distance(a, inv_a, b_image + q * l.position_stride, T(1) / (norm_b[q] + eps),
                                    l.channel_stride, w, l.channels);
      if (!(d >= best)) {
        best = d;
        best_k = static_cast<int>((di + radius) * side + (dj + radius));
      }
    }
  }
  *best_offset = best_k;
  return best;
}

// Gradient of g * d_p with respect to the distorted features at p = (i, j), through its best neighbour.
template <typename T>
HOST_DEVICE_INLINE void swd_distorted_backward(const T* a_image, const T* b_image, const T* norm_a, const T* norm_b,
                                               const int* best, const FeatureLayout& l, int64_t i, int64_t j,
                                               int64_t radius, const T* w, T eps, T g, T* ga_image) {
  const int64_t p = i * l.width + j, side = 2 * radius + 1;
  T* ga = ga_image + p * l.position_stride;
  const int k = best[p];
  if (k < 0) {
    for (int64_t c = 0; c < l.channels; ++c) ga[c * l.channel_stride] = 0;
    return;
  }
  const int64_t q = (i + k / side - radius) * l.width + (j + k % side - radius);
  distance_backward(a_image + p * l.position_stride, norm_a[p], b_image + q * l.position_stride, norm_b[q],
                    l.channel_stride, w, l.channels, eps, g, ga, static_cast<T*>(nullptr));
}

// Gradient of g * d_p with respect to the reference features at position q = (i, j): the sum over the distorted
// positions p = q - (di, dj) whose best offset is (di, dj), gathered in raster order (no scatter, so no atomics),
// through the unit normalisation of b at q. `best` holds each distorted position's offset number.
template <typename T>
HOST_DEVICE_INLINE void swd_reference_backward(const T* a_image, const T* b_image, const T* norm_a,
                                               const T* norm_b, const int* best, const FeatureLayout& l, int64_t i,
                                               int64_t j, int64_t radius, const T* w, T eps, T g, T* gb_image) {
  const int64_t q = i * l.width + j, side = 2 * radius + 1, cs = l.channel_stride;
  const T* b = b_image + q * l.position_stride;
  T* gb = gb_image + q * l.position_stride;
  const T inv_b = T(1) / (norm_b[q] + eps);
  // v_c = sum over matched p of -2 w_c (a^_p,c - b^_c), evaluated twice (for the dot product, then the output).
  T dot = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t c = 0; c < l.channels; ++c) {
      T v = 0;
      for (int64_t di = -radius; di <= radius; ++di) {
        const int64_t pi = i - di;
        if (pi < 0 || pi >= l.height) continue;
        for (int64_t dj = -radius; dj <= radius; ++dj) {
          const int64_t pj = j - dj;
          if (pj < 0 || pj >= l.width) continue;
          const int64_t p = pi * l.width + pj;
          if (best[p] != static_cast<int>((di + radius) * side + (dj + radius))) continue;
          const T inv_a = T(1) / (norm_a[p] + eps);
          v -= 2 * w[c] * (a_image[p * l.position_stride + c * cs] * inv_a - b[c * cs] * inv_b);
        }
      }
      if (pass == 0)
        dot += v * b[c * cs];
      else
        gb[c * cs] = g * normalised_gradient(v, b[c * cs], norm_b[q], inv_b, dot);
    }
  }
}

}  // namespace turboiqa
