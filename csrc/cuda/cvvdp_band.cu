// CUDA implementation of turboiqa::cvvdp_band_pool and cvvdp_srgb_to_dkl with their backwards: the math of
// cpu/cvvdp_band.cpp and cpu/cvvdp_band_rows.cpp (schemas in ops.cpp, checks in cvvdp_band.h, PyTorch twin in
// python/turboiqa/reference/cvvdp_band.py). Inputs arrive contiguous, float32/float64, checked (ops_cuda.cpp).
//
// cvvdp_band_pool forward, three kernels over band-sized buffers (the CPU fuses them per 64-row strip):
//   1. prepare (one thread per pixel, all channels): S = 10^(csf_k(log_bkg)) gain_k from the table in shared
//      memory, T = test S, R = ref S, mm = min(|T|, |R|);
//   2. vertical 13-tap blur of mm (mask_c folded into the taps), reflect rows (skipped when H or W <= 6);
//   3. pool (grid.x = blocks of kThreads pixels, grid.y = image, plane-batched): the horizontal blur (reflect
//      columns) of every channel, the masker powers, the cross-channel mix, D and (D + 1e-5)^2 in double, summed
//      per block with block_sum (a fixed tree) into one partial per (image, channel, block); an ATen sum over the
//      blocks finishes each (image, channel). No atomics: the result is bitwise reproducible.
// Summation order differs from the CPU's (rows of 8 fixed lanes, then 64-row strips in order): the per-pixel terms
// are the same float32/float64 values up to the exp/log/pow implementations (CUDA libdevice vs the CPU's Cephes
// polynomials for float, libm for double: about 1 ulp), and the sums are in double, so CPU and CUDA agree to about
// 1e-12 relative in float64 and 3e-6 relative in float32 (the tolerances of the CPU-vs-twin tests).
//
// Backward (the chain of cpu/cvvdp_band.cpp's backward): prepare (also S), the vertical blur, then one thread per
// pixel forms d/d|T - R| (ge) and d/d(blurred masker) (gm, through the mix and the masker powers); the transposed
// horizontal blur of gm (a gather over the reflected taps), then one thread per pixel applies the transposed
// vertical blur and the chain to test, ref and log_bkg (d/dlog_bkg summed over the channels in order). Gathers
// only: deterministic. The CPU applies the transposed vertical blur first, then the horizontal one (the two commute;
// rounding differs at the 1-ulp level).
//
// cvvdp_srgb_to_dkl: one thread per pixel, the three EOTFs and the 3 x 3 matrix (and its transpose backward).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>

#include "../cvvdp_band.h"
#include "../cvvdp_tables.h"
#include "block_sum.cuh"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kRadius = cvvdp::kBlurRadius;
constexpr int kTaps = cvvdp::kBlurTaps;
constexpr int kMaxC = static_cast<int>(kCvvdpMaxChannels);
constexpr double kLn10 = 2.302585092994045684;

