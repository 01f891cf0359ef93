// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake).
//
// Per strip: padded input rows enter a ring of K slots holding x', y', x'^2, y'^2, x'y' (x' = x - shift); for each
// output row a vertical pass over the ring gives five column sums, a horizontal pass over those gives the five
// moments, and the SSIM / cs values are summed on the fly. Nothing image-sized is written.
#include <cstring>

#include "../ssim_math.h"
#include "ssim_rows.h"

#ifndef TURBOIQA_ISA
#error "TURBOIQA_ISA must be defined"
#endif
#define TURBOIQA_CAT2(a, b) a##b
#define TURBOIQA_CAT(a, b) TURBOIQA_CAT2(a, b)
#define TURBOIQA_ISA_FN TURBOIQA_CAT(ssim_rows_, TURBOIQA_ISA)
#define TURBOIQA_ISA_NS TURBOIQA_CAT(isa_, TURBOIQA_ISA)

#if defined(__AVX512F__)
#define TURBOIQA_VEC_BYTES 64
#elif defined(__AVX__)
#define TURBOIQA_VEC_BYTES 32
#else
#define TURBOIQA_VEC_BYTES 16
#endif

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(TURBOIQA_VEC_BYTES)));
  static constexpr int lanes = TURBOIQA_VEC_BYTES / sizeof(T);
};

