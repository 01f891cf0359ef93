// CPU kernels of the feature distances (LPIPS, DISTS, PIPAL's SWD) and the argument checks every device uses.
//
// Work is split into fixed tasks (image x chunk of positions, image x row, image x strip) whose partial sums are
// combined in a fixed order afterwards, so results do not depend on the thread count. NCHW features run loops
// over positions innermost (contiguous, vectorised); channels-last features run loops over channels innermost
// (`omp simd` reductions), so neither layout is copied into the other.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "../dtypes.h"
#include "../feature_distance.h"
#include "parallel.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TURBOIQA_NO_CLONES)
#define TURBOIQA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TURBOIQA_CLONES
#endif

namespace turboiqa {

namespace {

void check_channel_vector(const char* op, const char* name, const at::Tensor& v, const at::Tensor& f0) {
  TORCH_CHECK(v.defined(), op, ": ", name, " is undefined");
  TORCH_CHECK(v.sym_numel() == f0.sym_size(1), op, ": ", name, " must hold C = ", f0.sym_size(1),
              " values (one per channel), got shape ", v.sym_sizes());
  TORCH_CHECK(at::isFloatingType(v.scalar_type()), op, ": ", name, " must be a floating-point tensor, got ",
              v.scalar_type());
  TORCH_CHECK(v.device() == f0.device(), op, ": ", name, " must be on the features' device (", f0.device(), "), got ",
              v.device());
}

}  // namespace

void check_feature_args(const char* op, const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight,
                        const at::Tensor& weight2, const at::Tensor& grad, std::optional<int64_t> radius) {
  TORCH_CHECK(f0.dim() == 4, op, ": features must be N x C x H x W, got shape ", f0.sym_sizes());
  TORCH_CHECK(f1.sym_sizes() == f0.sym_sizes(), op, ": both feature maps must have the same shape, got ",
              f0.sym_sizes(), " and ", f1.sym_sizes());
  const auto type = f0.scalar_type();
  TORCH_CHECK(type == at::kFloat || type == at::kDouble || type == at::kHalf || type == at::kBFloat16, op,
              ": features must be float32, float64, float16 or bfloat16, got ", type);
  TORCH_CHECK(f1.scalar_type() == type, op, ": both feature maps must have the same dtype, got ", type, " and ",
              f1.scalar_type());
  TORCH_CHECK(f1.device() == f0.device(), op, ": both feature maps must be on the same device, got ", f0.device(),
              " and ", f1.device());
  TORCH_CHECK(f0.sym_size(1) > 0 && f0.sym_size(2) > 0 && f0.sym_size(3) > 0, op,
              ": features need at least one channel and one position, got shape ", f0.sym_sizes());
  check_channel_vector(op, "weight", weight, f0);
  if (weight2.defined()) check_channel_vector(op, "beta", weight2, f0);
  if (grad.defined()) {
    TORCH_CHECK(grad.dim() == 1 && grad.sym_size(0) == f0.sym_size(0), op, ": the gradient must have shape (N,) = (",
                f0.sym_size(0), "), got ", grad.sym_sizes());
    TORCH_CHECK(grad.device() == f0.device(), op, ": the gradient must be on the features' device");
  }
  if (radius) TORCH_CHECK(*radius >= 0, op, ": radius must be >= 0, got ", *radius);
}

FeaturePair prepare_features(const char* op, const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight,
                             const at::Tensor& weight2, const at::Tensor& grad, std::optional<int64_t> radius,
                             bool allow_channels_last) {
  check_feature_args(op, f0, f1, weight, weight2, grad, radius);
  const auto type = f0.scalar_type();
  const at::ScalarType compute = compute_type(type);
  const bool channels_last =
      allow_channels_last && f0.is_contiguous(at::MemoryFormat::ChannelsLast) && !f0.is_contiguous();
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  FeaturePair p;
  p.a = f0.to(compute).contiguous(format);
  p.b = f1.to(compute).contiguous(format);
  p.weight = weight.to(compute).contiguous().reshape({-1});
  if (weight2.defined()) p.weight2 = weight2.to(compute).contiguous().reshape({-1});
  const int64_t channels = f0.size(1), positions = f0.size(2) * f0.size(3);
  p.layout = {f0.size(0), channels,          f0.size(2), f0.size(3), channels_last ? 1 : positions,
              channels_last ? channels : 1, channels_last};
  return p;
}

at::Tensor feature_distance_output(const FeaturePair& p) { return at::empty({p.layout.batch}, p.a.options()); }

at::Tensor gradient_like_input(const at::Tensor& input, const at::Tensor& computed) {
  at::Tensor out = at::empty_like(input);
  if (out.scalar_type() == computed.scalar_type() && out.strides() == computed.strides()) return computed;
  out.copy_(computed);
  return out;
}

namespace cpu {

namespace {

// ---- LPIPS --------------------------------------------------------------------------------------------------

// Positions per LPIPS task: NCHW reads each channel's run of `chunk` positions twice (norms, then distances), so
// the runs should be long (hardware prefetch, fewer pages) while both maps' C x chunk values stay in L2 (~512 KiB)
// for the second read. Depends on C and the dtype only, so the summation order does not depend on the threads.
constexpr int64_t kChunk = 1024;
template <typename T>
int64_t lpips_chunk_size(int64_t channels) {
  int64_t chunk = kChunk;
  while (chunk > 64 && chunk * channels * 2 * static_cast<int64_t>(sizeof(T)) > (int64_t{1} << 19)) chunk /= 2;
  return chunk;
}

// Sum over `count` positions of the LPIPS distance; `a`/`b` point at the first position of the chunk.
template <typename T>
inline double lpips_chunk(const T* __restrict a, const T* __restrict b, const FeatureLayout& l, const T* w, T eps,
                          int64_t count) {
  T inv_a[kChunk], inv_b[kChunk], d[kChunk];
  const int64_t channels = l.channels;
  if (!l.channels_last) {
    const int64_t plane = l.positions();
    for (int64_t p = 0; p < count; ++p) inv_a[p] = inv_b[p] = d[p] = 0;
    for (int64_t c = 0; c < channels; ++c) {
      const T* __restrict ac = a + c * plane;
      const T* __restrict bc = b + c * plane;
      for (int64_t p = 0; p < count; ++p) {
        inv_a[p] += ac[p] * ac[p];
        inv_b[p] += bc[p] * bc[p];
      }
    }
    for (int64_t p = 0; p < count; ++p) {
      inv_a[p] = T(1) / (std::sqrt(inv_a[p]) + eps);
      inv_b[p] = T(1) / (std::sqrt(inv_b[p]) + eps);
    }
    for (int64_t c = 0; c < channels; ++c) {
      const T* __restrict ac = a + c * plane;
      const T* __restrict bc = b + c * plane;
      const T wc = w[c];
      for (int64_t p = 0; p < count; ++p) {
        const T e = ac[p] * inv_a[p] - bc[p] * inv_b[p];
        d[p] += wc * e * e;
      }
    }
  } else {
    for (int64_t p = 0; p < count; ++p) {
      const T* __restrict ap = a + p * channels;
      const T* __restrict bp = b + p * channels;
      T sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
      for (int64_t c = 0; c < channels; ++c) {
        sa += ap[c] * ap[c];
        sb += bp[c] * bp[c];
      }
      const T ia = T(1) / (std::sqrt(sa) + eps), ib = T(1) / (std::sqrt(sb) + eps);
      T dp = 0;
#pragma omp simd reduction(+ : dp)
      for (int64_t c = 0; c < channels; ++c) {
        const T e = ap[c] * ia - bp[c] * ib;
        dp += w[c] * e * e;
      }
      d[p] = dp;
    }
  }
  double sum = 0;
  for (int64_t p = 0; p < count; ++p) sum += d[p];
  return sum;
}

TURBOIQA_CLONES double lpips_chunk_f32(const float* a, const float* b, const FeatureLayout& l, const float* w,
                                       float eps, int64_t count) {
  return lpips_chunk(a, b, l, w, eps, count);
}
TURBOIQA_CLONES double lpips_chunk_f64(const double* a, const double* b, const FeatureLayout& l, const double* w,
                                       double eps, int64_t count) {
  return lpips_chunk(a, b, l, w, eps, count);
}

// Grain sizes: about 64k feature values per thread at least, so small maps stay serial.
int64_t grain_for(int64_t values_per_task) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, values_per_task)); }

