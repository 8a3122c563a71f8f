// Opt-in bf16 matrix-matrix kernel on Intel AMX tiles (Sapphire Rapids and later), for prompts:
// activations and weights are rounded to bf16 (round to nearest even), products accumulate in f32
// tile registers, then bias and activation are applied. Not the F32 kernels' results: logits move by
// up to ~1e-2 of the largest logit, which is why it is opt-in (LoadOptions::amx).
//
// Blocking: A (all rows) is converted to bf16 rows once per call (or once for all threads:
// pack_a_rows, gemm_packed); per column block of NC and depth block of KC, B is packed as AMX
// wants it (pairs of rows interleaved, 16 columns a tile); 2 x 2
// accumulator tiles (32 x 32 outputs) take 2 A and 2 B tiles per step of 32 in depth. The column
// block's sums wait in a per-thread f32 buffer (in L2) between depth blocks.
// Scalar twin: scalar::gemm_bf16 (kernels/reference.hpp). Depends on detail/aligned.hpp, reference.hpp,
// and (where AMX can be compiled: x86-64 Linux, an AVX-512 build) elementwise.hpp and typed_load.hpp.
#pragma once

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint16_t

#include "../detail/aligned.hpp"
#include "../error.hpp"   // TINYLLM_ASSERT
#include "reference.hpp"  // Epilogue, scalar::gemm_bf16

#if defined(__x86_64__) && defined(__linux__) && defined(__AVX512F__) && !defined(TINYLLM_NO_SIMD) && \
    (defined(__GNUC__) || defined(__clang__))
#define TINYLLM_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "elementwise.hpp"  // activate
#include "typed_load.hpp"   // with_loader
#endif

namespace tinyllm::kernels::amx {

#ifdef TINYLLM_AMX

// True when the CPU has AMX-TILE, AMX-BF16 and AVX512-BF16 and Linux lets this process use the
// tile registers (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+). Asked once.
inline bool available() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool tile = d & (1u << 24), bf16 = d & (1u << 22);
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    const bool avx512_bf16 = a & (1u << 5);
    if (!(tile && bf16 && avx512_bf16)) return false;
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
  }();
  return ok;
}

namespace detail {

constexpr std::size_t KC = 512;  // depth per packed block (a multiple of 32)
constexpr std::size_t NC = 256;  // columns per packed block (a multiple of 32)

struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Per-thread buffers: 0 A (bf16), 1 B (bf16), 2 sums (f32).
inline void* scratch(int slot, std::size_t bytes) {
  thread_local tinyllm::detail::AlignedBuffer buf[3];
  buf[slot].resize((bytes + 3) / 4);
  return buf[slot].data();
}

inline std::size_t round32(std::size_t n) { return (n + 31) / 32 * 32; }

#define TINYLLM_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))

// 16 floats -> 16 bf16 (round to nearest even).
TINYLLM_AMX_TARGET inline __m256i to_bf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

// ap[m][k] = bf16(a[m, k]) for m < M, k < K; zero up to Mp rows and Kp columns.
TINYLLM_AMX_TARGET inline void pack_a(const float* a, std::size_t lda, std::size_t M, std::size_t K, std::size_t Mp,
                                      std::size_t Kp, std::uint16_t* ap) {
  for (std::size_t m = 0; m < Mp; ++m) {
    std::uint16_t* dst = ap + m * Kp;
    std::size_t k = 0;
    if (m < M) {
      const float* src = a + m * lda;
      for (; k + 16 <= K; k += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), to_bf16(_mm512_loadu_ps(src + k)));
      if (k < K) {
        const __mmask16 tail = static_cast<__mmask16>((1u << (K - k)) - 1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), to_bf16(_mm512_maskz_loadu_ps(tail, src + k)));
        k += 16;
      }
    }
    for (; k < Kp; k += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), _mm256_setzero_si256());
  }
}

