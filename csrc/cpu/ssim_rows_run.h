// Calling the ISA-dispatched SSIM row kernel (ssim_rows.h) from the operator entry points: the build picked at
// run time and the per-thread scratch it needs. Shared by ssim_stats.cpp and iw_ssim.cpp.
#pragma once

#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dispatch.h"
#include "ssim_rows.h"

namespace turboiqa::cpu {

template <typename In, typename Acc>
void run_ssim_rows(const SsimRowsArgs<In, Acc>& args) {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return ssim_rows_avx512(args);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return ssim_rows_avx2(args);
#endif
    default: return ssim_rows_baseline(args);
  }
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// Zeroed, 64-byte aligned scratch kept per worker thread across calls: video scoring calls the kernel per frame,
// and a fresh half-megabyte buffer each time would cost page faults and a memset. The kernel needs zeros past the
// padded width of every row and never writes there, so the buffer is zeroed only when the size or the row layout
// (`layout`, which fixes where those columns are) changes; rows themselves are overwritten before use.
template <typename Acc>
Acc* ssim_rows_thread_scratch(std::size_t elems, int64_t layout) {
  thread_local std::unique_ptr<char, AlignedFree> buffer;
  thread_local std::size_t capacity = 0, zeroed_bytes = 0;
  thread_local int64_t zeroed_layout = -1;
  const std::size_t bytes = (elems * sizeof(Acc) + 63) / 64 * 64;
  if (bytes > capacity) {
    buffer.reset(static_cast<char*>(std::aligned_alloc(64, bytes)));
    TORCH_CHECK(buffer, "ssim kernels: out of memory for ", bytes, " bytes of scratch");
    capacity = bytes;
    zeroed_bytes = 0;
  }
  const int64_t key = layout * 16 + static_cast<int64_t>(sizeof(Acc));
  if (zeroed_bytes != bytes || zeroed_layout != key) {
    std::memset(buffer.get(), 0, bytes);
    zeroed_bytes = bytes;
    zeroed_layout = key;
  }
  return reinterpret_cast<Acc*>(buffer.get());
}

}  // namespace turboiqa::cpu
