// Run-time choice of the instruction set for the CPU kernels.
#pragma once

#include <string>

namespace turboiqa::cpu {

enum class Isa { Baseline, Avx2, Avx512 };

Isa selected_isa_enum();
std::string selected_isa();
std::string compiled_isas();
bool openmp_enabled();

}  // namespace turboiqa::cpu
