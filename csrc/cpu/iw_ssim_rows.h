// IW-SSIM's per-row CPU loops (iw_ssim_rows.cpp, compiled once per instruction set like ssim_rows.cpp; iw_ssim.cpp
// picks one at run time). Only raw pointers and plain structs cross this boundary.
#pragma once

#include <cstddef>
#include <cstdint>

namespace turboiqa::cpu {

// The neighbourhood vectors of a reference band: the blk x blk samples around a position plus, optionally, the
// co-located sample of the parent band enlarged by iwssim.m's imenlarge2 (bilinear, separable: rows first).
template <typename T>
struct IwNeighbourhood {
  const T* band;  // plane, height x width, contiguous
  int width;
  int blk;
  // Position (r, c) of the neighbour grid has its blk x blk block at band rows r + offset …, columns c + offset …
  int offset;
  const T* parent = nullptr;  // plane, parent_height x parent_width; nullptr: no parent component
  int parent_width = 0;
  // Enlarged parent at grid position (r, c): rows parent_row_low[r] / _high[r] mixed by parent_row_frac[r], then
  // columns likewise (tables indexed by grid row / column).
  const int* parent_row_low = nullptr;
  const int* parent_row_high = nullptr;
  const T* parent_row_frac = nullptr;
  const int* parent_col_low = nullptr;
  const int* parent_col_high = nullptr;
  const T* parent_col_frac = nullptr;

  int components() const { return blk * blk + (parent ? 1 : 0); }
};

// Σ over grid rows [row_begin, row_end) and columns [0, grid_width) of Y Yᵀ (upper triangle, row-major K x K,
// added to `sums`); each row's dot products are summed in the compute type, then in double.
template <typename T>
struct IwCovarianceArgs {
  IwNeighbourhood<T> hood;
  int grid_width;
  int row_begin, row_end;
  T* scratch;  // iw_rows_scratch_size(...) elements
  double* sums;
};

// Information-content weights of grid rows [row_begin, row_end): 3x3 (blk x blk) box statistics of ref / dist,
// ss = Yᵀ C⁻¹ Y / K, Σ_j log2(1 + ((vv + (1+g²)σ²)·ss·λ_j + σ²·vv) / σ⁴) with iwssim.m's tol overrides.
template <typename T>
struct IwWeightArgs {
  IwNeighbourhood<T> hood;  // hood.band is the reference band
  const T* dist;            // distorted band, same layout as hood.band
  int grid_width;
  const T* inverse;           // C⁻¹, K x K row-major
  const double* eigenvalues;  // K
  double sigma_nsq, tol;
  int row_begin, row_end;
  T* scratch;              // iw_rows_scratch_size(...) elements
  T* weights;              // grid row i at weights + (i - row_begin) * weight_stride
  std::size_t weight_stride;
  double* row_weight_sums;  // indexed by grid row
};

constexpr int kIwMaxComponents = 50;  // blk_size <= 7 (49 neighbours) plus the parent

std::size_t iw_rows_scratch_size(int band_width, int parent_width);

#define TURBOIQA_DECLARE_IW_ROWS(isa)                                  \
  void iw_covariance_rows_##isa(const IwCovarianceArgs<float>& args);  \
  void iw_covariance_rows_##isa(const IwCovarianceArgs<double>& args); \
  void iw_weight_rows_##isa(const IwWeightArgs<float>& args);          \
  void iw_weight_rows_##isa(const IwWeightArgs<double>& args);

TURBOIQA_DECLARE_IW_ROWS(baseline)
TURBOIQA_DECLARE_IW_ROWS(avx2)
TURBOIQA_DECLARE_IW_ROWS(avx512)

}  // namespace turboiqa::cpu
