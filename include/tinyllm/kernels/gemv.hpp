// xsimd matrix-vector kernels for decoding (one token per sequence): every weight is read once, in
// memory order. Each output is one fma chain (bias, then k in order), as in the GEMM kernel, so a row
// alone and the same row in a batch give bitwise the same result.
// Scalar twins: kernels/reference.hpp. Depends on kernels/simd.hpp and kernels/elementwise.hpp.
#pragma once

#include <algorithm>  // std::min
#include <cmath>      // std::fma
#include <cstddef>    // std::size_t

#include "elementwise.hpp"  // activate
#include "reference.hpp"    // Epilogue
#include "simd.hpp"

namespace tinyllm::kernels::simd {

// y[n] = act(bias[n] + sum_k x[k] * w[k*ldw + n]) for n in [n_begin, n_end).
// x: [K]; w: [K, ldw] (HF Conv1D: in x out); bias: [ldw] or null; y: [ldw].
//
// Rows are swept in order, four at a time, so each thread streams its column slice of every row
// front to back; the running sums (at most `chunk` floats) stay in L1.
inline void gemv(const float* x, const float* w, std::size_t ldw, const float* bias, float* y, std::size_t K,
                 std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
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
        acc[j] = std::fma(x[k + 3], w3[j], std::fma(x[k + 2], w2[j], std::fma(x[k + 1], w1[j], std::fma(x[k], w0[j], acc[j]))));
    }
    for (; k < K; ++k) {
      const float* w0 = w + k * ldw + c0;
      const fbatch x0(x[k]);
      for (std::size_t j = 0; j < nv; j += W) xsimd::fma(x0, load(w0 + j), fbatch::load_aligned(acc + j)).store_aligned(acc + j);
      for (std::size_t j = nv; j < nc; ++j) acc[j] = std::fma(x[k], w0[j], acc[j]);
    }
    activate(acc, nc, ep);
    for (std::size_t j = 0; j < nc; ++j) y[c0 + j] = acc[j];
  }
}

namespace gemv_detail {

// y[m, n..n+R) for m < MX: R rows of w against MX rows of x; lanes accumulate in k order, then
// reduce_add, then the scalar tail: the same arithmetic for every (m, n) whatever MX is.
template <std::size_t R, std::size_t MX>
inline void dot_block(const float* x, std::size_t ldx, const float* w, std::size_t ldw, float* y, std::size_t ldy,
                      std::size_t K) {
  constexpr std::size_t W = simd_width;
  const std::size_t kv = K - K % W;
  fbatch acc[MX][R];
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t r = 0; r < R; ++r) acc[m][r] = fbatch(0.0f);
  for (std::size_t k = 0; k < kv; k += W) {
    fbatch wr[R];
    for (std::size_t r = 0; r < R; ++r) wr[r] = load(w + r * ldw + k);
    for (std::size_t m = 0; m < MX; ++m) {
      const fbatch xv = load(x + m * ldx + k);
      for (std::size_t r = 0; r < R; ++r) acc[m][r] = xsimd::fma(xv, wr[r], acc[m][r]);
    }
  }
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t r = 0; r < R; ++r) {
      float s = reduce_add(acc[m][r]);
      for (std::size_t k = kv; k < K; ++k) s = std::fma(x[m * ldx + k], w[r * ldw + k], s);
      y[m * ldy + r] = s;
    }
}

template <std::size_t R>
inline void dot_rows(std::size_t M, const float* x, std::size_t ldx, const float* w, std::size_t ldw, float* y,
                     std::size_t ldy, std::size_t K) {
  std::size_t m = 0;
  for (; m + 3 <= M; m += 3) dot_block<R, 3>(x + m * ldx, ldx, w, ldw, y + m * ldy, ldy, K);
  if (M - m == 2) dot_block<R, 2>(x + m * ldx, ldx, w, ldw, y + m * ldy, ldy, K);
  if (M - m == 1) dot_block<R, 1>(x + m * ldx, ldx, w, ldw, y + m * ldy, ldy, K);
}

}  // namespace gemv_detail

// y[m, n] = sum_k x[m, k] * w[n, k] for m < M and n in [n_begin, n_end): rows of x against a matrix
// stored row per output, like the tied head wte ([vocab, n_embd]). Four rows of w at a time, each
// streamed once front to back and used for up to three rows of x.
inline void gemv_t(std::size_t M, const float* x, std::size_t ldx, const float* w, std::size_t ldw, float* y,
                   std::size_t ldy, std::size_t K, std::size_t n_begin, std::size_t n_end) {
  std::size_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) gemv_detail::dot_rows<4>(M, x, ldx, w + n * ldw, ldw, y + n, ldy, K);
  for (; n < n_end; ++n) gemv_detail::dot_rows<1>(M, x, ldx, w + n * ldw, ldw, y + n, ldy, K);
}

}  // namespace tinyllm::kernels::simd
