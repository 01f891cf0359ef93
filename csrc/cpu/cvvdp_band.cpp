// CPU implementation of turboiqa::cvvdp_band_pool and its backward: one Laplacian band of ColorVideoVDP fused into
// one pass (castleCSF look-up, contrast, 'mult-mutual' masking with the 13-tap blurred masker and the cross-channel
// mix, the soft-clamped difference and its per-band pooling), schema in ops.cpp, PyTorch twin in
// python/turboiqa/reference/cvvdp_band.py.
//
// Work is split into tasks (image, strip of kStripRows rows). A task computes the sensitivities, the scaled
// contrasts and the mutual masker min(|T|, |R|) for its rows plus the blur's halo (6 rows each side; 12 for the
// backward, whose transposed blur needs the masker's gradient 6 rows beyond the strip), then blurs and pools row by
// row: the only buffers are the strip's (no image-sized temporaries). The pointwise row loops (exp/log heavy) are
// compiled per instruction set (cvvdp_band_rows.cpp); the blurs and the bookkeeping are here. Each task writes its own float64 partial
// sums, added in task order afterwards: the result does not depend on the thread count.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "../cvvdp_band.h"
#include "../cvvdp_tables.h"
#include "../cvvdp_weber.h"
#include "cvvdp_band_rows.h"
#include "dispatch.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

constexpr int64_t kStripRows = 64;
// The backward's strips are taller: it recomputes a 12-row halo each side (24 rows of the prepare step, 12 of the
// gradient rows), 1.75x and 1.4x the strip's own rows at 64, 1.2x and 1.1x at 128.
constexpr int64_t kBackwardStripRows = 128;
constexpr int kRadius = cvvdp::kBlurRadius;
constexpr int kTaps = cvvdp::kBlurTaps;
constexpr double kLn10 = 2.302585092994045684;