__device__ __forceinline__ float exp_t(float x) { return expf(x); }
__device__ __forceinline__ double exp_t(double x) { return exp(x); }
__device__ __forceinline__ float pow_t(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double pow_t(double x, double y) { return pow(x, y); }
template <typename T>
__device__ __forceinline__ T abs_t(T x) {
  return x < T(0) ? -x : x;
}
template <typename T>
__device__ __forceinline__ T sgn(T v) {
  return static_cast<T>((v > T(0)) - (v < T(0)));
}

// F.pad 'reflect' (n > kRadius whenever the blur runs).
__device__ __forceinline__ int64_t reflect(int64_t i, int64_t n) {
  return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
}

template <typename T>
struct BandParams {
  int64_t n, h, w;
  int c, len, blur;
  T lo, scale, top, eps, eps_p, p, dmax, mask_c;
  T gain[kMaxC], q[kMaxC], eps_q[kMaxC];
  T xcm[kMaxC * kMaxC];  // [to, from]
  T gv[kTaps], gh[kTaps];  // vertical taps carry mask_c
  T csf[kCvvdpCudaMaxCsf];  // C x len, log10 sensitivity
};


// The CSF table into shared memory (every thread of the block must call it).
template <typename T>
__device__ __forceinline__ void load_table(const BandParams<T>& P, T* table) {
  for (int i = threadIdx.x; i < P.c * P.len; i += kThreads) table[i] = P.csf[i];
  __syncthreads();
}

// S = 10^(csf_k(l)) gain_k, linear over the grid position (clamped), as cvvdp_prepare_row.
template <typename T>
__device__ __forceinline__ T sensitivity(const BandParams<T>& P, const T* table, int k, T l) {
  T pos = (l - P.lo) * P.scale;
  pos = pos > T(0) ? pos : T(0);
  pos = pos < P.top ? pos : P.top;
  const int i0 = static_cast<int>(pos);
  const int i1 = i0 + 1 < P.len ? i0 + 1 : P.len - 1;
  const T* row = table + k * P.len;
  const T s = row[i0] + (row[i1] - row[i0]) * (pos - static_cast<T>(i0));
  return exp_t(s * static_cast<T>(kLn10)) * P.gain[k];
}

// d S / d log10 L divided by S (0 where the grid position is clamped), as the CPU's dlog_sensitivity.
template <typename T>
__device__ __forceinline__ T dlog_sensitivity(const BandParams<T>& P, const T* table, int k, T l) {
  const T raw = (l - P.lo) * P.scale;
  if (!(raw >= T(0) && raw <= P.top)) return T(0);
  const int i0 = static_cast<int>(raw);
  const int i1 = i0 + 1 < P.len ? i0 + 1 : P.len - 1;
  const T* row = table + k * P.len;
  return static_cast<T>(kLn10) * (row[i1] - row[i0]) * P.scale;
}

// 1. S (optional), T, R and the mutual masker min(|T|, |R|); one thread per (image, pixel), all channels.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    band_prepare_kernel(const T* __restrict__ t, const T* __restrict__ r, const T* __restrict__ lb,
                        const __grid_constant__ BandParams<T> P, T* __restrict__ s_out, T* __restrict__ tp,
                        T* __restrict__ rp, T* __restrict__ mm) {
  __shared__ T table[kCvvdpCudaMaxCsf];
  load_table(P, table);
  const int64_t hw = P.h * P.w, total = P.n * hw;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t b = idx / hw, x = idx % hw;
    const T l = lb[idx];
    for (int k = 0; k < P.c; ++k) {
      const int64_t at = (b * P.c + k) * hw + x;
      const T sg = sensitivity(P, table, k, l);
      const T a = t[at] * sg, c = r[at] * sg;
      const T aa = abs_t(a), ac = abs_t(c);
      tp[at] = a;
      rp[at] = c;
      mm[at] = aa < ac ? aa : ac;
      if (s_out != nullptr) s_out[at] = sg;
    }
  }
}

// 2. Vertical blur of every plane (taps gv, mask_c included), reflect rows: one thread per sample.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    band_vblur_kernel(const T* __restrict__ mm, const __grid_constant__ BandParams<T> P, T* __restrict__ v) {
  const int64_t total = P.n * P.c * P.h * P.w;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t x = idx % P.w, i = (idx / P.w) % P.h;
    const T* plane = mm + (idx - i * P.w - x);
    T acc = P.gv[0] * plane[reflect(i - kRadius, P.h) * P.w + x];
    for (int t = 1; t < kTaps; ++t) acc += P.gv[t] * plane[reflect(i + t - kRadius, P.h) * P.w + x];
    v[idx] = acc;
  }
}

// The blurred masker M_j (mask_c included) of channel j at (b, i, x): the horizontal blur of the vertically blurred
// plane v, or mm mask_c without the blur.
template <typename T>
__device__ __forceinline__ T blurred_masker(const BandParams<T>& P, const T* __restrict__ mm, const T* __restrict__ v,
                                            int64_t b, int j, int64_t i, int64_t x) {
  const int64_t row = ((b * P.c + j) * P.h + i) * P.w;
  if (!P.blur) return mm[row + x] * P.mask_c;
  T acc = P.gh[0] * v[row + reflect(x - kRadius, P.w)];
  for (int t = 1; t < kTaps; ++t) acc += P.gh[t] * v[row + reflect(x + t - kRadius, P.w)];
  return acc;
}

