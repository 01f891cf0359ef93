// CPU implementation of turboiqa::ssim_stats and its backward.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "../ssim_math.h"
#include "../ssim_stats.h"
#include "../vifp_stats.h"
#include "parallel.h"
#include "ssim_backward_rows.h"
#include "ssim_rows_run.h"

namespace turboiqa::cpu {

namespace {

constexpr int kStripRows = 32;  // fixed strip height: results never depend on the thread count

std::vector<int> border_map(int64_t n, int pad, Border border) {
  std::vector<int> map(n + 2 * pad);
  for (int64_t i = 0; i < n + 2 * pad; ++i) map[i] = border_index(static_cast<int>(i - pad), static_cast<int>(n), border);
  return map;
}

// Representative level subtracted before squaring (see ssim_math.h): mid-range for 8-bit data, the mean of the
// two planes' first samples otherwise (symmetric in x and y). The backward uses the same rule.
template <typename In, typename Acc>
Acc plane_shift(const In* x, const In* y) {
  if constexpr (std::is_same_v<In, std::uint8_t>) return Acc(128);
  return static_cast<Acc>(x[0]) * Acc(0.5) + static_cast<Acc>(y[0]) * Acc(0.5);
}

// The strip loop of every statistic's forward: tasks are (plane, strip of kStripRows output rows); `fill(args,
// plane)` sets the statistic's own fields (and its per-row outputs) and `run(args)` calls its row kernel.
template <typename Args, typename In, typename Acc, typename Fill, typename Run>
void forward_strips(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& g, at::ArrayRef<double> window,
                    int quantities, const Fill& fill, const Run& run) {
  const std::vector<int> row_map = border_map(g.height, g.pad, g.border);
  const std::vector<int> col_map = border_map(g.width, g.pad, g.border);
  const std::vector<double> normalized = normalized_window(window);
  std::vector<Acc> win(normalized.begin(), normalized.end());
  const int64_t strips = (g.out_height + kStripRows - 1) / kStripRows;
  const In* xp = x.data_ptr<In>();
  const In* yp = y.data_ptr<In>();
  const int64_t plane_size = g.height * g.width;
  const std::size_t scratch_elems = ssim_rows_scratch_size(static_cast<int>(g.padded_width), g.window_size, quantities);
  // Keep small images serial: a task is worth forking only above ~64k output pixels.
  const int64_t grain = std::max<int64_t>(1, 65536 / (kStripRows * g.out_width));

  parallel_chunks(g.planes * strips, grain, [&](int64_t begin, int64_t end) {
    Acc* scratch = ssim_rows_thread_scratch<Acc>(scratch_elems, (g.padded_width * 64 + g.window_size) * 8 + quantities);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t plane = task / strips, strip = task % strips;
      Args a;
      a.x = xp + plane * plane_size;
      a.y = yp + plane * plane_size;
      a.height = static_cast<int>(g.height);
      a.width = static_cast<int>(g.width);
      a.row_map = row_map.data();
      a.col_map = col_map.data();
      a.padded_height = static_cast<int>(g.padded_height);
      a.padded_width = static_cast<int>(g.padded_width);
      a.pad_left = g.pad;
      a.window = win.data();
      a.window_size = g.window_size;
      a.shift = plane_shift<In, Acc>(a.x, a.y);
      a.out_width = static_cast<int>(g.out_width);
      a.row_begin = static_cast<int>(strip * kStripRows);
      a.row_end = static_cast<int>(std::min<int64_t>(g.out_height, (strip + 1) * kStripRows));
      a.scratch = scratch;
      fill(a, plane);
      run(a);
    }
  });
}

// Per-plane sums of per-row values, in row order (deterministic), divided by `divisor`.
template <typename Acc>
void reduce_rows(const std::vector<double>& rows, const SsimGeometry& g, double divisor, at::Tensor& out) {
  auto o = out.data_ptr<Acc>();
  for (int64_t p = 0; p < g.planes; ++p) {
    double total = 0;
    for (int64_t i = 0; i < g.out_height; ++i) total += rows[p * g.out_height + i];
    o[p] = static_cast<Acc>(total / divisor);
  }
}

template <typename In, typename Acc>
void forward_planes(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& g, at::ArrayRef<double> window,
                    double c1, double c2, double cov_norm, bool nonnegative_cs, at::Tensor& out_ssim,
                    at::Tensor& out_cs) {
  std::vector<double> row_ssim(g.planes * g.out_height), row_cs(g.planes * g.out_height);
  forward_strips<SsimRowsArgs<In, Acc>, In, Acc>(
      x, y, g, window, 4,
      [&](SsimRowsArgs<In, Acc>& a, int64_t plane) {
        a.c1 = static_cast<Acc>(c1);
        a.c2 = static_cast<Acc>(c2);
        a.cov_norm = static_cast<Acc>(cov_norm);
        a.nonnegative_cs = nonnegative_cs;
        a.row_ssim = row_ssim.data() + plane * g.out_height;
        a.row_cs = row_cs.data() + plane * g.out_height;
      },
      [](const SsimRowsArgs<In, Acc>& a) { run_ssim_rows(a); });
  const double count = static_cast<double>(g.out_height * g.out_width);
  reduce_rows<Acc>(row_ssim, g, count, out_ssim);
  reduce_rows<Acc>(row_cs, g, count, out_cs);
}

std::tuple<at::Tensor, at::Tensor> ssim_stats_cpu(const at::Tensor& x_in, const at::Tensor& y_in,
                                                  at::ArrayRef<double> window, double c1, double c2,
                                                  c10::string_view padding, double cov_norm,
                                                  bool nonnegative_cs) {
  check_ssim_args(x_in, y_in, window, std::string(padding));
  const SsimGeometry g = ssim_geometry(x_in, window, std::string(padding));
  auto dt = x_in.scalar_type();
  auto out_dt = compute_type(dt);
  at::Tensor out_ssim = at::empty({x_in.size(0), x_in.size(1)}, x_in.options().dtype(out_dt));
  at::Tensor out_cs = at::empty_like(out_ssim);
  if (g.planes == 0) return {out_ssim, out_cs};
  // Half/bfloat16 are computed in float32 from a converted copy; uint8/float/double are read in place.
  at::Tensor x = (dt == at::kByte || dt == at::kFloat || dt == at::kDouble) ? x_in.contiguous()
                                                                           : x_in.to(at::kFloat).contiguous();
  at::Tensor y = (dt == at::kByte || dt == at::kFloat || dt == at::kDouble) ? y_in.contiguous()
                                                                           : y_in.to(at::kFloat).contiguous();
  if (x.scalar_type() == at::kByte)
    forward_planes<std::uint8_t, float>(x, y, g, window, c1, c2, cov_norm, nonnegative_cs, out_ssim, out_cs);
  else if (x.scalar_type() == at::kDouble)
    forward_planes<double, double>(x, y, g, window, c1, c2, cov_norm, nonnegative_cs, out_ssim, out_cs);
  else
    forward_planes<float, float>(x, y, g, window, c1, c2, cov_norm, nonnegative_cs, out_ssim, out_cs);
  return {out_ssim, out_cs};
}

// ---------------------------------------------------------------------------------------------------------------
// Backward. The padded grid's gradient is the transposed (full) separable filter of the per-pixel gradients w.r.t.
// the five moments. Tasks are (plane, strip of kStripRows padded rows); a strip recomputes the moments of the
// output rows that reach it (its rows plus k - 1 above), so every task works in a cache-sized scratch, and writes
// only its own rows of the padded gradient. The fold of the padding onto the input samples (targets collide under
// reflecting borders) runs afterwards, one task per plane. Each strip sums in the same order whatever the thread
// count: results are bit-identical with any number of threads.

template <typename T>
void run_backward_rows(const SsimBackwardArgs<T>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return ssim_backward_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return ssim_backward_rows_avx2(args);
#endif
    default: return ssim_backward_rows_baseline(args);
  }
}

