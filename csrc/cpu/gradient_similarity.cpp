// CPU implementation of turboiqa::gradient_similarity (gradient_similarity.h): strips of output rows claimed by the
// work-claiming threads (parallel.h), the row kernel of the selected ISA (gradient_similarity_rows.cpp).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../dtypes.h"
#include "../gradient_similarity.h"
#include "dispatch.h"
#include "gradient_similarity_rows.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

constexpr int kStripRows = 32;  // fixed strip height: results never depend on the thread count

template <typename T>
void run_rows(const GradSimRowsArgs<T>& args) {
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

// Per worker thread, kept across calls (video scoring calls the kernel per frame).
template <typename T>
T* thread_scratch(std::size_t elems) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < elems) buffer.resize(elems);
  return buffer.data();
}

struct Constants {
  double s0, s1, s2, c, alpha, eps;
};

// The shared fields of a task's row arguments: plane p of x and y, strip `strip` of kStripRows rows out of `rows`
// (output rows for the forward, input rows for the backward).
template <typename T>
void fill_plane_args(GradSimPlaneArgs<T>& a, const T* xp, const T* yp, int64_t p, int64_t height, int64_t width,
                     bool valid, const Constants& k, int64_t strip, int64_t rows, T* scratch) {
  a.x = xp + p * height * width;
  a.y = yp + p * height * width;
  a.height = static_cast<int>(height);
  a.width = static_cast<int>(width);
  a.valid = valid;
  a.s0 = static_cast<T>(k.s0);
  a.s1 = static_cast<T>(k.s1);
  a.s2 = static_cast<T>(k.s2);
  a.c = static_cast<T>(k.c);
  a.alpha = static_cast<T>(k.alpha);
  a.eps = static_cast<T>(k.eps);
  a.row_begin = static_cast<int>(strip * kStripRows);
  a.row_end = static_cast<int>(std::min<int64_t>(rows, (strip + 1) * kStripRows));
  a.scratch = scratch;
}

template <typename T>
void similarity_planes(const at::Tensor& x, const at::Tensor& y, bool valid, const Constants& k, at::Tensor& out,
                       bool moments) {
  const int64_t planes = x.size(0) * x.size(1), height = x.size(2), width = x.size(3);
  const int64_t out_height = valid ? height - 2 : height, out_width = valid ? width - 2 : width;
  const int64_t strips = (out_height + kStripRows - 1) / kStripRows;
  std::vector<double> row_sum(moments ? planes * out_height : 0), row_sumsq(row_sum.size());
  const T* xp = x.data_ptr<T>();
  const T* yp = y.data_ptr<T>();
  T* map = moments ? nullptr : out.data_ptr<T>();
  const std::size_t scratch_elems = grad_sim_scratch_size(static_cast<int>(width));
  // Small planes stay on one thread: a task is worth handing out only above ~64k output pixels.
  const int64_t grain = std::max<int64_t>(1, 65536 / (kStripRows * std::max<int64_t>(out_width, 1)));
  parallel_chunks(planes * strips, grain, [&](int64_t begin, int64_t end) {
    T* scratch = thread_scratch<T>(scratch_elems);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / strips, strip = task % strips;
      GradSimRowsArgs<T> a;
      fill_plane_args(a, xp, yp, p, height, width, valid, k, strip, out_height, scratch);
      a.map = moments ? nullptr : map + p * out_height * out_width;
      a.row_sum = moments ? row_sum.data() + p * out_height : nullptr;
      a.row_sumsq = moments ? row_sumsq.data() + p * out_height : nullptr;
      run_rows(a);
    }
  });
  if (!moments) return;
  double* o = out.data_ptr<double>();
  for (int64_t p = 0; p < planes; ++p) {  // rows in order: the same sums with any thread count
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < out_height; ++i) {
      s += row_sum[p * out_height + i];
      s2 += row_sumsq[p * out_height + i];
    }
    o[2 * p] = s;
    o[2 * p + 1] = s2;
  }
}