// F.pad 'reflect': mirror about the edge sample without repeating it (n > kRadius when the blur runs).
inline int64_t reflect(int64_t i, int64_t n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

template <typename T>
struct Params {
  int64_t n = 0, c = 0, h = 0, w = 0, len = 0;
  std::vector<T> csf;  // C x L, log10 sensitivity
  T lo = 0, scale = 0, top = 0;
  T gain[kCvvdpMaxChannels], q[kCvvdpMaxChannels], eps_q[kCvvdpMaxChannels];
  T xcm[kCvvdpMaxChannels * kCvvdpMaxChannels];
  T p = 0, eps_p = 0, dmax = 0, eps = 0, mask_c = 0;
  T gv[kTaps], gh[kTaps];  // vertical taps carry mask_c
  bool blur = false;
  CvvdpRowConsts<T> k{};
  // vertical transposed blur: for each row i, the (source row, weight) pairs
  std::vector<int64_t> vt_first, vt_row;
  std::vector<T> vt_weight;
};

template <typename T>
Params<T> make_params(const at::Tensor& test, at::ArrayRef<double> csf, double lo, double hi,
                      at::ArrayRef<double> gain, at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm,
                      double mask_c, double mask_p, double d_max, bool transposed) {
  Params<T> P;
  cvvdp::fill_band_constants<T>(P, test, static_cast<int64_t>(csf.size()), lo, hi, gain, mask_q, xcm, mask_c, mask_p,
                                d_max);
  P.csf.assign(csf.begin(), csf.end());
  P.k = CvvdpRowConsts<T>{P.lo, P.scale, P.top, P.eps, P.eps_p, P.p, P.dmax};
  if (P.blur && transposed) {
    std::vector<std::vector<std::pair<int64_t, T>>> lists(P.h);
    for (int64_t j = 0; j < P.h; ++j)
      for (int k = 0; k < kTaps; ++k) lists[reflect(j + k - kRadius, P.h)].emplace_back(j, P.gv[k]);
    for (int64_t i = 0; i < P.h; ++i) {
      P.vt_first.push_back(static_cast<int64_t>(P.vt_row.size()));
      for (const auto& [j, wgt] : lists[i]) {
        P.vt_row.push_back(j);
        P.vt_weight.push_back(wgt);
      }
    }
    P.vt_first.push_back(static_cast<int64_t>(P.vt_row.size()));
  }
  return P;
}

template <typename T>
struct RowFns {
  void (*prepare)(const T*, const T*, const T*, int64_t, const T*, int64_t, const CvvdpRowConsts<T>&, T, T*, T*, T*,
                  T*);
  void (*spow)(const T*, int64_t, T, T, T, T*);
  double (*pool)(const T*, int, const T*, const T*, const T*, int64_t, const CvvdpRowConsts<T>&, T*);
  void (*grad)(const T*, int, const T*, const T*, const T*, int64_t, const CvvdpRowConsts<T>&, T, T*, T*);
  void (*dpow)(const T*, const T*, int64_t, T, T, T*);
  void (*srgb)(const T* const*, int64_t, const T*, const T*, T, T* const*);
  void (*srgb_grad)(const T* const*, const T* const*, int64_t, const T*, T, T* const*);
  void (*axpy)(const T*, int64_t, T, T*, bool);
  void (*diff)(const T*, int, const T*, const T*, const T*, int64_t, const CvvdpRowConsts<T>&, T*);
  void (*mix_t)(const T*, int, const T*, int64_t, T*);
  void (*chain)(const T*, const T*, const T*, const T*, const T*, const T*, const T*, const T*, const T*, int64_t,
                const CvvdpRowConsts<T>&, int64_t, T*, T*, T*, bool, T*);
};

#define TURBOIQA_CVVDP_FNS(isa)                                                                              \
  RowFns<T> {                                                                                                \
    &cvvdp_prepare_row_##isa, &cvvdp_spow_row_##isa, &cvvdp_pool_row_##isa, &cvvdp_grad_row_##isa,          \
        &cvvdp_dpow_row_##isa, &cvvdp_srgb_row_##isa, &cvvdp_srgb_grad_row_##isa, &cvvdp_axpy_row_##isa,    \
        &cvvdp_diff_row_##isa, &cvvdp_mix_t_row_##isa, &cvvdp_chain_row_##isa                               \
  }

template <typename T>
RowFns<T> row_fns() {
  switch (selected_isa_enum()) {
#ifdef TURBOIQA_HAVE_AVX512
    case Isa::Avx512: return TURBOIQA_CVVDP_FNS(avx512);
#endif
#ifdef TURBOIQA_HAVE_AVX2
    case Isa::Avx2: return TURBOIQA_CVVDP_FNS(avx2);
#endif
    default: return TURBOIQA_CVVDP_FNS(baseline);
  }
}

// Rows [a0, a1) of image b: sensitivities, scaled contrasts and the mutual masker, stored [channel][row - a0][x].
template <typename T>
void prepare_rows(const Params<T>& P, const RowFns<T>& F, const T* t, const T* r, const T* lb, int64_t b, int64_t a0,
                  int64_t a1, T* s, T* tp, T* rp, T* mm) {
  const int64_t w = P.w, rows = a1 - a0;
  for (int64_t k = 0; k < P.c; ++k)
    for (int64_t i = a0; i < a1; ++i) {
      const int64_t src = ((b * P.c + k) * P.h + i) * w, dst = (k * rows + (i - a0)) * w;
      F.prepare(t + src, r + src, lb + (b * P.h + i) * w, w, P.csf.data() + k * P.len, P.len, P.k, P.gain[k],
                s + dst, tp + dst, rp + dst, mm + dst);
    }
}

// The blurred masker (mask_c included) of row i, all channels, into m[channel][x]; mm holds rows from a0 (rows of
// them per channel). pad: C x (w + 2 kRadius) scratch. The taps run as row axpys (per-ISA builds).
template <typename T>
void masker_row(const Params<T>& P, const RowFns<T>& F, const T* mm, int64_t a0, int64_t rows, int64_t i, T* pad,
                T* m) {
  const int64_t w = P.w, wp = w + 2 * kRadius;
  for (int64_t k = 0; k < P.c; ++k) {
    T* out = m + k * w;
    if (!P.blur) {
      F.axpy(mm + (k * rows + (i - a0)) * w, w, P.mask_c, out, true);
      continue;
    }
    T* v = pad + k * wp + kRadius;
    for (int t = 0; t < kTaps; ++t)
      F.axpy(mm + (k * rows + (reflect(i + t - kRadius, P.h) - a0)) * w, w, P.gv[t], v, t == 0);
    for (int d = 1; d <= kRadius; ++d) {
      v[-d] = v[d];
      v[w - 1 + d] = v[w - 1 - d];
    }
    for (int t = 0; t < kTaps; ++t) F.axpy(v - kRadius + t, w, P.gh[t], out, t == 0);
  }
}

template <typename T>
struct Buffers {
  std::vector<T> s, tp, rp, mm, pad, m, mq, gm, ge, u;
};

template <typename T>
Buffers<T>& thread_buffers() {
  thread_local Buffers<T> b;
  return b;
}

inline int64_t strips_of(int64_t h, int64_t rows = kStripRows) { return (h + rows - 1) / rows; }

// The forward's strips (forward and difference): for every task (image b, strip of kStripRows rows) in parallel, the
// prepare step, then per row i of the strip the masker's powers into B.mq and row(task, b, i, B, off0): the channel-k
// row of the strip buffers starts at off0 + k rows w.
template <typename T, typename Row>
void for_masked_rows(const Params<T>& P, const RowFns<T>& F, const T* t, const T* r, const T* lb, const Row& row) {
  const int64_t strips = strips_of(P.h), tasks = P.n * strips, C = P.c, w = P.w;
  const int64_t halo = P.blur ? kRadius : 0;
  parallel_chunks(tasks, 1, [&](int64_t begin, int64_t end) {
    Buffers<T>& B = thread_buffers<T>();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / strips, r0 = (task % strips) * kStripRows, r1 = std::min(P.h, r0 + kStripRows);
      const int64_t a0 = std::max<int64_t>(0, r0 - halo), a1 = std::min(P.h, r1 + halo), rows = a1 - a0;
      const size_t size = static_cast<size_t>(C * rows * w);
      for (auto* v : {&B.s, &B.tp, &B.rp, &B.mm}) v->resize(size);
      B.pad.resize(C * (w + 2 * kRadius));
      B.m.resize(C * w);
      B.mq.resize(C * w);
      prepare_rows(P, F, t, r, lb, b, a0, a1, B.s.data(), B.tp.data(), B.rp.data(), B.mm.data());
      for (int64_t i = r0; i < r1; ++i) {
        masker_row(P, F, B.mm.data(), a0, rows, i, B.pad.data(), B.m.data());
        for (int64_t k = 0; k < C; ++k)
          F.spow(B.m.data() + k * w, w, P.q[k], P.eps, P.eps_q[k], B.mq.data() + k * w);
        row(task, b, i, B, (i - a0) * w, rows * w);
      }
    }
  });
}

