// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake; no FMA
// contraction, CMakeLists.txt: the rounding modes hit exact .5 cases).
//
// Per work item (image, output row i): the f input rows of the box are formed (R planes: weighted channel sums,
// scaled, rounded) into a row buffer that stays in cache, in one pass over the C channel rows that also takes their
// min and max; then each plane's output row is the f x f box mean of the buffer rows. Explicit vectors (GCC vector
// extensions): the f = 2 box takes its horizontal pair sums from even/odd shuffles, floor/nearbyint are one
// instruction on AVX/AVX-512 and exact integer-rounding arithmetic on SSE2. Every value is formed by the scalar
// code's operations in the same order (the scalar tails run that code), so all builds give the same bits.
//
// Non-finite samples: the fused passes only sum the formed plane-0 values per lane (a NaN or infinity in any
// channel makes every plane's value non-finite, whatever the coefficients); a non-finite sum (or an overflow of
// it) sends the item to the exact per-channel check, which alone decides the flag.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "grey_planes_rows.h"
#include "isa_vec.h"

#define TURBOIQA_ISA_FN TURBOIQA_ISA_NAME(grey_planes_rows)

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

template <typename T>
using VecT = typename Vec<T>::type;

template <typename T>
struct IntVec;
template <>
struct IntVec<float> {
  typedef std::int32_t type __attribute__((vector_size(TURBOIQA_VEC_BYTES)));
};
template <>
struct IntVec<double> {
  typedef std::int64_t type __attribute__((vector_size(TURBOIQA_VEC_BYTES)));
};

template <typename T>
inline VecT<T> splat(T s) {
  return s - VecT<T>{};  // a broadcast (s - +0 is s, -0.0 included; 0 + s would turn -0.0 into +0.0)
}

// nearbyint in the default rounding mode without a rounding instruction: |v| < 2^(mantissa bits) rounds to an
// integer (ties to even) by adding and subtracting 2^(mantissa bits); larger values, infinities and NaN are kept.
template <typename T>
inline VecT<T> nearbyint_emulated(VecT<T> v) {
  using V = VecT<T>;
  using I = typename IntVec<T>::type;
  constexpr T big = sizeof(T) == 4 ? T(8388608.0) : T(4503599627370496.0);
  const I sign_bit = (I)splat(T(-0.0));
  const I bits = (I)v;
  const V a = (V)(bits & ~sign_bit);
  const V vbig = splat(big);
  const V r = (V)((I)((a + vbig) - vbig) | (bits & sign_bit));
  return a < vbig ? r : v;
}

template <typename T>
inline VecT<T> floor_emulated(VecT<T> v) {
  const VecT<T> r = nearbyint_emulated<T>(v);
  return r > v ? r - splat(T(1)) : r;
}