// 3. Pool: one thread per pixel of image blockIdx.y + first, all channels; per block, per channel one double.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    band_pool_kernel(const T* __restrict__ tp, const T* __restrict__ rp, const T* __restrict__ mm,
                     const T* __restrict__ v, const __grid_constant__ BandParams<T> P, int64_t first,
                     double* __restrict__ partial) {
  __shared__ double shared[kThreads];
  const int64_t b = first + blockIdx.y;
  const int64_t hw = P.h * P.w;
  const int64_t px = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  double acc[kMaxC] = {0.0, 0.0, 0.0, 0.0};
  if (px < hw) {
    const int64_t i = px / P.w, x = px % P.w;
    T mq[kMaxC];
    for (int j = 0; j < P.c; ++j)
      mq[j] = pow_t(blurred_masker(P, mm, v, b, j, i, x) + P.eps, P.q[j]) - P.eps_q[j];
    for (int k = 0; k < P.c; ++k) {
      const T* xrow = P.xcm + k * P.c;
      T masker = xrow[0] * mq[0];
      for (int j = 1; j < P.c; ++j) masker += xrow[j] * mq[j];
      const int64_t at = (b * P.c + k) * hw + px;
      const T du = (pow_t(abs_t(tp[at] - rp[at]) + P.eps, P.p) - P.eps_p) / (T(1) + masker);
      const T d = P.dmax * du / (P.dmax + du) + P.eps;
      acc[k] = static_cast<double>(d * d);
    }
  }
  for (int k = 0; k < P.c; ++k) {  // P.c is uniform over the block: every thread takes every block_sum
    const double s = block_sum<kThreads>(acc[k], shared);
    if (threadIdx.x == 0) partial[(b * P.c + k) * gridDim.x + blockIdx.x] = s;
  }
}

// Backward 3: d / d|T - R| (ge) and d / d(blurred masker) (gm) of every channel at one pixel.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    band_grad_kernel(const T* __restrict__ tp, const T* __restrict__ rp, const T* __restrict__ mm,
                     const T* __restrict__ v, const double* __restrict__ grad, const __grid_constant__ BandParams<T> P,
                     T* __restrict__ ge, T* __restrict__ gm) {
  const int64_t hw = P.h * P.w, total = P.n * hw;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t b = idx / hw, px = idx % hw, i = px / P.w, x = px % P.w;
    T m[kMaxC], mq[kMaxC], gmask[kMaxC];
    for (int j = 0; j < P.c; ++j) {
      m[j] = blurred_masker(P, mm, v, b, j, i, x);
      mq[j] = pow_t(m[j] + P.eps, P.q[j]) - P.eps_q[j];
    }
    for (int k = 0; k < P.c; ++k) {
      const T* xrow = P.xcm + k * P.c;
      T masker = xrow[0] * mq[0];
      for (int j = 1; j < P.c; ++j) masker += xrow[j] * mq[j];
      const int64_t at = (b * P.c + k) * hw + px;
      const T go = static_cast<T>(grad[b * P.c + k]);
      const T two_go_dmax2 = T(2) * go * P.dmax * P.dmax;
      const T e = abs_t(tp[at] - rp[at]) + P.eps;
      const T pe = pow_t(e, P.p);
      const T den = T(1) / (T(1) + masker);
      const T du = (pe - P.eps_p) * den;
      const T dd = P.dmax + du;
      const T d = P.dmax * du / dd;
      const T gdu = two_go_dmax2 * (d + P.eps) / (dd * dd);
      ge[at] = gdu * P.p * pe / e * den;
      gmask[k] = -gdu * du * den;
    }
    for (int k = 0; k < P.c; ++k) {  // d / d(masker power)_k = sum_j xcm[j, k] gmask_j, then the power's derivative
      T g = P.xcm[k] * gmask[0];
      for (int j = 1; j < P.c; ++j) g += P.xcm[j * P.c + k] * gmask[j];
      gm[(b * P.c + k) * hw + px] = g * P.q[k] * pow_t(m[k] + P.eps, P.q[k] - T(1));
    }
  }
}

// The adjoint of out[x] = sum_t w[t] in[reflect(x + t - kRadius, n)] at sample y: the (x, t) with
// reflect(x + t - kRadius) == y, i.e. x + t - kRadius in {y, -y (y > 0), 2 (n - 1) - y (y < n - 1)}; `at(x)` reads
// the output gradient at x (0 <= x < n).
template <typename T, typename At>
__device__ __forceinline__ T reflect_adjoint(const T* w, int64_t y, int64_t n, At at) {
  T acc = T(0);
  for (int t = 0; t < kTaps; ++t) {
    const int64_t x0 = y + kRadius - t;
    if (x0 >= 0 && x0 < n) acc += w[t] * at(x0);
    if (y > 0) {
      const int64_t x1 = -y + kRadius - t;
      if (x1 >= 0 && x1 < n) acc += w[t] * at(x1);
    }
    if (y < n - 1) {
      const int64_t x2 = 2 * (n - 1) - y + kRadius - t;
      if (x2 >= 0 && x2 < n) acc += w[t] * at(x2);
    }
  }
  return acc;
}

