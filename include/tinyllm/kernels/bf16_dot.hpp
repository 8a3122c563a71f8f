// Opt-in bf16 matrix-matrix kernel on AVX-512 BF16 dot products (vdpbf16ps: each f32 lane adds two
// bf16 products, twice the multiply-adds of an f32 fma per instruction), for prompts: activations and
// weights are rounded to bf16 (round to nearest even), the products summed in f32 two at a time, then
// bias and activation applied. Not the F32 kernels' results (the opt-in LoadOptions::bf16_dot).
//
// Blocking as kernels/gemm.hpp: A packed once in MR-row panels of bf16 pairs (k, k + 1), B per depth
// block of KC and NC columns in NR-column panels of pairs, an MR x NR register tile of vdpbf16ps.
// Scalar twin: scalar::gemm_bf16 (kernels/reference.hpp). Depends on detail/aligned.hpp, reference.hpp,
// and where it can be compiled (x86-64, an AVX-512 build, GCC or Clang) elementwise.hpp and
// typed_load.hpp.
#pragma once

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint16_t, std::uint32_t
#include <cstring>    // std::memcpy

#include "../detail/aligned.hpp"
#include "../error.hpp"   // TINYLLM_ASSERT
#include "reference.hpp"  // Epilogue, scalar::gemm_bf16

#if defined(__x86_64__) && defined(__AVX512F__) && !defined(TINYLLM_NO_SIMD) && (defined(__GNUC__) || defined(__clang__))
#define TINYLLM_BF16_DOT 1
#include <cpuid.h>
#include <immintrin.h>

#include "elementwise.hpp"  // activate
#include "typed_load.hpp"   // with_loader
#endif

namespace tinyllm::kernels::bf16 {

#ifdef TINYLLM_BF16_DOT

// True when the CPU has AVX512-BF16 (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and
// later). Asked once.
inline bool available() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a & (1u << 5)) != 0;
  }();
  return ok;
}

namespace detail {

constexpr std::size_t W = 16;
constexpr std::size_t MR = 12;       // tile rows: 24 of 32 zmm hold the sums
constexpr std::size_t NR = 2 * W;    // tile columns: two vectors
constexpr std::size_t KC = 512;      // depth per packed block of B (even)
constexpr std::size_t NC = 8 * NR;   // columns per packed block of B (KC x NC bf16 in L2)

#define TINYLLM_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

inline std::size_t padded_rows(std::size_t M) { return (M + MR - 1) / MR * MR; }
inline std::size_t pairs(std::size_t K) { return (K + 1) / 2; }

// Per-thread packing buffer for B, grown once.
inline std::uint32_t* b_buffer(std::size_t n) {
  thread_local tinyllm::detail::AlignedBuffer buf;
  buf.resize(n);
  return reinterpret_cast<std::uint32_t*>(buf.data());
}

// 16 floats -> 16 bf16 (round to nearest even).
TINYLLM_BF16_TARGET inline __m256i to_bf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

// A's rows [r0, r1) (r0 a multiple of MR) as bf16 pairs: block pc of depth KC at ap + padded_rows(M) *
// pairs(pc), panel p in it at + p * MR * pairs(kc): ap[kp][r] = (a[r, pc + 2kp], a[r, pc + 2kp + 1]),
// zero past K and in a last panel's padding rows.
TINYLLM_BF16_TARGET inline void pack_a_rows(const float* a, std::size_t lda, std::size_t M, std::size_t K,
                                            std::size_t r0, std::size_t r1, std::uint32_t* ap) {
  alignas(64) std::uint16_t row[KC + 2 * W];
  const std::size_t Mp = padded_rows(M), end = r1 < M ? r1 : Mp;
  for (std::size_t pc = 0; pc < K; pc += KC) {
    const std::size_t kc = std::min(KC, K - pc), kp = pairs(kc);
    std::uint32_t* block = ap + Mp * pairs(pc);
    for (std::size_t r = r0; r < end; ++r) {
      std::size_t k = 0;
      if (r < M) {
        const float* src = a + r * lda + pc;
        for (; k + W <= kc; k += W) _mm256_store_si256(reinterpret_cast<__m256i*>(row + k), to_bf16(_mm512_loadu_ps(src + k)));
        if (k < kc) {
          const __mmask16 tail = static_cast<__mmask16>((1u << (kc - k)) - 1u);
          _mm256_store_si256(reinterpret_cast<__m256i*>(row + k), to_bf16(_mm512_maskz_loadu_ps(tail, src + k)));
        }
        row[kc] = 0;  // the pair of an odd last k
      } else {
        for (std::size_t j = 0; j <= kc; ++j) row[j] = 0;
      }
      std::uint32_t* panel = block + r / MR * MR * kp;
      for (std::size_t p = 0; p < kp; ++p) std::memcpy(panel + p * MR + r % MR, row + 2 * p, sizeof(std::uint32_t));
    }
  }
}

// bp[q][kp][j] = (b[k0 + 2kp, j0 + q NR + j], b[k0 + 2kp + 1, ...]) as bf16 pairs, zero past column
// j_end and row k0 + kc. Rows of b are read front to back, two at a time, the lines of the pair
// after next asked for on the way.
template <class Load>
TINYLLM_BF16_TARGET inline void pack_b(const Load& b, std::size_t j0, std::size_t j_end, std::size_t k0, std::size_t kc,
                                       std::uint32_t* bp) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,  //
                                              23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  constexpr std::size_t line = 64 / Load::bytes;
  const std::size_t kp = pairs(kc), cols = j_end - j0, whole = cols / W * W;
  for (std::size_t p = 0; p < kp; ++p) {
    const std::size_t k = k0 + 2 * p;
    const bool second = 2 * p + 1 < kc;
    if (2 * p + 5 < kc)
      for (std::size_t c = 0; c < cols; c += line) {
        b.prefetch(k + 4, j0 + c);
        b.prefetch(k + 5, j0 + c);
      }
    for (std::size_t c = 0; c < cols; c += W) {
      __m512 v0, v1;
      if (c < whole) {
        v0 = b.load(k, j0 + c);
        v1 = second ? __m512(b.load(k + 1, j0 + c)) : _mm512_setzero_ps();
      } else {
        alignas(64) float t0[W] = {}, t1[W] = {};
        for (std::size_t j = c; j < cols; ++j) {
          t0[j - c] = b.at(k, j0 + j);
          if (second) t1[j - c] = b.at(k + 1, j0 + j);
        }
        v0 = _mm512_load_ps(t0);
        v1 = _mm512_load_ps(t1);
      }
      // [bf16(v0) | bf16(v1)] -> pairs (v0[j], v1[j]) per lane j
      const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(v1, v0);
      std::uint32_t* dst = bp + (c / NR) * kp * NR + p * NR + c % NR;
      _mm512_store_si512(dst, _mm512_permutexvar_epi16(interleave, both));
    }
    for (std::size_t c = (cols + W - 1) / W * W; c < (cols + NR - 1) / NR * NR; c += W)  // a last panel's padding
      _mm512_store_si512(bp + (c / NR) * kp * NR + p * NR + c % NR, _mm512_setzero_si512());
  }
}

