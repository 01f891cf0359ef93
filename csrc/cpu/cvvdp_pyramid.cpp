// CPU implementation of turboiqa::cvvdp_pyramid_step and its backward: one level of ColorVideoVDP's decimated
// Laplacian pyramid (cvvdp 0.5.7's lpyr_dec: 5-tap kernel, a = 0.4), the reduced planes and their expansion back to
// the planes' size, schema in ops.cpp, PyTorch twin in python/turboiqa/reference/cvvdp_band.py. Each separable pass
// is a per-axis tap table (output sample -> (source sample, weight) list), so cvvdp's border rules (symmetric
// edges; the reduce's zero right edge plus its correction that follows the parity of the row count; replicated
// ends of the expansion) are table entries, and the backward applies the same tables transposed. Tasks are planes.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "../cvvdp_band.h"
#include "../cvvdp_tables.h"
#include "parallel.h"

namespace turboiqa::cpu {

namespace {

template <typename T>
struct Taps {
  std::vector<int64_t> first, src;
  std::vector<T> weight;
  int64_t outputs() const { return static_cast<int64_t>(first.size()) - 1; }
  void open() { first.push_back(static_cast<int64_t>(src.size())); }
  void add(int64_t s, double wt) {
    src.push_back(s);
    weight.push_back(static_cast<T>(wt));
  }
};

constexpr auto& kK = cvvdp::kPyramidK;  // the 5-tap kernel, for the direct loops below

// out (rows_out x w) = table over rows of in (x w).
template <typename T>
void apply_rows(const Taps<T>& tb, const T* in, int64_t w, T* out) {
  for (int64_t o = 0; o < tb.outputs(); ++o) {
    T* __restrict d = out + o * w;
    const int64_t e0 = tb.first[o];
    {
      const T* __restrict s = in + tb.src[e0] * w;
      const T wt = tb.weight[e0];
      for (int64_t x = 0; x < w; ++x) d[x] = wt * s[x];
    }
    for (int64_t e = e0 + 1; e < tb.first[o + 1]; ++e) {
      const T* __restrict s = in + tb.src[e] * w;
      const T wt = tb.weight[e];
      for (int64_t x = 0; x < w; ++x) d[x] += wt * s[x];
    }
  }
}

// Transposed: out (rows_in x w, zeroed here) += table^T over rows of in (rows_out x w).
template <typename T>
void apply_rows_t(const Taps<T>& tb, const T* in, int64_t w, int64_t rows_in, T* out) {
  std::fill(out, out + rows_in * w, T(0));
  for (int64_t o = 0; o < tb.outputs(); ++o) {
    const T* __restrict s = in + o * w;
    for (int64_t e = tb.first[o]; e < tb.first[o + 1]; ++e) {
      T* __restrict d = out + tb.src[e] * w;
      const T wt = tb.weight[e];
      for (int64_t x = 0; x < w; ++x) d[x] += wt * s[x];
    }
  }
}

// Output o of a row through its table (the border outputs).
template <typename T>
inline T tabled(const Taps<T>& tb, const T* s, int64_t o) {
  T acc = 0;
  for (int64_t e = tb.first[o]; e < tb.first[o + 1]; ++e) acc += tb.weight[e] * s[tb.src[e]];
  return acc;
}

// Each of `rows` rows: out row (outputs) = table over in row (n samples). The interior outputs of the two table
// kinds take a direct loop with the kernel's taps (the same products and order as the table entries).
template <typename T>
void apply_cols(const Taps<T>& tb, const T* in, int64_t n, int64_t rows, T* out, bool reducing) {
  const int64_t m = tb.outputs();
  const T k0 = static_cast<T>(kK[0]), k1 = static_cast<T>(kK[1]), k2 = static_cast<T>(kK[2]);
  const T e0 = static_cast<T>(2 * kK[0]), e1 = static_cast<T>(2 * kK[1]), e2 = static_cast<T>(2 * kK[2]);
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict s = in + r * n;
    T* __restrict d = out + r * m;
    int64_t lo = 0, hi = 0;  // direct outputs [lo, hi)
    if (reducing) {          // 2o - 2 >= 0, 2o + 2 <= n - 1, and not the corrected last output
      lo = 1;
      hi = std::min((n - 3) / 2 + 1, m - 1);
      for (int64_t o = lo; o < hi; ++o) {
        const T* c = s + 2 * o;
        d[o] = k0 * c[-2] + k1 * c[-1] + k2 * c[0] + k1 * c[1] + k0 * c[2];
      }
    } else {  // outputs 2i, 2i + 1 with 1 <= i and i + 1 <= n - 1
      lo = 2;
      const int64_t last_i = std::min(n - 2, (m - 2) / 2);
      hi = last_i >= 1 ? 2 * last_i + 2 : lo;
      for (int64_t i = 1; i <= last_i; ++i) {
        d[2 * i] = e0 * s[i - 1] + e2 * s[i] + e0 * s[i + 1];
        d[2 * i + 1] = e1 * s[i] + e1 * s[i + 1];
      }
    }
    if (hi < lo) hi = lo;
    for (int64_t o = 0; o < std::min(lo, m); ++o) d[o] = tabled(tb, s, o);
    for (int64_t o = std::max(hi, lo); o < m; ++o) d[o] = tabled(tb, s, o);
  }
}

// The transpose of a column table in gather form: for each input sample i, its (output, weight) pairs in output
// order (the order in which the scatter added them), and [lo, hi), the inputs whose pairs are the kernel's own
// pattern, which take a direct loop: the 5-tap stride-2 sum for a transposed expansion, the pair / triple of the
// expansion for a transposed reduction (the same products and order as the table entries).
template <typename T>
struct GatherCols {
  Taps<T> tb;
  int64_t m = 0;  // the forward's outputs: the samples of an input row here
  int64_t lo = 0, hi = 0;
  bool of_expand = false;
};

template <typename T>
GatherCols<T> transpose_cols(const Taps<T>& fw, int64_t n, bool of_expand) {
  std::vector<std::vector<std::pair<int64_t, T>>> lists(n);
  for (int64_t o = 0; o < fw.outputs(); ++o)
    for (int64_t e = fw.first[o]; e < fw.first[o + 1]; ++e) lists[fw.src[e]].emplace_back(o, fw.weight[e]);
  GatherCols<T> g;
  g.of_expand = of_expand;
  g.m = fw.outputs();
  for (int64_t i = 0; i < n; ++i) {
    g.tb.open();
    for (const auto& [o, wt] : lists[i]) {
      g.tb.src.push_back(o);
      g.tb.weight.push_back(wt);
    }
  }
  g.tb.open();
  const T k0 = static_cast<T>(kK[0]), k1 = static_cast<T>(kK[1]), k2 = static_cast<T>(kK[2]);
  const T e0 = static_cast<T>(2 * kK[0]), e1 = static_cast<T>(2 * kK[1]), e2 = static_cast<T>(2 * kK[2]);
  const int64_t m = fw.outputs();
  auto direct = [&](int64_t i) {
    std::vector<std::pair<int64_t, T>> want;
    if (of_expand)
      want = {{2 * i - 2, e0}, {2 * i - 1, e1}, {2 * i, e2}, {2 * i + 1, e1}, {2 * i + 2, e0}};
    else if (i % 2 == 0)
      want = {{i / 2 - 1, k0}, {i / 2, k2}, {i / 2 + 1, k0}};
    else
      want = {{i / 2, k1}, {i / 2 + 1, k1}};
    for (const auto& [o, wt] : want)
      if (o < 0 || o >= m) return false;
    return lists[i] == want;
  };
  int64_t lo = 0;
  while (lo < n && !direct(lo)) ++lo;
  int64_t hi = lo;
  while (hi < n && direct(hi)) ++hi;
  if (!of_expand && lo < hi && lo % 2 == 1) ++lo;  // the direct loop takes (even, odd) pairs
  if (!of_expand && hi - lo >= 0 && (hi - lo) % 2 == 1) --hi;
  g.lo = lo;
  g.hi = std::max(lo, hi);
  return g;
}

template <typename T>
inline T gathered(const Taps<T>& tb, const T* s, int64_t i) {
  T acc = 0;
  for (int64_t e = tb.first[i]; e < tb.first[i + 1]; ++e) acc += tb.weight[e] * s[tb.src[e]];
  return acc;
}

// Each of `rows` rows: out row (n samples) = the transpose of a column table over in row (m samples).
template <typename T>
void apply_cols_t(const GatherCols<T>& g, const T* in, int64_t n, int64_t rows, T* out) {
  const T k0 = static_cast<T>(kK[0]), k1 = static_cast<T>(kK[1]), k2 = static_cast<T>(kK[2]);
  const T e0 = static_cast<T>(2 * kK[0]), e1 = static_cast<T>(2 * kK[1]), e2 = static_cast<T>(2 * kK[2]);
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict s = in + r * g.m;
    T* __restrict d = out + r * n;
    for (int64_t i = 0; i < g.lo; ++i) d[i] = gathered(g.tb, s, i);
    if (g.of_expand) {
      for (int64_t i = g.lo; i < g.hi; ++i) {
        const T* c = s + 2 * i;
        d[i] = e0 * c[-2] + e1 * c[-1] + e2 * c[0] + e1 * c[1] + e0 * c[2];
      }
    } else {
      for (int64_t j = g.lo / 2; j < g.hi / 2; ++j) {
        d[2 * j] = k0 * s[j - 1] + k2 * s[j] + k0 * s[j + 1];
        d[2 * j + 1] = k1 * s[j] + k1 * s[j + 1];
      }
    }
    for (int64_t i = g.hi; i < n; ++i) d[i] = gathered(g.tb, s, i);
  }
}

