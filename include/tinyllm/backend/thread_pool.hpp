// The ThreadPool backend: std::thread workers for builds without OpenMP. One process-wide pool of
// get_num_threads() - 1 workers (the caller is the last worker); idle workers spin briefly, then sleep.
// A parallel_for issued while the pool is busy with another caller's loop runs on the calling thread.
// Depends on backend/backend.hpp only.
#pragma once

#include <algorithm>           // std::min
#include <atomic>              // std::atomic
#include <chrono>              // std::chrono
#include <condition_variable>  // std::condition_variable
#include <cstddef>             // std::size_t
#include <mutex>               // std::mutex
#include <thread>              // std::thread
#include <type_traits>         // std::remove_reference_t
#include <vector>              // std::vector

#include "backend.hpp"

namespace tinyllm {

namespace detail {

class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  // Runs call(ctx, b, e) on `threads` chunks of [begin, end); chunk 0 on the calling thread.
  // Returns false (without running anything) when the pool is busy with another caller.
  bool run(std::size_t begin, std::size_t end, int threads, void (*call)(void*, std::size_t, std::size_t), void* ctx) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    ensure_workers(threads - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = Job{begin, end, threads, call, ctx};
      pending_.store(threads - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    std::size_t b, e;
    split_range(begin, end, 0, threads, b, e);
    if (b < e) call(ctx, b, e);
    while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    return true;
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  struct Job {
    std::size_t begin = 0, end = 0;
    int threads = 1;
    void (*call)(void*, std::size_t, std::size_t) = nullptr;
    void* ctx = nullptr;
  };

  void ensure_workers(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      const int index = static_cast<int>(workers_.size()) + 1;  // chunk index; 0 is the caller's
      const unsigned seen = generation_.load(std::memory_order_acquire);  // before the next job is posted
      workers_.emplace_back([this, index, seen] { work(index, seen); });
    }
  }

  void work(int index, unsigned seen) {
    for (;;) {
      // Spin a little (decoding issues loops back to back), then sleep until the next job.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until)
        std::this_thread::yield();
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        job = job_;
      }
      if (index < job.threads) {
        std::size_t b, e;
        split_range(job.begin, job.end, index, job.threads, b, e);
        if (b < e) job.call(job.ctx, b, e);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::mutex run_mutex_;  // one parallel loop at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> pending_{0};
  Job job_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace detail

struct ThreadPool {
  static int num_threads() { return get_num_threads(); }
  template <class Fn>
  static void parallel_for(std::size_t begin, std::size_t end, Fn&& fn) {
    if (begin >= end) return;
    const int threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(num_threads()), end - begin));
    if (threads > 1) {
      auto call = [](void* ctx, std::size_t b, std::size_t e) { (*static_cast<std::remove_reference_t<Fn>*>(ctx))(b, e); };
      if (detail::Pool::instance().run(begin, end, threads, call, const_cast<void*>(static_cast<const void*>(&fn))))
        return;
    }
    fn(begin, end);
  }
};

}  // namespace tinyllm
