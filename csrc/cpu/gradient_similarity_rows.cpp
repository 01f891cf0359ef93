// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake), with
// -fno-math-errno so that the square roots vectorise.
//
// Per output row, for each plane: the vertical smoothing V = s0·row(r−1) + s1·row(r) + s2·row(r+1) and the vertical
// difference D = row(r+1) − row(r−1), one zero column on each side; then gx = V(j+1) − V(j−1),
// gy = s0·D(j−1) + s1·D(j) + s2·D(j+1) and the similarity of the two planes' magnitudes, written as a map row or
// summed (Σq, Σq² in float64) on the fly. Nothing image-sized is written in the moments mode.
#include <cstring>
#include <limits>

#include "gradient_similarity_rows.h"
#include "isa_vec.h"

#define TURBOIQA_ISA_FN TURBOIQA_ISA_NAME(grad_sim_rows)
#define TURBOIQA_ISA_BACK_FN TURBOIQA_ISA_NAME(grad_sim_backward_rows)

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

inline std::size_t row_stride(int width) { return (static_cast<std::size_t>(width) + 2 + 15) / 16 * 16; }

// V and D of one plane around input row r, into v[0 .. W+1] and d[0 .. W+1] (index k is column k − 1).
template <typename T>
inline void vertical_rows(const T* __restrict up, const T* __restrict mid, const T* __restrict down, int width,
                          T s0, T s1, T s2, T* __restrict v, T* __restrict d) {
  v[0] = d[0] = v[width + 1] = d[width + 1] = T(0);
  for (int k = 0; k < width; ++k) {
    v[k + 1] = s0 * up[k] + s1 * mid[k] + s2 * down[k];
    d[k + 1] = down[k] - up[k];
  }
}

template <typename T>
inline void prefetch_row(const T* p, int width) {
  const char* b = reinterpret_cast<const char*>(p);
  const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(width);
  for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(b + o, 0, 3);
}

// Squared magnitude (unnormalised) at extended column e of the rows v, d.
template <typename T>
inline T magnitude_sq(const T* __restrict v, const T* __restrict d, int e, T s0, T s1, T s2, T eps) {
  const T gx = v[e + 1] - v[e - 1];
  const T gy = s0 * d[e - 1] + s1 * d[e] + s2 * d[e + 1];
  return gx * gx + gy * gy + eps;
}

template <typename T>
inline void similarity_row(const T* __restrict vx, const T* __restrict dx, const T* __restrict vy,
                           const T* __restrict dy, int first, int count, T s0, T s1, T s2, T c, T alpha, T eps,
                           T* __restrict q) {
  const T two = T(2) - alpha;
  for (int j = 0; j < count; ++j) {
    const int e = first + j;
    const T m1 = magnitude_sq(vx, dx, e, s0, s1, s2, eps);
    const T m2 = magnitude_sq(vy, dy, e, s0, s1, s2, eps);
    const T prod = __builtin_sqrt(m1 * m2);
    q[j] = (two * prod + c) / (m1 + m2 - alpha * prod + c);
  }
}

// Σq and Σq² of a row in float64, in explicit vectors (GCC does not vectorise the widening conversion of a scalar
// loop: it stayed one cvtss2sd + add + fma per pixel). The lanes are 8 doubles on every ISA (GCC splits the 64-byte
// vector into the ISA's registers) and two accumulators per moment, folded in a fixed order, then the tail: the
// order of additions depends only on the row width, never on the threads, and AVX2 and AVX-512 give the same bits
// (the baseline build, without FMA, rounds a·a + q separately, as it does in the map).
template <typename T>
inline void row_moments(const T* __restrict q, int count, double* sum, double* sumsq) {
  constexpr int kLanes = 8;
  typedef double DV __attribute__((vector_size(kLanes * sizeof(double))));
  typedef T TV __attribute__((vector_size(kLanes * sizeof(T))));
  DV s0 = {}, s1 = {}, q0 = {}, q1 = {};
  int j = 0;
  for (; j + 2 * kLanes <= count; j += 2 * kLanes) {
    const DV a = __builtin_convertvector(load<TV>(q + j), DV);
    const DV b = __builtin_convertvector(load<TV>(q + j + kLanes), DV);
    s0 += a;
    q0 += a * a;
    s1 += b;
    q1 += b * b;
  }
  s0 += s1;
  q0 += q1;
  double ts = 0, ts2 = 0;
  for (int l = 0; l < kLanes; ++l) {
    ts += s0[l];
    ts2 += q0[l];
  }
  for (; j < count; ++j) {
    const double v = static_cast<double>(q[j]);
    ts += v;
    ts2 += v * v;
  }
  *sum = ts;
  *sumsq = ts2;
}