template <typename T>
at::Tensor lpips_forward(const FeaturePair& fp, double eps) {
  const FeatureLayout& l = fp.layout;
  at::Tensor out = feature_distance_output(fp);
  const int64_t chunk_size = lpips_chunk_size<T>(l.channels), positions = l.positions();
  const int64_t chunks = (positions + chunk_size - 1) / chunk_size;
  std::vector<double> partial(l.batch * chunks);
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  const T* w = fp.weight.data_ptr<T>();
  parallel_chunks(l.batch * chunks, grain_for(l.channels * chunk_size), [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / chunks, first = (task % chunks) * chunk_size;
      const int64_t count = std::min(chunk_size, positions - first);
      const int64_t at = n * l.image_stride() + first * l.position_stride;
      if constexpr (std::is_same_v<T, double>)
        partial[task] = lpips_chunk_f64(a + at, b + at, l, w, eps, count);
      else
        partial[task] = lpips_chunk_f32(a + at, b + at, l, w, static_cast<float>(eps), count);
    }
  });
  T* o = out.data_ptr<T>();
  for (int64_t n = 0; n < l.batch; ++n) {
    double sum = 0;
    for (int64_t k = 0; k < chunks; ++k) sum += partial[n * chunks + k];
    o[n] = static_cast<T>(sum / static_cast<double>(positions));
  }
  return out;
}

