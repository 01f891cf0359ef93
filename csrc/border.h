// Border extension rules shared by the CPU and CUDA kernels (and mirrored by python/turboiqa/padding.py).
#pragma once

#if defined(__CUDACC__)
#define HOST_DEVICE_INLINE __host__ __device__ __forceinline__
#else
#define HOST_DEVICE_INLINE inline
#endif

namespace turboiqa {

// Order matters: the integer codes travel from the string parsed in the entry points to the kernels.
enum class Border : int { Valid = 0, Zeros = 1, Symmetric = 2, Reflect = 3, Replicate = 4 };

// Index of the input sample seen at position i of a line of n samples extended by `mode`; -1 means "zero".
HOST_DEVICE_INLINE int border_index(int i, int n, Border mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case Border::Symmetric: {  // MATLAB imfilter 'symmetric': x(-1) = x(0)
      int m = i % (2 * n);
      if (m < 0) m += 2 * n;
      return m >= n ? 2 * n - 1 - m : m;
    }
    case Border::Reflect: {  // x(-1) = x(1)
      if (n == 1) return 0;
      int period = 2 * n - 2;
      int m = i % period;
      if (m < 0) m += period;
      return m >= n ? period - m : m;
    }
    case Border::Replicate:
      return i < 0 ? 0 : n - 1;
    default:
      return -1;
  }
}

}  // namespace turboiqa
