// Backward of the SSIM statistics over a strip of padded rows of one image plane: the hot loop of the CPU
// backward. ssim_backward_rows.cpp is compiled once per instruction set, like ssim_rows.cpp; ssim_stats.cpp picks
// one at run time. Only raw pointers cross this boundary.
#pragma once

#include <cstddef>
#include <cstdint>

namespace turboiqa::cpu {

template <typename T>
struct SsimBackwardArgs {
  const T* x;  // plane, H x W, contiguous
  const T* y;
  int width;
  const int* row_map;  // padded row -> input row, -1 = zero row
  const int* col_map;  // padded col -> input col, -1 = zero
  int padded_width, out_height, out_width;
  const T* window;
  int window_size;
  T c1, c2, cov_norm, shift;
  T a, b;                  // d loss / d mean ssim, d loss / d mean cs, each divided by the output pixel count
  bool nonnegative_cs;     // cs clamped at 0 per pixel (ssim_math.h)
  int row_begin, row_end;  // padded rows of this strip
  T* grad_x_padded;        // the plane's gradient on the padded grid; this strip writes rows [row_begin, row_end)
  T* grad_y_padded;
  T* scratch;  // ssim_backward_scratch_size(...) elements
};

// Scratch elements for a strip of `strip_rows` padded rows.
std::size_t ssim_backward_scratch_size(int padded_width, int out_width, int window_size, int strip_rows);

#define TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(isa)                        \
  void ssim_backward_rows_##isa(const SsimBackwardArgs<float>& args); \
  void ssim_backward_rows_##isa(const SsimBackwardArgs<double>& args);

TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(baseline)
TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(avx2)
TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(avx512)

}  // namespace turboiqa::cpu
