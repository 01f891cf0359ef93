// CPU kernels of the spatial-pyramid histogram intersection (histogram.h) and the argument checks every device uses.
//
// Pass 1 sums each channel over every row segment of the finest level's cells (one task per image x channel for
// NCHW maps, per image x row for channels-last maps, which the CPU backbones hand over), in float64. Pass 2, per
// image, adds the rows of each finest cell in order, the 2 x 2 children of every coarser cell in order, and
// evaluates the cells. Every sum has a fixed order that depends on the shape only: results do not depend on the
// thread count. The backward's gradient is constant over a finest cell and channel: pass 2 computes it, a fill
// pass writes it.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "../feature_distance.h"  // gradient_like_input
#include "../histogram.h"
#include "parallel.h"

namespace turboiqa {

void check_histogram_args(const char* op, const at::Tensor& fd, const at::Tensor& fr, const at::Tensor& grad,
                          int64_t levels) {
  TORCH_CHECK(fd.dim() == 4, op, ": fd must be N x K x H x W, got shape ", fd.sym_sizes());
  TORCH_CHECK(fr.sym_sizes() == fd.sym_sizes(), op, ": fd and fr must have the same shape, got ", fd.sym_sizes(),
              " and ", fr.sym_sizes());
  const auto type = fd.scalar_type();
  TORCH_CHECK(type == at::kFloat || type == at::kDouble, op, ": fd must be float32 or float64, got ", type);
  TORCH_CHECK(fr.scalar_type() == type, op, ": fr must have fd's dtype (", type, "), got ", fr.scalar_type());
  TORCH_CHECK(fr.device() == fd.device(), op, ": fd and fr must be on the same device, got ", fd.device(), " and ",
              fr.device());
  TORCH_CHECK(fd.sym_size(1) > 0, op, ": fd needs at least one channel, got shape ", fd.sym_sizes());
  TORCH_CHECK(levels >= 1 && levels <= kMaxHistogramLevels, op, ": levels must be in [1, ", kMaxHistogramLevels,
              "], got ", levels);
  const int64_t cells = int64_t{1} << (levels - 1);
  TORCH_CHECK(fd.sym_size(2) >= cells && fd.sym_size(3) >= cells, op, ": levels=", levels, " splits the map into ",
              cells, " x ", cells, " cells, finer than the ", fd.sym_size(2), " x ", fd.sym_size(3),
              " feature map (H and W must be >= 2^(levels-1))");
  if (grad.defined()) {
    TORCH_CHECK(grad.dim() == 2 && grad.sym_size(0) == fd.sym_size(0) && grad.sym_size(1) == levels, op,
                ": grad must have shape (N, levels) = (", fd.sym_size(0), ", ", levels, "), got ", grad.sym_sizes());
    TORCH_CHECK(grad.device() == fd.device(), op, ": grad must be on fd's device (", fd.device(), "), got ",
                grad.device());
  }
}

namespace cpu {

namespace {

struct HistogramShape {
  int64_t batch, channels, height, width, levels, side;  // side: cells per axis at the finest level
  bool channels_last;
  int64_t finest_cells() const { return side * side; }
  int64_t all_cells() const { return level_offset(levels); }
};

HistogramShape histogram_shape(const at::Tensor& fd, int64_t levels, bool channels_last) {
  return {fd.size(0), fd.size(1), fd.size(2), fd.size(3), levels, int64_t{1} << (levels - 1), channels_last};
}

// Both maps in one memory format (channels-last kept when fd is channels-last, as the CPU backbones return it).
std::tuple<at::Tensor, at::Tensor, HistogramShape> prepare(const at::Tensor& fd, const at::Tensor& fr,
                                                           int64_t levels) {
  const bool channels_last = fd.is_contiguous(at::MemoryFormat::ChannelsLast) && !fd.is_contiguous();
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  return {fd.contiguous(format), fr.contiguous(format), histogram_shape(fd, levels, channels_last)};
}

// Tasks of about 64k values at least, so that small maps stay serial.
int64_t grain(int64_t values_per_task) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, values_per_task)); }

// Sum of n values from x, stride 1, in float64: four interleaved partial sums (fixed order), then combined.
template <typename T>
inline double run_sum(const T* __restrict x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += x[j];
    s1 += x[j + 1];
    s2 += x[j + 2];
    s3 += x[j + 3];
  }
  for (; j < n; ++j) s0 += x[j];
  return (s0 + s1) + (s2 + s3);
}