// bp[t][k/2][j][k%2] = bf16(b[k0 + k, j0 + 16t + j]) for k < kc, j0 + 16t + j < j_end, else zero:
// tile t (16 columns) is kcp/2 rows of 64 bytes, each two depth steps of 16 columns interleaved.
// Rows of b are read front to back (a contiguous run of the block's columns), the next pair's
// lines asked for ahead: the weights stream from memory once per prompt.
template <class Load>
TINYLLM_AMX_TARGET inline void pack_b(const Load& b, std::size_t j0, std::size_t j_end, std::size_t k0, std::size_t kc,
                                      std::size_t kcp, std::size_t ncp, std::uint16_t* bp) {
  const __m512i interleave = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,  //
                                              39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const std::size_t full = j_end > j0 ? std::min(ncp, (j_end - j0) / 16 * 16) : 0;  // columns in whole tiles
  constexpr std::size_t line = 64 / Load::bytes;
  for (std::size_t k = 0; k < kcp; k += 2) {
    const bool r0 = k < kc, r1 = k + 1 < kc;
    if (k + 4 < kc)
      for (std::size_t j = 0; j < full; j += line) {
        b.prefetch(k0 + k + 4, j0 + j);
        if (k + 5 < kc) b.prefetch(k0 + k + 5, j0 + j);
      }
    for (std::size_t j = 0; j < ncp; j += 16) {
      __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
      if (j < full) {
        if (r0) v0 = b.load(k0 + k, j0 + j);
        if (r1) v1 = b.load(k0 + k + 1, j0 + j);
      } else {
        alignas(64) float t0[16] = {}, t1[16] = {};
        for (std::size_t c = j0 + j; c < std::min(j_end, j0 + j + 16); ++c) {
          if (r0) t0[c - j0 - j] = b.at(k0 + k, c);
          if (r1) t1[c - j0 - j] = b.at(k0 + k + 1, c);
        }
        v0 = _mm512_load_ps(t0);
        v1 = _mm512_load_ps(t1);
      }
      const __m512i lo = _mm512_castsi256_si512(to_bf16(v0)), hi = _mm512_castsi256_si512(to_bf16(v1));
      _mm512_storeu_si512(bp + j * kcp + k * 16, _mm512_permutex2var_epi16(lo, interleave, hi));
    }
  }
}

// sums[32 x 32 block at (i, j)] (+)= A[i.., k0..k0+kcp) B-tiles jt, jt+1, in tiles 0-3 (C), 4-5 (A), 6-7 (B).
TINYLLM_AMX_TARGET inline void block(const std::uint16_t* ap, std::size_t lda_bytes, const std::uint16_t* b0,
                                     const std::uint16_t* b1, std::size_t kcp, float* sums, std::size_t lds_bytes,
                                     bool first) {
  float* s1 = reinterpret_cast<float*>(reinterpret_cast<char*>(sums) + 16 * lds_bytes);
  if (first) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else {
    _tile_loadd(0, sums, lds_bytes);
    _tile_loadd(1, sums + 16, lds_bytes);
    _tile_loadd(2, s1, lds_bytes);
    _tile_loadd(3, s1 + 16, lds_bytes);
  }
  const char* a1 = reinterpret_cast<const char*>(ap) + 16 * lda_bytes;
  for (std::size_t k = 0; k < kcp; k += 32) {
    _tile_loadd(4, ap + k, lda_bytes);
    _tile_loadd(5, a1 + 2 * k, lda_bytes);
    _tile_loadd(6, b0 + k * 16, 64);
    _tile_loadd(7, b1 + k * 16, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, sums, lds_bytes);
  _tile_stored(1, sums + 16, lds_bytes);
  _tile_stored(2, s1, lds_bytes);
  _tile_stored(3, s1 + 16, lds_bytes);
}

// ap[m][k] for rows [r0, r1) (bf16, Kp = round32(K) per row); the caller holding the last rows also
// zeroes the padding rows up to round32(M).
TINYLLM_AMX_TARGET inline void pack_a_rows(const float* a, std::size_t lda, std::size_t M, std::size_t K,
                                           std::size_t r0, std::size_t r1, std::uint16_t* ap) {
  const std::size_t Kp = round32(K);
  pack_a(a + r0 * lda, lda, r1 - r0, K, r1 < M ? r1 - r0 : round32(M) - r0, Kp, ap + r0 * Kp);
}

// c[:, n_begin:n_end) from A packed by pack_a_rows (all rows).
template <class Load>
TINYLLM_AMX_TARGET void gemm_packed(std::size_t M, std::size_t K, const std::uint16_t* ap, const Load& b,
                                    const float* bias, float* c, std::size_t ldc, std::size_t n_begin,
                                    std::size_t n_end, Epilogue ep) {
  const std::size_t Mp = round32(M), Kp = round32(K), N = n_end - n_begin;
  auto* bp = static_cast<std::uint16_t*>(scratch(1, KC * NC * 2));
  auto* sums = static_cast<float*>(scratch(2, Mp * NC * 4));  // [Mp, NC]: one column block (L2)
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
  for (std::size_t jc = 0; jc < N; jc += NC) {
    const std::size_t nc = std::min(NC, N - jc), ncp = round32(nc);
    for (std::size_t pc = 0; pc < K; pc += KC) {
      const std::size_t kc = std::min(KC, K - pc), kcp = round32(kc);
      pack_b(b, n_begin + jc, n_end, pc, kc, kcp, ncp, bp);
      for (std::size_t i = 0; i < Mp; i += 32)  // 32 rows of A (L1) against every B tile pair (L2)
        for (std::size_t jt = 0; jt < ncp; jt += 32)
          block(ap + i * Kp + pc, Kp * 2, bp + jt * kcp, bp + (jt + 16) * kcp, kcp, sums + i * NC + jt, NC * 4,
                pc == 0);
    }
    for (std::size_t m = 0; m < M; ++m) {  // bias and activation on the way out
      float* sm = sums + m * NC;
      float* cm = c + m * ldc + n_begin + jc;
      std::size_t j = 0;
      for (; j + 16 <= nc; j += 16) {
        __m512 v = _mm512_load_ps(sm + j);
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + n_begin + jc + j));
        _mm512_storeu_ps(cm + j, v);
      }
      for (; j < nc; ++j) cm[j] = sm[j] + (bias ? bias[n_begin + jc + j] : 0.0f);
      simd::activate(cm, nc, ep);
    }
  }
  _tile_release();
}

