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

template <typename In, typename Acc>
void forward_planes(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& g, at::ArrayRef<double> window,
                    double c1, double c2, double cov_norm, bool nonnegative_cs, at::Tensor& out_ssim,
                    at::Tensor& out_cs) {
  const std::vector<int> row_map = border_map(g.height, g.pad, g.border);
  const std::vector<int> col_map = border_map(g.width, g.pad, g.border);
  const std::vector<double> normalized = normalized_window(window);
  std::vector<Acc> win(normalized.begin(), normalized.end());
  const int64_t strips = (g.out_height + kStripRows - 1) / kStripRows;
  std::vector<double> row_ssim(g.planes * g.out_height), row_cs(g.planes * g.out_height);
  const In* xp = x.data_ptr<In>();
  const In* yp = y.data_ptr<In>();
  const int64_t plane_size = g.height * g.width;
  const std::size_t scratch_elems = ssim_rows_scratch_size(static_cast<int>(g.padded_width), g.window_size);
  // Keep small images serial: a task is worth forking only above ~64k output pixels.
  const int64_t grain = std::max<int64_t>(1, 65536 / (kStripRows * g.out_width));

  parallel_chunks(g.planes * strips, grain, [&](int64_t begin, int64_t end) {
    Acc* scratch = ssim_rows_thread_scratch<Acc>(scratch_elems, g.padded_width * 64 + g.window_size);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t plane = task / strips, strip = task % strips;
      // Representative level subtracted before squaring (see ssim_math.h): mid-range for 8-bit data, the
      // mean of the two planes' first samples otherwise (symmetric in x and y).
      Acc shift = std::is_same_v<In, std::uint8_t>
                      ? Acc(128)
                      : static_cast<Acc>(xp[plane * plane_size]) * Acc(0.5) +
                            static_cast<Acc>(yp[plane * plane_size]) * Acc(0.5);
      SsimRowsArgs<In, Acc> a;
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
      a.c1 = static_cast<Acc>(c1);
      a.c2 = static_cast<Acc>(c2);
      a.cov_norm = static_cast<Acc>(cov_norm);
      a.nonnegative_cs = nonnegative_cs;
      a.shift = shift;
      a.out_width = static_cast<int>(g.out_width);
      a.row_begin = static_cast<int>(strip * kStripRows);
      a.row_end = static_cast<int>(std::min<int64_t>(g.out_height, (strip + 1) * kStripRows));
      a.scratch = scratch;
      a.row_ssim = row_ssim.data() + plane * g.out_height;
      a.row_cs = row_cs.data() + plane * g.out_height;
      run_ssim_rows(a);
    }
  });

  auto s = out_ssim.data_ptr<Acc>();
  auto c = out_cs.data_ptr<Acc>();
  const double count = static_cast<double>(g.out_height * g.out_width);
  for (int64_t p = 0; p < g.planes; ++p) {
    double ts = 0, tc = 0;
    for (int64_t i = 0; i < g.out_height; ++i) {
      ts += row_ssim[p * g.out_height + i];
      tc += row_cs[p * g.out_height + i];
    }
    s[p] = static_cast<Acc>(ts / count);
    c[p] = static_cast<Acc>(tc / count);
  }
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

// Per worker thread, kept across calls (a training loop calls the backward every step); no zeros needed.
template <typename T>
T* backward_thread_scratch(std::size_t elems) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < elems) buffer.resize(elems);
  return buffer.data();
}

template <typename T>
void backward_planes(const at::Tensor& grad_ssim, const at::Tensor& grad_cs, const at::Tensor& x,
                     const at::Tensor& y, const SsimGeometry& g, at::ArrayRef<double> window, double c1, double c2,
                     double cov_norm, bool nonnegative_cs, at::Tensor& dx, at::Tensor& dy) {
  const std::vector<double> normalized = normalized_window(window);
  const std::vector<T> w(normalized.begin(), normalized.end());
  const std::vector<int> row_map = border_map(g.height, g.pad, g.border);
  const std::vector<int> col_map = border_map(g.width, g.pad, g.border);
  const int64_t hp = g.padded_height, wp = g.padded_width, padded = hp * wp, plane_size = g.height * g.width;
  const double count = static_cast<double>(g.out_height * g.out_width);
  const T* gs = grad_ssim.data_ptr<T>();
  const T* gc = grad_cs.data_ptr<T>();
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
      SsimBackwardArgs<T> a;
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
      a.c1 = T(c1);
      a.c2 = T(c2);
      a.cov_norm = T(cov_norm);
      a.shift = a.x[0] * T(0.5) + a.y[0] * T(0.5);  // same rule as the forward kernel for floating input
      a.a = static_cast<T>(gs[p] / count);
      a.b = static_cast<T>(gc[p] / count);
      a.nonnegative_cs = nonnegative_cs;
      a.row_begin = static_cast<int>(strip * kStripRows);
      a.row_end = static_cast<int>(std::min<int64_t>(hp, (strip + 1) * kStripRows));
      a.grad_x_padded = grad_x_padded + p * padded;
      a.grad_y_padded = grad_y_padded + p * padded;
      a.scratch = scratch;
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
    if (dt == at::kDouble)
      backward_planes<double>(gs, gc, x, y, g, window, c1, c2, cov_norm, nonnegative_cs, dx, dy);
    else
      backward_planes<float>(gs, gc, x, y, g, window, c1, c2, cov_norm, nonnegative_cs, dx, dy);
  }
  return {dx.to(x_in.scalar_type()), dy.to(x_in.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("ssim_stats", &ssim_stats_cpu);
  m.impl("_ssim_stats_backward", &ssim_stats_backward_cpu);
}

}  // namespace turboiqa::cpu
