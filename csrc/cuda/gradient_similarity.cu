// CUDA implementation of turboiqa::gradient_similarity and its backward (same algebra as
// cpu/gradient_similarity_rows.cpp; gradient_similarity.h). Inputs arrive in the compute dtype, contiguous
// (ops_cuda.cpp converts and checks).
//
// Forward: one thread per output pixel (grid.x = blocks of kThreads pixels of a plane, grid.y = plane), the 3x3
// stencil read straight from global memory (cached), the scale folded into c and eps as on the CPU. 'map' writes q;
// 'moments' reduces q and q² of the block in double and writes one partial per (plane, block); a torch sum over
// the partials finishes each plane's sums. No atomics: bitwise reproducible.
//
// Backward: one thread per input pixel gathers the stencil's adjoint over the 8 neighbouring centres, recomputing
// each centre's weight 2·G·∂q/∂M·(gx, gy) (no intermediate buffer; a gather, deterministic).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
struct GradSimParams {
  int height, width, out_h, out_w, off;  // off = 1 for 'valid' (output (i, j) is centre (i + 1, j + 1)), else 0
  T s0, s1, s2, c, alpha, eps;           // c, eps divided by scale²
  int64_t plane_offset;
};

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__device__ __forceinline__ T pixel(const T* __restrict__ p, int r, int c, int h, int w) {
  return r < 0 || r >= h || c < 0 || c >= w ? T(0) : p[static_cast<int64_t>(r) * w + c];
}

// gx, gy of a plane at centre (t, e): gx = Σ_dr s[dr+1] (x[t+dr][e+1] − x[t+dr][e−1]),
// gy = Σ_dc s[dc+1] (x[t+1][e+dc] − x[t−1][e+dc]).
template <typename T>
__device__ __forceinline__ void gradients(const T* __restrict__ p, int t, int e, const GradSimParams<T>& k, T& gx,
                                          T& gy) {
  T v[3][3];
#pragma unroll
  for (int a = 0; a < 3; ++a)
#pragma unroll
    for (int b = 0; b < 3; ++b) v[a][b] = pixel(p, t + a - 1, e + b - 1, k.height, k.width);
  gx = k.s0 * (v[0][2] - v[0][0]) + k.s1 * (v[1][2] - v[1][0]) + k.s2 * (v[2][2] - v[2][0]);
  gy = k.s0 * (v[2][0] - v[0][0]) + k.s1 * (v[2][1] - v[0][1]) + k.s2 * (v[2][2] - v[0][2]);
}

template <typename T>
__device__ __forceinline__ T similarity(T m1, T m2, const GradSimParams<T>& k, T& prod, T& inv) {
  prod = sqrt(m1 * m2);
  inv = T(1) / (m1 + m2 - k.alpha * prod + k.c);
  return ((T(2) - k.alpha) * prod + k.c) * inv;
}

template <typename T, bool kMoments>
__global__ void __launch_bounds__(kThreads)
    grad_sim_forward_kernel(const T* __restrict__ x, const T* __restrict__ y, const GradSimParams<T> k,
                            T* __restrict__ map, double* __restrict__ partial_sum, double* __restrict__ partial_sumsq) {
  const int64_t plane = k.plane_offset + blockIdx.y;
  const int64_t out_size = static_cast<int64_t>(k.out_h) * k.out_w;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t plane_size = static_cast<int64_t>(k.height) * k.width;
  double qd = 0;
  if (idx < out_size) {
    const int i = static_cast<int>(idx / k.out_w), j = static_cast<int>(idx % k.out_w);
    T gx1, gy1, gx2, gy2, prod, inv;
    gradients(x + plane * plane_size, i + k.off, j + k.off, k, gx1, gy1);
    gradients(y + plane * plane_size, i + k.off, j + k.off, k, gx2, gy2);
    const T q = similarity(gx1 * gx1 + gy1 * gy1 + k.eps, gx2 * gx2 + gy2 * gy2 + k.eps, k, prod, inv);
    if constexpr (kMoments)
      qd = static_cast<double>(q);
    else
      map[plane * out_size + idx] = q;
  }
  if constexpr (kMoments) {
    __shared__ double s_red[2][kThreads / 32];
    double s = warp_sum(qd), s2 = warp_sum(qd * qd);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
      s_red[0][warp] = s;
      s_red[1][warp] = s2;
    }
    __syncthreads();
    if (warp == 0) {
      s = lane < kThreads / 32 ? s_red[0][lane] : 0.0;
      s2 = lane < kThreads / 32 ? s_red[1][lane] : 0.0;
      s = warp_sum(s);
      s2 = warp_sum(s2);
      if (lane == 0) {
        partial_sum[plane * gridDim.x + blockIdx.x] = s;
        partial_sumsq[plane * gridDim.x + blockIdx.x] = s2;
      }
    }
  }
}

