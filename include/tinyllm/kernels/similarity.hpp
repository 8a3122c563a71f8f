// Kernels of vector search: inner products of query rows with the rows of a matrix (an index of
// vectors, [N, d], one per row), and the scan for scores above a threshold that exact top-k selection
// runs. Scalar twins first (the oracle; TINYLLM_NO_SIMD uses them), then the xsimd kernels.
// Depends on kernels/kernels.hpp (gemv_t, the head's kernel, for one query).
#pragma once

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::fma
#include <cstddef>    // std::size_t
#include <type_traits>  // std::decay_t

#include "kernels.hpp"

namespace tinyllm::kernels {

namespace scalar {

// y[m, n] = sum_k x[m, k] * w[n, k] for m < M and n in [n_begin, n_end): queries against a matrix
// stored one vector per row. x: [M, ldx]; w: [N, K], any WeightType; y: [M, ldy]. One fma chain in k
// order per element (the SIMD kernel sums lanes and then reduces them: the two agree to float
// rounding, see tests).
inline void inner_products(std::size_t M, const float* x, std::size_t ldx, const WeightView& w, float* y,
                           std::size_t ldy, std::size_t K, std::size_t n_begin, std::size_t n_end) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = n_begin; n < n_end; ++n) {
      float s = 0.0f;
      for (std::size_t k = 0; k < K; ++k) s = std::fma(x[m * ldx + k], weight_at(w, n, k), s);
      y[m * ldy + n] = s;
    }
}

// The first i < n with x[i] > threshold, else n (a NaN is never above anything).
inline std::size_t first_above(const float* x, std::size_t n, float threshold) {
  for (std::size_t i = 0; i < n; ++i)
    if (x[i] > threshold) return i;
  return n;
}

}  // namespace scalar

#ifndef TINYLLM_NO_SIMD
namespace simd {

namespace similarity_detail {

// Keeps v in a register. Otherwise GCC, short of registers, re-reads a query's vector from memory for
// each fused multiply-add that uses it (a folded operand): 25 loads for 24 FMAs, and the loads set the
// pace rather than the FMA units (docs/performance.md, "Kernel notes", has the figure).
inline void keep_in_register(fbatch& v) {
#if (defined(__GNUC__) || defined(__clang__)) && (TINYLLM_SIMD_512 || TINYLLM_SIMD_256)
  auto r = static_cast<typename fbatch::register_type>(v);
  asm("" : "+v"(r));
  v = fbatch(r);
#else
  (void)v;
#endif
}

// y[m, r] = x[m] . w[n + r] for m < MX, r < R: lanes accumulate in k order, then reduce_add, then the
// scalar tail: gemv.hpp's dot_block arithmetic (so bitwise gemv_t's for one query), with the MX x R
// sums and the R rows of w in registers.
template <std::size_t R, std::size_t MX, class Load>
inline void dot_tile(const float* x, std::size_t ldx, const Load& w, std::size_t n, float* y, std::size_t ldy,
                     std::size_t K) {
  constexpr std::size_t W = simd_width;
  const std::size_t kv = K - K % W;
  fbatch acc[MX][R];
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t r = 0; r < R; ++r) acc[m][r] = fbatch(0.0f);
  for (std::size_t k = 0; k < kv; k += W) {
    fbatch wr[R];
    for (std::size_t r = 0; r < R; ++r) wr[r] = w.load(n + r, k);
    for (std::size_t m = 0; m < MX; ++m) {
      fbatch xv = load(x + m * ldx + k);
      keep_in_register(xv);
      for (std::size_t r = 0; r < R; ++r) acc[m][r] = fmadd(xv, wr[r], acc[m][r]);
    }
  }
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t r = 0; r < R; ++r) {
      float s = reduce_add(acc[m][r]);
      for (std::size_t k = kv; k < K; ++k) s = fmadd(x[m * ldx + k], w.at(n + r, k), s);
      y[m * ldy + r] = s;
    }
}

}  // namespace similarity_detail

// scalar::inner_products with the arithmetic of the head's dot blocks (gemv.hpp): lanes accumulate
// in k order, then reduce_add, then the scalar tail, the same for every (m, n) whatever M is, so a
// query alone and the same query among many get bitwise the same scores. One query is gemv_t's (the
// rows streamed in memory order; mid-line F32 rows read by whole lines). Several: groups of w's rows
// that fit L2 (~256 KB), each against tiles of MX queries and four rows of w: per step of k, 4 + MX
// loads feed 4 x MX fused multiply-adds (AVX-512: 24 of the 32 registers hold sums), so the products
// run at the FMA units' rate rather than the loads'.
inline void inner_products(std::size_t M, const float* x, std::size_t ldx, const WeightView& w, float* y,
                           std::size_t ldy, std::size_t K, std::size_t n_begin, std::size_t n_end) {
  if (M <= 1 || w.type == WeightType::Q8) return gemv_t(M, x, ldx, w, y, ldy, K, n_begin, n_end);
  constexpr std::size_t R = 4, MX = simd_width >= 16 ? 6 : 2;
  with_loader(w, [&](const auto& load) {
    constexpr std::size_t bytes = std::decay_t<decltype(load)>::bytes;
    const std::size_t group = std::max<std::size_t>(R, (256 * 1024 / (K * bytes + 1)) / R * R);
    for (std::size_t n = n_begin; n < n_end;) {
      const std::size_t g_end = std::min(n_end, n + group), full = n + (g_end - n) / R * R;
      for (std::size_t m = 0; m < M; m += MX)
        with_rows<MX>(std::min(MX, M - m), [&](auto rows) {
          constexpr std::size_t mx = decltype(rows)::value;
          const float* xm = x + m * ldx;
          float* ym = y + m * ldy;
          for (std::size_t g = n; g < full; g += R) similarity_detail::dot_tile<R, mx>(xm, ldx, load, g, ym + g, ldy, K);
          for (std::size_t g = full; g < g_end; ++g) similarity_detail::dot_tile<1, mx>(xm, ldx, load, g, ym + g, ldy, K);
        });
      n = g_end;
    }
  });
}

// scalar::first_above, four vectors compared per step.
inline std::size_t first_above(const float* x, std::size_t n, float threshold) {
  constexpr std::size_t W = simd_width;
  const fbatch t(threshold);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    if (xsimd::any((load(x + i) > t) | (load(x + i + W) > t) | (load(x + i + 2 * W) > t) | (load(x + i + 3 * W) > t)))
      return i + scalar::first_above(x + i, 4 * W, threshold);
  return i + scalar::first_above(x + i, n - i, threshold);
}

}  // namespace simd
#endif

}  // namespace tinyllm::kernels