template <class Load>
TINYLLM_AMX_TARGET void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const Load& b,
                             const float* bias, float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end,
                             Epilogue ep) {
  auto* ap = static_cast<std::uint16_t*>(scratch(0, round32(M) * round32(K) * 2));
  pack_a_rows(a, lda, M, K, 0, M, ap);
  gemm_packed(M, K, ap, b, bias, c, ldc, n_begin, n_end, ep);
}

#undef TINYLLM_AMX_TARGET

}  // namespace detail

// c[m, n] = act(bias[n] + sum_k bf16(a[m, k]) * bf16(b[k, n])) for m < M, n in [n_begin, n_end),
// the sums in f32 (see scalar::gemm_bf16). b: [K, N] F32 / F16 / BF16 (not Q8). Without available(),
// the scalar twin does it (slowly).
inline void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const WeightView& b, const float* bias,
                 float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  if (M == 0 || n_begin >= n_end) return;
  if (!available() || b.type == WeightType::Q8)
    return scalar::gemm_bf16(M, K, a, lda, b, bias, c, ldc, n_begin, n_end, ep);
  simd::with_loader(b, [&](const auto& load) { detail::gemm(M, K, a, lda, load, bias, c, ldc, n_begin, n_end, ep); });
}

// gemm with A prepared once and shared by threads (layers::linear), as simd::gemm_packed: pack_a_rows
// fills rows [r0, r1) (any split: packed_a_rows is 1) of packed_a_size(M, K) floats of storage,
// converted to bf16 rows (without AMX: A's rows as they are, for the scalar twin); gemm_packed gives
// what gemm gives.
inline constexpr std::size_t packed_a_rows = 1;
inline std::size_t packed_a_size(std::size_t M, std::size_t K) {
  return available() ? (detail::round32(M) * detail::round32(K) + 1) / 2 : M * K;
}
inline void pack_a_rows(const float* a, std::size_t lda, std::size_t M, std::size_t K, std::size_t r0, std::size_t r1,
                        float* ap) {
  if (!available()) return scalar::pack_a_rows(a, lda, M, K, r0, r1, ap);
  detail::pack_a_rows(a, lda, M, K, r0, r1, reinterpret_cast<std::uint16_t*>(ap));
}
inline void gemm_packed(std::size_t M, std::size_t K, const float* ap, const WeightView& b, const float* bias, float* c,
                        std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  TINYLLM_ASSERT(b.type != WeightType::Q8);
  if (M == 0 || n_begin >= n_end) return;
  if (!available()) return scalar::gemm_bf16(M, K, ap, K, b, bias, c, ldc, n_begin, n_end, ep);
  const auto* a16 = reinterpret_cast<const std::uint16_t*>(ap);
  simd::with_loader(b, [&](const auto& load) { detail::gemm_packed(M, K, a16, load, bias, c, ldc, n_begin, n_end, ep); });
}

#else  // no AMX on this platform or compiler

inline bool available() { return false; }
inline void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const WeightView& b, const float* bias,
                 float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  scalar::gemm_bf16(M, K, a, lda, b, bias, c, ldc, n_begin, n_end, ep);
}
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

#endif

}  // namespace tinyllm::kernels::amx
