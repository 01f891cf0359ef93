// CPU kernel of the fused phase-congruency energy step: one read of the log-Gabor responses instead of the ~8
// elementwise passes of the tensor expression (the responses are O*S = 16 complex planes per image).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>

#include "../phase_congruency.h"

namespace turboiqa::cpu {

namespace {

using std::fabs;
using std::sqrt;

template <typename T>
void pc_planes(const at::Tensor& eo, const at::Tensor& threshold, const PcShape& shape, double epsilon,
               double pc_eps, at::Tensor& out) {
  const T* e = eo.data_ptr<T>();
  const T* t = threshold.data_ptr<T>();
  T* o = out.data_ptr<T>();
  const int64_t per_plane = shape.orients * shape.scales * shape.pixels * 2;
  at::parallel_for(0, shape.planes * shape.pixels, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t plane = i / shape.pixels, pixel = i % shape.pixels;
      const T* base = e + plane * per_plane + 2 * pixel;  // interleaved (re, im)
      o[i] = pc_pixel<T>(base, base + 1, 2 * shape.pixels, t + plane * shape.orients, static_cast<int>(shape.orients),
                         static_cast<int>(shape.scales), static_cast<T>(epsilon), static_cast<T>(pc_eps));
    }
  });
}

at::Tensor pc_energy_cpu(const at::Tensor& eo_in, const at::Tensor& threshold_in, double epsilon, double pc_eps) {
  const PcShape shape = check_pc_energy(eo_in, threshold_in);
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
