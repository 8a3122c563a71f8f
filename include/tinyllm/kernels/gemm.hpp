// xsimd matrix-matrix kernel for prompts (many tokens at once), in the manner of BLIS: A is packed in
// MR-row panels that stay in L1 (the operand broadcast), B in KC x NR panels streamed from L2 (the
// operand loaded as vectors), and an MR x NR register tile of FMAs does the work. Bias, activation
// and residual accumulation are applied as the tile is stored.
// Scalar twin: kernels/reference.hpp (scalar::gemm). Depends on kernels/simd.hpp, kernels/elementwise.hpp.
#pragma once

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t

#include "../detail/aligned.hpp"  // AlignedBuffer
#include "../error.hpp"           // TINYLLM_ASSERT
#include "elementwise.hpp"  // apply (activations on batches)
#include "reference.hpp"    // Epilogue, scalar::apply
#include "simd.hpp"
#include "q8.hpp"          // q8_gemm
#include "typed_load.hpp"  // with_loader

#if defined(__clang__)
#define TINYLLM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define TINYLLM_UNROLL _Pragma("GCC unroll 16")
#else
#define TINYLLM_UNROLL
#endif

namespace tinyllm::kernels::simd {

namespace gemm_detail {

constexpr std::size_t W = simd_width;
constexpr std::size_t NR = 2 * W;              // tile columns: two vectors
constexpr std::size_t MR = W >= 16 ? 12 : 6;   // tile rows: 24 of 32 zmm (AVX-512) or 12 of 16 ymm/xmm
constexpr std::size_t KC = 256;                // depth of a packed block: an A micro-panel (MR x KC) is 12 KB of L1
constexpr std::size_t NC = 16 * NR;            // columns of B per packed block (KC x NC in L2)
constexpr std::size_t max_rows = 4096;         // rows packed at once (all of A's rows for a depth block)

// Per-thread packing buffers, grown once and reused.
inline float* scratch(int slot, std::size_t n) {
  thread_local detail::AlignedBuffer buf[2];
  buf[slot].resize(n);
  return buf[slot].data();
}

// ap[p][k][r] = a[(p*MR + r), k0 + k] for the rows [0, M), zero in the last panel's padding.
inline void pack_a(const float* a, std::size_t lda, std::size_t M, std::size_t k0, std::size_t kc, float* ap) {
  for (std::size_t p = 0; p < M; p += MR) {
    const std::size_t mr = std::min(MR, M - p);
    const float* src[MR];
    for (std::size_t r = 0; r < MR; ++r) src[r] = a + (p + std::min(r, mr - 1)) * lda + k0;
    float* dst = ap + p * kc;
    for (std::size_t k = 0; k < kc; ++k, dst += MR)
      for (std::size_t r = 0; r < MR; ++r) dst[r] = r < mr ? src[r][k] : 0.0f;
  }
}

// bp[q][k][j] = b[k0 + k, j0 + q*NR + j] as floats, zero past column j_end. Converting here is
// where F16 / BF16 / Q8 weights become F32: the micro-kernel only ever sees floats. Rows of b are
// read front to back (each a contiguous run of the thread's columns), the lines of a row eight rows
// ahead asked for while packing this one: the weights come from memory once per prompt.
template <class Load>
inline void pack_b(const Load& b, std::size_t j0, std::size_t j_end, std::size_t k0, std::size_t kc, float* bp) {
  constexpr std::size_t line = std::max(W, 64 / Load::bytes);  // elements per cache line
  constexpr std::size_t ahead = 8;
  for (std::size_t k = 0; k < kc; ++k) {
    if (k + ahead < kc)
      for (std::size_t c = j0; c < j_end; c += line) b.prefetch(k0 + k + ahead, c);
    for (std::size_t q = j0; q < j_end; q += NR) {
      const std::size_t nr = std::min(NR, j_end - q);
      float* d = bp + (q - j0) * kc + k * NR;
      if (nr == NR && q % W == 0) {
        store(d, b.load(k0 + k, q));
        store(d + W, b.load(k0 + k, q + W));
      } else {
        for (std::size_t j = 0; j < NR; ++j) d[j] = j < nr ? b.at(k0 + k, q + j) : 0.0f;
      }
    }
  }
}

struct Tile {
  float* c;            // tile origin in C
  std::size_t ldc;
  std::size_t mr, nr;  // valid rows and columns
  const float* bias;   // bias at the tile's first column, or null
  bool first, last;    // first / last depth block: start the chains from bias / apply the epilogue
  Epilogue ep;
};

// acc[MR][2] = (first ? bias : C) + ap[kc][MR] x bp[kc][NR], stored back to C (act applied when last).
// Each element is one fma chain over k, continued across depth blocks through C.
inline void micro_kernel(std::size_t kc, const float* ap, const float* bp, const Tile& t) {
  const bool full = t.mr == MR && t.nr == NR;
  alignas(64) float edge[MR][NR];
  if (!full)
    for (std::size_t r = 0; r < MR; ++r)
      for (std::size_t j = 0; j < NR; ++j)
        edge[r][j] = r < t.mr && j < t.nr ? (t.first ? (t.bias ? t.bias[j] : 0.0f) : t.c[r * t.ldc + j]) : 0.0f;
  fbatch acc[MR][2];
  const fbatch bias0 = t.first && t.bias && full ? load(t.bias) : fbatch(0.0f);
  const fbatch bias1 = t.first && t.bias && full ? load(t.bias + W) : fbatch(0.0f);
  TINYLLM_UNROLL
  for (std::size_t r = 0; r < MR; ++r) {
    if (!full) {
      acc[r][0] = fbatch::load_aligned(edge[r]);
      acc[r][1] = fbatch::load_aligned(edge[r] + W);
    } else if (t.first) {
      acc[r][0] = bias0;
      acc[r][1] = bias1;
    } else {
      acc[r][0] = load(t.c + r * t.ldc);
      acc[r][1] = load(t.c + r * t.ldc + W);
    }
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
  for (std::size_t k = 0; k < kc; ++k) {
    const fbatch b0 = fbatch::load_aligned(bp), b1 = fbatch::load_aligned(bp + W);
    TINYLLM_UNROLL
    for (std::size_t r = 0; r < MR; ++r) {
      const fbatch a(ap[r]);
      acc[r][0] = fmadd(a, b0, acc[r][0]);
      acc[r][1] = fmadd(a, b1, acc[r][1]);
    }
    ap += MR;
    bp += NR;
  }
  const bool act = t.last && t.ep != Epilogue::none;
  TINYLLM_UNROLL
  for (std::size_t r = 0; r < MR; ++r) {
    const fbatch v0 = act ? apply(t.ep, acc[r][0]) : acc[r][0];
    const fbatch v1 = act ? apply(t.ep, acc[r][1]) : acc[r][1];
    if (full) {
      store(t.c + r * t.ldc, v0);
      store(t.c + r * t.ldc + W, v1);
    } else {
      v0.store_aligned(edge[r]);
      v1.store_aligned(edge[r] + W);
    }
  }
  if (!full)
    for (std::size_t r = 0; r < t.mr; ++r)
      for (std::size_t j = 0; j < t.nr; ++j) t.c[r * t.ldc + j] = edge[r][j];
}

// One depth block [pc, pc + kc) of C[:, n_begin:n_end) (+)= A B: B packed NC columns at a time,
// each MR-row panel of the packed A block (L1) against every KC x NR micro-panel of B (L2), so the
// panel that is broadcast stays in L1 while B streams past it.
template <class Load>
inline void depth_block(std::size_t M, std::size_t K, std::size_t pc, std::size_t kc, const float* apack, const Load& b,
                        const float* bias, float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end,
                        Epilogue ep, float* bpack) {
  for (std::size_t jc = n_begin; jc < n_end; jc += NC) {
    const std::size_t nc = std::min(NC, n_end - jc);
    pack_b(b, jc, jc + nc, pc, kc, bpack);
    for (std::size_t ir = 0; ir < M; ir += MR)  // one A micro-panel (L1) ...
      for (std::size_t jr = 0; jr < nc; jr += NR) {  // ... against every B micro-panel (L2)
        const Tile t{c + ir * ldc + jc + jr, ldc, std::min(MR, M - ir), std::min(NR, nc - jr),
                     bias ? bias + jc + jr : nullptr, pc == 0, pc + kc == K, ep};
        micro_kernel(kc, apack + ir * kc, bpack + jr * kc, t);
      }
  }
}

inline std::size_t padded_rows(std::size_t M) { return (M + MR - 1) / MR * MR; }

}  // namespace gemm_detail

// c[m, n] = act(bias[n] + sum_k a[m, k] * b[k, n]) for m < M and n in [n_begin, n_end).
// a: [M, lda]; b: [K, N] (HF Conv1D: in x out), any WeightType; c: [M, ldc]; bias: [N] or null.
// Each element is one fma chain (bias, then k in order): bitwise what gemv gives for that row.
// A is packed per depth block by the calling thread (see pack_a_rows / gemm_packed to share it).
template <class Load>
inline void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const Load& b, const float* bias,
                 float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep) {
  using namespace gemm_detail;
  if (M > max_rows) {  // in row blocks; each row's chains are unaffected
    for (std::size_t m0 = 0; m0 < M; m0 += max_rows)
      gemm(std::min(max_rows, M - m0), K, a + m0 * lda, lda, b, bias, c + m0 * ldc, ldc, n_begin, n_end, ep);
    return;
  }
  float* apack = scratch(1, padded_rows(M) * KC);
  float* bpack = scratch(0, KC * NC);
  for (std::size_t pc = 0; pc < K; pc += KC) {
    const std::size_t kc = std::min(KC, K - pc);
    pack_a(a, lda, M, pc, kc, apack);  // all rows once per depth block (L2)
    depth_block(M, K, pc, kc, apack, b, bias, c, ldc, n_begin, n_end, ep, bpack);
  }
}

// A packed once for every depth block, for threads that share it (layers::linear): pack_a_rows fills
// rows [r0, r1) of a buffer of packed_a_size(M, K) floats (r0 and r1 multiples of packed_a_rows, or
// r1 = M, so threads fill disjoint parts), and gemm_packed is gemm over columns [n_begin, n_end) with it,
// bitwise the same results. b: F32, F16 or BF16 (Q8 weights go through gemm, which quantizes A).
inline constexpr std::size_t packed_a_rows = gemm_detail::MR;
inline std::size_t packed_a_size(std::size_t M, std::size_t K) { return gemm_detail::padded_rows(M) * K; }

inline void pack_a_rows(const float* a, std::size_t lda, std::size_t M, std::size_t K, std::size_t r0, std::size_t r1,
                        float* ap) {
  using namespace gemm_detail;
  for (std::size_t pc = 0; pc < K; pc += KC) {
    const std::size_t kc = std::min(KC, K - pc);
    pack_a(a + r0 * lda, lda, r1 - r0, pc, kc, ap + padded_rows(M) * pc + r0 * kc);  // block pc: [Mp][kc]
  }
}

template <class Load>
inline void gemm_packed(std::size_t M, std::size_t K, const float* ap, const Load& b, const float* bias, float* c,
                        std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep) {
  using namespace gemm_detail;
  float* bpack = scratch(0, KC * NC);
  for (std::size_t pc = 0; pc < K; pc += KC)
    depth_block(M, K, pc, std::min(KC, K - pc), ap + padded_rows(M) * pc, b, bias, c, ldc, n_begin, n_end, ep, bpack);
}

inline void gemm_packed(std::size_t M, std::size_t K, const float* ap, const WeightView& b, const float* bias, float* c,
                        std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  TINYLLM_ASSERT(b.type != WeightType::Q8);
  if (M == 0 || n_begin >= n_end) return;
  with_loader(b, [&](const auto& load) { gemm_packed(M, K, ap, load, bias, c, ldc, n_begin, n_end, ep); });
}

inline void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const WeightView& b, const float* bias,
                 float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  if (M == 0 || n_begin >= n_end) return;
  if (b.type == WeightType::Q8) return q8_gemm(M, a, lda, K, b, bias, c, ldc, n_begin, n_end, ep);
  with_loader(b, [&](const auto& load) { gemm(M, K, a, lda, load, bias, c, ldc, n_begin, n_end, ep); });
}

}  // namespace tinyllm::kernels::simd