template <typename T>
struct Tables {
  Taps<T> rv, rh, ev, eh;
  GatherCols<T> rh_t, eh_t;  // the backward's column passes
  int64_t h, w, ho, wo;
  Tables(int64_t h_, int64_t w_, bool transposed = false)
      : h(h_), w(w_), ho((h_ + 1) / 2), wo((w_ + 1) / 2) {
    rv = cvvdp::reduce_rows<Taps<T>>(h);
    rh = cvvdp::reduce_cols<Taps<T>>(w, h % 2 == 1);
    ev = cvvdp::expand_taps<Taps<T>>(ho, h);
    eh = cvvdp::expand_taps<Taps<T>>(wo, w);
    if (transposed) {
      rh_t = transpose_cols(rh, w, false);
      eh_t = transpose_cols(eh, wo, true);
    }
  }
};

template <typename T>
void forward(const at::Tensor& x, at::Tensor& reduced, at::Tensor& expanded) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const Tables<T> tb(h, w);
  const T* xp = x.data_ptr<T>();
  T* rp = reduced.data_ptr<T>();
  T* ep = expanded.data_ptr<T>();
  parallel_chunks(planes, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> tmp(std::max(tb.ho * w, h * tb.wo));
    for (int64_t p = begin; p < end; ++p) {
      T* red = rp + p * tb.ho * tb.wo;
      apply_rows(tb.rv, xp + p * h * w, w, tmp.data());  // ho x w
      apply_cols(tb.rh, tmp.data(), w, tb.ho, red, true);       // ho x wo
      apply_rows(tb.ev, red, tb.wo, tmp.data());          // h x wo
      apply_cols(tb.eh, tmp.data(), tb.wo, h, ep + p * h * w, false);
    }
  });
}

