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
#include "q8.hpp"          // q8_gemv, q8_gemm
#include "typed_load.hpp"  // LoadF32, LoadF16, LoadBF16, with_loader

namespace tinyllm::kernels::simd {

// y[n] = act(bias[n] + sum_k x[k] * w[k, n]) for n in [n_begin, n_end).
// x: [K]; w: [K, N] (HF Conv1D: in x out), any WeightType; bias: [N] or null; y: [N].
//
// Rows are swept in order, four at a time, so each thread streams its column slice of every row
// front to back; the running sums (at most `chunk` floats) stay in L1.
template <class Load>
inline void gemv(const float* x, const Load& w, const float* bias, float* y, std::size_t K, std::size_t n_begin,
                 std::size_t n_end, Epilogue ep) {
  constexpr std::size_t W = simd_width;
  constexpr std::size_t chunk = 1024;   // floats of y per sweep: 4 KB
  constexpr std::size_t line = std::max(W, 64 / Load::bytes);  // elements per cache line (a multiple of W)
  alignas(64) float acc[chunk];
  for (std::size_t c0 = n_begin; c0 < n_end; c0 += chunk) {
    const std::size_t nc = std::min(chunk, n_end - c0);
    // columns [c0, v0) and [v1, c0 + nc) one at a time; between them batches at multiples of W
    const std::size_t v0 = std::min(c0 + nc, (c0 + W - 1) / W * W), v1 = std::max(v0, (c0 + nc) / W * W);
    for (std::size_t j = 0; j < nc; ++j) acc[j] = bias ? bias[c0 + j] : 0.0f;
    float* av = acc + (v0 - c0);
    auto scalar_columns = [&](std::size_t k, std::size_t rows) {
      auto column = [&](std::size_t c) {
        float a = acc[c - c0];
        for (std::size_t r = 0; r < rows; ++r) a = std::fma(x[k + r], w.at(k + r, c), a);
        acc[c - c0] = a;
      };
      for (std::size_t c = c0; c < v0; ++c) column(c);
      for (std::size_t c = v1; c < c0 + nc; ++c) column(c);
    };
    std::size_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const fbatch x0(x[k]), x1(x[k + 1]), x2(x[k + 2]), x3(x[k + 3]);
      const bool ahead = k + 8 <= K;  // prefetch the next four rows' lines of this column range
      for (std::size_t cl = v0; cl < v1; cl += line) {
        if (ahead)
          for (std::size_t r = 4; r < 8; ++r) w.prefetch(k + r, cl);
        const std::size_t c_end = std::min(v1, cl + line);
        for (std::size_t c = cl; c < c_end; c += W) {
          fbatch a = load(av + (c - v0));
          a = xsimd::fma(x0, w.load(k, c), a);
          a = xsimd::fma(x1, w.load(k + 1, c), a);
          a = xsimd::fma(x2, w.load(k + 2, c), a);
          a = xsimd::fma(x3, w.load(k + 3, c), a);
          store(av + (c - v0), a);
        }
      }
      if (v0 - c0 + (c0 + nc - v1)) scalar_columns(k, 4);
    }
    for (; k < K; ++k) {
      const fbatch x0(x[k]);
      for (std::size_t c = v0; c < v1; c += W) store(av + (c - v0), xsimd::fma(x0, w.load(k, c), load(av + (c - v0))));
      if (v0 - c0 + (c0 + nc - v1)) scalar_columns(k, 1);
    }
    activate(acc, nc, ep);
    for (std::size_t j = 0; j < nc; ++j) y[c0 + j] = acc[j];
  }
}

inline void gemv(const float* x, const WeightView& w, const float* bias, float* y, std::size_t K, std::size_t n_begin,
                 std::size_t n_end, Epilogue ep = Epilogue::none) {
  if (w.type == WeightType::Q8) return q8_gemv(x, K, w, bias, y, n_begin, n_end, ep);
  with_loader(w, [&](const auto& load) { gemv(x, load, bias, y, K, n_begin, n_end, ep); });
}

