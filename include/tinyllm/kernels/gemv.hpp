// xsimd matrix-vector kernels for decoding (one token per sequence): every weight is read once, in
// memory order. Each output is one fma chain (bias, then k in order), as in the GEMM kernel, so a row
// alone and the same row in a batch give bitwise the same result.
// Scalar twins: kernels/reference.hpp. Depends on kernels/simd.hpp and kernels/elementwise.hpp.
#pragma once

#include <algorithm>  // std::min
#include <cmath>      // std::fma
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uintptr_t
#include <type_traits>  // std::integral_constant, std::decay_t

#include "../error.hpp"     // TINYLLM_ASSERT
#include "elementwise.hpp"  // activate
#include "reference.hpp"    // Epilogue
#include "simd.hpp"
#include "q8.hpp"          // q8_gemv, q8_gemm
#include "q8_rows.hpp"     // q8_rows
#include "rows.hpp"        // rows_product, first_vector_column
#include "typed_load.hpp"  // LoadF32, LoadF16, LoadBF16, with_loader

namespace tinyllm::kernels::simd {

// fn(std::integral_constant<std::size_t, n>{}) for a run-time n in [1, Max]: kernels templated on a
// row count, called with the count a caller has.
template <std::size_t Max, class Fn>
inline void with_rows(std::size_t n, Fn&& fn) {
  if constexpr (Max > 1)
    if (n < Max) return with_rows<Max - 1>(n, fn);
  fn(std::integral_constant<std::size_t, Max>{});
}

// F32 rows that start mid-line, read in whole lines (AVX-512). A mapped file's tensors start
// wherever its header ends, so each 64-byte load of such a row spans two cache lines, and loads
// that split lines stream from memory markedly slower than aligned ones. Here each line is loaded
// once, aligned, and each vector of the row put together from two of them (vpermt2ps). The
// products and their order are those of the plain loads, so the bits are too. Both return false,
// doing nothing, for a row that starts on a line (plain loads are whole lines already) or whose
// lines reach outside [begin, end) (a matrix's first and last rows can: a heap buffer's neighbours
// are not ours to read).
namespace gemv_detail {

#if TINYLLM_SIMD_512
// The line `row` starts in, or null (see above) if the n_vectors * 16 floats from `row` are not to
// be read by lines.
inline const float* first_line(const float* row, std::size_t n_vectors, const float* begin, const float* end) {
  auto address = [](const float* p) { return reinterpret_cast<std::uintptr_t>(p); };
  const std::uintptr_t line = address(row) / 64 * 64, last = line + (n_vectors + 1) * 64;
  if (line == address(row) || address(row) % sizeof(float) != 0 || line < address(begin) || last > address(end))
    return nullptr;
  return row - (address(row) - line) / sizeof(float);
}

// vpermt2ps's indices: lanes off..15 of one line, then 0..off-1 of the next
inline __m512i line_shift(const float* row, const float* line) {
  return _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                          _mm512_set1_epi32(static_cast<int>(row - line)));
}

// a[j] = fma(x, row[j], a[j]) for j < n_vectors * 16 (gemv_accumulate's step for one row); each
// line read asks for the line `ahead` floats on (to L2; 0: none).
inline bool axpy_by_lines(float x, const float* row, std::size_t n_vectors, const float* begin, const float* end,
                          float* a, std::size_t ahead) {
  const float* line = first_line(row, n_vectors, begin, end);
  if (!line) return false;
  const __m512i take = line_shift(row, line);
  const __m512 xv = _mm512_set1_ps(x);
  __m512 lo = _mm512_load_ps(line);
  for (std::size_t j = 0; j < n_vectors; ++j) {
    const __m512 hi = _mm512_load_ps(line + 16 * (j + 1));
    if (ahead) prefetch_line(line + 16 * (j + 1) + ahead);
    _mm512_storeu_ps(a + 16 * j, _mm512_fmadd_ps(xv, _mm512_permutex2var_ps(lo, take, hi), _mm512_loadu_ps(a + 16 * j)));
    lo = hi;
  }
  return true;
}

// *y = x . row[0:K] (dot_block<1, 1>'s chain: one vector of sums in k order, reduce_add, the tail);
// the lines `ahead` floats on asked for as in axpy_by_lines.
inline bool dot_by_lines(const float* x, const float* row, std::size_t K, const float* begin, const float* end, float* y,
                         std::size_t ahead) {
  const std::size_t kv = K - K % 16;
  const float* line = first_line(row, kv / 16, begin, end);
  if (!line) return false;
  const __m512i take = line_shift(row, line);
  __m512 acc = _mm512_setzero_ps(), lo = _mm512_load_ps(line);
  for (std::size_t k = 0; k < kv; k += 16) {
    const __m512 hi = _mm512_load_ps(line + k + 16);
    if (ahead) prefetch_line(line + k + 16 + ahead);
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), _mm512_permutex2var_ps(lo, take, hi), acc);
    lo = hi;
  }
  float s = reduce_add(fbatch(acc));
  for (std::size_t k = kv; k < K; ++k) s = fmadd(x[k], row[k], s);
  *y = s;
  return true;
}
#endif

}  // namespace gemv_detail

