// Shared by the sources compiled once per instruction set (ssim_rows.cpp, iw_ssim_rows.cpp): the ISA-specific
// function names and the GCC vector type of the widest registers the build targets. Include it only from those
// files: everything here lives in the per-ISA namespace, so no inline code is shared between ISA builds.
#pragma once

#include <cstring>

#ifndef TURBOIQA_ISA
#error "TURBOIQA_ISA must be defined"
#endif
#define TURBOIQA_CAT2(a, b) a##b
#define TURBOIQA_CAT(a, b) TURBOIQA_CAT2(a, b)
#define TURBOIQA_ISA_NS TURBOIQA_CAT(isa_, TURBOIQA_ISA)
#define TURBOIQA_ISA_NAME(name) TURBOIQA_CAT(name, TURBOIQA_CAT(_, TURBOIQA_ISA))

#if defined(__AVX512F__)
#define TURBOIQA_VEC_BYTES 64
#elif defined(__AVX__)
#define TURBOIQA_VEC_BYTES 32
#else
#define TURBOIQA_VEC_BYTES 16
#endif

namespace turboiqa::cpu::TURBOIQA_ISA_NS {
namespace {

template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(TURBOIQA_VEC_BYTES)));
  static constexpr int lanes = TURBOIQA_VEC_BYTES / sizeof(T);
};

template <typename V>
inline V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
inline void store(void* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

}  // namespace
}  // namespace turboiqa::cpu::TURBOIQA_ISA_NS
