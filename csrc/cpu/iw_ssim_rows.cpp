// Compiled once per ISA (TURBOIQA_ISA = baseline | avx2 | avx512), like ssim_rows.cpp: IW-SSIM's neighbour
// covariance and information-content weights, one grid row at a time, with row-sized scratch only.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "isa_vec.h"
#include "iw_ssim_rows.h"
#include "ssim_rows.h"

namespace turboiqa::cpu {

namespace TURBOIQA_ISA_NS {
namespace {

inline std::size_t scratch_stride(int band_width, int parent_width) {
  const int widest = band_width > parent_width ? band_width : parent_width;
  return (static_cast<std::size_t>(widest) + 64 + 15) / 16 * 16;
}

constexpr int kScratchRows = 16;  // enlarged-parent row and its row pass, 5 box sums, 5 moments, gain, vv, ss

// iwssim.m's imenlarge2(parent) at grid row r, columns [0, count): rows mixed first, then columns (as the twin).
template <typename T>
void enlarged_parent_row(const IwNeighbourhood<T>& h, int r, int count, T* __restrict row_mix, T* __restrict out) {
  const T* low = h.parent + static_cast<std::size_t>(h.parent_row_low[r]) * h.parent_width;
  const T* high = h.parent + static_cast<std::size_t>(h.parent_row_high[r]) * h.parent_width;
  const T f = h.parent_row_frac[r], g = T(1) - f;
  for (int c = 0; c < h.parent_width; ++c) row_mix[c] = low[c] * g + high[c] * f;
  for (int c = 0; c < count; ++c) {
    const T fc = h.parent_col_frac[c];
    out[c] = row_mix[h.parent_col_low[c]] * (T(1) - fc) + row_mix[h.parent_col_high[c]] * fc;
  }
}

// Pointers to the K components of the neighbourhood vectors along grid row r (the parent one in parent_row).
template <typename T>
int neighbour_rows(const IwNeighbourhood<T>& h, int r, const T* parent_row, const T** rows) {
  int k = 0;
  for (int dy = 0; dy < h.blk; ++dy)
    for (int dx = 0; dx < h.blk; ++dx)
      rows[k++] = h.band + static_cast<std::size_t>(r + h.offset + dy) * h.width + h.offset + dx;
  if (h.parent) rows[k++] = parent_row;
  return k;
}

template <typename T>
double dot(const T* __restrict a, const T* __restrict b, int n) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::lanes;
  V acc0 = {}, acc1 = {};
  int j = 0;
  for (; j + 2 * L <= n; j += 2 * L) {
    acc0 += load<V>(a + j) * load<V>(b + j);
    acc1 += load<V>(a + j + L) * load<V>(b + j + L);
  }
  acc0 += acc1;
  T tail = 0;
  for (; j < n; ++j) tail += a[j] * b[j];
  double total = tail;
  for (int l = 0; l < L; ++l) total += acc0[l];
  return total;
}

template <typename T>
void covariance_rows(const IwCovarianceArgs<T>& a) {
  const IwNeighbourhood<T>& h = a.hood;
  const std::size_t stride = scratch_stride(h.width, h.parent_width);
  T* row_mix = a.scratch;
  T* parent_row = a.scratch + stride;
  const T* rows[kIwMaxComponents];
  for (int r = a.row_begin; r < a.row_end; ++r) {
    if (h.parent) enlarged_parent_row(h, r, a.grid_width, row_mix, parent_row);
    const int k = neighbour_rows(h, r, parent_row, rows);
    for (int i = 0; i < k; ++i)
      for (int j = i; j < k; ++j) a.sums[i * k + j] += dot(rows[i], rows[j], a.grid_width);
  }
}

// blk x blk box means of ref, dist and their products at every grid column of row r (the twin's filter_valid with
// taps 1/blk: rows first, then columns). Whole vectors: the scratch rows have slack past the grid width, the band
// rows get a scalar tail (the last row of a plane has nothing after it).
template <typename T>
void box_moments(const IwWeightArgs<T>& a, int r, T* const* sums, T* const* moments) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::lanes;
  const IwNeighbourhood<T>& h = a.hood;
  const int span = a.grid_width + h.blk - 1;
  const T tap = T(1) / T(h.blk);
  const T* x[kIwMaxComponents];
  const T* y[kIwMaxComponents];
  for (int t = 0; t < h.blk; ++t) {
    const std::size_t row = static_cast<std::size_t>(r + h.offset + t) * h.width + h.offset;
    x[t] = h.band + row;
    y[t] = a.dist + row;
  }
  int c = 0;
  for (; c + L <= span; c += L) {
    V sx = {}, sy = {}, sxx = {}, syy = {}, sxy = {};
    for (int t = 0; t < h.blk; ++t) {
      const V vx = load<V>(x[t] + c), vy = load<V>(y[t] + c);
      sx += tap * vx;
      sy += tap * vy;
      sxx += tap * (vx * vx);
      syy += tap * (vy * vy);
      sxy += tap * (vx * vy);
    }
    store(sums[0] + c, sx);
    store(sums[1] + c, sy);
    store(sums[2] + c, sxx);
    store(sums[3] + c, syy);
    store(sums[4] + c, sxy);
  }
  for (; c < span; ++c) {
    T sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (int t = 0; t < h.blk; ++t) {
      const T vx = x[t][c], vy = y[t][c];
      sx += tap * vx;
      sy += tap * vy;
      sxx += tap * (vx * vx);
      syy += tap * (vy * vy);
      sxy += tap * (vx * vy);
    }
    sums[0][c] = sx;
    sums[1][c] = sy;
    sums[2][c] = sxx;
    sums[3][c] = syy;
    sums[4][c] = sxy;
  }
  for (int q = 0; q < 5; ++q) {
    for (int j = 0; j < a.grid_width; j += L) {
      V m = {};
      for (int t = 0; t < h.blk; ++t) m += tap * load<V>(sums[q] + j + t);
      store(moments[q] + j, m);
    }
  }
}

// Gain g and residual variance vv of the distortion channel dist = g·ref + v, with iwssim.m's order of overrides
// for flat reference / distorted blocks.
template <typename T>
void distortion_channel(const T* __restrict mx, const T* __restrict my, const T* __restrict exx,
                        const T* __restrict eyy, const T* __restrict exy, int n, T tol, T* __restrict gain,
                        T* __restrict vv) {
  for (int j = 0; j < n; ++j) {
    T sxx = exx[j] - mx[j] * mx[j];
    T syy = eyy[j] - my[j] * my[j];
    sxx = sxx < T(0) ? T(0) : sxx;
    syy = syy < T(0) ? T(0) : syy;
    const T sxy = exy[j] - mx[j] * my[j];
    T g = sxy / (sxx + tol);
    T v = syy - g * sxy;
    const bool flat_ref = sxx < tol, flat_dist = syy < tol;
    g = flat_ref || flat_dist ? T(0) : g;
    v = flat_dist ? T(0) : (flat_ref ? syy : v);
    gain[j] = g;
    vv[j] = v;
  }
}

// ss = Yᵀ C⁻¹ Y / K at grid columns [0, n) (the twin's einsum of (C⁻¹)ᵀ Y with Y); U is the vector or scalar type.
template <typename U, typename T, typename Load>
inline U quadratic_form(const T* inverse, int k, const Load& component) {
  U y[kIwMaxComponents];
  for (int b = 0; b < k; ++b) y[b] = component(b);
  U ss = {};
  for (int c = 0; c < k; ++c) {
    U z = {};
    for (int b = 0; b < k; ++b) z += inverse[b * k + c] * y[b];
    ss += z * y[c];
  }
  return ss;
}

template <typename T>
void neighbour_quadratic_forms(const T* inverse, const T* const* rows, int k, int n, T* __restrict ss) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::lanes;
  const T scale = T(k);
  int j = 0;
  for (; j + L <= n; j += L)
    store(ss + j, quadratic_form<V>(inverse, k, [&](int b) { return load<V>(rows[b] + j); }) / scale);
  for (; j < n; ++j) ss[j] = quadratic_form<T>(inverse, k, [&](int b) { return rows[b][j]; }) / scale;
}