template <typename T>
void grad_sim_rows_impl(const GradSimRowsArgs<T>& a) {
  const int width = a.width, height = a.height, off = a.valid ? 1 : 0;
  const int out_width = width - 2 * off;
  const std::size_t stride = row_stride(width);
  T* vx = a.scratch;
  T* dx = vx + stride;
  T* vy = dx + stride;
  T* dy = vy + stride;
  T* qrow = dy + stride;
  T* zeros = qrow + stride;
  std::memset(zeros, 0, sizeof(T) * width);
  auto row = [&](const T* plane, int r) { return r < 0 || r >= height ? zeros : plane + static_cast<std::size_t>(r) * width; };
  for (int i = a.row_begin; i < a.row_end; ++i) {
    const int r = i + off;
    // Large planes stream from memory: ask for the rows two steps ahead now, so that their loads overlap this
    // row's arithmetic (one new row of each plane per output row).
    if (r + 3 < height) {
      prefetch_row(a.x + static_cast<std::size_t>(r + 3) * width, width);
      prefetch_row(a.y + static_cast<std::size_t>(r + 3) * width, width);
    }
    vertical_rows(row(a.x, r - 1), row(a.x, r), row(a.x, r + 1), width, a.s0, a.s1, a.s2, vx, dx);
    vertical_rows(row(a.y, r - 1), row(a.y, r), row(a.y, r + 1), width, a.s0, a.s1, a.s2, vy, dy);
    T* q = a.map ? a.map + static_cast<std::size_t>(i) * out_width : qrow;
    similarity_row(vx, dx, vy, dy, 1 + off, out_width, a.s0, a.s1, a.s2, a.c, a.alpha, a.eps, q);
    if (!a.map) row_moments(q, out_width, a.row_sum + i, a.row_sumsq + i);
  }
}

// Backward. The weights of centre row t (input coordinates): per column k = c + 1 of a W + 2 row (zero at k = 0,
// W + 1 and at columns without an output), wx = 2·G·∂q/∂M·gx and wy = 2·G·∂q/∂M·gy for each plane, with
// ∂q/∂M1 = (a·∂P/∂M1 − q·(1 − α·∂P/∂M1)) / Dn, ∂P/∂M1 = P / (2·M1) (0 where M1 = 0, the twin's safe √).
template <typename T>
struct WeightRows {
  T* wx1;
  T* wy1;
  T* wx2;
  T* wy2;
};

// The centre loop, branch-free so that it vectorises: kMap selects the upstream gradient; ∂P/∂M1 = P / (2·M1)
// is evaluated as P / (2·max(M1, tiny)), which is the twin's 0 where M1 = 0 (then P = 0 too).
template <typename T, bool kMap>
inline void weight_centres(const T* __restrict vx, const T* __restrict dx, const T* __restrict vy,
                           const T* __restrict dy, const T* __restrict g, T g_sum, T g_sumsq2, int first, int count,
                           T s0, T s1, T s2, T c, T alpha, T eps, T* __restrict wx1, T* __restrict wy1,
                           T* __restrict wx2, T* __restrict wy2) {
  const T two = T(2) - alpha, tiny = std::numeric_limits<T>::min();
  for (int j = 0; j < count; ++j) {
    const int e = first + j;
    const T gx1 = vx[e + 1] - vx[e - 1], gy1 = s0 * dx[e - 1] + s1 * dx[e] + s2 * dx[e + 1];
    const T gx2 = vy[e + 1] - vy[e - 1], gy2 = s0 * dy[e - 1] + s1 * dy[e] + s2 * dy[e + 1];
    const T m1 = gx1 * gx1 + gy1 * gy1 + eps, m2 = gx2 * gx2 + gy2 * gy2 + eps;
    const T prod = __builtin_sqrt(m1 * m2);
    const T inv = T(1) / (m1 + m2 - alpha * prod + c);
    const T q = (two * prod + c) * inv;
    const T grad = kMap ? g[j] : g_sum + g_sumsq2 * q;
    const T half_prod = T(0.5) * prod;
    const T dp1 = half_prod / (m1 > tiny ? m1 : tiny);
    const T dp2 = half_prod / (m2 > tiny ? m2 : tiny);
    const T scale = T(2) * grad * inv;
    const T a1 = scale * (two * dp1 - q * (T(1) - alpha * dp1));
    const T a2 = scale * (two * dp2 - q * (T(1) - alpha * dp2));
    wx1[e] = a1 * gx1;
    wy1[e] = a1 * gy1;
    wx2[e] = a2 * gx2;
    wy2[e] = a2 * gy2;
  }
}