// Rows [k0, k1) of w added into running sums: a[n] = fma(x[k], w[k, n], a[n]) for k in order and n
// in [n_begin, n_end) (a: whole rows of sums, indexed by column; x: indexed by k). The sums hold the
// bias and the rows before k0, so however a reduction is cut into row ranges, each output is the one
// fused chain gemv_row / gemv_rows give: a decode step's threads can take over each other's remaining
// columns at any row (layers::linear). Two-byte weights and mapped F32 rows that start mid-line
// (below) go a row at a time, asking for lines four rows on; other F32 rows R per step
// (gemv_step_rows), the next R rows' lines asked for (up to w's last row). One vector of columns per
// step for every type: two vectors at a time stream two-byte weights more slowly from memory. Each
// vector's lines are asked for at its first and its last column, because a mapped file's F32 rows
// start wherever the tensor does and then every vector spans two lines.
template <std::size_t R, class Load>
inline void gemv_accumulate(const float* x, const Load& w, std::size_t K, float* a, std::size_t k0, std::size_t k1,
                            std::size_t n_begin, std::size_t n_end) {
  constexpr std::size_t W = simd_width;
  const std::size_t whole = n_begin + (n_end - n_begin) / W * W;  // columns [whole, n_end) one at a time
  auto step = [&](std::size_t k, auto rows) {
    constexpr std::size_t RR = decltype(rows)::value;
    fbatch xr[RR];
    for (std::size_t r = 0; r < RR; ++r) xr[r] = fbatch(x[k + r]);
    const bool ahead = k + 2 * RR <= K;
    std::size_t c = n_begin;
    for (; c < whole; c += W) {
      if (ahead)  // the lines of the vector's first and last column (see above)
        for (std::size_t r = 0; r < RR; ++r) {
          w.prefetch(k + RR + r, c);
          w.prefetch(k + RR + r, c + W - 1);
        }
      fbatch wr[RR];
      for (std::size_t r = 0; r < RR; ++r) wr[r] = w.load(k + r, c);
      fbatch s = load(a + c);
      for (std::size_t r = 0; r < RR; ++r) s = fmadd(xr[r], wr[r], s);
      store(a + c, s);
    }
    for (; c < n_end; ++c)
      for (std::size_t r = 0; r < RR; ++r) a[c] = fmadd(x[k + r], w.at(k + r, c), a[c]);
  };
  // Row k alone, each line asking for its column's line rows_ahead rows on (see the paths below).
  constexpr std::size_t rows_ahead = 4, line = std::max(W, 64 / Load::bytes);
  auto row = [&](std::size_t k) {
    const fbatch xk(x[k]);
    const bool ahead = k + rows_ahead < K;
    std::size_t c = n_begin;
    for (; c < whole; c += W) {
      if (ahead && (c - n_begin) % line == 0) w.prefetch(k + rows_ahead, c);
      store(a + c, fmadd(xk, w.load(k, c), load(a + c)));
    }
    for (; c < n_end; ++c) a[c] = fmadd(x[k], w.at(k, c), a[c]);
  };
#if TINYLLM_SIMD_512
  // F32 rows that start mid-line: one row at a time, in whole lines (see gemv_detail above), each
  // line asking for its column's line four rows on, to L2, which keeps more of the stream in flight
  // than the hardware prefetchers do on their own.
  if constexpr (std::is_same_v<Load, LoadF32>) {
    const std::size_t vectors = (n_end - n_begin) / W;
    if (vectors > 0 && (reinterpret_cast<std::uintptr_t>(w.p + n_begin) % 64 != 0 || w.ld % W != 0)) {
      for (std::size_t k = k0; k < k1; ++k) {
        const float* wk = w.p + k * w.ld;
        const std::size_t ahead = k + rows_ahead < K ? rows_ahead * w.ld : 0;
        if (!gemv_detail::axpy_by_lines(x[k], wk + n_begin, vectors, w.begin, w.end, a + n_begin, ahead)) {
          row(k);  // a first or last row whose lines reach outside the matrix
          continue;
        }
        for (std::size_t c = whole; c < n_end; ++c) a[c] = fmadd(x[k], wk[c], a[c]);
      }
      return;
    }
  }
#endif
  // Two-byte weights (a converted buffer: rows on line boundaries) one row at a time, each line
  // asking for its column's line four rows on: that streams them faster than eight rows per step.
  if constexpr (Load::bytes == 2) {
    for (std::size_t k = k0; k < k1; ++k) row(k);
    return;
  }
  std::size_t k = k0;
  for (; k + R <= k1; k += R) step(k, std::integral_constant<std::size_t, R>{});
  for (; k < k1; ++k) step(k, std::integral_constant<std::size_t, 1>{});
}