at::Tensor gradient_similarity_cpu(const at::Tensor& x_in, const at::Tensor& y_in, at::ArrayRef<double> smooth,
                                   double scale, double c, double alpha, double eps, c10::string_view padding_name,
                                   c10::string_view output_name) {
  const std::string padding(padding_name), output(output_name);
  check_grad_sim_args(x_in, y_in, smooth, scale, c, alpha, eps, padding, output);
  const bool valid = grad_sim_valid(padding);
  const bool moments = grad_sim_output(output) == GradSimOutput::Moments;
  const auto dt = compute_type(x_in.scalar_type());
  at::Tensor x = x_in.to(dt).contiguous(), y = y_in.to(dt).contiguous();
  std::vector<int64_t> shape;
  for (const auto& s : grad_sim_output_shape(x_in, padding, output)) shape.push_back(s.expect_int());
  at::Tensor out = at::empty(shape, x.options().dtype(moments ? at::kDouble : dt));
  if (x.numel() == 0) return out.zero_();
  // The scale is folded into c and eps (q is homogeneous of degree 0 in M1, M2, c): the kernel squares the raw
  // responses only.
  const double s2 = scale * scale;
  const Constants k{smooth[0], smooth[1], smooth[2], c / s2, alpha, eps / s2};
  if (dt == at::kDouble)
    similarity_planes<double>(x, y, valid, k, out, moments);
  else
    similarity_planes<float>(x, y, valid, k, out, moments);
  return out;
}

template <typename T>
void run_backward_rows(const GradSimBackRowsArgs<T>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return grad_sim_backward_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return grad_sim_backward_rows_avx2(args);
#endif
    default: return grad_sim_backward_rows_baseline(args);
  }
}

// Tasks are (plane, strip of kStripRows input rows); each recomputes the weights of its strip's centre rows plus
// one row on each side, so every gradient row is written by one task and never summed across tasks.
template <typename T>
void similarity_backward_planes(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y, bool valid,
                                const Constants& k, bool moments, at::Tensor& dx, at::Tensor& dy) {
  const int64_t planes = x.size(0) * x.size(1), height = x.size(2), width = x.size(3);
  const int64_t out_height = valid ? height - 2 : height, out_width = valid ? width - 2 : width;
  const int64_t strips = (height + kStripRows - 1) / kStripRows;
  const T* xp = x.data_ptr<T>();
  const T* yp = y.data_ptr<T>();
  const T* gmap = moments ? nullptr : grad.data_ptr<T>();
  const double* gmom = moments ? grad.data_ptr<double>() : nullptr;
  T* dxp = dx.data_ptr<T>();
  T* dyp = dy.data_ptr<T>();
  const std::size_t scratch_elems = grad_sim_backward_scratch_size(static_cast<int>(width));
  const int64_t grain = std::max<int64_t>(1, 65536 / (kStripRows * std::max<int64_t>(width, 1)) / 4);
  parallel_chunks(planes * strips, grain, [&](int64_t begin, int64_t end) {
    T* scratch = thread_scratch<T>(scratch_elems);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / strips, strip = task % strips;
      GradSimBackRowsArgs<T> a;
      fill_plane_args(a, xp, yp, p, height, width, valid, k, strip, height, scratch);
      a.grad_map = moments ? nullptr : gmap + p * out_height * out_width;
      a.g_sum = moments ? static_cast<T>(gmom[2 * p]) : T(0);
      a.g_sumsq = moments ? static_cast<T>(gmom[2 * p + 1]) : T(0);
      a.dx = dxp + p * height * width;
      a.dy = dyp + p * height * width;
      run_backward_rows(a);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> gradient_similarity_backward_cpu(
    const at::Tensor& grad_in, const at::Tensor& x_in, const at::Tensor& y_in, at::ArrayRef<double> smooth,
    double scale, double c, double alpha, double eps, c10::string_view padding_name, c10::string_view output_name) {
  return grad_sim_backward(
      grad_in, x_in, y_in, smooth, scale, c, alpha, eps, std::string(padding_name), std::string(output_name),
      [](const at::Tensor&) {},
      [&](const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y, bool valid, bool moments, at::Tensor& dx,
          at::Tensor& dy) {
        const double s2 = scale * scale;
        const Constants k{smooth[0], smooth[1], smooth[2], c / s2, alpha, eps / s2};
        if (x.scalar_type() == at::kDouble)
          similarity_backward_planes<double>(grad, x, y, valid, k, moments, dx, dy);
        else
          similarity_backward_planes<float>(grad, x, y, valid, k, moments, dx, dy);
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("gradient_similarity", &gradient_similarity_cpu);
  m.impl("_gradient_similarity_backward", &gradient_similarity_backward_cpu);
}

}  // namespace turboiqa::cpu
