// Converting a weight matrix between WeightTypes: widening to F32, rounding to F16 / BF16, and Q8
// quantization (blocks of 32 along the reduction dimension, absmax scale, round to nearest even).
// Used at load time and by `tinyllm quantize`. Depends on kernels/reference.hpp (weight_at), detail/.
#pragma once

#include <algorithm>  // std::max, std::min
#include <cmath>      // std::fabs, std::nearbyint
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int8_t, std::uint16_t
#include <vector>     // std::vector

#include "../detail/aligned.hpp"
#include "../detail/half.hpp"
#include "../kernels/reference.hpp"  // weight_at
#include "../weight_type.hpp"

namespace tinyllm::detail {

// Floats a converted matrix takes: its data, and its Q8 scales (0 for the other types).
struct ConvertedSize {
  std::size_t data = 0, scale = 0;
};
inline ConvertedSize converted_size(const WeightView& src, WeightType type) {
  if (type == WeightType::Q8) return {src.k_pad() * src.o_pad() / 4 + 1, src.k_blocks() * src.o_pad()};
  const std::size_t elem = type == WeightType::F32 ? 4 : 2;
  return {(src.rows * src.cols * elem + 3) / 4 + 1, 0};
}

// `src` as a matrix of `type` (src.outputs_are_rows says how it is used, which decides the Q8
// layout), written into `data` and `scale` (zero-filled, converted_size floats each), which the
// returned view points into. Q8: blocks of 32 along the reduction, absmax scale, round to nearest
// even (see WeightView).
inline WeightView convert_matrix(const WeightView& src, WeightType type, float* data, float* scale) {
  WeightView v = src;
  v.type = type;
  v.scale = nullptr;
  if (type == WeightType::Q8) {
    const std::size_t K = src.reduce_len(), O = src.outputs(), nb = src.k_blocks();
    auto* q = reinterpret_cast<std::int8_t*>(data);
    v.data = q;
    v.scale = scale;
    auto at = [&](std::size_t k, std::size_t o) {
      return src.outputs_are_rows ? kernels::weight_at(src, o, k) : kernels::weight_at(src, k, o);
    };
    float block[q8_block];
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t o = 0; o < O; ++o) {
        const std::size_t k0 = b * q8_block, k1 = std::min(K, k0 + q8_block);
        float amax = 0.0f;
        for (std::size_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(block[k - k0] = at(k, o)));
        const float s = amax / 127.0f;
        for (std::size_t k = k0; k < k1; ++k) {  // in [-127, 127]: the kernels may negate any q
          const float r = s > 0.0f ? std::nearbyint(block[k - k0] / s) : 0.0f;
          q[kernels::q8_index(v, k, o)] = static_cast<std::int8_t>(std::max(-127.0f, std::min(127.0f, r)));
        }
        scale[kernels::q8_block_index(v, k0, o)] = s;
      }
    return v;
  }
  for (std::size_t r = 0; r < src.rows; ++r)
    for (std::size_t c = 0; c < src.cols; ++c) {
      const float x = kernels::weight_at(src, r, c);
      const std::size_t i = r * src.cols + c;
      if (type == WeightType::F32) data[i] = x;
      else reinterpret_cast<std::uint16_t*>(data)[i] = type == WeightType::F16 ? f32_to_f16(x) : f32_to_bf16(x);
    }
  v.data = data;
  return v;
}

// Owned storage of one converted matrix (the loader keeps all of them in one buffer instead).
struct MatrixBuffers {
  AlignedBuffer data, scale;
};
inline WeightView convert_matrix(const WeightView& src, WeightType type, MatrixBuffers& out) {
  const ConvertedSize size = converted_size(src, type);
  out.data.resize(size.data);
  if (size.scale) out.scale.resize(size.scale);
  return convert_matrix(src, type, out.data.data(), out.scale.data());
}

}  // namespace tinyllm::detail