// y[n] = act(bias[n] + sum_k x[k] * w[k, n]) for n in [n_begin, n_end): one row of x (decoding), by
// the decode step's kernel, gemv_accumulate, in sweeps of up to 4096 columns whose running sums (16
// KB) stay in L1: long runs of each weight row, and a thread's slice of a GPT-2-small matrix in one
// sweep. x: [K]; w: [K, N] F32 / F16 / BF16; bias: [N] or null.
template <std::size_t R, class Load>
inline void gemv_row(const float* x, const Load& w, const float* bias, float* y, std::size_t K, std::size_t n_begin,
                     std::size_t n_end, Epilogue ep) {
  constexpr std::size_t chunk = 4096;
  alignas(64) float sums[chunk];
  for (std::size_t c0 = n_begin; c0 < n_end; c0 += chunk) {
    const std::size_t nc = std::min(chunk, n_end - c0);
    for (std::size_t j = 0; j < nc; ++j) sums[j] = bias ? bias[c0 + j] : 0.0f;
    Load columns = w;  // w from column c0 on
    columns.p += c0;
    gemv_accumulate<R>(x, columns, K, sums, 0, K, 0, nc);
    activate(sums, nc, ep);
    for (std::size_t j = 0; j < nc; ++j) y[c0 + j] = sums[j];
  }
}

