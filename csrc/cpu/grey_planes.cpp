// CPU kernel of grey_planes (csrc/grey_planes.h): one read of the image for the grey/luma planes, their rounding,
// the f x f box mean and the input extrema. Work items are (image, output row): each forms the f input rows it
// needs (R planes of W samples, in a per-thread buffer that stays in cache) in the same pass that takes the rows'
// extrema, and writes one output row per plane (grey_planes_rows.cpp, built per ISA, picked at run time). Chunks
// are claimed dynamically (parallel.h); every item writes its own results, so any thread count gives the same bits.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../dtypes.h"
#include "../grey_planes.h"
#include "dispatch.h"
#include "grey_planes_rows.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

template <typename In, typename T>
void run_rows(const GreyPlanesArgs<In, T>& args, int64_t begin, int64_t end, void* scratch) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return grey_planes_rows_avx512(args, begin, end, scratch);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return grey_planes_rows_avx2(args, begin, end, scratch);
#endif
    default: return grey_planes_rows_baseline(args, begin, end, scratch);
  }
}

// Per worker thread, kept across calls (metrics call the kernel twice per pair, video per frame).
void* thread_scratch(std::size_t bytes) {
  thread_local std::vector<double> buffer;
  const std::size_t elems = (bytes + sizeof(double) - 1) / sizeof(double);
  if (buffer.size() < elems) buffer.resize(elems);
  return buffer.data();
}

template <typename In, typename T>
void run(const at::Tensor& x, const std::vector<double>& coeffs, double scale, GreyRounding mode, int64_t factor,
         int64_t pad_top, int64_t pad_left, at::Tensor& out, std::vector<GreyExtrema>& ext) {
  GreyPlanesArgs<In, T> a{};
  a.x = x.data_ptr<In>();
  a.out = out.data_ptr<T>();
  a.ext = ext.data();
  a.coeffs = coeffs.empty() ? nullptr : coeffs.data();
  a.channels = x.size(1);
  a.planes = out.size(1);
  a.h = x.size(2);
  a.w = x.size(3);
  a.f = factor;
  a.pad_top = pad_top;
  a.pad_left = pad_left;
  a.out_h = out.size(2);
  a.out_w = out.size(3);
  a.scale = scale;
  a.rounding = mode == GreyRounding::HalfAway   ? kGreyRoundHalfAway
               : mode == GreyRounding::HalfEven ? kGreyRoundHalfEven
                                                : kGreyRoundNone;
  const std::size_t bytes = grey_scratch_bytes(a.f, a.h, a.planes, a.w);
  // Items (image, output row), about 32K input samples per chunk.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, a.w * a.f * a.channels));
  parallel_chunks(x.size(0) * a.out_h, grain,
                  [&](int64_t begin, int64_t end) { run_rows(a, begin, end, thread_scratch(bytes)); });
}

std::tuple<at::Tensor, at::Tensor> grey_planes_cpu(const at::Tensor& x_in, at::ArrayRef<double> coeffs, double scale,
                                                   c10::string_view rounding, int64_t factor, int64_t pad_top,
                                                   int64_t pad_left, int64_t out_h, int64_t out_w) {
  const GreyRounding mode =
      check_grey_planes(x_in, coeffs, scale, std::string(rounding), factor, pad_top, pad_left, out_h, out_w);
  const auto dt = x_in.scalar_type();
  const bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  struct {
    int64_t n, channels, planes;
  } g{x.size(0), x.size(1), 0};
  g.planes = coeffs.empty() ? g.channels : static_cast<int64_t>(coeffs.size()) / g.channels;
  at::Tensor out = at::empty({g.n, g.planes, out_h, out_w}, x.options().dtype(compute_type(dt)));
  at::Tensor extrema = at::empty({g.n, 2}, x.options().dtype(at::kDouble));
  if (g.n == 0) return {out, extrema};
  std::vector<double> c(coeffs.begin(), coeffs.end());
  std::vector<GreyExtrema> ext(x.scalar_type() == at::kByte ? 0 : g.n * out_h);
  if (x.scalar_type() == at::kByte)
    run<std::uint8_t, float>(x, c, scale, mode, factor, pad_top, pad_left, out, ext);
  else if (x.scalar_type() == at::kDouble)
    run<double, double>(x, c, scale, mode, factor, pad_top, pad_left, out, ext);
  else
    run<float, float>(x, c, scale, mode, factor, pad_top, pad_left, out, ext);
  double* e = extrema.data_ptr<double>();
  for (int64_t img = 0; img < g.n; ++img) {
    if (x.scalar_type() == at::kByte) {
      e[2 * img] = 0.0;
      e[2 * img + 1] = 255.0;
      continue;
    }
    GreyExtrema t = ext[img * out_h];
    for (int64_t i = 1; i < out_h; ++i) {
      const GreyExtrema& s = ext[img * out_h + i];
      t.low = std::min(t.low, s.low);
      t.high = std::max(t.high, s.high);
      t.bad = t.bad || s.bad;
    }
    e[2 * img] = t.bad ? std::nan("") : t.low;
    e[2 * img + 1] = t.bad ? std::nan("") : t.high;
  }
  return {out, extrema};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) { m.impl("grey_planes", &grey_planes_cpu); }

}  // namespace turboiqa::cpu
