// xsimd matrix-vector kernels for decoding (one token): every weight is read once, in memory order.
// Scalar twins: kernels/reference.hpp. Depends on kernels/simd.hpp and kernels/elementwise.hpp.
#pragma once

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t

#include "elementwise.hpp"  // activate, dot
#include "reference.hpp"    // Epilogue
#include "simd.hpp"

namespace tinyllm::kernels::simd {

// y[n] = (accumulate ? y[n] : 0) + act(bias[n] + sum_k x[k] * w[k*ldw + n]) for n in [n_begin, n_end).
// x: [K]; w: [K, ldw] (HF Conv1D: in x out); bias: [ldw] or null; y: [ldw].
//
// Rows are swept in order, four at a time, so each thread streams its column slice of every row
// front to back; the partial sums (at most `chunk` floats) stay in L1.
inline void gemv(const float* x, const float* w, std::size_t ldw, const float* bias, float* y, std::size_t K,
                 std::size_t n_begin, std::size_t n_end, bool accumulate, Epilogue ep = Epilogue::none) {
  constexpr std::size_t W = simd_width;
  constexpr std::size_t chunk = 1024;  // floats of y per sweep: 4 KB
  alignas(64) float acc[chunk];
  for (std::size_t c0 = n_begin; c0 < n_end; c0 += chunk) {
    const std::size_t nc = std::min(chunk, n_end - c0), nv = nc - nc % W;
    for (std::size_t j = 0; j < nc; ++j) acc[j] = bias ? bias[c0 + j] : 0.0f;
    std::size_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const float* w0 = w + k * ldw + c0;
      const float* w1 = w0 + ldw;
      const float* w2 = w1 + ldw;
      const float* w3 = w2 + ldw;
      const fbatch x0(x[k]), x1(x[k + 1]), x2(x[k + 2]), x3(x[k + 3]);
      for (std::size_t j = 0; j < nv; j += W) {
        fbatch a = fbatch::load_aligned(acc + j);
        a = xsimd::fma(x0, load(w0 + j), a);
        a = xsimd::fma(x1, load(w1 + j), a);
        a = xsimd::fma(x2, load(w2 + j), a);
        a = xsimd::fma(x3, load(w3 + j), a);
        a.store_aligned(acc + j);
      }
      for (std::size_t j = nv; j < nc; ++j)
        acc[j] += x[k] * w0[j] + x[k + 1] * w1[j] + x[k + 2] * w2[j] + x[k + 3] * w3[j];
    }
    for (; k < K; ++k) {
      const float* w0 = w + k * ldw + c0;
      const fbatch x0(x[k]);
      for (std::size_t j = 0; j < nv; j += W) {
        fbatch a = fbatch::load_aligned(acc + j);
        xsimd::fma(x0, load(w0 + j), a).store_aligned(acc + j);
      }
      for (std::size_t j = nv; j < nc; ++j) acc[j] += x[k] * w0[j];
    }
    if (accumulate) {
      add(y + c0, acc, nc);
    } else {
      activate(acc, nc, ep);
      for (std::size_t j = 0; j < nc; ++j) y[c0 + j] = acc[j];
    }
  }
}

// y[n] = sum_k x[k] * w[n*ldw + k] for n in [n_begin, n_end): a matrix stored row per output, like the
// tied head wte ([vocab, n_embd]). Four rows at a time, each streamed front to back.
inline void gemv_t(const float* x, const float* w, std::size_t ldw, float* y, std::size_t K, std::size_t n_begin,
                   std::size_t n_end) {
  constexpr std::size_t W = simd_width;
  const std::size_t kv = K - K % W;
  std::size_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) {
    const float* r0 = w + n * ldw;
    const float* r1 = r0 + ldw;
    const float* r2 = r1 + ldw;
    const float* r3 = r2 + ldw;
    fbatch a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
    for (std::size_t k = 0; k < kv; k += W) {
      const fbatch xv = load(x + k);
      a0 = xsimd::fma(xv, load(r0 + k), a0);
      a1 = xsimd::fma(xv, load(r1 + k), a1);
      a2 = xsimd::fma(xv, load(r2 + k), a2);
      a3 = xsimd::fma(xv, load(r3 + k), a3);
    }
    float s0 = reduce_add(a0), s1 = reduce_add(a1), s2 = reduce_add(a2), s3 = reduce_add(a3);
    for (std::size_t k = kv; k < K; ++k) {
      s0 += x[k] * r0[k];
      s1 += x[k] * r1[k];
      s2 += x[k] * r2[k];
      s3 += x[k] * r3[k];
    }
    y[n] = s0;
    y[n + 1] = s1;
    y[n + 2] = s2;
    y[n + 3] = s3;
  }
  for (; n < n_end; ++n) y[n] = dot(x, w + n * ldw, K);
}

}  // namespace tinyllm::kernels::simd
