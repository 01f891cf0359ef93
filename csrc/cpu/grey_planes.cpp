// CPU kernel of grey_planes (csrc/grey_planes.h): one read of the image for the grey/luma planes, their rounding,
// the f x f box mean and the input extrema. Work items are (image, output row): each forms the f input rows it
// needs (R planes of W samples, in a per-chunk buffer that stays in cache), scans the same rows for the extrema and
// writes one output row per plane. Chunks are claimed dynamically (parallel.h); every item writes its own results,
// so any thread count gives the same bits. Plain loops vectorised by the compiler (target clones, no FMA
// contraction: the rounding modes hit exact .5 cases).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../dtypes.h"
#include "../grey_planes.h"
#include "parallel.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TURBOIQA_NO_CLONES)
#define TURBOIQA_GREY_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TURBOIQA_GREY_CLONES
#endif

namespace turboiqa::cpu {

namespace {

struct Extrema {
  double low, high;
  bool bad;
};

// Min, max and a non-finite flag (v * 0 is NaN for NaN and +-Inf) over 64-byte vectors (GCC vector extensions:
// the lane-array form of the same loop was left scalar by the vectoriser).
template <typename T>
inline Extrema span_extrema(const T* __restrict x, int64_t n) {
  constexpr int kLanes = 64 / sizeof(T);
  typedef T V __attribute__((vector_size(64)));
  V lo, hi, z = {};
  for (int l = 0; l < kLanes; ++l) lo[l] = hi[l] = x[0];
  const V zero = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    V a;
    std::memcpy(&a, x + i, sizeof(V));
    lo = a < lo ? a : lo;
    hi = a > hi ? a : hi;
    z += a * zero;
  }
  Extrema e{static_cast<double>(x[0]), static_cast<double>(x[0]), false};
  for (; i < n; ++i) {
    const T a = x[i];
    e.low = a < e.low ? a : e.low;
    e.high = a > e.high ? a : e.high;
    e.bad = e.bad || a * T(0) != T(0);
  }
  for (int l = 0; l < kLanes; ++l) {
    e.low = std::min(e.low, static_cast<double>(lo[l]));
    e.high = std::max(e.high, static_cast<double>(hi[l]));
    e.bad = e.bad || z[l] != z[l];
  }
  return e;
}

TURBOIQA_GREY_CLONES Extrema extrema_of(const float* x, int64_t n) { return span_extrema(x, n); }
TURBOIQA_GREY_CLONES Extrema extrema_of(const double* x, int64_t n) { return span_extrema(x, n); }

// dst[j] = c * src[j] (first channel) or dst[j] += c * src[j] (the next ones): the sum formed left to right.
template <typename In, typename T>
inline void weigh_span(const In* __restrict src, T c, bool first, int64_t n, T* __restrict dst) {
  if (first)
    for (int64_t j = 0; j < n; ++j) dst[j] = c * static_cast<T>(src[j]);
  else
    for (int64_t j = 0; j < n; ++j) dst[j] += c * static_cast<T>(src[j]);
}

TURBOIQA_GREY_CLONES void weigh(const std::uint8_t* s, double c, bool f, int64_t n, double* d) {
  weigh_span(s, c, f, n, d);
}
TURBOIQA_GREY_CLONES void weigh(const float* s, float c, bool f, int64_t n, float* d) { weigh_span(s, c, f, n, d); }
TURBOIQA_GREY_CLONES void weigh(const double* s, double c, bool f, int64_t n, double* d) { weigh_span(s, c, f, n, d); }

// Three channels in one pass: (c0 x0 + c1 x1) + c2 x2, the order of weigh's three calls.
template <typename T>
inline void weigh3_span(const T* __restrict a, const T* __restrict b, const T* __restrict c, T c0, T c1, T c2,
                        int64_t n, T* __restrict dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = (c0 * a[j] + c1 * b[j]) + c2 * c[j];
}

TURBOIQA_GREY_CLONES void weigh3(const float* a, const float* b, const float* c, float c0, float c1, float c2,
                                 int64_t n, float* d) {
  weigh3_span(a, b, c, c0, c1, c2, n, d);
}
TURBOIQA_GREY_CLONES void weigh3(const double* a, const double* b, const double* c, double c0, double c1, double c2,
                                 int64_t n, double* d) {
  weigh3_span(a, b, c, c0, c1, c2, n, d);
}

// Scale and rounding of a formed span, in place.
template <typename T>
inline void finish_span(T* __restrict v, int64_t n, T scale, GreyRounding mode) {
  if (scale != T(1))
    for (int64_t j = 0; j < n; ++j) v[j] *= scale;
  if (mode == GreyRounding::HalfAway)
    for (int64_t j = 0; j < n; ++j) v[j] = std::floor(v[j] + T(0.5));
  else if (mode == GreyRounding::HalfEven)
    for (int64_t j = 0; j < n; ++j) v[j] = std::nearbyint(v[j]);
}

TURBOIQA_GREY_CLONES void finish(float* v, int64_t n, float s, GreyRounding m) { finish_span(v, n, s, m); }
TURBOIQA_GREY_CLONES void finish(double* v, int64_t n, double s, GreyRounding m) { finish_span(v, n, s, m); }

template <typename In, typename T>
inline void cast_span(const In* __restrict src, int64_t n, T* __restrict dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<T>(src[j]);
}

// One output row of one plane from the formed rows (nullptr: the row lies outside the image, a zero row).
template <typename T>
inline void box_row_impl(const T* const* rows, int64_t f, int64_t w, int64_t pad_left, int64_t out_w,
                                  T* __restrict out) {
  const int64_t j_lo = std::min(out_w, (pad_left + f - 1) / f);                  // first box starting inside
  const int64_t j_hi = std::max(j_lo, std::min(out_w, (w + pad_left) / f));      // first box ending outside
  const T inv = T(1) / static_cast<T>(f * f);
  if (f == 1) {  // pad_left = 0: a copy (times 1)
    const T* __restrict r0 = rows[0];
    for (int64_t j = 0; j < out_w; ++j) out[j] = r0[j] * inv;
    return;
  }
  if (f == 2 && rows[0] && rows[1]) {  // the common case: box_downsample's two-row pass, same additions
    const T* __restrict r0 = rows[0] - pad_left;
    const T* __restrict r1 = rows[1] - pad_left;
    for (int64_t j = j_lo; j < j_hi; ++j)
      out[j] = ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1])) * inv;
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