template <typename T>
void forward(const Params<T>& P, const T* t, const T* r, const T* lb, double* out) {
  const int64_t strips = strips_of(P.h), C = P.c, w = P.w;
  std::vector<double> partial(P.n * strips * C, 0.0);  // per task, summed in task order: thread-count independent
  const RowFns<T> F = row_fns<T>();
  for_masked_rows(P, F, t, r, lb, [&](int64_t task, int64_t, int64_t, Buffers<T>& B, int64_t off0, int64_t plane) {
    for (int64_t k = 0; k < C; ++k) {
      const int64_t off = off0 + k * plane;
      partial[task * C + k] += F.pool(B.mq.data(), static_cast<int>(C), P.xcm + k * C, B.tp.data() + off,
                                      B.rp.data() + off, w, P.k, B.pad.data());
    }
  });
  for (int64_t b = 0; b < P.n; ++b)
    for (int64_t k = 0; k < C; ++k) {
      double s = 0;
      for (int64_t st = 0; st < strips; ++st) s += partial[(b * strips + st) * C + k];
      out[b * C + k] = s;
    }
}

// The per-pixel visible difference D (N x C x H x W), the heat map's input.
template <typename T>
void difference(const Params<T>& P, const T* t, const T* r, const T* lb, T* out) {
  const int64_t C = P.c, w = P.w;
  const RowFns<T> F = row_fns<T>();
  for_masked_rows(P, F, t, r, lb, [&](int64_t, int64_t b, int64_t i, Buffers<T>& B, int64_t off0, int64_t plane) {
    for (int64_t k = 0; k < C; ++k) {
      const int64_t off = off0 + k * plane;
      F.diff(B.mq.data(), static_cast<int>(C), P.xcm + k * C, B.tp.data() + off, B.rp.data() + off, w, P.k,
             out + ((b * C + k) * P.h + i) * w);
    }
  });
}

