#include "dispatch.h"

#include <cstdlib>
#include <cstring>

namespace turboiqa::cpu {

namespace {
bool cpu_has(const char* feature) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!std::strcmp(feature, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!std::strcmp(feature, "avx512"))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
#endif
  (void)feature;
  return false;
}

Isa detect() {
  // TURBOIQA_CPU_ISA=baseline|avx2|avx512 caps the choice (benchmarks and tests of each build).
  const char* cap = std::getenv("TURBOIQA_CPU_ISA");
  const bool allow512 = !cap || !std::strcmp(cap, "avx512");
  const bool allow2 = allow512 || !std::strcmp(cap, "avx2");
#ifdef TURBOIQA_HAVE_AVX512
  if (allow512 && cpu_has("avx512")) return Isa::Avx512;
#endif
#ifdef TURBOIQA_HAVE_AVX2
  if (allow2 && cpu_has("avx2")) return Isa::Avx2;
#endif
  (void)allow2;
  (void)allow512;
  return Isa::Baseline;
}
}  // namespace

Isa selected_isa_enum() {
  static const Isa isa = detect();
  return isa;
}

std::string selected_isa() {
  switch (selected_isa_enum()) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "baseline";
  }
}

std::string compiled_isas() {
  std::string s = "baseline";
#ifdef TURBOIQA_HAVE_AVX2
  s += ",avx2";
#endif
#ifdef TURBOIQA_HAVE_AVX512
  s += ",avx512";
#endif
  return s;
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace turboiqa::cpu