// Backward 4: the transposed horizontal blur of gm (taps gh), one thread per sample.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    band_hblur_t_kernel(const T* __restrict__ gm, const __grid_constant__ BandParams<T> P, T* __restrict__ u) {
  const int64_t total = P.n * P.c * P.h * P.w;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t y = idx % P.w;
    const T* row = gm + (idx - y);
    u[idx] = reflect_adjoint(P.gh, y, P.w, [&](int64_t x) { return row[x]; });
  }
}

// Backward 5: the transposed vertical blur (taps gv, mask_c included) to d / d min(|T|, |R|), then the chain to
// test, ref and log_bkg; one thread per (image, pixel), all channels.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    band_input_grad_kernel(const T* __restrict__ t, const T* __restrict__ r, const T* __restrict__ lb,
                           const T* __restrict__ s, const T* __restrict__ tp, const T* __restrict__ rp,
                           const T* __restrict__ ge, const T* __restrict__ gm, const T* __restrict__ u,
                           const __grid_constant__ BandParams<T> P, T* __restrict__ dt, T* __restrict__ dr,
                           T* __restrict__ dl) {
  __shared__ T table[kCvvdpCudaMaxCsf];
  load_table(P, table);
  const int64_t hw = P.h * P.w, total = P.n * hw;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t b = idx / hw, px = idx % hw, i = px / P.w, x = px % P.w;
    const T l = lb[idx];
    T gl = T(0);
    for (int k = 0; k < P.c; ++k) {
      const int64_t base = (b * P.c + k) * hw, at = base + px;
      T gmin;
      if (P.blur) {
        const T* col = u + base + x;
        gmin = reflect_adjoint(P.gv, i, P.h, [&](int64_t row) { return col[row * P.w]; });
      } else {
        gmin = gm[at] * P.mask_c;
      }
      const T a = abs_t(tp[at]), c = abs_t(rp[at]);
      const T ga = a < c ? gmin : (a == c ? gmin / T(2) : T(0));
      const T gc = c < a ? gmin : (a == c ? gmin / T(2) : T(0));
      const T gdiff = ge[at] * sgn(tp[at] - rp[at]);
      const T gtp = gdiff + ga * sgn(tp[at]);
      const T grp = -gdiff + gc * sgn(rp[at]);
      const T sg = s[at];
      dt[at] = gtp * sg;
      dr[at] = grp * sg;
      gl += (gtp * t[at] + grp * r[at]) * sg * dlog_sensitivity(P, table, k, l);
    }
    dl[idx] = gl;
  }
}

template <typename T>
BandParams<T> band_params(const at::Tensor& test, at::ArrayRef<double> csf, double lo, double hi,
                          at::ArrayRef<double> gain, at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm,
                          double mask_c, double mask_p, double d_max) {
  BandParams<T> P{};
  cvvdp::fill_band_constants<T>(P, test, static_cast<int64_t>(csf.size()), lo, hi, gain, mask_q, xcm, mask_c,
                                mask_p, d_max);
  for (size_t i = 0; i < csf.size(); ++i) P.csf[i] = static_cast<T>(csf[i]);
  return P;
}

