// CUDA implementation of turboiqa::cvvdp_pyramid_step and its backward: one level of ColorVideoVDP's decimated
// Laplacian pyramid, the same tap tables as cpu/cvvdp_pyramid.cpp (schema in ops.cpp, twin
// python/turboiqa/reference/cvvdp_band.py). Inputs arrive contiguous, float32/float64, checked (ops_cuda.cpp).
//
// Each separable pass is a per-axis tap table (output sample -> (source sample, weight) list) built on the host
// exactly as the CPU builds it, so cvvdp's border rules (symmetric edges; the reduce's zero right edge and its
// parity-dependent correction; the expansion's replicated ends) are table entries. The backward applies the
// transposed tables, built by listing each table's entries under their source in (output, entry) order, which is
// the order in which the CPU's scatter adds them: the backward is a gather (deterministic, no atomics) with the
// CPU's summation order. The tables (int32 indices, double weights cast to the plane dtype as on the CPU) travel in
// one pinned host buffer each, copied asynchronously on the current stream.
//
// Forward: rows (reduce) -> columns (reduce) = reduced; rows (expand) -> columns (expand) = expanded. Backward:
// columns^T (expand) -> rows^T (expand), + grad_reduced, columns^T (reduce) -> rows^T (reduce). Each pass is one
// kernel, one thread per output sample (grid-stride over all planes).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "../cvvdp_tables.h"
#include "launch.h"

namespace turboiqa::cuda {

namespace {

constexpr int kThreads = 256;

struct Taps {
  std::vector<int32_t> first, src;
  std::vector<double> weight;
  int64_t outputs() const { return static_cast<int64_t>(first.size()) - 1; }
  void open() { first.push_back(static_cast<int32_t>(src.size())); }
  void add(int64_t s, double wt) {
    src.push_back(static_cast<int32_t>(s));
    weight.push_back(wt);
  }
};

// The transpose of a table over `inputs` sources: for each source, its (output, weight) entries in (output, entry)
// order (the CPU scatter's order of additions).
Taps transpose(const Taps& a, int64_t inputs) {
  std::vector<std::vector<std::pair<int32_t, double>>> lists(inputs);
  for (int64_t o = 0; o < a.outputs(); ++o)
    for (int32_t e = a.first[o]; e < a.first[o + 1]; ++e)
      lists[a.src[e]].emplace_back(static_cast<int32_t>(o), a.weight[e]);
  Taps t;
  for (const auto& list : lists) {
    t.open();
    for (const auto& [o, wt] : list) t.add(o, wt);
  }
  t.open();
  return t;
}

struct TableView {
  const int32_t* first;
  const int32_t* src;
  const double* weight;
};

// Tables on the device: one int32 and one double buffer, each filled in pinned host memory and copied
// asynchronously on the current stream (the caching host allocator keeps the pinned block until the copy is done).
struct DeviceTables {
  at::Tensor ints, doubles;
  std::vector<int64_t> first_at, src_at, weight_at;

  DeviceTables(const std::vector<const Taps*>& tables, const at::Device& device) {
    int64_t ni = 0, nd = 0;
    for (const Taps* t : tables) {
      first_at.push_back(ni);
      ni += static_cast<int64_t>(t->first.size());
      src_at.push_back(ni);
      ni += static_cast<int64_t>(t->src.size());
      weight_at.push_back(nd);
      nd += static_cast<int64_t>(t->weight.size());
    }
    at::Tensor hi = at::empty({std::max<int64_t>(ni, 1)}, at::TensorOptions().dtype(at::kInt).pinned_memory(true));
    at::Tensor hd =
        at::empty({std::max<int64_t>(nd, 1)}, at::TensorOptions().dtype(at::kDouble).pinned_memory(true));
    int32_t* pi = hi.data_ptr<int32_t>();
    double* pd = hd.data_ptr<double>();
    for (size_t k = 0; k < tables.size(); ++k) {
      const Taps* t = tables[k];
      std::memcpy(pi + first_at[k], t->first.data(), t->first.size() * sizeof(int32_t));
      if (!t->src.empty()) std::memcpy(pi + src_at[k], t->src.data(), t->src.size() * sizeof(int32_t));
      if (!t->weight.empty()) std::memcpy(pd + weight_at[k], t->weight.data(), t->weight.size() * sizeof(double));
    }
    ints = hi.to(device, /*non_blocking=*/true);
    doubles = hd.to(device, /*non_blocking=*/true);
  }

  TableView view(size_t k) const {
    return TableView{ints.data_ptr<int32_t>() + first_at[k], ints.data_ptr<int32_t>() + src_at[k],
                     doubles.data_ptr<double>() + weight_at[k]};
  }
};

unsigned flat_grid(int64_t total) {
  return static_cast<unsigned>(std::clamp<int64_t>((total + kThreads - 1) / kThreads, 1, int64_t(1) << 20));
}

// out[p][o][x] = sum_e weight[e] in[p][src[e]][x] over the entries of output row o (rows_out rows of w samples).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    pyr_rows_kernel(const T* __restrict__ in, const TableView tb, int64_t planes, int64_t rows_in, int64_t rows_out,
                    int64_t w, T* __restrict__ out) {
  const int64_t total = planes * rows_out * w;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t x = idx % w, o = (idx / w) % rows_out, p = idx / (w * rows_out);
    const T* plane = in + p * rows_in * w + x;
    T acc = T(0);
    for (int32_t e = tb.first[o]; e < tb.first[o + 1]; ++e)
      acc += static_cast<T>(tb.weight[e]) * plane[static_cast<int64_t>(tb.src[e]) * w];
    out[idx] = acc;
  }
}

