// CUDA kernel of the fused phase-congruency energy step: one thread per pixel (memory-bound: each thread reads
// its O*S complex responses once; consecutive threads read consecutive pixels of each plane).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../phase_congruency.h"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void pc_energy_kernel(const T* __restrict__ eo, const T* __restrict__ threshold, PcShape shape, T epsilon,
                                 T pc_eps, T* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= shape.planes * shape.pixels) return;
  const int64_t plane = i / shape.pixels, pixel = i % shape.pixels;
  const T* base = eo + plane * shape.orients * shape.scales * shape.pixels * 2 + 2 * pixel;
  out[i] = pc_pixel<T>(base, base + 1, 2 * shape.pixels, threshold + plane * shape.orients,
                       static_cast<int>(shape.orients), static_cast<int>(shape.scales), epsilon, pc_eps);
}

}  // namespace

at::Tensor pc_energy_launch(const at::Tensor& eo_in, const at::Tensor& threshold_in, const PcShape& shape,
                            double epsilon, double pc_eps) {
  const c10::cuda::CUDAGuard guard(eo_in.device());
  at::Tensor eo = eo_in.contiguous();
  at::Tensor threshold = threshold_in.to(eo.scalar_type()).contiguous();
  at::Tensor out = at::empty({eo.size(0), eo.size(1), eo.size(4), eo.size(5)}, eo.options());
  const int64_t total = shape.planes * shape.pixels;
  if (total == 0) return out;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  TORCH_CHECK(blocks <= INT_MAX, "pc_energy: input too large for the CUDA kernel");
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (eo.scalar_type() == at::kDouble) {
    pc_energy_kernel<double><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        eo.data_ptr<double>(), threshold.data_ptr<double>(), shape, epsilon, pc_eps, out.data_ptr<double>());
  } else {
    pc_energy_kernel<float><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        eo.data_ptr<float>(), threshold.data_ptr<float>(), shape, static_cast<float>(epsilon),
        static_cast<float>(pc_eps), out.data_ptr<float>());
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace turboiqa::cuda