at::Tensor lpips_distance_cpu(const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight, double eps) {
  const FeaturePair fp = prepare_features("lpips_distance", f0, f1, weight, at::Tensor(), at::Tensor(), kNoRadius, true);
  if (fp.layout.batch == 0) return feature_distance_output(fp);
  return fp.a.scalar_type() == at::kDouble ? lpips_forward<double>(fp, eps) : lpips_forward<float>(fp, eps);
}

// Per position (image x chunk tasks); the backward is for training, so it uses the shared per-position code.
template <typename T>
void lpips_backward(const FeaturePair& fp, const at::Tensor& grad, double eps, at::Tensor& ga, at::Tensor& gb) {
  const FeatureLayout& l = fp.layout;
  const int64_t positions = l.positions(), chunks = (positions + kChunk - 1) / kChunk;
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  const T* w = fp.weight.data_ptr<T>();
  const T* g = grad.data_ptr<T>();
  T* da = ga.data_ptr<T>();
  T* db = gb.data_ptr<T>();
  parallel_chunks(l.batch * chunks, grain_for(l.channels * kChunk), [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / chunks, first = (task % chunks) * kChunk;
      const int64_t last = std::min(first + kChunk, positions);
      const T scale = g[n] / static_cast<T>(positions);
      for (int64_t p = first; p < last; ++p) {
        const int64_t at = n * l.image_stride() + p * l.position_stride;
        lpips_position_backward<T>(a + at, b + at, l.channel_stride, w, l.channels, static_cast<T>(eps), scale,
                                   da + at, db + at);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> lpips_distance_backward_cpu(const at::Tensor& grad, const at::Tensor& f0,
                                                               const at::Tensor& f1, const at::Tensor& weight,
                                                               double eps) {
  const FeaturePair fp = prepare_features("_lpips_distance_backward", f0, f1, weight, at::Tensor(), grad, kNoRadius, true);
  at::Tensor ga = at::empty_like(fp.a), gb = at::empty_like(fp.b);
  if (fp.layout.batch > 0) {
    const at::Tensor g = grad.to(fp.a.scalar_type()).contiguous();
    if (fp.a.scalar_type() == at::kDouble)
      lpips_backward<double>(fp, g, eps, ga, gb);
    else
      lpips_backward<float>(fp, g, eps, ga, gb);
  }
  return {gradient_like_input(f0, ga), gradient_like_input(f1, gb)};
}

// ---- DISTS --------------------------------------------------------------------------------------------------

constexpr int64_t kStrip = 16384;  // positions per DISTS task

// Shifted moment sums of `count` positions starting at `first`, for every channel, into sums[5][C] (sx, sy, sxx,
// syy, sxy). `a`/`b` point at the image; shifts are the image's samples at position 0.
template <typename T>
inline void dists_strip(const T* __restrict a, const T* __restrict b, const FeatureLayout& l, int64_t first,
                        int64_t count, const double* __restrict shift_x, const double* __restrict shift_y,
                        double* __restrict sums) {
  const int64_t channels = l.channels;
  double* __restrict sx = sums;
  double* __restrict sy = sums + channels;
  double* __restrict sxx = sums + 2 * channels;
  double* __restrict syy = sums + 3 * channels;
  double* __restrict sxy = sums + 4 * channels;
  if (!l.channels_last) {
    const int64_t plane = l.positions();
    for (int64_t c = 0; c < channels; ++c) {
      const T* __restrict x = a + c * plane + first;
      const T* __restrict y = b + c * plane + first;
      const double hx = shift_x[c], hy = shift_y[c];
      double m0 = 0, m1 = 0, m2 = 0, m3 = 0, m4 = 0;
#pragma omp simd reduction(+ : m0, m1, m2, m3, m4)
      for (int64_t p = 0; p < count; ++p) {
        const double dx = static_cast<double>(x[p]) - hx, dy = static_cast<double>(y[p]) - hy;
        m0 += dx;
        m1 += dy;
        m2 += dx * dx;
        m3 += dy * dy;
        m4 += dx * dy;
      }
      sx[c] = m0, sy[c] = m1, sxx[c] = m2, syy[c] = m3, sxy[c] = m4;
    }
  } else {
    for (int64_t k = 0; k < 5 * channels; ++k) sums[k] = 0;
    for (int64_t p = first; p < first + count; ++p) {
      const T* __restrict x = a + p * channels;
      const T* __restrict y = b + p * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const double dx = static_cast<double>(x[c]) - shift_x[c], dy = static_cast<double>(y[c]) - shift_y[c];
        sx[c] += dx;
        sy[c] += dy;
        sxx[c] += dx * dx;
        syy[c] += dy * dy;
        sxy[c] += dx * dy;
      }
    }
  }
}

TURBOIQA_CLONES void dists_strip_f32(const float* a, const float* b, const FeatureLayout& l, int64_t first,
                                     int64_t count, const double* shift_x, const double* shift_y, double* sums) {
  dists_strip(a, b, l, first, count, shift_x, shift_y, sums);
}
TURBOIQA_CLONES void dists_strip_f64(const double* a, const double* b, const FeatureLayout& l, int64_t first,
                                     int64_t count, const double* shift_x, const double* shift_y, double* sums) {
  dists_strip(a, b, l, first, count, shift_x, shift_y, sums);
}

// Per (image, channel) statistics, (N * C) entries.
template <typename T>
std::vector<ChannelStats> dists_statistics(const FeaturePair& fp) {
  const FeatureLayout& l = fp.layout;
  const int64_t channels = l.channels, positions = l.positions(), strips = (positions + kStrip - 1) / kStrip;
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  std::vector<double> shifts(2 * l.batch * channels);  // [n][x|y][c]
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      shifts[(2 * n) * channels + c] = static_cast<double>(a[n * l.image_stride() + c * l.channel_stride]);
      shifts[(2 * n + 1) * channels + c] = static_cast<double>(b[n * l.image_stride() + c * l.channel_stride]);
    }
  std::vector<double> partial(l.batch * strips * 5 * channels);
  parallel_chunks(l.batch * strips, grain_for(channels * kStrip), [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / strips, first = (task % strips) * kStrip, count = std::min(kStrip, positions - first);
      const double* hx = shifts.data() + (2 * n) * channels;
      const double* hy = hx + channels;
      double* sums = partial.data() + task * 5 * channels;
      if constexpr (std::is_same_v<T, double>)
        dists_strip_f64(a + n * l.image_stride(), b + n * l.image_stride(), l, first, count, hx, hy, sums);
      else
        dists_strip_f32(a + n * l.image_stride(), b + n * l.image_stride(), l, first, count, hx, hy, sums);
    }
  });
  std::vector<ChannelStats> stats(l.batch * channels);
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      MomentSums m{0, 0, 0, 0, 0};
      for (int64_t s = 0; s < strips; ++s) {
        const double* sums = partial.data() + (n * strips + s) * 5 * channels;
        m.sx += sums[c], m.sy += sums[channels + c], m.sxx += sums[2 * channels + c];
        m.syy += sums[3 * channels + c], m.sxy += sums[4 * channels + c];
      }
      stats[n * channels + c] =
          channel_stats(m, shifts[(2 * n) * channels + c], shifts[(2 * n + 1) * channels + c], positions);
    }
  return stats;
}

