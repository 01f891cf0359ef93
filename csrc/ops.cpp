// Every operator schema of the library, in one place. Implementations register per device in cpu/ and cuda/.
#include <torch/library.h>

TORCH_LIBRARY(turboiqa, m) {
  m.set_python_module("turboiqa._ops");
  // Per-plane means of the SSIM map and the contrast-structure map over a separable window, (N, C) each.
  // padding: 'valid' | 'zeros' | 'symmetric' | 'reflect' | 'replicate'. cov_norm scales the (co)variances
  // (1 = population, n/(n-1) = sample covariance as in scikit-image's default).
  m.def(
      "ssim_stats(Tensor x, Tensor y, float[] window, float c1, float c2, str padding, float cov_norm) "
      "-> (Tensor, Tensor)");
  m.def(
      "_ssim_stats_backward(Tensor grad_ssim, Tensor grad_cs, Tensor x, Tensor y, float[] window, float c1, "
      "float c2, str padding, float cov_norm) -> (Tensor, Tensor)");
}
