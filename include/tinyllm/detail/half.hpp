// IEEE half (F16) and bfloat16 (BF16) <-> float, bit-exact scalar conversions.
// Depends on nothing else in tinyllm.
#pragma once

#include <cstdint>  // std::uint16_t, std::uint32_t
#include <cstring>  // std::memcpy

namespace tinyllm::detail {

inline float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline std::uint32_t float_to_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// F16 -> F32, exact for every input (normals, subnormals, zeros, infinities, NaNs).
inline float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_to_float(sign);  // +-0
  // Subnormal: value = mant * 2^-24, exact in float.
  const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
  return sign ? -v : v;
}

// F32 -> F16 with round-to-nearest-even (what torch's .half() does).
inline std::uint16_t f32_to_f16(float f) {
  const std::uint32_t u = float_to_bits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // inf or NaN (keep NaN quiet)
    return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {  // result is subnormal or zero
    const float a = bits_to_float(abs);
    // a * 2^24 rounded to nearest even integer (float arithmetic rounds exactly here).
    const float scaled = a * 16777216.0f;
    std::uint32_t m = static_cast<std::uint32_t>(scaled);
    const float rem = scaled - static_cast<float>(m);
    if (rem > 0.5f || (rem == 0.5f && (m & 1u))) ++m;
    return static_cast<std::uint16_t>(sign | m);
  }
  std::uint32_t r = abs - 0x38000000u;                 // rebias exponent 127 -> 15
  r += 0x0fffu + ((r >> 13) & 1u);                     // round to nearest even
  return static_cast<std::uint16_t>(sign | (r >> 13));
}

// BF16 -> F32 is a shift.
inline float bf16_to_f32(std::uint16_t b) { return bits_to_float(static_cast<std::uint32_t>(b) << 16); }

// F32 -> BF16 with round-to-nearest-even; NaN stays NaN.
inline std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace tinyllm::detail