template <typename T>
at::Tensor dists_forward(const FeaturePair& fp, double c1, double c2) {
  const std::vector<ChannelStats> stats = dists_statistics<T>(fp);
  at::Tensor out = feature_distance_output(fp);
  const T* alpha = fp.weight.data_ptr<T>();
  const T* beta = fp.weight2.data_ptr<T>();
  T* o = out.data_ptr<T>();
  const int64_t channels = fp.layout.channels;
  for (int64_t n = 0; n < fp.layout.batch; ++n) {
    double sum = 0;
    for (int64_t c = 0; c < channels; ++c) sum += dists_term(stats[n * channels + c], alpha[c], beta[c], c1, c2);
    o[n] = static_cast<T>(sum);
  }
  return out;
}

at::Tensor dists_layer_cpu(const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& alpha, const at::Tensor& beta,
                           double c1, double c2) {
  const FeaturePair fp = prepare_features("dists_layer", f0, f1, alpha, beta, at::Tensor(), kNoRadius, true);
  if (fp.layout.batch == 0) return feature_distance_output(fp);
  return fp.a.scalar_type() == at::kDouble ? dists_forward<double>(fp, c1, c2) : dists_forward<float>(fp, c1, c2);
}

template <typename T>
void dists_backward(const FeaturePair& fp, const at::Tensor& grad, double c1, double c2, at::Tensor& ga,
                    at::Tensor& gb) {
  const FeatureLayout& l = fp.layout;
  const std::vector<ChannelStats> stats = dists_statistics<T>(fp);
  const int64_t channels = l.channels, positions = l.positions(), strips = (positions + kStrip - 1) / kStrip;
  const T* alpha = fp.weight.data_ptr<T>();
  const T* beta = fp.weight2.data_ptr<T>();
  const T* g = grad.data_ptr<T>();
  // Per (image, channel): gx = kx + kxx (x - mu_x) + kxy (y - mu_y), evaluated in the compute dtype.
  std::vector<T> coef(l.batch * channels * 8);
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const ChannelStats& s = stats[n * channels + c];
      const DistsGradient k = dists_gradient(s, alpha[c], beta[c], c1, c2, static_cast<double>(g[n]), positions);
      T* dst = coef.data() + (n * channels + c) * 8;
      const double values[8] = {k.k_x, k.k_xx, k.k_xy, k.k_y, k.k_yy, k.k_yx, s.mu_x, s.mu_y};
      for (int v = 0; v < 8; ++v) dst[v] = static_cast<T>(values[v]);
    }
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  T* da = ga.data_ptr<T>();
  T* db = gb.data_ptr<T>();
  parallel_chunks(l.batch * strips, grain_for(channels * kStrip), [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / strips, first = (task % strips) * kStrip, last = std::min(first + kStrip, positions);
      for (int64_t c = 0; c < channels; ++c) {
        const T* k = coef.data() + (n * channels + c) * 8;
        const int64_t base = n * l.image_stride() + c * l.channel_stride;
        for (int64_t p = first; p < last; ++p) {
          const int64_t at = base + p * l.position_stride;
          const T dx = a[at] - k[6], dy = b[at] - k[7];
          da[at] = k[0] + k[1] * dx + k[2] * dy;
          db[at] = k[3] + k[4] * dy + k[5] * dx;
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> dists_layer_backward_cpu(const at::Tensor& grad, const at::Tensor& f0,
                                                            const at::Tensor& f1, const at::Tensor& alpha,
                                                            const at::Tensor& beta, double c1, double c2) {
  const FeaturePair fp = prepare_features("_dists_layer_backward", f0, f1, alpha, beta, grad, kNoRadius, true);
  at::Tensor ga = at::empty_like(fp.a), gb = at::empty_like(fp.b);
  if (fp.layout.batch > 0) {
    const at::Tensor g = grad.to(fp.a.scalar_type()).contiguous();
    if (fp.a.scalar_type() == at::kDouble)
      dists_backward<double>(fp, g, c1, c2, ga, gb);
    else
      dists_backward<float>(fp, g, c1, c2, ga, gb);
  }
  return {gradient_like_input(f0, ga), gradient_like_input(f1, gb)};
}

// ---- SWD ----------------------------------------------------------------------------------------------------

// Channel norms |f| of every position, (N * H * W), in the compute dtype (the kernels add eps where they use them).
template <typename T>
std::vector<T> channel_norms(const T* f, const FeatureLayout& l) {
  std::vector<T> norms(l.batch * l.positions());
  parallel_chunks(l.batch * l.height, grain_for(l.channels * l.width), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / l.height, first = (row % l.height) * l.width;
      T* out = norms.data() + n * l.positions() + first;
      const T* image = f + n * l.image_stride();
      if (!l.channels_last) {
        for (int64_t j = 0; j < l.width; ++j) out[j] = 0;
        for (int64_t c = 0; c < l.channels; ++c) {
          const T* __restrict x = image + c * l.channel_stride + first;
          for (int64_t j = 0; j < l.width; ++j) out[j] += x[j] * x[j];
        }
        for (int64_t j = 0; j < l.width; ++j) out[j] = std::sqrt(out[j]);
      } else {
        for (int64_t j = 0; j < l.width; ++j) {
          const T* __restrict x = image + (first + j) * l.channels;
          T s = 0;
#pragma omp simd reduction(+ : s)
          for (int64_t c = 0; c < l.channels; ++c) s += x[c] * x[c];
          out[j] = std::sqrt(s);
        }
      }
    }
  });
  return norms;
}

constexpr int64_t kSegment = 256;  // columns per SWD task: the segment's accumulators and rows stay in L1/L2

// Scratch values one SWD task needs (swd_segment's layout below); a template so that check_swd_radius can evaluate
// it on a symbolic radius.
template <typename Int>
Int swd_scratch_size(const Int& radius) {
  const Int side = 2 * radius + 1, extended = kSegment + 2 * radius;
  return side * side * kSegment + 3 * kSegment + 2 * side * extended;
}

constexpr int64_t kSwdScratchBudget = int64_t(256) << 20;  // bytes per thread

}  // namespace
}  // namespace cpu

