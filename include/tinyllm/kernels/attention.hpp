// xsimd attention for one query of one head against T cached keys and values.
// Scalar twin: kernels/reference.hpp (scalar::attention). Depends on kernels/elementwise.hpp.
#pragma once

#include <cstddef>  // std::size_t

#include "elementwise.hpp"  // dot, axpy, softmax

namespace tinyllm::kernels::simd {

// out[0:hd] = sum_t softmax_t(scale * q . k[t]) * v[t] over t < T.
// q: [hd]; k, v: [T, ld] (row t at k + t*ld); scores: [T] scratch; out: [hd].
inline void attention(const float* q, const float* k, const float* v, std::size_t ld, std::size_t T, std::size_t hd,
                      float scale, float* scores, float* out) {
  for (std::size_t t = 0; t < T; ++t) scores[t] = dot(q, k + t * ld, hd) * scale;
  softmax(scores, T);
  for (std::size_t i = 0; i < hd; ++i) out[i] = 0.0f;
  for (std::size_t t = 0; t < T; ++t) axpy(scores[t], v + t * ld, out, hd);
}

}  // namespace tinyllm::kernels::simd
