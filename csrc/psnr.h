// PSNR from the per-image squared-error sums (squared_error_sum), shared by the CPU and CUDA entries (both compiled
// by the host compiler). Doing the dB conversion and the reduction here, in a handful of ATen calls on N values,
// saves the Python-level tensor ops after the kernel: after streaming a frame through the cache each of those
// costs tens of microseconds, as much as the uint8 kernel's own margin.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "dtypes.h"

namespace turboiqa {

inline void check_psnr_args(double data_range, double eps, const std::string& reduction) {
  TORCH_CHECK(data_range > 0, "psnr_db: data_range must be positive, got ", data_range);
  TORCH_CHECK(eps >= 0, "psnr_db: eps must be >= 0, got ", eps);
  TORCH_CHECK(reduction == "none" || reduction == "mean" || reduction == "sum",
              "psnr_db: reduction must be 'none', 'mean' or 'sum', got '", reduction, "'");
}

// -10 log10(sse / count / L^2 + eps) per image in float64, capped at max_db, reduced in float64, then cast to the
// compute dtype of `input_type`. An image whose sum is NaN gets NaN extrema, so one look at the extrema tells the
// caller about NaN as well as Inf and the range. CPU sums are finished in a plain loop into one new tensor (every
// extra ATen call costs cache misses in the dispatcher after the kernel), CUDA sums with ATen ops on the device;
// the tests hold both to the reference twin.
inline std::tuple<at::Tensor, at::Tensor> psnr_from_sums(const at::Tensor& sse, at::Tensor extrema, int64_t count,
                                                         at::ScalarType input_type, double data_range, double eps,
                                                         double max_db, const std::string& reduction) {
  const double scale = static_cast<double>(count) * data_range * data_range;
  const auto out_type = compute_type(input_type);
  if (sse.is_cpu()) {
    const int64_t n = sse.numel();
    const double* s = sse.data_ptr<double>();
    double* e = extrema.data_ptr<double>();
    at::Tensor out = reduction == "none" ? at::empty({n}, sse.options().dtype(out_type))
                                         : at::empty({}, sse.options().dtype(out_type));
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double db = std::min(-10.0 * std::log10(s[i] / scale + eps), max_db);  // NaN stays NaN
      if (std::isnan(s[i])) e[4 * i] = e[4 * i + 1] = e[4 * i + 2] = e[4 * i + 3] = std::nan("");
      if (reduction == "none") {
        if (out_type == at::kDouble)
          out.data_ptr<double>()[i] = db;
        else
          out.data_ptr<float>()[i] = static_cast<float>(db);
      }
      total += db;
    }
    if (reduction != "none") {
      const double value = reduction == "mean" ? total / static_cast<double>(n) : total;
      if (out_type == at::kDouble)
        *out.data_ptr<double>() = value;
      else
        *out.data_ptr<float>() = static_cast<float>(value);
    }
    return {out, extrema};
  }
  at::Tensor db = at::log10(sse / scale + eps) * -10.0;
  if (max_db < std::numeric_limits<double>::infinity()) db = at::clamp_max(db, max_db);
  if (reduction == "mean") db = db.mean();
  if (reduction == "sum") db = db.sum();
  extrema = at::where(at::isnan(sse).unsqueeze(1), std::numeric_limits<double>::quiet_NaN(), extrema);
  return {db.to(out_type), extrema};
}

}  // namespace turboiqa
