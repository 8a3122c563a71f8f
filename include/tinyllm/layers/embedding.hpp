// Token + positional embedding: x = wte[id] + wpe[pos] (GPT-2's learned positions), and the
// sinusoidal encoding of "Attention Is All You Need", the documented alternative for models whose
// positions are not learned (GPT-2 itself does not use it). Depends on kernels/ only.
#pragma once

#include <cmath>    // std::sin, std::cos, std::pow
#include <cstddef>  // std::size_t

#include "../kernels/kernels.hpp"

namespace tinyllm::layers {

// x[t, :] = wte[ids[t], :] + wpe[pos0 + t, :] for t < T.   wte: [V, C] (any WeightType); wpe: [P, C];
// x: [T, C].
inline void embed(const WeightView& wte, const float* wpe, const int* ids, std::size_t T, std::size_t pos0, float* x) {
  const std::size_t C = wte.cols;
  for (std::size_t t = 0; t < T; ++t) {
    float* row = x + t * C;
    kernels::impl::dequantize_row(wte, static_cast<std::size_t>(ids[t]), row);
    kernels::impl::add(row, wpe + (pos0 + t) * C, C);
  }
}

// out[0:d] = PE(pos): out[2i] = sin(pos / 10000^(2i/d)), out[2i+1] = cos(pos / 10000^(2i/d)). The
// alternative positional encoding the design names for models without learned positions; no
// GPT-2 checkpoint uses it, so nothing in the forward pass calls it.
inline void sinusoidal_position_encoding(std::size_t pos, std::size_t d, float* out) {
  for (std::size_t i = 0; i < d; i += 2) {
    const double angle = static_cast<double>(pos) / std::pow(10000.0, static_cast<double>(i) / static_cast<double>(d));
    out[i] = static_cast<float>(std::sin(angle));
    if (i + 1 < d) out[i + 1] = static_cast<float>(std::cos(angle));
  }
}

}  // namespace tinyllm::layers
