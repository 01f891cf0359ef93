// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake).
//
// Per strip: padded input rows enter a ring of K + 1 slots holding the Q quantities of the statistic (SSIM: x', y',
// x'^2 + y'^2, x'y'; VIFp: x', y', x'^2, y'^2, x'y'; x' = x - shift); for each output row a vertical pass over the
// ring gives Q column sums, a horizontal pass over those gives the Q moments, and the statistic's per-pixel values
// are reduced on the fly (SsimReducer, VifpReducer). Nothing image-sized is written.
#include <cstring>

#include <cmath>

#include "../ssim_math.h"
#include "../vifp_math.h"
#include "isa_vec.h"
#include "ssim_rows.h"

#define TURBOIQA_ISA_FN TURBOIQA_ISA_NAME(ssim_rows)

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

constexpr int kSsimQuantities = 4;  // x', y', x'^2 + y'^2, x'y' (see ssim_pixel4)
constexpr int kVifpQuantities = 5;  // x', y', x'^2, y'^2, x'y' (see vifp_pixel)

inline std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// Row stride (elements) of every buffer: room for a whole vector past the last column plus the window halo.
inline std::size_t row_stride(int padded_width, int window_size) {
  return round_up(static_cast<std::size_t>(padded_width) + window_size + 64, 32);
}

// Interior samples, converted and shifted, with their products. Locals and __restrict let the compiler vectorise
// (through the args struct it would have to assume the stores alias the shift).
// The Q quantities of one shifted sample pair, written to q[0][c] … q[Q-1][c].
template <int Q, typename Acc>
inline void set_quantities(Acc* const* q, int c, Acc vx, Acc vy) {
  q[0][c] = vx;
  q[1][c] = vy;
  if constexpr (Q == kSsimQuantities) {
    q[2][c] = symmetric_sum_of_squares<Acc, Acc>(vx, vy);
    q[3][c] = vx * vy;
  } else {
    q[2][c] = vx * vx;
    q[3][c] = vy * vy;
    q[4][c] = vx * vy;
  }
}

template <int Q, typename In, typename Acc>
inline void convert_span(const In* __restrict xr, const In* __restrict yr, int n, Acc shift,
                         Acc* const* q) {
  Acc* __restrict q0 = q[0];
  Acc* __restrict q1 = q[1];
  Acc* __restrict q2 = q[2];
  Acc* __restrict q3 = q[3];
  Acc* __restrict q4 = q[Q - 1];  // used for Q == 5 only
  for (int c = 0; c < n; ++c) {
    const Acc vx = static_cast<Acc>(xr[c]) - shift;
    const Acc vy = static_cast<Acc>(yr[c]) - shift;
    q0[c] = vx;
    q1[c] = vy;
    if constexpr (Q == kSsimQuantities) {
      q2[c] = symmetric_sum_of_squares<Acc, Acc>(vx, vy);
      q3[c] = vx * vy;
    } else {
      q2[c] = vx * vx;
      q3[c] = vy * vy;
      q4[c] = vx * vy;
    }
  }
}

template <int Q, typename In, typename Acc>
void load_padded_row(const WindowedRowsArgs<In, Acc>& a, int padded_row, Acc* ring_slot, std::size_t stride) {
  Acc* q[Q];
  for (int i = 0; i < Q; ++i) q[i] = ring_slot + i * stride;
  const int src_row = a.row_map[padded_row];
  const int pw = a.padded_width, width = a.width, pad_left = a.pad_left;
  const Acc shift = a.shift;
  const Acc zero = -shift;  // a 'zeros' border sample, in shifted units
  auto set = [&](int c, Acc vx, Acc vy) { set_quantities<Q, Acc>(q, c, vx, vy); };
  if (src_row < 0) {
    for (int c = 0; c < pw; ++c) set(c, zero, zero);
    return;
  }
  const In* xr = a.x + static_cast<std::size_t>(src_row) * width;
  const In* yr = a.y + static_cast<std::size_t>(src_row) * width;
  // Ask for the next input row now: the filtering of this row gives the loads time to arrive.
  if (padded_row + 1 < a.padded_height && a.row_map[padded_row + 1] >= 0) {
    const char* nx = reinterpret_cast<const char*>(a.x + static_cast<std::size_t>(a.row_map[padded_row + 1]) * width);
    const char* ny = reinterpret_cast<const char*>(a.y + static_cast<std::size_t>(a.row_map[padded_row + 1]) * width);
    for (std::size_t off = 0; off < width * sizeof(In); off += 64) {
      __builtin_prefetch(nx + off);
      __builtin_prefetch(ny + off);
    }
  }
  // uint8 is read as is, never copied to a float frame.
  Acc* interior[Q];
  for (int i = 0; i < Q; ++i) interior[i] = q[i] + pad_left;
  convert_span<Q>(xr, yr, width, shift, interior);
  for (int c = 0; c < pw; ++c) {
    if (c == pad_left) c += width;  // skip the interior
    if (c >= pw) break;
    const int src = a.col_map[c];
    set(c, src < 0 ? zero : static_cast<Acc>(xr[src]) - shift, src < 0 ? zero : static_cast<Acc>(yr[src]) - shift);
  }
}