c10::SymInt check_swd_radius(const char* op, int64_t radius, const c10::SymInt& height, const c10::SymInt& width) {
  const c10::SymInt bounded = c10::SymInt(radius).min(height.max(width) - 1);
  TORCH_CHECK(cpu::swd_scratch_size(bounded) * static_cast<int64_t>(sizeof(double)) <= cpu::kSwdScratchBudget, op,
              ": radius ", radius, " on a ", height, "x", width, " map needs more than ",
              cpu::kSwdScratchBudget >> 20, " MiB of scratch per thread (the largest radius within it is 180)");
  return bounded;
}

namespace cpu {
namespace {

// Columns [j0, j1) of row i of one image: the minimum distance of each position and its offset number (best_k,
// indexed by column). Returns the segment's sum.
// NCHW: channels outermost; per channel the normalised distorted run and the normalised reference runs of the
// 2r+1 rows in reach are formed once and every offset's accumulator is updated from them, so each feature value
// is read once per task instead of once per offset. Offsets are compared in raster order at the end, so ties
// keep the first one as in swd_position. Channels-last: per position and offset, a contiguous channel reduction.
template <typename T>
inline double swd_segment(const T* __restrict a, const T* __restrict b, const T* inv_norm_a, const T* inv_norm_b,
                          const FeatureLayout& l, int64_t i, int64_t j0, int64_t j1, int64_t radius, const T* w,
                          int* __restrict best_k, T* __restrict scratch) {
  const int64_t width = l.width, side = 2 * radius + 1, count = j1 - j0, extended = kSegment + 2 * radius;
  const int64_t e0 = j0 - radius;  // column of the extended runs' first entry
  T* __restrict acc = scratch;                                  // [side * side][kSegment]
  T* __restrict best = acc + side * side * kSegment;            // [kSegment]
  T* __restrict inv_a = best + kSegment;                        // [kSegment]
  T* __restrict a_hat = inv_a + kSegment;                       // [kSegment]
  T* __restrict inv_b = a_hat + kSegment;                       // [side][extended]
  T* __restrict b_hat = inv_b + side * extended;                // [side][extended]
  for (int64_t j = 0; j < count; ++j) {
    best[j] = std::numeric_limits<T>::infinity();
    best_k[j0 + j] = -1;
    inv_a[j] = inv_norm_a[i * width + j0 + j];
  }
  // Valid columns of offset dj, relative to j0: [lo, hi).
  auto lo = [&](int64_t dj) { return std::max<int64_t>(0, -dj - j0); };
  auto hi = [&](int64_t dj) { return std::min<int64_t>(count, width - dj - j0); };
  const int64_t c0 = std::max<int64_t>(0, e0), c1 = std::min<int64_t>(width, j1 + radius);  // reference columns
  if (!l.channels_last) {
    for (int64_t di = -radius; di <= radius; ++di) {
      const int64_t qi = i + di;
      if (qi < 0 || qi >= l.height) continue;
      T* ib = inv_b + (di + radius) * extended;
      for (int64_t c = c0; c < c1; ++c) ib[c - e0] = inv_norm_b[qi * width + c];
      for (int64_t dj = -radius; dj <= radius; ++dj) {
        T* ak = acc + ((di + radius) * side + dj + radius) * kSegment;
        for (int64_t j = 0; j < count; ++j) ak[j] = 0;
      }
    }
    for (int64_t c = 0; c < l.channels; ++c) {
      const T* __restrict ac = a + c * l.channel_stride + i * width + j0;
      const T wc = w[c];
      for (int64_t j = 0; j < count; ++j) a_hat[j] = ac[j] * inv_a[j];
      for (int64_t di = -radius; di <= radius; ++di) {
        const int64_t qi = i + di;
        if (qi < 0 || qi >= l.height) continue;
        const T* __restrict bc = b + c * l.channel_stride + qi * width;
        const T* __restrict ib = inv_b + (di + radius) * extended;
        T* __restrict bh = b_hat + (di + radius) * extended;
        for (int64_t col = c0; col < c1; ++col) bh[col - e0] = bc[col] * ib[col - e0];
        for (int64_t dj = -radius; dj <= radius; ++dj) {
          T* __restrict ak = acc + ((di + radius) * side + dj + radius) * kSegment;
          const T* __restrict bs = bh + radius + dj;  // bs[j] = b^ at column j0 + j + dj
          const int64_t from = lo(dj), to = hi(dj);
          for (int64_t j = from; j < to; ++j) {
            const T e = a_hat[j] - bs[j];
            ak[j] += wc * e * e;
          }
        }
      }
    }
  } else if (radius == 1) {
    // The default 3x3: the three offsets of a neighbour row in one pass over the channels (one load of the
    // distorted vector and the weights for three reductions). Out-of-map neighbours read the centre and are dropped.
    const int64_t channels = l.channels;
    for (int64_t di = -1; di <= 1; ++di) {
      const int64_t qi = i + di;
      if (qi < 0 || qi >= l.height) continue;
      T* __restrict left = acc + ((di + 1) * 3) * kSegment;
      T* __restrict centre = left + kSegment;
      T* __restrict right = centre + kSegment;
      for (int64_t j = 0; j < count; ++j) {
        const int64_t q = qi * width + j0 + j;
        const bool has_left = j0 + j > 0, has_right = j0 + j + 1 < width;
        const T* __restrict ap = a + (i * width + j0 + j) * channels;
        const T* __restrict bc = b + q * channels;
        const T* __restrict bl = has_left ? bc - channels : bc;
        const T* __restrict br = has_right ? bc + channels : bc;
        const T ia = inv_a[j], ic = inv_norm_b[q];
        const T il = has_left ? inv_norm_b[q - 1] : ic, ir = has_right ? inv_norm_b[q + 1] : ic;
        T dl = 0, dc = 0, dr = 0;
#pragma omp simd reduction(+ : dl, dc, dr)
        for (int64_t c = 0; c < channels; ++c) {
          const T ea = ap[c] * ia;
          const T el = ea - bl[c] * il, ec = ea - bc[c] * ic, er = ea - br[c] * ir;
          dl += w[c] * el * el;
          dc += w[c] * ec * ec;
          dr += w[c] * er * er;
        }
        left[j] = dl;
        centre[j] = dc;
        right[j] = dr;
      }
    }
  } else {
    const int64_t channels = l.channels;
    for (int64_t di = -radius; di <= radius; ++di) {
      const int64_t qi = i + di;
      if (qi < 0 || qi >= l.height) continue;
      for (int64_t dj = -radius; dj <= radius; ++dj) {
        T* ak = acc + ((di + radius) * side + dj + radius) * kSegment;
        for (int64_t j = lo(dj); j < hi(dj); ++j) {
          const T* __restrict ap = a + (i * width + j0 + j) * channels;
          const T* __restrict bp = b + (qi * width + j0 + j + dj) * channels;
          const T ia = inv_a[j], ib = inv_norm_b[qi * width + j0 + j + dj];
          T d = 0;
#pragma omp simd reduction(+ : d)
          for (int64_t c = 0; c < channels; ++c) {
            const T e = ap[c] * ia - bp[c] * ib;
            d += w[c] * e * e;
          }
          ak[j] = d;
        }
      }
    }
  }
  for (int64_t di = -radius; di <= radius; ++di) {
    const int64_t qi = i + di;
    if (qi < 0 || qi >= l.height) continue;
    for (int64_t dj = -radius; dj <= radius; ++dj) {
      const int k = static_cast<int>((di + radius) * side + (dj + radius));
      const T* ak = acc + k * kSegment;
      for (int64_t j = lo(dj); j < hi(dj); ++j) {
        if (!(ak[j] >= best[j])) {  // ties keep the first offset; NaN is kept, as torch.min does
          best[j] = ak[j];
          best_k[j0 + j] = k;
        }
      }
    }
  }
  double sum = 0;
  for (int64_t j = 0; j < count; ++j) sum += best[j];
  return sum;
}

TURBOIQA_CLONES double swd_segment_f32(const float* a, const float* b, const float* inv_a, const float* inv_b,
                                       const FeatureLayout& l, int64_t i, int64_t j0, int64_t j1, int64_t radius,
                                       const float* w, int* best_k, float* scratch) {
  return swd_segment(a, b, inv_a, inv_b, l, i, j0, j1, radius, w, best_k, scratch);
}
TURBOIQA_CLONES double swd_segment_f64(const double* a, const double* b, const double* inv_a, const double* inv_b,
                                       const FeatureLayout& l, int64_t i, int64_t j0, int64_t j1, int64_t radius,
                                       const double* w, int* best_k, double* scratch) {
  return swd_segment(a, b, inv_a, inv_b, l, i, j0, j1, radius, w, best_k, scratch);
}

// Per-image sums (N) and, if best_out is given, every position's best offset number (N * H * W).
template <typename T>
std::vector<double> swd_search(const FeaturePair& fp, const std::vector<T>& norm_a, const std::vector<T>& norm_b,
                               int64_t radius, double eps, int* best_out) {
  const FeatureLayout& l = fp.layout;
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  const T* w = fp.weight.data_ptr<T>();
  const int64_t segments = (l.width + kSegment - 1) / kSegment, per_image = l.height * segments;
  std::vector<double> partial(l.batch * per_image);
  // 1 / (|f| + eps) once per position (the same value swd_position computes from the norm).
  std::vector<T> inv_norm_a(norm_a.size()), inv_norm_b(norm_b.size());
  parallel_chunks(static_cast<int64_t>(norm_a.size()), 16384, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      inv_norm_a[k] = T(1) / (norm_a[k] + static_cast<T>(eps));
      inv_norm_b[k] = T(1) / (norm_b[k] + static_cast<T>(eps));
    }
  });
  const int64_t side = 2 * radius + 1;
  parallel_chunks(l.batch * per_image, grain_for(l.channels * kSegment * side), [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(swd_scratch_size(radius));
    std::vector<int> own_k(l.width);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / per_image, i = (task % per_image) / segments, s = task % segments;
      const int64_t j0 = s * kSegment, j1 = std::min(j0 + kSegment, l.width);
      int* best_k = best_out ? best_out + n * l.positions() + i * l.width : own_k.data();
      const T* ia = inv_norm_a.data() + n * l.positions();
      const T* ib = inv_norm_b.data() + n * l.positions();
      const int64_t at = n * l.image_stride();
      if constexpr (std::is_same_v<T, double>)
        partial[task] = swd_segment_f64(a + at, b + at, ia, ib, l, i, j0, j1, radius, w, best_k, scratch.data());
      else
        partial[task] = swd_segment_f32(a + at, b + at, ia, ib, l, i, j0, j1, radius, w, best_k, scratch.data());
    }
  });
  std::vector<double> sums(l.batch, 0.0);
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t k = 0; k < per_image; ++k) sums[n] += partial[n * per_image + k];
  return sums;
}

