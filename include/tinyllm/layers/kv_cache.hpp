// The KV cache of one generation: per layer, keys and values of every position seen so far, laid out
// [n_head][capacity][head_dim] so one head's keys are contiguous. Grows on demand (never past
// n_positions), so a short chat does not pay for a 1024-position cache. Depends on detail/aligned.hpp.
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
  int capacity() const { return capacity_; }
  int max_positions() const { return max_positions_; }

  // Makes room for `n` positions in all, keeping what is cached.
  void reserve(int n) {
    if (n <= capacity_) return;
    const int cap = std::min(max_positions_, std::max({n, 2 * capacity_, 64}));
    const std::size_t hd = static_cast<std::size_t>(head_dim_);
    for (auto* side : {&k_, &v_})
      for (auto& buf : *side) {
        detail::AlignedBuffer grown(static_cast<std::size_t>(n_head_) * cap * hd);
        for (int h = 0; h < n_head_ && length_ > 0; ++h)
          std::memcpy(grown.data() + static_cast<std::size_t>(h) * cap * hd,
                      buf.data() + static_cast<std::size_t>(h) * capacity_ * hd,
                      static_cast<std::size_t>(length_) * hd * sizeof(float));
        buf = std::move(grown);
      }
    capacity_ = cap;
  }
  // Keys / values of `head` in `layer`: [capacity][head_dim].
  float* k(int layer, int head) { return k_[static_cast<std::size_t>(layer)].data() + offset(head); }
  float* v(int layer, int head) { return v_[static_cast<std::size_t>(layer)].data() + offset(head); }
  const float* k(int layer, int head) const { return k_[static_cast<std::size_t>(layer)].data() + offset(head); }
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
  std::vector<detail::AlignedBuffer> k_, v_;  // [n_layer] of [n_head][capacity][head_dim]
};

}  // namespace tinyllm::layers
