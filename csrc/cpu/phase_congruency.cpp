// CPU kernel of the fused phase-congruency energy step: one read of the log-Gabor responses instead of the ~8
// elementwise passes of the tensor expression (the responses are O*S = 16 complex planes per image).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "../phase_congruency.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TURBOIQA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TURBOIQA_CLONES
#endif

constexpr int64_t kChunk = 256;  // pixels per step: every per-pixel array below stays in L1

// The same arithmetic as pc_pixel (phase_congruency.h), reorganised so the innermost loops run over pixels and
// vectorise (pc_pixel's per-pixel loops over orientations and scales do not). `plane` points at one image's
// O*S interleaved (re, im) response planes of `pixels` samples each.
template <typename T>
inline void pc_chunk(const T* __restrict plane, int64_t pixels, int64_t first, int64_t count, const T* threshold,
                     int orients, int scales, T epsilon, T pc_eps, T* __restrict out) {
  T energy_all[kChunk] = {}, amplitude_all[kChunk] = {}, sum_e[kChunk], sum_o[kChunk], energy[kChunk];
  for (int o = 0; o < orients; ++o) {
    for (int64_t p = 0; p < count; ++p) sum_e[p] = sum_o[p] = energy[p] = 0;
    for (int s = 0; s < scales; ++s) {
      const T* __restrict eo = plane + ((static_cast<int64_t>(o) * scales + s) * pixels + first) * 2;
      for (int64_t p = 0; p < count; ++p) {
        const T re = eo[2 * p], im = eo[2 * p + 1];
        sum_e[p] += re;
        sum_o[p] += im;
        amplitude_all[p] += std::sqrt(re * re + im * im);
      }
    }
    for (int64_t p = 0; p < count; ++p) {  // sum_e/sum_o become MeanE/MeanO
      const T norm = std::sqrt(sum_e[p] * sum_e[p] + sum_o[p] * sum_o[p]) + epsilon;
      sum_e[p] /= norm;
      sum_o[p] /= norm;
    }
    for (int s = 0; s < scales; ++s) {
      const T* __restrict eo = plane + ((static_cast<int64_t>(o) * scales + s) * pixels + first) * 2;
      for (int64_t p = 0; p < count; ++p) {
        const T re = eo[2 * p], im = eo[2 * p + 1];
        energy[p] += re * sum_e[p] + im * sum_o[p] - std::fabs(re * sum_o[p] - im * sum_e[p]);
      }
    }
    const T t = threshold[o];
    for (int64_t p = 0; p < count; ++p) {
      const T above = energy[p] - t;
      energy_all[p] += above > 0 ? above : T(0);
    }
  }
  for (int64_t p = 0; p < count; ++p) {  // no response at all (a flat image): 0, not 0/0, as the twin
    const T den = amplitude_all[p] + pc_eps;
    out[p] = den > 0 ? (energy_all[p] + pc_eps) / den : T(0);
  }
}

TURBOIQA_CLONES
void pc_chunk_f32(const float* plane, int64_t pixels, int64_t first, int64_t count, const float* threshold,
                  int orients, int scales, float epsilon, float pc_eps, float* out) {
  pc_chunk(plane, pixels, first, count, threshold, orients, scales, epsilon, pc_eps, out);
}

TURBOIQA_CLONES
void pc_chunk_f64(const double* plane, int64_t pixels, int64_t first, int64_t count, const double* threshold,
                  int orients, int scales, double epsilon, double pc_eps, double* out) {
  pc_chunk(plane, pixels, first, count, threshold, orients, scales, epsilon, pc_eps, out);
}

template <typename T>
void pc_planes(const at::Tensor& eo, const at::Tensor& threshold, const PcShape& shape, double epsilon,
               double pc_eps, at::Tensor& out) {
  const T* e = eo.data_ptr<T>();
  const T* t = threshold.data_ptr<T>();
  T* o = out.data_ptr<T>();
  const int64_t per_plane = shape.orients * shape.scales * shape.pixels * 2;
  const int64_t chunks = (shape.pixels + kChunk - 1) / kChunk;
  parallel_chunks(shape.planes * chunks, 16, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t plane = task / chunks, first = (task % chunks) * kChunk;
      const int64_t count = std::min(kChunk, shape.pixels - first);
      const int orients = static_cast<int>(shape.orients), scales = static_cast<int>(shape.scales);
      if constexpr (std::is_same_v<T, double>)
        pc_chunk_f64(e + plane * per_plane, shape.pixels, first, count, t + plane * shape.orients, orients, scales,
                     epsilon, pc_eps, o + plane * shape.pixels + first);
      else
        pc_chunk_f32(e + plane * per_plane, shape.pixels, first, count, t + plane * shape.orients, orients, scales,
                     static_cast<float>(epsilon), static_cast<float>(pc_eps), o + plane * shape.pixels + first);
    }
  });
}

at::Tensor pc_energy_cpu(const at::Tensor& eo_in, const at::Tensor& threshold_in, double epsilon, double pc_eps) {
  check_pc_energy(eo_in, threshold_in, epsilon, pc_eps);
  const PcShape shape = pc_shape(eo_in);
  at::Tensor eo = eo_in.contiguous();
  at::Tensor threshold = threshold_in.to(eo.scalar_type()).contiguous();
  at::Tensor out = at::empty({eo.size(0), eo.size(1), eo.size(4), eo.size(5)}, eo.options());
  if (out.numel() == 0) return out;
  if (eo.scalar_type() == at::kDouble)
    pc_planes<double>(eo, threshold, shape, epsilon, pc_eps, out);
  else
    pc_planes<float>(eo, threshold, shape, epsilon, pc_eps, out);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) { m.impl("pc_energy", &pc_energy_cpu); }

}  // namespace turboiqa::cpu
