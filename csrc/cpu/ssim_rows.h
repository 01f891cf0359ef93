// Forward SSIM statistics over a strip of output rows of one image plane: the hot loop of the CPU kernel.
// ssim_rows.cpp is compiled once per instruction set (baseline, AVX2+FMA, AVX-512); ssim_stats.cpp picks one at
// run time. Only raw pointers cross this boundary, so no inline library code is shared between ISA builds.
#pragma once

#include <cstddef>
#include <cstdint>

namespace turboiqa::cpu {

// The geometry shared by every statistic of the row kernel: the plane pair, its border maps, the separable window,
// the strip of output rows and the thread's scratch. Samples enter the kernel as x - shift, y - shift.
template <typename In, typename Acc>
struct WindowedRowsArgs {
  const In* x;  // plane, H x W, contiguous
  const In* y;
  int height, width;
  const int* row_map;  // padded row -> input row, -1 = zero row (length padded_height)
  const int* col_map;  // padded col -> input col, -1 = zero (length padded_width)
  int padded_height, padded_width;
  int pad_left;  // first padded column that is input column 0
  const Acc* window;
  int window_size;
  Acc shift;
  int out_width;
  int row_begin, row_end;  // output rows of this strip
  Acc* scratch;            // ssim_rows_scratch_size(...) elements, 64-byte aligned
};

// SSIM: per output row, the sums of the SSIM and cs maps.
template <typename In, typename Acc>
struct SsimRowsArgs : WindowedRowsArgs<In, Acc> {
  Acc c1, c2, cov_norm;
  double* row_ssim;  // per output row sums, indexed by output row
  double* row_cs;
  // Optional per-pixel weights of the sums (IW-SSIM): output row i reads pixel_weight + (i - row_begin) *
  // weight_stride, readable up to out_width rounded up to a multiple of ssim_rows_weight_padding().
  const Acc* pixel_weight = nullptr;
  std::size_t weight_stride = 0;
  bool nonnegative_cs = false;  // cs clamped at 0 per pixel (ssim_math.h)
};

// VIFp (one scale of vifp_mscale.m, x distorted, y reference): per output row, Σ log10(1 + g²σy²/(σv² + σn²)) and
// Σ log10(1 + σy²/σn²) with the variance floor eps + floor_rel·E[y²] (vifp_math.h), in float64.
template <typename In, typename Acc>
struct VifpRowsArgs : WindowedRowsArgs<In, Acc> {
  Acc sigma_nsq, eps, floor_rel;
  double* row_num;  // indexed by output row
  double* row_den;
};

// Columns a weight row must be readable to: out_width rounded up to this (two vectors of the widest ISA).
constexpr int ssim_rows_weight_padding() { return 32; }

// quantities: 4 for SSIM (x, y, x² + y², xy), 5 for VIFp (x, y, x², y², xy).
std::size_t ssim_rows_scratch_size(int padded_width, int window_size, int quantities = 4);

#define TURBOIQA_DECLARE_SSIM_ROWS(isa)                                            \
  void ssim_rows_##isa(const SsimRowsArgs<std::uint8_t, float>& args);             \
  void ssim_rows_##isa(const SsimRowsArgs<float, float>& args);                    \
  void ssim_rows_##isa(const SsimRowsArgs<double, double>& args);                  \
  void vifp_rows_##isa(const VifpRowsArgs<float, float>& args);                    \
  void vifp_rows_##isa(const VifpRowsArgs<double, double>& args);

TURBOIQA_DECLARE_SSIM_ROWS(baseline)
TURBOIQA_DECLARE_SSIM_ROWS(avx2)
TURBOIQA_DECLARE_SSIM_ROWS(avx512)

}  // namespace turboiqa::cpu
