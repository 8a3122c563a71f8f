// The Backend trait: how layers run a loop in parallel. Kernels never see it; layers split work into
// row or column ranges and hand each range to a kernel. Depends on nothing else in tinyllm.
//
// A Backend is a type with two static functions:
//
//   static int num_threads();                        // threads parallel_for will use
//   template <class Fn>                              // calls fn(b, e) on disjoint sub-ranges that
//   static void parallel_for(std::size_t begin,      // cover [begin, end) exactly once, and returns
//                            std::size_t end, Fn fn);// when all calls have returned
//
// Sub-ranges are contiguous and in order of thread index, so a kernel that is given [b, e) of column
// tiles streams its part of a weight matrix from start to end. fn must not throw.
//
// Backends here: Serial (this header), OpenMP (backend/openmp.hpp, the only place with #pragma omp),
// ThreadPool (backend/thread_pool.hpp, std::thread, for builds without OpenMP). Built on the trait:
// parallel_for_each (items handed out one at a time, for work that a fixed split would leave uneven).
#pragma once

#include <algorithm>  // std::min, std::max
#include <atomic>     // std::atomic
#include <cstddef>    // std::size_t
#include <cstdlib>    // std::getenv, std::atoi
#include <thread>     // std::thread::hardware_concurrency

namespace tinyllm {

namespace detail {
inline int default_thread_count() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}
inline std::atomic<int>& requested_threads() {
  static std::atomic<int> n{0};  // 0: default_thread_count()
  return n;
}
// One turn of a spin-wait loop (x86: pause, which spares the other hyperthread and the memory order
// machinery; elsewhere nothing).
inline void cpu_relax() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_ia32_pause();
#endif
}
// Chunk t of `threads` equal parts of [begin, end).
inline void split_range(std::size_t begin, std::size_t end, int t, int threads, std::size_t& b, std::size_t& e) {
  const std::size_t n = end - begin, q = n / threads, r = n % threads;
  const std::size_t tt = static_cast<std::size_t>(t);
  b = begin + tt * q + std::min(tt, r);
  e = b + q + (tt < r ? 1 : 0);
}
}  // namespace detail

// Threads used by the parallel backends: n > 0 sets it, n <= 0 restores the default
// (OMP_NUM_THREADS when set, else all cores). The only global thread state in tinyllm.
inline void set_num_threads(int n) { detail::requested_threads().store(n > 0 ? n : 0); }

inline int get_num_threads() {
  const int n = detail::requested_threads().load();
  return n > 0 ? n : detail::default_thread_count();
}

// Runs everything on the calling thread.
struct Serial {
  static int num_threads() { return 1; }
  template <class Fn>
  static void parallel_for(std::size_t begin, std::size_t end, Fn&& fn) {
    if (begin < end) fn(begin, end);
  }
};

// Calls fn(i) once for every i in [0, n), in order of i, each taken by whichever of the Backend's
// threads is free: for pieces of work whose time varies (on a shared host one core can be slowed
// down for a while), where parallel_for's fixed split would leave the other threads waiting.
template <class Backend, class Fn>
void parallel_for_each(std::size_t n, Fn&& fn) {
  std::atomic<std::size_t> next{0};
  const std::size_t workers = std::min(n, static_cast<std::size_t>(std::max(1, Backend::num_threads())));
  Backend::parallel_for(0, workers, [&](std::size_t, std::size_t) {
    for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i);
  });
}

}  // namespace tinyllm
