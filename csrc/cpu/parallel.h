// The one work-distribution mechanism of the CPU kernels: fixed-size chunks claimed dynamically.
//
// at::parallel_for gives each thread one contiguous share, so the call lasts as long as the slowest thread: on a
// loaded machine, where one thread gets half a core, two threads were slower than one. Here the calling thread and
// up to get_num_threads() - 1 helper threads (a small pool in parallel.cpp) claim chunks from a shared counter; a
// helper that starts late finds less (or nothing) to do, and the caller waits only for chunks already claimed,
// never for a thread that has not started. Waiting sleeps on a futex after a short spin, and an idle helper
// spins at most 200 µs after a job before it sleeps: no core is burnt on a barrier or by an idle pool.
//
// Chunk boundaries depend only on (n, chunk), never on the thread count or on who runs a chunk, so a body that
// writes one result per chunk (or per item) gives bit-identical results with any number of threads.
#pragma once

#include <cstdint>
#include <type_traits>

namespace turboiqa::cpu {

using ChunkBody = void (*)(const void* context, int64_t begin, int64_t end);

void parallel_chunks_erased(int64_t n, int64_t chunk, ChunkBody body, const void* context);

// Calls body(begin, end) for [0, chunk), [chunk, 2 chunk), ... up to n, possibly on several threads at once.
// Exceptions thrown by the body are re-thrown here (the first one; later chunks are then skipped).
template <typename F>
void parallel_chunks(int64_t n, int64_t chunk, const F& body) {
  parallel_chunks_erased(
      n, chunk,
      [](const void* context, int64_t begin, int64_t end) { (*static_cast<const F*>(context))(begin, end); },
      static_cast<const void*>(&body));
}

}  // namespace turboiqa::cpu