template <typename T>
void run_backward_rows(const VifpBackwardArgs<T>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return vifp_backward_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return vifp_backward_rows_avx2(args);
#endif
    default: return vifp_backward_rows_baseline(args);
  }
}

// Per worker thread, kept across calls (a training loop calls the backward every step); no zeros needed.
template <typename T>
T* backward_thread_scratch(std::size_t elems) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < elems) buffer.resize(elems);
  return buffer.data();
}

// `fill(args, plane)` sets the statistic's own fields of the strip's arguments.
template <typename T, typename Args, typename Fill>
void backward_planes(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& g, at::ArrayRef<double> window,
                     at::Tensor& dx, at::Tensor& dy, const Fill& fill) {
  const std::vector<double> normalized = normalized_window(window);
  const std::vector<T> w(normalized.begin(), normalized.end());
  const std::vector<int> row_map = border_map(g.height, g.pad, g.border);
  const std::vector<int> col_map = border_map(g.width, g.pad, g.border);
  const int64_t hp = g.padded_height, wp = g.padded_width, padded = hp * wp, plane_size = g.height * g.width;
  // 'valid' padding: the padded grid is the input itself, the strips write dx/dy directly and nothing is folded.
  const bool unpadded = hp == g.height && wp == g.width;
  std::unique_ptr<T[]> padded_buffer(unpadded ? nullptr : new T[2 * g.planes * padded]);  // every element written
  T* const grad_x_padded = unpadded ? dx.data_ptr<T>() : padded_buffer.get();
  T* const grad_y_padded = unpadded ? dy.data_ptr<T>() : padded_buffer.get() + g.planes * padded;
  const int64_t strips = (hp + kStripRows - 1) / kStripRows;
  const std::size_t scratch_elems = ssim_backward_scratch_size(static_cast<int>(wp), static_cast<int>(g.out_width),
                                                               g.window_size, kStripRows);
  parallel_chunks(g.planes * strips, 1, [&](int64_t begin, int64_t end) {
    T* scratch = backward_thread_scratch<T>(scratch_elems);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / strips, strip = task % strips;
      Args a;
      a.x = x.data_ptr<T>() + p * plane_size;
      a.y = y.data_ptr<T>() + p * plane_size;
      a.width = static_cast<int>(g.width);
      a.row_map = row_map.data();
      a.col_map = col_map.data();
      a.padded_width = static_cast<int>(wp);
      a.out_height = static_cast<int>(g.out_height);
      a.out_width = static_cast<int>(g.out_width);
      a.window = w.data();
      a.window_size = g.window_size;
      a.shift = plane_shift<T, T>(a.x, a.y);  // same rule as the forward kernel for floating input
      a.row_begin = static_cast<int>(strip * kStripRows);
      a.row_end = static_cast<int>(std::min<int64_t>(hp, (strip + 1) * kStripRows));
      a.grad_x_padded = grad_x_padded + p * padded;
      a.grad_y_padded = grad_y_padded + p * padded;
      a.scratch = scratch;
      fill(a, p);
      run_backward_rows<T>(a);
    }
  });
  if (unpadded) return;
  // Fold: each padded sample adds its gradient to the input sample it was copied from.
  parallel_chunks(g.planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* dxp = dx.data_ptr<T>() + p * plane_size;
      T* dyp = dy.data_ptr<T>() + p * plane_size;
      const T* gx = grad_x_padded + p * padded;
      const T* gy = grad_y_padded + p * padded;
      for (int64_t i = 0; i < plane_size; ++i) dxp[i] = dyp[i] = 0;
      for (int64_t r = 0; r < hp; ++r) {
        const int sr = row_map[r];
        if (sr < 0) continue;
        for (int64_t c = 0; c < wp; ++c) {
          const int sc = col_map[c];
          if (sc < 0) continue;
          dxp[sr * g.width + sc] += gx[r * wp + c];
          dyp[sr * g.width + sc] += gy[r * wp + c];
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> ssim_stats_backward_cpu(const at::Tensor& grad_ssim, const at::Tensor& grad_cs,
                                                           const at::Tensor& x_in, const at::Tensor& y_in,
                                                           at::ArrayRef<double> window, double c1, double c2,
                                                           c10::string_view padding, double cov_norm,
                                                           bool nonnegative_cs) {
  check_ssim_backward_args(grad_ssim, grad_cs, x_in, y_in, window, std::string(padding));
  const SsimGeometry g = ssim_geometry(x_in, window, std::string(padding));
  auto dt = compute_type(x_in.scalar_type());
  at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  at::Tensor gs = grad_ssim.to(dt).contiguous().reshape({-1}), gc = grad_cs.to(dt).contiguous().reshape({-1});
  at::Tensor dx = at::empty_like(x), dy = at::empty_like(y);
  if (g.planes > 0) {
    const double count = static_cast<double>(g.out_height * g.out_width);
    auto run = [&](auto zero) {
      using T = decltype(zero);
      const T* gs_p = gs.data_ptr<T>();
      const T* gc_p = gc.data_ptr<T>();
      backward_planes<T, SsimBackwardArgs<T>>(x, y, g, window, dx, dy, [&](SsimBackwardArgs<T>& a, int64_t p) {
        a.c1 = T(c1);
        a.c2 = T(c2);
        a.cov_norm = T(cov_norm);
        a.a = static_cast<T>(gs_p[p] / count);
        a.b = static_cast<T>(gc_p[p] / count);
        a.nonnegative_cs = nonnegative_cs;
      });
    };
    if (dt == at::kDouble)
      run(double(0));
    else
      run(float(0));
  }
  return {dx.to(x_in.scalar_type()), dy.to(x_in.scalar_type())};
}

// ---------------------------------------------------------------------------------------------------------------
// VIFp (one scale): the same strip machinery with the VIFp statistic (vifp_math.h); per-plane float64 sums.

template <typename T>
void run_vifp_rows(const VifpRowsArgs<T, T>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return vifp_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return vifp_rows_avx2(args);
#endif
    default: return vifp_rows_baseline(args);
  }
}

std::tuple<at::Tensor, at::Tensor> vifp_stats_cpu(const at::Tensor& x_in, const at::Tensor& y_in,
                                                  at::ArrayRef<double> window, double sigma_nsq, double eps,
                                                  double floor_rel, c10::string_view padding) {
  check_vifp_args(x_in, y_in, window, sigma_nsq, eps, floor_rel, std::string(padding));
  const SsimGeometry g = ssim_geometry(x_in, window, std::string(padding));
  at::Tensor out_num = at::empty({x_in.size(0), x_in.size(1)}, x_in.options().dtype(at::kDouble));
  at::Tensor out_den = at::empty_like(out_num);
  if (g.planes == 0) return {out_num, out_den};
  // Float and double are read in place; uint8 and half/bfloat16 are computed in float32 from a converted copy.
  const auto dt = compute_type(x_in.scalar_type());
  at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  std::vector<double> row_num(g.planes * g.out_height), row_den(g.planes * g.out_height);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    forward_strips<VifpRowsArgs<T, T>, T, T>(
        x, y, g, window, 5,
        [&](VifpRowsArgs<T, T>& a, int64_t plane) {
          a.sigma_nsq = static_cast<T>(sigma_nsq);
          a.eps = static_cast<T>(eps);
          a.floor_rel = static_cast<T>(floor_rel);
          a.row_num = row_num.data() + plane * g.out_height;
          a.row_den = row_den.data() + plane * g.out_height;
        },
        [](const VifpRowsArgs<T, T>& a) { run_vifp_rows<T>(a); });
  };
  if (dt == at::kDouble)
    run(double(0));
  else
    run(float(0));
  reduce_rows<double>(row_num, g, 1.0, out_num);
  reduce_rows<double>(row_den, g, 1.0, out_den);
  return {out_num, out_den};
}

std::tuple<at::Tensor, at::Tensor> vifp_stats_backward_cpu(const at::Tensor& grad_num, const at::Tensor& grad_den,
                                                           const at::Tensor& x_in, const at::Tensor& y_in,
                                                           at::ArrayRef<double> window, double sigma_nsq,
                                                           double eps, double floor_rel, c10::string_view padding) {
  check_vifp_backward_args(grad_num, grad_den, x_in, y_in, window, sigma_nsq, eps, floor_rel, std::string(padding));
  const SsimGeometry g = ssim_geometry(x_in, window, std::string(padding));
  auto dt = compute_type(x_in.scalar_type());
  at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  at::Tensor gn = grad_num.to(at::kDouble).contiguous().reshape({-1});
  at::Tensor gd = grad_den.to(at::kDouble).contiguous().reshape({-1});
  at::Tensor dx = at::empty_like(x), dy = at::empty_like(y);
  if (g.planes > 0) {
    const double* gn_p = gn.data_ptr<double>();
    const double* gd_p = gd.data_ptr<double>();
    auto run = [&](auto zero) {
      using T = decltype(zero);
      backward_planes<T, VifpBackwardArgs<T>>(x, y, g, window, dx, dy, [&](VifpBackwardArgs<T>& a, int64_t p) {
        a.sigma_nsq = static_cast<T>(sigma_nsq);
        a.eps = static_cast<T>(eps);
        a.floor_rel = static_cast<T>(floor_rel);
        a.a = static_cast<T>(gn_p[p]);
        a.b = static_cast<T>(gd_p[p]);
      });
    };
    if (dt == at::kDouble)
      run(double(0));
    else
      run(float(0));
  }
  return {dx.to(x_in.scalar_type()), dy.to(x_in.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("ssim_stats", &ssim_stats_cpu);
  m.impl("_ssim_stats_backward", &ssim_stats_backward_cpu);
  m.impl("vifp_stats", &vifp_stats_cpu);
  m.impl("_vifp_stats_backward", &vifp_stats_backward_cpu);
}

}  // namespace turboiqa::cpu
