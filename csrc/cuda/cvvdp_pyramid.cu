// CUDA implementation of turboiqa::cvvdp_pyramid_step and its backward: one level of ColorVideoVDP's decimated
// Laplacian pyramid, the same tap tables as cpu/cvvdp_pyramid.cpp (schema in ops.cpp, twin
// python/turboiqa/reference/cvvdp_band.py). Inputs arrive contiguous, float32/float64, checked (ops_cuda.cpp).
//
// Each separable pass applies a per-axis tap table (output sample -> (source sample, weight) list), so cvvdp's
// border rules (symmetric edges; the reduce's zero right edge and its parity-dependent correction; the expansion's
// replicated ends) are table entries. The tables are not stored: each thread evaluates its output's entries from
// their closed forms (cvvdp_taps.cuh, the same sources, weights and order as the host builders in cvvdp_tables.h),
// so a call allocates and copies no table (no per-call host work, nothing that a CUDA-graph capture could not
// replay). The backward applies the transposed tables: each thread scans, in ascending order, the few outputs that
// can read its sample and adds the entries that do, which is the order in which the CPU's scatter adds them: a
// gather (deterministic, no atomics) with the CPU's summation order. Weights are doubles cast to the plane dtype,
// as on the CPU.
//
// Forward: rows (reduce) -> columns (reduce) = reduced; rows (expand) -> columns (expand) = expanded. Backward:
// columns^T (expand) -> rows^T (expand), + grad_reduced, columns^T (reduce) -> rows^T (reduce). Each pass is one
// kernel, one thread per output sample (grid-stride over all planes, 64-bit indices).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "cvvdp_taps.cuh"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

using pyr::Axis;

constexpr int kThreads = 256;

// Sum over the entries of output o of `axis` (kTransposed: over the entries of the transposed table, i.e. of every
// output q of `axis` that reads source o, in (q, entry) order) of weight * at(sample), `at` reading the input
// sample at a position along the axis.
template <typename T, bool kTransposed, typename At>
__device__ __forceinline__ T apply_taps(const Axis& axis, int64_t o, At at) {
  T acc = T(0);
  if constexpr (!kTransposed) {
    pyr::for_each_tap(axis, o, [&](int64_t s, double wt) { acc += static_cast<T>(wt) * at(s); });
  } else {
    int64_t lo, hi;
    pyr::transposed_outputs(axis, o, lo, hi);
    for (int64_t q = lo; q <= hi; ++q)
      pyr::for_each_tap(axis, q, [&](int64_t s, double wt) {
        if (s == o) acc += static_cast<T>(wt) * at(q);
      });
  }
  return acc;
}

// out[p][o][x] = sum over the entries (r, weight) of output row o of weight * in[p][r][x] (rows_out rows of w).
template <typename T, bool kTransposed>
__global__ void __launch_bounds__(kThreads)
    pyr_rows_kernel(const T* __restrict__ in, const Axis axis, int64_t planes, int64_t rows_in, int64_t rows_out,
                    int64_t w, T* __restrict__ out) {
  const int64_t total = planes * rows_out * w;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t x = idx % w, o = (idx / w) % rows_out, p = idx / (w * rows_out);
    const T* plane = in + p * rows_in * w + x;
    out[idx] = apply_taps<T, kTransposed>(axis, o, [&](int64_t r) { return plane[r * w]; });
  }
}

// out[r][o] = sum over the entries (c, weight) of output column o of weight * in[r][c] (rows rows, n_in -> n_out).
template <typename T, bool kTransposed>
__global__ void __launch_bounds__(kThreads)
    pyr_cols_kernel(const T* __restrict__ in, const Axis axis, int64_t rows, int64_t n_in, int64_t n_out,
                    T* __restrict__ out) {
  const int64_t total = rows * n_out;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t o = idx % n_out, r = idx / n_out;
    const T* row = in + r * n_in;
    out[idx] = apply_taps<T, kTransposed>(axis, o, [&](int64_t c) { return row[c]; });
  }
}