template <typename T>
at::Tensor swd_forward(const FeaturePair& fp, int64_t radius, double eps) {
  const FeatureLayout& l = fp.layout;
  const std::vector<T> norm_a = channel_norms(fp.a.data_ptr<T>(), l), norm_b = channel_norms(fp.b.data_ptr<T>(), l);
  const std::vector<double> sums = swd_search<T>(fp, norm_a, norm_b, radius, eps, nullptr);
  at::Tensor out = feature_distance_output(fp);
  T* o = out.data_ptr<T>();
  for (int64_t n = 0; n < l.batch; ++n) o[n] = static_cast<T>(sums[n] / static_cast<double>(l.positions()));
  return out;
}

at::Tensor swd_distance_cpu(const at::Tensor& fd, const at::Tensor& fr, const at::Tensor& weight, int64_t radius,
                            double eps) {
  const FeaturePair fp = prepare_features("swd_distance", fd, fr, weight, at::Tensor(), at::Tensor(), radius, true);
  radius = swd_effective_radius("swd_distance", radius, fp.layout);
  if (fp.layout.batch == 0) return feature_distance_output(fp);
  return fp.a.scalar_type() == at::kDouble ? swd_forward<double>(fp, radius, eps) : swd_forward<float>(fp, radius, eps);
}

