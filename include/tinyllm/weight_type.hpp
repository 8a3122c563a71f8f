// WeightType and WeightView: the element types a weight matrix may have in memory, their names, and
// a typed, non-owning view of one matrix. Shared by every tier; depends on error.hpp only.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::int8_t, std::uint16_t
#include <string>       // std::string
#include <string_view>  // std::string_view

#include "error.hpp"

namespace tinyllm {

// How matrices are held for computing. Layer norms, biases and positions always stay F32.
//   F32  4 bytes/weight; F16, BF16 2 bytes/weight (widened to F32 in registers);
//   Q8   1 byte/weight + an F32 scale per block of 32 weights along the reduction (dot-product)
//        dimension (1.125 bytes/weight): w = q * scale, q in [-127, 127] (a file holding -128 is an
//        error), scale = max |w| / 127.
//        Products with Q8 weights quantize the activations to 8 bits per block of 32 as well and use
//        int8 dot products (AVX-512 VNNI), like llama.cpp's q8_0.
enum class WeightType { F32, F16, BF16, Q8 };
inline constexpr WeightType all_weight_types[] = {WeightType::F32, WeightType::F16, WeightType::BF16, WeightType::Q8};

inline constexpr std::size_t q8_block = 32;  // weights per scale, along the reduction dimension
inline constexpr std::size_t q8_group = 4;   // consecutive reduction indices stored together (one int32)
inline constexpr std::size_t q8_align = 32;  // outputs are padded to a multiple of this

inline constexpr std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

inline const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::F32: return "f32";
    case WeightType::F16: return "f16";
    case WeightType::BF16: return "bf16";
    case WeightType::Q8: return "q8";
  }
  return "?";
}

// The WeightType weight_type_name gives `name` ("f32", "f16", "bf16", "q8"). Any other name is an
// Error naming `where` (the flag or field it came from) and the value.
inline WeightType parse_weight_type(std::string_view name, const std::string& where = "weight type") {
  std::string names;
  for (WeightType t : all_weight_types) {
    if (name == weight_type_name(t)) return t;
    names += std::string(names.empty() ? "" : ", ") + weight_type_name(t);
  }
  detail::fail(where, "'" + std::string(name) + "' is not one of " + names);
}

// Bytes per weight, scales and sums included.
inline double weight_type_bytes(WeightType t) {
  switch (t) {
    case WeightType::F32: return 4.0;
    case WeightType::F16:
    case WeightType::BF16: return 2.0;
    case WeightType::Q8: return 1.0 + 4.0 / q8_block;
  }
  return 4.0;
}

// A weight matrix as HF stores it, [rows, cols] row-major for F32 / F16 / BF16. A matrix is used
// either as x @ W (HF Conv1D, [in, out]: the reduction runs over rows) or as W x (wte and lm_head,
// [vocab, n_embd]: it runs over cols); outputs_are_rows says which.
//
// Q8 is laid out for int8 dot products: with k the reduction index (k < K, padded with zeros to
// K_pad, a multiple of 32) and o the output (padded to O_pad, a multiple of 32),
//   q[((k / 4) * O_pad + o) * 4 + k % 4]   int8, four consecutive k of one output side by side
//   scale[(k / 32) * O_pad + o]            F32
struct WeightView {
  WeightType type = WeightType::F32;
  const void* data = nullptr;         // float / std::uint16_t (F16, BF16) / std::int8_t (Q8)
  const float* scale = nullptr;       // Q8 only
  std::size_t rows = 0, cols = 0;
  bool outputs_are_rows = false;      // W x (wte, lm_head) rather than x @ W (Conv1D)
  bool amx = false;                   // prompts multiply on AMX tiles in bf16 (LoadOptions::amx)
  bool bf16_dot = false;              // prompts multiply by AVX-512 bf16 dot products (LoadOptions::bf16_dot)

  const float* f32() const { return static_cast<const float*>(data); }
  const std::uint16_t* u16() const { return static_cast<const std::uint16_t*>(data); }
  const std::int8_t* i8() const { return static_cast<const std::int8_t*>(data); }
  std::size_t reduce_len() const { return outputs_are_rows ? cols : rows; }   // K
  std::size_t outputs() const { return outputs_are_rows ? rows : cols; }      // O
  std::size_t k_pad() const { return round_up(reduce_len(), q8_block); }
  std::size_t o_pad() const { return round_up(outputs(), q8_align); }
  std::size_t k_blocks() const { return k_pad() / q8_block; }
};

// An F32 [rows, cols] view of plain floats.
inline WeightView f32_matrix(const float* data, std::size_t rows, std::size_t cols) {
  WeightView w;
  w.data = data;
  w.rows = rows;
  w.cols = cols;
  return w;
}

}  // namespace tinyllm