// y[m, n] = act(bias[n] + sum_k x[m, k] * w[k, n]) for m < MX (2..16) and n in [n_begin, n_end).
// x: [MX, ldx]; w: [K, N] (HF Conv1D: in x out), F32 / F16 / BF16; bias: [N] or null; y: [MX, ldy].
//
// Rows of w are swept in order, R at a time, so each thread streams its column slice of every row
// front to back, once for all MX rows of x. Each output is one fused chain (bias, then k in order):
// the same for any MX and R, and the same as gemv_row's and gemm's.
template <std::size_t MX, std::size_t R, class Load>
inline void gemv_rows(const float* x, std::size_t ldx, const Load& w, const float* bias, float* y, std::size_t ldy,
                      std::size_t K, std::size_t n_begin, std::size_t n_end, Epilogue ep) {
  constexpr std::size_t W = simd_width;
  // floats of each y row per sweep (whole lines): running sums of up to 128 KB, from L2, because
  // long runs of each weight row matter more than sums in L1. Rows of sums are a line longer than
  // that, so that no two rows' sums are 4 KB apart (they would share L1 sets).
  constexpr std::size_t chunk = 32768 / MX / 64 * 64;
  constexpr std::size_t line = std::max(W, 64 / Load::bytes);  // elements per cache line (a multiple of W)
  alignas(64) float acc[MX][chunk + 16];  // a line more than a sweep: the sums start where v0's do in a line
  // sweeps of equal length (whole vectors), not full ones and a short rest
  const std::size_t sweeps = (n_end - n_begin + chunk - 1) / chunk;
  const std::size_t step = sweeps ? ((n_end - n_begin + sweeps - 1) / sweeps + 15) / 16 * 16 : chunk;
  for (std::size_t c0 = n_begin; c0 < n_end; c0 += step) {
    const std::size_t nc = std::min(step, n_end - c0);
    // columns [c0, v0) and [v1, c0 + nc) one at a time; between them whole vectors. For up to four
    // rows of x these start where w's rows reach a vector boundary in memory, so no load spans two
    // lines (rows that start mid-line, as a mapped file's F32 ones); with more rows each load serves
    // more of them and the columns left one at a time cost more than split loads do, so vectors
    // start at multiples of the width. The sums of column v0 start a line.
    const std::size_t v0 = std::min(c0 + nc, MX <= 4 ? first_vector_column(w, c0) : (c0 + W - 1) / W * W);
    const std::size_t v1 = v0 + (c0 + nc - v0) / W * W;
    float* sums[MX];
    for (std::size_t m = 0; m < MX; ++m) sums[m] = acc[m] + (16 - (v0 - c0) % 16) % 16;
    for (std::size_t m = 0; m < MX; ++m)
      for (std::size_t j = 0; j < nc; ++j) sums[m][j] = bias ? bias[c0 + j] : 0.0f;
    auto scalar_columns = [&](std::size_t k, std::size_t rows) {
      auto column = [&](std::size_t c) {  // each weight loaded once, for all MX rows of x
        float a[MX];
        for (std::size_t m = 0; m < MX; ++m) a[m] = sums[m][c - c0];
        for (std::size_t r = 0; r < rows; ++r) {
          const float wv = w.at(k + r, c);
          for (std::size_t m = 0; m < MX; ++m) a[m] = fmadd(x[m * ldx + k + r], wv, a[m]);
        }
        for (std::size_t m = 0; m < MX; ++m) sums[m][c - c0] = a[m];
      };
      for (std::size_t c = c0; c < v0; ++c) column(c);
      for (std::size_t c = v1; c < c0 + nc; ++c) column(c);
    };
    // Prefetch the lines of the next R rows, or of rows further on for short slices (at least ~2 KB
    // ahead: the values of one attention head are rows of 64 floats).
    const std::size_t slice = std::max<std::size_t>(1, (v1 - v0) * Load::bytes);
    const std::size_t pf = std::max<std::size_t>(R, (2048 / slice + R - 1) / R * R);
    std::size_t k = 0;
    for (; k + R <= K; k += R) {
      const bool ahead = k + pf + R <= K;
      // NV vectors from column cl: their R x NV weights stay in registers while every row of x takes
      // its turn, so each fma costs 1 / NV of an accumulator load and store.
      auto tile = [&](std::size_t cl, auto nv, bool prefetch) {
        constexpr std::size_t NV = decltype(nv)::value;
        if (ahead && prefetch)
          for (std::size_t r = pf; r < pf + R; ++r)
            for (std::size_t c = cl; c < cl + NV * W; c += line) w.prefetch(k + r, c);
        fbatch wr[R][NV];
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t v = 0; v < NV; ++v) wr[r][v] = w.load(k + r, cl + v * W);
        for (std::size_t m = 0; m < MX; ++m) {
          const float* xm = x + m * ldx + k;
          fbatch xr[R];
          for (std::size_t r = 0; r < R; ++r) xr[r] = fbatch(xm[r]);
          float* am = sums[m] + (cl - c0);
          for (std::size_t v = 0; v < NV; ++v) {
            fbatch a = load(am + v * W);
            for (std::size_t r = 0; r < R; ++r) a = fmadd(xr[r], wr[r][v], a);
            store(am + v * W, a);
          }
        }
      };
      // Vectors per tile: as many as the registers hold (AVX-512's 32 or AVX2's 16), so several
      // independent chains are in flight. The lines ahead are asked for once per line.
      constexpr std::size_t regs = W >= 16 ? 16 : 8;  // for the R x NV weights
      constexpr std::size_t tile_vectors = std::max<std::size_t>(1, regs / R);
      std::size_t cl = v0;
      for (; cl + tile_vectors * W <= v1; cl += tile_vectors * W)
        tile(cl, std::integral_constant<std::size_t, tile_vectors>{}, tile_vectors > 1 || (cl - v0) % line == 0);
      for (; cl < v1; cl += W) tile(cl, std::integral_constant<std::size_t, 1>{}, (cl - v0) % line == 0);
      if (v0 - c0 + (c0 + nc - v1)) scalar_columns(k, R);
    }
    for (; k < K; ++k) {
      for (std::size_t c = v0; c < v1; c += W) {
        const fbatch w0 = w.load(k, c);
        for (std::size_t m = 0; m < MX; ++m) {
          float* am = sums[m] + (c - c0);
          store(am, fmadd(fbatch(x[m * ldx + k]), w0, load(am)));
        }
      }
      if (v0 - c0 + (c0 + nc - v1)) scalar_columns(k, 1);
    }
    for (std::size_t m = 0; m < MX; ++m) {
      activate(sums[m], nc, ep);
      for (std::size_t j = 0; j < nc; ++j) y[m * ldy + c0 + j] = sums[m][j];
    }
  }
}

