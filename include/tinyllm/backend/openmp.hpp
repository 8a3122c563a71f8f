// The OpenMP backend: the only file in tinyllm with #pragma omp. Without OpenMP (no -fopenmp) it
// still compiles and runs serially. Depends on backend/backend.hpp only.
#pragma once

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t

#include "backend.hpp"

#ifdef _OPENMP
#include <omp.h>  // omp_get_thread_num
#endif

namespace tinyllm {

struct OpenMP {
  static int num_threads() {
#ifdef _OPENMP
    return get_num_threads();
#else
    return 1;
#endif
  }
  template <class Fn>
  static void parallel_for(std::size_t begin, std::size_t end, Fn&& fn) {
    if (begin >= end) return;
    const int threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(num_threads()), end - begin));
    if (threads <= 1) {
      fn(begin, end);
      return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      const int n = omp_get_num_threads();  // may be fewer than asked (nested regions, limits)
      for (int part = t; part < threads; part += n) {
        std::size_t b, e;
        detail::split_range(begin, end, part, threads, b, e);
        if (b < e) fn(b, e);
      }
    }
#endif
  }
};

}  // namespace tinyllm
