// CUDA kernels of the small image operators: squared_error_sum, box_downsample, luma (same semantics, dtypes and
// output shapes as cpu/image_ops.cpp). All memory-bound, plain grid-stride kernels.
//
// squared_error_sum: grid of N x blocks_per_image blocks; each thread accumulates a strided slice of one image
// (int64 for uint8, so exact; float for float; double for double), each block reduces its threads in a fixed order
// (warp shuffles, then warp 0) and writes one double partial; a torch sum over the partials finishes each image.
// No atomics: results are bitwise reproducible.
// box_downsample / luma: one thread per output pixel. The arithmetic uses the explicit round-to-nearest intrinsics
// (__fmul_rn, __dadd_rn, ...) where the CPU result must be matched exactly: they keep nvcc from contracting
// a * b + c into an FMA, which would change the rounding (the half-way cases of the uint8 luma in particular).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>

#include "../border.h"
#include "../image_ops.h"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kItemsPerThread = 32;  // squared_error_sum: elements per thread (sets blocks per image)

// ---------------------------------------------------------------------------------------------------------------
// squared_error_sum

template <typename R>
__device__ __forceinline__ R warp_sum(R v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// uint8: exact in long long; float: per-thread float, block reduction in double; double: double throughout.
template <typename T>
struct SqAcc {
  using Thread = std::conditional_t<std::is_same_v<T, std::uint8_t>, long long, T>;
  using Block = std::conditional_t<std::is_same_v<T, std::uint8_t>, long long, double>;
};

template <typename R>
__device__ __forceinline__ R warp_min(R v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const R o = __shfl_down_sync(0xffffffffu, v, offset);
    v = o < v ? o : v;
  }
  return v;
}

template <typename R>
__device__ __forceinline__ R warp_max(R v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const R o = __shfl_down_sync(0xffffffffu, v, offset);
    v = o > v ? o : v;
  }
  return v;
}

// One block: a strided slice of one image. Writes 5 doubles: the squared-error sum and min/max of x and y (the
// fused range check of the metrics). NaN/Inf show up in the sum. uint8 samples are never compared: their extrema
// are the dtype's bounds (0, 255), as on the CPU.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    squared_error_kernel(const T* __restrict__ x, const T* __restrict__ y, int64_t per_image, int blocks_per_image,
                         double* __restrict__ partial) {
  using Thread = typename SqAcc<T>::Thread;
  using Block = typename SqAcc<T>::Block;
  const int64_t img = blockIdx.x / blocks_per_image;
  const int64_t part = blockIdx.x % blocks_per_image;
  const T* xp = x + img * per_image;
  const T* yp = y + img * per_image;
  const int64_t stride = static_cast<int64_t>(blocks_per_image) * kThreads;
  Thread acc = Thread(0);
  // Extrema start from the image's first sample, so threads without elements leave them unchanged.
  double x_min = static_cast<double>(xp[0]), x_max = x_min, y_min = static_cast<double>(yp[0]), y_max = y_min;
  for (int64_t i = part * kThreads + threadIdx.x; i < per_image; i += stride) {
    const T a = xp[i], b = yp[i];
    if constexpr (std::is_same_v<T, std::uint8_t>) {
      const int d = static_cast<int>(a) - static_cast<int>(b);
      acc += static_cast<long long>(d * d);
    } else {
      const T d = a - b;
      acc += d * d;
    }
    if constexpr (!std::is_same_v<T, std::uint8_t>) {
      const double da = static_cast<double>(a), db = static_cast<double>(b);
      x_min = da < x_min ? da : x_min;
      x_max = da > x_max ? da : x_max;
      y_min = db < y_min ? db : y_min;
      y_max = db > y_max ? db : y_max;
    }
  }
  if constexpr (std::is_same_v<T, std::uint8_t>) {
    x_min = y_min = 0.0;
    x_max = y_max = 255.0;
  }
  // Fixed-order block reduction: warp shuffles, then warp 0 over the per-warp values.
  __shared__ Block s_red[kThreads / 32];
  __shared__ double s_ext[4][kThreads / 32];
  Block v = warp_sum(static_cast<Block>(acc));
  x_min = warp_min(x_min);
  x_max = warp_max(x_max);
  y_min = warp_min(y_min);
  y_max = warp_max(y_max);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    s_red[warp] = v;
    s_ext[0][warp] = x_min;
    s_ext[1][warp] = x_max;
    s_ext[2][warp] = y_min;
    s_ext[3][warp] = y_max;
  }
  __syncthreads();
  if (warp == 0) {
    const bool has = lane < kThreads / 32;
    v = warp_sum(has ? s_red[lane] : Block(0));
    x_min = warp_min(has ? s_ext[0][lane] : s_ext[0][0]);
    x_max = warp_max(has ? s_ext[1][lane] : s_ext[1][0]);
    y_min = warp_min(has ? s_ext[2][lane] : s_ext[2][0]);
    y_max = warp_max(has ? s_ext[3][lane] : s_ext[3][0]);
    if (lane == 0) {
      double* out = partial + 5 * static_cast<int64_t>(blockIdx.x);
      out[0] = static_cast<double>(v);  // uint8: exact below 2^53
      out[1] = x_min;
      out[2] = x_max;
      out[3] = y_min;
      out[4] = y_max;
    }
  }
}

