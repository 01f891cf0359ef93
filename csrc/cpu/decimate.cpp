// CPU implementation of turboiqa::decimate2 and its backward: 'valid' separable correlation with a 1-D window
// along both axes, keeping every second sample (VIFp's decimation between scales). Forward tasks are (plane,
// strip of output rows): per row a vertical pass over the K input rows, then the horizontal pass on the even and
// odd phases of that row (contiguous loads). The backward gathers: per plane the transposed horizontal pass
// (Ho x W), then per (plane, strip of input rows) the transposed vertical pass. Fixed chunks: results do not depend
// on the thread count.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../decimate.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

constexpr int64_t kRows = 16;  // output (forward) or input (backward) rows per task

template <typename T>
void forward_plane_rows(const T* x, int64_t w, const T* win, int k, int64_t wo, int64_t i0, int64_t i1, T* out,
                        std::vector<T>& row, std::vector<T>& phases) {
  const int64_t half = (w + 1) / 2;
  T* even = phases.data();
  T* odd = even + half;
  for (int64_t i = i0; i < i1; ++i) {
    T* __restrict v = row.data();
    const T* first = x + 2 * i * w;
    for (int64_t c = 0; c < w; ++c) v[c] = win[0] * first[c];
    for (int a = 1; a < k; ++a) {
      const T* __restrict src = x + (2 * i + a) * w;
      const T wa = win[a];
      for (int64_t c = 0; c < w; ++c) v[c] += wa * src[c];
    }
    for (int64_t j = 0; j < w / 2; ++j) {
      even[j] = v[2 * j];
      odd[j] = v[2 * j + 1];
    }
    if (w % 2) even[w / 2] = v[w - 1];
    T* __restrict o = out + i * wo;
    for (int64_t j = 0; j < wo; ++j) o[j] = win[0] * even[j];
    for (int b = 1; b < k; ++b) {
      const T* __restrict src = (b % 2 ? odd : even) + b / 2;
      const T wb = win[b];
      for (int64_t j = 0; j < wo; ++j) o[j] += wb * src[j];
    }
  }
}

template <typename T>
void forward(const at::Tensor& x, at::ArrayRef<double> window, at::Tensor& out) {
  const int k = static_cast<int>(window.size());
  const std::vector<T> win(window.begin(), window.end());
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = out.size(2), wo = out.size(3);
  const int64_t strips = (ho + kRows - 1) / kRows;
  const T* xp = x.data_ptr<T>();
  T* op = out.data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, 65536 / (kRows * w * k));
  parallel_chunks(planes * strips, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> row(w), phases(w + 2);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / strips, s = task % strips;
      forward_plane_rows<T>(xp + p * h * w, w, win.data(), k, wo, s * kRows, std::min(ho, (s + 1) * kRows),
                            op + p * ho * wo, row, phases);
    }
  });
}

template <typename T>
void backward(const at::Tensor& grad, const at::Tensor& x, at::ArrayRef<double> window, at::Tensor& dx) {
  const int k = static_cast<int>(window.size());
  const std::vector<T> win(window.begin(), window.end());
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = grad.size(2), wo = grad.size(3);
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  // Transposed horizontal pass: t[i][c] = Σ_b w[b] g[i][(c - b) / 2] over the b with c - b even and in range.
  std::vector<T> t(planes * ho * w);
  parallel_chunks(planes * ho, std::max<int64_t>(1, 65536 / (w * k)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* g = gp + r * wo;
      T* tr = t.data() + r * w;
      for (int64_t c = 0; c < w; ++c) tr[c] = 0;
      for (int b = 0; b < k; ++b) {
        const T wb = win[b];
        for (int64_t j = 0; j < wo; ++j) tr[2 * j + b] += wb * g[j];
      }
    }
  });
  // Transposed vertical pass, gathered per input row r: Σ_a w[a] t[(r - a) / 2].
  const int64_t strips = (h + kRows - 1) / kRows;
  parallel_chunks(planes * strips, std::max<int64_t>(1, 65536 / (kRows * w * k)), [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / strips, s = task % strips;
      const T* tp = t.data() + p * ho * w;
      for (int64_t r = s * kRows; r < std::min(h, (s + 1) * kRows); ++r) {
        T* __restrict d = dp + (p * h + r) * w;
        for (int64_t c = 0; c < w; ++c) d[c] = 0;
        for (int a = 0; a < k; ++a) {
          const int64_t q = r - a;
          if (q < 0 || q % 2 || q / 2 >= ho) continue;
          const T wa = win[a];
          const T* __restrict src = tp + (q / 2) * w;
          for (int64_t c = 0; c < w; ++c) d[c] += wa * src[c];
        }
      }
    }
  });
}

at::Tensor decimate2_cpu(const at::Tensor& x_in, at::ArrayRef<double> window) {
  check_decimate_args(x_in, window);
  const int64_t k = static_cast<int64_t>(window.size());
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), x.size(1), (x.size(2) - k) / 2 + 1, (x.size(3) - k) / 2 + 1}, x.options());
  if (out.numel() == 0) return out;
  if (x.scalar_type() == at::kDouble)
    forward<double>(x, window, out);
  else
    forward<float>(x, window, out);
  return out;
}

at::Tensor decimate2_backward_cpu(const at::Tensor& grad_in, const at::Tensor& x, at::ArrayRef<double> window) {
  check_decimate_backward_args(grad_in, x, window);
  const at::Tensor grad = grad_in.contiguous();
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (dx.numel() == 0) return dx;
  if (x.scalar_type() == at::kDouble)
    backward<double>(grad, x, window, dx);
  else
    backward<float>(grad, x, window, dx);
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("decimate2", &decimate2_cpu);
  m.impl("_decimate2_backward", &decimate2_backward_cpu);
}

}  // namespace turboiqa::cpu