// Σ_j log2(term_j) as one log2 of the product: the mantissa is renormalised every four factors, so the product
// neither overflows nor underflows; anything not positive and finite takes the plain sum of logarithms.
inline double log2_of_product(double base, double signal, const double* lambda, int k) {
  double mantissa = 1.0;
  int64_t exponent = 0;
  for (int j = 0; j < k; ++j) {
    mantissa *= base + signal * lambda[j];
    if ((j & 3) != 3 && j != k - 1) continue;
    std::uint64_t bits;
    std::memcpy(&bits, &mantissa, sizeof bits);
    const int biased = static_cast<int>((bits >> 52) & 0x7ff);
    if ((bits >> 63) || biased == 0 || biased == 0x7ff) {  // <= 0, subnormal, Inf or NaN
      double sum = 0;
      for (int i = 0; i < k; ++i) sum += std::log2(base + signal * lambda[i]);
      return sum;
    }
    exponent += biased - 1023;
    bits = (bits & ((std::uint64_t(1) << 52) - 1)) | (std::uint64_t(1023) << 52);
    std::memcpy(&mantissa, &bits, sizeof bits);
  }
  return static_cast<double>(exponent) + std::log2(mantissa);
}

// Vector form of log2_of_product for Vec<double>::lanes pixels at once, with log2 of the renormalised mantissa by
// the atanh series (|t| <= 0.1716 after folding the mantissa into [√½, √2): 12 terms reach double precision).
// Lanes whose product is not positive and finite are flagged in `bad` and recomputed by log2_of_product.
using VD = typename Vec<double>::type;
typedef std::int64_t VI __attribute__((vector_size(sizeof(VD))));

