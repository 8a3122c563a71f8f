// Loading F32 / F16 / BF16 weights as float batches: F16 and BF16 widened in registers (F16C /
// AVX-512 conversions). Every kernel that reads a weight matrix goes through
// these, so a weight has the same float value in every kernel (the bitwise row == batch property).
// Depends on kernels/simd.hpp, weight_type.hpp, detail/half.hpp.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int8_t, std::uint16_t

#include "../detail/half.hpp"
#include "../weight_type.hpp"
#include "reference.hpp"  // weight_at
#include "simd.hpp"

namespace tinyllm::kernels {

namespace simd {

// Row loaders: load(r, c) gives elements (r, c .. c+W) of a row-major matrix as a float batch, for
// any c; at(r, c) one
// element; prefetch(r, c) asks for the cache line of (r, c). One type per WeightType so kernels are
// compiled per type. `bytes` is the size of one element.
//
// Prefetches go to L2 (prefetcht1), not L1 (prefetcht0): a prefetch to L1 holds one of the core's
// few L1 miss buffers until its line arrives from memory, one to L2 does not, so more lines are on
// their way at once.
inline void prefetch_line(const void* p) { __builtin_prefetch(p, 0, 2); }

struct LoadF32 {
  static constexpr std::size_t bytes = 4;
  const float* p;
  std::size_t ld;
  const float* begin = nullptr;  // the matrix's floats [begin, end), which reads by whole lines keep to
  const float* end = nullptr;    // (gemv.hpp; p may point into it: a kernel's columns from c0)
  fbatch load(std::size_t r, std::size_t c) const { return kernels::load(p + r * ld + c); }
  float at(std::size_t r, std::size_t c) const { return p[r * ld + c]; }
  void prefetch(std::size_t r, std::size_t c) const { prefetch_line(p + r * ld + c); }
};

struct LoadF16 {
  static constexpr std::size_t bytes = 2;
  const std::uint16_t* p;
  std::size_t ld;
  fbatch load(std::size_t r, std::size_t c) const {
    const std::uint16_t* s = p + r * ld + c;
#if TINYLLM_SIMD_512
    return fbatch(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s))));
#elif TINYLLM_SIMD_256 && defined(__F16C__)
    return fbatch(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s))));
#else
    alignas(64) float v[simd_width];
    for (std::size_t i = 0; i < simd_width; ++i) v[i] = detail::f16_to_f32(s[i]);
    return fbatch::load_aligned(v);
#endif
  }
  float at(std::size_t r, std::size_t c) const { return detail::f16_to_f32(p[r * ld + c]); }
  void prefetch(std::size_t r, std::size_t c) const { prefetch_line(p + r * ld + c); }
};

struct LoadBF16 {
  static constexpr std::size_t bytes = 2;
  const std::uint16_t* p;
  std::size_t ld;
  fbatch load(std::size_t r, std::size_t c) const {
    const std::uint16_t* s = p + r * ld + c;
#if TINYLLM_SIMD_512
    return fbatch(_mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s))), 16)));
#elif TINYLLM_SIMD_256
    return fbatch(_mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s))), 16)));
#else
    alignas(64) float v[simd_width];
    for (std::size_t i = 0; i < simd_width; ++i) v[i] = detail::bf16_to_f32(s[i]);
    return fbatch::load_aligned(v);
#endif
  }
  float at(std::size_t r, std::size_t c) const { return detail::bf16_to_f32(p[r * ld + c]); }
  void prefetch(std::size_t r, std::size_t c) const { prefetch_line(p + r * ld + c); }
};

// Calls fn(loader) with the loader of w's type (F32, F16 or BF16; Q8 has its own kernels, q8.hpp).
template <class Fn>
decltype(auto) with_loader(const WeightView& w, Fn&& fn) {
  switch (w.type) {
    case WeightType::F16: return fn(LoadF16{w.u16(), w.cols});
    case WeightType::BF16: return fn(LoadBF16{w.u16(), w.cols});
    case WeightType::F32:
    case WeightType::Q8: break;
  }
  return fn(LoadF32{w.f32(), w.cols, w.f32(), w.f32() + w.rows * w.cols});
}

}  // namespace simd
}  // namespace tinyllm::kernels
