// psnr_db: PSNR from the per-image squared-error sums of squared_error_sum; argument checks shared by the CPU,
// CUDA and Meta entries. The dB conversion and the batch reduction run inside the operator because after a kernel that
// streamed a frame through the cache every further tensor op (Python or ATen) costs tens of microseconds of cache
// misses, as much as the uint8 kernel's own margin over its peers.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "image_ops.h"

namespace turboiqa {

inline void check_psnr_args(const at::Tensor& x, const at::Tensor& y, double data_range, double eps,
                            const std::string& reduction) {
  check_pair_images(x, y, "psnr_db");
  TORCH_CHECK(std::isfinite(data_range) && data_range > 0, "psnr_db: data_range must be a positive finite number, got ",
              data_range);
  TORCH_CHECK(std::isfinite(eps) && eps >= 0, "psnr_db: eps must be finite and >= 0, got ", eps);
  TORCH_CHECK(reduction == "none" || reduction == "mean" || reduction == "sum",
              "psnr_db: reduction must be 'none', 'mean' or 'sum', got '", reduction, "'");
}

// One image's PSNR from its squared-error sum; scale = count * L^2. Identical images (sse = 0) give +inf, capped
// at max_db; a NaN sum stays NaN. (The CUDA entry computes the same formula with ATen ops on the device.)
inline double psnr_decibels(double sse, double scale, double eps, double max_db) {
  return std::min(-10.0 * std::log10(sse / scale + eps), max_db);  // std::min(NaN, cap) is NaN
}

}  // namespace turboiqa
