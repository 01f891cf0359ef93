// CUDA kernels of the feature distances (LPIPS, DISTS, PIPAL's SWD). Arguments arrive validated and prepared
// (prepare_features, called by the host-compiled entry points in ops_cuda.cpp): nothing here throws except the
// launch checks.
//
// One thread per feature position with the shared per-position math of feature_distance.h (NCHW: consecutive
// threads read consecutive positions of each channel plane). Reductions are deterministic: each block sums its
// threads' values in a fixed tree in float64 and writes one partial; a second kernel adds the partials of an image
// in order. No atomics, so results do not change from run to run.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <tuple>

#include "../feature_distance.h"
#include "block_sum.cuh"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocksPerImage = 1024;  // fixed from the shape alone, so the summation order is too
constexpr int64_t kDistsChunk = 65536;        // positions per DISTS statistics block

int64_t blocks_per_image(int64_t positions) {
  return std::min<int64_t>(kMaxBlocksPerImage, (positions + kThreads - 1) / kThreads);
}

unsigned grid_for(int64_t total) { return flat_grid(total, kThreads); }

// out[n] = sum of the image's partials in order, divided by `divisor`.
template <typename T>
__global__ void finish_kernel(const double* __restrict__ partial, int64_t per_image, int64_t batch, double divisor,
                              T* __restrict__ out) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= batch) return;
  double sum = 0;
  for (int64_t k = 0; k < per_image; ++k) sum += partial[n * per_image + k];
  out[n] = static_cast<T>(sum / divisor);
}

// ---- LPIPS --------------------------------------------------------------------------------------------------

template <typename T>
__global__ void lpips_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ w,
                             FeatureLayout l, T eps, double* __restrict__ partial) {
  __shared__ double shared[kThreads];
  const int64_t n = blockIdx.y, positions = l.positions();
  const T* ai = a + n * l.image_stride();
  const T* bi = b + n * l.image_stride();
  double acc = 0;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; p < positions;
       p += static_cast<int64_t>(gridDim.x) * kThreads) {
    const T* ap = ai + p * l.position_stride;
    const T* bp = bi + p * l.position_stride;
    const T inv_a = T(1) / (channel_norm(ap, l.channel_stride, l.channels) + eps);
    const T inv_b = T(1) / (channel_norm(bp, l.channel_stride, l.channels) + eps);
    acc += weighted_distance(ap, inv_a, bp, inv_b, l.channel_stride, w, l.channels);
  }
  const double sum = block_sum<kThreads>(acc, shared);
  if (threadIdx.x == 0) partial[n * gridDim.x + blockIdx.x] = sum;
}

template <typename T>
__global__ void lpips_backward_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ w,
                                      const T* __restrict__ grad, FeatureLayout l, T eps, T* __restrict__ ga,
                                      T* __restrict__ gb) {
  const int64_t positions = l.positions(), total = l.batch * positions;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t n = t / positions, p = t % positions;
    const int64_t at = n * l.image_stride() + p * l.position_stride;
    lpips_position_backward<T>(a + at, b + at, l.channel_stride, w, l.channels, eps, grad[n] / T(positions), ga + at,
                               gb + at);
  }
}

// ---- DISTS (NCHW) -------------------------------------------------------------------------------------------

// Block (chunk, c, n): shifted moment sums of `kDistsChunk` positions of plane (n, c) -> partial[(n, c, chunk)][5].
template <typename T>
__global__ void dists_moments_kernel(const T* __restrict__ a, const T* __restrict__ b, FeatureLayout l,
                                     double* __restrict__ partial) {
  __shared__ double shared[kThreads];
  const int64_t n = blockIdx.z, c = blockIdx.y, chunk = blockIdx.x, positions = l.positions();
  const T* x = a + n * l.image_stride() + c * l.channel_stride;
  const T* y = b + n * l.image_stride() + c * l.channel_stride;
  const double hx = static_cast<double>(x[0]), hy = static_cast<double>(y[0]);
  const int64_t first = chunk * kDistsChunk, last = first + kDistsChunk < positions ? first + kDistsChunk : positions;
  double m[5] = {0, 0, 0, 0, 0};
  for (int64_t p = first + threadIdx.x; p < last; p += kThreads) {
    const double dx = static_cast<double>(x[p]) - hx, dy = static_cast<double>(y[p]) - hy;
    m[0] += dx;
    m[1] += dy;
    m[2] += dx * dx;
    m[3] += dy * dy;
    m[4] += dx * dy;
  }
  double* out = partial + ((n * l.channels + c) * gridDim.x + chunk) * 5;
  for (int k = 0; k < 5; ++k) {
    const double s = block_sum<kThreads>(m[k], shared);
    if (threadIdx.x == 0) out[k] = s;
  }
}