namespace gemv_detail {

// y[m, n..n+R) for m < MX: R rows of w (from row n) against MX rows of x; lanes accumulate in k
// order, then reduce_add, then the scalar tail: the same arithmetic for every (m, n) whatever MX is.
template <std::size_t R, std::size_t MX, class Load>
inline void dot_block(const float* x, std::size_t ldx, const Load& w, std::size_t n, std::size_t n_end, float* y,
                      std::size_t ldy, std::size_t K) {
  constexpr std::size_t W = simd_width;
  constexpr std::size_t line = std::max(W, 64 / Load::bytes);  // elements per cache line (a multiple of W)
  const std::size_t kv = K - K % W;
  const std::size_t ahead = std::min(R, n_end - std::min(n_end, n + R));  // rows of the next block to prefetch
  fbatch acc[MX][R];
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t r = 0; r < R; ++r) acc[m][r] = fbatch(0.0f);
  for (std::size_t kl = 0; kl < kv; kl += line) {  // one cache line of each row per outer step
    for (std::size_t r = 0; r < ahead; ++r) w.prefetch(n + R + r, kl);
    const std::size_t k_end = std::min(kv, kl + line);
    for (std::size_t k = kl; k < k_end; k += W) {
      fbatch wr[R];
      for (std::size_t r = 0; r < R; ++r) wr[r] = w.load(n + r, k);
      for (std::size_t m = 0; m < MX; ++m) {
        const fbatch xv = load(x + m * ldx + k);
        for (std::size_t r = 0; r < R; ++r) acc[m][r] = xsimd::fma(xv, wr[r], acc[m][r]);
      }
    }
  }
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t r = 0; r < R; ++r) {
      float s = reduce_add(acc[m][r]);
      for (std::size_t k = kv; k < K; ++k) s = std::fma(x[m * ldx + k], w.at(n + r, k), s);
      y[m * ldy + r] = s;
    }
}

template <std::size_t R, class Load>
inline void dot_rows(std::size_t M, const float* x, std::size_t ldx, const Load& w, std::size_t n, std::size_t n_end,
                     float* y, std::size_t ldy, std::size_t K) {
  std::size_t m = 0;
  for (; m + 3 <= M; m += 3) dot_block<R, 3>(x + m * ldx, ldx, w, n, n_end, y + m * ldy, ldy, K);
  if (M - m == 2) dot_block<R, 2>(x + m * ldx, ldx, w, n, n_end, y + m * ldy, ldy, K);
  if (M - m == 1) dot_block<R, 1>(x + m * ldx, ldx, w, n, n_end, y + m * ldy, ldy, K);
}

}  // namespace gemv_detail

// y[m, n] = sum_k x[m, k] * w[n, k] for m < M and n in [n_begin, n_end): rows of x against a matrix
// stored row per output (w: [N, K], any WeightType), like the tied head wte ([vocab, n_embd]). Four
// rows of w at a time, each streamed once front to back and used for up to three rows of x.
inline void gemv_t(std::size_t M, const float* x, std::size_t ldx, const WeightView& w, float* y, std::size_t ldy,
                   std::size_t K, std::size_t n_begin, std::size_t n_end) {
  if (w.type == WeightType::Q8) {  // stored for W x: the same int8 products as a linear layer
    if (M == 1) return q8_gemv(x, K, w, nullptr, y, n_begin, n_end, Epilogue::none);
    return q8_gemm(M, x, ldx, K, w, nullptr, y, ldy, n_begin, n_end, Epilogue::none);
  }
  with_loader(w, [&](const auto& load) {
    std::size_t n = n_begin;
    for (; n + 4 <= n_end; n += 4) gemv_detail::dot_rows<4>(M, x, ldx, load, n, n_end, y + n, ldy, K);
    for (; n < n_end; ++n) gemv_detail::dot_rows<1>(M, x, ldx, load, n, n_end, y + n, ldy, K);
  });
}

// out[0:cols] = row r of w as floats (the embedding lookup).
inline void dequantize_row(const WeightView& w, std::size_t r, float* out) {
  if (w.type == WeightType::Q8) {
    for (std::size_t c = 0; c < w.cols; ++c) out[c] = weight_at(w, r, c);
    return;
  }
  with_loader(w, [&](const auto& load) {
    constexpr std::size_t W = simd_width;
    std::size_t c = 0;
    for (; c + W <= w.cols; c += W) store(out + c, load.load(r, c));
    for (; c < w.cols; ++c) out[c] = load.at(r, c);
  });
}

}  // namespace tinyllm::kernels::simd
