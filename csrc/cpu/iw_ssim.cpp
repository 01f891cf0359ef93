// CPU implementation of turboiqa::iw_neighbour_covariance and turboiqa::iw_pooled_cs (IW-SSIM's per-band work;
// schemas and what they compute in ops.cpp, the PyTorch twins in python/turboiqa/reference/iw_ssim.py).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../dtypes.h"
#include "../iw_ssim.h"
#include "../ssim_stats.h"
#include "dispatch.h"
#include "iw_ssim_rows.h"
#include "parallel.h"
#include "ssim_rows_run.h"

namespace turboiqa::cpu {

namespace {

constexpr int kCovarianceRows = 16;  // grid rows per covariance chunk: fixed, so sums never depend on threads
constexpr int kStripRows = 32;       // cs-grid rows per pooling chunk

template <typename T>
void run_covariance_rows(const IwCovarianceArgs<T>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return iw_covariance_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return iw_covariance_rows_avx2(args);
#endif
    default: return iw_covariance_rows_baseline(args);
  }
}

template <typename T>
void run_weight_rows(const IwWeightArgs<T>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return iw_weight_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return iw_weight_rows_avx2(args);
#endif
    default: return iw_weight_rows_baseline(args);
  }
}

// Row scratch reused by a thread across chunks and calls: a fresh buffer per strip would be a fresh mmap (it is
// above malloc's threshold at 1080p) and its page faults. Slot 0 and 1 are distinct buffers.
template <typename T>
T* thread_buffer(int slot, std::size_t elems) {
  thread_local std::vector<T> buffers[2];
  std::vector<T>& buffer = buffers[slot];
  if (buffer.size() < elems) buffer.resize(elems);
  return buffer.data();
}

// Sampling of iwssim.m's imenlarge2 along one axis of m parent samples, output indices [start, start + count):
// the formula of the twin's _enlarge_axis, in the same float64 operations.
template <typename T>
struct EnlargeAxis {
  std::vector<int> low, high;
  std::vector<T> frac;

  EnlargeAxis(int64_t m, int64_t start, int64_t count) : low(count), high(count), frac(count) {
    const double ratio = static_cast<double>(m) / static_cast<double>(4 * m - 3);
    for (int64_t i = 0; i < count; ++i) {
      const double j = static_cast<double>(2 * (start + i) - 1);
      const double u = std::clamp((j + 0.5) * ratio - 0.5, 0.0, static_cast<double>(m - 1));
      const double lo = std::floor(u);
      low[i] = static_cast<int>(lo);
      high[i] = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(lo) + 1, m - 1));
      frac[i] = static_cast<T>(u - lo);
    }
  }
};

// The parent of a band, its enlargement tables and the neighbourhood geometry, shared by both operators.
template <typename T>
struct Neighbourhoods {
  int64_t planes, height, width, parent_height = 0, parent_width = 0;
  int blk, offset;
  const T* band;
  const T* parent = nullptr;
  std::vector<EnlargeAxis<T>> axes;  // rows, columns (empty without a parent)

  // Grid position (r, c) <-> blk x blk block at band rows r + offset …; the enlarged parent sample there is
  // imenlarge2's (r + offset + blk/2, c + offset + blk/2), the block's centre.
  Neighbourhoods(const at::Tensor& band_t, const c10::optional<at::Tensor>& parent_t, int blk_size, int grid_offset,
                 int64_t grid_height, int64_t grid_width)
      : planes(band_t.size(0) * band_t.size(1)),
        height(band_t.size(2)),
        width(band_t.size(3)),
        blk(blk_size),
        offset(grid_offset),
        band(band_t.data_ptr<T>()) {
    if (parent_t) {
      parent = parent_t->data_ptr<T>();
      parent_height = parent_t->size(2);
      parent_width = parent_t->size(3);
      const int centre = grid_offset + blk_size / 2;
      axes.emplace_back(parent_height, centre, grid_height);
      axes.emplace_back(parent_width, centre, grid_width);
    }
  }

  IwNeighbourhood<T> plane(int64_t p) const {
    IwNeighbourhood<T> h;
    h.band = band + p * height * width;
    h.width = static_cast<int>(width);
    h.blk = blk;
    h.offset = offset;
    if (parent) {
      h.parent = parent + p * parent_height * parent_width;
      h.parent_width = static_cast<int>(parent_width);
      h.parent_row_low = axes[0].low.data();
      h.parent_row_high = axes[0].high.data();
      h.parent_row_frac = axes[0].frac.data();
      h.parent_col_low = axes[1].low.data();
      h.parent_col_high = axes[1].high.data();
      h.parent_col_frac = axes[1].frac.data();
    }
    return h;
  }

  int components() const { return blk * blk + (parent ? 1 : 0); }
};

