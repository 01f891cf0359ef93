#!/usr/bin/env bash
# GPU check (adapted from ../shared/gpu-check.sh): on a machine with an NVIDIA GPU, nvcc and a CUDA build of
# PyTorch already installed, with NO network. Builds the extension against that torch for this GPU's arch only,
# runs the whole test suite (CUDA tests must run, not skip), then the benchmarks with CUDA rows.
# Writes logs and benchmark JSON to $OUT (or ./gpu-check-out). Keeps the whole run under ~8 minutes.
set -u -o pipefail
out=${OUT:-./gpu-check-out}; mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
# Peers missing from the GPU image travel as wheels in .whl (see bench/README.md, "GPU check").
if [ -d .whl ]; then
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $py -c 'import torch,sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())'
  nvcc --version | tail -1
} 2>&1 | tee "$out/env.txt"

cc=$($py -c 'import torch; M,m=torch.cuda.get_device_capability(); print(f"{M}.{m}")')
export TORCH_CUDA_ARCH_LIST="$cc" CMAKE_CUDA_ARCHITECTURES="${cc/./}" CMAKE_BUILD_PARALLEL_LEVEL=16 MAX_JOBS=16
export TURBOIQA_CUDA=ON
SECONDS=0
# Build tools must already be there (no network): scikit-build-core, pybind11, cmake >= 3.26, ninja.
timeout 200 $py -m pip install --no-build-isolation --no-deps -q . -Cbuild-dir=build/gpu-check 2>&1 | tail -40 | tee "$out/build.txt"
echo "build: rc=${PIPESTATUS[0]} ${SECONDS}s" | tee -a "$out/build.txt"
$py -c 'import turboiqa; print(turboiqa.build_info())' 2>&1 | tee -a "$out/build.txt"

# Bad arguments must raise, not crash: if the probe dies, rerun it under cuda-gdb for the native backtrace.
if ! timeout 60 $py tests/cuda_error_probe.py cuda > "$out/probe.txt" 2>&1; then
  echo "probe FAILED; backtrace:" >> "$out/probe.txt"
  timeout 90 cuda-gdb -batch -ex run -ex bt -ex quit --args $py tests/cuda_error_probe.py cuda 2>&1 \
    | grep -v "^\[New Thread\|^\[Thread" | tail -60 >> "$out/probe.txt"
fi
cat "$out/probe.txt"

SECONDS=0
( cd "$(mktemp -d)" && timeout 170 $py -m pytest -q -rs --maxfail=30 --durations=15 -p no:cacheprovider "$OLDPWD/tests" 2>&1 ) | tail -80 | tee "$out/tests.txt"
echo "tests: ${SECONDS}s" | tee -a "$out/tests.txt"

# Benchmarks: the CUDA rows only (this machine's CPU is not the one the CPU tables were measured on).
SECONDS=0
( cd "$(mktemp -d)" && timeout 110 $py -m pytest -q -p no:cacheprovider "$OLDPWD/bench/bench_metrics.py" \
    "$OLDPWD/bench/bench_fsim_iwssim.py" --benchmark-only -k "cuda" --benchmark-json="$out/bench.json" \
    --benchmark-columns=median,iqr,rounds 2>&1 ) | tail -80 | tee "$out/bench.txt"
echo "bench: ${SECONDS}s" | tee -a "$out/bench.txt"
$py bench/make_table.py "$out/bench.json" > "$out/bench-table.md" 2>&1 || true
