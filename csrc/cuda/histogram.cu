// CUDA kernels of the spatial-pyramid histogram intersection (histogram.h). Arguments arrive validated and as NCHW
// contiguous maps (ops_cuda.cpp, host-compiled): nothing here throws except the launch checks.
//
// 1. One block per (image, channel, finest cell) sums the cell in float64 with a fixed tree (no atomics), for both
//    maps. 2. One thread per image adds the cells up the pyramid in a fixed order and evaluates them with the
//    shared per-cell math (forward: the (N, levels) result; backward: each finest cell's gradient per channel).
//    3. Backward only: one thread per feature value writes its cell's gradient. Results do not change from run to
//    run.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <tuple>

#include "../histogram.h"
#include "block_sum.cuh"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;

struct PyramidShape {
  int64_t batch, channels, height, width, levels, side;
};

unsigned grid_for(int64_t total) { return flat_grid(total, kThreads); }

// Block (n, k, cell) of the finest level: sums[(n * side^2 + cell) * K + k] for x.
template <typename T>
__global__ void cell_sum_kernel(const T* __restrict__ x, PyramidShape s, double* __restrict__ sums) {
  __shared__ double shared[kThreads];
  const int64_t cells = s.side * s.side, block = blockIdx.x;
  const int64_t cell = block % cells, k = (block / cells) % s.channels, n = block / (cells * s.channels);
  const int64_t ci = cell / s.side, cj = cell % s.side;
  const int64_t i0 = cell_start(ci, s.height, s.side), i1 = cell_start(ci + 1, s.height, s.side);
  const int64_t j0 = cell_start(cj, s.width, s.side), j1 = cell_start(cj + 1, s.width, s.side);
  const int64_t cols = j1 - j0, count = (i1 - i0) * cols;
  const T* plane = x + (n * s.channels + k) * s.height * s.width;
  double acc = 0;
  for (int64_t t = threadIdx.x; t < count; t += kThreads)
    acc += static_cast<double>(plane[(i0 + t / cols) * s.width + j0 + t % cols]);
  const double sum = block_sum<kThreads>(acc, shared);
  if (threadIdx.x == 0) sums[(n * cells + cell) * s.channels + k] = sum;
}

// Every level's cells of image n into table (level_offset(v) + cell) * K + k, from the finest level's sums.
__device__ void build_table(const double* __restrict__ finest, const PyramidShape& s, int64_t n,
                            double* __restrict__ table) {
  const int64_t K = s.channels, F = s.side * s.side;
  double* last = table + level_offset(s.levels - 1) * K;
  for (int64_t t = 0; t < F * K; ++t) last[t] = finest[n * F * K + t];
  sum_coarser_levels(table, s.levels, K);
}

template <typename T>
__global__ void pyramid_forward_kernel(const double* __restrict__ sa, const double* __restrict__ sb, PyramidShape s,
                                       double* __restrict__ ta_all, double* __restrict__ tb_all, T* __restrict__ out) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= s.batch) return;
  const int64_t K = s.channels, table = level_offset(s.levels) * K;
  double* ta = ta_all + n * table;
  double* tb = tb_all + n * table;
  build_table(sa, s, n, ta);
  build_table(sb, s, n, tb);
  for (int64_t v = 0; v < s.levels; ++v) {
    const int64_t cells = int64_t{1} << (2 * v);
    double sum = 0;
    for (int64_t c = 0; c < cells; ++c) {
      const int64_t at = (level_offset(v) + c) * K;
      sum += cell_similarity(ta + at, tb + at, K, 1);
    }
    out[n * s.levels + v] = static_cast<T>(sum / static_cast<double>(cells));
  }
}

// Backward: coef_a / coef_b[(n * side^2 + cell) * K + k], the gradient of every value of finest cell `cell`.
template <typename T>
__global__ void pyramid_backward_kernel(const double* __restrict__ sa, const double* __restrict__ sb,
                                        const T* __restrict__ grad, PyramidShape s, double* __restrict__ scratch,
                                        double* __restrict__ coef_a, double* __restrict__ coef_b) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= s.batch) return;
  const int64_t K = s.channels, table = level_offset(s.levels) * K, L = s.levels, side = s.side;
  double* ta = scratch + n * 4 * table;
  double* tb = ta + table;
  double* da = tb + table;
  double* db = da + table;
  build_table(sa, s, n, ta);
  build_table(sb, s, n, tb);
  for (int64_t t = 0; t < table; ++t) da[t] = db[t] = 0;
  for (int64_t v = 0; v < L; ++v) {
    const int64_t cells = int64_t{1} << (2 * v);
    const double scale = static_cast<double>(grad[n * L + v]) / static_cast<double>(cells);
    for (int64_t c = 0; c < cells; ++c) {
      const int64_t at = (level_offset(v) + c) * K;
      cell_similarity_backward(ta + at, tb + at, K, 1, scale, da + at, db + at);
    }
  }
  for (int64_t ci = 0; ci < side; ++ci)
    for (int64_t cj = 0; cj < side; ++cj) {
      double* ca = coef_a + ((n * side + ci) * side + cj) * K;
      double* cb = coef_b + ((n * side + ci) * side + cj) * K;
      for (int64_t k = 0; k < K; ++k) ca[k] = cb[k] = 0;
      for (int64_t v = 0; v < L; ++v) {
        const int64_t shift = L - 1 - v, m = int64_t{1} << v;
        const int64_t at = (level_offset(v) + (ci >> shift) * m + (cj >> shift)) * K;
        for (int64_t k = 0; k < K; ++k) {
          ca[k] += da[at + k];
          cb[k] += db[at + k];
        }
      }
    }
}

