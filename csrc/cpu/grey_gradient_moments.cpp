// CPU kernel of grey_gradient_moments (csrc/grey_gradient_moments.h): grey_planes of x and y and the moments of their
// gradient similarity without the image-sized planes. Tasks are (image, strip of output rows of the similarity
// map); a task forms the pooled rows its strip reads (the strip, plus one row above and below for the
// 'zeros' border, two below for 'valid') of x and of y into a per-thread buffer with grey_planes' row kernel (run on
// the image with a shifted pad_top, so that its items are the buffer's rows), then runs gradient_similarity's row
// kernel on the buffer with the strip's rows; the buffer's first/last row is the image's only where the strip
// touches the image's border, so the zero border is seen exactly there. Every pooled value, every row's Σq and Σq²
// and every item's extrema are those the two operators compute (the same row kernels, the same inputs), and the rows
// are summed, and the extrema merged, in the same order afterwards: the same bits with any thread count.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../dtypes.h"
#include "../grey_gradient_moments.h"
#include "dispatch.h"
#include "gradient_similarity_rows.h"
#include "grey_planes_rows.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

// Output rows per task (any split gives the same bits): at least 32, about an eighth of the map (fewer halo rows
// formed twice on large images: 2 per strip), while a strip's buffers stay within ~256 KiB per image (in L2).
int64_t strip_rows(int64_t rows, int64_t planes, int64_t width, std::size_t elem) {
  const int64_t fit = static_cast<int64_t>((256 << 10) / (static_cast<std::size_t>(planes * width) * elem));
  return std::max<int64_t>(32, std::min((rows + 7) / 8, fit));
}

template <typename In, typename T>
void grey_rows(const GreyPlanesArgs<In, T>& args, int64_t begin, int64_t end, void* scratch) {
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

template <typename T>
void sim_rows(const GradSimRowsArgs<T>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return grad_sim_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return grad_sim_rows_avx2(args);
#endif
    default: return grad_sim_rows_baseline(args);
  }
}

// Per worker thread, kept across calls.
void* thread_scratch(std::size_t bytes) {
  thread_local std::vector<double> buffer;
  const std::size_t elems = (bytes + sizeof(double) - 1) / sizeof(double);
  if (buffer.size() < elems) buffer.resize(elems);
  return buffer.data();
}

inline std::size_t align_up(std::size_t bytes) { return (bytes + 63) / 64 * 64; }

struct Params {
  std::vector<double> coeffs;
  double scale;
  int rounding;
  int64_t factor, pad_top, pad_left, out_h, out_w;
  double s0, s1, s2, c, alpha, eps;  // c and eps divided by grad_scale² (gradient_similarity's folding)
  bool valid;
};

