// CPU implementation of turboiqa::laplacian_level (matlabPyrTools buildLpyr's step as in iwssim.m; schema in
// ops.cpp, PyTorch twin in python/turboiqa/reference/iw_ssim.py). Separable binom5 passes driven by per-axis tap
// tables, so the 'reflect1' borders and the zero-stuffed expansion are just table entries.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../iw_ssim.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

constexpr int kRowsPerChunk = 16;

// matlabPyrTools namedFilter('binom5'): sqrt(2)·[1 4 6 4 1]/16.
double binom5_tap(int t) {
  static const double counts[5] = {1, 4, 6, 4, 1};
  return std::sqrt(2.0) * counts[t] / 16;
}

// 'reflect1' (F.pad 'reflect'): mirror about the edge sample without repeating it.
int reflect(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

// Output sample o of a pass reads source[src[e]] · weight[e] for e in [first[o], first[o + 1]), in tap order.
template <typename T>
struct AxisTaps {
  std::vector<int> first, src;
  std::vector<T> weight;
  int outputs() const { return static_cast<int>(first.size()) - 1; }
};

// corrDn(binom5, 'reflect1', step 2): n samples -> ceil(n/2).
template <typename T>
AxisTaps<T> reduce_taps(int n) {
  AxisTaps<T> a;
  for (int o = 0; o < (n + 1) / 2; ++o) {
    a.first.push_back(static_cast<int>(a.src.size()));
    for (int t = 0; t < 5; ++t) {
      a.src.push_back(reflect(2 * o + t - 2, n));
      a.weight.push_back(static_cast<T>(binom5_tap(t)));
    }
  }
  a.first.push_back(static_cast<int>(a.src.size()));
  return a;
}

// upConv(binom5, 'reflect1', step 2) from `low` samples to n: the samples zero-stuffed to length `stuffed` (n for
// matlabPyrTools, 2·low for piq), mirrored, filtered and cut to n; the zeros contribute nothing and are skipped.
template <typename T>
AxisTaps<T> expand_taps(int n, int low, bool piq) {
  const int stuffed = piq ? 2 * low : n;
  AxisTaps<T> a;
  for (int o = 0; o < n; ++o) {
    a.first.push_back(static_cast<int>(a.src.size()));
    for (int t = 0; t < 5; ++t) {
      const int m = reflect(o + t - 2, stuffed);
      if (m % 2 == 0) {
        a.src.push_back(m / 2);
        a.weight.push_back(static_cast<T>(binom5_tap(t)));
      }
    }
  }
  a.first.push_back(static_cast<int>(a.src.size()));
  return a;
}

// Output o of a pass through its table (the border outputs, where the mirror folds taps).
template <typename T>
inline T tabled_output(const T* row, const AxisTaps<T>& taps, int o) {
  T acc = 0;
  for (int e = taps.first[o]; e < taps.first[o + 1]; ++e) acc += taps.weight[e] * row[taps.src[e]];
  return acc;
}

// corrDn along one row of n samples; the interior (no mirrored tap) with the taps inline, in the same order.
template <typename T>
void reduce_row(const T* __restrict row, int n, const AxisTaps<T>& taps, const T* w, T* __restrict out) {
  const int outputs = taps.outputs(), interior_end = std::max(1, (n - 1) / 2);  // 2o + 2 <= n - 1
  for (int o = 0; o < std::min(1, outputs); ++o) out[o] = tabled_output(row, taps, o);
  for (int o = 1; o < interior_end; ++o) {
    const T* x = row + 2 * o - 2;
    out[o] = T(0) + w[0] * x[0] + w[1] * x[1] + w[2] * x[2] + w[3] * x[3] + w[4] * x[4];
  }
  for (int o = std::max(1, interior_end); o < outputs; ++o) out[o] = tabled_output(row, taps, o);
}

// upConv along one row: output 2q reads low[q-1], low[q], low[q+1] (taps 0, 2, 4), output 2q+1 low[q], low[q+1]
// (taps 1, 3) wherever no tap is mirrored (2q + 3 < stuffed length); the rest through the table.
template <typename T>
void expand_row(const T* __restrict low, int n, int stuffed, const AxisTaps<T>& taps, const T* w,
                T* __restrict out) {
  const int pairs_end = std::max(1, std::min((n - 1) / 2 + 1, (stuffed - 3) / 2));  // 2q+1 < n, 2q+3 <= stuffed-1
  for (int o = 0; o < std::min(2, n); ++o) out[o] = tabled_output(low, taps, o);
  for (int q = 1; q < pairs_end; ++q) {
    out[2 * q] = T(0) + w[0] * low[q - 1] + w[2] * low[q] + w[4] * low[q + 1];
    out[2 * q + 1] = T(0) + w[1] * low[q] + w[3] * low[q + 1];
  }
  for (int o = std::max(2, 2 * pairs_end); o < n; ++o) out[o] = tabled_output(low, taps, o);
}

// Along the second-last axis: out[o][:] = Σ weight · in[src][:], output rows [begin, end); whole rows vectorise.
template <typename T>
void filter_along_columns(const T* in, int width, const AxisTaps<T>& taps, T* out, int begin, int end) {
  for (int o = begin; o < end; ++o) {
    T* __restrict dst = out + static_cast<std::size_t>(o) * width;
    for (int c = 0; c < width; ++c) dst[c] = 0;
    for (int e = taps.first[o]; e < taps.first[o + 1]; ++e) {
      const T* __restrict src = in + static_cast<std::size_t>(taps.src[e]) * width;
      const T w = taps.weight[e];
      for (int c = 0; c < width; ++c) dst[c] += w * src[c];
    }
  }
}

// Runs body(plane, row_begin, row_end) over `rows` rows (of `width` outputs) of every plane in fixed chunks (no
// reductions: any split gives the same numbers). A pass is a few flops per output (~1 ns): a chunk of less than
// ~256k outputs costs about as much to hand to a helper thread as to run.
template <typename F>
void for_plane_rows(int64_t planes, int rows, int width, const F& body) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  const int64_t grain = std::max<int64_t>(1, 262144 / (int64_t{kRowsPerChunk} * width));
  parallel_chunks(planes * chunks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / chunks, chunk = task % chunks;
      body(p, static_cast<int>(chunk * kRowsPerChunk),
           static_cast<int>(std::min<int64_t>(rows, (chunk + 1) * kRowsPerChunk)));
    }
  });
}