// One thread per (n, c): chunks combined in order -> stats[(n, c)][5] (mu_x, mu_y, var_x, var_y, cov) and the
// channel's term alpha l + beta s.
template <typename T>
__global__ void dists_stats_kernel(const T* __restrict__ a, const T* __restrict__ b, const double* __restrict__ partial,
                                   int64_t chunks, FeatureLayout l, const T* __restrict__ alpha,
                                   const T* __restrict__ beta, double c1, double c2, double* __restrict__ stats,
                                   double* __restrict__ terms) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= l.batch * l.channels) return;
  const int64_t n = t / l.channels, c = t % l.channels;
  MomentSums m{0, 0, 0, 0, 0};
  for (int64_t k = 0; k < chunks; ++k) {
    const double* s = partial + (t * chunks + k) * 5;
    m.sx += s[0], m.sy += s[1], m.sxx += s[2], m.syy += s[3], m.sxy += s[4];
  }
  const int64_t at = n * l.image_stride() + c * l.channel_stride;
  const ChannelStats st =
      channel_stats(m, static_cast<double>(a[at]), static_cast<double>(b[at]), l.positions());
  double* o = stats + t * 5;
  o[0] = st.mu_x, o[1] = st.mu_y, o[2] = st.var_x, o[3] = st.var_y, o[4] = st.cov;
  terms[t] = dists_term(st, static_cast<double>(alpha[c]), static_cast<double>(beta[c]), c1, c2);
}

// One thread per (n, c): coefficients of the gradient, coef[(n, c)][8] = k_x, k_xx, k_xy, k_y, k_yy, k_yx, mu_x, mu_y.
template <typename T>
__global__ void dists_gradient_kernel(const double* __restrict__ stats, FeatureLayout l, const T* __restrict__ alpha,
                                      const T* __restrict__ beta, const T* __restrict__ grad, double c1, double c2,
                                      T* __restrict__ coef) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= l.batch * l.channels) return;
  const int64_t n = t / l.channels, c = t % l.channels;
  const double* s = stats + t * 5;
  const ChannelStats st{s[0], s[1], s[2], s[3], s[4]};
  const DistsGradient k = dists_gradient(st, static_cast<double>(alpha[c]), static_cast<double>(beta[c]), c1, c2,
                                         static_cast<double>(grad[n]), l.positions());
  T* o = coef + t * 8;
  o[0] = static_cast<T>(k.k_x), o[1] = static_cast<T>(k.k_xx), o[2] = static_cast<T>(k.k_xy);
  o[3] = static_cast<T>(k.k_y), o[4] = static_cast<T>(k.k_yy), o[5] = static_cast<T>(k.k_yx);
  o[6] = static_cast<T>(st.mu_x), o[7] = static_cast<T>(st.mu_y);
}

template <typename T>
__global__ void dists_backward_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ coef,
                                      int64_t positions, int64_t total, T* __restrict__ ga, T* __restrict__ gb) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const T* k = coef + (t / positions) * 8;  // NCHW: plane (n, c) = t / positions
    const T dx = a[t] - k[6], dy = b[t] - k[7];
    ga[t] = k[0] + k[1] * dx + k[2] * dy;
    gb[t] = k[3] + k[4] * dy + k[5] * dx;
  }
}

// ---- SWD ----------------------------------------------------------------------------------------------------

template <typename T>
__global__ void norms_kernel(const T* __restrict__ f, FeatureLayout l, T* __restrict__ norms) {
  const int64_t positions = l.positions(), total = l.batch * positions;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t n = t / positions, p = t % positions;
    norms[t] = channel_norm(f + n * l.image_stride() + p * l.position_stride, l.channel_stride, l.channels);
  }
}