// Row segment sums, rows[((n * H + i) * side + cj) * K + k] = sum over the columns of finest cell cj in row i.
template <typename T>
std::vector<double> row_sums(const T* x, const HistogramShape& s) {
  const int64_t K = s.channels, H = s.height, W = s.width, side = s.side;
  std::vector<double> rows(s.batch * H * side * K);
  if (!s.channels_last) {
    parallel_chunks(s.batch * K, grain(H * W), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / K, k = task % K;
        const T* plane = x + (n * K + k) * H * W;
        for (int64_t i = 0; i < H; ++i)
          for (int64_t cj = 0; cj < side; ++cj) {
            const int64_t j0 = cell_start(cj, W, side), j1 = cell_start(cj + 1, W, side);
            rows[((n * H + i) * side + cj) * K + k] = run_sum(plane + i * W + j0, j1 - j0);
          }
      }
    });
  } else {
    parallel_chunks(s.batch * H, grain(W * K), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / H, i = task % H;
        const T* row = x + (n * H + i) * W * K;
        for (int64_t cj = 0; cj < side; ++cj) {
          double* acc = rows.data() + (task * side + cj) * K;
          std::fill(acc, acc + K, 0.0);
          for (int64_t j = cell_start(cj, W, side); j < cell_start(cj + 1, W, side); ++j) {
            const T* p = row + j * K;
            for (int64_t k = 0; k < K; ++k) acc[k] += p[k];
          }
        }
      }
    });
  }
  return rows;
}

// Channel sums of every cell of every level of image n, table[(level_offset(v) + ci * 2^v + cj) * K + k].
void cell_table(const std::vector<double>& rows, const HistogramShape& s, int64_t n, double* table) {
  const int64_t K = s.channels, H = s.height, side = s.side, L = s.levels;
  double* finest = table + level_offset(L - 1) * K;
  for (int64_t ci = 0; ci < side; ++ci)
    for (int64_t cj = 0; cj < side; ++cj) {
      double* cell = finest + (ci * side + cj) * K;
      std::fill(cell, cell + K, 0.0);
      for (int64_t i = cell_start(ci, H, side); i < cell_start(ci + 1, H, side); ++i) {
        const double* r = rows.data() + ((n * H + i) * side + cj) * K;
        for (int64_t k = 0; k < K; ++k) cell[k] += r[k];
      }
    }
  sum_coarser_levels(table, L, K);
}

template <typename T>
at::Tensor histogram_forward(const at::Tensor& a, const at::Tensor& b, const HistogramShape& s) {
  at::Tensor out = at::empty({s.batch, s.levels}, a.options().memory_format(at::MemoryFormat::Contiguous));
  const std::vector<double> rows_a = row_sums(a.data_ptr<T>(), s), rows_b = row_sums(b.data_ptr<T>(), s);
  T* o = out.data_ptr<T>();
  const int64_t K = s.channels;
  parallel_chunks(s.batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> ta(s.all_cells() * K), tb(s.all_cells() * K);
    for (int64_t n = begin; n < end; ++n) {
      cell_table(rows_a, s, n, ta.data());
      cell_table(rows_b, s, n, tb.data());
      for (int64_t v = 0; v < s.levels; ++v) {
        const int64_t cells = int64_t{1} << (2 * v);
        double sum = 0;
        for (int64_t c = 0; c < cells; ++c) {
          const int64_t at = (level_offset(v) + c) * K;
          sum += cell_similarity(ta.data() + at, tb.data() + at, K, 1);
        }
        o[n * s.levels + v] = static_cast<T>(sum / static_cast<double>(cells));
      }
    }
  });
  return out;
}

at::Tensor histogram_intersection_cpu(const at::Tensor& fd, const at::Tensor& fr, int64_t levels) {
  check_histogram_args("histogram_intersection", fd, fr, at::Tensor(), levels);
  auto [a, b, s] = prepare(fd, fr, levels);
  if (s.batch == 0) return at::empty({0, levels}, fd.options().memory_format(at::MemoryFormat::Contiguous));
  return a.scalar_type() == at::kDouble ? histogram_forward<double>(a, b, s) : histogram_forward<float>(a, b, s);
}

