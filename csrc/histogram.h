// Spatial-pyramid histogram intersection of two feature maps (Amirshahi, Pedersen & Yu 2016; SPECS §8), shared by
// the CPU and CUDA kernels of turboiqa::histogram_intersection.
//
// Level v (0 <= v < levels) splits an H x W map into m = 2^v rows and columns of cells; cell c of an axis of length
// n spans [floor(c n / m), floor((c + 1) n / m)): adaptive pooling's start index, but a partition (adaptive pooling
// ends at ceil and overlaps). Every level's boundaries are boundaries of the next level, so the cells nest and the
// kernels sum the finest level only, then add 2 x 2 children up. A level with m > H or m > W would have empty cells
// and is an argument error.
//
// Per cell, the K-bin histogram of a map is s_k = sum of channel k over the cell, h = s / S with S = sum_k s_k. The
// similarity of the two cells is 1 - 1/2 sum_k |h_k - h'_k|, which equals the histogram intersection
// sum_k min(h_k, h'_k) for unit-sum histograms, is exactly 1 for identical maps and never exceeds 1 by rounding.
// Its gradient equals min's with ties split 1/2-1/2 (torch.minimum): d/dh_k = -1/2 sign(h_k - h'_k) differs from
// min's [h_k < h'_k] + 1/2 [h_k == h'_k] by a constant, which the normalisation's gradient removes.
// A cell whose channel sums add up to S = 0 (all zero after a ReLU) has an empty histogram: two empty cells have
// similarity 1, one empty cell 0, and no gradient flows through an empty cell.
// The features are meant to be non-negative (post-ReLU); other values are accepted but the result is then not
// bounded to [0, 1]. Cell sums and the per-cell math run in float64 whatever the input dtype.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>

#include "border.h"  // HOST_DEVICE_INLINE

namespace turboiqa {

// At most this many levels (2^(levels-1) cells per axis): keeps the cell counts far from any overflow.
inline constexpr int64_t kMaxHistogramLevels = 16;

// Argument checks of both histogram operators, on symbolic sizes too (the Meta kernels call it alone); grad is
// the backward's (N, levels) upstream gradient, undefined for the forward. Defined in cpu/histogram.cpp.
void check_histogram_args(const char* op, const at::Tensor& fd, const at::Tensor& fr, const at::Tensor& grad,
                          int64_t levels);

// First index of cell c of an axis of length n split into m cells.
HOST_DEVICE_INLINE int64_t cell_start(int64_t c, int64_t n, int64_t m) { return c * n / m; }

// The cell (of m) that index i of an axis of length n falls in: the largest c with floor(c n / m) <= i.
HOST_DEVICE_INLINE int64_t cell_of(int64_t i, int64_t n, int64_t m) { return ((i + 1) * m - 1) / n; }

// Offset of level v's cells in a table holding every level's cells in order: sum_{u<v} 4^u.
HOST_DEVICE_INLINE int64_t level_offset(int64_t v) { return ((int64_t{1} << (2 * v)) - 1) / 3; }

// Fills levels 0 … levels-2 of a cell table whose finest level is filled: each cell is the sum of its 2 x 2
// children, added in a fixed order (CPU and CUDA give the same bits).
HOST_DEVICE_INLINE void sum_coarser_levels(double* table, int64_t levels, int64_t K) {
  for (int64_t v = levels - 2; v >= 0; --v) {
    const int64_t m = int64_t{1} << v;
    const double* child = table + level_offset(v + 1) * K;
    for (int64_t ci = 0; ci < m; ++ci)
      for (int64_t cj = 0; cj < m; ++cj) {
        double* cell = table + (level_offset(v) + ci * m + cj) * K;
        const double* c00 = child + ((2 * ci) * 2 * m + 2 * cj) * K;
        const double* c10 = c00 + 2 * m * K;
        for (int64_t k = 0; k < K; ++k) cell[k] = ((c00[k] + c00[K + k]) + c10[k]) + c10[K + k];
      }
  }
}

// Similarity of one cell from the channel sums s, t (K values each, `stride` apart).
HOST_DEVICE_INLINE double cell_similarity(const double* s, const double* t, int64_t channels, int64_t stride) {
  double ss = 0, st = 0;
  for (int64_t k = 0; k < channels; ++k) {
    ss += s[k * stride];
    st += t[k * stride];
  }
  if (ss == 0 || st == 0) return (ss == 0 && st == 0) ? 1.0 : 0.0;
  double l1 = 0;
  for (int64_t k = 0; k < channels; ++k) l1 += fabs(s[k * stride] / ss - t[k * stride] / st);
  return 1.0 - 0.5 * l1;
}

// Gradient of g * similarity with respect to the channel sums: adds g * d/ds_k to gs[k * stride] and g * d/dt_k to
// gt[k * stride]. With u_k = d/dh_k: d/ds_k = (u_k - sum_j u_j h_j) / S (the normalisation's gradient).
HOST_DEVICE_INLINE void cell_similarity_backward(const double* s, const double* t, int64_t channels, int64_t stride,
                                                 double g, double* gs, double* gt) {
  double ss = 0, st = 0;
  for (int64_t k = 0; k < channels; ++k) {
    ss += s[k * stride];
    st += t[k * stride];
  }
  if (ss == 0 || st == 0) return;
  double dot_s = 0, dot_t = 0;  // sum_j u_j h_j and sum_j u'_j h'_j, u' = -u
  for (int64_t k = 0; k < channels; ++k) {
    const double h = s[k * stride] / ss, ht = t[k * stride] / st;
    const double u = h > ht ? -0.5 : (h < ht ? 0.5 : 0.0);
    dot_s += u * h;
    dot_t -= u * ht;
  }
  for (int64_t k = 0; k < channels; ++k) {
    const double h = s[k * stride] / ss, ht = t[k * stride] / st;
    const double u = h > ht ? -0.5 : (h < ht ? 0.5 : 0.0);
    gs[k * stride] += g * (u - dot_s) / ss;
    gt[k * stride] += g * (-u - dot_t) / st;
  }
}

}  // namespace turboiqa
