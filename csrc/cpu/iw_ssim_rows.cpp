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
// taps 1/blk: rows first, then columns).
template <typename T>
void box_moments(const IwWeightArgs<T>& a, int r, T* const* sums, T* const* moments) {
  const IwNeighbourhood<T>& h = a.hood;
  const int span = a.grid_width + h.blk - 1;
  const T tap = T(1) / T(h.blk);
  T* __restrict sx = sums[0];
  T* __restrict sy = sums[1];
  T* __restrict sxx = sums[2];
  T* __restrict syy = sums[3];
  T* __restrict sxy = sums[4];
  for (int c = 0; c < span; ++c) sx[c] = sy[c] = sxx[c] = syy[c] = sxy[c] = T(0);
  for (int t = 0; t < h.blk; ++t) {
    const std::size_t row = static_cast<std::size_t>(r + h.offset + t) * h.width + h.offset;
    const T* __restrict x = h.band + row;
    const T* __restrict y = a.dist + row;
    for (int c = 0; c < span; ++c) {
      sx[c] += tap * x[c];
      sy[c] += tap * y[c];
      sxx[c] += tap * (x[c] * x[c]);
      syy[c] += tap * (y[c] * y[c]);
      sxy[c] += tap * (x[c] * y[c]);
    }
  }
  for (int q = 0; q < 5; ++q) {
    const T* __restrict s = sums[q];
    T* __restrict m = moments[q];
    for (int j = 0; j < a.grid_width; ++j) m[j] = T(0);
    for (int t = 0; t < h.blk; ++t)
      for (int j = 0; j < a.grid_width; ++j) m[j] += tap * s[j + t];
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
  const double nsq = a.sigma_nsq, nsq2 = a.sigma_nsq * a.sigma_nsq;
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
    double total = 0;
    for (int j = 0; j < n; ++j) {
      const double g = gain[j], v = vv[j];
      const double signal = (v + (1 + g * g) * nsq) * static_cast<double>(ss[j]) / nsq2;
      const double w = log2_of_product(1 + v / nsq, signal, a.eigenvalues, k);
      const T weight = static_cast<T>(w < a.tol ? 0.0 : w);
      out[j] = weight;
      total += weight;
    }
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