template <typename T>
void covariance_planes(const at::Tensor& band, const c10::optional<at::Tensor>& parent, int blk, at::Tensor& out) {
  const int64_t grid_height = band.size(2) - blk + 1, grid_width = band.size(3) - blk + 1;
  const Neighbourhoods<T> hoods(band, parent, blk, 0, grid_height, grid_width);
  const int k = hoods.components();
  const int64_t chunks = (grid_height + kCovarianceRows - 1) / kCovarianceRows;
  std::vector<double> partial(hoods.planes * chunks * k * k, 0.0);
  const std::size_t scratch_elems = iw_rows_scratch_size(static_cast<int>(hoods.width),
                                                         static_cast<int>(hoods.parent_width));
  parallel_chunks(hoods.planes * chunks, 1, [&](int64_t begin, int64_t end) {
    T* scratch = thread_buffer<T>(0, scratch_elems);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / chunks, chunk = task % chunks;
      IwCovarianceArgs<T> a;
      a.hood = hoods.plane(p);
      a.grid_width = static_cast<int>(grid_width);
      a.row_begin = static_cast<int>(chunk * kCovarianceRows);
      a.row_end = static_cast<int>(std::min<int64_t>(grid_height, (chunk + 1) * kCovarianceRows));
      a.scratch = scratch;
      a.sums = partial.data() + task * k * k;
      run_covariance_rows(a);
    }
  });
  // Chunks combined in order; the kernel fills the upper triangle only.
  const double positions = static_cast<double>(grid_height * grid_width);
  T* o = out.data_ptr<T>();
  for (int64_t p = 0; p < hoods.planes; ++p) {
    for (int i = 0; i < k; ++i) {
      for (int j = i; j < k; ++j) {
        double total = 0;
        for (int64_t c = 0; c < chunks; ++c) total += partial[((p * chunks + c) * k + i) * k + j];
        o[(p * k + i) * k + j] = o[(p * k + j) * k + i] = static_cast<T>(total / positions);
      }
    }
  }
}

at::Tensor iw_neighbour_covariance_cpu(const at::Tensor& band_in, const c10::optional<at::Tensor>& parent_in,
                                       int64_t blk_size) {
  check_iw_neighbour_covariance(band_in, parent_in, blk_size);
  const int64_t k = iw_components(blk_size, parent_in);
  at::Tensor out = at::empty({band_in.size(0), band_in.size(1), k, k}, band_in.options());
  if (band_in.numel() == 0) return out;
  const at::Tensor band = band_in.contiguous();
  const c10::optional<at::Tensor> parent =
      parent_in ? c10::optional<at::Tensor>(parent_in->contiguous()) : c10::nullopt;
  if (band.scalar_type() == at::kDouble)
    covariance_planes<double>(band, parent, static_cast<int>(blk_size), out);
  else
    covariance_planes<float>(band, parent, static_cast<int>(blk_size), out);
  return out;
}