TURBOIQA_GREY_CLONES void box_row(const float* const* rows, int64_t f, int64_t w, int64_t pad_left, int64_t out_w,
                                  float* out) {
  box_row_impl(rows, f, w, pad_left, out_w, out);
}
TURBOIQA_GREY_CLONES void box_row(const double* const* rows, int64_t f, int64_t w, int64_t pad_left, int64_t out_w,
                                  double* out) {
  box_row_impl(rows, f, w, pad_left, out_w, out);
}
TURBOIQA_GREY_CLONES void cast_row(const std::uint8_t* s, int64_t n, float* d) { cast_span(s, n, d); }
TURBOIQA_GREY_CLONES void cast_row(const float* s, int64_t n, float* d) { cast_span(s, n, d); }
TURBOIQA_GREY_CLONES void cast_row(const double* s, int64_t n, double* d) { cast_span(s, n, d); }
TURBOIQA_GREY_CLONES void cast_row(const double* s, int64_t n, float* d) { cast_span(s, n, d); }

struct Geometry {
  int64_t n, channels, planes, h, w, f, pad_top, pad_left, out_h, out_w;
};

template <typename In, typename T>
void run(const at::Tensor& x, const std::vector<double>& coeffs, double scale, GreyRounding mode, const Geometry& g,
         at::Tensor& out, std::vector<Extrema>& ext) {
  const In* xp = x.data_ptr<In>();
  T* op = out.data_ptr<T>();
  constexpr bool kU8 = std::is_same_v<In, std::uint8_t>;
  using Acc = std::conditional_t<kU8, double, T>;  // uint8: the weighted sum in double (the luma operator's)
  const bool identity = coeffs.empty();
  const int64_t hw = g.h * g.w;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.w * g.f * g.planes));
  parallel_chunks(g.n * g.out_h, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> buf(g.f * g.planes * g.w);
    std::vector<Acc> acc(kU8 && !identity ? g.w : 0);
    std::vector<const T*> rows(g.f), plane_rows(g.f);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t img = t / g.out_h, i = t % g.out_h;
      const In* image = xp + img * g.channels * hw;
      const int64_t first = i * g.f - g.pad_top;
      for (int64_t a = 0; a < g.f; ++a) {
        const int64_t r = first + a;
        if (r < 0 || r >= g.h) {
          rows[a] = nullptr;
          continue;
        }
        T* formed = buf.data() + a * g.planes * g.w;
        rows[a] = formed;
        for (int64_t p = 0; p < g.planes; ++p) {
          T* dst = formed + p * g.w;
          if (identity) {
            cast_row(image + p * hw + r * g.w, g.w, dst);
            finish(dst, g.w, static_cast<T>(scale), mode);
            continue;
          }
          if constexpr (kU8) {
            for (int64_t c = 0; c < g.channels; ++c)
              weigh(image + c * hw + r * g.w, coeffs[p * g.channels + c], c == 0, g.w, acc.data());
            if (mode == GreyRounding::HalfAway) {  // MATLAB rgb2gray of uint8: rounded in double
              finish(acc.data(), g.w, scale, mode);
              cast_row(acc.data(), g.w, dst);
            } else {
              cast_row(acc.data(), g.w, dst);
              finish(dst, g.w, static_cast<T>(scale), mode);
            }
          } else if (g.channels == 3) {
            const In* src = image + r * g.w;
            weigh3(src, src + hw, src + 2 * hw, static_cast<T>(coeffs[p * 3]), static_cast<T>(coeffs[p * 3 + 1]),
                   static_cast<T>(coeffs[p * 3 + 2]), g.w, dst);
            finish(dst, g.w, static_cast<T>(scale), mode);
          } else {
            for (int64_t c = 0; c < g.channels; ++c)
              weigh(image + c * hw + r * g.w, static_cast<T>(coeffs[p * g.channels + c]), c == 0, g.w, dst);
            finish(dst, g.w, static_cast<T>(scale), mode);
          }
        }
      }
      for (int64_t p = 0; p < g.planes; ++p) {
        for (int64_t a = 0; a < g.f; ++a) plane_rows[a] = rows[a] ? rows[a] + p * g.w : nullptr;
        T* out_row = op + ((img * g.planes + p) * g.out_h + i) * g.out_w;
        box_row(plane_rows.data(), g.f, g.w, g.pad_left, g.out_w, out_row);
      }
      if constexpr (!kU8) {
        // the extrema of every input row of this item; the last item of an image also takes the rows no box reads
        const int64_t lo = std::max<int64_t>(0, first);
        const int64_t hi = i == g.out_h - 1 ? g.h : std::min(g.h, first + g.f);
        Extrema e{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), false};
        for (int64_t c = 0; c < g.channels && hi > lo; ++c) {
          const Extrema s = extrema_of(image + c * hw + lo * g.w, (hi - lo) * g.w);
          e.low = std::min(e.low, s.low);
          e.high = std::max(e.high, s.high);
          e.bad = e.bad || s.bad;
        }
        ext[t] = e;
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> grey_planes_cpu(const at::Tensor& x_in, at::ArrayRef<double> coeffs, double scale,
                                                   c10::string_view rounding, int64_t factor, int64_t pad_top,
                                                   int64_t pad_left, int64_t out_h, int64_t out_w) {
  const GreyRounding mode =
      check_grey_planes(x_in, coeffs, scale, std::string(rounding), factor, pad_top, pad_left, out_h, out_w);
  const auto dt = x_in.scalar_type();
  const bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  Geometry g{x.size(0), x.size(1), 0, x.size(2), x.size(3), factor, pad_top, pad_left, out_h, out_w};
  g.planes = coeffs.empty() ? g.channels : static_cast<int64_t>(coeffs.size()) / g.channels;
  at::Tensor out = at::empty({g.n, g.planes, out_h, out_w}, x.options().dtype(compute_type(dt)));
  at::Tensor extrema = at::empty({g.n, 2}, x.options().dtype(at::kDouble));
  if (g.n == 0) return {out, extrema};
  std::vector<double> c(coeffs.begin(), coeffs.end());
  std::vector<Extrema> ext(g.n * out_h);
  if (x.scalar_type() == at::kByte)
    run<std::uint8_t, float>(x, c, scale, mode, g, out, ext);
  else if (x.scalar_type() == at::kDouble)
    run<double, double>(x, c, scale, mode, g, out, ext);
  else
    run<float, float>(x, c, scale, mode, g, out, ext);
  double* e = extrema.data_ptr<double>();
  for (int64_t img = 0; img < g.n; ++img) {
    if (x.scalar_type() == at::kByte) {
      e[2 * img] = 0.0;
      e[2 * img + 1] = 255.0;
      continue;
    }
    Extrema t = ext[img * out_h];
    for (int64_t i = 1; i < out_h; ++i) {
      const Extrema& s = ext[img * out_h + i];
      t.low = std::min(t.low, s.low);
      t.high = std::max(t.high, s.high);
      t.bad = t.bad || s.bad;
    }
    e[2 * img] = t.bad ? std::nan("") : t.low;
    e[2 * img + 1] = t.bad ? std::nan("") : t.high;
  }
  return {out, extrema};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) { m.impl("grey_planes", &grey_planes_cpu); }

}  // namespace turboiqa::cpu
