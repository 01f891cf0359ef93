// Per-pixel SSIM algebra shared by the CPU (scalar and SIMD-vector types) and CUDA kernels.
//
// The moments arrive computed on shifted samples x' = x - shift, y' = y - shift: variances and covariance are
// shift-invariant, and subtracting a representative level first keeps E[x'^2] - E[x']^2 from cancelling
// catastrophically in float32 on bright 8-bit content. Only the luminance term needs the true means.
#pragma once

#include "border.h"

namespace turboiqa {

template <typename V, typename S>
struct SsimPixel {
  V ssim;
  V cs;
};

// a*a + b*b, the same bits for (a, b) and (b, a). Written plainly, a compiler contracting it into
// fma(a, a, b*b) (GCC for x86-64-v3, nvcc by default) rounds the two orders differently; with s = a + b and
// d = a - b, (s*s + d*d) / 2 is symmetric however it is contracted (d*d == (-d)*(-d)).
template <typename V, typename S>
HOST_DEVICE_INLINE V symmetric_sum_of_squares(V a, V b) {
  const V s = a + b;
  const V d = a - b;
  return (s * s + d * d) * S(0.5);
}

// SSIM only needs sigma_x^2 + sigma_y^2, never the two separately, so the kernels filter x'^2 + y'^2 as one
// quantity: four filtered moments instead of five. V is a scalar or a GCC vector of S (arithmetic between V and
// S broadcasts the scalar).
// nonnegative_cs: cs clamped at 0 at every pixel before it multiplies the luminance term (pyiqa's SSIM).
template <typename V, typename S>
HOST_DEVICE_INLINE SsimPixel<V, S> ssim_pixel4(V mu_x, V mu_y, V e_sq_sum, V e_xy, S shift, S c1, S c2,
                                               S cov_norm, bool nonnegative_cs = false) {
  // Every expression is symmetric in (x, y) as evaluated in floating point (grouping included), so that
  // ssim(x, y) == ssim(y, x) bit for bit, as in piq's reference implementation.
  // mu_x*mu_y by polarisation, (s² - d²)/4, rounded the way sum_of_squares = (s² + d²)/2 is: for x == y both
  // reduce to round(s²) scaled by a power of two, so sigma_sum == 2*sigma_xy exactly and SSIM(x, x) == 1 (a
  // plain product contracted into fma(-mu_x, mu_y, e_xy) rounds differently: 1 - 1.3e-6 on deep features).
  const V s = mu_x + mu_y;
  const V d = mu_x - mu_y;
  V sigma_sum = cov_norm * (e_sq_sum - (s * s + d * d) * S(0.5));
  V sigma_xy = cov_norm * (e_xy - (s * s - d * d) * S(0.25));
  V mx = mu_x + shift;
  V my = mu_y + shift;
  // Two divisions, not one over cs_den * l_den: that product overflows or underflows float32 for images scaled
  // by 1e±10 (inf/NaN where the ratios are ~1), and with c1 = 0 a black region's l_den = 0 turned cs into NaN.
  V cs = (S(2) * sigma_xy + c2) / (sigma_sum + c2);
  if (nonnegative_cs) cs = cs < V{} ? V{} : cs;  // lane-wise for a vector V; NaN stays NaN, as torch.relu
  V lum = (S(2) * (mx * my) + c1) / (symmetric_sum_of_squares<V, S>(mx, my) + c1);
  return {lum * cs, cs};
}

template <typename V, typename S>
HOST_DEVICE_INLINE SsimPixel<V, S> ssim_pixel(V mu_x, V mu_y, V e_xx, V e_yy, V e_xy, S shift, S c1, S c2,
                                              S cov_norm, bool nonnegative_cs = false) {
  return ssim_pixel4<V, S>(mu_x, mu_y, e_xx + e_yy, e_xy, shift, c1, c2, cov_norm, nonnegative_cs);
}

// d(a * mean(ssim) + b * mean(cs)) / d(moment) at one pixel, with a, b already divided by the map size.
template <typename S>
struct SsimMomentGrads {
  S mu_x, mu_y, e_xx, e_yy, e_xy;
};

template <typename S>
HOST_DEVICE_INLINE SsimMomentGrads<S> ssim_moment_grads(S mu_x, S mu_y, S e_xx, S e_yy, S e_xy, S shift, S c1,
                                                        S c2, S cov_norm, S a, S b, bool nonnegative_cs = false) {
  S sigma_xx = cov_norm * (e_xx - mu_x * mu_x);
  S sigma_yy = cov_norm * (e_yy - mu_y * mu_y);
  S sigma_xy = cov_norm * (e_xy - mu_x * mu_y);
  S den_cs = sigma_xx + sigma_yy + c2;
  S cs = (S(2) * sigma_xy + c2) / den_cs;
  // Clamped (cs <= 0, as torch.relu's backward): ssim = cs = 0 there whatever the moments.
  if (nonnegative_cs && !(cs > S(0))) return {S(0), S(0), S(0), S(0), S(0)};
  S mx = mu_x + shift;
  S my = mu_y + shift;
  S den_l = mx * mx + my * my + c1;
  S lum = (S(2) * mx * my + c1) / den_l;

  S dl_dmx = S(2) * (my - lum * mx) / den_l;
  S dl_dmy = S(2) * (mx - lum * my) / den_l;
  S dcs_dmx = S(2) * cov_norm * (cs * mu_x - mu_y) / den_cs;
  S dcs_dmy = S(2) * cov_norm * (cs * mu_y - mu_x) / den_cs;
  S dcs_dexx = -cov_norm * cs / den_cs;  // same for e_yy
  S dcs_dexy = S(2) * cov_norm / den_cs;

  S cs_weight = a * lum + b;  // ssim = lum * cs, so cs-moments get a*lum (from ssim) + b (from cs)
  SsimMomentGrads<S> g;
  g.mu_x = a * dl_dmx * cs + cs_weight * dcs_dmx;
  g.mu_y = a * dl_dmy * cs + cs_weight * dcs_dmy;
  g.e_xx = cs_weight * dcs_dexx;
  g.e_yy = cs_weight * dcs_dexx;
  g.e_xy = cs_weight * dcs_dexy;
  return g;
}

}  // namespace turboiqa