#if defined(__AVX512F__) && TURBOIQA_VEC_BYTES == 64
// (the masked forms with every lane set: the plain ones read an undefined source that GCC 12 warns about)
inline VecT<float> vfloor(VecT<float> v) {
  return (VecT<float>)_mm512_mask_roundscale_ps((__m512)v, 0xFFFF, (__m512)v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
inline VecT<double> vfloor(VecT<double> v) {
  return (VecT<double>)_mm512_mask_roundscale_pd((__m512d)v, 0xFF, (__m512d)v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
inline VecT<float> vnearbyint(VecT<float> v) {
  return (VecT<float>)_mm512_mask_roundscale_ps((__m512)v, 0xFFFF, (__m512)v,
                                                _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
}
inline VecT<double> vnearbyint(VecT<double> v) {
  return (VecT<double>)_mm512_mask_roundscale_pd((__m512d)v, 0xFF, (__m512d)v,
                                                 _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
}
#elif defined(__AVX__) && TURBOIQA_VEC_BYTES == 32
inline VecT<float> vfloor(VecT<float> v) {
  return (VecT<float>)_mm256_round_ps((__m256)v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
inline VecT<double> vfloor(VecT<double> v) {
  return (VecT<double>)_mm256_round_pd((__m256d)v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
inline VecT<float> vnearbyint(VecT<float> v) {
  return (VecT<float>)_mm256_round_ps((__m256)v, _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
}
inline VecT<double> vnearbyint(VecT<double> v) {
  return (VecT<double>)_mm256_round_pd((__m256d)v, _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
}
#else
inline VecT<float> vfloor(VecT<float> v) { return floor_emulated<float>(v); }
inline VecT<double> vfloor(VecT<double> v) { return floor_emulated<double>(v); }
inline VecT<float> vnearbyint(VecT<float> v) { return nearbyint_emulated<float>(v); }
inline VecT<double> vnearbyint(VecT<double> v) { return nearbyint_emulated<double>(v); }
#endif

// The rounding of a formed value (M: GreyRoundingCode), vector and scalar forms (same results).
template <int M, typename T>
inline VecT<T> round_vec(VecT<T> v) {
  if constexpr (M == kGreyRoundHalfAway) return vfloor(v + splat(T(0.5)));
  if constexpr (M == kGreyRoundHalfEven) return vnearbyint(v);
  return v;
}
template <int M, typename T>
inline T round_scalar(T v) {
  if constexpr (M == kGreyRoundHalfAway) return std::floor(v + T(0.5));
  if constexpr (M == kGreyRoundHalfEven) return std::nearbyint(v);
  return v;
}

// Consecutive uint8 samples as a float vector (Vec<float>::lanes of them) or a double vector (Vec<double>::lanes):
// GCC 12's __builtin_convertvector widens uint8 lane by lane, so the widening instructions are named here.
#if defined(__AVX512F__) && defined(__AVX2__) && TURBOIQA_VEC_BYTES == 64
inline VecT<float> u8_to_float(const std::uint8_t* p) {
  // (the zero-masked forms with every lane set: the plain ones read an undefined source GCC 12 warns about)
  const __m512i wide = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return (VecT<float>)_mm512_maskz_cvtepi32_ps(0xFFFF, wide);
}
inline VecT<double> u8_to_double(const std::uint8_t* p) {
  return (VecT<double>)_mm512_maskz_cvtepi32_pd(0xFF,
                                                _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
#elif defined(__AVX2__) && TURBOIQA_VEC_BYTES == 32
inline VecT<float> u8_to_float(const std::uint8_t* p) {
  return (VecT<float>)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline VecT<double> u8_to_double(const std::uint8_t* p) {
  std::int32_t four;
  std::memcpy(&four, p, sizeof(four));
  return (VecT<double>)_mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(four)));
}
#elif defined(__SSE2__) && TURBOIQA_VEC_BYTES == 16
inline __m128i u8_widen32(std::int32_t bytes) {
  const __m128i zero = _mm_setzero_si128();
  return _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(bytes), zero), zero);
}
inline VecT<float> u8_to_float(const std::uint8_t* p) {
  std::int32_t four;
  std::memcpy(&four, p, sizeof(four));
  return (VecT<float>)_mm_cvtepi32_ps(u8_widen32(four));
}
inline VecT<double> u8_to_double(const std::uint8_t* p) {
  std::uint16_t two;
  std::memcpy(&two, p, sizeof(two));
  return (VecT<double>)_mm_cvtepi32_pd(u8_widen32(two));
}
#else
inline VecT<float> u8_to_float(const std::uint8_t* p) {
  VecT<float> v;
  for (int l = 0; l < Vec<float>::lanes; ++l) v[l] = static_cast<float>(p[l]);
  return v;
}
inline VecT<double> u8_to_double(const std::uint8_t* p) {
  VecT<double> v;
  for (int l = 0; l < Vec<double>::lanes; ++l) v[l] = static_cast<double>(p[l]);
  return v;
}
#endif

// Extrema of one item: exact min/max; `suspect` when a fused pass saw a non-finite (or overflowing) sum.
struct ItemExtrema {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  bool bad = false;
  bool suspect = false;
};

// Lane-wise min/max and the lanes' sums of the fused passes over an item's rows, folded once per item.
template <typename T>
struct LaneExtrema {
  VecT<T> lo, hi, z;
  T slo, shi;  // the scalar tails'
  bool sbad = false;
  LaneExtrema()
      : lo(splat(std::numeric_limits<T>::infinity())),
        hi(splat(-std::numeric_limits<T>::infinity())),
        z(splat(T(0))),
        slo(std::numeric_limits<T>::infinity()),
        shi(-std::numeric_limits<T>::infinity()) {}
  inline void take(VecT<T> a) {
    lo = a < lo ? a : lo;
    hi = a > hi ? a : hi;
  }
  inline void take_scalar(T a) {
    slo = a < slo ? a : slo;
    shi = a > shi ? a : shi;
    sbad = sbad || a * T(0) != T(0);
  }
  // Folds into e; a non-finite lane sum only marks the item suspect.
  inline void fold(ItemExtrema& e) const {
    double low = slo, high = shi;
    bool suspect = sbad;
    for (int l = 0; l < Vec<T>::lanes; ++l) {
      low = std::min(low, static_cast<double>(lo[l]));
      high = std::max(high, static_cast<double>(hi[l]));
      suspect = suspect || z[l] * T(0) != T(0);
    }
    e.low = std::min(e.low, low);
    e.high = std::max(e.high, high);
    e.suspect = e.suspect || suspect;
  }
};

// Exact min, max and non-finite flag of n samples (v * 0 is NaN for NaN and +-Inf).
template <typename T>
inline void exact_extrema(const T* __restrict x, int64_t n, ItemExtrema& e) {
  using V = VecT<T>;
  constexpr int L = Vec<T>::lanes;
  LaneExtrema<T> s;
  const V zero = splat(T(0));
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const V a = load<V>(x + i);
    s.take(a);
    s.z += a * zero;
  }
  for (; i < n; ++i) s.take_scalar(x[i]);
  double low = s.slo, high = s.shi;
  bool bad = s.sbad;
  for (int l = 0; l < L; ++l) {
    low = std::min(low, static_cast<double>(s.lo[l]));
    high = std::max(high, static_cast<double>(s.hi[l]));
    bad = bad || s.z[l] != s.z[l];
  }
  e.low = std::min(e.low, low);
  e.high = std::max(e.high, high);
  e.bad = e.bad || bad;
}

// Min and max of n samples with the cheap non-finite test of the fused passes (lane sums: suspect, not bad).
template <typename T>
inline void scan_extrema(const T* __restrict x, int64_t n, LaneExtrema<T>& s) {
  using V = VecT<T>;
  constexpr int L = Vec<T>::lanes;
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const V a = load<V>(x + i);
    s.take(a);
    s.z += a;
  }
  for (; i < n; ++i) s.take_scalar(x[i]);
}

// ---- forming the planes of one input row ----

// Three float/double channels, R planes (R1: R == 1): v_p = ((c0 a + c1 b) + c2 c) [* scale], rounded.
template <typename T, int M, bool S, bool R1>
void form3(const T* __restrict a, const T* __restrict b, const T* __restrict c, int64_t w, const T* cf, int64_t R,
           T scale, T* const* dst, LaneExtrema<T>& s) {
  using V = VecT<T>;
  constexpr int L = Vec<T>::lanes;
  const V vs = splat(scale);
  const V k0 = splat(cf[0]), k1 = splat(cf[1]), k2 = splat(cf[2]);
  T* __restrict d0 = dst[0];
  const int64_t planes = R1 ? 1 : R;
  int64_t j = 0;
  for (; j + L <= w; j += L) {
    const V va = load<V>(a + j), vb = load<V>(b + j), vc = load<V>(c + j);
    s.take(va);
    s.take(vb);
    s.take(vc);
    V v = (k0 * va + k1 * vb) + k2 * vc;
    if constexpr (S) v = v * vs;
    v = round_vec<M, T>(v);
    s.z += v;
    store(d0 + j, v);
    for (int64_t p = 1; p < planes; ++p) {
      V u = (splat(cf[3 * p]) * va + splat(cf[3 * p + 1]) * vb) + splat(cf[3 * p + 2]) * vc;
      if constexpr (S) u = u * vs;
      store(dst[p] + j, round_vec<M, T>(u));
    }
  }
  for (; j < w; ++j) {
    const T xa = a[j], xb = b[j], xc = c[j];
    s.take_scalar(xa);
    s.take_scalar(xb);
    s.take_scalar(xc);
    for (int64_t p = 0; p < planes; ++p) {
      T u = (cf[3 * p] * xa + cf[3 * p + 1] * xb) + cf[3 * p + 2] * xc;
      if constexpr (S) u *= scale;
      dst[p][j] = round_scalar<M, T>(u);
    }
  }
}

// One float/double channel as given: v = x * scale, rounded (x * 1 is x: the old kernel's copy).
template <typename T, int M>
void form_identity(const T* __restrict x, int64_t w, T scale, T* __restrict dst, LaneExtrema<T>& s) {
  using V = VecT<T>;
  constexpr int L = Vec<T>::lanes;
  const V vs = splat(scale);
  int64_t j = 0;
  for (; j + L <= w; j += L) {
    const V a = load<V>(x + j);
    s.take(a);
    const V v = round_vec<M, T>(a * vs);
    s.z += v;
    store(dst + j, v);
  }
  for (; j < w; ++j) {
    s.take_scalar(x[j]);
    dst[j] = round_scalar<M, T>(x[j] * scale);
  }
}

// Two half-width float vectors side by side.
template <typename H>
inline VecT<float> concat(H lo, H hi) {
  static_assert(2 * sizeof(H) == sizeof(VecT<float>));
  VecT<float> v;
  std::memcpy(&v, &lo, sizeof(H));
  std::memcpy(reinterpret_cast<char*>(&v) + sizeof(H), &hi, sizeof(H));
  return v;
}

// Three uint8 channels, weighted sums in double (the luma operator's); 'half_away' rounds there (MATLAB rgb2gray),
// the other modes cast to float first.
template <int M, bool S, bool R1>
void form3_u8(const std::uint8_t* __restrict a, const std::uint8_t* __restrict b, const std::uint8_t* __restrict c,
              int64_t w, const double* cf, int64_t R, double scale, float* const* dst) {
  using VD = VecT<double>;
  using VF = VecT<float>;
  constexpr int LF = Vec<float>::lanes, LD = Vec<double>::lanes;
  typedef float FH __attribute__((vector_size(LD * sizeof(float))));
  constexpr bool kRoundInDouble = M == kGreyRoundHalfAway;
  const VD ds = splat(scale);
  const VF fs = splat(static_cast<float>(scale));
  const int64_t planes = R1 ? 1 : R;
  int64_t j = 0;
  for (; j + LF <= w; j += LF) {
    const VD a0 = u8_to_double(a + j), a1 = u8_to_double(a + j + LD);
    const VD b0 = u8_to_double(b + j), b1 = u8_to_double(b + j + LD);
    const VD c0 = u8_to_double(c + j), c1 = u8_to_double(c + j + LD);
    for (int64_t p = 0; p < planes; ++p) {
      const VD k0 = splat(cf[3 * p]), k1 = splat(cf[3 * p + 1]), k2 = splat(cf[3 * p + 2]);
      VD v0 = (k0 * a0 + k1 * b0) + k2 * c0;
      VD v1 = (k0 * a1 + k1 * b1) + k2 * c1;
      VF v;
      if constexpr (kRoundInDouble) {
        if constexpr (S) {
          v0 = v0 * ds;
          v1 = v1 * ds;
        }
        v = concat(__builtin_convertvector(round_vec<M, double>(v0), FH),
                   __builtin_convertvector(round_vec<M, double>(v1), FH));
      } else {
        v = concat(__builtin_convertvector(v0, FH), __builtin_convertvector(v1, FH));
        if constexpr (S) v = v * fs;
        v = round_vec<M, float>(v);
      }
      store(dst[p] + j, v);
    }
  }
  for (; j < w; ++j) {
    const double xa = a[j], xb = b[j], xc = c[j];
    for (int64_t p = 0; p < planes; ++p) {
      double u = (cf[3 * p] * xa + cf[3 * p + 1] * xb) + cf[3 * p + 2] * xc;
      if constexpr (kRoundInDouble) {
        if constexpr (S) u *= scale;
        dst[p][j] = static_cast<float>(round_scalar<M, double>(u));
      } else {
        float v = static_cast<float>(u);
        if constexpr (S) v *= static_cast<float>(scale);
        dst[p][j] = round_scalar<M, float>(v);
      }
    }
  }
}

// One uint8 channel as given: float(x) [* scale], rounded.
template <int M, bool S>
void form_identity_u8(const std::uint8_t* __restrict x, int64_t w, float scale, float* __restrict dst) {
  using VF = VecT<float>;
  constexpr int L = Vec<float>::lanes;
  const VF vs = splat(scale);
  int64_t j = 0;
  for (; j + L <= w; j += L) {
    VF v = u8_to_float(x + j);
    if constexpr (S) v = v * vs;
    store(dst + j, round_vec<M, float>(v));
  }
  for (; j < w; ++j) {
    float v = static_cast<float>(x[j]);
    if constexpr (S) v *= scale;
    dst[j] = round_scalar<M, float>(v);
  }
}

// Scale and rounding of a formed span, in place (the general channel counts).
template <int M, typename T>
void finish_span(T* __restrict v, int64_t n, T scale) {
  using V = VecT<T>;
  constexpr int L = Vec<T>::lanes;
  const bool scaled = scale != T(1);
  const V vs = splat(scale);
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    V u = load<V>(v + j);
    if (scaled) u = u * vs;
    store(v + j, round_vec<M, T>(u));
  }
  for (; j < n; ++j) {
    T u = v[j];
    if (scaled) u *= scale;
    v[j] = round_scalar<M, T>(u);
  }
}

template <int M, typename T>
void finish_any(T* v, int64_t n, T scale) {
  finish_span<M, T>(v, n, scale);
}

// dst[j] = c * src[j] (first channel) or dst[j] += c * src[j] (the next ones): the sum formed left to right.
template <typename In, typename T>
void weigh_span(const In* __restrict src, T c, bool first, int64_t n, T* __restrict dst) {
  if (first)
    for (int64_t j = 0; j < n; ++j) dst[j] = c * static_cast<T>(src[j]);
  else
    for (int64_t j = 0; j < n; ++j) dst[j] += c * static_cast<T>(src[j]);
}

template <typename In, typename T>
void cast_span(const In* __restrict src, int64_t n, T* __restrict dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<T>(src[j]);
}

// ---- the box mean of one output row ----

template <typename V, std::size_t... I>
inline V even_lanes(V a, V b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (2 * I)...);
}
template <typename V, std::size_t... I>
inline V odd_lanes(V a, V b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (2 * I + 1)...);
}

// Box sums of one row, hs[j] = ((0 + r[jF]) + r[jF + 1]) + ... (a compile-time F: the compiler vectorises it with
// lane permutes).
template <int F, typename T>
void hsum_row(const T* __restrict r, int64_t j_lo, int64_t j_hi, T* __restrict hs) {
  for (int64_t j = j_lo; j < j_hi; ++j) {
    const T* b = r + j * F;
    T s = T(0);
    for (int k = 0; k < F; ++k) s += b[k];
    hs[j] = s;
  }
}

// One output row of one plane from its f formed rows (nullptr: the row lies outside the image, a zero row); the
// additions of box_downsample's 'zeros' border.
template <typename T>
void box_row(const T* const* rows, int64_t f, int64_t w, int64_t pad_left, int64_t out_w, T* __restrict out,
             T* __restrict tmp) {
  using V = VecT<T>;
  constexpr int L = Vec<T>::lanes;
  const int64_t j_lo = std::min(out_w, (pad_left + f - 1) / f);              // first box starting inside
  const int64_t j_hi = std::max(j_lo, std::min(out_w, (w + pad_left) / f));  // first box ending outside
  const T inv = T(1) / static_cast<T>(f * f);
  const V vinv = splat(inv);
  if (f == 1) {  // pad_left = 0: a copy (times 1)
    const T* __restrict r0 = rows[0];
    int64_t j = 0;
    for (; j + L <= out_w; j += L) store(out + j, load<V>(r0 + j) * vinv);
    for (; j < out_w; ++j) out[j] = r0[j] * inv;
    return;
  }
  if (f == 2 && rows[0] && rows[1]) {  // the common case: box_downsample's two-row pass, same additions
    const T* __restrict r0 = rows[0] - pad_left;
    const T* __restrict r1 = rows[1] - pad_left;
    constexpr auto lanes = std::make_index_sequence<L>{};
    int64_t j = j_lo;
    for (; j + L <= j_hi; j += L) {
      const V a0 = load<V>(r0 + 2 * j), a1 = load<V>(r0 + 2 * j + L);
      const V b0 = load<V>(r1 + 2 * j), b1 = load<V>(r1 + 2 * j + L);
      const V sa = even_lanes(a0, a1, lanes) + odd_lanes(a0, a1, lanes);
      const V sb = even_lanes(b0, b1, lanes) + odd_lanes(b0, b1, lanes);
      store(out + j, (sa + sb) * vinv);
    }
    for (; j < j_hi; ++j) out[j] = ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1])) * inv;
  } else if (f == 3 || f == 4) {  // MDSI / SR-SIM / VSI at 1080p: row sums by row, accumulated in order in out
    for (int64_t j = j_lo; j < j_hi; ++j) out[j] = T(0);
    for (int64_t a = 0; a < f; ++a) {
      if (!rows[a]) continue;
      if (f == 3)
        hsum_row<3>(rows[a] - pad_left, j_lo, j_hi, tmp);
      else
        hsum_row<4>(rows[a] - pad_left, j_lo, j_hi, tmp);
      for (int64_t j = j_lo; j < j_hi; ++j) out[j] += tmp[j];
    }
    for (int64_t j = j_lo; j < j_hi; ++j) out[j] *= inv;
  } else {
    for (int64_t j = j_lo; j < j_hi; ++j) {
      T acc = T(0);
      for (int64_t a = 0; a < f; ++a) {
        if (!rows[a]) continue;
        const T* box = rows[a] + j * f - pad_left;
        T s = T(0);
        for (int64_t b = 0; b < f; ++b) s += box[b];
        acc += s;
      }
      out[j] = acc * inv;
    }
  }
  for (int64_t j = 0; j < out_w; ++j) {  // boxes crossing the left/right border: zeros outside
    if (j == j_lo) j = j_hi;
    if (j >= out_w) break;
    T acc = T(0);
    for (int64_t a = 0; a < f; ++a) {
      if (!rows[a]) continue;
      T s = T(0);
      for (int64_t b = 0; b < f; ++b) {
        const int64_t c = j * f - pad_left + b;
        if (c >= 0 && c < w) s += rows[a][c];
      }
      acc += s;
    }
    out[j] = acc * inv;
  }
}

// ---- the items ----

template <typename In, typename T, int M>
struct Former {
  static constexpr bool kU8 = std::is_same_v<In, std::uint8_t>;
  const GreyPlanesArgs<In, T>& g;
  T cf[64];       // the coefficients in the compute dtype (float/double input)
  double* acc;    // one double row (uint8 input, general channel counts)
  bool scaled;

  // Channels as given: plane p of input row r into dst; extrema of that channel row into e.
  void form_plane(const In* image, int64_t r, int64_t p, T* dst, LaneExtrema<T>& e) const {
    const In* src = image + p * g.h * g.w + r * g.w;
    if constexpr (kU8) {
      (void)e;
      if (scaled)
        form_identity_u8<M, true>(src, g.w, static_cast<float>(g.scale), dst);
      else
        form_identity_u8<M, false>(src, g.w, static_cast<float>(g.scale), dst);
    } else {
      form_identity<T, M>(src, g.w, static_cast<T>(g.scale), dst, e);
    }
  }

  // Forms the planes of input row r of image `image` into dst[0 .. R); extrema of the channel rows into e.
  void form(const In* image, int64_t r, T* const* dst, LaneExtrema<T>& e) const {
    const int64_t w = g.w, hw = g.h * g.w;
    const In* src = image + r * w;
    if constexpr (kU8) {
      const float s = static_cast<float>(g.scale);
      if (!g.coeffs) {
        for (int64_t p = 0; p < g.planes; ++p) {
          if (scaled)
            form_identity_u8<M, true>(src + p * hw, w, s, dst[p]);
          else
            form_identity_u8<M, false>(src + p * hw, w, s, dst[p]);
        }
      } else if (g.channels == 3) {
        const double* c = g.coeffs;
        if (g.planes == 1)
          scaled ? form3_u8<M, true, true>(src, src + hw, src + 2 * hw, w, c, 1, g.scale, dst)
                 : form3_u8<M, false, true>(src, src + hw, src + 2 * hw, w, c, 1, g.scale, dst);
        else
          scaled ? form3_u8<M, true, false>(src, src + hw, src + 2 * hw, w, c, g.planes, g.scale, dst)
                 : form3_u8<M, false, false>(src, src + hw, src + 2 * hw, w, c, g.planes, g.scale, dst);
      } else {
        for (int64_t p = 0; p < g.planes; ++p) {
          for (int64_t ch = 0; ch < g.channels; ++ch)
            weigh_span(src + ch * hw, g.coeffs[p * g.channels + ch], ch == 0, w, acc);
          if (M == kGreyRoundHalfAway) {  // MATLAB rgb2gray of uint8: rounded in double
            finish_any<M, double>(acc, w, g.scale);
            cast_span(acc, w, dst[p]);
          } else {
            cast_span(acc, w, dst[p]);
            finish_any<M, float>(dst[p], w, s);
          }
        }
      }
    } else {
      const T s = static_cast<T>(g.scale);
      if (!g.coeffs) {
        for (int64_t p = 0; p < g.planes; ++p) form_identity<T, M>(src + p * hw, w, s, dst[p], e);
      } else if (g.channels == 3) {
        if (g.planes == 1)
          scaled ? form3<T, M, true, true>(src, src + hw, src + 2 * hw, w, cf, 1, s, dst, e)
                 : form3<T, M, false, true>(src, src + hw, src + 2 * hw, w, cf, 1, s, dst, e);
        else
          scaled ? form3<T, M, true, false>(src, src + hw, src + 2 * hw, w, cf, g.planes, s, dst, e)
                 : form3<T, M, false, false>(src, src + hw, src + 2 * hw, w, cf, g.planes, s, dst, e);
      } else {
        for (int64_t p = 0; p < g.planes; ++p) {
          for (int64_t ch = 0; ch < g.channels; ++ch)
            weigh_span(src + ch * hw, cf[p * g.channels + ch], ch == 0, w, dst[p]);
          finish_any<M, T>(dst[p], w, s);
        }
        for (int64_t ch = 0; ch < g.channels; ++ch) scan_extrema(src + ch * hw, w, e);
      }
    }
  }
};

template <typename In, typename T, int M>
void rows_impl(const GreyPlanesArgs<In, T>& g, int64_t begin, int64_t end, void* scratch) {
  constexpr bool kU8 = std::is_same_v<In, std::uint8_t>;
  const int64_t f = g.f, R = g.planes, w = g.w, hw = g.h * g.w, stride = grey_row_stride(w);
  // scratch: min(f, h) x R formed rows (slot r - lo: only rows inside the image), one double row, row pointers
  T* buf = static_cast<T*>(scratch);
  double* acc = reinterpret_cast<double*>(buf + std::min(f, g.h) * R * stride);
  void** slots = reinterpret_cast<void**>(acc + stride);
  const void** cslots = const_cast<const void**>(slots);
  const T** rows = reinterpret_cast<const T**>(cslots);                  // [a * R + p]
  T** dst = reinterpret_cast<T**>(slots + f * R);                        // [p]
  const T** plane_rows = reinterpret_cast<const T**>(cslots + f * R + R);  // [a]

  Former<In, T, M> former{g, {}, acc, g.scale != 1.0};
  if constexpr (!kU8)
    if (g.coeffs)
      for (int64_t k = 0; k < R * g.channels; ++k) former.cf[k] = static_cast<T>(g.coeffs[k]);
  if constexpr (!kU8) former.scaled = g.scale != 1.0;
  // Per channel as given, unscaled and unrounded: the box reads the input rows themselves (x * 1 is x).
  const bool direct = !kU8 && !g.coeffs && g.scale == 1.0 && M == kGreyRoundNone;
  const bool into_out = !direct && f == 1 && g.out_w == w;  // f = 1: the formed row is the output row (times 1)
  const bool per_plane = !g.coeffs;

  for (int64_t t = begin; t < end; ++t) {
    const int64_t img = t / g.out_h, i = t % g.out_h;
    const In* image = g.x + img * g.channels * hw;
    T* out_base = g.out + (img * R * g.out_h + i) * g.out_w;  // plane p at + p * out_h * out_w
    const int64_t first = i * f - g.pad_top;
    LaneExtrema<T> lanes;
    const int64_t lo = std::max<int64_t>(0, first);
    const int64_t formed_hi = std::min(g.h, first + f);
    if (per_plane) {
      // channels as given: plane by plane, each box right after its f rows are formed (they stay in L1)
      for (int64_t p = 0; p < R; ++p) {
        if constexpr (!kU8)
          if (direct) scan_extrema(reinterpret_cast<const T*>(image) + p * hw + lo * w, (formed_hi - lo) * w, lanes);
        for (int64_t a = 0; a < f; ++a) {
          const int64_t r = first + a;
          if (r < 0 || r >= g.h) {
            plane_rows[a] = nullptr;
          } else if (direct) {
            plane_rows[a] = reinterpret_cast<const T*>(image + p * hw + r * w);  // In = T here
          } else {
            T* d = into_out ? out_base + p * g.out_h * g.out_w : buf + (r - lo) * stride;
            former.form_plane(image, r, p, d, lanes);
            plane_rows[a] = d;
          }
        }
        if (!into_out) box_row(plane_rows, f, w, g.pad_left, g.out_w, out_base + p * g.out_h * g.out_w, reinterpret_cast<T*>(acc));
      }
    } else {
      for (int64_t a = 0; a < f; ++a) {
        const int64_t r = first + a;
        if (r < 0 || r >= g.h) {
          for (int64_t p = 0; p < R; ++p) rows[a * R + p] = nullptr;
          continue;
        }
        for (int64_t p = 0; p < R; ++p) {
          dst[p] = into_out ? out_base + p * g.out_h * g.out_w : buf + ((r - lo) * R + p) * stride;
          rows[a * R + p] = dst[p];
        }
        former.form(image, r, dst, lanes);
      }
      if (!into_out) {
        for (int64_t p = 0; p < R; ++p) {
          for (int64_t a = 0; a < f; ++a) plane_rows[a] = rows[a * R + p];
          box_row(plane_rows, f, w, g.pad_left, g.out_w, out_base + p * g.out_h * g.out_w, reinterpret_cast<T*>(acc));
        }
      }
    }
    if constexpr (!kU8) {
      // the last item of an image also takes the rows no box reads
      const int64_t hi = i == g.out_h - 1 ? g.h : formed_hi;
      if (hi > formed_hi)
        for (int64_t ch = 0; ch < g.channels; ++ch)
          scan_extrema(image + ch * hw + formed_hi * w, (hi - formed_hi) * w, lanes);
      ItemExtrema e;
      lanes.fold(e);
      if (e.suspect) {  // a non-finite sample, or only an overflowing lane sum: the exact check decides
        e = ItemExtrema{};
        for (int64_t ch = 0; ch < g.channels; ++ch) exact_extrema(image + ch * hw + lo * w, (hi - lo) * w, e);
      }
      g.ext[t] = GreyExtrema{e.low, e.high, e.bad};
    }
  }
}

template <typename In, typename T>
void rows_dispatch(const GreyPlanesArgs<In, T>& g, int64_t begin, int64_t end, void* scratch) {
  switch (g.rounding) {
    case kGreyRoundHalfAway: return rows_impl<In, T, kGreyRoundHalfAway>(g, begin, end, scratch);
    case kGreyRoundHalfEven: return rows_impl<In, T, kGreyRoundHalfEven>(g, begin, end, scratch);
    default: return rows_impl<In, T, kGreyRoundNone>(g, begin, end, scratch);
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_FN(const GreyPlanesArgs<std::uint8_t, float>& a, int64_t begin, int64_t end, void* s) {
  TURBOIQA_ISA_NS::rows_dispatch(a, begin, end, s);
}
void TURBOIQA_ISA_FN(const GreyPlanesArgs<float, float>& a, int64_t begin, int64_t end, void* s) {
  TURBOIQA_ISA_NS::rows_dispatch(a, begin, end, s);
}
void TURBOIQA_ISA_FN(const GreyPlanesArgs<double, double>& a, int64_t begin, int64_t end, void* s) {
  TURBOIQA_ISA_NS::rows_dispatch(a, begin, end, s);
}

}  // namespace turboiqa::cpu