// Weights of centre (t, e) of one plane pair: wx1 = a1·gx1, wy1 = a1·gy1 (a1 = 2·G·∂q/∂M1), same for plane 2;
// zero where (t, e) has no output.
template <typename T, bool kMoments>
__device__ __forceinline__ void centre_weights(const T* __restrict__ xp, const T* __restrict__ yp,
                                               const T* __restrict__ gmap, T g_sum, T g_sumsq, int t, int e,
                                               const GradSimParams<T>& k, T& wx1, T& wy1, T& wx2, T& wy2) {
  const int i = t - k.off, j = e - k.off;
  if (i < 0 || i >= k.out_h || j < 0 || j >= k.out_w) {
    wx1 = wy1 = wx2 = wy2 = T(0);
    return;
  }
  T gx1, gy1, gx2, gy2, prod, inv;
  gradients(xp, t, e, k, gx1, gy1);
  gradients(yp, t, e, k, gx2, gy2);
  const T m1 = gx1 * gx1 + gy1 * gy1 + k.eps, m2 = gx2 * gx2 + gy2 * gy2 + k.eps;
  const T q = similarity(m1, m2, k, prod, inv);
  T grad;
  if constexpr (kMoments)
    grad = g_sum + T(2) * g_sumsq * q;
  else
    grad = gmap[static_cast<int64_t>(i) * k.out_w + j];
  const T two = T(2) - k.alpha;
  const T dp1 = m1 > T(0) ? prod / (T(2) * m1) : T(0);
  const T dp2 = m2 > T(0) ? prod / (T(2) * m2) : T(0);
  const T a1 = T(2) * grad * (two * dp1 - q * (T(1) - k.alpha * dp1)) * inv;
  const T a2 = T(2) * grad * (two * dp2 - q * (T(1) - k.alpha * dp2)) * inv;
  wx1 = a1 * gx1;
  wy1 = a1 * gy1;
  wx2 = a2 * gx2;
  wy2 = a2 * gy2;
}

template <typename T, bool kMoments>
__global__ void __launch_bounds__(kThreads)
    grad_sim_backward_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ gmap,
                             const double* __restrict__ gmom, const GradSimParams<T> k, T* __restrict__ dx,
                             T* __restrict__ dy) {
  const int64_t plane = k.plane_offset + blockIdx.y;
  const int64_t plane_size = static_cast<int64_t>(k.height) * k.width;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= plane_size) return;
  const int r = static_cast<int>(idx / k.width), c = static_cast<int>(idx % k.width);
  const T* xp = x + plane * plane_size;
  const T* yp = y + plane * plane_size;
  const T* gp = kMoments ? nullptr : gmap + plane * static_cast<int64_t>(k.out_h) * k.out_w;
  const T g_sum = kMoments ? static_cast<T>(gmom[2 * plane]) : T(0);
  const T g_sumsq = kMoments ? static_cast<T>(gmom[2 * plane + 1]) : T(0);
  const T s[3] = {k.s0, k.s1, k.s2};
  T acc1 = T(0), acc2 = T(0);
#pragma unroll
  for (int a = -1; a <= 1; ++a)
#pragma unroll
    for (int b = -1; b <= 1; ++b) {
      if (a == 0 && b == 0) continue;  // the centre pixel itself does not enter its own gradients
      // x[r][c] enters gx of centre (r + a, c + b) with s[1 − a]·(b == −1 ? +1 : b == 1 ? −1 : 0) and gy with
      // (a == −1 ? +1 : a == 1 ? −1 : 0)·s[1 − b] (its offset from that centre is (−a, −b)).
      const T cx = b == 0 ? T(0) : (b < 0 ? s[1 - a] : -s[1 - a]);
      const T cy = a == 0 ? T(0) : (a < 0 ? s[1 - b] : -s[1 - b]);
      T wx1, wy1, wx2, wy2;
      centre_weights<T, kMoments>(xp, yp, gp, g_sum, g_sumsq, r + a, c + b, k, wx1, wy1, wx2, wy2);
      acc1 += cx * wx1 + cy * wy1;
      acc2 += cx * wx2 + cy * wy2;
    }
  dx[plane * plane_size + idx] = acc1;
  dy[plane * plane_size + idx] = acc2;
}

