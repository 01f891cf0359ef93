// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake).
//
// One strip of padded rows [r0, r1): the moments of the output rows whose windows reach the strip (its rows and
// k - 1 above), the per-pixel gradients w.r.t. the five moments, the transposed (full) horizontal filter, then
// the transposed vertical filter for the strip's rows and the chain rule through x², y², xy. Everything lives in a
// strip-sized scratch; only the strip's rows of the padded gradient are written. The sums run in the same order
// whatever the thread count.
#include <algorithm>

#include "../ssim_math.h"
#include "../vifp_math.h"
#include "isa_vec.h"
#include "ssim_backward_rows.h"

#define TURBOIQA_ISA_FN TURBOIQA_ISA_NAME(ssim_backward_rows)

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

// out[j] = Σ_t w[t] · in[j + t], j < n (valid correlation of one row).
template <typename T>
inline void valid_row(const T* __restrict in, const T* __restrict w, int k, int64_t n, T* __restrict out) {
  for (int64_t j = 0; j < n; ++j) out[j] = 0;
  for (int t = 0; t < k; ++t) {
    const T wt = w[t];
    const T* __restrict s = in + t;
    #pragma GCC ivdep
    for (int64_t j = 0; j < n; ++j) out[j] += wt * s[j];
  }
}

// out[j + t] += w[t] · in[j] for every tap: the adjoint of valid_row (out has n + k - 1 columns).
template <typename T>
inline void full_row(const T* __restrict in, const T* __restrict w, int k, int64_t n, T* __restrict out) {
  for (int64_t j = 0; j < n + k - 1; ++j) out[j] = 0;
  for (int t = 0; t < k; ++t) {
    const T wt = w[t];
    T* __restrict d = out + t;
    #pragma GCC ivdep
    for (int64_t j = 0; j < n; ++j) d[j] += wt * in[j];
  }
}

// The moments → their gradients, in place; the clamp is a template argument so the common loop stays branch-free.
template <typename T, bool NonnegativeCs>
void ssim_grads_in_place(const SsimBackwardArgs<T>& a, T* __restrict g0, T* __restrict g1, T* __restrict g2,
                           T* __restrict g3, T* __restrict g4, int64_t n) {
  const T shift = a.shift, c1 = a.c1, c2 = a.c2, cov_norm = a.cov_norm, ga = a.a, gb = a.b;
  #pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    auto d = ssim_moment_grads<T>(g0[i], g1[i], g2[i], g3[i], g4[i], shift, c1, c2, cov_norm, ga, gb, NonnegativeCs);
    g0[i] = d.mu_x;
    g1[i] = d.mu_y;
    g2[i] = d.e_xx;
    g3[i] = d.e_yy;
    g4[i] = d.e_xy;
  }
}

template <typename T>
void moment_grads_in_place(const SsimBackwardArgs<T>& a, T* g0, T* g1, T* g2, T* g3, T* g4, int64_t n) {
  if (a.nonnegative_cs)
    ssim_grads_in_place<T, true>(a, g0, g1, g2, g3, g4, n);
  else
    ssim_grads_in_place<T, false>(a, g0, g1, g2, g3, g4, n);
}

template <typename T>
void moment_grads_in_place(const VifpBackwardArgs<T>& a, T* __restrict g0, T* __restrict g1, T* __restrict g2,
                           T* __restrict g3, T* __restrict g4, int64_t n) {
  const T shift = a.shift, sigma_nsq = a.sigma_nsq, eps = a.eps, floor_rel = a.floor_rel, ga = a.a, gb = a.b;
  for (int64_t i = 0; i < n; ++i) {
    auto d = vifp_moment_grads<T>(g0[i], g1[i], g2[i], g3[i], g4[i], shift, sigma_nsq, eps, floor_rel, ga, gb);
    g0[i] = d.mu_x;
    g1[i] = d.mu_y;
    g2[i] = d.e_xx;
    g3[i] = d.e_yy;
    g4[i] = d.e_xy;
  }
}

