// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512, with matching -m flags from CMake).
//
// Per strip: padded input rows enter a ring of K slots holding x', y', x'^2, y'^2, x'y' (x' = x - shift); for each
// output row a vertical pass over the ring gives five column sums, a horizontal pass over those gives the five
// moments, and the SSIM / cs values are summed on the fly. Nothing image-sized is written.
#include <cstring>

#include "../ssim_math.h"
#include "isa_vec.h"
#include "ssim_rows.h"

#define TURBOIQA_ISA_FN TURBOIQA_ISA_NAME(ssim_rows)

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

constexpr int kQuantities = 4;  // x', y', x'^2 + y'^2, x'y' (see ssim_pixel4)

inline std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// Row stride (elements) of every buffer: room for a whole vector past the last column plus the window halo.
inline std::size_t row_stride(int padded_width, int window_size) {
  return round_up(static_cast<std::size_t>(padded_width) + window_size + 64, 32);
}

// Interior samples, converted and shifted, with their products. Locals and __restrict let the compiler vectorise
// (through the args struct it would have to assume the stores alias the shift).
template <typename In, typename Acc>
inline void convert_span(const In* __restrict xr, const In* __restrict yr, int n, Acc shift, Acc* __restrict qx,
                         Acc* __restrict qy, Acc* __restrict qsq, Acc* __restrict qxy) {
  for (int c = 0; c < n; ++c) {
    const Acc vx = static_cast<Acc>(xr[c]) - shift;
    const Acc vy = static_cast<Acc>(yr[c]) - shift;
    qx[c] = vx;
    qy[c] = vy;
    qsq[c] = symmetric_sum_of_squares<Acc, Acc>(vx, vy);
    qxy[c] = vx * vy;
  }
}

template <typename In, typename Acc>
void load_padded_row(const SsimRowsArgs<In, Acc>& a, int padded_row, Acc* ring_slot, std::size_t stride) {
  Acc* qx = ring_slot;
  Acc* qy = ring_slot + stride;
  Acc* qsq = ring_slot + 2 * stride;
  Acc* qxy = ring_slot + 3 * stride;
  const int src_row = a.row_map[padded_row];
  const int pw = a.padded_width, width = a.width, pad_left = a.pad_left;
  const Acc shift = a.shift;
  const Acc zero = -shift;  // a 'zeros' border sample, in shifted units
  auto set = [&](int c, Acc vx, Acc vy) {
    qx[c] = vx;
    qy[c] = vy;
    qsq[c] = symmetric_sum_of_squares<Acc, Acc>(vx, vy);
    qxy[c] = vx * vy;
  };
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
  convert_span(xr, yr, width, shift, qx + pad_left, qy + pad_left, qsq + pad_left, qxy + pad_left);
  for (int c = 0; c < pw; ++c) {
    if (c == pad_left) c += width;  // skip the interior
    if (c >= pw) break;
    const int src = a.col_map[c];
    set(c, src < 0 ? zero : static_cast<Acc>(xr[src]) - shift, src < 0 ? zero : static_cast<Acc>(yr[src]) - shift);
  }
}

// Vertical pass for `count` (1 or 2) consecutive output rows: rows[t] is ring row i+t, t = 0 … K+count-2.
// Two output rows share K-1 input rows, so each loaded vector feeds two accumulators (fewer loads per FMA).
template <typename Acc>
inline void vertical_pass(const Acc* const* rows, std::size_t stride, const Acc* w, int K, int count, int pw,
                          Acc* out0, Acc* out1) {
  using V = typename Vec<Acc>::type;
  constexpr int L = Vec<Acc>::lanes;
  for (int c = 0; c < pw; c += L) {
    V acc0[kQuantities], acc1[kQuantities];
    for (int q = 0; q < kQuantities; ++q) acc0[q] = acc1[q] = V{};
    for (int t = 0; t < K + count - 1; ++t) {
      const Acc* row = rows[t] + c;
      const bool first = t < K, second = count == 2 && t >= 1;
      const Acc w0 = first ? w[t] : Acc(0), w1 = second ? w[t - 1] : Acc(0);
      for (int q = 0; q < kQuantities; ++q) {
        const V v = load<V>(row + q * stride);
        acc0[q] += w0 * v;
        acc1[q] += w1 * v;
      }
    }
    for (int q = 0; q < kQuantities; ++q) {
      store(out0 + q * stride + c, acc0[q]);
      if (count == 2) store(out1 + q * stride + c, acc1[q]);
    }
  }
}