template <typename T>
void pooled_planes(const at::Tensor& ref, const at::Tensor& dist, const c10::optional<at::Tensor>& parent,
                   const at::Tensor& inverse, const at::Tensor& eigenvalues, int blk, const std::vector<double>& window,
                   double c2, double sigma_nsq, double tol, at::Tensor& weighted_cs, at::Tensor& weight_sum) {
  const int ws = static_cast<int>(window.size());
  const int64_t height = ref.size(2), width = ref.size(3);
  const int64_t out_height = height - ws + 1, out_width = width - ws + 1;
  // The weight grid aligned with the 'valid' cs map (iw_ssim.py's crop): block centre = window centre.
  const Neighbourhoods<T> hoods(ref, parent, blk, ws / 2 - blk / 2, out_height, out_width);
  const int k = hoods.components();
  const at::Tensor lambda_t = eigenvalues.to(at::kDouble).contiguous();
  const std::vector<double> lambda(lambda_t.data_ptr<double>(), lambda_t.data_ptr<double>() + lambda_t.numel());
  const T* inverse_p = inverse.data_ptr<T>();
  const T* dist_p = dist.data_ptr<T>();
  const std::vector<T> taps(window.begin(), window.end());
  const std::vector<int> identity_rows = [&] {
    std::vector<int> map(std::max(height, width));
    for (std::size_t i = 0; i < map.size(); ++i) map[i] = static_cast<int>(i);
    return map;
  }();

  const int64_t strips = (out_height + kStripRows - 1) / kStripRows;
  std::vector<double> row_weighted_cs(hoods.planes * out_height), row_weight(hoods.planes * out_height);
  std::vector<double> row_weighted_ssim(hoods.planes * out_height);  // computed by the row kernel, unused
  const int pad = ssim_rows_weight_padding();
  const std::size_t weight_stride = (out_width + pad - 1) / pad * pad;
  const std::size_t iw_scratch_elems = iw_rows_scratch_size(static_cast<int>(width),
                                                            static_cast<int>(hoods.parent_width));
  const std::size_t ssim_scratch_elems = ssim_rows_scratch_size(static_cast<int>(width), ws);

  parallel_chunks(hoods.planes * strips, 1, [&](int64_t begin, int64_t end) {
    T* iw_scratch = thread_buffer<T>(0, iw_scratch_elems);
    T* weights = thread_buffer<T>(1, kStripRows * weight_stride);
    T* ssim_scratch = ssim_rows_thread_scratch<T>(ssim_scratch_elems, width * 64 + ws);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / strips, strip = task % strips;
      const int row_begin = static_cast<int>(strip * kStripRows);
      const int row_end = static_cast<int>(std::min<int64_t>(out_height, (strip + 1) * kStripRows));

      IwWeightArgs<T> w;
      w.hood = hoods.plane(p);
      w.dist = dist_p + p * height * width;
      w.grid_width = static_cast<int>(out_width);
      w.inverse = inverse_p + p * k * k;
      w.eigenvalues = lambda.data() + p * k;
      w.sigma_nsq = sigma_nsq;
      w.tol = tol;
      w.row_begin = row_begin;
      w.row_end = row_end;
      w.scratch = iw_scratch;
      w.weights = weights;
      w.weight_stride = weight_stride;
      w.row_weight_sums = row_weight.data() + p * out_height;
      run_weight_rows(w);

      // cs of the band pair (no shift: band-pass bands are zero-mean), each pixel times its weight.
      SsimRowsArgs<T, T> s;
      s.x = w.hood.band;
      s.y = w.dist;
      s.height = static_cast<int>(height);
      s.width = static_cast<int>(width);
      s.row_map = identity_rows.data();
      s.col_map = identity_rows.data();
      s.padded_height = static_cast<int>(height);
      s.padded_width = static_cast<int>(width);
      s.pad_left = 0;
      s.window = taps.data();
      s.window_size = ws;
      s.c1 = T(1);  // only the cs sums are used; the SSIM sums (row_weighted_ssim) are a by-product
      s.c2 = static_cast<T>(c2);
      s.cov_norm = T(1);
      s.shift = T(0);
      s.out_width = static_cast<int>(out_width);
      s.row_begin = row_begin;
      s.row_end = row_end;
      s.scratch = ssim_scratch;
      s.row_ssim = row_weighted_ssim.data() + p * out_height;
      s.row_cs = row_weighted_cs.data() + p * out_height;
      s.pixel_weight = weights;
      s.weight_stride = weight_stride;
      run_ssim_rows(s);
    }
  });

  double* cs_out = weighted_cs.data_ptr<double>();
  double* w_out = weight_sum.data_ptr<double>();
  for (int64_t p = 0; p < hoods.planes; ++p) {
    double total_cs = 0, total_w = 0;
    for (int64_t i = 0; i < out_height; ++i) {
      total_cs += row_weighted_cs[p * out_height + i];
      total_w += row_weight[p * out_height + i];
    }
    cs_out[p] = total_cs;
    w_out[p] = total_w;
  }
}

std::tuple<at::Tensor, at::Tensor> iw_pooled_cs_cpu(const at::Tensor& ref_in, const at::Tensor& dist_in,
                                                    const c10::optional<at::Tensor>& parent_in,
                                                    const at::Tensor& inverse_in, const at::Tensor& eigenvalues_in,
                                                    int64_t blk_size, at::ArrayRef<double> window, double c2,
                                                    double sigma_nsq, double tol) {
  check_iw_pooled_cs(ref_in, dist_in, parent_in, inverse_in, eigenvalues_in, blk_size, window, sigma_nsq);
  const int64_t n = ref_in.size(0), c = ref_in.size(1);

  at::Tensor weighted_cs = at::empty({n, c}, ref_in.options().dtype(at::kDouble));
  at::Tensor weight_sum = at::empty({n, c}, ref_in.options().dtype(at::kDouble));
  if (n * c == 0) return {weighted_cs, weight_sum};
  const auto dt = ref_in.scalar_type();
  const at::Tensor ref = ref_in.contiguous(), dist = dist_in.contiguous();
  const at::Tensor inverse = inverse_in.to(dt).contiguous();
  const c10::optional<at::Tensor> parent =
      parent_in ? c10::optional<at::Tensor>(parent_in->contiguous()) : c10::nullopt;
  const std::vector<double> taps = normalized_window(window);
  if (dt == at::kDouble)
    pooled_planes<double>(ref, dist, parent, inverse, eigenvalues_in, static_cast<int>(blk_size), taps, c2,
                          sigma_nsq, tol, weighted_cs, weight_sum);
  else
    pooled_planes<float>(ref, dist, parent, inverse, eigenvalues_in, static_cast<int>(blk_size), taps, c2,
                         sigma_nsq, tol, weighted_cs, weight_sum);
  return {weighted_cs, weight_sum};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("iw_neighbour_covariance", &iw_neighbour_covariance_cpu);
  m.impl("iw_pooled_cs", &iw_pooled_cs_cpu);
}

}  // namespace turboiqa::cpu