template <typename T>
void squared_error_launch(const at::Tensor& x, const at::Tensor& y, int64_t per_image, int64_t blocks_per_image,
                          at::Tensor& partial) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  squared_error_kernel<T><<<static_cast<unsigned>(partial.size(0) * partial.size(1)), kThreads, 0, stream>>>(
      x.data_ptr<T>(), y.data_ptr<T>(), per_image, static_cast<int>(blocks_per_image), partial.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> squared_error_sum_launch(const at::Tensor& x_in, const at::Tensor& y_in) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dt = x_in.scalar_type();
  const bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  const at::Tensor y = native ? y_in.contiguous() : y_in.to(at::kFloat).contiguous();
  const int64_t n = x.size(0), per_image = x.numel() / std::max<int64_t>(n, 1);
  if (x.numel() == 0)
    return {at::zeros({n}, x.options().dtype(at::kDouble)), at::zeros({n, 4}, x.options().dtype(at::kDouble))};
  const int64_t blocks_per_image = (per_image + kThreads * kItemsPerThread - 1) / (kThreads * kItemsPerThread);
  TORCH_CHECK(n * blocks_per_image <= INT_MAX, "squared_error_sum: input too large for the CUDA kernel");
  at::Tensor partial = at::empty({n, blocks_per_image, 5}, x.options().dtype(at::kDouble));
  if (x.scalar_type() == at::kByte)
    squared_error_launch<std::uint8_t>(x, y, per_image, blocks_per_image, partial);
  else if (x.scalar_type() == at::kDouble)
    squared_error_launch<double>(x, y, per_image, blocks_per_image, partial);
  else
    squared_error_launch<float>(x, y, per_image, blocks_per_image, partial);
  // Fixed-order reductions of the per-block partials.
  at::Tensor sse = partial.select(2, 0).sum(-1);
  at::Tensor extrema = at::stack({std::get<0>(partial.select(2, 1).min(-1)), std::get<0>(partial.select(2, 2).max(-1)),
                                  std::get<0>(partial.select(2, 3).min(-1)), std::get<0>(partial.select(2, 4).max(-1))},
                                 1);
  return {sse, extrema};
}

namespace {

// ---------------------------------------------------------------------------------------------------------------
// box_downsample

struct DownParams {
  int64_t planes, h, w, out_h, out_w, factor, pad_top, pad_left;
  Border border;
};

__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// One thread per output pixel; the CPU order: per box row a sum over b in Out, then added to the pixel's total.
template <typename In, typename Out>
__global__ void __launch_bounds__(kThreads)
    box_downsample_kernel(const In* __restrict__ x, Out* __restrict__ out, const DownParams p, const Out scale) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t j = t % p.out_w;
    const int64_t i = (t / p.out_w) % p.out_h;
    const int64_t plane = t / (p.out_w * p.out_h);
    const In* xp = x + plane * p.h * p.w;
    const int64_t c0 = j * p.factor - p.pad_left;
    Out acc = Out(0);
    for (int64_t a = 0; a < p.factor; ++a) {
      const int r = border_index(static_cast<int>(i * p.factor - p.pad_top + a), static_cast<int>(p.h), p.border);
      if (r < 0) continue;
      const In* row = xp + static_cast<int64_t>(r) * p.w;
      Out s = Out(0);
      for (int64_t b = 0; b < p.factor; ++b) {
        const int c = border_index(static_cast<int>(c0 + b), static_cast<int>(p.w), p.border);
        if (c >= 0) s = add_rn(s, static_cast<Out>(row[c]));
      }
      acc = add_rn(acc, s);
    }
    out[t] = mul_rn(acc, scale);
  }
}

}  // namespace