// Vertical pass for `count` (1 or 2) consecutive output rows: rows[t] is ring row i+t, t = 0 … K+count-2.
// Two output rows share K-1 input rows, so each loaded vector feeds two accumulators (fewer loads per FMA).
template <int Q, typename Acc>
inline void vertical_pass(const Acc* const* rows, std::size_t stride, const Acc* w, int K, int count, int pw,
                          Acc* out0, Acc* out1) {
  using V = typename Vec<Acc>::type;
  constexpr int L = Vec<Acc>::lanes;
  for (int c = 0; c < pw; c += L) {
    V acc0[Q], acc1[Q];
    for (int q = 0; q < Q; ++q) acc0[q] = acc1[q] = V{};
    for (int t = 0; t < K + count - 1; ++t) {
      const Acc* row = rows[t] + c;
      const bool first = t < K, second = count == 2 && t >= 1;
      const Acc w0 = first ? w[t] : Acc(0), w1 = second ? w[t - 1] : Acc(0);
      for (int q = 0; q < Q; ++q) {
        const V v = load<V>(row + q * stride);
        acc0[q] += w0 * v;
        acc1[q] += w1 * v;
      }
    }
    for (int q = 0; q < Q; ++q) {
      store(out0 + q * stride + c, acc0[q]);
      if (count == 2) store(out1 + q * stride + c, acc1[q]);
    }
  }
}

// SSIM's reduction of a row: the sums of the SSIM and cs maps, each pixel multiplied by pixel_weight[j] when
// Weighted (IW-SSIM's information-content pooling).
template <typename Acc, bool Weighted>
struct SsimReducer {
  using V = typename Vec<Acc>::type;
  static constexpr int L = Vec<Acc>::lanes;
  Acc shift, c1, c2, cov_norm;
  bool nonnegative_cs;
  const Acc* pixel_weight;
  V sum_ssim = {}, sum_cs = {};

  // m: the 4 moments of output columns first … first + L - 1 (lanes past ow are dropped)
  inline void add(const V* m, int first, int ow) {
    auto px = ssim_pixel4<V, Acc>(m[0], m[1], m[2], m[3], shift, c1, c2, cov_norm, nonnegative_cs);
    if constexpr (Weighted) {  // the weight row is padded to whole vector pairs; lanes past ow are dropped below
      const V weight = load<V>(pixel_weight + first);
      px.ssim *= weight;
      px.cs *= weight;
    }
    if (first + L > ow) {  // partial (or empty) last vector: drop lanes past the row end
      for (int l = ow - first < 0 ? 0 : ow - first; l < L; ++l) {
        px.ssim[l] = 0;
        px.cs[l] = 0;
      }
    }
    sum_ssim += px.ssim;
    sum_cs += px.cs;
  }
  inline void finish(double* row_ssim, double* row_cs) const {
    double total_ssim = 0, total_cs = 0;
    for (int l = 0; l < L; ++l) {
      total_ssim += sum_ssim[l];
      total_cs += sum_cs[l];
    }
    *row_ssim = total_ssim;
    *row_cs = total_cs;
  }
};

// VIFp's reduction of a row: Σ log10(1 + u) of its two terms (vifp_math.h) in float64, as logarithms of per-lane
// products of the factors 1 + u (each formed in float64), renormalised by frexp every few factors: one log per lane
// and row instead of one per pixel, and more accurate than summing rounded logarithms. Fixed order: deterministic.
template <typename Acc>
struct VifpReducer {
  using V = typename Vec<Acc>::type;
  static constexpr int L = Vec<Acc>::lanes;
  static constexpr int kRenormEvery = 8;  // factors per lane between renormalisations: safe for factors < 1e38
  Acc shift, sigma_nsq, eps, floor_rel;
  double prod_num[2 * L], prod_den[2 * L];
  long exp_num[2 * L], exp_den[2 * L];
  int slot = 0, pending = 0;

