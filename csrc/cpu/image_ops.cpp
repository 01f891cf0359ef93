// CPU kernels of the small image operators: squared_error_sum, box_downsample, luma. All memory-bound; written
// as plain loops the compiler vectorises, split into fixed-size chunks (parallel.h: thread-count independent
// results).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../image_ops.h"
#include "../psnr.h"
#include "dispatch.h"
#include "parallel.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TURBOIQA_NO_CLONES)
#define TURBOIQA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TURBOIQA_CLONES
#endif

namespace turboiqa::cpu {

namespace {

// Elements per block: a float block is summed in 16 float lanes then added in double (the accuracy of the
// float sums depends on it); a uint8 block is summed exactly in int32 (255^2 * 32768 < 2^31), one call each.
constexpr int64_t kBlockFloat = 4096, kBlockU8 = 32768;
// Blocks per work chunk (parallel.h), about 64-256 KiB of each input.
constexpr int64_t kChunkBlocks = 8;

struct BlockStats {
  double sse, x_min, x_max, y_min, y_max;
};

// uint8: one pass, the sum only. The dtype bounds the values, so the extrema are its bounds (0, 255) and the
// samples are never compared: the metrics need no range check for uint8. |x - y| is formed on bytes (saturating
// subtractions both ways, or-ed), widened to 16 bits and squared-and-paired into 32-bit lanes by pmaddwd: two
// loads and six vector instructions per 32 or 64 bytes. A block's sum is exact in int32 (n <= kBlockU8:
// 255^2 * 32768 < 2^31). The version for the selected instruction set is picked once, at the first call.
BlockStats u8_block_stats(int64_t sum) { return {static_cast<double>(sum), 0.0, 255.0, 0.0, 255.0}; }

int64_t squared_error_u8_scalar(const std::uint8_t* __restrict x, const std::uint8_t* __restrict y, int64_t n) {
  std::int32_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const std::int32_t d = static_cast<std::int32_t>(x[i]) - static_cast<std::int32_t>(y[i]);
    sum += d * d;
  }
  return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) int64_t squared_error_u8_avx2(const std::uint8_t* x, const std::uint8_t* y,
                                                               int64_t n) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc = zero;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + i));
    const __m256i d = _mm256_or_si256(_mm256_subs_epu8(a, b), _mm256_subs_epu8(b, a));
    const __m256i lo = _mm256_unpacklo_epi8(d, zero), hi = _mm256_unpackhi_epi8(d, zero);
    acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(lo, lo), _mm256_madd_epi16(hi, hi)));
  }
  alignas(32) std::int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  int64_t sum = 0;
  for (std::int32_t v : lanes) sum += v;
  return sum + squared_error_u8_scalar(x + i, y + i, n - i);
}

__attribute__((target("avx512f,avx512bw"))) int64_t squared_error_u8_avx512(const std::uint8_t* x,
                                                                             const std::uint8_t* y, int64_t n) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc = zero;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i a = _mm512_loadu_si512(x + i), b = _mm512_loadu_si512(y + i);
    const __m512i d = _mm512_or_si512(_mm512_subs_epu8(a, b), _mm512_subs_epu8(b, a));
    const __m512i lo = _mm512_unpacklo_epi8(d, zero), hi = _mm512_unpackhi_epi8(d, zero);
    acc = _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(lo, lo), _mm512_madd_epi16(hi, hi)));
  }
  return _mm512_reduce_add_epi32(acc) + squared_error_u8_scalar(x + i, y + i, n - i);
}
#endif

using SquaredErrorU8 = int64_t (*)(const std::uint8_t*, const std::uint8_t*, int64_t);

// The instruction set chosen for every CPU kernel (dispatch.h: the CPU's best, capped by TURBOIQA_CPU_ISA).
SquaredErrorU8 pick_squared_error_u8() {
  switch (selected_isa_enum()) {
#if defined(__x86_64__) && defined(__GNUC__)
    case Isa::Avx512: return squared_error_u8_avx512;
    case Isa::Avx2: return squared_error_u8_avx2;
#endif
    default: return squared_error_u8_scalar;
  }
}

