// Per-pixel VIFp algebra (one scale of vifp_mscale.m) shared by the CPU (scalar and SIMD-vector types) and CUDA
// kernels and mirrored by python/turboiqa/reference/vifp_stats.py.
//
// The moments arrive computed on shifted samples x' = x - shift, y' = y - shift (x distorted, y reference): the
// variances and the covariance do not depend on the shift; only the relative floor needs E[y²] of the true samples.
//   σx² = E x'² - μx'²,  σy² = max(E y'² - μy'², 0),  σxy = E x'y' - μx'μy',  F = eps + floor_rel · E[y²]
//   informative: σy² >= F (else σy² and g are 0),  g = σxy / (σy² + F), set to 0 unless informative,
//   σx² >= F and g > 0;  σv² = max(σx² - g σxy, F)
//   u_num = g² σy² / (σv² + σn²),  u_den = σy² / σn²;  the sums are Σ log10(1 + u) (taken by the caller).
#pragma once

#include "border.h"

namespace turboiqa {

template <typename V>
struct VifpPixel {
  V u_num, u_den;
};

// V is a scalar or a GCC vector of S (comparisons give lane masks; `mask ? a : b` selects lane-wise).
template <typename V, typename S>
HOST_DEVICE_INLINE VifpPixel<V> vifp_pixel(V mu_x, V mu_y, V e_xx, V e_yy, V e_xy, S shift, S sigma_nsq, S eps,
                                           S floor_rel) {
  const V zero = V{} * S(0);
  const V sd = e_xx - mu_x * mu_x;
  V sr = e_yy - mu_y * mu_y;
  sr = sr < zero ? zero : sr;
  const V sxy = e_xy - mu_x * mu_y;
  const V floor = eps + floor_rel * (e_yy + S(2) * shift * mu_y + shift * shift);
  const auto informative = sr >= floor;
  V g = sxy / (sr + floor);
  g = (informative & (sd >= floor) & (g > zero)) ? g : zero;
  sr = informative ? sr : zero;
  V sv = sd - g * sxy;
  sv = sv < floor ? floor : sv;
  return {g * g * sr / (sv + sigma_nsq), sr / sigma_nsq};
}

// d(a · Σ log10(1 + u_num) + b · Σ log10(1 + u_den)) / d(moment) at one pixel; the masks are piecewise constant.
template <typename S>
struct VifpMomentGrads {
  S mu_x, mu_y, e_xx, e_yy, e_xy;
};

template <typename S>
HOST_DEVICE_INLINE VifpMomentGrads<S> vifp_moment_grads(S mu_x, S mu_y, S e_xx, S e_yy, S e_xy, S shift,
                                                        S sigma_nsq, S eps, S floor_rel, S a, S b) {
  const S inv_ln10 = S(0.43429448190325182765);
  const S sd = e_xx - mu_x * mu_x;
  const S sr = e_yy - mu_y * mu_y;
  const S sxy = e_xy - mu_x * mu_y;
  const S floor = eps + floor_rel * (e_yy + S(2) * shift * mu_y + shift * shift);
  if (!(sr >= floor)) return {S(0), S(0), S(0), S(0), S(0)};  // uninformative: both terms 0 (and sr's relu)
  // d/dσx², d/dσy², d/dσxy, d/dF
  S g_sd = 0, g_sr = b * inv_ln10 / ((S(1) + sr / sigma_nsq) * sigma_nsq), g_sxy = 0, g_f = 0;
  const S g = sxy / (sr + floor);
  if (sd >= floor && g > S(0)) {
    const S resid = sd - g * sxy;
    const bool clamped = resid < floor;
    const S sv = clamped ? floor : resid;
    const S den = sv + sigma_nsq;
    const S u = g * g * sr / den;
    const S w = a * inv_ln10 / (S(1) + u);  // d/du_num
    const S d_sv = -w * u / den;
    S d_g = w * S(2) * g * sr / den;
    if (clamped) {
      g_f += d_sv;
    } else {
      g_sd += d_sv;
      g_sxy -= d_sv * g;
      d_g -= d_sv * sxy;
    }
    g_sr += w * g * g / den;
    g_sxy += d_g / (sr + floor);
    g_sr -= d_g * g / (sr + floor);
    g_f -= d_g * g / (sr + floor);
  }
  VifpMomentGrads<S> out;
  out.e_xx = g_sd;
  out.e_yy = g_sr + floor_rel * g_f;
  out.e_xy = g_sxy;
  out.mu_x = S(-2) * mu_x * g_sd - mu_y * g_sxy;
  out.mu_y = S(-2) * mu_y * g_sr - mu_x * g_sxy + S(2) * shift * floor_rel * g_f;
  return out;
}

}  // namespace turboiqa