template <typename T>
void laplacian_planes(const at::Tensor& x, bool piq, at::Tensor& band, at::Tensor& low) {
  const int64_t planes = x.size(0) * x.size(1);
  const int h = static_cast<int>(x.size(2)), w = static_cast<int>(x.size(3));
  const int hl = (h + 1) / 2, wl = (w + 1) / 2;
  const AxisTaps<T> reduce_w = reduce_taps<T>(w), reduce_h = reduce_taps<T>(h);
  const AxisTaps<T> expand_h = expand_taps<T>(h, hl, piq), expand_w = expand_taps<T>(w, wl, piq);
  T taps[5];
  for (int t = 0; t < 5; ++t) taps[t] = static_cast<T>(binom5_tap(t));
  // Half-width intermediate: the row-reduced image, then (reused) the column-expanded low-pass.
  at::Tensor half_t = at::empty({planes, h, wl}, x.options());
  T* half = half_t.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  T* lp = low.data_ptr<T>();
  T* bp = band.data_ptr<T>();
  const std::size_t full = static_cast<std::size_t>(h) * w, halfsize = static_cast<std::size_t>(h) * wl,
                    lowsize = static_cast<std::size_t>(hl) * wl;
  // buildLpyr: corrDn along the rows (last axis) then the columns; upConv along the columns then the rows.
  for_plane_rows(planes, h, wl, [&](int64_t p, int b, int e) {
    for (int i = b; i < e; ++i) reduce_row(xp + p * full + i * w, w, reduce_w, taps, half + p * halfsize + i * wl);
  });
  for_plane_rows(planes, hl, wl, [&](int64_t p, int b, int e) {
    filter_along_columns(half + p * halfsize, wl, reduce_h, lp + p * lowsize, b, e);
  });
  for_plane_rows(planes, h, wl, [&](int64_t p, int b, int e) {
    filter_along_columns(lp + p * lowsize, wl, expand_h, half + p * halfsize, b, e);
  });
  const int stuffed_w = piq ? 2 * wl : w;
  for_plane_rows(planes, h, w, [&](int64_t p, int b, int e) {
    std::vector<T> expanded(w);
    for (int i = b; i < e; ++i) {
      expand_row(half + p * halfsize + i * wl, w, stuffed_w, expand_w, taps, expanded.data());
      const T* src = xp + p * full + i * w;
      T* dst = bp + p * full + i * w;
      for (int c = 0; c < w; ++c) dst[c] = src[c] - expanded[c];
    }
  });
}

std::tuple<at::Tensor, at::Tensor> laplacian_level_cpu(const at::Tensor& planes_in, c10::string_view expand) {
  const bool piq = check_laplacian_level(planes_in, std::string(expand));
  const at::Tensor x = planes_in.contiguous();
  at::Tensor band = at::empty_like(x);
  at::Tensor low = at::empty({x.size(0), x.size(1), (x.size(2) + 1) / 2, (x.size(3) + 1) / 2}, x.options());
  if (x.numel() == 0) return {band, low};
  if (x.scalar_type() == at::kDouble)
    laplacian_planes<double>(x, piq, band, low);
  else
    laplacian_planes<float>(x, piq, band, low);
  return {band, low};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) { m.impl("laplacian_level", &laplacian_level_cpu); }

}  // namespace turboiqa::cpu
