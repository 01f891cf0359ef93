// CUDA implementation of turboiqa::ssim_stats, turboiqa::vifp_stats and their backward (same semantics and algebra
// as cpu/ssim_stats.cpp). The two statistics share every kernel: they differ only in the per-pixel formula
// (ssim_math.h, vifp_math.h), a template argument of the tile kernel.
//
// Forward: one block per 32 x 32 tile of output pixels of one plane (grid.x = tile, grid.y = plane). The padded
// rows the tile needs are swept in chunks of 8: a chunk of x' = x - shift, y' = y - shift (border-mapped, in the
// compute type) is staged in shared memory, the horizontal pass turns it into the five row sums (x', y', x'^2,
// y'^2, x'y') for the tile's 32 columns, also in shared memory, and each thread scatters those rows into the
// vertical sums of the 4 output pixels it owns, kept in registers. Shared memory is therefore independent of the
// tile height and small for every window up to kMaxWindow (about 12 KB in float32, 23 KB in float64). Each block
// reduces its SSIM / cs values in double and writes one partial sum per plane and tile; a torch sum over the
// partials finishes the means. No atomics anywhere in the forward: results are bitwise reproducible.
//
// Backward, per chunk of planes (bounded temporaries): the same tile kernel recomputes the moments and writes the
// five per-pixel moment gradients (ssim_moment_grads); a row kernel applies the transposed (full) horizontal
// filter; a gather kernel applies the transposed vertical filter at every padded-grid sample that was copied from
// an input pixel, combines the moment gradients into d x' / d y' and sums them in padded raster order (the CPU fold
// order). The fold is a gather, not a scatter, so the backward is deterministic as well.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../border.h"
#include "../ssim_math.h"
#include "../ssim_stats.h"
#include "../vifp_math.h"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kTileW = 32;                         // output columns per block, one per thread in x (a warp)
constexpr int kThreadRows = 8;                     // threads in y
constexpr int kRowsPerThread = 4;                  // output rows per thread, interleaved by kThreadRows
constexpr int kTileH = kThreadRows * kRowsPerThread;  // 32 output rows per block
constexpr int kChunk = kThreadRows;                // padded rows staged per sweep step (one per thread row)
constexpr int kThreads = kTileW * kThreadRows;     // 256
constexpr int kMaxSpan = kTileW + kMaxWindow - 1;  // staged columns: tile + halo
constexpr int kQuantities = 5;                     // x', y', x'^2, y'^2, x'y'
constexpr int kMaxPad = kMaxWindow / 2;

// The per-pixel statistic of the tile kernel: SSIM (ssim, cs) or VIFp of one scale (num, den).
enum class Stat { Ssim, Vifp };

// The normalised window, passed by value as a kernel argument (no per-module constant memory to keep in sync).
template <typename T>
struct WindowArg {
  T w[kMaxWindow];
};

template <typename Acc>
struct TileParams {
  int height, width, pad, padded_h, padded_w, out_h, out_w, k, tiles_x;
  Border border;
  Acc c1, c2, cov_norm;
  bool nonnegative_cs;  // cs clamped at 0 per pixel (ssim_math.h)
  Acc sigma_nsq, eps, floor_rel;  // VIFp (vifp_math.h)
  int64_t plane_offset;  // global plane of blockIdx.y == 0
  int64_t tiles;         // tiles per plane (== gridDim.x)
  // Statistics mode: per (global plane, tile) partial sums (VIFp: num, den).
  double* partial_ssim;
  double* partial_cs;
  // Gradient mode: upstream gradients (per global plane; VIFp: of num, den), the divisor of the upstream gradients
  // (SSIM: the map size, for the means; VIFp: 1, for the sums), and the output maps
  // [5][chunk planes][out_h][out_w] indexed by the local plane blockIdx.y.
  const Acc* grad_ssim;
  const Acc* grad_cs;
  double count;
  Acc* grads;
  int64_t grads_stride;  // elements between two quantities of `grads`
};

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

