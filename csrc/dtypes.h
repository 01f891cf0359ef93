// The compute/result dtype rule of every kernel (mirrored by python/turboiqa/dtypes.py): float64 input computes
// in float64, everything else (uint8, float16, bfloat16, float32) in float32.
#pragma once

#include <ATen/ATen.h>

namespace turboiqa {

inline at::ScalarType compute_type(at::ScalarType input) { return input == at::kDouble ? at::kDouble : at::kFloat; }

}  // namespace turboiqa
