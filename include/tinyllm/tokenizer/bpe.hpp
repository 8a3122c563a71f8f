// Byte-pair encoding over token ids: the token index (bytes -> id), the merge table (merges.txt
// order is the rank), and the merge loop that turns one pre-tokenized piece into ids. The result is
// Hugging Face's: the lowest-rank adjacent pair merges first, the leftmost among equals. Two exact
// algorithms share one scratch buffer, so a piece costs no allocation once the buffer has grown:
// a scan over cached pair ranks for short pieces (almost all of real text), and a min-tree over a
// linked list for long ones, so a megabyte of one letter costs O(n log n), not O(n^2).
// Depends on nothing else in tinyllm.
#pragma once

#include <algorithm>    // std::min, std::max, std::fill
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t, std::uint32_t, std::uint64_t
#include <cstring>      // std::memcmp
#include <iterator>     // std::begin, std::end
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

namespace tinyllm::detail {

inline std::uint32_t load_u32(const std::uint8_t* s) {  // little-endian; compilers emit one load
  return std::uint32_t(s[0]) | std::uint32_t(s[1]) << 8 | std::uint32_t(s[2]) << 16 | std::uint32_t(s[3]) << 24;
}
inline std::uint64_t load_u64(const std::uint8_t* s) { return load_u32(s) | std::uint64_t(load_u32(s + 4)) << 32; }

// n <= 8 bytes as one zero-padded little-endian word (byte k in bits 8k..8k+7), from at most two
// overlapping loads: a short token's bytes, compared in one instruction.
inline std::uint64_t load_word(const std::uint8_t* s, std::size_t n) {
  if (n >= 4) return load_u32(s) | std::uint64_t(load_u32(s + n - 4)) << (8 * (n - 4));
  if (n == 0) return 0;
  return std::uint64_t(s[0]) | std::uint64_t(s[n / 2]) << (8 * (n / 2)) | std::uint64_t(s[n - 1]) << (8 * (n - 1));
}

inline std::uint64_t mix64(std::uint64_t h) {
  h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}

// A 64-bit hash of a byte string (internal: never stored in files). `word` is load_word(s, n) when
// n <= 8, which is all a short string's hash reads.
inline std::uint64_t hash_bytes(const std::uint8_t* s, std::size_t n, std::uint64_t word) {
  std::uint64_t h = (n * 0x9E3779B97F4A7C15ull) ^ word;
  if (n > 8) {
    for (std::size_t k = 0; k + 8 < n; k += 8) h = mix64(h ^ load_u64(s + k)) * 0x94D049BB133111EBull;
    h ^= load_u64(s + n - 8);  // the last 8 bytes, overlapping
  }
  return mix64(h * 0x94D049BB133111EBull);
}

// bytes -> token id, open addressing. A slot holds a short token's bytes itself, so most lookups
// touch one cache line; longer tokens are compared against a copy of their bytes in one arena.
class TokenIndex {
 public:
  // tokens[id] are raw bytes; only ids with include[id] are indexed; the first id of a spelling wins.
  void build(const std::vector<std::string>& tokens, const std::vector<bool>& include) {
    std::size_t count = 0;
    for (std::size_t id = 0; id < tokens.size(); ++id) count += include[id] && !tokens[id].empty();
    std::size_t cap = 16;
    while (cap < count * 2) cap <<= 1;  // load <= 0.5: misses stop after a probe or two
    slots_.assign(cap, Slot{0, 0, -1});
    arena_.clear();
    max_len_ = 0;
    for (std::size_t id = 0; id < tokens.size(); ++id)
      if (include[id] && !tokens[id].empty()) insert(tokens[id], static_cast<int>(id));
  }
  int find(const std::uint8_t* s, std::size_t n) const {
    if (n == 0 || n > max_len_) return -1;  // e.g. a long run of CJK letters: no probing
    const std::uint64_t word = n <= 8 ? load_word(s, n) : 0;
    const std::uint64_t h = hash_bytes(s, n, word);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.len == n && (n <= 8 ? slot.word == word : std::memcmp(arena_.data() + slot.word, s, n) == 0))
        return slot.id;
    }
  }
  int find(std::string_view s) const { return find(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }

 private:
  struct Slot {
    std::uint64_t word;  // the bytes (len <= 8), else where they start in arena_
    std::uint32_t len;
    int id;              // -1: empty
  };
  void insert(const std::string& token, int id) {
    const auto* s = reinterpret_cast<const std::uint8_t*>(token.data());
    if (find(s, token.size()) >= 0) return;  // a second spelling of the same bytes
    const std::size_t n = token.size();
    std::uint64_t word = n <= 8 ? load_word(s, n) : 0;
    const std::uint64_t h = hash_bytes(s, n, word);
    if (n > 8) {
      word = arena_.size();
      arena_ += token;
    }
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = Slot{word, static_cast<std::uint32_t>(n), id};
    max_len_ = std::max(max_len_, n);
  }
  std::vector<Slot> slots_;
  std::string arena_;  // bytes of the tokens longer than 8
  std::size_t max_len_ = 0;
};