template <typename In, typename Acc>
__device__ __forceinline__ Acc plane_shift(const In* x_plane, const In* y_plane) {
  if constexpr (std::is_same_v<In, std::uint8_t>) {
    return Acc(128);
  } else {  // symmetric in x and y, as the CPU kernel
    return static_cast<Acc>(x_plane[0]) * Acc(0.5) + static_cast<Acc>(y_plane[0]) * Acc(0.5);
  }
}

// kGrads = false: the statistic's two partial sums per tile. kGrads = true: the five moment-gradient maps.
template <typename In, typename Acc, Stat kStat, bool kGrads>
__global__ void __launch_bounds__(kThreads)
    ssim_tile_kernel(const In* __restrict__ x, const In* __restrict__ y, const TileParams<Acc> p,
                     const WindowArg<Acc> win) {
  __shared__ Acc s_w[kMaxWindow];
  __shared__ int s_col[kMaxSpan];
  __shared__ Acc s_x[kChunk][kMaxSpan];
  __shared__ Acc s_y[kChunk][kMaxSpan];
  __shared__ Acc s_h[kQuantities][kChunk][kTileW];

  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * kTileW + tx;
  const int64_t local_plane = blockIdx.y;
  const int64_t plane = p.plane_offset + local_plane;
  const int tile = blockIdx.x;
  const int row0 = (tile / p.tiles_x) * kTileH;  // first output row == first padded row of the tile's windows
  const int col0 = (tile % p.tiles_x) * kTileW;
  const int K = p.k;
  const int span = kTileW + K - 1;
  const int rows_needed = min(kTileH + K - 1, p.padded_h - row0);

  const int64_t plane_size = static_cast<int64_t>(p.height) * p.width;
  const In* xp = x + plane * plane_size;
  const In* yp = y + plane * plane_size;
  // Representative level subtracted before squaring (ssim_math.h), the CPU rule: 128 for 8-bit data, else the
  // mean of the two planes' first samples. 'zeros' border samples are -shift in shifted units.
  const Acc shift = plane_shift<In, Acc>(xp, yp);

  for (int i = tid; i < K; i += kThreads) s_w[i] = win.w[i];
  for (int i = tid; i < span; i += kThreads) {
    const int pc = col0 + i;
    s_col[i] = pc < p.padded_w ? border_index(pc - p.pad, p.width, p.border) : -1;
  }
  __syncthreads();

  Acc acc[kRowsPerThread][kQuantities];
#pragma unroll
  for (int j = 0; j < kRowsPerThread; ++j)
#pragma unroll
    for (int q = 0; q < kQuantities; ++q) acc[j][q] = Acc(0);

  for (int base = 0; base < rows_needed; base += kChunk) {
    // Stage padded rows base .. base + kChunk - 1 of the tile (border-mapped, shifted).
    for (int i = tid; i < kChunk * span; i += kThreads) {
      const int r = i / span, c = i - r * span;
      Acc vx = Acc(0), vy = Acc(0);  // rows past the padded grid: staged but never used
      if (base + r < rows_needed) {
        const int sr = border_index(row0 + base + r - p.pad, p.height, p.border);
        const int sc = s_col[c];
        if (sr >= 0 && sc >= 0) {
          const int64_t idx = static_cast<int64_t>(sr) * p.width + sc;
          vx = static_cast<Acc>(xp[idx]) - shift;
          vy = static_cast<Acc>(yp[idx]) - shift;
        } else {
          vx = -shift;
          vy = -shift;
        }
      }
      s_x[r][c] = vx;
      s_y[r][c] = vy;
    }
    __syncthreads();

    // Horizontal pass: chunk row ty, output column tx.
    {
      const Acc* rx = &s_x[ty][tx];
      const Acc* ry = &s_y[ty][tx];
      Acc h0 = Acc(0), h1 = Acc(0), h2 = Acc(0), h3 = Acc(0), h4 = Acc(0);
      for (int t = 0; t < K; ++t) {
        const Acc w = s_w[t];
        const Acc a = rx[t], b = ry[t];
        h0 += w * a;
        h1 += w * b;
        h2 += w * (a * a);
        h3 += w * (b * b);
        h4 += w * (a * b);
      }
      s_h[0][ty][tx] = h0;
      s_h[1][ty][tx] = h1;
      s_h[2][ty][tx] = h2;
      s_h[3][ty][tx] = h3;
      s_h[4][ty][tx] = h4;
    }
    __syncthreads();

    // Vertical pass, scattered: output row o takes padded rows o .. o + K - 1 (taps in increasing order).
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int o = ty + kThreadRows * j;
      const int c_lo = max(0, o - base);
      const int c_hi = min(kChunk, o + K - base);
      for (int c = c_lo; c < c_hi; ++c) {
        const Acc w = s_w[base + c - o];
#pragma unroll
        for (int q = 0; q < kQuantities; ++q) acc[j][q] += w * s_h[q][c][tx];
      }
    }
    __syncthreads();  // the next chunk overwrites s_x, s_y, s_h
  }

  const int oc = col0 + tx;
  if constexpr (!kGrads) {
    double sum_ssim = 0, sum_cs = 0;
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int orow = row0 + ty + kThreadRows * j;
      if (orow < p.out_h && oc < p.out_w) {
        if constexpr (kStat == Stat::Ssim) {
          const auto px = ssim_pixel<Acc, Acc>(acc[j][0], acc[j][1], acc[j][2], acc[j][3], acc[j][4], shift, p.c1,
                                               p.c2, p.cov_norm, p.nonnegative_cs);
          sum_ssim += static_cast<double>(px.ssim);
          sum_cs += static_cast<double>(px.cs);
        } else {
          const auto px = vifp_pixel<Acc, Acc>(acc[j][0], acc[j][1], acc[j][2], acc[j][3], acc[j][4], shift,
                                               p.sigma_nsq, p.eps, p.floor_rel);
          sum_ssim += log1p(static_cast<double>(px.u_num)) * 0.43429448190325182765;  // log10(1 + u)
          sum_cs += log1p(static_cast<double>(px.u_den)) * 0.43429448190325182765;
        }
      }
    }
    // Fixed-order block reduction: warp shuffles, then warp 0 over the per-warp sums.
    __shared__ double s_red[2][kThreads / 32];
    sum_ssim = warp_sum(sum_ssim);
    sum_cs = warp_sum(sum_cs);
    const int warp = tid / 32, lane = tid % 32;
    if (lane == 0) {
      s_red[0][warp] = sum_ssim;
      s_red[1][warp] = sum_cs;
    }
    __syncthreads();
    if (warp == 0) {
      double vs = lane < kThreads / 32 ? s_red[0][lane] : 0.0;
      double vc = lane < kThreads / 32 ? s_red[1][lane] : 0.0;
      vs = warp_sum(vs);
      vc = warp_sum(vc);
      if (lane == 0) {
        p.partial_ssim[plane * p.tiles + tile] = vs;
        p.partial_cs[plane * p.tiles + tile] = vc;
      }
    }
  } else {
    const Acc a = static_cast<Acc>(static_cast<double>(p.grad_ssim[plane]) / p.count);
    const Acc b = static_cast<Acc>(static_cast<double>(p.grad_cs[plane]) / p.count);
    const int64_t out_size = static_cast<int64_t>(p.out_h) * p.out_w;
    Acc* g = p.grads + local_plane * out_size;
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int orow = row0 + ty + kThreadRows * j;
      if (orow < p.out_h && oc < p.out_w) {
        SsimMomentGrads<Acc> d;
        if constexpr (kStat == Stat::Ssim) {
          d = ssim_moment_grads<Acc>(acc[j][0], acc[j][1], acc[j][2], acc[j][3], acc[j][4], shift, p.c1, p.c2,
                                     p.cov_norm, a, b, p.nonnegative_cs);
        } else {
          const auto v = vifp_moment_grads<Acc>(acc[j][0], acc[j][1], acc[j][2], acc[j][3], acc[j][4], shift,
                                                p.sigma_nsq, p.eps, p.floor_rel, a, b);
          d = {v.mu_x, v.mu_y, v.e_xx, v.e_yy, v.e_xy};
        }
        const int64_t i = static_cast<int64_t>(orow) * p.out_w + oc;
        g[i] = d.mu_x;
        g[p.grads_stride + i] = d.mu_y;
        g[2 * p.grads_stride + i] = d.e_xx;
        g[3 * p.grads_stride + i] = d.e_yy;
        g[4 * p.grads_stride + i] = d.e_xy;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Backward helpers.

struct BackParams {
  int height, width, pad, padded_h, padded_w, out_h, out_w, k, tiles_x;
  Border border;
  int64_t plane_offset;
  int64_t grads_stride;  // elements between quantities of grads ([5][chunk][out_h][out_w])
  int64_t tmp_stride;    // elements between quantities of tmp ([5][chunk][out_h][padded_w])
};

constexpr int kBackTileW = 32, kBackTileH = 8;

// Adjoint of the horizontal 'valid' filter: tmp[q](r, c) = sum_t w[t] grads[q](r, c - t), t increasing.
template <typename T>
__global__ void __launch_bounds__(kBackTileW* kBackTileH)
    rows_full_kernel(const T* __restrict__ grads, T* __restrict__ tmp, const BackParams p, const WindowArg<T> win) {
  __shared__ T s_w[kMaxWindow];
  const int tid = threadIdx.y * kBackTileW + threadIdx.x;
  for (int i = tid; i < p.k; i += kBackTileW * kBackTileH) s_w[i] = win.w[i];
  __syncthreads();
  const int64_t local_plane = blockIdx.y;
  const int tile = blockIdx.x;
  const int r = (tile / p.tiles_x) * kBackTileH + threadIdx.y;
  const int c = (tile % p.tiles_x) * kBackTileW + threadIdx.x;
  if (r >= p.out_h || c >= p.padded_w) return;
  const int t_lo = max(0, c - p.out_w + 1), t_hi = min(p.k, c + 1);
  const T* src = grads + (local_plane * p.out_h + r) * p.out_w + c;
  T* dst = tmp + (local_plane * p.out_h + r) * p.padded_w + c;
#pragma unroll
  for (int q = 0; q < kQuantities; ++q) {
    const T* s = src + q * p.grads_stride;
    T v = T(0);
    for (int t = t_lo; t < t_hi; ++t) v += s_w[t] * s[-t];
    dst[q * p.tmp_stride] = v;
  }
}

// Adjoint of the vertical filter at padded sample (pr, pc), combined into (d x', d y') at that sample.
template <typename T>
__device__ __forceinline__ void padded_sample_grad(const T* tmp, const BackParams& p, const T* s_w, int pr, int pc,
                                                   T xv, T yv, T& gx, T& gy) {
  const int t_lo = max(0, pr - p.out_h + 1), t_hi = min(p.k, pr + 1);
  T back[kQuantities];
  const T* col = tmp + static_cast<int64_t>(pr) * p.padded_w + pc;
#pragma unroll
  for (int q = 0; q < kQuantities; ++q) {
    const T* s = col + q * p.tmp_stride;
    T v = T(0);
    for (int t = t_lo; t < t_hi; ++t) v += s_w[t] * s[-static_cast<int64_t>(t) * p.padded_w];
    back[q] = v;
  }
  gx += back[0] + T(2) * xv * back[2] + yv * back[4];
  gy += back[1] + T(2) * yv * back[3] + xv * back[4];
}

// The s-th of the 2 * pad + 1 padded positions that may hold a copy of input index i of a line of n samples, in
// increasing order (low border, the sample itself, high border); -1 when that position holds another sample.
// lo_map / hi_map: border_index of the pad positions before / after the line.
__device__ __forceinline__ int source_position(int s, int i, int n, int pad, const int* lo_map, const int* hi_map) {
  if (s < pad) return lo_map[s] == i ? s : -1;
  if (s == pad) return pad + i;
  const int k = s - pad - 1;
  return hi_map[k] == i ? pad + n + k : -1;
}

// Transposed vertical filter + moment combination + fold of the padding onto the input pixels, as a gather.
template <typename T>
__global__ void __launch_bounds__(kBackTileW* kBackTileH)
    fold_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ tmp, T* __restrict__ dx,
                T* __restrict__ dy, const BackParams p, const WindowArg<T> win) {
  __shared__ T s_w[kMaxWindow];
  __shared__ int s_top[kMaxPad], s_bottom[kMaxPad], s_left[kMaxPad], s_right[kMaxPad];
  const int tid = threadIdx.y * kBackTileW + threadIdx.x;
  for (int i = tid; i < p.k; i += kBackTileW * kBackTileH) s_w[i] = win.w[i];
  for (int i = tid; i < p.pad; i += kBackTileW * kBackTileH) {
    s_top[i] = border_index(i - p.pad, p.height, p.border);
    s_bottom[i] = border_index(p.height + i, p.height, p.border);
    s_left[i] = border_index(i - p.pad, p.width, p.border);
    s_right[i] = border_index(p.width + i, p.width, p.border);
  }
  __syncthreads();

  const int64_t local_plane = blockIdx.y;
  const int64_t plane = p.plane_offset + local_plane;
  const int tile = blockIdx.x;
  const int i = (tile / p.tiles_x) * kBackTileH + threadIdx.y;
  const int j = (tile % p.tiles_x) * kBackTileW + threadIdx.x;
  if (i >= p.height || j >= p.width) return;

  const int64_t plane_size = static_cast<int64_t>(p.height) * p.width;
  const T* xp = x + plane * plane_size;
  const T* yp = y + plane * plane_size;
  const T shift = xp[0] * T(0.5) + yp[0] * T(0.5);  // same rule as the forward for floating input
  const int64_t idx = static_cast<int64_t>(i) * p.width + j;
  const T xv = xp[idx] - shift, yv = yp[idx] - shift;
  const T* tmp_plane = tmp + local_plane * p.out_h * p.padded_w;
  T gx = T(0), gy = T(0);
  // Padded raster order, as the CPU fold.
  const int sources = 2 * p.pad + 1;
  for (int sr = 0; sr < sources; ++sr) {
    const int pr = source_position(sr, i, p.height, p.pad, s_top, s_bottom);
    if (pr < 0) continue;
    for (int sc = 0; sc < sources; ++sc) {
      const int pc = source_position(sc, j, p.width, p.pad, s_left, s_right);
      if (pc < 0) continue;
      padded_sample_grad(tmp_plane, p, s_w, pr, pc, xv, yv, gx, gy);
    }
  }
  dx[plane * plane_size + idx] = gx;
  dy[plane * plane_size + idx] = gy;
}

// ---------------------------------------------------------------------------------------------------------------
// Host side.

template <typename T>
WindowArg<T> make_window(at::ArrayRef<double> window) {
  const std::vector<double> normalized = normalized_window(window);
  WindowArg<T> w{};
  for (std::size_t i = 0; i < normalized.size(); ++i) w.w[i] = static_cast<T>(normalized[i]);
  return w;
}

template <typename Acc>
TileParams<Acc> tile_params(const SsimGeometry& g, double c1, double c2, double cov_norm, bool nonnegative_cs) {
  TileParams<Acc> p{};
  p.height = static_cast<int>(g.height);
  p.width = static_cast<int>(g.width);
  p.pad = g.pad;
  p.padded_h = static_cast<int>(g.padded_height);
  p.padded_w = static_cast<int>(g.padded_width);
  p.out_h = static_cast<int>(g.out_height);
  p.out_w = static_cast<int>(g.out_width);
  p.k = g.window_size;
  p.tiles_x = static_cast<int>((g.out_width + kTileW - 1) / kTileW);
  p.tiles = p.tiles_x * ((g.out_height + kTileH - 1) / kTileH);
  TORCH_CHECK(p.tiles <= INT_MAX, "ssim_stats: too many tiles per plane for the CUDA kernel");
  p.border = g.border;
  p.c1 = static_cast<Acc>(c1);
  p.c2 = static_cast<Acc>(c2);
  p.cov_norm = static_cast<Acc>(cov_norm);
  p.nonnegative_cs = nonnegative_cs;
  return p;
}

template <typename In, typename Acc, Stat kStat = Stat::Ssim>
void forward_planes(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& g, at::ArrayRef<double> window,
                    TileParams<Acc> p, at::Tensor& partial_ssim, at::Tensor& partial_cs) {
  p.partial_ssim = partial_ssim.data_ptr<double>();
  p.partial_cs = partial_cs.data_ptr<double>();
  const WindowArg<Acc> win = make_window<Acc>(window);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const In* xp = x.data_ptr<In>();
  const In* yp = y.data_ptr<In>();
  for_plane_batches(g.planes, [&](int64_t first, unsigned count) {
    p.plane_offset = first;
    ssim_tile_kernel<In, Acc, kStat, false>
        <<<dim3(static_cast<unsigned>(p.tiles), count), dim3(kTileW, kThreadRows), 0, stream>>>(xp, yp, p, win);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> ssim_stats_launch(const at::Tensor& x_in, const at::Tensor& y_in,
                                                     const SsimGeometry& g, at::ArrayRef<double> window, double c1,
                                                     double c2, double cov_norm, bool nonnegative_cs) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dt = x_in.scalar_type();
  const auto out_dt = compute_type(dt);
  if (x_in.numel() == 0) {
    at::Tensor out_ssim = at::empty({x_in.size(0), x_in.size(1)}, x_in.options().dtype(out_dt));
    return {out_ssim, at::empty_like(out_ssim)};
  }
  // Half/bfloat16 (and other narrow floats) are computed in float32 from a converted copy; uint8/float/double are
  // read in place.
  const bool in_place = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = in_place ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  const at::Tensor y = in_place ? y_in.contiguous() : y_in.to(at::kFloat).contiguous();

  const int64_t tiles = ((g.out_width + kTileW - 1) / kTileW) * ((g.out_height + kTileH - 1) / kTileH);
  const auto dopts = x_in.options().dtype(at::kDouble);
  at::Tensor partial_ssim = at::empty({g.planes, tiles}, dopts);
  at::Tensor partial_cs = at::empty({g.planes, tiles}, dopts);
  if (x.scalar_type() == at::kByte)
    forward_planes<std::uint8_t, float>(x, y, g, window, tile_params<float>(g, c1, c2, cov_norm, nonnegative_cs),
                                        partial_ssim, partial_cs);
  else if (x.scalar_type() == at::kDouble)
    forward_planes<double, double>(x, y, g, window, tile_params<double>(g, c1, c2, cov_norm, nonnegative_cs),
                                   partial_ssim, partial_cs);
  else
    forward_planes<float, float>(x, y, g, window, tile_params<float>(g, c1, c2, cov_norm, nonnegative_cs),
                                 partial_ssim, partial_cs);

  // Deterministic finish: per-plane sums of the tile partials in double, then the mean, then the compute dtype.
  const double count = static_cast<double>(g.out_height * g.out_width);
  at::Tensor out_ssim = partial_ssim.sum(-1).div_(count).to(out_dt).reshape({x_in.size(0), x_in.size(1)});
  at::Tensor out_cs = partial_cs.sum(-1).div_(count).to(out_dt).reshape({x_in.size(0), x_in.size(1)});
  return {out_ssim, out_cs};
}

namespace {

// tp: the statistic's constants (tile_params); count: the divisor of the upstream gradients (see TileParams).
template <typename T, Stat kStat = Stat::Ssim>
void backward_planes(const at::Tensor& gs, const at::Tensor& gc, const at::Tensor& x, const at::Tensor& y,
                     const SsimGeometry& g, at::ArrayRef<double> window, TileParams<T> tp, double count,
                     at::Tensor& dx, at::Tensor& dy) {
  const WindowArg<T> win = make_window<T>(window);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t out_size = g.out_height * g.out_width;
  const int64_t tmp_size = g.out_height * g.padded_width;
  // Temporaries per plane: five moment-gradient maps and five row-filtered maps; planes go in chunks so that they
  // stay under ~512 MiB (at least one plane per chunk).
  constexpr int64_t kBudgetBytes = int64_t(512) << 20;
  const int64_t per_plane = kQuantities * (out_size + tmp_size) * static_cast<int64_t>(sizeof(T));
  const int64_t chunk = std::clamp<int64_t>(kBudgetBytes / per_plane, 1, std::min<int64_t>(g.planes, kMaxPlaneBatch));
  at::Tensor grads = at::empty({kQuantities * chunk * out_size}, x.options());
  at::Tensor tmp = at::empty({kQuantities * chunk * tmp_size}, x.options());

  tp.grad_ssim = gs.data_ptr<T>();
  tp.grad_cs = gc.data_ptr<T>();
  tp.count = count;
  tp.grads = grads.data_ptr<T>();
  tp.grads_stride = chunk * out_size;

  BackParams bp{};
  bp.height = tp.height;
  bp.width = tp.width;
  bp.pad = tp.pad;
  bp.padded_h = tp.padded_h;
  bp.padded_w = tp.padded_w;
  bp.out_h = tp.out_h;
  bp.out_w = tp.out_w;
  bp.k = tp.k;
  bp.border = tp.border;
  bp.grads_stride = chunk * out_size;
  bp.tmp_stride = chunk * tmp_size;
  const int rows_tiles_x = static_cast<int>((g.padded_width + kBackTileW - 1) / kBackTileW);
  const int64_t rows_tiles = rows_tiles_x * ((g.out_height + kBackTileH - 1) / kBackTileH);
  const int fold_tiles_x = static_cast<int>((g.width + kBackTileW - 1) / kBackTileW);
  const int64_t fold_tiles = fold_tiles_x * ((g.height + kBackTileH - 1) / kBackTileH);
  TORCH_CHECK(rows_tiles <= INT_MAX && fold_tiles <= INT_MAX, "ssim_stats: image too large for the CUDA kernels");

  const T* xp = x.data_ptr<T>();
  const T* yp = y.data_ptr<T>();
  T* dxp = dx.data_ptr<T>();
  T* dyp = dy.data_ptr<T>();
  const dim3 back_block(kBackTileW, kBackTileH);
  for_plane_batches(g.planes, chunk, [&](int64_t first, unsigned n) {
    tp.plane_offset = first;
    bp.plane_offset = first;
    ssim_tile_kernel<T, T, kStat, true>
        <<<dim3(static_cast<unsigned>(tp.tiles), n), dim3(kTileW, kThreadRows), 0, stream>>>(xp, yp, tp, win);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    bp.tiles_x = rows_tiles_x;
    rows_full_kernel<T><<<dim3(static_cast<unsigned>(rows_tiles), n), back_block, 0, stream>>>(
        tp.grads, tmp.data_ptr<T>(), bp, win);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    bp.tiles_x = fold_tiles_x;
    fold_kernel<T><<<dim3(static_cast<unsigned>(fold_tiles), n), back_block, 0, stream>>>(
        xp, yp, tmp.data_ptr<T>(), dxp, dyp, bp, win);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> ssim_stats_backward_launch(const at::Tensor& grad_ssim, const at::Tensor& grad_cs,
                                                              const at::Tensor& x_in, const at::Tensor& y_in,
                                                              const SsimGeometry& g, at::ArrayRef<double> window,
                                                              double c1, double c2, double cov_norm,
                                                              bool nonnegative_cs) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dt = compute_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  const at::Tensor gs = grad_ssim.to(dt).contiguous().reshape({-1}), gc = grad_cs.to(dt).contiguous().reshape({-1});
  at::Tensor dx = at::empty_like(x), dy = at::empty_like(y);
  if (x.numel() > 0) {
    const double count = static_cast<double>(g.out_height * g.out_width);
    if (dt == at::kDouble)
      backward_planes<double>(gs, gc, x, y, g, window, tile_params<double>(g, c1, c2, cov_norm, nonnegative_cs),
                              count, dx, dy);
    else
      backward_planes<float>(gs, gc, x, y, g, window, tile_params<float>(g, c1, c2, cov_norm, nonnegative_cs),
                             count, dx, dy);
  }
  return {dx.to(x_in.scalar_type()), dy.to(x_in.scalar_type())};
}

// ---------------------------------------------------------------------------------------------------------------
// VIFp: the same kernels with Stat::Vifp; float32/float64 (uint8 and narrow floats from a float32 copy).

namespace {

template <typename T>
TileParams<T> vifp_params(const SsimGeometry& g, double sigma_nsq, double eps, double floor_rel) {
  TileParams<T> p = tile_params<T>(g, 0, 0, 1, false);
  p.sigma_nsq = static_cast<T>(sigma_nsq);
  p.eps = static_cast<T>(eps);
  p.floor_rel = static_cast<T>(floor_rel);
  return p;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> vifp_stats_launch(const at::Tensor& x_in, const at::Tensor& y_in,
                                                     const SsimGeometry& g, at::ArrayRef<double> window,
                                                     double sigma_nsq, double eps, double floor_rel) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dopts = x_in.options().dtype(at::kDouble);
  if (x_in.numel() == 0) {
    at::Tensor out = at::zeros({x_in.size(0), x_in.size(1)}, dopts);
    return {out, at::zeros_like(out)};
  }
  const auto dt = compute_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  const int64_t tiles = ((g.out_width + kTileW - 1) / kTileW) * ((g.out_height + kTileH - 1) / kTileH);
  at::Tensor partial_num = at::empty({g.planes, tiles}, dopts);
  at::Tensor partial_den = at::empty({g.planes, tiles}, dopts);
  if (dt == at::kDouble)
    forward_planes<double, double, Stat::Vifp>(x, y, g, window, vifp_params<double>(g, sigma_nsq, eps, floor_rel),
                                               partial_num, partial_den);
  else
    forward_planes<float, float, Stat::Vifp>(x, y, g, window, vifp_params<float>(g, sigma_nsq, eps, floor_rel),
                                             partial_num, partial_den);
  return {partial_num.sum(-1).reshape({x_in.size(0), x_in.size(1)}),
          partial_den.sum(-1).reshape({x_in.size(0), x_in.size(1)})};
}

std::tuple<at::Tensor, at::Tensor> vifp_stats_backward_launch(const at::Tensor& grad_num, const at::Tensor& grad_den,
                                                              const at::Tensor& x_in, const at::Tensor& y_in,
                                                              const SsimGeometry& g, at::ArrayRef<double> window,
                                                              double sigma_nsq, double eps, double floor_rel) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto dt = compute_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  const at::Tensor gn = grad_num.to(dt).contiguous().reshape({-1}), gd = grad_den.to(dt).contiguous().reshape({-1});
  at::Tensor dx = at::empty_like(x), dy = at::empty_like(y);
  if (x.numel() > 0) {
    if (dt == at::kDouble)
      backward_planes<double, Stat::Vifp>(gn, gd, x, y, g, window, vifp_params<double>(g, sigma_nsq, eps, floor_rel),
                                          1.0, dx, dy);
    else
      backward_planes<float, Stat::Vifp>(gn, gd, x, y, g, window, vifp_params<float>(g, sigma_nsq, eps, floor_rel),
                                         1.0, dx, dy);
  }
  return {dx.to(x_in.scalar_type()), dy.to(x_in.scalar_type())};
}

}  // namespace turboiqa::cuda