// Rows of w per step: eight for one row of x (more loads in flight, so a core streams its weights
// nearly as fast as a plain read), four for several (their tiles need the registers).
template <std::size_t MX>
inline constexpr std::size_t gemv_step_rows = MX == 1 ? 8 : 4;

// The same for any number of rows: one by gemv_row, two or three by gemv_rows (their fmas are few:
// the weight stream sets the pace), more by the register tiles of rows_product; Q8 weights for up to
// sixteen rows by q8_rows, for more by q8_gemm (weights packed once for all rows). Every row's results
// are the same bits.
inline void gemv_rows(std::size_t M, const float* x, std::size_t ldx, const WeightView& w, const float* bias, float* y,
                      std::size_t ldy, std::size_t K, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  if (w.type == WeightType::Q8) {
    if (M == 1) return q8_gemv(x, K, w, bias, y, n_begin, n_end, ep);
    if (M <= 16) return q8_rows(M, x, ldx, K, w, bias, y, ldy, n_begin, n_end, ep);
    return q8_gemm(M, x, ldx, K, w, bias, y, ldy, n_begin, n_end, ep);
  }
  with_loader(w, [&](const auto& load) {
    if (M > 3) return rows_product(M, x, ldx, load, bias, y, ldy, K, n_begin, n_end, ep);
    auto sweep = [&](auto rows) {
      constexpr std::size_t mx = decltype(rows)::value;
      if constexpr (mx == 1)
        gemv_row<gemv_step_rows<1>>(x, load, bias, y, K, n_begin, n_end, ep);
      else
        gemv_rows<mx, gemv_step_rows<mx>>(x, ldx, load, bias, y, ldy, K, n_begin, n_end, ep);
    };
    with_rows<3>(M, sweep);
  });
}