BlockStats block_squared_error(const std::uint8_t* __restrict x, const std::uint8_t* __restrict y, int64_t n) {
  static const SquaredErrorU8 kernel = pick_squared_error_u8();
  return u8_block_stats(kernel(x, y, n));
}

// Floating point: 16 independent lanes for the sum and the extrema (vectorisable without reassociation flags) in
// the same pass, so a float pair is read once for the value and the range/NaN/Inf checks; blocks of 4096 elements
// are then combined in double.
template <typename T>
inline BlockStats block_squared_error_float(const T* __restrict x, const T* __restrict y, int64_t n) {
  using Acc = T;
  Acc sum[16] = {};
  T xmin[16], xmax[16], ymin[16], ymax[16];
  for (int l = 0; l < 16; ++l) {
    xmin[l] = xmax[l] = x[0];
    ymin[l] = ymax[l] = y[0];
  }
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) {
      const T a = x[i + l], b = y[i + l];
      const Acc d = static_cast<Acc>(a) - static_cast<Acc>(b);
      sum[l] += d * d;
      xmin[l] = a < xmin[l] ? a : xmin[l];
      xmax[l] = a > xmax[l] ? a : xmax[l];
      ymin[l] = b < ymin[l] ? b : ymin[l];
      ymax[l] = b > ymax[l] ? b : ymax[l];
    }
  BlockStats s{0, static_cast<double>(x[0]), static_cast<double>(x[0]), static_cast<double>(y[0]),
               static_cast<double>(y[0])};
  auto take = [&s](double sq, double a, double b) {
    s.sse += sq;
    s.x_min = a < s.x_min ? a : s.x_min;
    s.x_max = a > s.x_max ? a : s.x_max;
    s.y_min = b < s.y_min ? b : s.y_min;
    s.y_max = b > s.y_max ? b : s.y_max;
  };
  for (int l = 0; l < 16; ++l) {
    take(static_cast<double>(sum[l]), static_cast<double>(xmin[l]), static_cast<double>(ymin[l]));
    take(0.0, static_cast<double>(xmax[l]), static_cast<double>(ymax[l]));
  }
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    take(d * d, static_cast<double>(x[i]), static_cast<double>(y[i]));
  }
  return s;
}

TURBOIQA_CLONES
BlockStats block_squared_error(const float* __restrict x, const float* __restrict y, int64_t n) {
  return block_squared_error_float(x, y, n);
}

TURBOIQA_CLONES
BlockStats block_squared_error(const double* __restrict x, const double* __restrict y, int64_t n) {
  return block_squared_error_float(x, y, n);
}

