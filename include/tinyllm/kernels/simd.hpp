// xsimd glue shared by the kernels: the batch type, and the few calls whose names changed between
// xsimd 8 (Debian 12) and xsimd 13/14. Depends on xsimd only.
//
// Build with TINYLLM_NO_SIMD defined to route every kernel to its scalar twin (for targets xsimd
// does not know, and to test the twins end to end).
#pragma once

#include <cstddef>  // std::size_t

#include <xsimd/xsimd.hpp>  // xsimd::batch, fma, load_unaligned, exp, tanh

namespace tinyllm::kernels {

using fbatch = xsimd::batch<float>;                    // widest float batch of the target (AVX-512: 16 lanes)
inline constexpr std::size_t simd_width = fbatch::size;

inline fbatch load(const float* p) { return fbatch::load_unaligned(p); }
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