template <typename T>
void backward(const at::Tensor& g_red, const at::Tensor& g_exp, at::Tensor& dx) {
  const int64_t planes = dx.size(0) * dx.size(1), h = dx.size(2), w = dx.size(3);
  const Tables<T> tb(h, w, true);
  const T* gr = g_red.data_ptr<T>();
  const T* ge = g_exp.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  parallel_chunks(planes, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> tmp(std::max(tb.ho * w, h * tb.wo)), gn(tb.ho * tb.wo);
    for (int64_t p = begin; p < end; ++p) {
      apply_cols_t(tb.eh_t, ge + p * h * w, tb.wo, h, tmp.data());  // h x wo
      apply_rows_t(tb.ev, tmp.data(), tb.wo, tb.ho, gn.data());    // ho x wo
      const T* g = gr + p * tb.ho * tb.wo;
      for (int64_t i = 0; i < tb.ho * tb.wo; ++i) gn[i] += g[i];
      apply_cols_t(tb.rh_t, gn.data(), w, tb.ho, tmp.data());        // ho x w
      apply_rows_t(tb.rv, tmp.data(), w, h, dp + p * h * w);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> cvvdp_pyramid_step_cpu(const at::Tensor& planes_in) {
  check_cvvdp_pyramid_args(planes_in);
  const at::Tensor x = planes_in.contiguous();
  const int64_t h = x.size(2), w = x.size(3);
  at::Tensor reduced = at::empty({x.size(0), x.size(1), (h + 1) / 2, (w + 1) / 2}, x.options());
  at::Tensor expanded = at::empty_like(x);
  if (x.numel() == 0) return {reduced, expanded};
  if (x.scalar_type() == at::kDouble)
    forward<double>(x, reduced, expanded);
  else
    forward<float>(x, reduced, expanded);
  return {reduced, expanded};
}

at::Tensor cvvdp_pyramid_step_backward_cpu(const at::Tensor& grad_reduced, const at::Tensor& grad_expanded,
                                           const at::Tensor& planes) {
  check_cvvdp_pyramid_backward_args(grad_reduced, grad_expanded, planes);
  const at::Tensor gr = grad_reduced.contiguous(), ge = grad_expanded.contiguous();
  at::Tensor dx = at::empty(planes.sizes(), planes.options().memory_format(at::MemoryFormat::Contiguous));
  if (dx.numel() == 0) return dx;
  if (planes.scalar_type() == at::kDouble)
    backward<double>(gr, ge, dx);
  else
    backward<float>(gr, ge, dx);
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) {
  m.impl("cvvdp_pyramid_step", &cvvdp_pyramid_step_cpu);
  m.impl("_cvvdp_pyramid_step_backward", &cvvdp_pyramid_step_backward_cpu);
}

}  // namespace turboiqa::cpu