template <typename T>
__global__ void swd_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ norm_a,
                           const T* __restrict__ norm_b, const T* __restrict__ w, FeatureLayout l, int64_t radius,
                           T eps, double* __restrict__ partial) {
  __shared__ double shared[kThreads];
  const int64_t n = blockIdx.y, positions = l.positions();
  double acc = 0;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; p < positions;
       p += static_cast<int64_t>(gridDim.x) * kThreads) {
    int best = -1;
    acc += swd_position<T>(a + n * l.image_stride(), b + n * l.image_stride(), norm_a + n * positions,
                           norm_b + n * positions, l, p / l.width, p % l.width, radius, w, eps, &best);
  }
  const double sum = block_sum<kThreads>(acc, shared);
  if (threadIdx.x == 0) partial[n * gridDim.x + blockIdx.x] = sum;
}

template <typename T>
__global__ void swd_best_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ norm_a,
                                const T* __restrict__ norm_b, const T* __restrict__ w, FeatureLayout l, int64_t radius,
                                T eps, int* __restrict__ best) {
  const int64_t positions = l.positions(), total = l.batch * positions;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t n = t / positions, p = t % positions;
    swd_position<T>(a + n * l.image_stride(), b + n * l.image_stride(), norm_a + n * positions, norm_b + n * positions,
                    l, p / l.width, p % l.width, radius, w, eps, best + t);
  }
}

template <typename T>
__global__ void swd_backward_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ norm_a,
                                    const T* __restrict__ norm_b, const int* __restrict__ best,
                                    const T* __restrict__ w, const T* __restrict__ grad, FeatureLayout l,
                                    int64_t radius, T eps, T* __restrict__ ga, T* __restrict__ gb) {
  const int64_t positions = l.positions(), total = l.batch * positions;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t n = t / positions, p = t % positions, at = n * l.image_stride(), np = n * positions;
    const T g = grad[n] / T(positions);
    swd_distorted_backward<T>(a + at, b + at, norm_a + np, norm_b + np, best + np, l, p / l.width, p % l.width, radius,
                              w, eps, g, ga + at);
    swd_reference_backward<T>(a + at, b + at, norm_a + np, norm_b + np, best + np, l, p / l.width, p % l.width, radius,
                              w, eps, g, gb + at);
  }
}