template <typename T>
GradSimParams<T> grad_sim_params(const at::Tensor& x, bool valid, at::ArrayRef<double> smooth, double scale,
                                 double c, double alpha, double eps) {
  GradSimParams<T> k;
  k.height = static_cast<int>(x.size(2));
  k.width = static_cast<int>(x.size(3));
  k.off = valid ? 1 : 0;
  k.out_h = k.height - 2 * k.off;
  k.out_w = k.width - 2 * k.off;
  const double s2 = scale * scale;
  k.s0 = static_cast<T>(smooth[0]);
  k.s1 = static_cast<T>(smooth[1]);
  k.s2 = static_cast<T>(smooth[2]);
  k.c = static_cast<T>(c / s2);
  k.alpha = static_cast<T>(alpha);
  k.eps = static_cast<T>(eps / s2);
  k.plane_offset = 0;
  return k;
}

template <typename T>
void forward_typed(const at::Tensor& x, const at::Tensor& y, bool valid, bool moments, at::ArrayRef<double> smooth,
                   double scale, double c, double alpha, double eps, at::Tensor& out) {
  GradSimParams<T> k = grad_sim_params<T>(x, valid, smooth, scale, c, alpha, eps);
  const int64_t planes = x.size(0) * x.size(1);
  const int64_t out_size = static_cast<int64_t>(k.out_h) * k.out_w;
  const int64_t blocks = (out_size + kThreads - 1) / kThreads;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor partial_sum, partial_sumsq;
  if (moments) {
    partial_sum = at::empty({planes, blocks}, x.options().dtype(at::kDouble));
    partial_sumsq = at::empty({planes, blocks}, x.options().dtype(at::kDouble));
  }
  for_plane_batches(planes, [&](int64_t first, unsigned count) {
    k.plane_offset = first;
    const dim3 grid(static_cast<unsigned>(blocks), count);
    if (moments)
      grad_sim_forward_kernel<T, true><<<grid, kThreads, 0, stream>>>(
          x.data_ptr<T>(), y.data_ptr<T>(), k, nullptr, partial_sum.data_ptr<double>(),
          partial_sumsq.data_ptr<double>());
    else
      grad_sim_forward_kernel<T, false><<<grid, kThreads, 0, stream>>>(x.data_ptr<T>(), y.data_ptr<T>(), k,
                                                                      out.data_ptr<T>(), nullptr, nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (moments)
    out.copy_(at::stack({partial_sum.sum(-1), partial_sumsq.sum(-1)}, -1).reshape({x.size(0), x.size(1), 2}));
}

template <typename T>
void backward_typed(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y, bool valid, bool moments,
                    at::ArrayRef<double> smooth, double scale, double c, double alpha, double eps, at::Tensor& dx,
                    at::Tensor& dy) {
  GradSimParams<T> k = grad_sim_params<T>(x, valid, smooth, scale, c, alpha, eps);
  const int64_t planes = x.size(0) * x.size(1);
  const int64_t plane_size = static_cast<int64_t>(k.height) * k.width;
  const int64_t blocks = (plane_size + kThreads - 1) / kThreads;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for_plane_batches(planes, [&](int64_t first, unsigned count) {
    k.plane_offset = first;
    const dim3 grid(static_cast<unsigned>(blocks), count);
    if (moments)
      grad_sim_backward_kernel<T, true><<<grid, kThreads, 0, stream>>>(
          x.data_ptr<T>(), y.data_ptr<T>(), nullptr, grad.data_ptr<double>(), k, dx.data_ptr<T>(), dy.data_ptr<T>());
    else
      grad_sim_backward_kernel<T, false><<<grid, kThreads, 0, stream>>>(
          x.data_ptr<T>(), y.data_ptr<T>(), grad.data_ptr<T>(), nullptr, k, dx.data_ptr<T>(), dy.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

void gradient_similarity_launch(const at::Tensor& x, const at::Tensor& y, bool valid, bool moments,
                                at::ArrayRef<double> smooth, double scale, double c, double alpha, double eps,
                                at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.scalar_type() == at::kDouble)
    forward_typed<double>(x, y, valid, moments, smooth, scale, c, alpha, eps, out);
  else
    forward_typed<float>(x, y, valid, moments, smooth, scale, c, alpha, eps, out);
}

void gradient_similarity_backward_launch(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y, bool valid,
                                         bool moments, at::ArrayRef<double> smooth, double scale, double c,
                                         double alpha, double eps, at::Tensor& dx, at::Tensor& dy) {
  const c10::cuda::CUDAGuard guard(x.device());
  if (x.scalar_type() == at::kDouble)
    backward_typed<double>(grad, x, y, valid, moments, smooth, scale, c, alpha, eps, dx, dy);
  else
    backward_typed<float>(grad, x, y, valid, moments, smooth, scale, c, alpha, eps, dx, dy);
}

}  // namespace turboiqa::cuda
