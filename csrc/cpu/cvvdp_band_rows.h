// The row loops of the cvvdp_band_pool kernel (cvvdp_band.cpp), compiled once per instruction set like ssim_rows;
// cvvdp_band.cpp picks one at run time. Raw pointers only, rows of `w` samples. float rows use vectorisable exp/log
// (Cephes polynomials, about 1 ulp; powers as exp(q log x)); double rows use the C library's.
#pragma once

#include <cstdint>

namespace turboiqa::cpu {

template <typename T>
struct CvvdpRowConsts {
  T lo, scale, top;  // CSF grid: position (log L - lo) scale, clamped to [0, top]
  T eps, eps_p, p, dmax;
};

// srgb: the three display-encoded planes x[0..2] (w samples) -> out[c] = sum_k m[3c + k] eotf(clamp(x_k / data_range,
// 0, 1)) + bias[c] (sRGB EOTF); srgb_grad: d/dx of sum_c grad_c out_c.
// One channel row: s = 10^(csf(l)) gain, tp = t s, rp = r s, mm = min(|tp|, |rp|); table: that channel's L values.
// axpy: dst = a src (assign) or dst += a src, the blurs' taps. diff_row: the visible difference D of a channel row
// (pool_row's, before the square). mix_t_row: gsum_k = sum_i xcm[i C + k] gmask_i. chain_row: the backward's last
// step for a channel row (d / d tp, rp, the masker minimum -> dt, dr; dl = or += the log-luminance term; ds: w
// scratch for the sensitivity's slope, from table and k like prepare_row).
#define TURBOIQA_DECLARE_CVVDP_ROWS(isa, T)                                                                          \
  void cvvdp_prepare_row_##isa(const T* t, const T* r, const T* l, int64_t w, const T* table, int64_t len,         \
                               const CvvdpRowConsts<T>& k, T gain, T* s, T* tp, T* rp, T* mm);                    \
  void cvvdp_spow_row_##isa(const T* m, int64_t w, T q, T eps, T eps_q, T* out);                                   \
  double cvvdp_pool_row_##isa(const T* mq, int c, const T* xrow, const T* tp, const T* rp, int64_t w,              \
                              const CvvdpRowConsts<T>& k, T* scratch);                                             \
  void cvvdp_grad_row_##isa(const T* mq, int c, const T* xrow, const T* tp, const T* rp, int64_t w,                \
                            const CvvdpRowConsts<T>& k, T go, T* ge, T* gmask);                                    \
  void cvvdp_dpow_row_##isa(const T* m, const T* g, int64_t w, T q, T eps, T* out);                             \
  void cvvdp_srgb_row_##isa(const T* const* x, int64_t w, const T* m, const T* bias, T data_range, T* const* out);  \
  void cvvdp_srgb_grad_row_##isa(const T* const* grad, const T* const* x, int64_t w, const T* m, T data_range,     \
                                 T* const* out);                                                                   \
  void cvvdp_axpy_row_##isa(const T* src, int64_t w, T a, T* dst, bool assign);                                    \
  void cvvdp_diff_row_##isa(const T* mq, int c, const T* xrow, const T* tp, const T* rp, int64_t w,               \
                            const CvvdpRowConsts<T>& k, T* out);                                                   \
  void cvvdp_mix_t_row_##isa(const T* gmask, int c, const T* xcm, int64_t w, T* gsum);                            \
  void cvvdp_chain_row_##isa(const T* tp, const T* rp, const T* sg, const T* t, const T* r, const T* gmin,         \
                             const T* ge, const T* l, const T* table, int64_t len, const CvvdpRowConsts<T>& k,     \
                             int64_t w, T* dt, T* dr, T* dl, bool first, T* ds);

TURBOIQA_DECLARE_CVVDP_ROWS(baseline, float)
TURBOIQA_DECLARE_CVVDP_ROWS(baseline, double)
TURBOIQA_DECLARE_CVVDP_ROWS(avx2, float)
TURBOIQA_DECLARE_CVVDP_ROWS(avx2, double)
TURBOIQA_DECLARE_CVVDP_ROWS(avx512, float)
TURBOIQA_DECLARE_CVVDP_ROWS(avx512, double)

}  // namespace turboiqa::cpu