inline VD log2_mantissa(VD m, VI& exponent) {
  const VI fold = m > VD{} + 1.4142135623730951;
  m = fold ? m * 0.5 : m;
  exponent -= fold;  // the mask is -1 where folded
  const VD t = (m - 1.0) / (m + 1.0);
  const VD s = t * t;
  VD series = VD{} + 2.0 / 23;
  for (int i = 21; i >= 1; i -= 2) series = series * s + 2.0 / i;
  return t * series * 1.4426950408889634;  // ln(m) / ln 2
}

inline VD log2_of_products(VD base, VD signal, const double* lambda, int k, VI& bad) {
  const VI mantissa_bits = VI{} + ((std::int64_t(1) << 52) - 1), one_exponent = VI{} + (std::int64_t(1023) << 52);
  VD mantissa = VD{} + 1.0;
  VI exponent = {};
  bad = VI{};
  for (int j = 0; j < k; ++j) {
    mantissa *= base + signal * lambda[j];
    if ((j & 3) != 3 && j != k - 1) continue;
    VI bits;
    std::memcpy(&bits, &mantissa, sizeof bits);
    const VI biased = (bits >> 52) & 0x7ff;
    bad |= (bits < 0) | (biased == 0) | (biased == 0x7ff);
    exponent += biased - 1023;
    bits = (bits & mantissa_bits) | one_exponent;
    std::memcpy(&mantissa, &bits, sizeof bits);
  }
  const VD fraction = log2_mantissa(mantissa, exponent);
  return __builtin_convertvector(exponent, VD) + fraction;
}

