// Byte-pair encoding over token ids: the merge table (merges.txt order is the rank), and the merge
// loop that turns one pre-tokenized piece into ids. Two exact algorithms give Hugging Face's result
// (lowest-rank pair first, leftmost among equals): a scan for short pieces and a heap for long ones,
// so a megabyte of one letter costs O(n log n), not O(n^2).
// Depends on nothing else in tinyllm.
#pragma once

#include <algorithm>    // std::max
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint32_t, std::uint64_t
#include <queue>        // std::priority_queue
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

namespace tinyllm::detail {

inline std::uint64_t hash_bytes(std::string_view s) {  // FNV-1a, then a final mix
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h ^ (h >> 29);
}
inline std::uint64_t hash_u64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

// bytes -> token id, open addressing over the decoder's strings (no allocation per lookup).
class TokenIndex {
 public:
  void build(const std::vector<std::string>& tokens, const std::vector<bool>& include) {
    tokens_ = &tokens;
    std::size_t cap = 16;
    while (cap < tokens.size() * 2) cap <<= 1;
    slots_.assign(cap, -1);
    for (std::size_t id = 0; id < tokens.size(); ++id)
      if (include[id]) insert(static_cast<int>(id));
  }
  int find(std::string_view s) const {
    if (slots_.empty()) return -1;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash_bytes(s) & mask;; i = (i + 1) & mask) {
      const int id = slots_[i];
      if (id < 0) return -1;
      if ((*tokens_)[static_cast<std::size_t>(id)] == s) return id;
    }
  }

 private:
  void insert(int id) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = hash_bytes((*tokens_)[static_cast<std::size_t>(id)]) & mask;
    while (slots_[i] >= 0) {
      if ((*tokens_)[static_cast<std::size_t>(slots_[i])] == (*tokens_)[static_cast<std::size_t>(id)]) return;  // first id wins
      i = (i + 1) & mask;
    }
    slots_[i] = id;
  }
  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<int> slots_;
};

struct Merge {
  int rank = -1;    // line order in merges.txt; -1: no such merge
  int merged = -1;  // id of the concatenation
};

// (left id, right id) -> Merge, open addressing.
class MergeTable {
 public:
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    keys_.assign(cap, empty);
    vals_.assign(cap, Merge{});
  }
  // Keeps the first (lowest-rank) entry of a repeated pair, as Hugging Face does.
  void insert(int left, int right, Merge m) {
    const std::uint64_t key = pack(left, right);
    const std::size_t mask = keys_.size() - 1;
    std::size_t i = hash_u64(key) & mask;
    while (keys_[i] != empty) {
      if (keys_[i] == key) return;
      i = (i + 1) & mask;
    }
    keys_[i] = key;
    vals_[i] = m;
  }
  Merge find(int left, int right) const {
    const std::uint64_t key = pack(left, right);
    const std::size_t mask = keys_.size() - 1;
    for (std::size_t i = hash_u64(key) & mask;; i = (i + 1) & mask) {
      if (keys_[i] == key) return vals_[i];
      if (keys_[i] == empty) return Merge{};
    }
  }

 private:
  static constexpr std::uint64_t empty = ~std::uint64_t(0);
  static std::uint64_t pack(int l, int r) {
    return (std::uint64_t(std::uint32_t(l)) << 32) | std::uint32_t(r);
  }
  std::vector<std::uint64_t> keys_;
  std::vector<Merge> vals_;
};

// Merges symbols (initially one id per byte) in place, lowest rank first, leftmost among equals.
// Scan algorithm: O(n^2) worst case, fastest for the short pieces that are almost all of real text.
inline void bpe_merge_scan(const MergeTable& merges, std::vector<int>& sym) {
  while (sym.size() > 1) {
    int best_rank = -1;
    std::size_t best = 0;
    int merged = -1;
    for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
      const Merge m = merges.find(sym[i], sym[i + 1]);
      if (m.rank >= 0 && (best_rank < 0 || m.rank < best_rank)) {
        best_rank = m.rank;
        best = i;
        merged = m.merged;
      }
    }
    if (best_rank < 0) return;
    sym[best] = merged;
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

// Same result in O(n log n): a heap of candidate pairs keyed by (rank, position), over a linked list.
// Stale heap entries are recognised by comparing the ids they were made from.
inline void bpe_merge_heap(const MergeTable& merges, std::vector<int>& sym) {
  const std::size_t n = sym.size();
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
  }
  struct Cand {
    int rank, pos, left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    const Merge m = merges.find(sym[pos], sym[next[pos]]);
    if (m.rank >= 0) heap.push({m.rank, pos, sym[pos], sym[next[pos]]});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int r = next[c.pos];
    if (sym[c.pos] != c.left || r < 0 || sym[r] != c.right) continue;  // stale
    sym[c.pos] = merges.find(c.left, c.right).merged;
    sym[r] = -1;  // removed
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  std::size_t out = 0;
  for (int i = 0; i >= 0; i = next[i]) sym[out++] = sym[i];
  sym.resize(out);
}

}  // namespace tinyllm::detail
