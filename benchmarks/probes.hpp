// Machine limits measured in the benchmark's own run: memory read bandwidth and fp32 FMA peak, on
// n threads (OpenMP). Benchmarks print their results as shares of these.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <omp.h>
#include <tinyllm/detail/aligned.hpp>
#include <tinyllm/kernels/simd.hpp>

namespace bench {

using clock_type = std::chrono::steady_clock;
inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Read bandwidth in bytes/s: threads sum disjoint parts of a buffer far larger than the caches
// (best of several passes: the limit, not the average). The buffer is an AlignedBuffer, so in 2 MB
// pages where the system has them, like the converted weights: on this machine such a read is
// ~10-40% faster than one from 4 KB pages (see detail/aligned.hpp), so the limit is the higher one.
inline tinyllm::detail::AlignedBuffer& probe_buffer() {
  static tinyllm::detail::AlignedBuffer buf;
  return buf;
}
inline void release_probe_buffer() { probe_buffer() = tinyllm::detail::AlignedBuffer(); }

inline double read_bandwidth(int threads, std::size_t bytes = std::size_t(2) << 30) {
  tinyllm::detail::AlignedBuffer& buf = probe_buffer();
  const std::size_t n = bytes / sizeof(float);
  if (buf.size() < n) {
    buf.resize(n);
#pragma omp parallel for num_threads(2)
    for (std::size_t i = 0; i < n; i += 1024) buf[i] = 1.0f;  // touch every page
  }
  using tinyllm::kernels::fbatch;
  constexpr std::size_t W = fbatch::size;
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    float total = 0;
    const auto t0 = clock_type::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const std::size_t b = n / nt * t, e = t + 1 == nt ? n : n / nt * (t + 1);
      fbatch a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
      const float* p = buf.data();
      for (std::size_t i = b; i + 4 * W <= e; i += 4 * W) {
        a0 += fbatch::load_aligned(p + i);
        a1 += fbatch::load_aligned(p + i + W);
        a2 += fbatch::load_aligned(p + i + 2 * W);
        a3 += fbatch::load_aligned(p + i + 3 * W);
      }
      total += tinyllm::kernels::reduce_add(a0 + a1 + a2 + a3);
    }
    const double s = seconds_since(t0);
    sink = sink + total;
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s);
  }
  return best;
}

// fp32 FMA peak in FLOP/s: independent fma chains in registers on every thread.
inline double fma_peak(int threads) {
  using tinyllm::kernels::fbatch;
  double best = 0;
  volatile float sink = 0;
  const long iters = 20'000'000;
  for (int rep = 0; rep < 3; ++rep) {
    float total = 0;
    const auto t0 = clock_type::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      fbatch acc[12];
      for (int i = 0; i < 12; ++i) acc[i] = fbatch(0.001f * static_cast<float>(i + omp_get_thread_num()));
      const fbatch a(0.999f), b(0.0001f);
      for (long it = 0; it < iters; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = xsimd::fma(acc[i], a, b);
      fbatch s(0.0f);
      for (int i = 0; i < 12; ++i) s += acc[i];
      total += tinyllm::kernels::reduce_add(s);
    }
    const double s = seconds_since(t0);
    sink = sink + total;
    best = std::max(best, 2.0 * 12 * fbatch::size * static_cast<double>(iters) * threads / s);
  }
  return best;
}

}  // namespace bench