// y[n] = act(bias[n] + sum_k x[k] * w[k, n]) for n in [n_begin, n_end): one row.
inline void gemv(const float* x, const WeightView& w, const float* bias, float* y, std::size_t K, std::size_t n_begin,
                 std::size_t n_end, Epilogue ep = Epilogue::none) {
  gemv_rows(1, x, 0, w, bias, y, 0, K, n_begin, n_end, ep);
}

// Q8: the blocks of rows [k0, k1) (k0 a multiple of 32; k1 too, or w's last row), their activations
// quantized here (block by block, as for the whole row).
inline void gemv_accumulate(const float* x, const WeightView& w, float* a, std::size_t k0, std::size_t k1,
                            std::size_t n_begin, std::size_t n_end) {
  if (w.type == WeightType::Q8) {
    TINYLLM_ASSERT(k0 % q8_block == 0 && (k1 % q8_block == 0 || k1 == w.rows));
    const std::size_t b0 = k0 / q8_block, b1 = (k1 + q8_block - 1) / q8_block;
    std::uint8_t* xq = q8_detail::xq_buffer((b1 - b0) * q8_block);
    float* xs = q8_detail::xs_buffer(b1 - b0);
    quantize_activations(x + k0, k1 - k0, (b1 - b0) * q8_block, xq, xs);
    return q8_accumulate(xq, xs, w, a + n_begin, b0, b1, n_begin, n_end);
  }
  with_loader(w, [&](const auto& load) { gemv_accumulate<gemv_step_rows<1>>(x, load, w.rows, a, k0, k1, n_begin, n_end); });
}

namespace gemv_detail {

// y[m, n..n+R) for m < MX: R rows of w (from row n) against MX rows of x; lanes accumulate in k
// order, then reduce_add, then the scalar tail: the same arithmetic for every (m, n) whatever MX is.
// The next block's rows (up to n_end) are prefetched line by line, unless Prefetch is false.
template <std::size_t R, std::size_t MX, bool Prefetch = true, class Load>
inline void dot_block(const float* x, std::size_t ldx, const Load& w, std::size_t n, std::size_t n_end, float* y,
                      std::size_t ldy, std::size_t K) {
  constexpr std::size_t W = simd_width;
  constexpr std::size_t line = std::max(W, 64 / Load::bytes);  // elements per cache line (a multiple of W)
  const std::size_t kv = K - K % W;
  const std::size_t ahead = Prefetch ? std::min(R, n_end - std::min(n_end, n + R)) : 0;  // rows to prefetch
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
        for (std::size_t r = 0; r < R; ++r) acc[m][r] = fmadd(xv, wr[r], acc[m][r]);
      }
    }
  }
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t r = 0; r < R; ++r) {
      float s = reduce_add(acc[m][r]);
      for (std::size_t k = kv; k < K; ++k) s = fmadd(x[m * ldx + k], w.at(n + r, k), s);
      y[m * ldy + r] = s;
    }
}

// Rows [n, n + R) of w against all M rows of x: up to three rows of x per block with four rows of w,
// up to twelve with two (so a small batch reads w once); the arithmetic per (m, n) is the same.
template <std::size_t R, class Load>
inline void dot_rows(std::size_t M, const float* x, std::size_t ldx, const Load& w, std::size_t n, std::size_t n_end,
                     float* y, std::size_t ldy, std::size_t K) {
  for (std::size_t m = 0; m < M;) {
    const std::size_t left = M - m;
    const float* xm = x + m * ldx;
    float* ym = y + m * ldy;
    if constexpr (R == 1) {
      if (left >= 3) dot_block<1, 3>(xm, ldx, w, n, n_end, ym, ldy, K), m += 3;
      else if (left == 2) dot_block<1, 2>(xm, ldx, w, n, n_end, ym, ldy, K), m += 2;
      else dot_block<1, 1>(xm, ldx, w, n, n_end, ym, ldy, K), m += 1;
    } else {
      auto pair = [&](auto rows) {  // rows of x against two rows of w, twice: 2 x rows accumulators
        constexpr std::size_t mx = decltype(rows)::value;
        dot_block<2, mx>(xm, ldx, w, n, n_end, ym, ldy, K);
        dot_block<2, mx>(xm, ldx, w, n + 2, n_end, ym + 2, ldy, K);
        m += mx;
      };
      if (left > 12) pair(std::integral_constant<std::size_t, 8>{});  // up to 12 rows of x per pass over w
      else if (left >= 4) with_rows<12>(left, pair);
      else if (left == 3) dot_block<4, 3>(xm, ldx, w, n, n_end, ym, ldy, K), m += 3;
      else if (left == 2) dot_block<4, 2>(xm, ldx, w, n, n_end, ym, ldy, K), m += 2;
      else dot_block<4, 1>(xm, ldx, w, n, n_end, ym, ldy, K), m += 1;
    }
  }
}

}  // namespace gemv_detail