// Information-content weight of grid columns [0, n): Σ_j log2(base + signal·λ_j), base = 1 + vv/σ²,
// signal = (vv + (1+g²)σ²)·ss/σ⁴, zeroed below tol. Computed in double whatever T.
template <typename T>
void weights_from_terms(const T* gain, const T* vv, const T* ss, int n, const double* lambda, int k, double nsq,
                        double tol, T* out) {
  constexpr int L = Vec<double>::lanes;
  typedef T VT __attribute__((vector_size(L * sizeof(T))));
  const double nsq2 = nsq * nsq;
  int j = 0;
  for (; j + L <= n; j += L) {
    const VD g = __builtin_convertvector(load<VT>(gain + j), VD);
    const VD v = __builtin_convertvector(load<VT>(vv + j), VD);
    const VD q = __builtin_convertvector(load<VT>(ss + j), VD);
    const VD signal = (v + (1 + g * g) * nsq) * q / nsq2;
    const VD base = 1 + v / nsq;
    VI bad;
    VD w = log2_of_products(base, signal, lambda, k, bad);
    bool any_bad = false;
    for (int l = 0; l < L; ++l) any_bad |= bad[l] != 0;
    if (any_bad)
      for (int l = 0; l < L; ++l)
        if (bad[l]) w[l] = log2_of_product(base[l], signal[l], lambda, k);
    w = w < tol ? VD{} : w;
    store(out + j, __builtin_convertvector(w, VT));
  }
  for (; j < n; ++j) {
    const double g = gain[j], v = vv[j];
    const double signal = (v + (1 + g * g) * nsq) * static_cast<double>(ss[j]) / nsq2;
    const double w = log2_of_product(1 + v / nsq, signal, lambda, k);
    out[j] = static_cast<T>(w < tol ? 0.0 : w);
  }
}

template <typename T>
void weight_rows(const IwWeightArgs<T>& a) {
  const IwNeighbourhood<T>& h = a.hood;
  const std::size_t stride = scratch_stride(h.width, h.parent_width);
  T* buffers[kScratchRows];
  for (int b = 0; b < kScratchRows; ++b) buffers[b] = a.scratch + b * stride;
  T* row_mix = buffers[0];
  T* parent_row = buffers[1];
  T* const* sums = buffers + 2;
  T* const* moments = buffers + 7;
  T* gain = buffers[12];
  T* vv = buffers[13];
  T* ss = buffers[14];
  const T* rows[kIwMaxComponents];
  const int n = a.grid_width;
  const int pad = ssim_rows_weight_padding();
  const int padded = (n + pad - 1) / pad * pad;  // the SSIM row kernel reads whole vectors of weights
  for (int r = a.row_begin; r < a.row_end; ++r) {
    box_moments(a, r, sums, moments);
    distortion_channel(moments[0], moments[1], moments[2], moments[3], moments[4], n, static_cast<T>(a.tol), gain,
                       vv);
    if (h.parent) enlarged_parent_row(h, r, n, row_mix, parent_row);
    const int k = neighbour_rows(h, r, parent_row, rows);
    neighbour_quadratic_forms(a.inverse, rows, k, n, ss);
    T* out = a.weights + static_cast<std::size_t>(r - a.row_begin) * a.weight_stride;
    weights_from_terms(gain, vv, ss, n, a.eigenvalues, k, a.sigma_nsq, a.tol, out);
    double total = 0;
    for (int j = 0; j < n; ++j) total += out[j];
    for (int j = n; j < padded; ++j) out[j] = T(0);
    a.row_weight_sums[r] = total;
  }
}

}  // namespace
}  // namespace TURBOIQA_ISA_NS

void TURBOIQA_ISA_NAME(iw_covariance_rows)(const IwCovarianceArgs<float>& a) { TURBOIQA_ISA_NS::covariance_rows(a); }
void TURBOIQA_ISA_NAME(iw_covariance_rows)(const IwCovarianceArgs<double>& a) { TURBOIQA_ISA_NS::covariance_rows(a); }
void TURBOIQA_ISA_NAME(iw_weight_rows)(const IwWeightArgs<float>& a) { TURBOIQA_ISA_NS::weight_rows(a); }
void TURBOIQA_ISA_NAME(iw_weight_rows)(const IwWeightArgs<double>& a) { TURBOIQA_ISA_NS::weight_rows(a); }

#if defined(TURBOIQA_ISA_IS_BASELINE)
std::size_t iw_rows_scratch_size(int band_width, int parent_width) {
  return TURBOIQA_ISA_NS::kScratchRows * TURBOIQA_ISA_NS::scratch_stride(band_width, parent_width);
}
#endif

}  // namespace turboiqa::cpu