template <typename V>
inline V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
inline void store(void* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

constexpr int kQuantities = 5;  // x', y', x'^2, y'^2, x'y'

inline std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// Row stride (elements) of every buffer: room for a whole vector past the last column plus the window halo.
inline std::size_t row_stride(int padded_width, int window_size) {
  return round_up(static_cast<std::size_t>(padded_width) + window_size + 64, 16);
}

template <typename In, typename Acc>
void load_padded_row(const SsimRowsArgs<In, Acc>& a, int padded_row, Acc* ring_slot, std::size_t stride) {
  using V = typename Vec<Acc>::type;
  constexpr int L = Vec<Acc>::lanes;
  Acc* qx = ring_slot;
  Acc* qy = ring_slot + stride;
  Acc* qxx = ring_slot + 2 * stride;
  Acc* qyy = ring_slot + 3 * stride;
  Acc* qxy = ring_slot + 4 * stride;
  const int src_row = a.row_map[padded_row];
  const int pw = a.padded_width;
  const Acc zero = -a.shift;  // a 'zeros' border sample, in shifted units
  if (src_row < 0) {
    for (int c = 0; c < pw; ++c) qx[c] = qy[c] = zero;
  } else {
    const In* xr = a.x + static_cast<std::size_t>(src_row) * a.width;
    const In* yr = a.y + static_cast<std::size_t>(src_row) * a.width;
    // Interior: straight conversion (uint8 is read as is, never copied to a float frame).
    for (int c = 0; c < a.width; ++c) {
      qx[a.pad_left + c] = static_cast<Acc>(xr[c]) - a.shift;
      qy[a.pad_left + c] = static_cast<Acc>(yr[c]) - a.shift;
    }
    for (int c = 0; c < pw; ++c) {
      if (c == a.pad_left) c += a.width;  // skip the interior
      if (c >= pw) break;
      const int src = a.col_map[c];
      qx[c] = src < 0 ? zero : static_cast<Acc>(xr[src]) - a.shift;
      qy[c] = src < 0 ? zero : static_cast<Acc>(yr[src]) - a.shift;
    }
  }
  int c = 0;
  for (; c + L <= pw; c += L) {
    V vx = load<V>(qx + c), vy = load<V>(qy + c);
    store(qxx + c, vx * vx);
    store(qyy + c, vy * vy);
    store(qxy + c, vx * vy);
  }
  for (; c < pw; ++c) {
    qxx[c] = qx[c] * qx[c];
    qyy[c] = qy[c] * qy[c];
    qxy[c] = qx[c] * qy[c];
  }
}

template <typename In, typename Acc>
void ssim_rows_impl(const SsimRowsArgs<In, Acc>& a) {
  using V = typename Vec<Acc>::type;
  constexpr int L = Vec<Acc>::lanes;
  const int K = a.window_size;
  const int pw = a.padded_width;
  const int ow = a.out_width;
  const std::size_t stride = row_stride(pw, K);
  const std::size_t slot = kQuantities * stride;
  Acc* ring = a.scratch;                   // K slots x 5 rows
  Acc* column_sums = ring + K * slot;      // 5 rows
  std::memset(a.scratch, 0, sizeof(Acc) * (K + 1) * slot);

  for (int r = a.row_begin; r < a.row_begin + K - 1; ++r) load_padded_row(a, r, ring + (r % K) * slot, stride);

  const Acc* w = a.window;
  const Acc* rows[64 * kQuantities];  // window_size <= 63, checked by the caller
  for (int i = a.row_begin; i < a.row_end; ++i) {
    load_padded_row(a, i + K - 1, ring + ((i + K - 1) % K) * slot, stride);
    for (int k = 0; k < K; ++k)
      for (int q = 0; q < kQuantities; ++q) rows[q * K + k] = ring + ((i + k) % K) * slot + q * stride;

    // Vertical pass: five weighted column sums over the K ring rows.
    for (int c = 0; c < pw; c += L) {
      for (int q = 0; q < kQuantities; ++q) {
        const Acc* const* rq = rows + q * K;
        V acc = w[0] * load<V>(rq[0] + c);
        for (int k = 1; k < K; ++k) acc += w[k] * load<V>(rq[k] + c);
        store(column_sums + q * stride + c, acc);
      }
    }

    // Horizontal pass fused with the SSIM formula and the row sums.
    const Acc* s0 = column_sums;
    const Acc* s1 = column_sums + stride;
    const Acc* s2 = column_sums + 2 * stride;
    const Acc* s3 = column_sums + 3 * stride;
    const Acc* s4 = column_sums + 4 * stride;
    V sum_ssim = {}, sum_cs = {};
    for (int j = 0; j < ow; j += L) {
      V m0 = w[0] * load<V>(s0 + j), m1 = w[0] * load<V>(s1 + j), m2 = w[0] * load<V>(s2 + j),
        m3 = w[0] * load<V>(s3 + j), m4 = w[0] * load<V>(s4 + j);
      for (int k = 1; k < K; ++k) {
        m0 += w[k] * load<V>(s0 + j + k);
        m1 += w[k] * load<V>(s1 + j + k);
        m2 += w[k] * load<V>(s2 + j + k);
        m3 += w[k] * load<V>(s3 + j + k);
        m4 += w[k] * load<V>(s4 + j + k);
      }
      auto px = ssim_pixel<V, Acc>(m0, m1, m2, m3, m4, a.shift, a.c1, a.c2, a.cov_norm);
      if (j + L > ow) {  // last partial vector: drop lanes past the row end
        for (int l = ow - j; l < L; ++l) {
          px.ssim[l] = 0;
          px.cs[l] = 0;
        }
      }
      sum_ssim += px.ssim;
      sum_cs += px.cs;
    }
    double total_ssim = 0, total_cs = 0;
    for (int l = 0; l < L; ++l) {
      total_ssim += sum_ssim[l];
      total_cs += sum_cs[l];
    }
    a.row_ssim[i] = total_ssim;
    a.row_cs[i] = total_cs;
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_FN(const SsimRowsArgs<std::uint8_t, float>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }
void TURBOIQA_ISA_FN(const SsimRowsArgs<float, float>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }
void TURBOIQA_ISA_FN(const SsimRowsArgs<double, double>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }

#if defined(TURBOIQA_ISA_IS_BASELINE)
std::size_t ssim_rows_scratch_size(int padded_width, int window_size) {
  // (K ring slots + 1 column-sum slot) x 5 rows; sized for the widest vector of any ISA build.
  return static_cast<std::size_t>(window_size + 1) * TURBOIQA_ISA_NS::kQuantities * TURBOIQA_ISA_NS::row_stride(padded_width, window_size);
}
#endif

}  // namespace turboiqa::cpu