// Args: SsimBackwardArgs or VifpBackwardArgs (the statistic enters only through moment_grads_in_place).
template <typename T, typename Args>
void backward_rows_impl(const Args& a) {
  const int k = a.window_size;
  const int64_t wp = a.padded_width, wo = a.out_width, ho = a.out_height;
  const int64_t r0 = a.row_begin, r1 = a.row_end;
  const int64_t i0 = std::max<int64_t>(0, r0 - k + 1), i1 = std::min<int64_t>(ho, r1);
  const int64_t m = i1 - i0, in_rows = m + k - 1;
  const T* __restrict w = a.window;
  T* xs = a.scratch;           // in_rows × wp: shifted padded input
  T* ys = xs + in_rows * wp;   // in_rows × wp
  T* vert = ys + in_rows * wp; // 5 × m × wp: vertical sums, later the horizontally back-filtered gradients
  T* mom = vert + 5 * m * wp;  // 5 × m × wo: moments, then their gradients
  T* back = mom + 5 * m * wo;  // 5 × wp: one padded row's gradient w.r.t. each quantity
  for (int64_t r = 0; r < in_rows; ++r) {
    const int sr = a.row_map[i0 + r];
    T* __restrict xr = xs + r * wp;
    T* __restrict yr = ys + r * wp;
    #pragma GCC ivdep
    for (int64_t c = 0; c < wp; ++c) {
      const int sc = a.col_map[c];
      const bool inside = sr >= 0 && sc >= 0;
      xr[c] = inside ? a.x[static_cast<int64_t>(sr) * a.width + sc] - a.shift : -a.shift;
      yr[c] = inside ? a.y[static_cast<int64_t>(sr) * a.width + sc] - a.shift : -a.shift;
    }
  }
  // Vertical valid filter of x, y, x², y², xy (each product rounded before weighting).
  const int64_t q = m * wp;
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict v0 = vert + i * wp;
    T* __restrict v1 = v0 + q;
    T* __restrict v2 = v1 + q;
    T* __restrict v3 = v2 + q;
    T* __restrict v4 = v3 + q;
    for (int64_t c = 0; c < wp; ++c) v0[c] = v1[c] = v2[c] = v3[c] = v4[c] = 0;
    for (int t = 0; t < k; ++t) {
      const T* __restrict xr = xs + (i + t) * wp;
      const T* __restrict yr = ys + (i + t) * wp;
      const T wt = w[t];
      #pragma GCC ivdep
      for (int64_t c = 0; c < wp; ++c) {
        const T xv = xr[c], yv = yr[c];
        const T xx = xv * xv, yy = yv * yv, xy = xv * yv;
        v0[c] += wt * xv;
        v1[c] += wt * yv;
        v2[c] += wt * xx;
        v3[c] += wt * yy;
        v4[c] += wt * xy;
      }
    }
  }
  for (int64_t qi = 0; qi < 5 * m; ++qi) valid_row(vert + qi * wp, w, k, wo, mom + qi * wo);
  const int64_t mq = m * wo;
  T* __restrict g0 = mom;
  T* __restrict g1 = mom + mq;
  T* __restrict g2 = mom + 2 * mq;
  T* __restrict g3 = mom + 3 * mq;
  T* __restrict g4 = mom + 4 * mq;
  moment_grads_in_place<T>(a, g0, g1, g2, g3, g4, mq);
  for (int64_t qi = 0; qi < 5 * m; ++qi) full_row(mom + qi * wo, w, k, wo, vert + qi * wp);
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = 0; c < 5 * wp; ++c) back[c] = 0;
    for (int t = 0; t < k; ++t) {
      const int64_t i = r - t;
      if (i < i0 || i >= i1) continue;
      const T wt = w[t];
      const T* __restrict s = vert + (i - i0) * wp;
      for (int qn = 0; qn < 5; ++qn) {
        T* __restrict d = back + qn * wp;
        const T* __restrict sq = s + qn * q;
        #pragma GCC ivdep
        for (int64_t c = 0; c < wp; ++c) d[c] += wt * sq[c];
      }
    }
    const T* __restrict xr = xs + (r - i0) * wp;
    const T* __restrict yr = ys + (r - i0) * wp;
    T* __restrict gx = a.grad_x_padded + r * wp;
    T* __restrict gy = a.grad_y_padded + r * wp;
    const T* __restrict b0 = back;
    const T* __restrict b1 = back + wp;
    const T* __restrict b2 = back + 2 * wp;
    const T* __restrict b3 = back + 3 * wp;
    const T* __restrict b4 = back + 4 * wp;
    #pragma GCC ivdep
    for (int64_t c = 0; c < wp; ++c) {
      gx[c] = b0[c] + T(2) * xr[c] * b2[c] + yr[c] * b4[c];
      gy[c] = b1[c] + T(2) * yr[c] * b3[c] + xr[c] * b4[c];
    }
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_FN(const SsimBackwardArgs<float>& args) { TURBOIQA_ISA_NS::backward_rows_impl<float>(args); }
void TURBOIQA_ISA_FN(const SsimBackwardArgs<double>& args) { TURBOIQA_ISA_NS::backward_rows_impl<double>(args); }
void TURBOIQA_ISA_NAME(vifp_backward_rows)(const VifpBackwardArgs<float>& args) {
  TURBOIQA_ISA_NS::backward_rows_impl<float>(args);
}
void TURBOIQA_ISA_NAME(vifp_backward_rows)(const VifpBackwardArgs<double>& args) {
  TURBOIQA_ISA_NS::backward_rows_impl<double>(args);
}

#if defined(TURBOIQA_ISA_IS_BASELINE)
std::size_t ssim_backward_scratch_size(int padded_width, int out_width, int window_size, int strip_rows) {
  const std::size_t m = static_cast<std::size_t>(strip_rows + window_size - 1);  // output rows reaching a strip
  const std::size_t in_rows = m + window_size - 1;
  return 2 * in_rows * padded_width + 5 * m * padded_width + 5 * m * out_width + 5 * padded_width;
}
#endif

}  // namespace turboiqa::cpu
