// Converting a weight matrix between WeightTypes: widening to F32, rounding to F16 / BF16, and Q8
// quantization (blocks of 32 consecutive weights of a row, absmax scale, round to nearest even).
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

// Quantizes one row of `cols` floats into q (int8) and scale ([ceil(cols / q8_block)]).
inline void quantize_row_q8(const float* x, std::size_t cols, std::int8_t* q, float* scale) {
  for (std::size_t b = 0; b * q8_block < cols; ++b) {
    const std::size_t c0 = b * q8_block, c1 = std::min(cols, c0 + q8_block);
    float amax = 0.0f;
    for (std::size_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[c]));
    const float s = amax / 127.0f;
    scale[b] = s;
    for (std::size_t c = c0; c < c1; ++c) {
      const float v = s > 0.0f ? std::nearbyint(x[c] / s) : 0.0f;
      q[c] = static_cast<std::int8_t>(std::max(-127.0f, std::min(127.0f, v)));
    }
  }
}

// `src` as a matrix of `type`, written into `data` (and `scale` for Q8), which the view points into.
inline WeightView convert_matrix(const WeightView& src, WeightType type, AlignedBuffer& data, AlignedBuffer& scale) {
  WeightView out;
  out.type = type;
  out.rows = src.rows;
  out.cols = src.cols;
  const std::size_t n = src.rows * src.cols;
  const std::size_t elem = type == WeightType::F32 ? 4 : type == WeightType::Q8 ? 1 : 2;
  data.resize((n * elem + 3) / 4 + 1);
  std::vector<float> row(src.cols);
  for (std::size_t r = 0; r < src.rows; ++r) {
    for (std::size_t c = 0; c < src.cols; ++c) row[c] = kernels::weight_at(src, r, c);
    const std::size_t i = r * src.cols;
    switch (type) {
      case WeightType::F32:
        std::copy(row.begin(), row.end(), data.data() + i);
        break;
      case WeightType::F16:
      case WeightType::BF16: {
        auto* d = reinterpret_cast<std::uint16_t*>(data.data()) + i;
        for (std::size_t c = 0; c < src.cols; ++c) d[c] = type == WeightType::F16 ? f32_to_f16(row[c]) : f32_to_bf16(row[c]);
        break;
      }
      case WeightType::Q8:
        if (r == 0) scale.resize(src.rows * out.scale_cols());
        quantize_row_q8(row.data(), src.cols, reinterpret_cast<std::int8_t*>(data.data()) + i,
                        scale.data() + r * out.scale_cols());
        break;
    }
  }
  out.data = data.data();
  out.scale = type == WeightType::Q8 ? scale.data() : nullptr;
  return out;
}

}  // namespace tinyllm::detail
