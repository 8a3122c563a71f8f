// Layer norm over T rows of n_embd. Depends on kernels/ only.
#pragma once

#include <cstddef>  // std::size_t

#include "../kernels/kernels.hpp"

namespace tinyllm::layers {

struct LayerNormWeights {
  const float* weight = nullptr;  // [n_embd]  (gamma)
  const float* bias = nullptr;    // [n_embd]  (beta)
};

// y[T, C] = layer_norm(x[T, C]) with gamma = w.weight, beta = w.bias.
template <class Backend>
void layer_norm(const LayerNormWeights& w, const float* x, std::size_t T, std::size_t C, float eps, float* y) {
  auto rows = [&](std::size_t b, std::size_t e) {
    for (std::size_t t = b; t < e; ++t) kernels::impl::layer_norm(x + t * C, w.weight, w.bias, y + t * C, C, eps);
  };
  if (static_cast<double>(T) * C < 64 * 1024)  // a few rows: not worth waking threads
    rows(0, T);
  else
    Backend::parallel_for(0, T, rows);
}

}  // namespace tinyllm::layers