template <typename T>
void backward(const Params<T>& P, const double* grad, const T* t, const T* r, const T* lb, T* dt, T* dr, T* dl) {
  const int64_t strips = strips_of(P.h, kBackwardStripRows), tasks = P.n * strips, C = P.c, w = P.w, wp = w + 2 * kRadius;
  const int64_t halo = P.blur ? kRadius : 0;
  const RowFns<T> F = row_fns<T>();
  parallel_chunks(tasks, 1, [&](int64_t begin, int64_t end) {
    Buffers<T>& B = thread_buffers<T>();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / strips, r0 = (task % strips) * kBackwardStripRows,
                    r1 = std::min(P.h, r0 + kBackwardStripRows);
      const int64_t j0 = std::max<int64_t>(0, r0 - halo), j1 = std::min(P.h, r1 + halo), jrows = j1 - j0;
      const int64_t a0 = std::max<int64_t>(0, j0 - halo), a1 = std::min(P.h, j1 + halo), rows = a1 - a0;
      const size_t size = static_cast<size_t>(C * rows * w);
      for (auto* v : {&B.s, &B.tp, &B.rp, &B.mm}) v->resize(size);
      B.pad.resize(C * wp);
      B.m.resize(C * w);
      B.mq.resize(C * w);
      B.gm.resize(C * jrows * w);
      B.ge.resize(C * jrows * w);
      B.u.resize(C * wp);
      T go[kCvvdpMaxChannels];
      for (int64_t k = 0; k < C; ++k) go[k] = static_cast<T>(grad[b * C + k]);
      prepare_rows(P, F, t, r, lb, b, a0, a1, B.s.data(), B.tp.data(), B.rp.data(), B.mm.data());
      // d / d (blurred masker) and d / d |T - R| on the rows J = [j0, j1)
      for (int64_t j = j0; j < j1; ++j) {
        masker_row(P, F, B.mm.data(), a0, rows, j, B.pad.data(), B.m.data());
        for (int64_t k = 0; k < C; ++k)
          F.spow(B.m.data() + k * w, w, P.q[k], P.eps, P.eps_q[k], B.mq.data() + k * w);
        T* gmask = B.pad.data();  // C x w: d / d masker_k (the pad scratch is free again)
        for (int64_t k = 0; k < C; ++k) {
          const int64_t off = (k * rows + (j - a0)) * w;
          F.grad(B.mq.data(), static_cast<int>(C), P.xcm + k * C, B.tp.data() + off, B.rp.data() + off, w, P.k,
                 go[k], B.ge.data() + (k * jrows + (j - j0)) * w, gmask + k * w);
        }
        T* gsum = B.mq.data();  // the powers are spent: d / d (masker power)_k = sum_i xcm[i, k] gmask_i
        F.mix_t(gmask, static_cast<int>(C), P.xcm, w, gsum);
        for (int64_t k = 0; k < C; ++k)
          F.dpow(B.m.data() + k * w, gsum + k * w, w, P.q[k], P.eps, B.gm.data() + (k * jrows + (j - j0)) * w);
      }
      // transposed blur to d / d min(|T|, |R|), then the chain to the inputs, row by row over the strip
      for (int64_t i = r0; i < r1; ++i) {
        for (int64_t k = 0; k < C; ++k) {
          T* g = B.m.data() + k * w;  // d / d mm of row i
          if (!P.blur) {
            F.axpy(B.gm.data() + (k * jrows + (i - j0)) * w, w, P.mask_c, g, true);
            continue;
          }
          T* u = B.u.data() + k * wp;
          for (int64_t e = P.vt_first[i]; e < P.vt_first[i + 1]; ++e)
            F.axpy(B.gm.data() + (k * jrows + (P.vt_row[e] - j0)) * w, w, P.vt_weight[e], u, e == P.vt_first[i]);
          T* pad = B.pad.data() + k * wp;
          std::fill(pad, pad + wp, T(0));
          for (int tap = 0; tap < kTaps; ++tap) F.axpy(u, w, P.gh[tap], pad + tap, false);
          for (int64_t x = 0; x < w; ++x) g[x] = pad[x + kRadius];
          for (int d = 1; d <= kRadius; ++d) {
            g[d] += pad[kRadius - d];
            g[w - 1 - d] += pad[w - 1 + kRadius + d];
          }
        }
        const T* lrow = lb + (b * P.h + i) * w;
        T* dlrow = dl + (b * P.h + i) * w;
        for (int64_t k = 0; k < C; ++k) {
          const int64_t off = (k * rows + (i - a0)) * w;
          const int64_t src = ((b * C + k) * P.h + i) * w;
          F.chain(B.tp.data() + off, B.rp.data() + off, B.s.data() + off, t + src, r + src, B.m.data() + k * w,
                  B.ge.data() + (k * jrows + (i - j0)) * w, lrow, P.csf.data() + k * P.len, P.len, P.k, w, dt + src,
                  dr + src, dlrow, k == 0, B.pad.data());
        }
      }
    }
  });
}