// A merge as the loops use it: (rank << 32) | merged id, so that the smaller value is the merge to
// do first; equal ranks are the same merge. no_merge: the pair does not merge.
using PackedMerge = std::uint64_t;
inline constexpr PackedMerge no_merge = ~PackedMerge(0);
inline int merged_id(PackedMerge m) { return static_cast<int>(static_cast<std::uint32_t>(m)); }

// (left id, right id) -> PackedMerge, open addressing with key and value side by side. Also records
// which byte boundaries a merge can ever cross: a merge joins a left token ending in byte a to a
// right token starting with byte b, so where no merge has such an (a, b), a piece can be cut in two
// and each part encoded alone with the same result (GPT-2's merges join 2,689 of the 65,536 byte
// pairs; most boundaries between CJK characters are cuttable).
class MergeTable {
 public:
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{empty, no_merge});
    std::fill(std::begin(joins_), std::end(joins_), 0);
  }
  // Keeps the first (lowest-rank) entry of a repeated pair, as Hugging Face does. left_last and
  // right_first: the last byte of the left token and the first byte of the right one.
  void insert(int left, int right, int rank, int merged, std::uint8_t left_last, std::uint8_t right_first) {
    const std::uint64_t key = pack(left, right);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = mix64(key) & mask;
    for (; slots_[i].key != empty; i = (i + 1) & mask)
      if (slots_[i].key == key) return;
    slots_[i] = Slot{key, (std::uint64_t(std::uint32_t(rank)) << 32) | std::uint32_t(merged)};
    const unsigned j = unsigned(left_last) << 8 | right_first;
    joins_[j >> 6] |= std::uint64_t(1) << (j & 63);
  }
  // Whether any merge can join a symbol ending in byte a with one starting with byte b.
  bool may_join(std::uint8_t a, std::uint8_t b) const {
    const unsigned j = unsigned(a) << 8 | b;
    return (joins_[j >> 6] >> (j & 63)) & 1;
  }
  PackedMerge find(int left, int right) const {
    const std::uint64_t key = pack(left, right);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
      if (slots_[i].key == key) return slots_[i].merge;
      if (slots_[i].key == empty) return no_merge;
    }
  }

 private:
  struct Slot {
    std::uint64_t key;
    PackedMerge merge;
  };
  static constexpr std::uint64_t empty = ~std::uint64_t(0);
  static std::uint64_t pack(int l, int r) { return (std::uint64_t(std::uint32_t(l)) << 32) | std::uint32_t(r); }
  std::vector<Slot> slots_;
  std::uint64_t joins_[65536 / 64] = {};  // bit (a << 8 | b): some merge joins ...a | b...
};

// Buffers of the merge loops, reused from piece to piece (one per encode call, never shared).
struct BpeScratch {
  std::vector<int> sym;              // symbols (token ids), in order
  std::vector<PackedMerge> pair;     // pair[i]: merge of sym[i] with the symbol after it
  std::vector<std::uint32_t> next;   // tree only: linked list over positions (n: none)
  std::vector<std::uint32_t> prev;
  std::vector<std::uint64_t> tree;   // tree only: min-tree of (rank << 32) | position, root at 1
};

inline constexpr std::size_t bpe_scan_limit = 96;  // pieces up to this many bytes use the scan