template <typename T>
void band_forward_typed(const at::Tensor& test, const at::Tensor& ref, const at::Tensor& lb, const BandParams<T>& P,
                        at::Tensor& out) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t hw = P.h * P.w;
  at::Tensor tp = at::empty_like(test), rp = at::empty_like(test), mm = at::empty_like(test);
  at::Tensor v = P.blur ? at::empty_like(test) : mm;
  band_prepare_kernel<T><<<flat_grid(P.n * hw, kThreads), kThreads, 0, stream>>>(
      test.data_ptr<T>(), ref.data_ptr<T>(), lb.data_ptr<T>(), P, nullptr, tp.data_ptr<T>(), rp.data_ptr<T>(),
      mm.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (P.blur) {
    band_vblur_kernel<T><<<flat_grid(test.numel(), kThreads), kThreads, 0, stream>>>(
        mm.data_ptr<T>(), P, v.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const int64_t blocks = (hw + kThreads - 1) / kThreads;
  at::Tensor partial = at::empty({P.n, P.c, blocks}, test.options().dtype(at::kDouble));
  for_plane_batches(P.n, [&](int64_t first, unsigned count) {
    band_pool_kernel<T><<<dim3(static_cast<unsigned>(blocks), count), kThreads, 0, stream>>>(
        tp.data_ptr<T>(), rp.data_ptr<T>(), mm.data_ptr<T>(), v.data_ptr<T>(), P, first,
        partial.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  out.copy_(partial.sum(-1));
}

template <typename T>
void band_backward_typed(const at::Tensor& grad, const at::Tensor& test, const at::Tensor& ref, const at::Tensor& lb,
                         const BandParams<T>& P, at::Tensor& dt, at::Tensor& dr, at::Tensor& dl) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t hw = P.h * P.w;
  at::Tensor s = at::empty_like(test), tp = at::empty_like(test), rp = at::empty_like(test),
             mm = at::empty_like(test);
  at::Tensor v = P.blur ? at::empty_like(test) : mm;
  at::Tensor ge = at::empty_like(test), gm = at::empty_like(test);
  band_prepare_kernel<T><<<flat_grid(P.n * hw, kThreads), kThreads, 0, stream>>>(
      test.data_ptr<T>(), ref.data_ptr<T>(), lb.data_ptr<T>(), P, s.data_ptr<T>(), tp.data_ptr<T>(),
      rp.data_ptr<T>(), mm.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (P.blur) {
    band_vblur_kernel<T><<<flat_grid(test.numel(), kThreads), kThreads, 0, stream>>>(
        mm.data_ptr<T>(), P, v.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  band_grad_kernel<T><<<flat_grid(P.n * hw, kThreads), kThreads, 0, stream>>>(
      tp.data_ptr<T>(), rp.data_ptr<T>(), mm.data_ptr<T>(), v.data_ptr<T>(), grad.data_ptr<double>(), P,
      ge.data_ptr<T>(), gm.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor u = v;  // the vertical blur is spent: its buffer takes the transposed horizontal blur
  if (P.blur) {
    band_hblur_t_kernel<T><<<flat_grid(test.numel(), kThreads), kThreads, 0, stream>>>(
        gm.data_ptr<T>(), P, u.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  band_input_grad_kernel<T><<<flat_grid(P.n * hw, kThreads), kThreads, 0, stream>>>(
      test.data_ptr<T>(), ref.data_ptr<T>(), lb.data_ptr<T>(), s.data_ptr<T>(), tp.data_ptr<T>(), rp.data_ptr<T>(),
      ge.data_ptr<T>(), gm.data_ptr<T>(), u.data_ptr<T>(), P, dt.data_ptr<T>(), dr.data_ptr<T>(), dl.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// ------------------------------------------------------------------------------------- cvvdp_srgb_to_dkl
template <typename T>
struct SrgbParams {
  int64_t n, hw;
  T m[9], bias[3], data_range;
};

template <typename T>
__device__ __forceinline__ T srgb_eotf(T v) {
  v = v > T(0) ? v : T(0);
  v = v < T(1) ? v : T(1);
  return v > T(0.04045) ? pow_t((v + T(0.055)) / T(1.055), T(2.4)) : v / T(12.92);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    srgb_to_dkl_kernel(const T* __restrict__ x, const SrgbParams<T> S, T* __restrict__ out) {
  const int64_t total = S.n * S.hw;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t base = (idx / S.hw) * 3 * S.hw + idx % S.hw;
    T e[3];
    for (int k = 0; k < 3; ++k) e[k] = srgb_eotf(x[base + k * S.hw] / S.data_range);
    for (int c = 0; c < 3; ++c)
      out[base + c * S.hw] = S.m[3 * c] * e[0] + S.m[3 * c + 1] * e[1] + S.m[3 * c + 2] * e[2] + S.bias[c];
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    srgb_to_dkl_backward_kernel(const T* __restrict__ grad, const T* __restrict__ x, const SrgbParams<T> S,
                                T* __restrict__ dx) {
  const int64_t total = S.n * S.hw;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t base = (idx / S.hw) * 3 * S.hw + idx % S.hw;
    const T g0 = grad[base], g1 = grad[base + S.hw], g2 = grad[base + 2 * S.hw];
    for (int k = 0; k < 3; ++k) {
      const T v = x[base + k * S.hw] / S.data_range;
      const bool inside = v >= T(0) && v <= T(1);
      const T vc = v > T(0) ? (v < T(1) ? v : T(1)) : T(0);
      const T slope = vc > T(0.04045) ? static_cast<T>(2.4 / 1.055) * pow_t((vc + T(0.055)) / T(1.055), T(1.4))
                                      : T(1) / T(12.92);
      const T ge = S.m[k] * g0 + S.m[3 + k] * g1 + S.m[6 + k] * g2;
      dx[base + k * S.hw] = inside ? ge * slope / S.data_range : T(0);
    }
  }
}

template <typename T>
SrgbParams<T> srgb_params(const at::Tensor& x, at::ArrayRef<double> matrix, at::ArrayRef<double> bias,
                          double data_range) {
  SrgbParams<T> S{};
  S.n = x.size(0);
  S.hw = x.size(2) * x.size(3);
  for (int i = 0; i < 9; ++i) S.m[i] = static_cast<T>(matrix[i]);
  for (int i = 0; i < 3 && i < static_cast<int>(bias.size()); ++i) S.bias[i] = static_cast<T>(bias[i]);
  S.data_range = static_cast<T>(data_range);
  return S;
}

}  // namespace

at::Tensor cvvdp_band_pool_launch(const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
                                  at::ArrayRef<double> csf, double log_l_lo, double log_l_hi,
                                  at::ArrayRef<double> gain, at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm,
                                  double mask_c, double mask_p, double d_max) {
  const c10::cuda::CUDAGuard guard(test.device());
  at::Tensor out = at::zeros({test.size(0), test.size(1)}, test.options().dtype(at::kDouble));
  if (test.numel() == 0) return out;
  if (test.scalar_type() == at::kDouble)
    band_forward_typed<double>(test, ref, log_bkg,
                               band_params<double>(test, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                                                   d_max),
                               out);
  else
    band_forward_typed<float>(test, ref, log_bkg,
                              band_params<float>(test, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                                                 d_max),
                              out);
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cvvdp_band_pool_backward_launch(
    const at::Tensor& grad, const at::Tensor& test, const at::Tensor& ref, const at::Tensor& log_bkg,
    at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain, at::ArrayRef<double> mask_q,
    at::ArrayRef<double> xcm, double mask_c, double mask_p, double d_max) {
  const c10::cuda::CUDAGuard guard(test.device());
  at::Tensor dt = at::empty_like(test), dr = at::empty_like(ref), dl = at::empty_like(log_bkg);
  if (test.numel() == 0) return {dt, dr, dl.zero_()};
  if (test.scalar_type() == at::kDouble)
    band_backward_typed<double>(grad, test, ref, log_bkg,
                                band_params<double>(test, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                                                    d_max),
                                dt, dr, dl);
  else
    band_backward_typed<float>(grad, test, ref, log_bkg,
                               band_params<float>(test, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                                                  d_max),
                               dt, dr, dl);
  return {dt, dr, dl};
}

at::Tensor cvvdp_srgb_to_dkl_launch(const at::Tensor& x, at::ArrayRef<double> matrix, at::ArrayRef<double> bias,
                                    double data_range) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  if (out.numel() == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const unsigned grid = flat_grid(x.size(0) * x.size(2) * x.size(3), kThreads);
  if (x.scalar_type() == at::kDouble)
    srgb_to_dkl_kernel<double><<<grid, kThreads, 0, stream>>>(
        x.data_ptr<double>(), srgb_params<double>(x, matrix, bias, data_range), out.data_ptr<double>());
  else
    srgb_to_dkl_kernel<float><<<grid, kThreads, 0, stream>>>(
        x.data_ptr<float>(), srgb_params<float>(x, matrix, bias, data_range), out.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor cvvdp_srgb_to_dkl_backward_launch(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> matrix,
                                             double data_range) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor dx = at::empty_like(x);
  if (dx.numel() == 0) return dx;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const unsigned grid = flat_grid(x.size(0) * x.size(2) * x.size(3), kThreads);
  if (x.scalar_type() == at::kDouble)
    srgb_to_dkl_backward_kernel<double><<<grid, kThreads, 0, stream>>>(
        grad.data_ptr<double>(), x.data_ptr<double>(), srgb_params<double>(x, matrix, {}, data_range),
        dx.data_ptr<double>());
  else
    srgb_to_dkl_backward_kernel<float><<<grid, kThreads, 0, stream>>>(
        grad.data_ptr<float>(), x.data_ptr<float>(), srgb_params<float>(x, matrix, {}, data_range),
        dx.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return dx;
}

}  // namespace turboiqa::cuda