// run(T()) with T the tensor's float type (float32 or float64).
template <typename Run>
void by_float_type(const at::Tensor& x, const Run& run) {
  if (x.scalar_type() == at::kDouble)
    run(double(0));
  else
    run(float(0));
}

at::Tensor cvvdp_band_pool_cpu(const at::Tensor& test_in, const at::Tensor& ref_in, const at::Tensor& log_bkg_in,
                               at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain,
                               at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm, double mask_c, double mask_p,
                               double d_max) {
  check_cvvdp_band_args(test_in, ref_in, log_bkg_in, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                        d_max);
  const at::Tensor test = test_in.contiguous(), ref = ref_in.contiguous(), lb = log_bkg_in.contiguous();
  at::Tensor out = at::zeros({test.size(0), test.size(1)}, test.options().dtype(at::kDouble));
  if (test.numel() == 0) return out;
  by_float_type(test, [&](auto zero) {
    using T = decltype(zero);
    const Params<T> P = make_params<T>(test, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max, false);
    forward<T>(P, test.data_ptr<T>(), ref.data_ptr<T>(), lb.data_ptr<T>(), out.data_ptr<double>());
  });
  return out;
}

at::Tensor cvvdp_band_difference_cpu(const at::Tensor& test_in, const at::Tensor& ref_in, const at::Tensor& log_bkg_in,
                                     at::ArrayRef<double> csf, double log_l_lo, double log_l_hi,
                                     at::ArrayRef<double> gain, at::ArrayRef<double> mask_q, at::ArrayRef<double> xcm,
                                     double mask_c, double mask_p, double d_max) {
  check_cvvdp_band_args(test_in, ref_in, log_bkg_in, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p,
                        d_max);
  const at::Tensor test = test_in.contiguous(), ref = ref_in.contiguous(), lb = log_bkg_in.contiguous();
  at::Tensor out = at::empty_like(test, at::MemoryFormat::Contiguous);
  if (test.numel() == 0) return out;
  by_float_type(test, [&](auto zero) {
    using T = decltype(zero);
    const Params<T> P = make_params<T>(test, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max, false);
    difference<T>(P, test.data_ptr<T>(), ref.data_ptr<T>(), lb.data_ptr<T>(), out.data_ptr<T>());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cvvdp_band_pool_backward_cpu(
    const at::Tensor& grad_in, const at::Tensor& test_in, const at::Tensor& ref_in, const at::Tensor& log_bkg_in,
    at::ArrayRef<double> csf, double log_l_lo, double log_l_hi, at::ArrayRef<double> gain, at::ArrayRef<double> mask_q,
    at::ArrayRef<double> xcm, double mask_c, double mask_p, double d_max) {
  check_cvvdp_band_backward_args(grad_in, test_in, ref_in, log_bkg_in, csf, log_l_lo, log_l_hi, gain, mask_q, xcm,
                                 mask_c, mask_p, d_max);
  const at::Tensor test = test_in.contiguous(), ref = ref_in.contiguous(), lb = log_bkg_in.contiguous();
  const at::Tensor grad = grad_in.to(at::kDouble).contiguous();
  at::Tensor dt = at::empty_like(test), dr = at::empty_like(ref), dl = at::empty_like(lb);
  if (test.numel() == 0) return {dt, dr, dl.zero_()};
  by_float_type(test, [&](auto zero) {
    using T = decltype(zero);
    const Params<T> P = make_params<T>(test, csf, log_l_lo, log_l_hi, gain, mask_q, xcm, mask_c, mask_p, d_max, true);
    backward<T>(P, grad.data_ptr<double>(), test.data_ptr<T>(), ref.data_ptr<T>(), lb.data_ptr<T>(),
                dt.data_ptr<T>(), dr.data_ptr<T>(), dl.data_ptr<T>());
  });
  return {dt, dr, dl};
}

// ------------------------------------------------------------------------------------- cvvdp_srgb_to_dkl
constexpr int64_t kColourChunk = 16384;  // pixels per task

// fn(planes) for every task (image, run of up to kColourChunk pixels), in parallel: planes(base, c) is channel c's
// run in a contiguous N x 3 x H x W tensor at base, planes.len its length.
struct ColourRun {
  int64_t offset, px, len;
  template <typename P>
  P* operator()(P* base, int c) const {
    return base + offset + c * px;
  }
};

template <typename Fn>
void for_colour_runs(int64_t n, int64_t px, const Fn& fn) {
  const int64_t chunks = (px + kColourChunk - 1) / kColourChunk;
  parallel_chunks(n * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t img = task / chunks, p0 = (task % chunks) * kColourChunk;
      fn(ColourRun{img * 3 * px + p0, px, std::min(kColourChunk, px - p0)});
    }
  });
}

at::Tensor cvvdp_srgb_to_dkl_cpu(const at::Tensor& x_in, at::ArrayRef<double> matrix, at::ArrayRef<double> bias,
                                 double data_range) {
  check_cvvdp_srgb_args(x_in, matrix, bias, data_range);
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty_like(x);
  if (out.numel() == 0) return out;
  by_float_type(x, [&](auto zero) {
    using T = decltype(zero);
    const RowFns<T> F = row_fns<T>();
    T m[9], b[3];
    for (int i = 0; i < 9; ++i) m[i] = static_cast<T>(matrix[i]);
    for (int i = 0; i < 3; ++i) b[i] = static_cast<T>(bias[i]);
    const T* xp = x.data_ptr<T>();
    T* op = out.data_ptr<T>();
    for_colour_runs(x.size(0), x.size(2) * x.size(3), [&](const ColourRun& run) {
      const T* src[3] = {run(xp, 0), run(xp, 1), run(xp, 2)};
      T* dst[3] = {run(op, 0), run(op, 1), run(op, 2)};
      F.srgb(src, run.len, m, b, static_cast<T>(data_range), dst);
    });
  });
  return out;
}

at::Tensor cvvdp_srgb_to_dkl_backward_cpu(const at::Tensor& grad_in, const at::Tensor& x_in,
                                          at::ArrayRef<double> matrix, at::ArrayRef<double> bias, double data_range) {
  check_cvvdp_srgb_backward_args(grad_in, x_in, matrix, bias, data_range);
  const at::Tensor x = x_in.contiguous(), grad = grad_in.contiguous();
  at::Tensor dx = at::empty_like(x);
  if (dx.numel() == 0) return dx;
  by_float_type(x, [&](auto zero) {
    using T = decltype(zero);
    const RowFns<T> F = row_fns<T>();
    T m[9];
    for (int i = 0; i < 9; ++i) m[i] = static_cast<T>(matrix[i]);
    const T* xp = x.data_ptr<T>();
    const T* gp = grad.data_ptr<T>();
    T* dp = dx.data_ptr<T>();
    for_colour_runs(x.size(0), x.size(2) * x.size(3), [&](const ColourRun& run) {
      const T* src[3] = {run(xp, 0), run(xp, 1), run(xp, 2)};
      const T* g[3] = {run(gp, 0), run(gp, 1), run(gp, 2)};
      T* dst[3] = {run(dp, 0), run(dp, 1), run(dp, 2)};
      F.srgb_grad(g, src, run.len, m, static_cast<T>(data_range), dst);
    });
  });
  return dx;
}

// ------------------------------------------------------------------------------------- cvvdp_weber_contrast
// Tasks are rows (image, row); each writes its own outputs (the backward's channel sum is per pixel, in channel
// order): thread-count independent. Same operations as the twin: (g - e) / max(e_0, 0.01), clamped at 1000.
constexpr double kWeberFloor = 0.01, kWeberCap = 1000.0;

std::tuple<at::Tensor, at::Tensor, at::Tensor> cvvdp_weber_contrast_cpu(const at::Tensor& planes_in,
                                                                      const at::Tensor& expanded_in) {
  check_cvvdp_weber_args(planes_in, expanded_in);
  const at::Tensor g = planes_in.contiguous(), e = expanded_in.contiguous();
  const int64_t n2 = g.size(0), n = n2 / 2, C = g.size(1), h = g.size(2), w = g.size(3);
  at::Tensor test = at::empty({n, C, h, w}, g.options()), ref = at::empty({n, C, h, w}, g.options());
  at::Tensor lb = at::empty({n, 1, h, w}, g.options());
  if (g.numel() == 0) return {test, ref, lb};
  by_float_type(g, [&](auto zero) {
    using T = decltype(zero);
    const T* gp = g.data_ptr<T>();
    const T* ep = e.data_ptr<T>();
    T* tp = test.data_ptr<T>();
    T* rp = ref.data_ptr<T>();
    T* lp = lb.data_ptr<T>();
    const T floor = static_cast<T>(kWeberFloor), cap = static_cast<T>(kWeberCap);
    parallel_chunks(n2 * h, 16, [&](int64_t begin, int64_t end) {
      std::vector<T> bk(w);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / h, i = task % h;
        const T* e0 = ep + (b * C * h + i) * w;
        for (int64_t x = 0; x < w; ++x) bk[x] = e0[x] < floor ? floor : e0[x];
        T* out = b < n ? tp + (b * C * h + i) * w : rp + ((b - n) * C * h + i) * w;
        for (int64_t c = 0; c < C; ++c) {
          const T* __restrict gr = gp + ((b * C + c) * h + i) * w;
          const T* __restrict er = ep + ((b * C + c) * h + i) * w;
          T* __restrict o = out + c * h * w;
          const T* __restrict k = bk.data();
          for (int64_t x = 0; x < w; ++x) {
            const T v = (gr[x] - er[x]) / k[x];
            o[x] = v > cap ? cap : v;
          }
        }
        if (b >= n) {
          T* l = lp + ((b - n) * h + i) * w;
          for (int64_t x = 0; x < w; ++x) l[x] = std::log10(bk[x]);
        }
      }
    });
  });
  return {test, ref, lb};
}

