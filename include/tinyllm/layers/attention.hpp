// Causal multi-head self-attention with a KV cache. The new tokens' keys and values are appended to
// the cache, then each (head, query) pair attends to every cached position up to its own.
// Depends on kernels/, layers/kv_cache.hpp.
#pragma once

#include <cstddef>  // std::size_t
#include <cstring>  // std::memcpy

#include "../detail/aligned.hpp"
#include "../kernels/kernels.hpp"
#include "kv_cache.hpp"

namespace tinyllm::layers {

// qkv: [T, 3*C] (q | k | v, heads side by side in each); queries sit at positions pos0..pos0+T-1
// and the cache holds positions [0, pos0). out: [T, C] = merge_heads(softmax(q k^T * scale) v).
template <class Backend>
void causal_self_attention(const float* qkv, std::size_t T, std::size_t n_head, std::size_t head_dim,
                           KVCache& cache, int layer, std::size_t pos0, float scale, float* out) {
  const std::size_t C = n_head * head_dim;
  cache.reserve(static_cast<int>(pos0 + T));
  for (std::size_t h = 0; h < n_head; ++h) {  // append k, v: [T, hd] rows into the head's cache
    float* kc = cache.k(layer, static_cast<int>(h)) + pos0 * head_dim;
    float* vc = cache.v(layer, static_cast<int>(h)) + pos0 * head_dim;
    for (std::size_t t = 0; t < T; ++t) {
      std::memcpy(kc + t * head_dim, qkv + t * 3 * C + C + h * head_dim, head_dim * sizeof(float));
      std::memcpy(vc + t * head_dim, qkv + t * 3 * C + 2 * C + h * head_dim, head_dim * sizeof(float));
    }
  }
  const KVCache& kv = cache;
  Backend::parallel_for(0, n_head * T, [&](std::size_t b, std::size_t e) {
    thread_local detail::AlignedBuffer scores;
    scores.resize(pos0 + T);
    for (std::size_t item = b; item < e; ++item) {
      const std::size_t h = item / T, t = item % T;
      kernels::impl::attention(qkv + t * 3 * C + h * head_dim, kv.k(layer, static_cast<int>(h)),
                               kv.v(layer, static_cast<int>(h)), head_dim, pos0 + t + 1, head_dim, scale,
                               scores.data(), out + t * C + h * head_dim);
    }
  });
}

}  // namespace tinyllm::layers
