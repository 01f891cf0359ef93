// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake): the
// per-row loops of cvvdp_band_pool (cvvdp_band_rows.h). Each loop is a plain loop over the row that GCC
// vectorises; for float the exponentials and logarithms are inline polynomials (no libm calls in the loops).
// Built with -fno-trapping-math (CMakeLists.txt): both sides of a select are computed, which is what lets the loops
// with a branch (the EOTF's two segments) vectorise; the results are the same.
#include <cstdint>
#include <cstring>

#include "cvvdp_band_rows.h"
#include "isa_vec.h"

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

constexpr double kLn10 = 2.302585092994045684;

inline int32_t float_bits(float v) {
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return i;
}
inline float bits_float(int32_t i) {
  float v;
  std::memcpy(&v, &i, sizeof v);
  return v;
}

// Cephes expf: e^x = 2^n e^r, |r| <= ln2/2, degree-6 polynomial; n by the 1.5·2^23 rounding trick.
inline float exp_f(float x) {
  x = x < 88.3762626647949f ? x : 88.3762626647949f;
  x = x > -87.3365447505531f ? x : -87.3365447505531f;
  const float magic = 12582912.0f;
  const float t = x * 1.44269504088896341f + magic;
  const float n = t - magic;
  const int32_t ni = float_bits(t) - float_bits(magic);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  const float y = p * r * r + r + 1.0f;
  return y * bits_float((ni + 127) << 23);
}