// Horizontal pass fused with the SSIM formula; returns the row sums of the SSIM and cs maps, each pixel multiplied
// by pixel_weight[j] when Weighted (IW-SSIM's information-content pooling).
template <typename Acc, bool Weighted>
inline void horizontal_pass(const Acc* sums, std::size_t stride, const Acc* w, int K, bool symmetric, int ow,
                            Acc shift, Acc c1, Acc c2, Acc cov_norm, bool nonnegative_cs, const Acc* pixel_weight,
                            double* row_ssim, double* row_cs) {
  using V = typename Vec<Acc>::type;
  constexpr int L = Vec<Acc>::lanes;
  V sum_ssim = {}, sum_cs = {};
  for (int j = 0; j < ow; j += 2 * L) {  // two vectors per step: eight independent FMA chains
    V m[2][kQuantities];
    for (int q = 0; q < kQuantities; ++q) m[0][q] = m[1][q] = V{};
    if (symmetric) {
      // w[k] == w[K-1-k]: add the mirrored taps first, so about half the work goes to the FP add pipes.
      const int c = K / 2;
      for (int q = 0; q < kQuantities; ++q) {
        const Acc* sq = sums + q * stride + j;
        m[0][q] = w[c] * load<V>(sq + c);
        m[1][q] = w[c] * load<V>(sq + c + L);
      }
      for (int k = 0; k < c; ++k) {
        const Acc wk = w[k];
        for (int q = 0; q < kQuantities; ++q) {
          const Acc* sq = sums + q * stride + j;
          m[0][q] += wk * (load<V>(sq + k) + load<V>(sq + K - 1 - k));
          m[1][q] += wk * (load<V>(sq + k + L) + load<V>(sq + K - 1 - k + L));
        }
      }
    } else {
      for (int k = 0; k < K; ++k) {
        const Acc wk = w[k];
        for (int q = 0; q < kQuantities; ++q) {
          const Acc* sq = sums + q * stride + j + k;
          m[0][q] += wk * load<V>(sq);
          m[1][q] += wk * load<V>(sq + L);
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      auto px = ssim_pixel4<V, Acc>(m[h][0], m[h][1], m[h][2], m[h][3], shift, c1, c2, cov_norm, nonnegative_cs);
      const int first = j + h * L;
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
  }
  double total_ssim = 0, total_cs = 0;
  for (int l = 0; l < L; ++l) {
    total_ssim += sum_ssim[l];
    total_cs += sum_cs[l];
  }
  *row_ssim = total_ssim;
  *row_cs = total_cs;
}

template <typename In, typename Acc>
void ssim_rows_impl(const SsimRowsArgs<In, Acc>& a) {
  const int K = a.window_size;
  const int slots = K + 1;  // a pair of output rows needs K + 1 input rows
  const std::size_t stride = row_stride(a.padded_width, K);
  const std::size_t slot = kQuantities * stride;
  Acc* ring = a.scratch;
  Acc* sums0 = ring + slots * slot;
  Acc* sums1 = sums0 + slot;
  // The scratch arrives with zeros past the padded width of every row (never written here): those columns must read
  // as zeros.
  for (int r = a.row_begin; r < a.row_begin + K - 1; ++r) load_padded_row(a, r, ring + (r % slots) * slot, stride);

  bool symmetric = true;
  for (int k = 0; k < K; ++k) symmetric = symmetric && a.window[k] == a.window[K - 1 - k];
  const Acc* rows[64];  // window_size <= 63, checked by the caller
  for (int i = a.row_begin; i < a.row_end; i += 2) {
    const int count = i + 1 < a.row_end ? 2 : 1;
    for (int r = i + K - 1; r < i + K - 1 + count; ++r) load_padded_row(a, r, ring + (r % slots) * slot, stride);
    for (int t = 0; t < K + count - 1; ++t) rows[t] = ring + ((i + t) % slots) * slot;
    vertical_pass(rows, stride, a.window, K, count, a.padded_width, sums0, sums1);
    for (int h = 0; h < count; ++h) {
      const Acc* sums = h ? sums1 : sums0;
      if (a.pixel_weight) {
        const Acc* weight_row = a.pixel_weight + static_cast<std::size_t>(i + h - a.row_begin) * a.weight_stride;
        horizontal_pass<Acc, true>(sums, stride, a.window, K, symmetric, a.out_width, a.shift, a.c1, a.c2,
                                   a.cov_norm, a.nonnegative_cs, weight_row, a.row_ssim + i + h, a.row_cs + i + h);
      } else {
        horizontal_pass<Acc, false>(sums, stride, a.window, K, symmetric, a.out_width, a.shift, a.c1, a.c2,
                                    a.cov_norm, a.nonnegative_cs, nullptr, a.row_ssim + i + h, a.row_cs + i + h);
      }
    }
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_FN(const SsimRowsArgs<std::uint8_t, float>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }
void TURBOIQA_ISA_FN(const SsimRowsArgs<float, float>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }
void TURBOIQA_ISA_FN(const SsimRowsArgs<double, double>& args) { TURBOIQA_ISA_NS::ssim_rows_impl(args); }

#if defined(TURBOIQA_ISA_IS_BASELINE)
std::size_t ssim_rows_scratch_size(int padded_width, int window_size) {
  // (K + 1 ring slots + 2 column-sum slots) x 5 rows; sized for the widest vector of any ISA build.
  return static_cast<std::size_t>(window_size + 3) * TURBOIQA_ISA_NS::kQuantities * TURBOIQA_ISA_NS::row_stride(padded_width, window_size);
}
#endif

}  // namespace turboiqa::cpu