template <typename T>
at::Tensor lpips_forward(const FeaturePair& fp, double eps) {
  const FeatureLayout& l = fp.layout;
  at::Tensor out = feature_distance_output(fp);
  const int64_t blocks = blocks_per_image(l.positions());
  at::Tensor partial = at::empty({l.batch * blocks}, fp.a.options().dtype(at::kDouble));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  lpips_kernel<T><<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(l.batch)), kThreads, 0, stream>>>(
      fp.a.data_ptr<T>(), fp.b.data_ptr<T>(), fp.weight.data_ptr<T>(), l, static_cast<T>(eps),
      partial.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  finish_kernel<T><<<grid_for(l.batch), kThreads, 0, stream>>>(partial.data_ptr<double>(), blocks, l.batch,
                                                               static_cast<double>(l.positions()), out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

template <typename T>
at::Tensor dists_forward(const FeaturePair& fp, double c1, double c2, at::Tensor* stats_out) {
  const FeatureLayout& l = fp.layout;
  const int64_t chunks = (l.positions() + kDistsChunk - 1) / kDistsChunk, planes = l.batch * l.channels;
  const auto doubles = fp.a.options().dtype(at::kDouble);
  at::Tensor partial = at::empty({planes * chunks * 5}, doubles);
  at::Tensor stats = at::empty({planes * 5}, doubles), terms = at::empty({planes}, doubles);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  dists_moments_kernel<T><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(l.channels),
                                 static_cast<unsigned>(l.batch)),
                            kThreads, 0, stream>>>(fp.a.data_ptr<T>(), fp.b.data_ptr<T>(), l,
                                                   partial.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  dists_stats_kernel<T><<<grid_for(planes), kThreads, 0, stream>>>(
      fp.a.data_ptr<T>(), fp.b.data_ptr<T>(), partial.data_ptr<double>(), chunks, l, fp.weight.data_ptr<T>(),
      fp.weight2.data_ptr<T>(), c1, c2, stats.data_ptr<double>(), terms.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor out = feature_distance_output(fp);
  finish_kernel<T><<<grid_for(l.batch), kThreads, 0, stream>>>(terms.data_ptr<double>(), l.channels, l.batch, 1.0,
                                                               out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (stats_out) *stats_out = stats;
  return out;
}

template <typename T>
void dists_backward(const FeaturePair& fp, const at::Tensor& grad, double c1, double c2, at::Tensor& ga,
                    at::Tensor& gb) {
  const FeatureLayout& l = fp.layout;
  at::Tensor stats;
  dists_forward<T>(fp, c1, c2, &stats);
  const int64_t planes = l.batch * l.channels, total = planes * l.positions();
  at::Tensor coef = at::empty({planes * 8}, fp.a.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  dists_gradient_kernel<T><<<grid_for(planes), kThreads, 0, stream>>>(
      stats.data_ptr<double>(), l, fp.weight.data_ptr<T>(), fp.weight2.data_ptr<T>(), grad.data_ptr<T>(), c1, c2,
      coef.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  dists_backward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(
      fp.a.data_ptr<T>(), fp.b.data_ptr<T>(), coef.data_ptr<T>(), l.positions(), total, ga.data_ptr<T>(),
      gb.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
std::tuple<at::Tensor, at::Tensor> swd_norms(const FeaturePair& fp) {
  const FeatureLayout& l = fp.layout;
  at::Tensor na = at::empty({l.batch * l.positions()}, fp.a.options()), nb = at::empty_like(na);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  norms_kernel<T><<<grid_for(l.batch * l.positions()), kThreads, 0, stream>>>(fp.a.data_ptr<T>(), l, na.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  norms_kernel<T><<<grid_for(l.batch * l.positions()), kThreads, 0, stream>>>(fp.b.data_ptr<T>(), l, nb.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {na, nb};
}

template <typename T>
at::Tensor swd_forward(const FeaturePair& fp, int64_t radius, double eps) {
  const FeatureLayout& l = fp.layout;
  at::Tensor na, nb;
  std::tie(na, nb) = swd_norms<T>(fp);
  const int64_t blocks = blocks_per_image(l.positions());
  at::Tensor partial = at::empty({l.batch * blocks}, fp.a.options().dtype(at::kDouble));
  at::Tensor out = feature_distance_output(fp);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  swd_kernel<T><<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(l.batch)), kThreads, 0, stream>>>(
      fp.a.data_ptr<T>(), fp.b.data_ptr<T>(), na.data_ptr<T>(), nb.data_ptr<T>(), fp.weight.data_ptr<T>(), l, radius,
      static_cast<T>(eps), partial.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  finish_kernel<T><<<grid_for(l.batch), kThreads, 0, stream>>>(partial.data_ptr<double>(), blocks, l.batch,
                                                               static_cast<double>(l.positions()), out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

template <typename T>
void swd_backward(const FeaturePair& fp, const at::Tensor& grad, int64_t radius, double eps, at::Tensor& ga,
                  at::Tensor& gb) {
  const FeatureLayout& l = fp.layout;
  at::Tensor na, nb;
  std::tie(na, nb) = swd_norms<T>(fp);
  const int64_t total = l.batch * l.positions();
  at::Tensor best = at::empty({total}, fp.a.options().dtype(at::kInt));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  swd_best_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(fp.a.data_ptr<T>(), fp.b.data_ptr<T>(),
                                                               na.data_ptr<T>(), nb.data_ptr<T>(),
                                                               fp.weight.data_ptr<T>(), l, radius, static_cast<T>(eps),
                                                               best.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  swd_backward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(
      fp.a.data_ptr<T>(), fp.b.data_ptr<T>(), na.data_ptr<T>(), nb.data_ptr<T>(), best.data_ptr<int>(),
      fp.weight.data_ptr<T>(), grad.data_ptr<T>(), l, radius, static_cast<T>(eps), ga.data_ptr<T>(),
      gb.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

at::Tensor lpips_distance_launch(const FeaturePair& fp, double eps) {
  const c10::cuda::CUDAGuard guard(fp.a.device());
  if (fp.layout.batch == 0) return feature_distance_output(fp);
  return fp.a.scalar_type() == at::kDouble ? lpips_forward<double>(fp, eps) : lpips_forward<float>(fp, eps);
}

std::tuple<at::Tensor, at::Tensor> lpips_distance_backward_launch(const FeaturePair& fp, const at::Tensor& grad_in,
                                                                  double eps) {
  const c10::cuda::CUDAGuard guard(fp.a.device());
  at::Tensor ga = at::empty_like(fp.a), gb = at::empty_like(fp.b);
  const int64_t total = fp.layout.batch * fp.layout.positions();
  if (total == 0) return {ga, gb};
  const at::Tensor grad = grad_in.to(fp.a.scalar_type()).contiguous();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (fp.a.scalar_type() == at::kDouble) {
    lpips_backward_kernel<double><<<grid_for(total), kThreads, 0, stream>>>(
        fp.a.data_ptr<double>(), fp.b.data_ptr<double>(), fp.weight.data_ptr<double>(), grad.data_ptr<double>(),
        fp.layout, eps, ga.data_ptr<double>(), gb.data_ptr<double>());
  } else {
    lpips_backward_kernel<float><<<grid_for(total), kThreads, 0, stream>>>(
        fp.a.data_ptr<float>(), fp.b.data_ptr<float>(), fp.weight.data_ptr<float>(), grad.data_ptr<float>(),
        fp.layout, static_cast<float>(eps), ga.data_ptr<float>(), gb.data_ptr<float>());
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {ga, gb};
}

at::Tensor dists_layer_launch(const FeaturePair& fp, double c1, double c2) {
  const c10::cuda::CUDAGuard guard(fp.a.device());
  if (fp.layout.batch == 0) return feature_distance_output(fp);
  return fp.a.scalar_type() == at::kDouble ? dists_forward<double>(fp, c1, c2, nullptr)
                                           : dists_forward<float>(fp, c1, c2, nullptr);
}

std::tuple<at::Tensor, at::Tensor> dists_layer_backward_launch(const FeaturePair& fp, const at::Tensor& grad_in,
                                                               double c1, double c2) {
  const c10::cuda::CUDAGuard guard(fp.a.device());
  at::Tensor ga = at::empty_like(fp.a), gb = at::empty_like(fp.b);
  if (fp.layout.batch == 0) return {ga, gb};
  const at::Tensor grad = grad_in.to(fp.a.scalar_type()).contiguous();
  if (fp.a.scalar_type() == at::kDouble)
    dists_backward<double>(fp, grad, c1, c2, ga, gb);
  else
    dists_backward<float>(fp, grad, c1, c2, ga, gb);
  return {ga, gb};
}

at::Tensor swd_distance_launch(const FeaturePair& fp, int64_t radius, double eps) {
  const c10::cuda::CUDAGuard guard(fp.a.device());
  if (fp.layout.batch == 0) return feature_distance_output(fp);
  return fp.a.scalar_type() == at::kDouble ? swd_forward<double>(fp, radius, eps)
                                           : swd_forward<float>(fp, radius, eps);
}

std::tuple<at::Tensor, at::Tensor> swd_distance_backward_launch(const FeaturePair& fp, const at::Tensor& grad_in,
                                                                int64_t radius, double eps) {
  const c10::cuda::CUDAGuard guard(fp.a.device());
  at::Tensor ga = at::empty_like(fp.a), gb = at::empty_like(fp.b);
  if (fp.layout.batch == 0) return {ga, gb};
  const at::Tensor grad = grad_in.to(fp.a.scalar_type()).contiguous();
  if (fp.a.scalar_type() == at::kDouble)
    swd_backward<double>(fp, grad, radius, eps, ga, gb);
  else
    swd_backward<float>(fp, grad, radius, eps, ga, gb);
  return {ga, gb};
}

}  // namespace turboiqa::cuda
