// CUDA implementation of turboiqa::decimate2 and its backward (cpu/decimate.cpp; decimate.h): 'valid' separable
// correlation with a 1-D window along both axes, every second sample kept. Inputs arrive float32/float64,
// contiguous, checked (ops_cuda.cpp). Forward: one thread per output sample, Σ_a w[a] Σ_b w[b] x[2i + a][2j + b].
// Backward: one thread per input sample gathers Σ_a Σ_b w[a] w[b] g[(r − a) / 2][(c − b) / 2] over the (a, b) with
// r − a, c − b even and in range (a gather: deterministic, no atomics).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
struct DecimateArgs {
  T w[kMaxWindow];
  int k, height, width, out_h, out_w;
  int64_t plane_offset;
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    decimate2_forward_kernel(const T* __restrict__ x, const DecimateArgs<T> d, T* __restrict__ out) {
  const int64_t plane = d.plane_offset + blockIdx.y;
  const int64_t out_size = static_cast<int64_t>(d.out_h) * d.out_w;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= out_size) return;
  const int i = static_cast<int>(idx / d.out_w), j = static_cast<int>(idx % d.out_w);
  const T* p = x + plane * static_cast<int64_t>(d.height) * d.width + static_cast<int64_t>(2 * i) * d.width + 2 * j;
  T acc = T(0);
  for (int a = 0; a < d.k; ++a) {
    const T* row = p + static_cast<int64_t>(a) * d.width;
    T h = T(0);
    for (int b = 0; b < d.k; ++b) h += d.w[b] * row[b];
    acc += d.w[a] * h;
  }
  out[plane * out_size + idx] = acc;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    decimate2_backward_kernel(const T* __restrict__ grad, const DecimateArgs<T> d, T* __restrict__ dx) {
  const int64_t plane = d.plane_offset + blockIdx.y;
  const int64_t plane_size = static_cast<int64_t>(d.height) * d.width;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= plane_size) return;
  const int r = static_cast<int>(idx / d.width), c = static_cast<int>(idx % d.width);
  const T* g = grad + plane * static_cast<int64_t>(d.out_h) * d.out_w;
  T acc = T(0);
  for (int a = r % 2; a < d.k; a += 2) {  // r − a even
    const int i = (r - a) / 2;
    if (r - a < 0) break;
    if (i >= d.out_h) continue;
    const T* grow = g + static_cast<int64_t>(i) * d.out_w;
    T h = T(0);
    for (int b = c % 2; b < d.k && b <= c; b += 2) {
      const int j = (c - b) / 2;
      if (j < d.out_w) h += d.w[b] * grow[j];
    }
    acc += d.w[a] * h;
  }
  dx[plane * plane_size + idx] = acc;
}

template <typename T>
DecimateArgs<T> decimate_args(const at::Tensor& x, at::ArrayRef<double> window) {
  DecimateArgs<T> d;
  d.k = static_cast<int>(window.size());
  for (int i = 0; i < kMaxWindow; ++i) d.w[i] = i < d.k ? static_cast<T>(window[i]) : T(0);
  d.height = static_cast<int>(x.size(2));
  d.width = static_cast<int>(x.size(3));
  d.out_h = (d.height - d.k) / 2 + 1;
  d.out_w = (d.width - d.k) / 2 + 1;
  d.plane_offset = 0;
  return d;
}

template <typename T>
void forward_typed(const at::Tensor& x, at::ArrayRef<double> window, at::Tensor& out) {
  DecimateArgs<T> d = decimate_args<T>(x, window);
  const int64_t planes = x.size(0) * x.size(1);
  const int64_t blocks = (static_cast<int64_t>(d.out_h) * d.out_w + kThreads - 1) / kThreads;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for_plane_batches(planes, [&](int64_t first, unsigned count) {
    d.plane_offset = first;
    decimate2_forward_kernel<T><<<dim3(static_cast<unsigned>(blocks), count), kThreads, 0, stream>>>(
        x.data_ptr<T>(), d, out.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

template <typename T>
void backward_typed(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> window, at::Tensor& dx) {
  DecimateArgs<T> d = decimate_args<T>(x, window);
  const int64_t planes = x.size(0) * x.size(1);
  const int64_t blocks = (static_cast<int64_t>(d.height) * d.width + kThreads - 1) / kThreads;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for_plane_batches(planes, [&](int64_t first, unsigned count) {
    d.plane_offset = first;
    decimate2_backward_kernel<T><<<dim3(static_cast<unsigned>(blocks), count), kThreads, 0, stream>>>(
        grad.data_ptr<T>(), d, dx.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

void decimate2_launch(const at::Tensor& x, at::ArrayRef<double> window, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.scalar_type() == at::kDouble)
    forward_typed<double>(x, window, out);
  else
    forward_typed<float>(x, window, out);
}

void decimate2_backward_launch(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> window,
                               at::Tensor& dx) {
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.scalar_type() == at::kDouble)
    backward_typed<double>(grad, x, window, dx);
  else
    backward_typed<float>(grad, x, window, dx);
}

}  // namespace turboiqa::cuda
