// CPU kernels of the feature distances (LPIPS, DISTS, PIPAL's SWD) and the argument checks every device uses.
//
// Work is split into fixed tasks (image x chunk of positions, image x row, image x strip) whose partial sums are
// combined in a fixed order afterwards, so results do not depend on the thread count. NCHW features run loops
// over positions innermost (contiguous, vectorised); channels-last features run loops over channels innermost
// (`omp simd` reductions), so neither layout is copied into the other.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "../dtypes.h"
#include "../feature_distance.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TURBOIQA_NO_CLONES)
#define TURBOIQA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TURBOIQA_CLONES
#endif

namespace turboiqa {

namespace {

void check_channel_vector(const char* op, const char* name, const at::Tensor& v, const at::Tensor& f0) {
  TORCH_CHECK(v.defined(), op, ": ", name, " is undefined");
  TORCH_CHECK(v.numel() == f0.size(1), op, ": ", name, " must hold C = ", f0.size(1), " values (one per channel), got shape ",
              v.sizes());
  TORCH_CHECK(at::isFloatingType(v.scalar_type()), op, ": ", name, " must be a floating-point tensor, got ",
              v.scalar_type());
  TORCH_CHECK(v.device() == f0.device(), op, ": ", name, " must be on the features' device (", f0.device(), "), got ",
              v.device());
}

}  // namespace

FeaturePair prepare_features(const char* op, const at::Tensor& f0, const at::Tensor& f1, const at::Tensor& weight,
                             const at::Tensor& weight2, const at::Tensor& grad, int64_t radius,
                             bool allow_channels_last) {
  TORCH_CHECK(f0.dim() == 4, op, ": features must be N x C x H x W, got shape ", f0.sizes());
  TORCH_CHECK(f1.sizes() == f0.sizes(), op, ": both feature maps must have the same shape, got ", f0.sizes(), " and ",
              f1.sizes());
  const auto type = f0.scalar_type();
  TORCH_CHECK(type == at::kFloat || type == at::kDouble || type == at::kHalf || type == at::kBFloat16, op,
              ": features must be float32, float64, float16 or bfloat16, got ", type);
  TORCH_CHECK(f1.scalar_type() == type, op, ": both feature maps must have the same dtype, got ", type, " and ",
              f1.scalar_type());
  TORCH_CHECK(f1.device() == f0.device(), op, ": both feature maps must be on the same device, got ", f0.device(),
              " and ", f1.device());
  TORCH_CHECK(f0.size(1) > 0 && f0.size(2) > 0 && f0.size(3) > 0, op,
              ": features need at least one channel and one position, got shape ", f0.sizes());
  check_channel_vector(op, "weight", weight, f0);
  if (weight2.defined()) check_channel_vector(op, "beta", weight2, f0);
  if (grad.defined()) {
    TORCH_CHECK(grad.dim() == 1 && grad.size(0) == f0.size(0), op, ": the gradient must have shape (N,) = (",
                f0.size(0), "), got ", grad.sizes());
    TORCH_CHECK(grad.device() == f0.device(), op, ": the gradient must be on the features' device");
  }
  TORCH_CHECK(radius >= 0 || radius == kNoRadius, op, ": radius must be >= 0, got ", radius);
  TORCH_CHECK(radius == kNoRadius || radius <= 1024, op, ": radius must be <= 1024, got ", radius);

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

constexpr int64_t kChunk = 128;  // positions per LPIPS task step: the chunk's C x 128 features stay in L2

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
  const int64_t positions = l.positions(), chunks = (positions + kChunk - 1) / kChunk;
  std::vector<double> partial(l.batch * chunks);
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  const T* w = fp.weight.data_ptr<T>();
  at::parallel_for(0, l.batch * chunks, grain_for(l.channels * kChunk), [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / chunks, first = (task % chunks) * kChunk;
      const int64_t count = std::min(kChunk, positions - first), at = n * l.image_stride() + first * l.position_stride;
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
  at::parallel_for(0, l.batch * chunks, grain_for(l.channels * kChunk), [&](int64_t begin, int64_t end) {
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
  at::parallel_for(0, l.batch * strips, grain_for(channels * kStrip), [&](int64_t begin, int64_t end) {
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
  at::parallel_for(0, l.batch * strips, grain_for(channels * kStrip), [&](int64_t begin, int64_t end) {
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
  at::parallel_for(0, l.batch * l.height, grain_for(l.channels * l.width), [&](int64_t begin, int64_t end) {
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

// One row i of one image: the minimum distance of each position, written to best (W) and its offset number to
// best_k (W); returns the row's sum. scratch: 3 * W values.
template <typename T>
inline double swd_row(const T* __restrict a, const T* __restrict b, const T* norm_a, const T* norm_b,
                      const FeatureLayout& l, int64_t i, int64_t radius, const T* w, T eps, T* __restrict best,
                      int* __restrict best_k, T* __restrict scratch) {
  const int64_t width = l.width, side = 2 * radius + 1;
  T* __restrict inv_a = scratch;
  T* __restrict inv_b = scratch + width;
  T* __restrict acc = scratch + 2 * width;
  for (int64_t j = 0; j < width; ++j) {
    best[j] = std::numeric_limits<T>::infinity();
    best_k[j] = -1;
    inv_a[j] = T(1) / (norm_a[i * width + j] + eps);
  }
  for (int64_t di = -radius; di <= radius; ++di) {
    const int64_t qi = i + di;
    if (qi < 0 || qi >= l.height) continue;
    for (int64_t dj = -radius; dj <= radius; ++dj) {
      const int64_t j0 = std::max<int64_t>(0, -dj), j1 = std::min<int64_t>(width, width - dj);
      if (j0 >= j1) continue;
      const int k = static_cast<int>((di + radius) * side + (dj + radius));
      if (!l.channels_last) {
        for (int64_t j = j0; j < j1; ++j) {
          inv_b[j] = T(1) / (norm_b[qi * width + j + dj] + eps);
          acc[j] = 0;
        }
        for (int64_t c = 0; c < l.channels; ++c) {
          const T* __restrict ac = a + c * l.channel_stride + i * width;
          const T* __restrict bc = b + c * l.channel_stride + qi * width + dj;
          const T wc = w[c];
          for (int64_t j = j0; j < j1; ++j) {
            const T e = ac[j] * inv_a[j] - bc[j] * inv_b[j];
            acc[j] += wc * e * e;
          }
        }
      } else {
        const int64_t channels = l.channels;
        for (int64_t j = j0; j < j1; ++j) {
          const T* __restrict ap = a + (i * width + j) * channels;
          const T* __restrict bp = b + (qi * width + j + dj) * channels;
          const T ia = inv_a[j], ib = T(1) / (norm_b[qi * width + j + dj] + eps);
          T d = 0;
#pragma omp simd reduction(+ : d)
          for (int64_t c = 0; c < channels; ++c) {
            const T e = ap[c] * ia - bp[c] * ib;
            d += w[c] * e * e;
          }
          acc[j] = d;
        }
      }
      for (int64_t j = j0; j < j1; ++j) {
        if (!(acc[j] >= best[j])) {  // ties keep the first offset; NaN is kept, as torch.min does
          best[j] = acc[j];
          best_k[j] = k;
        }
      }
    }
  }
  double sum = 0;
  for (int64_t j = 0; j < width; ++j) sum += best[j];
  return sum;
}

TURBOIQA_CLONES double swd_row_f32(const float* a, const float* b, const float* norm_a, const float* norm_b,
                                   const FeatureLayout& l, int64_t i, int64_t radius, const float* w, float eps,
                                   float* best, int* best_k, float* scratch) {
  return swd_row(a, b, norm_a, norm_b, l, i, radius, w, eps, best, best_k, scratch);
}
TURBOIQA_CLONES double swd_row_f64(const double* a, const double* b, const double* norm_a, const double* norm_b,
                                   const FeatureLayout& l, int64_t i, int64_t radius, const double* w, double eps,
                                   double* best, int* best_k, double* scratch) {
  return swd_row(a, b, norm_a, norm_b, l, i, radius, w, eps, best, best_k, scratch);
}

// Row sums (N * H) and, if best_out is given, every position's best offset number (N * H * W).
template <typename T>
std::vector<double> swd_search(const FeaturePair& fp, const std::vector<T>& norm_a, const std::vector<T>& norm_b,
                               int64_t radius, double eps, int* best_out) {
  const FeatureLayout& l = fp.layout;
  const T* a = fp.a.data_ptr<T>();
  const T* b = fp.b.data_ptr<T>();
  const T* w = fp.weight.data_ptr<T>();
  std::vector<double> rows(l.batch * l.height);
  const int64_t side = 2 * radius + 1;
  at::parallel_for(0, l.batch * l.height, grain_for(l.channels * l.width * side * side), [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(4 * l.width);
    std::vector<int> own_k(l.width);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / l.height, i = row % l.height;
      int* best_k = best_out ? best_out + n * l.positions() + i * l.width : own_k.data();
      const T* na = norm_a.data() + n * l.positions();
      const T* nb = norm_b.data() + n * l.positions();
      const int64_t at = n * l.image_stride();
      if constexpr (std::is_same_v<T, double>)
        rows[row] = swd_row_f64(a + at, b + at, na, nb, l, i, radius, w, eps, scratch.data() + 3 * l.width, best_k,
                                scratch.data());
      else
        rows[row] = swd_row_f32(a + at, b + at, na, nb, l, i, radius, w, static_cast<float>(eps),
                                scratch.data() + 3 * l.width, best_k, scratch.data());
    }
  });
  return rows;
}

template <typename T>
at::Tensor swd_forward(const FeaturePair& fp, int64_t radius, double eps) {
  const FeatureLayout& l = fp.layout;
  const std::vector<T> norm_a = channel_norms(fp.a.data_ptr<T>(), l), norm_b = channel_norms(fp.b.data_ptr<T>(), l);
  const std::vector<double> rows = swd_search<T>(fp, norm_a, norm_b, radius, eps, nullptr);
  at::Tensor out = feature_distance_output(fp);
  T* o = out.data_ptr<T>();
  for (int64_t n = 0; n < l.batch; ++n) {
    double sum = 0;
    for (int64_t i = 0; i < l.height; ++i) sum += rows[n * l.height + i];
    o[n] = static_cast<T>(sum / static_cast<double>(l.positions()));
  }
  return out;
}

at::Tensor swd_distance_cpu(const at::Tensor& fd, const at::Tensor& fr, const at::Tensor& weight, int64_t radius,
                            double eps) {
  const FeaturePair fp = prepare_features("swd_distance", fd, fr, weight, at::Tensor(), at::Tensor(), radius, true);
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
  at::parallel_for(0, l.batch * l.height, grain_for(l.channels * l.width * side * side), [&](int64_t begin, int64_t end) {
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