// Scan: every step takes the smallest cached pair (leftmost among equals), merges it, and refreshes
// the two pairs around it. O(n^2) compares in the worst case, which for short pieces is the fastest.
inline void bpe_scan(const MergeTable& merges, BpeScratch& b, std::size_t n, std::vector<int>& out) {
  int* sym = b.sym.data();
  PackedMerge* pair = b.pair.data();
  for (std::size_t i = 0; i + 1 < n; ++i) pair[i] = merges.find(sym[i], sym[i + 1]);
  pair[n - 1] = no_merge;
  while (n > 1) {
    PackedMerge best = no_merge;
    std::size_t i = 0;
    for (std::size_t k = 0; k + 1 < n; ++k)
      if (pair[k] < best) best = pair[k], i = k;  // strict: the leftmost of equal merges
    if (best == no_merge) break;
    sym[i] = merged_id(best);
    for (std::size_t k = i + 1; k + 1 < n; ++k) {  // erase symbol i + 1
      sym[k] = sym[k + 1];
      pair[k] = pair[k + 1];
    }
    --n;
    pair[i] = i + 1 < n ? merges.find(sym[i], sym[i + 1]) : no_merge;
    if (i > 0) pair[i - 1] = merges.find(sym[i - 1], sym[i]);
  }
  out.insert(out.end(), sym, sym + n);
}

// Tree: a min-tree over positions holds (rank << 32) | position of each pair, so its root is the
// next merge (lowest rank, leftmost); a merge changes three leaves (the merged pair, the removed
// symbol's, the pair on the left) and each climbs only while its ancestors change. Symbols are a
// linked list over positions. O(n log n), no stale entries; for pieces longer than bpe_scan_limit.
inline void bpe_tree(const MergeTable& merges, BpeScratch& b, std::size_t n, std::vector<int>& out) {
  const auto none = static_cast<std::uint32_t>(n);
  std::size_t leaves = 1;
  while (leaves < n) leaves <<= 1;
  b.next.resize(n);
  b.prev.resize(n);
  b.tree.assign(2 * leaves, no_merge);
  int* sym = b.sym.data();
  PackedMerge* pair = b.pair.data();
  std::uint32_t* next = b.next.data();
  std::uint32_t* prev = b.prev.data();
  std::uint64_t* tree = b.tree.data();
  auto key = [&](std::uint32_t pos) { return pair[pos] == no_merge ? no_merge : (pair[pos] >> 32 << 32) | pos; };
  auto update = [&](std::uint32_t pos) {
    std::size_t i = leaves + pos;
    tree[i] = key(pos);
    for (i >>= 1; i >= 1; i >>= 1) {
      const std::uint64_t m = std::min(tree[2 * i], tree[2 * i + 1]);
      if (tree[i] == m) break;
      tree[i] = m;
    }
  };
  for (std::uint32_t i = 0; i < none; ++i) {
    next[i] = i + 1;
    prev[i] = i == 0 ? none : i - 1;
    pair[i] = i + 1 < none ? merges.find(sym[i], sym[i + 1]) : no_merge;
    tree[leaves + i] = key(i);
  }
  for (std::size_t i = leaves - 1; i >= 1; --i) tree[i] = std::min(tree[2 * i], tree[2 * i + 1]);
  while (tree[1] != no_merge) {
    const auto pos = static_cast<std::uint32_t>(tree[1]);
    const std::uint32_t r = next[pos];
    sym[pos] = merged_id(pair[pos]);
    next[pos] = next[r];
    if (next[r] != none) prev[next[r]] = pos;
    pair[r] = no_merge;  // r is gone
    update(r);
    pair[pos] = next[pos] == none ? no_merge : merges.find(sym[pos], sym[next[pos]]);
    update(pos);
    if (prev[pos] != none) {
      pair[prev[pos]] = merges.find(sym[prev[pos]], sym[pos]);
      update(prev[pos]);
    }
  }
  for (std::uint32_t i = 0; i != none; i = next[i]) out.push_back(sym[i]);
}

// Appends the BPE of bytes s[0..n) (n >= 1) to out; byte_token[b] is the id of the single byte b.
inline void bpe_encode(const MergeTable& merges, const int* byte_token, const std::uint8_t* s, std::size_t n,
                       BpeScratch& b, std::vector<int>& out) {
  if (b.sym.size() < n) {
    b.sym.resize(n);
    b.pair.resize(n);
  }
  for (std::size_t i = 0; i < n; ++i) b.sym[i] = byte_token[s[i]];
  if (n <= bpe_scan_limit) bpe_scan(merges, b, n, out);
  else bpe_tree(merges, b, n, out);
}

}  // namespace tinyllm::detail
