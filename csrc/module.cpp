// The importable extension module: loading it registers the operators; build_info() says what was compiled.
#include <pybind11/pybind11.h>

#include <string>

#include "cpu/dispatch.h"

namespace py = pybind11;

#ifndef TURBOIQA_TORCH_VERSION
#define TURBOIQA_TORCH_VERSION "unknown"
#endif
#ifndef TURBOIQA_CUDA_ARCHS
#define TURBOIQA_CUDA_ARCHS ""
#endif

PYBIND11_MODULE(_C, m) {
  m.def("build_info", []() {
    py::dict info;
    info["cpu_isa_compiled"] = turboiqa::cpu::compiled_isas();
    info["cpu_isa_selected"] = turboiqa::cpu::selected_isa();
    info["openmp"] = turboiqa::cpu::openmp_enabled();
#ifdef TURBOIQA_WITH_CUDA
    info["cuda"] = true;
#else
    info["cuda"] = false;
#endif
    info["cuda_archs"] = std::string(TURBOIQA_CUDA_ARCHS);
#ifdef TURBOIQA_SANITIZE
    info["sanitizers"] = "address,undefined";
#else
    info["sanitizers"] = "";
#endif
    info["torch_version_built"] = std::string(TURBOIQA_TORCH_VERSION);
    return info;
  });
}
