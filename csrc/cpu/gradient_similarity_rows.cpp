// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake), with
// -fno-math-errno so that the square roots vectorise.
//
// Per output row, for each plane: the vertical smoothing V = s0·row(r−1) + s1·row(r) + s2·row(r+1) and the vertical
// difference D = row(r+1) − row(r−1), one zero column on each side; then gx = V(j+1) − V(j−1),
// gy = s0·D(j−1) + s1·D(j) + s2·D(j+1) and the similarity of the two planes' magnitudes, written as a map row or
// summed (Σq, Σq² in float64) on the fly. Nothing image-sized is written in the moments mode.
#include <cstring>

#include "gradient_similarity_rows.h"
#include "isa_vec.h"

#define TURBOIQA_ISA_FN TURBOIQA_ISA_NAME(grad_sim_rows)

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

// Σq and Σq² of a row in float64, over 8 fixed lanes (vectorisable, and the order never depends on threads).
template <typename T>
inline void row_moments(const T* __restrict q, int count, double* sum, double* sumsq) {
  double s[8] = {}, s2[8] = {};
  int j = 0;
  for (; j + 8 <= count; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double v = static_cast<double>(q[j + l]);
      s[l] += v;
      s2[l] += v * v;
    }
  for (; j < count; ++j) {
    const double v = static_cast<double>(q[j]);
    s[0] += v;
    s2[0] += v * v;
  }
  double ts = 0, ts2 = 0;
  for (int l = 0; l < 8; ++l) {
    ts += s[l];
    ts2 += s2[l];
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
    vertical_rows(row(a.x, r - 1), row(a.x, r), row(a.x, r + 1), width, a.s0, a.s1, a.s2, vx, dx);
    vertical_rows(row(a.y, r - 1), row(a.y, r), row(a.y, r + 1), width, a.s0, a.s1, a.s2, vy, dy);
    T* q = a.map ? a.map + static_cast<std::size_t>(i) * out_width : qrow;
    similarity_row(vx, dx, vy, dy, 1 + off, out_width, a.s0, a.s1, a.s2, a.c, a.alpha, a.eps, q);
    if (!a.map) row_moments(q, out_width, a.row_sum + i, a.row_sumsq + i);
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_FN(const GradSimRowsArgs<float>& args) { TURBOIQA_ISA_NS::grad_sim_rows_impl(args); }
void TURBOIQA_ISA_FN(const GradSimRowsArgs<double>& args) { TURBOIQA_ISA_NS::grad_sim_rows_impl(args); }

#if defined(TURBOIQA_ISA_IS_BASELINE)
std::size_t grad_sim_scratch_size(int width) { return 6 * TURBOIQA_ISA_NS::row_stride(width); }
#endif

}  // namespace turboiqa::cpu
