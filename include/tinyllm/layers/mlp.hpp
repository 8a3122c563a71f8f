// GPT-2's MLP: y = act(a @ c_fc + b) @ c_proj + b. Depends on layers/linear.hpp.
#pragma once

#include <cstddef>  // std::size_t

#include "linear.hpp"

namespace tinyllm::layers {

// a: [T, C] (ln_2 of x); h: [T, n_inner] scratch; y: [T, C] the MLP's output.
template <class Backend>
void mlp(const LinearWeights& c_fc, const LinearWeights& c_proj, Epilogue act, const float* a, std::size_t T, float* h,
         float* y) {
  linear<Backend>(c_fc, a, T, h, act);  // h = act(a @ c_fc + b)   [T, n_inner]
  linear<Backend>(c_proj, h, T, y);     // y = h @ c_proj + b       [T, C]
}

}  // namespace tinyllm::layers
