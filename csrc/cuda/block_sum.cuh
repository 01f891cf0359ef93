// Block-wide reduction shared by the CUDA kernels that sum in float64 without atomics (feature_distance.cu,
// histogram.cu). Device code only: include it from .cu files.
#pragma once

namespace turboiqa::cuda {

// Fixed-order tree sum of one double per thread over the block; every thread gets the result. The block has
// kThreads threads (a power of two) and `shared` holds kThreads doubles. The order depends on kThreads alone, so
// results do not change from run to run.
template <int kThreads>
__device__ __forceinline__ double block_sum(double v, double* shared) {
  static_assert(kThreads > 0 && (kThreads & (kThreads - 1)) == 0, "block_sum: kThreads must be a power of two");
  __syncthreads();  // the previous call's readers are done with shared[0]
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  return shared[0];
}

}  // namespace turboiqa::cuda