struct Tile {
  float* c;            // tile origin in C
  std::size_t ldc;
  std::size_t mr, nr;  // valid rows and columns
  const float* bias;   // bias at the tile's first column, or null
  bool first, last;    // first / last depth block: start from zero / add the bias and apply the epilogue
  Epilogue ep;
};

// C tile (+)= A panel x B panel over kp pairs of depth; the last block adds the bias and applies ep.
TINYLLM_BF16_TARGET inline void micro_kernel(std::size_t kp, const std::uint32_t* ap, const std::uint32_t* bp,
                                             const Tile& t) {
  const bool full = t.mr == MR && t.nr == NR;
  alignas(64) float edge[MR][NR];
  __m512 acc[MR][2];
  if (t.first) {
    for (std::size_t r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  } else if (full) {
    for (std::size_t r = 0; r < MR; ++r) {
      acc[r][0] = _mm512_loadu_ps(t.c + r * t.ldc);
      acc[r][1] = _mm512_loadu_ps(t.c + r * t.ldc + W);
    }
  } else {
    for (std::size_t r = 0; r < MR; ++r)
      for (std::size_t j = 0; j < NR; ++j) edge[r][j] = r < t.mr && j < t.nr ? t.c[r * t.ldc + j] : 0.0f;
    for (std::size_t r = 0; r < MR; ++r) {
      acc[r][0] = _mm512_load_ps(edge[r]);
      acc[r][1] = _mm512_load_ps(edge[r] + W);
    }
  }
  for (std::size_t p = 0; p < kp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + W);
    for (std::size_t r = 0; r < MR; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
    }
    ap += MR;
    bp += NR;
  }
  if (t.last && t.bias) {
    alignas(64) float bias[NR] = {};
    for (std::size_t j = 0; j < t.nr; ++j) bias[j] = t.bias[j];
    const __m512 b0 = _mm512_load_ps(bias), b1 = _mm512_load_ps(bias + W);
    for (std::size_t r = 0; r < MR; ++r) {
      acc[r][0] = _mm512_add_ps(acc[r][0], b0);
      acc[r][1] = _mm512_add_ps(acc[r][1], b1);
    }
  }
  for (std::size_t r = 0; r < MR; ++r) {
    _mm512_store_ps(edge[r], acc[r][0]);
    _mm512_store_ps(edge[r] + W, acc[r][1]);
  }
  const std::size_t nr = full ? NR : t.nr;
  for (std::size_t r = 0; r < t.mr; ++r) {
    if (t.last) simd::activate(edge[r], nr, t.ep);
    std::memcpy(t.c + r * t.ldc, edge[r], nr * sizeof(float));
  }
}