template <typename In, typename T>
void run(const at::Tensor& x, const at::Tensor& y, const Params& p, int64_t planes, std::vector<double>& row_sum,
         std::vector<double>& row_sumsq, std::vector<GreyExtrema>& ext_x, std::vector<GreyExtrema>& ext_y) {
  constexpr bool kU8 = std::is_same_v<In, std::uint8_t>;
  const int64_t n = x.size(0), channels = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = p.out_h, wo = p.out_w, off = p.valid ? 1 : 0;
  const int64_t rows = ho - 2 * off;  // output rows of the similarity map
  const int64_t strip = strip_rows(rows, planes, wo, sizeof(T));
  const int64_t strips = (rows + strip - 1) / strip;
  const int64_t buf_rows = strip + 3;  // strip + halo, + 1: a non-final buffer is never the image's last rows
  // scratch: grey_planes' row scratch, the x and y buffers (R planes x buf_rows x wo), the similarity's rows, the
  // buffer items' extrema
  const std::size_t grey_bytes = align_up(grey_scratch_bytes(p.factor, h, planes, w));
  const std::size_t buf_bytes = align_up(static_cast<std::size_t>(planes * buf_rows * wo) * sizeof(T));
  const std::size_t sim_bytes = align_up(grad_sim_scratch_size(static_cast<int>(wo)) * sizeof(T));
  const std::size_t ext_bytes = align_up(static_cast<std::size_t>(buf_rows) * sizeof(GreyExtrema));
  const std::size_t bytes = grey_bytes + 2 * buf_bytes + sim_bytes + ext_bytes;

  GreyPlanesArgs<In, T> base{};
  base.coeffs = p.coeffs.empty() ? nullptr : p.coeffs.data();
  base.channels = channels;
  base.planes = planes;
  base.h = h;
  base.w = w;
  base.f = p.factor;
  base.pad_left = p.pad_left;
  base.out_w = wo;
  base.scale = p.scale;
  base.rounding = p.rounding;
  const In* xp = x.data_ptr<In>();
  const In* yp = y.data_ptr<In>();
  const int64_t image = channels * h * w;

  // ~64K input samples of each image per chunk of tasks: small images stay on one thread
  const int64_t task_samples = std::max<int64_t>(1, strip * p.factor * channels * w);
  const int64_t grain = std::max<int64_t>(1, 65536 / task_samples);
  parallel_chunks(n * strips, grain, [&](int64_t begin, int64_t end) {
    char* s = static_cast<char*>(thread_scratch(bytes));
    void* grey_scratch = s;
    T* bx = reinterpret_cast<T*>(s + grey_bytes);
    T* by = reinterpret_cast<T*>(s + grey_bytes + buf_bytes);
    T* sim_scratch = reinterpret_cast<T*>(s + grey_bytes + 2 * buf_bytes);
    GreyExtrema* local_ext = reinterpret_cast<GreyExtrema*>(s + grey_bytes + 2 * buf_bytes + sim_bytes);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t img = task / strips, k = task % strips;
      const int64_t a = k * strip, b = std::min(rows, a + strip);  // output rows
      // pooled rows read: [lo, hi)
      const int64_t lo = p.valid ? a : std::max<int64_t>(0, a - 1);
      const int64_t hi = p.valid ? b + 2 : std::min(ho, b + 1);
      const int64_t nb = hi - lo;
      // the pooled rows whose extrema this task records: [a, b), and the rest of the image for the last strip
      const int64_t own_lo = a, own_hi = k == strips - 1 ? ho : b;
      // grey_planes' items 0 .. nb-1 are the pooled rows lo .. hi-1; only when the buffer ends at the image's last
      // pooled row does its last item also take the input rows no box reads (out_h = nb there, nb + 1 elsewhere)
      GreyPlanesArgs<In, T> g = base;
      g.pad_top = p.pad_top - lo * p.factor;
      g.out_h = hi == ho ? nb : nb + 1;
      g.ext = local_ext;
      for (int side = 0; side < 2; ++side) {
        g.x = (side == 0 ? xp : yp) + img * image;
        g.out = side == 0 ? bx : by;
        grey_rows(g, 0, nb, grey_scratch);
        if constexpr (!kU8) {
          std::vector<GreyExtrema>& ext = side == 0 ? ext_x : ext_y;
          for (int64_t r = own_lo; r < own_hi; ++r) ext[img * ho + r] = local_ext[r - lo];
        }
      }
      for (int64_t q = 0; q < planes; ++q) {
        GradSimRowsArgs<T> sa;
        sa.x = bx + q * g.out_h * wo;
        sa.y = by + q * g.out_h * wo;
        sa.height = static_cast<int>(nb);
        sa.width = static_cast<int>(wo);
        sa.valid = p.valid;
        sa.s0 = static_cast<T>(p.s0);
        sa.s1 = static_cast<T>(p.s1);
        sa.s2 = static_cast<T>(p.s2);
        sa.c = static_cast<T>(p.c);
        sa.alpha = static_cast<T>(p.alpha);
        sa.eps = static_cast<T>(p.eps);
        sa.row_begin = static_cast<int>(a - lo);
        sa.row_end = static_cast<int>(b - lo);
        sa.scratch = sim_scratch;
        sa.map = nullptr;
        sa.row_sum = row_sum.data() + (img * planes + q) * rows + lo;
        sa.row_sumsq = row_sumsq.data() + (img * planes + q) * rows + lo;
        sim_rows(sa);
      }
    }
  });
}

