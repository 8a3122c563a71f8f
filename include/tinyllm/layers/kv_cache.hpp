// The KV cache of one generation: per layer and head, the keys and values of every position seen so
// far. Keys are stored transposed, [head_dim][capacity], so scores for a query are a matrix-vector
// product over positions; values are [capacity][head_dim]. Grows on demand (never past n_positions),
// so a short chat does not pay for a 1024-position cache. Depends on detail/aligned.hpp.
#pragma once

#include <algorithm>  // std::max, std::min
#include <cstddef>    // std::size_t
#include <cstring>    // std::memcpy
#include <vector>     // std::vector

#include "../detail/aligned.hpp"

namespace tinyllm::layers {

class KVCache {
 public:
  KVCache() = default;
  KVCache(int n_layer, int n_head, int head_dim, int max_positions)
      : n_head_(n_head), head_dim_(head_dim), max_positions_(max_positions),
        k_(static_cast<std::size_t>(n_layer)), v_(static_cast<std::size_t>(n_layer)) {}

  int length() const { return length_; }           // positions cached
  int n_layers() const { return static_cast<int>(k_.size()); }
  int capacity() const { return capacity_; }

  // Makes room for `n` positions in all, keeping what is cached.
  void reserve(int n) {
    if (n <= capacity_) return;
    // Room to grow (a prompt is usually followed by decoding), doubling beyond that.
    const std::size_t cap = static_cast<std::size_t>(std::min(max_positions_, std::max({n + n / 4, 2 * capacity_, 64})));
    const std::size_t hd = static_cast<std::size_t>(head_dim_), old = static_cast<std::size_t>(capacity_);
    const std::size_t len = static_cast<std::size_t>(length_);
    for (std::size_t l = 0; l < k_.size(); ++l) {
      detail::AlignedBuffer k(static_cast<std::size_t>(n_head_) * hd * cap), v(static_cast<std::size_t>(n_head_) * cap * hd);
      for (std::size_t h = 0; h < static_cast<std::size_t>(n_head_) && len > 0; ++h) {
        for (std::size_t i = 0; i < hd; ++i)  // key rows are positions-long
          std::memcpy(k.data() + (h * hd + i) * cap, k_[l].data() + (h * hd + i) * old, len * sizeof(float));
        std::memcpy(v.data() + h * cap * hd, v_[l].data() + h * old * hd, len * hd * sizeof(float));
      }
      k_[l] = std::move(k);
      v_[l] = std::move(v);
    }
    capacity_ = static_cast<int>(cap);
  }
  // Keys of `head` in `layer`, transposed: [head_dim][capacity] (row i: dimension i at every position).
  float* k_t(int layer, int head) { return k_[static_cast<std::size_t>(layer)].data() + offset(head); }
  const float* k_t(int layer, int head) const { return k_[static_cast<std::size_t>(layer)].data() + offset(head); }
  // Values of `head` in `layer`: [capacity][head_dim].
  float* v(int layer, int head) { return v_[static_cast<std::size_t>(layer)].data() + offset(head); }
  const float* v(int layer, int head) const { return v_[static_cast<std::size_t>(layer)].data() + offset(head); }

  void set_length(int n) { length_ = n; }  // after a forward pass; smaller n rolls back
  std::size_t bytes() const {
    return 2 * k_.size() * static_cast<std::size_t>(n_head_) * capacity_ * head_dim_ * sizeof(float);
  }

 private:
  std::size_t offset(int head) const {
    return static_cast<std::size_t>(head) * static_cast<std::size_t>(capacity_) * static_cast<std::size_t>(head_dim_);
  }
  int n_head_ = 0, head_dim_ = 0, max_positions_ = 0, capacity_ = 0, length_ = 0;
  std::vector<detail::AlignedBuffer> k_, v_;  // [n_layer] of [n_head][head_dim][capacity], [n_head][capacity][head_dim]
};

}  // namespace tinyllm::layers