// Writes the gradient of one map from coef[(n * finest_cells + cell) * K + k].
template <typename T>
void fill_gradient(const std::vector<double>& coef, const HistogramShape& s, T* g) {
  const int64_t K = s.channels, H = s.height, W = s.width, side = s.side;
  if (!s.channels_last) {
    parallel_chunks(s.batch * K, grain(H * W), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / K, k = task % K;
        T* plane = g + task * H * W;
        for (int64_t i = 0; i < H; ++i) {
          const int64_t ci = cell_of(i, H, side);
          for (int64_t cj = 0; cj < side; ++cj) {
            const T value = static_cast<T>(coef[((n * side + ci) * side + cj) * K + k]);
            std::fill(plane + i * W + cell_start(cj, W, side), plane + i * W + cell_start(cj + 1, W, side), value);
          }
        }
      }
    });
  } else {
    parallel_chunks(s.batch * H, grain(W * K), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / H, i = task % H, ci = cell_of(i, H, side);
        T* row = g + task * W * K;
        for (int64_t cj = 0; cj < side; ++cj) {
          const double* c = coef.data() + ((n * side + ci) * side + cj) * K;
          for (int64_t j = cell_start(cj, W, side); j < cell_start(cj + 1, W, side); ++j)
            for (int64_t k = 0; k < K; ++k) row[j * K + k] = static_cast<T>(c[k]);
        }
      }
    });
  }
}

template <typename T>
void histogram_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b, const HistogramShape& s,
                        at::Tensor& ga, at::Tensor& gb) {
  const std::vector<double> rows_a = row_sums(a.data_ptr<T>(), s), rows_b = row_sums(b.data_ptr<T>(), s);
  const int64_t K = s.channels, side = s.side, L = s.levels, all = s.all_cells();
  std::vector<double> coef_a(s.batch * s.finest_cells() * K), coef_b(coef_a.size());
  const T* g = grad.data_ptr<T>();
  parallel_chunks(s.batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> ta(all * K), tb(all * K), da(all * K), db(all * K);
    for (int64_t n = begin; n < end; ++n) {
      cell_table(rows_a, s, n, ta.data());
      cell_table(rows_b, s, n, tb.data());
      std::fill(da.begin(), da.end(), 0.0);
      std::fill(db.begin(), db.end(), 0.0);
      for (int64_t v = 0; v < L; ++v) {
        const int64_t cells = int64_t{1} << (2 * v);
        const double scale = static_cast<double>(g[n * L + v]) / static_cast<double>(cells);
        for (int64_t c = 0; c < cells; ++c) {
          const int64_t at = (level_offset(v) + c) * K;
          cell_similarity_backward(ta.data() + at, tb.data() + at, K, 1, scale, da.data() + at, db.data() + at);
        }
      }
      // A finest cell's coefficient: its ancestors' gradients added from level 0 down.
      for (int64_t ci = 0; ci < side; ++ci)
        for (int64_t cj = 0; cj < side; ++cj) {
          double* ca = coef_a.data() + ((n * side + ci) * side + cj) * K;
          double* cb = coef_b.data() + ((n * side + ci) * side + cj) * K;
          std::fill(ca, ca + K, 0.0);
          std::fill(cb, cb + K, 0.0);
          for (int64_t v = 0; v < L; ++v) {
            const int64_t shift = L - 1 - v, m = int64_t{1} << v;
            const int64_t at = (level_offset(v) + (ci >> shift) * m + (cj >> shift)) * K;
            for (int64_t k = 0; k < K; ++k) {
              ca[k] += da[at + k];
              cb[k] += db[at + k];
            }
          }
        }
    }
  });
  fill_gradient(coef_a, s, ga.data_ptr<T>());
  fill_gradient(coef_b, s, gb.data_ptr<T>());
}

std::tuple<at::Tensor, at::Tensor> histogram_intersection_backward_cpu(const at::Tensor& grad, const at::Tensor& fd,
                                                                       const at::Tensor& fr, int64_t levels) {
  check_histogram_args("_histogram_intersection_backward", fd, fr, grad, levels);
  auto [a, b, s] = prepare(fd, fr, levels);
  at::Tensor ga = at::empty_like(a), gb = at::empty_like(b);
  if (s.batch > 0) {
    const at::Tensor g = grad.to(a.scalar_type()).contiguous();
    if (a.scalar_type() == at::kDouble)
      histogram_backward<double>(g, a, b, s, ga, gb);
    else
      histogram_backward<float>(g, a, b, s, ga, gb);
  }
  return {gradient_like_input(fd, ga), gradient_like_input(fr, gb)};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("histogram_intersection", &histogram_intersection_cpu);
  m.impl("_histogram_intersection_backward", &histogram_intersection_backward_cpu);
}

}  // namespace cpu

}  // namespace turboiqa
