#include "parallel.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TURBOIQA_CPU_RELAX() _mm_pause()
#else
#define TURBOIQA_CPU_RELAX() ((void)0)
#endif

namespace turboiqa::cpu {

namespace {

// Shared by the caller and its helpers. Helpers hold it by shared_ptr: one that wakes after the call has returned
// still finds valid counters (and no chunk to claim), while body/context are only touched for a claimed chunk,
// which the caller is still waiting for.
struct Job {
  int64_t n = 0, chunk = 1, chunks = 0;
  ChunkBody body = nullptr;
  const void* context = nullptr;
  std::atomic<int64_t> next{0};      // next chunk to claim
  std::atomic<int64_t> finished{0};  // chunks run (or skipped after an error)
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
};

thread_local bool inside_chunk = false;  // a body that calls parallel_chunks again runs that loop inline

void work(Job& job) {
  for (;;) {
    const int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.chunks) return;
    if (!job.failed.load(std::memory_order_relaxed)) {
      inside_chunk = true;
      try {
        job.body(job.context, c * job.chunk, std::min(job.n, (c + 1) * job.chunk));
      } catch (...) {
        std::lock_guard<std::mutex> lock(job.error_mutex);
        if (!job.error) job.error = std::current_exception();
        job.failed.store(true, std::memory_order_relaxed);
      }
      inside_chunk = false;
    }
    if (job.finished.fetch_add(1, std::memory_order_acq_rel) + 1 == job.chunks) job.finished.notify_all();
  }
}

void run_inline(int64_t n, int64_t chunk, ChunkBody body, const void* context) {
  for (int64_t begin = 0; begin < n; begin += chunk) body(context, begin, std::min(n, begin + chunk));
}

}  // namespace

void parallel_chunks_erased(int64_t n, int64_t chunk, ChunkBody body, const void* context) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  const int64_t chunks = (n - 1) / chunk + 1;
  const int64_t threads = std::min<int64_t>({static_cast<int64_t>(at::get_num_threads()), chunks,
                                             static_cast<int64_t>(at::get_num_interop_threads()) + 1});
  if (threads <= 1 || inside_chunk || at::in_parallel_region()) return run_inline(n, chunk, body, context);

  auto job = std::make_shared<Job>();
  job->n = n;
  job->chunk = chunk;
  job->chunks = chunks;
  job->body = body;
  job->context = context;
  for (int64_t t = 1; t < threads; ++t) at::launch([job] { work(*job); });
  work(*job);
  // Every chunk is claimed; wait for the ones still running on helpers: spin briefly (they are usually about to
  // finish), then sleep until the last one notifies.
  int64_t done = job->finished.load(std::memory_order_acquire);
  for (int spin = 0; done < chunks && spin < 500; ++spin) {
    TURBOIQA_CPU_RELAX();
    done = job->finished.load(std::memory_order_acquire);
  }
  while (done < chunks) {
    job->finished.wait(done, std::memory_order_acquire);
    done = job->finished.load(std::memory_order_acquire);
  }
  if (job->error) std::rethrow_exception(job->error);
}

namespace {

std::tuple<at::Tensor, at::Tensor> parallel_chunks_probe(const at::Tensor& items, int64_t chunk, int64_t fail_at) {
  TORCH_CHECK(chunk >= 1, "_parallel_chunks_probe: chunk must be >= 1, got ", chunk);
  const int64_t n = items.numel();
  at::Tensor visits = at::zeros({n}, at::kLong), first = at::full({n}, -1, at::kLong);
  int64_t* v = visits.data_ptr<int64_t>();
  int64_t* f = first.data_ptr<int64_t>();
  parallel_chunks(n, chunk, [&](int64_t begin, int64_t end) {
    TORCH_CHECK(begin != fail_at, "_parallel_chunks_probe: chunk ", begin, " failed on purpose");
    for (int64_t i = begin; i < end; ++i) {
      std::atomic_ref<int64_t>(v[i]).fetch_add(1, std::memory_order_relaxed);
      f[i] = begin;
    }
  });
  return {visits, first};
}

}  // namespace

TORCH_LIBRARY_IMPL(turboiqa, CPU, m) { m.impl("_parallel_chunks_probe", &parallel_chunks_probe); }

}  // namespace turboiqa::cpu