template <typename T>
__global__ void fill_gradient_kernel(const double* __restrict__ coef, PyramidShape s, T* __restrict__ g) {
  const int64_t plane = s.height * s.width, total = s.batch * s.channels * plane;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t p = t % plane, k = (t / plane) % s.channels, n = t / (plane * s.channels);
    const int64_t ci = cell_of(p / s.width, s.height, s.side), cj = cell_of(p % s.width, s.width, s.side);
    g[t] = static_cast<T>(coef[((n * s.side + ci) * s.side + cj) * s.channels + k]);
  }
}

PyramidShape pyramid_shape(const at::Tensor& fd, int64_t levels) {
  return {fd.size(0), fd.size(1), fd.size(2), fd.size(3), levels, int64_t{1} << (levels - 1)};
}

// Finest-level cell sums of both maps, (N * side^2 * K) doubles each.
template <typename T>
std::tuple<at::Tensor, at::Tensor> finest_sums(const at::Tensor& a, const at::Tensor& b, const PyramidShape& s,
                                               cudaStream_t stream) {
  const auto doubles = a.options().dtype(at::kDouble);
  const int64_t blocks = s.batch * s.channels * s.side * s.side;
  at::Tensor sa = at::empty({blocks}, doubles), sb = at::empty({blocks}, doubles);
  cell_sum_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a.data_ptr<T>(), s, sa.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  cell_sum_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(b.data_ptr<T>(), s, sb.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {sa, sb};
}

template <typename T>
at::Tensor forward(const at::Tensor& a, const at::Tensor& b, const PyramidShape& s) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor sa, sb;  // not a structured binding: its names would be type-dependent here
  std::tie(sa, sb) = finest_sums<T>(a, b, s, stream);
  const int64_t table = level_offset(s.levels) * s.channels;
  at::Tensor scratch = at::empty({2 * s.batch * table}, a.options().dtype(at::kDouble));
  at::Tensor out = at::empty({s.batch, s.levels}, a.options());
  double* ta = scratch.data_ptr<double>();
  pyramid_forward_kernel<T><<<static_cast<unsigned>((s.batch + 63) / 64), 64, 0, stream>>>(
      sa.data_ptr<double>(), sb.data_ptr<double>(), s, ta, ta + s.batch * table, out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

template <typename T>
std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b,
                                            const PyramidShape& s) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor sa, sb;  // not a structured binding: its names would be type-dependent here
  std::tie(sa, sb) = finest_sums<T>(a, b, s, stream);
  const int64_t table = level_offset(s.levels) * s.channels, finest = s.side * s.side * s.channels;
  const auto doubles = a.options().dtype(at::kDouble);
  at::Tensor scratch = at::empty({4 * s.batch * table}, doubles);
  at::Tensor coef_a = at::empty({s.batch * finest}, doubles), coef_b = at::empty({s.batch * finest}, doubles);
  pyramid_backward_kernel<T><<<static_cast<unsigned>((s.batch + 63) / 64), 64, 0, stream>>>(
      sa.data_ptr<double>(), sb.data_ptr<double>(), grad.data_ptr<T>(), s, scratch.data_ptr<double>(),
      coef_a.data_ptr<double>(), coef_b.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor ga = at::empty_like(a), gb = at::empty_like(b);
  const unsigned grid = grid_for(a.numel());
  fill_gradient_kernel<T><<<grid, kThreads, 0, stream>>>(coef_a.data_ptr<double>(), s, ga.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  fill_gradient_kernel<T><<<grid, kThreads, 0, stream>>>(coef_b.data_ptr<double>(), s, gb.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {ga, gb};
}

}  // namespace

at::Tensor histogram_intersection_launch(const at::Tensor& a, const at::Tensor& b, int64_t levels) {
  const c10::cuda::CUDAGuard guard(a.device());
  const PyramidShape s = pyramid_shape(a, levels);
  if (s.batch == 0) return at::empty({0, levels}, a.options());
  return a.scalar_type() == at::kDouble ? forward<double>(a, b, s) : forward<float>(a, b, s);
}

std::tuple<at::Tensor, at::Tensor> histogram_intersection_backward_launch(const at::Tensor& grad_in,
                                                                          const at::Tensor& a, const at::Tensor& b,
                                                                          int64_t levels) {
  const c10::cuda::CUDAGuard guard(a.device());
  const PyramidShape s = pyramid_shape(a, levels);
  if (s.batch == 0) return {at::empty_like(a), at::empty_like(b)};
  const at::Tensor grad = grad_in.to(a.scalar_type()).contiguous();
  return a.scalar_type() == at::kDouble ? backward<double>(grad, a, b, s) : backward<float>(grad, a, b, s);
}

}  // namespace turboiqa::cuda
