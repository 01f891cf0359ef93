#include "parallel.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

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
  int caller_cpu = -1;  // where the caller ran when it asked for help
  std::mutex error_mutex;
  std::exception_ptr error;
};

constexpr int64_t kMaxThreads = 64;  // helpers started at most: kMaxThreads - 1

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

// A woken helper is often placed on its waker's CPU (on virtual machines the idle CPU looks busy to the
// scheduler), where it only halves the caller's speed until the load balancer moves it, milliseconds later. A
// helper that finds itself there steps off that CPU (drop it from the affinity mask: the kernel migrates the thread
// at once) and restores its mask, staying where it landed. Nothing happens when the mask allows one CPU only.
#ifdef __linux__
int current_cpu() { return sched_getcpu(); }

void leave_cpu(int cpu) {
  cpu_set_t allowed, others;
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  others = allowed;
  CPU_CLR(cpu, &others);
  if (CPU_COUNT(&others) == 0 || sched_setaffinity(0, sizeof(others), &others) != 0) return;
  sched_setaffinity(0, sizeof(allowed), &allowed);
}
#else
int current_cpu() { return -1; }
void leave_cpu(int) {}
#endif

void run_inline(int64_t n, int64_t chunk, ChunkBody body, const void* context) {
  for (int64_t begin = 0; begin < n; begin += chunk) body(context, begin, std::min(n, begin + chunk));
}

// Helper threads of our own (not torch's inter-op pool, whose threads sleep as soon as a task ends): after a job a
// helper spins for kHotSpin before it sleeps on a condition variable. A metric is a sequence of kernel calls a few
// tens of microseconds apart (MS-SSIM: 13); waking a sleeping thread costs ~10 µs typically but milliseconds on a
// virtual CPU that went idle, and a helper that joins late only does less of the work. The spin is bounded and
// only follows a job, so an idle process burns nothing; threads are detached and the pool is never freed (joining
// at interpreter exit would race with the teardown), and a forked child starts a pool of its own.
constexpr auto kHotSpin = std::chrono::microseconds(200);

struct Pool {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;  // one entry per helper asked for
  std::atomic<int64_t> queued{0};          // queue.size(), for the spinning helpers to poll without the lock
  std::atomic<uint64_t> requests{0};       // requests so far: a sleeping helper wakes when it changes
  int parked = 0;                          // helpers waiting on `wake`
  int threads = 0;
};

std::atomic<Pool*> current_pool{nullptr};
std::mutex pool_creation;

std::shared_ptr<Job> pop_locked(Pool& pool) {
  if (pool.queue.empty()) return nullptr;
  std::shared_ptr<Job> job = std::move(pool.queue.front());
  pool.queue.pop_front();
  pool.queued.fetch_sub(1, std::memory_order_relaxed);
  return job;
}

// Spin (polling `queued`) for kHotSpin after each job or wake-up, then sleep until the next request. A helper woken
// too late for the job that woke it (the caller did all the work and withdrew it) still spins for the next one.
void helper_main(Pool* pool) {
  uint64_t seen = pool->requests.load(std::memory_order_relaxed);
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kHotSpin;
    for (int i = 1;; ++i) {
      if (pool->queued.load(std::memory_order_relaxed) > 0) {
        std::shared_ptr<Job> job;
        {
          std::lock_guard<std::mutex> lock(pool->mutex);
          job = pop_locked(*pool);
        }
        if (job) {
          if (job->next.load(std::memory_order_relaxed) < job->chunks && current_cpu() == job->caller_cpu)
            leave_cpu(job->caller_cpu);
          work(*job);
          spin_until = std::chrono::steady_clock::now() + kHotSpin;
        }
      } else if (i % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
        break;
      } else {
        TURBOIQA_CPU_RELAX();
      }
    }
    std::unique_lock<std::mutex> lock(pool->mutex);
    ++pool->parked;
    pool->wake.wait(lock, [&] { return pool->requests.load(std::memory_order_relaxed) != seen; });
    --pool->parked;
    seen = pool->requests.load(std::memory_order_relaxed);
  }
}

Pool& pool() {
  Pool* p = current_pool.load(std::memory_order_acquire);
  if (p) return *p;
  std::lock_guard<std::mutex> lock(pool_creation);
  if (!current_pool.load(std::memory_order_relaxed)) {
    static bool registered = [] {
      // The child of a fork has none of the parent's threads: it builds a new pool (the old one is leaked).
      return pthread_atfork(nullptr, nullptr, [] { current_pool.store(nullptr, std::memory_order_relaxed); }) == 0;
    }();
    (void)registered;
    current_pool.store(new Pool, std::memory_order_release);
  }
  return *current_pool.load(std::memory_order_relaxed);
}

// Queues `helpers` entries for the job, starting threads so that at least that many exist.
void ask_for_helpers(Pool& pool, const std::shared_ptr<Job>& job, int helpers) {
  bool notify;
  {
    std::lock_guard<std::mutex> lock(pool.mutex);
    for (; pool.threads < helpers; ++pool.threads) std::thread(helper_main, &pool).detach();
    for (int i = 0; i < helpers; ++i) pool.queue.push_back(job);
    pool.queued.fetch_add(helpers, std::memory_order_relaxed);
    pool.requests.fetch_add(1, std::memory_order_relaxed);
    notify = pool.parked > 0;
  }
  if (notify) pool.wake.notify_all();
}

// Entries of a finished job that no helper took: dropped, so helpers never start on a dead job.
void withdraw(Pool& pool, const Job* job) {
  std::lock_guard<std::mutex> lock(pool.mutex);
  const auto end = std::remove_if(pool.queue.begin(), pool.queue.end(),
                                  [job](const std::shared_ptr<Job>& entry) { return entry.get() == job; });
  pool.queued.fetch_sub(pool.queue.end() - end, std::memory_order_relaxed);
  pool.queue.erase(end, pool.queue.end());
}

}  // namespace

void parallel_chunks_erased(int64_t n, int64_t chunk, ChunkBody body, const void* context) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  const int64_t chunks = (n - 1) / chunk + 1;
  const int64_t threads = std::min<int64_t>({static_cast<int64_t>(at::get_num_threads()), chunks, kMaxThreads});
  if (threads <= 1 || inside_chunk || at::in_parallel_region()) return run_inline(n, chunk, body, context);

  auto job = std::make_shared<Job>();
  job->n = n;
  job->chunk = chunk;
  job->chunks = chunks;
  job->body = body;
  job->context = context;
  job->caller_cpu = current_cpu();
  Pool& helpers = pool();
  ask_for_helpers(helpers, job, static_cast<int>(threads - 1));
  work(*job);
  withdraw(helpers, job.get());
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