template <typename T>
void run_blocks(const at::Tensor& x, const at::Tensor& y, int64_t per_image, int64_t block, int64_t blocks,
                std::vector<BlockStats>& partial) {
  const T* xp = x.data_ptr<T>();
  const T* yp = y.data_ptr<T>();
  parallel_chunks(static_cast<int64_t>(partial.size()), kChunkBlocks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t img = t / blocks, start = (t % blocks) * block;
      const int64_t len = std::min(block, per_image - start);
      partial[t] = block_squared_error(xp + img * per_image + start, yp + img * per_image + start, len);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> squared_error_sum_cpu(const at::Tensor& x_in, const at::Tensor& y_in) {
  check_pair_images(x_in, y_in, "squared_error_sum");
  auto dt = x_in.scalar_type();
  bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  at::Tensor y = native ? y_in.contiguous() : y_in.to(at::kFloat).contiguous();
  const int64_t n = x.size(0), per_image = x.numel() / std::max<int64_t>(n, 1);
  at::Tensor out = at::zeros({n}, x.options().dtype(at::kDouble));
  at::Tensor extrema = at::zeros({n, 4}, x.options().dtype(at::kDouble));
  if (x.numel() == 0) return {out, extrema};
  const int64_t block = x.scalar_type() == at::kByte ? kBlockU8 : kBlockFloat;
  const int64_t blocks = (per_image + block - 1) / block;
  std::vector<BlockStats> partial(n * blocks);
  if (x.scalar_type() == at::kByte)
    run_blocks<std::uint8_t>(x, y, per_image, block, blocks, partial);
  else if (x.scalar_type() == at::kDouble)
    run_blocks<double>(x, y, per_image, block, blocks, partial);
  else
    run_blocks<float>(x, y, per_image, block, blocks, partial);
  double* o = out.data_ptr<double>();
  double* e = extrema.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    BlockStats t = partial[i * blocks];
    for (int64_t b = 1; b < blocks; ++b) {
      const BlockStats& p = partial[i * blocks + b];
      t.sse += p.sse;
      t.x_min = std::min(t.x_min, p.x_min);
      t.x_max = std::max(t.x_max, p.x_max);
      t.y_min = std::min(t.y_min, p.y_min);
      t.y_max = std::max(t.y_max, p.y_max);
    }
    o[i] = t.sse;
    e[4 * i] = t.x_min;
    e[4 * i + 1] = t.x_max;
    e[4 * i + 2] = t.y_min;
    e[4 * i + 3] = t.y_max;
  }
  return {out, extrema};
}

// The sums are finished in one loop into one new tensor: no further ATen call after the kernel. An image whose sum
// is NaN gets NaN extrema (the caller's NaN check); the mean is taken in double, then cast.
std::tuple<at::Tensor, at::Tensor> psnr_db_cpu(const at::Tensor& x, const at::Tensor& y, double data_range,
                                               double eps, double max_db, c10::string_view reduction_name) {
  const std::string reduction(reduction_name);
  check_psnr_args(x, y, data_range, eps, reduction);
  auto [sse, extrema] = squared_error_sum_cpu(x, y);
  const int64_t n = sse.numel();
  const double scale = static_cast<double>(n > 0 ? x.numel() / n : 1) * data_range * data_range;
  const auto out_type = compute_type(x.scalar_type());
  at::Tensor out = at::empty(reduction == "none" ? std::vector<int64_t>{n} : std::vector<int64_t>{},
                             sse.options().dtype(out_type));
  const double* s = sse.data_ptr<double>();
  double* e = extrema.data_ptr<double>();
  auto store = [&](int64_t i, double v) {
    if (out_type == at::kDouble)
      out.data_ptr<double>()[i] = v;
    else
      out.data_ptr<float>()[i] = static_cast<float>(v);
  };
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double db = psnr_decibels(s[i], scale, eps, max_db);
    if (std::isnan(s[i])) std::fill(e + 4 * i, e + 4 * i + 4, std::nan(""));
    if (reduction == "none") store(i, db);
    total += db;
  }
  if (reduction != "none") store(0, reduction == "mean" ? total / static_cast<double>(n) : total);
  return {out, extrema};
}

// ---------------------------------------------------------------------------------------------------------------

