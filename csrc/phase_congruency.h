// Checks and per-pixel math of the fused phase-congruency energy step, shared by CPU and CUDA.
#pragma once

#include <ATen/ATen.h>

#include <cmath>

#include "border.h"  // HOST_DEVICE_INLINE

namespace turboiqa {

struct PcShape {
  int64_t planes, orients, scales, pixels;
};

// Checks of the CPU, CUDA and Meta entries (symbolic sizes allowed: the Meta kernel runs them while tracing).
inline void check_pc_energy(const at::Tensor& eo, const at::Tensor& threshold, double epsilon, double pc_eps) {
  // NaN would make the native max(E - T, 0) give 0 where the twin gives NaN: refuse it (and ±inf, negatives).
  TORCH_CHECK(std::isfinite(epsilon) && epsilon >= 0, "pc_energy: epsilon must be finite and >= 0, got ", epsilon);
  TORCH_CHECK(std::isfinite(pc_eps) && pc_eps >= 0, "pc_energy: pc_eps must be finite and >= 0, got ", pc_eps);
  TORCH_CHECK(eo.dim() == 7 && eo.sym_size(6) == 2,
              "pc_energy: eo must be N x C x O x S x H x W x 2 (torch.view_as_real of the complex responses), got ",
              eo.sym_sizes());
  TORCH_CHECK(eo.scalar_type() == at::kFloat || eo.scalar_type() == at::kDouble,
              "pc_energy: eo must be float32 or float64, got ", eo.scalar_type());
  TORCH_CHECK(threshold.dim() == 3 && threshold.sym_size(0) == eo.sym_size(0) &&
                  threshold.sym_size(1) == eo.sym_size(1) && threshold.sym_size(2) == eo.sym_size(2),
              "pc_energy: threshold must be N x C x O matching eo, got ", threshold.sym_sizes());
  TORCH_CHECK(threshold.device() == eo.device(), "pc_energy: threshold must be on eo's device");
}

// The kernels' view of an eo that passed check_pc_energy.
inline PcShape pc_shape(const at::Tensor& eo) {
  return {eo.size(0) * eo.size(1), eo.size(2), eo.size(3), eo.size(4) * eo.size(5)};
}

// One pixel: `re`/`im` of scale s, orientation o at re[(o*S + s) * stride].
template <typename T>
HOST_DEVICE_INLINE T pc_pixel(const T* re, const T* im, int64_t stride, const T* threshold, int orients, int scales,
                              T epsilon, T pc_eps) {
  T energy_all = 0, amplitude_all = 0;
  for (int o = 0; o < orients; ++o) {
    T sum_e = 0, sum_o = 0;
    for (int s = 0; s < scales; ++s) {
      const int64_t at = (static_cast<int64_t>(o) * scales + s) * stride;
      sum_e += re[at];
      sum_o += im[at];
      amplitude_all += sqrt(re[at] * re[at] + im[at] * im[at]);
    }
    const T norm = sqrt(sum_e * sum_e + sum_o * sum_o) + epsilon;
    const T mean_e = sum_e / norm, mean_o = sum_o / norm;
    T energy = 0;
    for (int s = 0; s < scales; ++s) {
      const int64_t at = (static_cast<int64_t>(o) * scales + s) * stride;
      const T e = re[at], odd = im[at];
      energy += e * mean_e + odd * mean_o - fabs(e * mean_o - odd * mean_e);
    }
    const T above = energy - threshold[o];
    energy_all += above > 0 ? above : T(0);
  }
  // No filter response at all (a flat image, pc_eps = 0): 0 rather than 0/0, as the twin.
  const T den = amplitude_all + pc_eps;
  return den > 0 ? (energy_all + pc_eps) / den : T(0);
}

}  // namespace turboiqa
