// The gradient-similarity row kernel (gradient_similarity.h) over a strip of output rows of one plane pair,
// compiled once per instruction set like ssim_rows; gradient_similarity.cpp picks one at run time.
#pragma once

#include <cstddef>

namespace turboiqa::cpu {

// The fields the forward and the backward share: one plane pair, its geometry, taps, constants and the strip.
template <typename T>
struct GradSimPlaneArgs {
  const T* x;  // plane, H x W, contiguous
  const T* y;
  int height, width;
  bool valid;              // 'valid' (output (H-2) x (W-2)) or zero border 'same'
  T s0, s1, s2;            // smoothing taps across the derivative
  T c, alpha, eps;         // in unnormalised units: c / scale², eps / scale² (q is homogeneous in M1, M2, c)
  int row_begin, row_end;  // the strip: output rows (forward) or input rows (backward)
  T* scratch;              // grad_sim_scratch_size / grad_sim_backward_scratch_size(width) elements
};

template <typename T>
struct GradSimRowsArgs : GradSimPlaneArgs<T> {
  T* map;              // output rows (out_width each, row i at map + i * out_width); nullptr: moments only
  double* row_sum;     // per output row Σq and Σq² (indexed by output row), when map is nullptr
  double* row_sumsq;
};

std::size_t grad_sim_scratch_size(int width);

// The backward over a strip of INPUT rows of one plane pair: dx, dy (H x W) = the stencil's adjoint applied to the
// per-centre weights 2·G·∂q/∂M·(gx, gy), G the upstream gradient of q (the map's, or g_sum + 2·q·g_sumsq for the
// moments). The weights of the three centre rows around each input row live in a ring of row buffers in scratch.
template <typename T>
struct GradSimBackRowsArgs : GradSimPlaneArgs<T> {
  const T* grad_map;       // upstream gradient of the map (out_height x out_width); nullptr: moments
  T g_sum, g_sumsq;        // upstream gradients of Σq, Σq² of this plane (moments)
  T* dx;                   // plane gradients, H x W
  T* dy;
};

std::size_t grad_sim_backward_scratch_size(int width);

#define TURBOIQA_DECLARE_GRAD_SIM_ROWS(isa)                          \
  void grad_sim_rows_##isa(const GradSimRowsArgs<float>& args);    \
  void grad_sim_rows_##isa(const GradSimRowsArgs<double>& args);    \
  void grad_sim_backward_rows_##isa(const GradSimBackRowsArgs<float>& args); \
  void grad_sim_backward_rows_##isa(const GradSimBackRowsArgs<double>& args);

TURBOIQA_DECLARE_GRAD_SIM_ROWS(baseline)
TURBOIQA_DECLARE_GRAD_SIM_ROWS(avx2)
TURBOIQA_DECLARE_GRAD_SIM_ROWS(avx512)

}  // namespace turboiqa::cpu