// Cephes logf for positive normal x: x = m 2^e, m in [sqrt(1/2), sqrt(2)), degree-8 polynomial in m - 1.
inline float log_f(float x) {
  const int32_t bits = float_bits(x);
  int32_t e = ((bits >> 23) & 0xff) - 126;
  float m = bits_float((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292E-2f;
  y = y * m - 1.1514610310E-1f;
  y = y * m + 1.1676998740E-1f;
  y = y * m - 1.2420140846E-1f;
  y = y * m + 1.4249322787E-1f;
  y = y * m - 1.6668057665E-1f;
  y = y * m + 2.0000714765E-1f;
  y = y * m - 2.4999993993E-1f;
  y = y * m + 3.3333331174E-1f;
  y = y * m * z;
  const float fe = static_cast<float>(e);
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return m + y + 0.693359375f * fe;
}

inline float exp_t(float x) { return exp_f(x); }
inline double exp_t(double x) { return __builtin_exp(x); }
inline float log_t(float x) { return log_f(x); }
inline double log_t(double x) { return __builtin_log(x); }
template <typename T>
inline T abs_t(T x) {
  return x < 0 ? -x : x;
}

template <typename T>
void prepare_row(const T* __restrict t, const T* __restrict r, const T* __restrict l, int64_t w,
                 const T* __restrict table, int64_t len, const CvvdpRowConsts<T>& k, T gain, T* __restrict s,
                 T* __restrict tp, T* __restrict rp, T* __restrict mm) {
  for (int64_t x = 0; x < w; ++x) {  // the table look-up (a gather: scalar on most targets)
    T pos = (l[x] - k.lo) * k.scale;
    pos = pos > 0 ? pos : T(0);
    pos = pos < k.top ? pos : k.top;
    const int64_t i0 = static_cast<int64_t>(pos);
    const int64_t i1 = i0 + 1 < len ? i0 + 1 : len - 1;
    s[x] = table[i0] + (table[i1] - table[i0]) * (pos - static_cast<T>(i0));
  }
  const T ln10 = static_cast<T>(kLn10);
  for (int64_t x = 0; x < w; ++x) {
    const T sg = exp_t(s[x] * ln10) * gain;
    const T a = t[x] * sg, b = r[x] * sg;
    const T aa = abs_t(a), ab = abs_t(b);
    s[x] = sg;
    tp[x] = a;
    rp[x] = b;
    mm[x] = aa < ab ? aa : ab;
  }
}

template <typename T>
void spow_row(const T* __restrict m, int64_t w, T q, T eps, T eps_q, T* __restrict out) {
  for (int64_t x = 0; x < w; ++x) out[x] = exp_t(q * log_t(m[x] + eps)) - eps_q;
}

template <typename T>
void masker_row(const T* __restrict mq, int c, const T* xrow, int64_t w, T* __restrict masker) {
  const T x0 = xrow[0];
  for (int64_t x = 0; x < w; ++x) masker[x] = x0 * mq[x];
  for (int j = 1; j < c; ++j) {
    const T xj = xrow[j];
    const T* __restrict src = mq + j * w;
    for (int64_t x = 0; x < w; ++x) masker[x] += xj * src[x];
  }
}

template <typename T>
double pool_row(const T* mq, int c, const T* xrow, const T* __restrict tp, const T* __restrict rp, int64_t w,
                const CvvdpRowConsts<T>& k, T* __restrict scratch) {
  masker_row(mq, c, xrow, w, scratch);
  for (int64_t x = 0; x < w; ++x) {
    const T du = (exp_t(k.p * log_t(abs_t(tp[x] - rp[x]) + k.eps)) - k.eps_p) / (1 + scratch[x]);
    const T d = k.dmax * du / (k.dmax + du) + k.eps;
    scratch[x] = d * d;
  }
  double lanes[8] = {};  // fixed lanes: the order never depends on the ISA or the threads
  int64_t x = 0;
  for (; x + 8 <= w; x += 8)
    for (int i = 0; i < 8; ++i) lanes[i] += static_cast<double>(scratch[x + i]);
  for (int i = 0; x < w; ++x, ++i) lanes[i] += static_cast<double>(scratch[x]);
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
}

template <typename T>
void grad_row(const T* mq, int c, const T* xrow, const T* __restrict tp, const T* __restrict rp, int64_t w,
              const CvvdpRowConsts<T>& k, T go, T* __restrict ge, T* __restrict gmask) {
  masker_row(mq, c, xrow, w, gmask);
  const T two_go_dmax2 = 2 * go * k.dmax * k.dmax;
  for (int64_t x = 0; x < w; ++x) {
    const T e = abs_t(tp[x] - rp[x]) + k.eps;
    const T pe = exp_t(k.p * log_t(e));
    const T den = 1 / (1 + gmask[x]);
    const T du = (pe - k.eps_p) * den;
    const T dd = k.dmax + du;
    const T d = k.dmax * du / dd;
    const T gdu = two_go_dmax2 * (d + k.eps) / (dd * dd);
    ge[x] = gdu * k.p * pe / e * den;
    gmask[x] = -gdu * du * den;
  }
}

template <typename T>
void diff_row(const T* mq, int c, const T* xrow, const T* __restrict tp, const T* __restrict rp, int64_t w,
              const CvvdpRowConsts<T>& k, T* __restrict out) {
  masker_row(mq, c, xrow, w, out);
  for (int64_t x = 0; x < w; ++x) {
    const T du = (exp_t(k.p * log_t(abs_t(tp[x] - rp[x]) + k.eps)) - k.eps_p) / (1 + out[x]);
    out[x] = k.dmax * du / (k.dmax + du);
  }
}

template <typename T>
void axpy_row(const T* __restrict src, int64_t w, T a, T* __restrict dst, bool assign) {
  if (assign)
    for (int64_t x = 0; x < w; ++x) dst[x] = a * src[x];
  else
    for (int64_t x = 0; x < w; ++x) dst[x] += a * src[x];
}

template <typename T>
void mix_t_row(const T* gmask, int c, const T* xcm, int64_t w, T* __restrict gsum) {
  for (int k = 0; k < c; ++k) {
    T* __restrict g = gsum + k * w;
    const T x0 = xcm[k];
    const T* __restrict g0 = gmask;
    for (int64_t x = 0; x < w; ++x) g[x] = x0 * g0[x];
    for (int i = 1; i < c; ++i) {
      const T xik = xcm[i * c + k];
      const T* __restrict src = gmask + i * w;
      for (int64_t x = 0; x < w; ++x) g[x] += xik * src[x];
    }
  }
}

// sign(v) as T, branch-free (so that the loop below vectorises).
template <typename T>
inline T sgn_t(T v) {
  return static_cast<T>(v > 0) - static_cast<T>(v < 0);
}

// The chain's pixels; `first`: dl = the term (channel 0), else dl += the term. min(|tp|, |rp|)'s gradient goes to the
// smaller magnitude, split in halves on a tie (torch.minimum's rule): weights 1, 1/2 or 0 as products, no branches.
template <bool First, typename T>
void chain_pixels(const T* __restrict tp, const T* __restrict rp, const T* __restrict sg, const T* __restrict t,
                  const T* __restrict r, const T* __restrict gmin, const T* __restrict ge, const T* __restrict ds,
                  int64_t w, T* __restrict dt, T* __restrict dr, T* __restrict dl) {
  for (int64_t x = 0; x < w; ++x) {
    const T a = abs_t(tp[x]), c = abs_t(rp[x]);
    const T g = gmin[x];
    const T tie = static_cast<T>(a == c) * T(0.5);
    const T ga = g * (static_cast<T>(a < c) + tie);
    const T gc = g * (static_cast<T>(c < a) + tie);
    const T gdiff = ge[x] * sgn_t(tp[x] - rp[x]);
    const T gtp = gdiff + ga * sgn_t(tp[x]);
    const T grp = -gdiff + gc * sgn_t(rp[x]);
    const T s = sg[x];
    dt[x] = gtp * s;
    dr[x] = grp * s;
    const T term = (gtp * t[x] + grp * r[x]) * s * ds[x];
    if (First)
      dl[x] = term;
    else
      dl[x] += term;
  }
}

template <typename T>
void chain_row(const T* tp, const T* rp, const T* sg, const T* t, const T* r, const T* gmin, const T* ge,
               const T* __restrict l, const T* __restrict table, int64_t len, const CvvdpRowConsts<T>& k, int64_t w,
               T* dt, T* dr, T* dl, bool first, T* __restrict ds) {
  const T ln10 = static_cast<T>(kLn10);
  for (int64_t x = 0; x < w; ++x) {  // d S / d log10 L over S (0 where the grid position is clamped): a gather
    const T raw = (l[x] - k.lo) * k.scale;
    const bool inside = raw >= 0 && raw <= k.top;  // selects, no branch: the data decide it pixel by pixel
    const int64_t i0 = static_cast<int64_t>(inside ? raw : T(0));
    const int64_t i1 = i0 + 1 < len ? i0 + 1 : len - 1;
    const T v = ln10 * (table[i1] - table[i0]) * k.scale;
    ds[x] = inside ? v : T(0);
  }
  if (first)
    chain_pixels<true>(tp, rp, sg, t, r, gmin, ge, ds, w, dt, dr, dl);
  else
    chain_pixels<false>(tp, rp, sg, t, r, gmin, ge, ds, w, dt, dr, dl);
}

template <typename T>
void dpow_row(const T* __restrict m, const T* __restrict g, int64_t w, T q, T eps, T* __restrict out) {
  for (int64_t x = 0; x < w; ++x) out[x] = g[x] * q * exp_t((q - 1) * log_t(m[x] + eps));
}

template <typename T>
inline T srgb_eotf(T v) {
  v = v > 0 ? v : T(0);
  v = v < 1 ? v : T(1);
  const T curve = exp_t(T(2.4) * log_t((v + T(0.055)) / T(1.055)));
  const T line = v / T(12.92);
  return v > T(0.04045) ? curve : line;
}

template <typename T>
void srgb_row(const T* const* xs, int64_t w, const T* m, const T* bias, T data_range, T* const* out) {
  for (int k = 0; k < 3; ++k) {  // the EOTF in place in the output rows, then the matrix
    const T* __restrict src = xs[k];
    T* __restrict dst = out[k];
    for (int64_t x = 0; x < w; ++x) dst[x] = srgb_eotf(src[x] / data_range);
  }
  T* __restrict o0 = out[0];
  T* __restrict o1 = out[1];
  T* __restrict o2 = out[2];
  const T m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3], m4 = m[4], m5 = m[5], m6 = m[6], m7 = m[7], m8 = m[8];
  const T b0 = bias[0], b1 = bias[1], b2 = bias[2];
  for (int64_t x = 0; x < w; ++x) {
    const T e0 = o0[x], e1 = o1[x], e2 = o2[x];
    o0[x] = m0 * e0 + m1 * e1 + m2 * e2 + b0;
    o1[x] = m3 * e0 + m4 * e1 + m5 * e2 + b1;
    o2[x] = m6 * e0 + m7 * e1 + m8 * e2 + b2;
  }
}

template <typename T>
void srgb_grad_row(const T* const* grad, const T* const* xs, int64_t w, const T* m, T data_range, T* const* out) {
  for (int k = 0; k < 3; ++k) {
    const T* __restrict g0 = grad[0];
    const T* __restrict g1 = grad[1];
    const T* __restrict g2 = grad[2];
    const T* __restrict xk = xs[k];
    T* __restrict o = out[k];
    const T a = m[k], b = m[3 + k], c = m[6 + k];
    for (int64_t x = 0; x < w; ++x) {
      const T v = xk[x] / data_range;
      const bool inside = v >= 0 && v <= 1;
      const T vc = v > 0 ? (v < 1 ? v : T(1)) : T(0);
      const T slope = vc > T(0.04045) ? T(2.4 / 1.055) * exp_t(T(1.4) * log_t((vc + T(0.055)) / T(1.055)))
                                      : T(1) / T(12.92);
      const T ge = a * g0[x] + b * g1[x] + c * g2[x];
      o[x] = inside ? ge * slope / data_range : T(0);
    }
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

#define TURBOIQA_DEFINE_CVVDP_ROWS(T)                                                                              \
  void TURBOIQA_ISA_NAME(cvvdp_prepare_row)(const T* t, const T* r, const T* l, int64_t w, const T* table,         \
                                            int64_t len, const CvvdpRowConsts<T>& k, T gain, T* s, T* tp, T* rp,  \
                                            T* mm) {                                                               \
    TURBOIQA_ISA_NS::prepare_row(t, r, l, w, table, len, k, gain, s, tp, rp, mm);                                  \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_spow_row)(const T* m, int64_t w, T q, T eps, T eps_q, T* out) {                     \
    TURBOIQA_ISA_NS::spow_row(m, w, q, eps, eps_q, out);                                                           \
  }                                                                                                                \
  double TURBOIQA_ISA_NAME(cvvdp_pool_row)(const T* mq, int c, const T* xrow, const T* tp, const T* rp, int64_t w, \
                                           const CvvdpRowConsts<T>& k, T* scratch) {                               \
    return TURBOIQA_ISA_NS::pool_row(mq, c, xrow, tp, rp, w, k, scratch);                                          \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_grad_row)(const T* mq, int c, const T* xrow, const T* tp, const T* rp, int64_t w,   \
                                         const CvvdpRowConsts<T>& k, T go, T* ge, T* gmask) {                      \
    TURBOIQA_ISA_NS::grad_row(mq, c, xrow, tp, rp, w, k, go, ge, gmask);                                           \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_dpow_row)(const T* m, const T* g, int64_t w, T q, T eps, T* out) {                  \
    TURBOIQA_ISA_NS::dpow_row(m, g, w, q, eps, out);                                                               \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_srgb_row)(const T* const* x, int64_t w, const T* m, const T* bias, T data_range,    \
                                         T* const* out) {                                                          \
    TURBOIQA_ISA_NS::srgb_row(x, w, m, bias, data_range, out);                                                     \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_srgb_grad_row)(const T* const* grad, const T* const* x, int64_t w, const T* m,      \
                                              T data_range, T* const* out) {                                       \
    TURBOIQA_ISA_NS::srgb_grad_row(grad, x, w, m, data_range, out);                                                \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_axpy_row)(const T* src, int64_t w, T a, T* dst, bool assign) {                      \
    TURBOIQA_ISA_NS::axpy_row(src, w, a, dst, assign);                                                             \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_diff_row)(const T* mq, int c, const T* xrow, const T* tp, const T* rp, int64_t w,   \
                                         const CvvdpRowConsts<T>& k, T* out) {                                     \
    TURBOIQA_ISA_NS::diff_row(mq, c, xrow, tp, rp, w, k, out);                                                     \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_mix_t_row)(const T* gmask, int c, const T* xcm, int64_t w, T* gsum) {               \
    TURBOIQA_ISA_NS::mix_t_row(gmask, c, xcm, w, gsum);                                                            \
  }                                                                                                                \
  void TURBOIQA_ISA_NAME(cvvdp_chain_row)(const T* tp, const T* rp, const T* sg, const T* t, const T* r,           \
                                          const T* gmin, const T* ge, const T* l, const T* table, int64_t len,     \
                                          const CvvdpRowConsts<T>& k, int64_t w, T* dt, T* dr, T* dl, bool first, \
                                          T* ds) {                                                                 \
    TURBOIQA_ISA_NS::chain_row(tp, rp, sg, t, r, gmin, ge, l, table, len, k, w, dt, dr, dl, first, ds);            \
  }

TURBOIQA_DEFINE_CVVDP_ROWS(float)
TURBOIQA_DEFINE_CVVDP_ROWS(double)

}  // namespace turboiqa::cpu