template <typename T>
void swd_backward(const FeaturePair& fp, const at::Tensor& grad, int64_t radius, double eps, at::Tensor& ga,
                  at::Tensor& gb) {
  const FeatureLayout& l = fp.layout;
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  const T* w = fp.weight.data_ptr<T>();
  const T* g = grad.data_ptr<T>();
  const std::vector<T> norm_a = channel_norms(a, l), norm_b = channel_norms(b, l);
  std::vector<int> best(l.batch * l.positions());
  swd_search<T>(fp, norm_a, norm_b, radius, eps, best.data());  // the forward's own search: the same arg-min
  T* da = ga.data_ptr<T>();
  T* db = gb.data_ptr<T>();
  const int64_t side = 2 * radius + 1;
  parallel_chunks(l.batch * l.height, grain_for(l.channels * l.width * side * side), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / l.height, i = row % l.height, at = n * l.image_stride(), np = n * l.positions();
      const T scale = g[n] / static_cast<T>(l.positions());
      for (int64_t j = 0; j < l.width; ++j) {
        swd_distorted_backward<T>(a + at, b + at, norm_a.data() + np, norm_b.data() + np, best.data() + np, l, i, j,
                                  radius, w, static_cast<T>(eps), scale, da + at);
        swd_reference_backward<T>(a + at, b + at, norm_a.data() + np, norm_b.data() + np, best.data() + np, l, i, j,
                                  radius, w, static_cast<T>(eps), scale, db + at);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> swd_distance_backward_cpu(const at::Tensor& grad, const at::Tensor& fd,
                                                             const at::Tensor& fr, const at::Tensor& weight,
                                                             int64_t radius, double eps) {
  const FeaturePair fp = prepare_features("_swd_distance_backward", fd, fr, weight, at::Tensor(), grad, radius, true);
  radius = swd_effective_radius("_swd_distance_backward", radius, fp.layout);
  at::Tensor ga = at::empty_like(fp.a), gb = at::empty_like(fp.b);
  if (fp.layout.batch > 0) {
    const at::Tensor g = grad.to(fp.a.scalar_type()).contiguous();
    if (fp.a.scalar_type() == at::kDouble)
      swd_backward<double>(fp, g, radius, eps, ga, gb);
    else
      swd_backward<float>(fp, g, radius, eps, ga, gb);
  }
  return {gradient_like_input(fd, ga), gradient_like_input(fr, gb)};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("lpips_distance", &lpips_distance_cpu);
  m.impl("_lpips_distance_backward", &lpips_distance_backward_cpu);
  m.impl("dists_layer", &dists_layer_cpu);
  m.impl("_dists_layer_backward", &dists_layer_backward_cpu);
  m.impl("swd_distance", &swd_distance_cpu);
  m.impl("_swd_distance_backward", &swd_distance_backward_cpu);
}

}  // namespace cpu

}  // namespace turboiqa