// grey_planes' merge of an image's item extrema (in item order), into (N, 2).
void merge_extrema(const std::vector<GreyExtrema>& ext, int64_t n, int64_t ho, bool u8, at::Tensor& out) {
  double* e = out.data_ptr<double>();
  for (int64_t img = 0; img < n; ++img) {
    if (u8) {
      e[2 * img] = 0.0;
      e[2 * img + 1] = 255.0;
      continue;
    }
    GreyExtrema t = ext[img * ho];
    for (int64_t i = 1; i < ho; ++i) {
      const GreyExtrema& s = ext[img * ho + i];
      t.low = std::min(t.low, s.low);
      t.high = std::max(t.high, s.high);
      t.bad = t.bad || s.bad;
    }
    e[2 * img] = t.bad ? std::nan("") : t.low;
    e[2 * img + 1] = t.bad ? std::nan("") : t.high;
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grey_gradient_moments_cpu(
    const at::Tensor& x_in, const at::Tensor& y_in, at::ArrayRef<double> coeffs, double scale,
    c10::string_view rounding, int64_t factor, int64_t pad_top, int64_t pad_left, int64_t out_h, int64_t out_w,
    at::ArrayRef<double> smooth, double grad_scale, double c, double alpha, double eps, c10::string_view padding) {
  bool valid = false;
  const GreyRounding mode =
      check_grey_gradient_moments(x_in, y_in, coeffs, scale, std::string(rounding), factor, pad_top, pad_left, out_h,
                                  out_w, smooth, grad_scale, c, alpha, eps, std::string(padding), &valid);
  const auto dt = x_in.scalar_type();
  const bool native = dt == at::kByte || dt == at::kFloat || dt == at::kDouble;
  const at::Tensor x = native ? x_in.contiguous() : x_in.to(at::kFloat).contiguous();
  const at::Tensor y = native ? y_in.contiguous() : y_in.to(at::kFloat).contiguous();
  const int64_t n = x.size(0);
  const int64_t planes = coeffs.empty() ? x.size(1) : static_cast<int64_t>(coeffs.size()) / x.size(1);
  const auto opts = x.options().dtype(at::kDouble);
  at::Tensor moments = at::empty({n, planes, 2}, opts);
  at::Tensor ex = at::empty({n, 2}, opts), ey = at::empty({n, 2}, opts);
  if (n == 0) return {moments, ex, ey};
  const double s2 = grad_scale * grad_scale;
  Params p{std::vector<double>(coeffs.begin(), coeffs.end()),
           scale,
           mode == GreyRounding::HalfAway   ? kGreyRoundHalfAway
           : mode == GreyRounding::HalfEven ? kGreyRoundHalfEven
                                            : kGreyRoundNone,
           factor, pad_top, pad_left, out_h, out_w, smooth[0], smooth[1], smooth[2], c / s2, alpha, eps / s2, valid};
  const int64_t rows = out_h - (valid ? 2 : 0);
  std::vector<double> row_sum(n * planes * rows), row_sumsq(row_sum.size());
  const bool u8 = x.scalar_type() == at::kByte;
  std::vector<GreyExtrema> ext_x(u8 ? 0 : n * out_h), ext_y(ext_x.size());
  if (u8)
    run<std::uint8_t, float>(x, y, p, planes, row_sum, row_sumsq, ext_x, ext_y);
  else if (x.scalar_type() == at::kDouble)
    run<double, double>(x, y, p, planes, row_sum, row_sumsq, ext_x, ext_y);
  else
    run<float, float>(x, y, p, planes, row_sum, row_sumsq, ext_x, ext_y);
  double* o = moments.data_ptr<double>();
  for (int64_t q = 0; q < n * planes; ++q) {  // rows in order: gradient_similarity's sums
    double s = 0, sq = 0;
    for (int64_t i = 0; i < rows; ++i) {
      s += row_sum[q * rows + i];
      sq += row_sumsq[q * rows + i];
    }
    o[2 * q] = s;
    o[2 * q + 1] = sq;
  }
  merge_extrema(ext_x, n, out_h, u8, ex);
  merge_extrema(ext_y, n, out_h, u8, ey);
  return {moments, ex, ey};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) { m.impl("grey_gradient_moments", &grey_gradient_moments_cpu); }

}  // namespace turboiqa::cpu