  inline void start() {
    for (int l = 0; l < 2 * L; ++l) {
      prod_num[l] = prod_den[l] = 1;
      exp_num[l] = exp_den[l] = 0;
    }
  }
  inline void renormalise() {
    for (int l = 0; l < 2 * L; ++l) {
      int e;
      prod_num[l] = std::frexp(prod_num[l], &e);
      exp_num[l] += e;
      prod_den[l] = std::frexp(prod_den[l], &e);
      exp_den[l] += e;
    }
    pending = 0;
  }
  // m: the 5 moments of output columns first … first + L - 1 (lanes past ow count as u = 0)
  inline void add(const V* m, int first, int ow) {
    auto px = vifp_pixel<V, Acc>(m[0], m[1], m[2], m[3], m[4], shift, sigma_nsq, eps, floor_rel);
    if (first + L > ow) {
      for (int l = ow - first < 0 ? 0 : ow - first; l < L; ++l) px.u_num[l] = px.u_den[l] = 0;
    }
    double* pn = prod_num + slot * L;
    double* pd = prod_den + slot * L;
    for (int l = 0; l < L; ++l) {
      pn[l] *= 1.0 + static_cast<double>(px.u_num[l]);
      pd[l] *= 1.0 + static_cast<double>(px.u_den[l]);
    }
    slot ^= 1;
    if (slot == 0 && ++pending == kRenormEvery) renormalise();
  }
  inline void finish(double* row_num, double* row_den) {
    renormalise();
    constexpr double kLog10_2 = 0.30102999566398119521;
    double num = 0, den = 0;
    for (int l = 0; l < 2 * L; ++l) {
      num += std::log10(prod_num[l]) + static_cast<double>(exp_num[l]) * kLog10_2;
      den += std::log10(prod_den[l]) + static_cast<double>(exp_den[l]) * kLog10_2;
    }
    *row_num = num;
    *row_den = den;
  }
};

// Horizontal pass: the Q moments of every output pixel of the row, two vectors at a time, handed to the reducer.
template <int Q, typename Acc, typename Reducer>
inline void horizontal_pass(const Acc* sums, std::size_t stride, const Acc* w, int K, bool symmetric, int ow,
                            Reducer& reducer) {
  using V = typename Vec<Acc>::type;
  constexpr int L = Vec<Acc>::lanes;
  for (int j = 0; j < ow; j += 2 * L) {  // two vectors per step: 2Q independent FMA chains
    V m[2][Q];
    for (int q = 0; q < Q; ++q) m[0][q] = m[1][q] = V{};
    if (symmetric) {
      // w[k] == w[K-1-k]: add the mirrored taps first, so about half the work goes to the FP add pipes.
      const int c = K / 2;
      for (int q = 0; q < Q; ++q) {
        const Acc* sq = sums + q * stride + j;
        m[0][q] = w[c] * load<V>(sq + c);
        m[1][q] = w[c] * load<V>(sq + c + L);
      }
      for (int k = 0; k < c; ++k) {
        const Acc wk = w[k];
        for (int q = 0; q < Q; ++q) {
          const Acc* sq = sums + q * stride + j;
          m[0][q] += wk * (load<V>(sq + k) + load<V>(sq + K - 1 - k));
          m[1][q] += wk * (load<V>(sq + k + L) + load<V>(sq + K - 1 - k + L));
        }
      }
    } else {
      for (int k = 0; k < K; ++k) {
        const Acc wk = w[k];
        for (int q = 0; q < Q; ++q) {
          const Acc* sq = sums + q * stride + j + k;
          m[0][q] += wk * load<V>(sq);
          m[1][q] += wk * load<V>(sq + L);
        }
      }
    }
    reducer.add(m[0], j, ow);
    reducer.add(m[1], j + L, ow);
  }
}

