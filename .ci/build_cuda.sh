#!/usr/bin/env bash
# Build and install turboiqa with the CUDA kernels into the active Python environment.
# Needs: a CUDA build of torch already installed in that environment (plus scikit-build-core, pybind11, cmake,
# ninja, since the build runs without isolation), and nvcc on PATH or under $CUDA_HOME/bin or /usr/local/cuda/bin.
#
#   . /path/to/venv/bin/activate && .ci/build_cuda.sh [extra pip args]
#
# Environment: TORCH_CUDA_ARCH_LIST (default 9.0; torch's own default list includes archs nvcc 13 rejects),
# PYTHON (default python), CUDA_nvrtc_LIBRARY (default: the toolkit's libnvrtc, else the one in torch's
# nvidia-*-nvrtc wheel), TURBOIQA_BUILD_DIR (default build/cuda, apart from the CPU build's build/{wheel_tag}).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export TURBOIQA_CUDA=ON
BUILD_DIR=${TURBOIQA_BUILD_DIR:-build/cuda}

if ! command -v nvcc >/dev/null 2>&1; then
  for d in "${CUDA_HOME:-}/bin" /usr/local/cuda/bin; do
    if [[ -x "$d/nvcc" ]]; then
      export PATH="$d:$PATH"
      break
    fi
  done
fi
command -v nvcc >/dev/null 2>&1 || { echo "build_cuda.sh: nvcc not found (set CUDA_HOME or PATH)" >&2; exit 1; }
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'build_cuda.sh: torch ' + torch.__version__ + ' is not a CUDA build')"

# torch's CMake config (Caffe2/public/cuda.cmake) wants libnvrtc; toolkits without it can use the pip wheel's.
if [[ -z "${CUDA_nvrtc_LIBRARY:-}" ]]; then
  nvcc_root=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  for cand in "$nvcc_root"/lib64/libnvrtc.so "$nvcc_root"/lib/libnvrtc.so; do
    if [[ -e "$cand" ]]; then CUDA_nvrtc_LIBRARY=$cand; break; fi
  done
fi
if [[ -z "${CUDA_nvrtc_LIBRARY:-}" ]]; then
  CUDA_nvrtc_LIBRARY=$("$PYTHON" - <<'PY'
import glob, os, site, sysconfig
roots = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
hits = sorted({h for r in roots for h in glob.glob(os.path.join(r, "nvidia", "*", "lib", "libnvrtc.so.*"))
               if "builtins" not in h and ".alt." not in h})
print(hits[0] if hits else "")
PY
)
fi
nvrtc_args=()
if [[ -n "$CUDA_nvrtc_LIBRARY" ]]; then
  nvrtc_args=("-Ccmake.define.CUDA_nvrtc_LIBRARY=$CUDA_nvrtc_LIBRARY")
else
  echo "build_cuda.sh: warning: no libnvrtc found; torch's CMake config may fail" >&2
fi

echo "build_cuda.sh: nvcc=$(command -v nvcc) TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST nvrtc=${CUDA_nvrtc_LIBRARY:-none}"
exec "$PYTHON" -m pip install --no-build-isolation --no-deps -v . "-Cbuild-dir=$BUILD_DIR" "${nvrtc_args[@]}" "$@"
