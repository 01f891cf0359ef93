// Closed forms of the ColorVideoVDP pyramid's per-axis tap tables (csrc/cvvdp_tables.h: reduce_rows, reduce_cols,
// expand_taps), evaluated per output sample inside the CUDA kernels of cvvdp_pyramid.cu instead of being built on
// the host and copied to the device on every call. Nothing is allocated or copied, so the operator is safe under
// CUDA-graph capture and needs no table cache.
//
// for_each_tap(axis, o, f) calls f(source, weight) for the entries of output o in exactly the order in which the
// host builders add them, with the same weights (the same double expressions of kPyramidA), so the kernels sum the
// same products in the same order as with the tables. The transposed tables (the backward's gathers) list, for each
// source s, the entries (o, weight) that read s in (o, entry) order; transposed_outputs(axis, s) bounds the outputs
// that can read s, and the kernels scan them in ascending order, keeping the entries whose source is s.
//
// Host-compilable (no CUDA-only constructs outside the macro): a host program compared for_each_tap and the
// transposed scan with the host builders for every n <= 1200 (reduce_rows, reduce_cols both parities, expand n -> 2n
// and (n + 1) / 2 -> n): same sources, bitwise-equal weights, same order.
#pragma once

#include <cstdint>

#include "../cvvdp_tables.h"

#if defined(__CUDACC__)
#define TURBOIQA_PYR_HD __host__ __device__ __forceinline__
#else
#define TURBOIQA_PYR_HD inline
#endif

namespace turboiqa::cuda::pyr {

enum AxisKind : int { kReduceRows = 0, kReduceCols = 1, kExpand = 2 };

// One axis of a separable pass: `sources` input samples -> `outputs` output samples.
struct Axis {
  int kind;
  int odd_rows;  // kReduceCols: the plane has an odd number of rows (cvvdp's last-output correction)
  int64_t sources, outputs;
};

inline Axis reduce_rows_axis(int64_t n) { return Axis{kReduceRows, 0, n, (n + 1) / 2}; }
inline Axis reduce_cols_axis(int64_t n, bool odd_rows) { return Axis{kReduceCols, odd_rows ? 1 : 0, n, (n + 1) / 2}; }
inline Axis expand_axis(int64_t n, int64_t size) { return Axis{kExpand, 0, n, size}; }

// kPyramidK[t] (cvvdp_tables.h), as the same constant expressions.
TURBOIQA_PYR_HD double tap_weight(int t) {
  return t == 2 ? cvvdp::kPyramidA : (t == 1 || t == 3 ? 0.25 : 0.25 - cvvdp::kPyramidA / 2);
}

TURBOIQA_PYR_HD int64_t clamp_to(int64_t i, int64_t n) { return i < 0 ? 0 : (i > n - 1 ? n - 1 : i); }

// f may be a device lambda (the kernels) or a host one (the check program).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <typename F>
TURBOIQA_PYR_HD void for_each_tap(const Axis& a, int64_t o, F&& f) {
  const int64_t n = a.sources;
  if (a.kind == kExpand) {
    const int64_t i = o / 2;
    if (o % 2 == 0) {
      f(clamp_to(i - 1, n), 2 * tap_weight(0));
      f(i, 2 * tap_weight(2));
      f(clamp_to(i + 1, n), 2 * tap_weight(4));
    } else {
      f(i, 2 * tap_weight(1));
      f(clamp_to(i + 1, n), 2 * tap_weight(3));
    }
    return;
  }
  for (int t = 0; t < 5; ++t) {
    int64_t i = 2 * o + t - 2;
    if (a.kind == kReduceRows) {
      i = i < 0 ? -i - 1 : (i >= n ? 2 * n - 1 - i : i);  // symmetric edges
    } else {
      if (i >= n) continue;  // zeros beyond the right edge
      i = i < 0 ? -i - 1 : i;
    }
    f(clamp_to(i, n), tap_weight(t));
  }
  if (a.kind == kReduceCols && o == a.outputs - 1) {
    if (a.odd_rows) {
      f(n - 1, tap_weight(3));
      f(clamp_to(n - 2, n), tap_weight(4));
    } else {
      f(n - 1, tap_weight(4));
    }
  }
}

// The outputs [lo, hi] whose entries can read source s. Every entry of a reduce output o reads a source within
// [2o - 2, 2o + 2] (the reflections and clamps move indices inwards), so o is in [s/2 - 1, s/2 + 1]; every entry of
// an expand output o reads within [o/2 - 1, o/2 + 1], so o is in [2s - 2, 2s + 3].
TURBOIQA_PYR_HD void transposed_outputs(const Axis& a, int64_t s, int64_t& lo, int64_t& hi) {
  if (a.kind == kExpand) {
    lo = 2 * s - 2;
    hi = 2 * s + 3;
  } else {
    lo = s / 2 - 1;
    hi = s / 2 + 1;
  }
  lo = lo < 0 ? 0 : lo;
  hi = hi > a.outputs - 1 ? a.outputs - 1 : hi;
}

}  // namespace turboiqa::cuda::pyr