// out[r][o] = sum_e weight[e] in[r][src[e]] over the entries of output column o (rows rows of n_in -> n_out).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    pyr_cols_kernel(const T* __restrict__ in, const TableView tb, int64_t rows, int64_t n_in, int64_t n_out,
                    T* __restrict__ out) {
  const int64_t total = rows * n_out;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t o = idx % n_out, r = idx / n_out;
    const T* row = in + r * n_in;
    T acc = T(0);
    for (int32_t e = tb.first[o]; e < tb.first[o + 1]; ++e) acc += static_cast<T>(tb.weight[e]) * row[tb.src[e]];
    out[idx] = acc;
  }
}

template <typename T>
void rows_pass(const at::Tensor& in, const TableView& tb, int64_t planes, int64_t rows_in, int64_t rows_out,
               int64_t w, at::Tensor& out, cudaStream_t stream) {
  pyr_rows_kernel<T><<<flat_grid(planes * rows_out * w), kThreads, 0, stream>>>(in.data_ptr<T>(), tb, planes, rows_in,
                                                                               rows_out, w, out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void cols_pass(const at::Tensor& in, const TableView& tb, int64_t rows, int64_t n_in, int64_t n_out, at::Tensor& out,
               cudaStream_t stream) {
  pyr_cols_kernel<T><<<flat_grid(rows * n_out), kThreads, 0, stream>>>(in.data_ptr<T>(), tb, rows, n_in, n_out,
                                                                      out.data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void forward_typed(const at::Tensor& x, at::Tensor& reduced, at::Tensor& expanded) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3), ho = (h + 1) / 2, wo = (w + 1) / 2;
  const Taps rv = cvvdp::reduce_rows<Taps>(h), rh = cvvdp::reduce_cols<Taps>(w, h % 2 == 1),
             ev = cvvdp::expand_taps<Taps>(ho, h), eh = cvvdp::expand_taps<Taps>(wo, w);
  const DeviceTables dt({&rv, &rh, &ev, &eh}, x.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor tmp = at::empty({planes, ho, w}, x.options());
  rows_pass<T>(x, dt.view(0), planes, h, ho, w, tmp, stream);                    // planes x ho x w
  cols_pass<T>(tmp, dt.view(1), planes * ho, w, wo, reduced, stream);            // planes x ho x wo
  at::Tensor tmp2 = at::empty({planes, h, wo}, x.options());
  rows_pass<T>(reduced, dt.view(2), planes, ho, h, wo, tmp2, stream);            // planes x h x wo
  cols_pass<T>(tmp2, dt.view(3), planes * h, wo, w, expanded, stream);           // planes x h x w
}

template <typename T>
void backward_typed(const at::Tensor& g_red, const at::Tensor& g_exp, at::Tensor& dx) {
  const int64_t planes = dx.size(0) * dx.size(1), h = dx.size(2), w = dx.size(3), ho = (h + 1) / 2, wo = (w + 1) / 2;
  const Taps rv = cvvdp::reduce_rows<Taps>(h), rh = cvvdp::reduce_cols<Taps>(w, h % 2 == 1),
             ev = cvvdp::expand_taps<Taps>(ho, h), eh = cvvdp::expand_taps<Taps>(wo, w);
  const Taps rvt = transpose(rv, h), rht = transpose(rh, w), evt = transpose(ev, ho), eht = transpose(eh, wo);
  const DeviceTables dt({&eht, &evt, &rht, &rvt}, dx.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor tmp = at::empty({planes, h, wo}, dx.options());
  cols_pass<T>(g_exp, dt.view(0), planes * h, w, wo, tmp, stream);   // planes x h x wo
  at::Tensor gn = at::empty({planes, ho, wo}, dx.options());
  rows_pass<T>(tmp, dt.view(1), planes, h, ho, wo, gn, stream);      // planes x ho x wo
  gn.add_(g_red.view({planes, ho, wo}));
  at::Tensor tmp2 = at::empty({planes, ho, w}, dx.options());
  cols_pass<T>(gn, dt.view(2), planes * ho, wo, w, tmp2, stream);    // planes x ho x w
  rows_pass<T>(tmp2, dt.view(3), planes, ho, h, w, dx, stream);      // planes x h x w
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> cvvdp_pyramid_step_launch(const at::Tensor& x) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t h = x.size(2), w = x.size(3);
  at::Tensor reduced = at::empty({x.size(0), x.size(1), (h + 1) / 2, (w + 1) / 2}, x.options());
  at::Tensor expanded = at::empty_like(x);
  if (x.numel() == 0) return {reduced, expanded};
  if (x.scalar_type() == at::kDouble)
    forward_typed<double>(x, reduced, expanded);
  else
    forward_typed<float>(x, reduced, expanded);
  return {reduced, expanded};
}

at::Tensor cvvdp_pyramid_step_backward_launch(const at::Tensor& grad_reduced, const at::Tensor& grad_expanded,
                                              const at::Tensor& planes) {
  const c10::cuda::CUDAGuard guard(planes.device());
  at::Tensor dx = at::empty(planes.sizes(), planes.options().memory_format(at::MemoryFormat::Contiguous));
  if (dx.numel() == 0) return dx;
  if (planes.scalar_type() == at::kDouble)
    backward_typed<double>(grad_reduced, grad_expanded, dx);
  else
    backward_typed<float>(grad_reduced, grad_expanded, dx);
  return dx;
}

}  // namespace turboiqa::cuda
