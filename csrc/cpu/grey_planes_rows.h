// The grey_planes row kernel (csrc/grey_planes.h) over a range of work items (image, output row), compiled once
// per instruction set like ssim_rows; grey_planes.cpp picks one at run time and hands out the items (parallel.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace turboiqa::cpu {

// Min, max and a non-finite flag of the input samples an item reads (float inputs only).
struct GreyExtrema {
  double low, high;
  bool bad;
};

enum GreyRoundingCode : int { kGreyRoundNone = 0, kGreyRoundHalfAway = 1, kGreyRoundHalfEven = 2 };

template <typename In, typename T>
struct GreyPlanesArgs {
  const In* x;           // N x C x H x W, contiguous
  T* out;                // N x R x out_h x out_w
  GreyExtrema* ext;      // one per item (N x out_h); unused for uint8
  const double* coeffs;  // R x C, row-major; nullptr: the channels as given (R = C)
  int64_t channels, planes, h, w, f, pad_top, pad_left, out_h, out_w;
  double scale;
  int rounding;  // GreyRoundingCode
};

// Row stride (elements) of the formed rows: room for a whole vector past the last column.
inline int64_t grey_row_stride(int64_t w) { return (w + 64 + 15) / 16 * 16; }

// Scratch bytes one worker needs: formed rows (min(f, h) x R planes: only rows inside the image are formed), one
// double accumulator row, row pointers.
inline std::size_t grey_scratch_bytes(int64_t f, int64_t h, int64_t planes, int64_t w) {
  const std::size_t stride = static_cast<std::size_t>(grey_row_stride(w));
  const int64_t formed = f < h ? f : h;
  return (static_cast<std::size_t>(formed * planes) + 1) * stride * sizeof(double) +
         static_cast<std::size_t>(f * planes + planes + f) * sizeof(void*) + 64;
}

#define TURBOIQA_DECLARE_GREY_PLANES_ROWS(isa)                                                                      \
  void grey_planes_rows_##isa(const GreyPlanesArgs<std::uint8_t, float>& a, int64_t begin, int64_t end, void* s); \
  void grey_planes_rows_##isa(const GreyPlanesArgs<float, float>& a, int64_t begin, int64_t end, void* s);        \
  void grey_planes_rows_##isa(const GreyPlanesArgs<double, double>& a, int64_t begin, int64_t end, void* s);

TURBOIQA_DECLARE_GREY_PLANES_ROWS(baseline)
TURBOIQA_DECLARE_GREY_PLANES_ROWS(avx2)
TURBOIQA_DECLARE_GREY_PLANES_ROWS(avx512)

}  // namespace turboiqa::cpu