// One output row: the f input rows of its boxes are summed column-box by column-box. Boxes that lie inside the
// image take a branch-free loop (vectorised by the compiler; the f = 2 case is the MS-SSIM hot path); boxes that
// cross the left/right border go through the border map.
template <typename In, typename Out>
void downsample_plane_rows(const In* x, int64_t h, int64_t w, int64_t f, int64_t pad_top, int64_t pad_left,
                           int64_t out_w, Border border, const std::vector<int>& col_map, int64_t i, Out* out_row,
                           Out* acc) {
  const int64_t j_lo = std::min(out_w, (pad_left + f - 1) / f);                     // first box starting inside
  const int64_t j_hi = std::max(j_lo, std::min(out_w, (w + pad_left) / f));         // first box ending outside
  if (f == 2 && pad_top == 0 && 2 * i + 1 < h) {
    // The common 2x2 case with both rows inside: one pass, two rows at once (the general loop below makes four
    // passes over the row and ran at a quarter of memory speed). Same additions in the same order: same bits.
    const In* __restrict r0 = x + 2 * i * w - pad_left;
    const In* __restrict r1 = r0 + w;
    const Out quarter = Out(0.25);
    for (int64_t j = j_lo; j < j_hi; ++j)
      out_row[j] = ((static_cast<Out>(r0[2 * j]) + static_cast<Out>(r0[2 * j + 1])) +
                    (static_cast<Out>(r1[2 * j]) + static_cast<Out>(r1[2 * j + 1]))) * quarter;
    if (j_lo == 0 && j_hi == out_w) return;
  }
  for (int64_t j = 0; j < out_w; ++j) acc[j] = 0;
  for (int64_t a = 0; a < f; ++a) {
    const int r = border_index(static_cast<int>(i * f - pad_top + a), static_cast<int>(h), border);
    if (r < 0) continue;
    const In* row = x + r * w;
    if (f == 2) {
      const In* __restrict src = row - pad_left;
      Out* __restrict dst = acc;
      for (int64_t j = j_lo; j < j_hi; ++j) dst[j] += static_cast<Out>(src[2 * j]) + static_cast<Out>(src[2 * j + 1]);
    } else {
      for (int64_t j = j_lo; j < j_hi; ++j) {
        const In* box = row + j * f - pad_left;
        Out s = 0;
        for (int64_t b = 0; b < f; ++b) s += static_cast<Out>(box[b]);
        acc[j] += s;
      }
    }
    for (int64_t j = 0; j < out_w; ++j) {
      if (j == j_lo) j = j_hi;  // interior done above
      if (j >= out_w) break;
      Out s = 0;
      for (int64_t b = 0; b < f; ++b) {
        const int c = col_map[j * f + b];
        if (c >= 0) s += static_cast<Out>(row[c]);
      }
      acc[j] += s;
    }
  }
  const Out scale = Out(1) / static_cast<Out>(f * f);
  for (int64_t j = 0; j < out_w; ++j) out_row[j] = acc[j] * scale;
}