template <typename T, bool kTransposed = false>
void rows_pass(const at::Tensor& in, const Axis& axis, int64_t planes, int64_t rows_in, int64_t rows_out, int64_t w,
               at::Tensor& out, cudaStream_t stream) {
  pyr_rows_kernel<T, kTransposed><<<flat_grid(planes * rows_out * w, kThreads), kThreads, 0, stream>>>(
      in.data_ptr<T>(), axis, planes, rows_in, rows_out, w, out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, bool kTransposed = false>
void cols_pass(const at::Tensor& in, const Axis& axis, int64_t rows, int64_t n_in, int64_t n_out, at::Tensor& out,
               cudaStream_t stream) {
  pyr_cols_kernel<T, kTransposed><<<flat_grid(rows * n_out, kThreads), kThreads, 0, stream>>>(
      in.data_ptr<T>(), axis, rows, n_in, n_out, out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void forward_typed(const at::Tensor& x, at::Tensor& reduced, at::Tensor& expanded) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3), ho = (h + 1) / 2, wo = (w + 1) / 2;
  const Axis rv = pyr::reduce_rows_axis(h), rh = pyr::reduce_cols_axis(w, h % 2 == 1), ev = pyr::expand_axis(ho, h),
             eh = pyr::expand_axis(wo, w);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor tmp = at::empty({planes, ho, w}, x.options());
  rows_pass<T>(x, rv, planes, h, ho, w, tmp, stream);                // planes x ho x w
  cols_pass<T>(tmp, rh, planes * ho, w, wo, reduced, stream);        // planes x ho x wo
  at::Tensor tmp2 = at::empty({planes, h, wo}, x.options());
  rows_pass<T>(reduced, ev, planes, ho, h, wo, tmp2, stream);        // planes x h x wo
  cols_pass<T>(tmp2, eh, planes * h, wo, w, expanded, stream);       // planes x h x w
}

template <typename T>
void backward_typed(const at::Tensor& g_red, const at::Tensor& g_exp, at::Tensor& dx) {
  const int64_t planes = dx.size(0) * dx.size(1), h = dx.size(2), w = dx.size(3), ho = (h + 1) / 2, wo = (w + 1) / 2;
  const Axis rv = pyr::reduce_rows_axis(h), rh = pyr::reduce_cols_axis(w, h % 2 == 1), ev = pyr::expand_axis(ho, h),
             eh = pyr::expand_axis(wo, w);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor tmp = at::empty({planes, h, wo}, dx.options());
  cols_pass<T, true>(g_exp, eh, planes * h, w, wo, tmp, stream);     // planes x h x wo
  at::Tensor gn = at::empty({planes, ho, wo}, dx.options());
  rows_pass<T, true>(tmp, ev, planes, h, ho, wo, gn, stream);        // planes x ho x wo
  gn.add_(g_red.view({planes, ho, wo}));
  at::Tensor tmp2 = at::empty({planes, ho, w}, dx.options());
  cols_pass<T, true>(gn, rh, planes * ho, wo, w, tmp2, stream);      // planes x ho x w
  rows_pass<T, true>(tmp2, rv, planes, ho, h, w, dx, stream);        // planes x h x w
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> cvvdp_pyramid_step_launch(const at::Tensor& x) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t h = x.size(2), w = x.size(3);
  at::Tensor reduced = at::empty({x.size(0), x.size(1), (h + 1) / 2, (w + 1) / 2}, x.options());
  at::Tensor expanded = at::empty_like(x);
  if (x.numel() == 0) return {reduced, expanded};
  if (x.scalar_type() == at::kDouble)
    forward_typed<double>(x, reduced, expanded);
  else
    forward_typed<float>(x, reduced, expanded);
  return {reduced, expanded};
}

at::Tensor cvvdp_pyramid_step_backward_launch(const at::Tensor& grad_reduced, const at::Tensor& grad_expanded,
                                              const at::Tensor& planes) {
  const c10::cuda::CUDAGuard guard(planes.device());
  at::Tensor dx = at::empty(planes.sizes(), planes.options().memory_format(at::MemoryFormat::Contiguous));
  if (dx.numel() == 0) return dx;
  if (planes.scalar_type() == at::kDouble)
    backward_typed<double>(grad_reduced, grad_expanded, dx);
  else
    backward_typed<float>(grad_reduced, grad_expanded, dx);
  return dx;
}

}  // namespace turboiqa::cuda
