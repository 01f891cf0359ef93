// CUDA kernel of grey_planes (csrc/grey_planes.h; same semantics, dtypes and shapes as cpu/grey_planes.cpp): one
// thread per output sample forms the samples of its box (the channel sums, the scale, the rounding) and averages
// them in the CPU's order, with the explicit round-to-nearest intrinsics so that nvcc contracts nothing into an FMA
// (the rounding modes hit exact .5 cases). The extrema come from ATen reductions over the input (no host sync).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>

#include "../dtypes.h"
#include "../grey_planes.h"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kGreyThreads = 256;
constexpr int kGreyMaxCoeffs = 64;  // check_grey_planes (grey_planes.h) admits at most 64 coefficients

struct GreyParams {
  int64_t n, channels, planes, h, w, f, pad_top, pad_left, out_h, out_w;
  int identity;
  int mode;  // GreyRounding
  double scale;
  double coeffs[kGreyMaxCoeffs];
};

__device__ __forceinline__ float g_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double g_add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float g_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double g_mul(double a, double b) { return __dmul_rn(a, b); }

template <typename T>
__device__ __forceinline__ T g_round(T v, int mode) {
  if (mode == static_cast<int>(GreyRounding::HalfAway)) return floor(g_add(v, T(0.5)));
  if (mode == static_cast<int>(GreyRounding::HalfEven)) return rint(v);
  return v;
}

// One formed sample of plane p at (r, c) (inside the image).
template <typename In, typename T>
__device__ __forceinline__ T grey_sample(const In* __restrict__ image, const GreyParams& g, int64_t p, int64_t r,
                                         int64_t c) {
  const int64_t hw = g.h * g.w, at = r * g.w + c;
  if (g.identity) {
    T v = static_cast<T>(image[p * hw + at]);
    if (g.scale != 1.0) v = g_mul(v, static_cast<T>(g.scale));
    return g_round(v, g.mode);
  }
  if constexpr (sizeof(In) == 1) {  // uint8: the sum in double; 'half_away' rounds it there
    double acc = 0;
    for (int64_t k = 0; k < g.channels; ++k) {
      const double term = __dmul_rn(g.coeffs[p * g.channels + k], static_cast<double>(image[k * hw + at]));
      acc = k == 0 ? term : __dadd_rn(acc, term);
    }
    if (g.mode == static_cast<int>(GreyRounding::HalfAway)) {
      if (g.scale != 1.0) acc = __dmul_rn(acc, g.scale);
      return static_cast<T>(g_round(acc, g.mode));
    }
    T v = static_cast<T>(acc);
    if (g.scale != 1.0) v = g_mul(v, static_cast<T>(g.scale));
    return g_round(v, g.mode);
  } else {
    T acc = T(0);
    for (int64_t k = 0; k < g.channels; ++k) {
      const T term = g_mul(static_cast<T>(g.coeffs[p * g.channels + k]), static_cast<T>(image[k * hw + at]));
      acc = k == 0 ? term : g_add(acc, term);
    }
    if (g.scale != 1.0) acc = g_mul(acc, static_cast<T>(g.scale));
    return g_round(acc, g.mode);
  }
}

template <typename In, typename T>
__global__ void __launch_bounds__(kGreyThreads)
    grey_planes_kernel(const In* __restrict__ x, T* __restrict__ out, const GreyParams g, const T inv) {
  const int64_t total = g.n * g.planes * g.out_h * g.out_w;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kGreyThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kGreyThreads) {
    const int64_t j = t % g.out_w;
    const int64_t i = (t / g.out_w) % g.out_h;
    const int64_t p = (t / (g.out_w * g.out_h)) % g.planes;
    const int64_t img = t / (g.out_w * g.out_h * g.planes);
    const In* image = x + img * g.channels * g.h * g.w;
    T acc = T(0);
    for (int64_t a = 0; a < g.f; ++a) {
      const int64_t r = i * g.f - g.pad_top + a;
      if (r < 0 || r >= g.h) continue;
      T s = T(0);
      for (int64_t b = 0; b < g.f; ++b) {
        const int64_t c = j * g.f - g.pad_left + b;
        if (c >= 0 && c < g.w) s = g_add(s, grey_sample<In, T>(image, g, p, r, c));
      }
      acc = g_add(acc, s);
    }
    out[t] = g_mul(acc, inv);
  }
}

}  // namespace

// Arguments arrive checked (check_grey_planes and check_cuda in ops_cuda.cpp).
std::tuple<at::Tensor, at::Tensor> grey_planes_launch(const at::Tensor& x_in, at::ArrayRef<double> coeffs,
                                                      double scale, GreyRounding mode, int64_t factor,
                                                      int64_t pad_top, int64_t pad_left, int64_t out_h,
                                                      int64_t out_w) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dt = x_in.scalar_type();
  const bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  GreyParams g{};
  g.n = x.size(0);
  g.channels = x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.identity = coeffs.empty() ? 1 : 0;
  g.planes = coeffs.empty() ? g.channels : static_cast<int64_t>(coeffs.size()) / g.channels;
  g.f = factor;
  g.pad_top = pad_top;
  g.pad_left = pad_left;
  g.out_h = out_h;
  g.out_w = out_w;
  g.mode = static_cast<int>(mode);
  g.scale = scale;
  for (size_t k = 0; k < coeffs.size(); ++k) g.coeffs[k] = coeffs[k];
  at::Tensor out = at::empty({g.n, g.planes, out_h, out_w}, x.options().dtype(compute_type(dt)));
  at::Tensor extrema;
  if (x.scalar_type() == at::kByte) {
    extrema = at::empty({g.n, 2}, x.options().dtype(at::kDouble));
    extrema.select(1, 0).fill_(0.0);
    extrema.select(1, 1).fill_(255.0);
  } else {
    const at::Tensor flat = x.reshape({g.n, x.numel() / std::max<int64_t>(g.n, 1)});  // -1 fails when N = 0
    auto [low, high] = at::aminmax(flat, 1);
    extrema = at::stack({low, high}, 1).to(at::kDouble);
    const at::Tensor finite = at::isfinite(flat).all(1, true);
    extrema = at::where(finite, extrema, at::full_like(extrema, std::numeric_limits<double>::quiet_NaN()));
  }
  if (out.numel() == 0) return {out, extrema};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const unsigned grid = flat_grid(out.numel(), kGreyThreads);
  const double inv = 1.0 / static_cast<double>(factor * factor);
  if (x.scalar_type() == at::kByte) {
    grey_planes_kernel<std::uint8_t, float><<<grid, kGreyThreads, 0, stream>>>(
        x.data_ptr<std::uint8_t>(), out.data_ptr<float>(), g, static_cast<float>(inv));
  } else if (x.scalar_type() == at::kDouble) {
    grey_planes_kernel<double, double><<<grid, kGreyThreads, 0, stream>>>(x.data_ptr<double>(),
                                                                          out.data_ptr<double>(), g, inv);
  } else {
    grey_planes_kernel<float, float><<<grid, kGreyThreads, 0, stream>>>(x.data_ptr<float>(), out.data_ptr<float>(),
                                                                        g, static_cast<float>(inv));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, extrema};
}

}  // namespace turboiqa::cuda
