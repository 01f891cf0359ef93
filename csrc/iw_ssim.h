// Argument checks of IW-SSIM's per-band operators (iw_neighbour_covariance, iw_pooled_cs, laplacian_level), shared
// by the CPU entries (cpu/iw_ssim.cpp, cpu/laplacian_pyramid.cpp) and the Meta kernels (meta/ops_meta.cpp), so
// sizes are read as sym_sizes.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "cpu/iw_ssim_rows.h"  // kIwMaxComponents
#include "ssim_stats.h"        // check_window

namespace turboiqa {

inline void check_band(const at::Tensor& band, const char* op, const char* name) {
  TORCH_CHECK(band.dim() == 4, op, ": ", name, " must be N x C x H x W, got shape ", band.sym_sizes());
  TORCH_CHECK(band.scalar_type() == at::kFloat || band.scalar_type() == at::kDouble, op, ": ", name,
              " must be float32 or float64 (a band in the compute dtype), got ", band.scalar_type());
}

inline void check_blk_size(int64_t blk_size, const char* op) {
  TORCH_CHECK(blk_size >= 1 && blk_size % 2 == 1 && blk_size * blk_size < cpu::kIwMaxComponents, op,
              ": blk_size must be odd and 1…7, got ", blk_size);
}

inline void check_parent(const std::optional<at::Tensor>& parent, const at::Tensor& band, const char* op) {
  if (!parent) return;
  check_band(*parent, op, "parent");
  TORCH_CHECK(parent->scalar_type() == band.scalar_type(), op, ": parent must have the dtype of the band, got ",
              parent->scalar_type(), " and ", band.scalar_type());
  TORCH_CHECK(parent->sym_size(0) == band.sym_size(0) && parent->sym_size(1) == band.sym_size(1), op,
              ": parent must have the band's N x C planes, got ", parent->sym_sizes(), " for a band of ",
              band.sym_sizes());
  TORCH_CHECK(parent->sym_size(2) >= 1 && parent->sym_size(3) >= 1, op, ": parent must not be empty, got ",
              parent->sym_sizes());
}

// The neighbourhood vectors' length K: blk_size² samples plus the parent's.
inline int64_t iw_components(int64_t blk_size, const std::optional<at::Tensor>& parent) {
  return blk_size * blk_size + (parent ? 1 : 0);
}

inline void check_iw_neighbour_covariance(const at::Tensor& band, const std::optional<at::Tensor>& parent,
                                          int64_t blk_size) {
  constexpr const char* op = "iw_neighbour_covariance";
  check_band(band, op, "band");
  check_blk_size(blk_size, op);
  check_parent(parent, band, op);
  TORCH_CHECK(band.sym_size(2) >= blk_size && band.sym_size(3) >= blk_size, op, ": band ", band.sym_size(2), "x",
              band.sym_size(3), " is smaller than the ", blk_size, "x", blk_size, " neighbourhood");
}

inline void check_iw_pooled_cs(const at::Tensor& ref, const at::Tensor& dist, const std::optional<at::Tensor>& parent,
                               const at::Tensor& inverse, const at::Tensor& eigenvalues, int64_t blk_size,
                               at::ArrayRef<double> window, double sigma_nsq) {
  constexpr const char* op = "iw_pooled_cs";
  check_band(ref, op, "ref");
  check_band(dist, op, "dist");
  TORCH_CHECK(ref.sym_sizes() == dist.sym_sizes(), op, ": ref and dist must have the same shape, got ",
              ref.sym_sizes(), " and ", dist.sym_sizes());
  TORCH_CHECK(ref.scalar_type() == dist.scalar_type(), op, ": ref and dist must have the same dtype, got ",
              ref.scalar_type(), " and ", dist.scalar_type());
  check_blk_size(blk_size, op);
  check_parent(parent, ref, op);
  check_window(op, window);
  const int64_t ws = static_cast<int64_t>(window.size());
  TORCH_CHECK(blk_size <= ws, op, ": blk_size (", blk_size, ") must not exceed the window length (", ws,
              "): the weights are taken where the cs map is");
  TORCH_CHECK(ref.sym_size(2) >= ws && ref.sym_size(3) >= ws, op, ": band ", ref.sym_size(2), "x", ref.sym_size(3),
              " is smaller than the ", ws, "x", ws, " window");
  TORCH_CHECK(sigma_nsq > 0, op, ": sigma_nsq must be positive, got ", sigma_nsq);
  const c10::SymInt& n = ref.sym_size(0);
  const c10::SymInt& c = ref.sym_size(1);
  const int64_t k = iw_components(blk_size, parent);
  TORCH_CHECK(inverse.dim() == 4 && inverse.sym_size(0) == n && inverse.sym_size(1) == c && inverse.sym_size(2) == k &&
                  inverse.sym_size(3) == k,
              op, ": inverse must be N x C x K x K with K = ", k, " (blk_size² + parent), got ", inverse.sym_sizes());
  TORCH_CHECK(eigenvalues.dim() == 3 && eigenvalues.sym_size(0) == n && eigenvalues.sym_size(1) == c &&
                  eigenvalues.sym_size(2) == k,
              op, ": eigenvalues must be N x C x K with K = ", k, ", got ", eigenvalues.sym_sizes());
  TORCH_CHECK(at::isFloatingType(inverse.scalar_type()) && at::isFloatingType(eigenvalues.scalar_type()), op,
              ": inverse and eigenvalues must be floating point");
}

// laplacian_level's checks; returns whether the expansion is piq's (else matlabPyrTools').
inline bool check_laplacian_level(const at::Tensor& planes, const std::string& expand) {
  constexpr const char* op = "laplacian_level";
  TORCH_CHECK(planes.dim() == 4, op, ": planes must be N x C x H x W, got shape ", planes.sym_sizes());
  TORCH_CHECK(planes.scalar_type() == at::kFloat || planes.scalar_type() == at::kDouble, op,
              ": planes must be float32 or float64, got ", planes.scalar_type());
  TORCH_CHECK(planes.sym_size(2) >= 3 && planes.sym_size(3) >= 3, op,
              ": planes must be at least 3x3 ('reflect1' borders of the 5-tap filter), got ", planes.sym_sizes());
  TORCH_CHECK(expand == "matlab" || expand == "piq", op, ": expand must be 'matlab' or 'piq', got '", expand, "'");
  return expand == "piq";
}

}  // namespace turboiqa