std::tuple<at::Tensor, at::Tensor> cvvdp_weber_contrast_backward_cpu(const at::Tensor& grad_test_in,
                                                                     const at::Tensor& grad_ref_in,
                                                                     const at::Tensor& grad_lb_in,
                                                                     const at::Tensor& planes_in,
                                                                     const at::Tensor& expanded_in) {
  check_cvvdp_weber_backward_args(grad_test_in, grad_ref_in, grad_lb_in, planes_in, expanded_in);
  const at::Tensor g = planes_in.contiguous(), e = expanded_in.contiguous();
  const at::Tensor gt = grad_test_in.contiguous(), gr = grad_ref_in.contiguous(), gl = grad_lb_in.contiguous();
  const int64_t n2 = g.size(0), n = n2 / 2, C = g.size(1), h = g.size(2), w = g.size(3);
  at::Tensor dg = at::empty_like(g), de = at::empty_like(e);
  if (g.numel() == 0) return {dg, de};
  by_float_type(g, [&](auto zero) {
    using T = decltype(zero);
    const T* gp = g.data_ptr<T>();
    const T* ep = e.data_ptr<T>();
    const T* gtp = gt.data_ptr<T>();
    const T* grp = gr.data_ptr<T>();
    const T* glp = gl.data_ptr<T>();
    T* dgp = dg.data_ptr<T>();
    T* dep = de.data_ptr<T>();
    const T floor = static_cast<T>(kWeberFloor), cap = static_cast<T>(kWeberCap), ln10 = static_cast<T>(kLn10);
    parallel_chunks(n2 * h, 16, [&](int64_t begin, int64_t end) {
      std::vector<T> bk(w), gb(w);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / h, i = task % h;
        const T* e0 = ep + (b * C * h + i) * w;
        for (int64_t x = 0; x < w; ++x) bk[x] = e0[x] < floor ? floor : e0[x];
        if (b >= n) {  // log10's gradient
          const T* l = glp + ((b - n) * h + i) * w;
          for (int64_t x = 0; x < w; ++x) gb[x] = l[x] / (bk[x] * ln10);
        } else {
          std::fill(gb.begin(), gb.end(), T(0));
        }
        const T* go = b < n ? gtp + (b * C * h + i) * w : grp + ((b - n) * C * h + i) * w;
        for (int64_t c = 0; c < C; ++c) {
          const int64_t off = ((b * C + c) * h + i) * w;
          const T* __restrict gg = gp + off;
          const T* __restrict ee = ep + off;
          const T* __restrict o = go + c * h * w;
          const T* __restrict k = bk.data();
          T* __restrict sb = gb.data();
          T* __restrict dgr = dgp + off;
          T* __restrict der = dep + off;
          for (int64_t x = 0; x < w; ++x) {
            const T lap = gg[x] - ee[x];
            const T gv = lap / k[x] <= cap ? o[x] : T(0);  // clamp(max)'s gradient mask
            const T q = gv / k[x];
            dgr[x] = q;
            der[x] = -q;
            sb[x] -= gv * lap / (k[x] * k[x]);
          }
        }
        T* d0 = dep + (b * C * h + i) * w;
        for (int64_t x = 0; x < w; ++x) d0[x] += e0[x] >= floor ? gb[x] : T(0);  // clamp(min)'s mask
      }
    });
  });
  return {dg, de};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("cvvdp_band_pool", &cvvdp_band_pool_cpu);
  m.impl("_cvvdp_band_pool_backward", &cvvdp_band_pool_backward_cpu);
  m.impl("cvvdp_srgb_to_dkl", &cvvdp_srgb_to_dkl_cpu);
  m.impl("_cvvdp_srgb_to_dkl_backward", &cvvdp_srgb_to_dkl_backward_cpu);
  m.impl("cvvdp_band_difference", &cvvdp_band_difference_cpu);
  m.impl("cvvdp_weber_contrast", &cvvdp_weber_contrast_cpu);
  m.impl("_cvvdp_weber_contrast_backward", &cvvdp_weber_contrast_backward_cpu);
}

}  // namespace turboiqa::cpu