// y[m, n] = sum_k x[m, k] * w[n, k] for m < M and n in [n_begin, n_end): rows of x against a matrix
// stored row per output (w: [N, K], any WeightType), like the tied head wte ([vocab, n_embd]). Four
// rows of w at a time, each streamed once front to back and used for up to three rows of x. For one
// row of x: F32 rows one after the other, so w is read in memory order, which the hardware
// prefetchers follow best, and with AVX-512 in whole lines where rows start mid-line
// (gemv_detail::dot_by_lines), asking for the line 16 KB on (to L2) as each line is read; two-byte
// weights eight rows at a time, eight chains in flight, since F16 / BF16 carry twice the
// multiply-adds per byte. More than twelve rows of x (the logits of a whole text): rows of w in
// groups of ~256 KB (L2), each group against eight rows of x at a time (L1), rather than all rows
// of x (then read from L2) against four rows of w.
inline void gemv_t(std::size_t M, const float* x, std::size_t ldx, const WeightView& w, float* y, std::size_t ldy,
                   std::size_t K, std::size_t n_begin, std::size_t n_end) {
  if (w.type == WeightType::Q8) {  // stored for W x: the same int8 products as a linear layer
    if (M == 1) return q8_gemv(x, K, w, nullptr, y, n_begin, n_end, Epilogue::none);
    if (M <= 16) return q8_rows(M, x, ldx, K, w, nullptr, y, ldy, n_begin, n_end, Epilogue::none);
    return q8_gemm(M, x, ldx, K, w, nullptr, y, ldy, n_begin, n_end, Epilogue::none);
  }
  with_loader(w, [&](const auto& load) {
    constexpr std::size_t bytes = std::decay_t<decltype(load)>::bytes;
    std::size_t n = n_begin;
    if constexpr (bytes == 4) {
      if (M == 1) {
        for (; n < n_end; ++n) {
#if TINYLLM_SIMD_512
          const std::size_t ahead = n + 1 < n_end ? std::min<std::size_t>(4096, (n_end - n - 1) * load.ld) : 0;
          if (gemv_detail::dot_by_lines(x, load.p + n * load.ld, K, load.begin, load.end, y + n, ahead)) continue;
#endif
          gemv_detail::dot_block<1, 1, false>(x, ldx, load, n, n_end, y + n, ldy, K);
        }
        return;
      }
    }
    if (M == 1)
      for (; n + 8 <= n_end; n += 8) gemv_detail::dot_block<8, 1>(x, ldx, load, n, n_end, y + n, ldy, K);
    // Up to twelve rows of x: all of them per group, which is then just four rows of w at a time.
    const std::size_t group = std::max<std::size_t>(4, (256 * 1024 / (K * bytes + 1)) / 4 * 4);
    const std::size_t rows = M > 12 ? 8 : M;  // of x per pass over a group
    while (n + 4 <= n_end) {
      const std::size_t g_end = n + std::min(group, (n_end - n) / 4 * 4);
      for (std::size_t m = 0; m < M; m += rows)
        for (std::size_t g = n; g < g_end; g += 4)
          gemv_detail::dot_rows<4>(std::min(rows, M - m), x + m * ldx, ldx, load, g, n_end, y + m * ldy + g, ldy, K);
      n = g_end;
    }
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
