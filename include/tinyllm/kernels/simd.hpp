// xsimd glue shared by the kernels: the batch type, and the few calls whose names changed between
// xsimd 8 (Debian 12) and xsimd 13/14. Depends on xsimd only.
//
// Build with TINYLLM_NO_SIMD defined to route every kernel to its scalar twin (for targets xsimd
// does not know, and to test the twins end to end).
#pragma once

#include <cmath>    // std::fma
#include <cstddef>  // std::size_t

#include <xsimd/xsimd.hpp>  // xsimd::batch, fma, load_unaligned, exp, tanh

// Intrinsics where the float batch is a whole zmm (AVX-512) or ymm (AVX2) register.
#if defined(__AVX512F__)
#define TINYLLM_SIMD_512 1
#define TINYLLM_SIMD_256 0
#elif defined(__AVX2__)
#define TINYLLM_SIMD_512 0
#define TINYLLM_SIMD_256 1
#else
#define TINYLLM_SIMD_512 0
#define TINYLLM_SIMD_256 0
#endif
#if TINYLLM_SIMD_512 || TINYLLM_SIMD_256
#include <immintrin.h>  // _mm512_fmadd_ps, _mm256_fmadd_ps, conversions
#endif

namespace tinyllm::kernels {

using fbatch = xsimd::batch<float>;                    // widest float batch of the target (AVX-512: 16 lanes)
inline constexpr std::size_t simd_width = fbatch::size;

inline fbatch load(const float* p) { return fbatch::load_unaligned(p); }

// a * b + c, fused (one rounding) wherever the CPU has FMA: the kernels' bitwise agreement between
// a row alone and a row in a batch rests on every chain being the same fused steps. (xsimd 8 has no
// AVX-512 fma and falls back to a * b + c, which is fused only if the compiler contracts it.)
inline fbatch fmadd(const fbatch& a, const fbatch& b, const fbatch& c) {
#if TINYLLM_SIMD_512
  return fbatch(_mm512_fmadd_ps(a, b, c));
#elif TINYLLM_SIMD_256 && defined(__FMA__)
  return fbatch(_mm256_fmadd_ps(a, b, c));
#else
  return xsimd::fma(a, b, c);
#endif
}
// The scalar step the tails of vector loops take: the same rounding as a lane of fmadd.
inline float fmadd(float a, float b, float c) {
#if defined(__FMA__) || defined(__AVX512F__) || defined(__ARM_FEATURE_FMA)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}
inline void store(float* p, const fbatch& v) { v.store_unaligned(p); }

// Sum of the lanes: xsimd 8 calls it hadd, later versions reduce_add.
inline float reduce_add(const fbatch& v) {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_add(v);
#else
  return xsimd::hadd(v);
#endif
}

inline float reduce_max(const fbatch& v) {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_max(v);
#else
  alignas(64) float lanes[simd_width];
  v.store_aligned(lanes);
  float m = lanes[0];
  for (std::size_t i = 1; i < simd_width; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
#endif
}

}  // namespace tinyllm::kernels
