// WeightType and WeightView: the element types a weight matrix may have in memory, and a typed,
// non-owning view of one matrix. Shared by every tier; depends on nothing.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int8_t, std::uint16_t

namespace tinyllm {

// How matrices are held for computing. Layer norms, biases and positions always stay F32.
//   F32  4 bytes/weight; F16, BF16 2 bytes/weight (widened in registers);
//   Q8   1 byte/weight + one F32 scale per block of 32 consecutive weights of a row (1.125 bytes/weight):
//        w = q * scale, q in [-127, 127], scale = max |w| of the block / 127.
enum class WeightType { F32, F16, BF16, Q8 };

inline constexpr std::size_t q8_block = 32;

inline const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::F32: return "f32";
    case WeightType::F16: return "f16";
    case WeightType::BF16: return "bf16";
    case WeightType::Q8: return "q8";
  }
  return "?";
}

// Bytes per weight, scales included.
inline double weight_type_bytes(WeightType t) {
  switch (t) {
    case WeightType::F32: return 4.0;
    case WeightType::F16:
    case WeightType::BF16: return 2.0;
    case WeightType::Q8: return 1.0 + 4.0 / q8_block;
  }
  return 4.0;
}

// A row-major [rows, cols] matrix in one of the weight types.
struct WeightView {
  WeightType type = WeightType::F32;
  const void* data = nullptr;   // float / std::uint16_t (F16, BF16) / std::int8_t (Q8)
  const float* scale = nullptr;  // Q8: [rows, ceil(cols / q8_block)]
  std::size_t rows = 0, cols = 0;

  const float* f32() const { return static_cast<const float*>(data); }
  const std::uint16_t* u16() const { return static_cast<const std::uint16_t*>(data); }
  const std::int8_t* i8() const { return static_cast<const std::int8_t*>(data); }
  std::size_t scale_cols() const { return (cols + q8_block - 1) / q8_block; }
};

}  // namespace tinyllm
