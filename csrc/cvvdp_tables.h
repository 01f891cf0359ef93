// Host-side tables and constants of the native ColorVideoVDP operators, shared by the CPU and CUDA kernels so that
// both run the same numbers: the pyramid's per-axis tap tables (cvvdp 0.5.7's lpyr_dec, 5-tap kernel a = 0.4) and
// the band pool's constants (CSF look-up scale, masking exponents, the 13-tap masking blur).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace turboiqa::cvvdp {

constexpr double kPyramidA = 0.4;
constexpr double kPyramidK[5] = {0.25 - kPyramidA / 2, 0.25, kPyramidA, 0.25, 0.25 - kPyramidA / 2};

inline int64_t clamp_index(int64_t i, int64_t n) { return std::min(std::max<int64_t>(i, 0), n - 1); }

// A Table has open() (start the next output's entries) and add(source, weight).

// Vertical reduce: symmetric edges (x[-1] = x[0], x[-2] = x[1], x[n] = x[n-1], x[n+1] = x[n-2]).
template <typename Table>
Table reduce_rows(int64_t n) {
  Table a;
  for (int64_t o = 0; o < (n + 1) / 2; ++o) {
    a.open();
    for (int t = 0; t < 5; ++t) {
      int64_t i = 2 * o + t - 2;
      i = i < 0 ? -i - 1 : (i >= n ? 2 * n - 1 - i : i);
      a.add(clamp_index(i, n), kPyramidK[t]);
    }
  }
  a.open();
  return a;
}

// Horizontal reduce: symmetric left edge, zeros beyond the right edge, then cvvdp's correction of the last output
// (+ k3 x[n-1] + k4 x[n-2] when the plane has an odd number of rows, else + k4 x[n-1]).
template <typename Table>
Table reduce_cols(int64_t n, bool odd_rows) {
  Table a;
  const int64_t outs = (n + 1) / 2;
  for (int64_t o = 0; o < outs; ++o) {
    a.open();
    for (int t = 0; t < 5; ++t) {
      const int64_t i = 2 * o + t - 2;
      if (i >= n) continue;
      a.add(clamp_index(i < 0 ? -i - 1 : i, n), kPyramidK[t]);
    }
    if (o == outs - 1) {
      if (odd_rows) {
        a.add(n - 1, kPyramidK[3]);
        a.add(clamp_index(n - 2, n), kPyramidK[4]);
      } else {
        a.add(n - 1, kPyramidK[4]);
      }
    }
  }
  a.open();
  return a;
}

// Expand n samples to `size` (<= 2n): zero insertion and the 5-tap kernel x2, ends replicated.
template <typename Table>
Table expand_taps(int64_t n, int64_t size) {
  Table a;
  for (int64_t o = 0; o < size; ++o) {
    a.open();
    const int64_t i = o / 2;
    if (o % 2 == 0) {
      a.add(clamp_index(i - 1, n), 2 * kPyramidK[0]);
      a.add(i, 2 * kPyramidK[2]);
      a.add(clamp_index(i + 1, n), 2 * kPyramidK[4]);
    } else {
      a.add(i, 2 * kPyramidK[1]);
      a.add(clamp_index(i + 1, n), 2 * kPyramidK[3]);
    }
  }
  a.open();
  return a;
}

constexpr int kBlurRadius = 6;  // the masking blur: 13 Gaussian taps, sigma 3 samples
constexpr int kBlurTaps = 2 * kBlurRadius + 1;
constexpr double kBandEps = 1e-5;

// The band pool's scalar constants into P (the CPU's Params<T> or the CUDA kernels' BandParams<T>: the same field
// names); the CSF table itself is copied by the caller.
template <typename T, typename P>
void fill_band_constants(P& p, const at::Tensor& test, int64_t csf_size, double lo, double hi,
                         at::ArrayRef<double> gain, at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm,
                         double mask_c, double mask_p, double d_max) {
  p.n = test.size(0);
  p.c = static_cast<decltype(p.c)>(test.size(1));
  p.h = test.size(2);
  p.w = test.size(3);
  p.len = static_cast<decltype(p.len)>(csf_size / test.size(1));
  p.lo = static_cast<T>(lo);
  p.scale = static_cast<T>((p.len - 1) / (hi - lo));
  p.top = static_cast<T>(p.len - 1);
  p.eps = static_cast<T>(kBandEps);
  for (int64_t k = 0; k < p.c; ++k) {
    p.gain[k] = static_cast<T>(gain[k]);
    p.q[k] = static_cast<T>(mask_q[k]);
    p.eps_q[k] = std::pow(p.eps, p.q[k]);
  }
  for (int64_t k = 0; k < p.c * p.c; ++k) p.xcm[k] = static_cast<T>(xcm[k]);
  p.p = static_cast<T>(mask_p);
  p.eps_p = static_cast<T>(std::pow(kBandEps, mask_p));
  p.dmax = static_cast<T>(d_max);
  p.mask_c = static_cast<T>(mask_c);
  double g[kBlurTaps], sum = 0;
  for (int k = 0; k < kBlurTaps; ++k) {
    const double t = (k - kBlurRadius) / 3.0;
    g[k] = std::exp(-0.5 * t * t);
    sum += g[k];
  }
  for (int k = 0; k < kBlurTaps; ++k) {
    p.gv[k] = static_cast<T>(g[k] / sum * mask_c);
    p.gh[k] = static_cast<T>(g[k] / sum);
  }
  p.blur = p.h > kBlurRadius && p.w > kBlurRadius;
}

}  // namespace turboiqa::cvvdp