// The strip loop shared by every statistic: `row(sums, i)` reduces output row i from its Q column sums.
template <int Q, typename In, typename Acc, typename RowFn>
void windowed_rows(const WindowedRowsArgs<In, Acc>& a, const RowFn& row) {
  const int K = a.window_size;
  const int slots = K + 1;  // a pair of output rows needs K + 1 input rows
  const std::size_t stride = row_stride(a.padded_width, K);
  const std::size_t slot = Q * stride;
  Acc* ring = a.scratch;
  Acc* sums0 = ring + slots * slot;
  Acc* sums1 = sums0 + slot;
  // The scratch arrives with zeros past the padded width of every row (never written here): those columns must read
  // as zeros.
  for (int r = a.row_begin; r < a.row_begin + K - 1; ++r) load_padded_row<Q>(a, r, ring + (r % slots) * slot, stride);

  const Acc* rows[64];  // window_size <= 63, checked by the caller
  for (int i = a.row_begin; i < a.row_end; i += 2) {
    const int count = i + 1 < a.row_end ? 2 : 1;
    for (int r = i + K - 1; r < i + K - 1 + count; ++r) load_padded_row<Q>(a, r, ring + (r % slots) * slot, stride);
    for (int t = 0; t < K + count - 1; ++t) rows[t] = ring + ((i + t) % slots) * slot;
    vertical_pass<Q>(rows, stride, a.window, K, count, a.padded_width, sums0, sums1);
    for (int h = 0; h < count; ++h) row(h ? sums1 : sums0, stride, i + h);
  }
}

template <typename Acc>
inline bool is_symmetric(const Acc* w, int K) {
  bool symmetric = true;
  for (int k = 0; k < K; ++k) symmetric = symmetric && w[k] == w[K - 1 - k];
  return symmetric;
}

template <typename In, typename Acc>
void ssim_rows_impl(const SsimRowsArgs<In, Acc>& a) {
  const bool symmetric = is_symmetric(a.window, a.window_size);
  windowed_rows<kSsimQuantities>(a, [&](const Acc* sums, std::size_t stride, int i) {
    if (a.pixel_weight) {
      SsimReducer<Acc, true> r{a.shift, a.c1, a.c2, a.cov_norm, a.nonnegative_cs,
                               a.pixel_weight + static_cast<std::size_t>(i - a.row_begin) * a.weight_stride};
      horizontal_pass<kSsimQuantities>(sums, stride, a.window, a.window_size, symmetric, a.out_width, r);
      r.finish(a.row_ssim + i, a.row_cs + i);
    } else {
      SsimReducer<Acc, false> r{a.shift, a.c1, a.c2, a.cov_norm, a.nonnegative_cs, nullptr};
      horizontal_pass<kSsimQuantities>(sums, stride, a.window, a.window_size, symmetric, a.out_width, r);
      r.finish(a.row_ssim + i, a.row_cs + i);
    }
  });
}

template <typename Acc>
void vifp_rows_impl(const VifpRowsArgs<Acc, Acc>& a) {
  const bool symmetric = is_symmetric(a.window, a.window_size);
  windowed_rows<kVifpQuantities>(a, [&](const Acc* sums, std::size_t stride, int i) {
    VifpReducer<Acc> r{a.shift, a.sigma_nsq, a.eps, a.floor_rel};
    r.start();
    horizontal_pass<kVifpQuantities>(sums, stride, a.window, a.window_size, symmetric, a.out_width, r);
    r.finish(a.row_num + i, a.row_den + i);
  });
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_FN(const SsimRowsArgs<std::uint8_t, float>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }
void TURBOIQA_ISA_FN(const SsimRowsArgs<float, float>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }
void TURBOIQA_ISA_FN(const SsimRowsArgs<double, double>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }
void TURBOIQA_ISA_NAME(vifp_rows)(const VifpRowsArgs<float, float>& args) { TURBOIQA_ISA_NS::vifp_rows_impl(args); }
void TURBOIQA_ISA_NAME(vifp_rows)(const VifpRowsArgs<double, double>& args) { TURBOIQA_ISA_NS::vifp_rows_impl(args); }

#if defined(TURBOIQA_ISA_IS_BASELINE)
std::size_t ssim_rows_scratch_size(int padded_width, int window_size, int quantities) {
  // (K + 1 ring slots + 2 column-sum slots) x Q rows; sized for the widest vector of any ISA build.
  return static_cast<std::size_t>(window_size + 3) * quantities *
         TURBOIQA_ISA_NS::row_stride(padded_width, window_size);
}
#endif

}  // namespace turboiqa::cpu