at::Tensor box_downsample_launch(const at::Tensor& x_in, int64_t factor, int64_t pad_top, int64_t pad_left,
                                 int64_t out_h, int64_t out_w, Border border) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dt = x_in.scalar_type();
  const bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  DownParams p{};
  p.planes = x.size(0) * x.size(1);
  p.h = x.size(2);
  p.w = x.size(3);
  p.out_h = out_h;
  p.out_w = out_w;
  p.factor = factor;
  p.pad_top = pad_top;
  p.pad_left = pad_left;
  p.border = border;
  at::Tensor out = at::empty({x.size(0), x.size(1), out_h, out_w}, x.options().dtype(compute_type(dt)));
  if (p.planes == 0) return out;
  if (x.numel() == 0) return out.zero_();  // an empty line has no border samples (border_index needs n >= 1)
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const unsigned grid = flat_grid(out.numel(), kThreads);
  if (x.scalar_type() == at::kByte) {
    box_downsample_kernel<std::uint8_t, float><<<grid, kThreads, 0, stream>>>(
        x.data_ptr<std::uint8_t>(), out.data_ptr<float>(), p, 1.0f / static_cast<float>(factor * factor));
  } else if (x.scalar_type() == at::kDouble) {
    box_downsample_kernel<double, double><<<grid, kThreads, 0, stream>>>(
        x.data_ptr<double>(), out.data_ptr<double>(), p, 1.0 / static_cast<double>(factor * factor));
  } else {
    box_downsample_kernel<float, float><<<grid, kThreads, 0, stream>>>(
        x.data_ptr<float>(), out.data_ptr<float>(), p, 1.0f / static_cast<float>(factor * factor));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

namespace {

// ---------------------------------------------------------------------------------------------------------------
// luma

// ((c0 * a + c1 * b) + c2 * c) + offset, left to right, each operation rounded (no FMA): the CPU expression.
template <typename T>
__device__ __forceinline__ T weighted3(T c0, T c1, T c2, T offset, T a, T b, T c) {
  return add_rn(add_rn(add_rn(mul_rn(c0, a), mul_rn(c1, b)), mul_rn(c2, c)), offset);
}

template <typename T>
struct LumaCoeffs {
  T c0, c1, c2, offset;
};

// In: uint8 (computed in double), float (in float), double. Out: uint8 (rounded, saturated), float or double.
template <typename In, typename Out>
__global__ void __launch_bounds__(kThreads)
    luma_kernel(const In* __restrict__ x, Out* __restrict__ out, int64_t n, int64_t hw,
                const LumaCoeffs<std::conditional_t<std::is_same_v<In, float>, float, double>> k) {
  using C = std::conditional_t<std::is_same_v<In, float>, float, double>;
  const int64_t total = n * hw;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t img = t / hw, i = t % hw;
    const In* src = x + img * 3 * hw + i;
    const C v = weighted3<C>(k.c0, k.c1, k.c2, k.offset, static_cast<C>(src[0]), static_cast<C>(src[hw]),
                             static_cast<C>(src[2 * hw]));
    if constexpr (std::is_same_v<Out, std::uint8_t>) {
      const double r = floor(__dadd_rn(v, 0.5));  // values are >= 0: half away from zero
      out[t] = static_cast<std::uint8_t>(r < 0 ? 0 : r > 255 ? 255 : r);
    } else {
      out[t] = static_cast<Out>(v);
    }
  }
}

template <typename In, typename Out, typename C>
void luma_launch(const at::Tensor& x, at::Tensor& out, int64_t n, int64_t hw, const LumaCoeffs<C>& k) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const unsigned grid = flat_grid(out.numel(), kThreads);
  luma_kernel<In, Out><<<grid, kThreads, 0, stream>>>(x.data_ptr<In>(), out.data_ptr<Out>(), n, hw, k);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

at::Tensor luma_op_launch(const at::Tensor& x_in, at::ArrayRef<double> coeffs, double offset, bool round_to_uint8) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dt = x_in.scalar_type();
  const bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  const bool to_u8 = round_to_uint8 && dt == at::kByte;
  const int64_t n = x.size(0), hw = x.size(2) * x.size(3);
  at::Tensor out =
      at::empty({n, 1, x.size(2), x.size(3)}, x.options().dtype(to_u8 ? at::kByte : compute_type(dt)));
  if (x.numel() == 0) return out;
  const LumaCoeffs<double> kd{coeffs[0], coeffs[1], coeffs[2], offset};
  if (x.scalar_type() == at::kByte) {
    // uint8 is converted in double, as MATLAB does, so the half-way rounding cases land exactly.
    if (to_u8)
      luma_launch<std::uint8_t, std::uint8_t>(x, out, n, hw, kd);
    else
      luma_launch<std::uint8_t, float>(x, out, n, hw, kd);
  } else if (x.scalar_type() == at::kDouble) {
    luma_launch<double, double>(x, out, n, hw, kd);
  } else {
    const LumaCoeffs<float> kf{static_cast<float>(coeffs[0]), static_cast<float>(coeffs[1]),
                               static_cast<float>(coeffs[2]), static_cast<float>(offset)};
    luma_launch<float, float>(x, out, n, hw, kf);
  }
  return out;
}

}  // namespace turboiqa::cuda