// C[:, n_begin:n_end) from A packed by pack_a_rows (all M rows).
template <class Load>
TINYLLM_BF16_TARGET void gemm_packed(std::size_t M, std::size_t K, const std::uint32_t* ap, const Load& b,
                                     const float* bias, float* c, std::size_t ldc, std::size_t n_begin,
                                     std::size_t n_end, Epilogue ep) {
  const std::size_t Mp = padded_rows(M);
  std::uint32_t* bp = b_buffer(pairs(KC) * NC);
  for (std::size_t jc = n_begin; jc < n_end; jc += NC) {
    const std::size_t nc = std::min(NC, n_end - jc);
    for (std::size_t pc = 0; pc < K; pc += KC) {
      const std::size_t kc = std::min(KC, K - pc), kp = pairs(kc);
      pack_b(b, jc, jc + nc, pc, kc, bp);
      const std::uint32_t* block = ap + Mp * pairs(pc);
      for (std::size_t ir = 0; ir < M; ir += MR)  // one A panel (L1) against every B panel (L2)
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const Tile t{c + ir * ldc + jc + jr, ldc, std::min(MR, M - ir), std::min(NR, nc - jr),
                       bias ? bias + jc + jr : nullptr, pc == 0, pc + kc == K, ep};
          micro_kernel(kp, block + ir * kp, bp + jr * kp, t);
        }
    }
  }
}

#undef TINYLLM_BF16_TARGET

}  // namespace detail

// c[m, n] = act(bias[n] + sum_k bf16(a[m, k]) * bf16(b[k, n])) for m < M and n in [n_begin, n_end),
// summed in f32 two products at a time (see scalar::gemm_bf16, which sums one at a time: the two
// agree to f32 rounding). A packed once and shared by threads as with simd::gemm_packed:
// pack_a_rows fills rows [r0, r1) (multiples of packed_a_rows, or r1 = M) of packed_a_size(M, K)
// floats of storage. b: [K, N] F32 / F16 / BF16. Without available(), the scalar twin (slowly).
inline constexpr std::size_t packed_a_rows = detail::MR;
inline std::size_t packed_a_size(std::size_t M, std::size_t K) {
  return available() ? detail::padded_rows(M) * detail::pairs(K) + 1 : M * K;
}
inline void pack_a_rows(const float* a, std::size_t lda, std::size_t M, std::size_t K, std::size_t r0, std::size_t r1,
                        float* ap) {
  if (!available()) return scalar::pack_a_rows(a, lda, M, K, r0, r1, ap);
  detail::pack_a_rows(a, lda, M, K, r0, r1, reinterpret_cast<std::uint32_t*>(ap));
}
inline void gemm_packed(std::size_t M, std::size_t K, const float* ap, const WeightView& b, const float* bias, float* c,
                        std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  TINYLLM_ASSERT(b.type != WeightType::Q8);
  if (M == 0 || n_begin >= n_end) return;
  if (!available()) return scalar::gemm_bf16(M, K, ap, K, b, bias, c, ldc, n_begin, n_end, ep);
  const auto* a32 = reinterpret_cast<const std::uint32_t*>(ap);
  simd::with_loader(b, [&](const auto& load) { detail::gemm_packed(M, K, a32, load, bias, c, ldc, n_begin, n_end, ep); });
}
inline void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const WeightView& b, const float* bias,
                 float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  if (M == 0 || n_begin >= n_end) return;
  if (!available() || b.type == WeightType::Q8)
    return scalar::gemm_bf16(M, K, a, lda, b, bias, c, ldc, n_begin, n_end, ep);
  thread_local tinyllm::detail::AlignedBuffer packed;
  packed.resize(packed_a_size(M, K));
  pack_a_rows(a, lda, M, K, 0, M, packed.data());
  gemm_packed(M, K, packed.data(), b, bias, c, ldc, n_begin, n_end, ep);
}

#else  // no AVX-512 build on x86-64: the scalar twin

inline bool available() { return false; }
inline constexpr std::size_t packed_a_rows = 1;
inline std::size_t packed_a_size(std::size_t M, std::size_t K) { return M * K; }
inline void pack_a_rows(const float* a, std::size_t lda, std::size_t M, std::size_t K, std::size_t r0, std::size_t r1,
                        float* ap) {
  scalar::pack_a_rows(a, lda, M, K, r0, r1, ap);
}
inline void gemm_packed(std::size_t M, std::size_t K, const float* ap, const WeightView& b, const float* bias, float* c,
                        std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  scalar::gemm_bf16(M, K, ap, K, b, bias, c, ldc, n_begin, n_end, ep);
}
inline void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const WeightView& b, const float* bias,
                 float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  scalar::gemm_bf16(M, K, a, lda, b, bias, c, ldc, n_begin, n_end, ep);
}

#endif

}  // namespace tinyllm::kernels::bf16