template <typename T>
inline void weight_row(const GradSimBackRowsArgs<T>& a, int t, T* __restrict vx, T* __restrict dx,
                       T* __restrict vy, T* __restrict dy, const T* zeros, const WeightRows<T>& w) {
  const int width = a.width, height = a.height, off = a.valid ? 1 : 0;
  const int out_width = width - 2 * off;
  for (int k = 0; k < width + 2; ++k) w.wx1[k] = w.wy1[k] = w.wx2[k] = w.wy2[k] = T(0);
  if (t < off || t >= height - off) return;
  auto row = [&](const T* plane, int r) {
    return r < 0 || r >= height ? zeros : plane + static_cast<std::size_t>(r) * width;
  };
  vertical_rows(row(a.x, t - 1), row(a.x, t), row(a.x, t + 1), width, a.s0, a.s1, a.s2, vx, dx);
  vertical_rows(row(a.y, t - 1), row(a.y, t), row(a.y, t + 1), width, a.s0, a.s1, a.s2, vy, dy);
  if (a.grad_map)
    weight_centres<T, true>(vx, dx, vy, dy, a.grad_map + static_cast<std::size_t>(t - off) * out_width, T(0), T(0),
                            1 + off, out_width, a.s0, a.s1, a.s2, a.c, a.alpha, a.eps, w.wx1, w.wy1, w.wx2, w.wy2);
  else
    weight_centres<T, false>(vx, dx, vy, dy, nullptr, a.g_sum, T(2) * a.g_sumsq, 1 + off, out_width, a.s0, a.s1,
                             a.s2, a.c, a.alpha, a.eps, w.wx1, w.wy1, w.wx2, w.wy2);
}

// One input row of one plane's gradient from the weights of centre rows r − 1 (m), r (z), r + 1 (p):
// d[c] = SWx[k − 1] − SWx[k + 1] + HWy_m[k] − HWy_p[k], SWx = s0·wx_p + s1·wx_z + s2·wx_m,
// HWy[k] = s0·wy[k + 1] + s1·wy[k] + s2·wy[k − 1] (k = c + 1).
template <typename T>
inline void adjoint_row(const T* __restrict wx_m, const T* __restrict wx_z, const T* __restrict wx_p,
                        const T* __restrict wy_m, const T* __restrict wy_p, int width, T s0, T s1, T s2,
                        T* __restrict sw, T* __restrict out) {
  for (int k = 0; k < width + 2; ++k) sw[k] = s0 * wx_p[k] + s1 * wx_z[k] + s2 * wx_m[k];
  for (int cc = 0; cc < width; ++cc) {
    const int k = cc + 1;
    const T hm = s0 * wy_m[k + 1] + s1 * wy_m[k] + s2 * wy_m[k - 1];
    const T hp = s0 * wy_p[k + 1] + s1 * wy_p[k] + s2 * wy_p[k - 1];
    out[cc] = (sw[k - 1] - sw[k + 1]) + (hm - hp);
  }
}

template <typename T>
void grad_sim_backward_rows_impl(const GradSimBackRowsArgs<T>& a) {
  const int width = a.width;
  const std::size_t stride = row_stride(width);
  T* base = a.scratch;
  T* vx = base;
  T* dx = vx + stride;
  T* vy = dx + stride;
  T* dy = vy + stride;
  T* zeros = dy + stride;
  T* sw = zeros + stride;
  T* ring = sw + stride;  // 3 slots x 4 rows
  std::memset(zeros, 0, sizeof(T) * width);
  auto slot = [&](int t) {
    T* s = ring + static_cast<std::size_t>(((t % 3) + 3) % 3) * 4 * stride;
    return WeightRows<T>{s, s + stride, s + 2 * stride, s + 3 * stride};
  };
  weight_row(a, a.row_begin - 1, vx, dx, vy, dy, zeros, slot(a.row_begin - 1));
  weight_row(a, a.row_begin, vx, dx, vy, dy, zeros, slot(a.row_begin));
  for (int r = a.row_begin; r < a.row_end; ++r) {
    weight_row(a, r + 1, vx, dx, vy, dy, zeros, slot(r + 1));
    const WeightRows<T> m = slot(r - 1), z = slot(r), p = slot(r + 1);
    const std::size_t at = static_cast<std::size_t>(r) * width;
    adjoint_row(m.wx1, z.wx1, p.wx1, m.wy1, p.wy1, width, a.s0, a.s1, a.s2, sw, a.dx + at);
    adjoint_row(m.wx2, z.wx2, p.wx2, m.wy2, p.wy2, width, a.s0, a.s1, a.s2, sw, a.dy + at);
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_FN(const GradSimRowsArgs<float>& args) { TURBOIQA_ISA_NS::grad_sim_rows_impl(args); }
void TURBOIQA_ISA_FN(const GradSimRowsArgs<double>& args) { TURBOIQA_ISA_NS::grad_sim_rows_impl(args); }
void TURBOIQA_ISA_BACK_FN(const GradSimBackRowsArgs<float>& args) {
  TURBOIQA_ISA_NS::grad_sim_backward_rows_impl(args);
}
void TURBOIQA_ISA_BACK_FN(const GradSimBackRowsArgs<double>& args) {
  TURBOIQA_ISA_NS::grad_sim_backward_rows_impl(args);
}

#if defined(TURBOIQA_ISA_IS_BASELINE)
std::size_t grad_sim_scratch_size(int width) { return 6 * TURBOIQA_ISA_NS::row_stride(width); }
std::size_t grad_sim_backward_scratch_size(int width) { return 18 * TURBOIQA_ISA_NS::row_stride(width); }
#endif

}  // namespace turboiqa::cpu
