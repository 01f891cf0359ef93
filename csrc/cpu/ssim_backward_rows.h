// Backward of the SSIM statistics over a strip of padded rows of one image plane: the hot loop of the CPU
// backward. ssim_backward_rows.cpp is compiled once per instruction set, like ssim_rows.cpp; ssim_stats.cpp picks
// one at run time. Only raw pointers cross this boundary.
#pragma once

#include <cstddef>
#include <cstdint>

namespace turboiqa::cpu {

// The geometry shared by every statistic's backward (the padded grid, the window, the strip, the outputs).
template <typename T>
struct WindowedBackwardArgs {
  const T* x;  // plane, H x W, contiguous
  const T* y;
  int width;
  const int* row_map;  // padded row -> input row, -1 = zero row
  const int* col_map;  // padded col -> input col, -1 = zero
  int padded_width, out_height, out_width;
  const T* window;
  int window_size;
  T shift;
  int row_begin, row_end;  // padded rows of this strip
  T* grad_x_padded;        // the plane's gradient on the padded grid; this strip writes rows [row_begin, row_end)
  T* grad_y_padded;
  T* scratch;  // ssim_backward_scratch_size(...) elements
};

template <typename T>
struct SsimBackwardArgs : WindowedBackwardArgs<T> {
  T c1, c2, cov_norm;
  T a, b;               // d loss / d mean ssim, d loss / d mean cs, each divided by the output pixel count
  bool nonnegative_cs;  // cs clamped at 0 per pixel (ssim_math.h)
};

// VIFp (vifp_math.h): a = d loss / d Σ num, b = d loss / d Σ den.
template <typename T>
struct VifpBackwardArgs : WindowedBackwardArgs<T> {
  T sigma_nsq, eps, floor_rel;
  T a, b;
};

// Scratch elements for a strip of `strip_rows` padded rows.
std::size_t ssim_backward_scratch_size(int padded_width, int out_width, int window_size, int strip_rows);

#define TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(isa)                        \
  void ssim_backward_rows_##isa(const SsimBackwardArgs<float>& args); \
  void ssim_backward_rows_##isa(const SsimBackwardArgs<double>& args); \
  void vifp_backward_rows_##isa(const VifpBackwardArgs<float>& args);  \
  void vifp_backward_rows_##isa(const VifpBackwardArgs<double>& args);

TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(baseline)
TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(avx2)
TURBOIQA_DECLARE_SSIM_BACKWARD_ROWS(avx512)

}  // namespace turboiqa::cpu