at::Tensor box_downsample_cpu(const at::Tensor& x_in, int64_t factor, int64_t pad_top, int64_t pad_left,
                              int64_t out_h, int64_t out_w, c10::string_view border_name) {
  const Border border = check_box_downsample(x_in, factor, pad_top, pad_left, out_h, out_w, std::string(border_name));
  auto dt = x_in.scalar_type();
  bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor out = at::empty({x.size(0), x.size(1), out_h, out_w}, x.options().dtype(compute_type(dt)));
  if (planes == 0) return out;
  std::vector<int> col_map(out_w * factor);
  for (int64_t c = 0; c < out_w * factor; ++c)
    col_map[c] = border_index(static_cast<int>(c - pad_left), static_cast<int>(w), border);
  const int64_t grain = std::max<int64_t>(1, 16384 / (out_w * factor * factor));
  auto run = [&](auto in_tag, auto out_tag) {
    using In = decltype(in_tag);
    using Out = decltype(out_tag);
    const In* xp = x.data_ptr<In>();
    Out* op = out.data_ptr<Out>();
    parallel_chunks(planes * out_h, grain, [&](int64_t begin, int64_t end) {
      std::vector<Out> acc(out_w);
      for (int64_t t = begin; t < end; ++t) {
        const int64_t p = t / out_h, i = t % out_h;
        downsample_plane_rows<In, Out>(xp + p * h * w, h, w, factor, pad_top, pad_left, out_w, border, col_map, i,
                                       op + (p * out_h + i) * out_w, acc.data());
      }
    });
  };
  if (x.scalar_type() == at::kByte)
    run(std::uint8_t{}, float{});
  else if (x.scalar_type() == at::kDouble)
    run(double{}, double{});
  else
    run(float{}, float{});
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

// Luma spans: standalone functions with __restrict pointers and by-value coefficients, so the compiler
// vectorises them (inside the parallel lambda every captured value could alias the output).
// uint8 is converted in double, as MATLAB does, so the half-way rounding cases land exactly.
TURBOIQA_CLONES
void luma_span(const std::uint8_t* __restrict r, const std::uint8_t* __restrict g, const std::uint8_t* __restrict b,
               int64_t n, double c0, double c1, double c2, double offset, std::uint8_t* __restrict dst) {
  for (int64_t i = 0; i < n; ++i) {
    double v = c0 * r[i] + c1 * g[i] + c2 * b[i] + offset;
    v = std::floor(v + 0.5);  // values are >= 0: half away from zero
    dst[i] = static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
  }
}

TURBOIQA_CLONES
void luma_span(const std::uint8_t* __restrict r, const std::uint8_t* __restrict g, const std::uint8_t* __restrict b,
               int64_t n, double c0, double c1, double c2, double offset, float* __restrict dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(c0 * r[i] + c1 * g[i] + c2 * b[i] + offset);
}

TURBOIQA_CLONES
void luma_span(const float* __restrict r, const float* __restrict g, const float* __restrict b, int64_t n, float c0,
               float c1, float c2, float offset, float* __restrict dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = c0 * r[i] + c1 * g[i] + c2 * b[i] + offset;
}

TURBOIQA_CLONES
void luma_span(const double* __restrict r, const double* __restrict g, const double* __restrict b, int64_t n,
               double c0, double c1, double c2, double offset, double* __restrict dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = c0 * r[i] + c1 * g[i] + c2 * b[i] + offset;
}

at::Tensor luma_cpu(const at::Tensor& x_in, at::ArrayRef<double> coeffs, double offset, bool round_to_uint8) {
  check_luma(x_in, coeffs);
  auto dt = x_in.scalar_type();
  bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  const bool to_u8 = round_to_uint8 && dt == at::kByte;
  const int64_t n = x.size(0), hw = x.size(2) * x.size(3);
  at::Tensor out = at::empty({n, 1, x.size(2), x.size(3)},
                             x.options().dtype(to_u8 ? at::kByte : compute_type(dt)));
  if (x.numel() == 0) return out;
  const double c0 = coeffs[0], c1 = coeffs[1], c2 = coeffs[2];
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (hw + kChunk - 1) / kChunk;
  parallel_chunks(n * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t img = t / chunks, start = (t % chunks) * kChunk, stop = std::min(hw, start + kChunk);
      const int64_t len = stop - start, plane = img * 3 * hw + start;
      if (x.scalar_type() == at::kByte) {
        const std::uint8_t* src = x.data_ptr<std::uint8_t>() + plane;
        if (to_u8)
          luma_span(src, src + hw, src + 2 * hw, len, c0, c1, c2, offset, out.data_ptr<std::uint8_t>() + img * hw + start);
        else
          luma_span(src, src + hw, src + 2 * hw, len, c0, c1, c2, offset, out.data_ptr<float>() + img * hw + start);
      } else if (x.scalar_type() == at::kDouble) {
        const double* src = x.data_ptr<double>() + plane;
        luma_span(src, src + hw, src + 2 * hw, len, c0, c1, c2, offset, out.data_ptr<double>() + img * hw + start);
      } else {
        const float* src = x.data_ptr<float>() + plane;
        luma_span(src, src + hw, src + 2 * hw, len, static_cast<float>(c0), static_cast<float>(c1),
                  static_cast<float>(c2), static_cast<float>(offset), out.data_ptr<float>() + img * hw + start);
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("squared_error_sum", &squared_error_sum_cpu);
  m.impl("psnr_db", &psnr_db_cpu);
  m.impl("box_downsample", &box_downsample_cpu);
  m.impl("luma", &luma_cpu);
}

}  // namespace turboiqa::cpu
