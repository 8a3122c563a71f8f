// Exact top-k search by inner product over the rows of a matrix ([N, d], one vector per row), for one
// query or many at once: rows are scored in chunks taken by whichever thread is free (many queries:
// a matrix product, kernels/similarity.hpp), each chunk keeps its own k best per query, and the
// chunks' bests are merged. Ranking is by score, then by row (the lower first), so the result does
// not depend on the chunks or the thread count. Depends on kernels/similarity.hpp and backend/.
#pragma once

#include <algorithm>  // std::min, std::max, std::sort, std::push_heap, std::pop_heap
#include <cstddef>    // std::size_t
#include <limits>     // std::numeric_limits
#include <vector>     // std::vector

#include "../backend/backend.hpp"   // parallel_for_each
#include "../detail/aligned.hpp"    // AlignedBuffer
#include "../kernels/similarity.hpp"
#include "../weight_type.hpp"       // WeightView

namespace tinyllm::detail {

struct Scored {
  float score;
  std::size_t row;
};

// a ranks before b: a higher score, or the same score and a lower row.
inline bool ranks_before(const Scored& a, const Scored& b) {
  return a.score > b.score || (a.score == b.score && a.row < b.row);
}

// The k best of (score, row) pairs. scan() takes rows in increasing order (so an equal score never
// displaces an earlier row); push() takes any. A NaN score never enters.
class TopK {
 public:
  explicit TopK(std::size_t k = 0) : k_(k) { heap_.reserve(k); }

  // Scores must be above this to enter.
  float threshold() const { return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score; }

  void push(const Scored& s) {
    if (k_ == 0 || s.score != s.score) return;
    if (heap_.size() < k_) {
      heap_.push_back(s);
      std::push_heap(heap_.begin(), heap_.end(), ranks_before);  // the worst on top
    } else if (ranks_before(s, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), ranks_before);
      heap_.back() = s;
      std::push_heap(heap_.begin(), heap_.end(), ranks_before);
    }
  }
  // Rows row0 .. row0 + n - 1 with scores[0:n], after every row pushed so far.
  void scan(const float* scores, std::size_t n, std::size_t row0) {
    for (std::size_t i = 0; i < n;) {
      while (heap_.size() < k_ && i < n) push({scores[i], row0 + i}), ++i;
      if (i >= n) break;
      const std::size_t j = i + kernels::impl::first_above(scores + i, n - i, threshold());
      if (j < n) push({scores[j], row0 + j});
      i = j + 1;
    }
  }
  void merge(const TopK& other) {
    for (const Scored& s : other.heap_) push(s);
  }
  std::vector<Scored> sorted() const {
    std::vector<Scored> out = heap_;
    std::sort(out.begin(), out.end(), ranks_before);
    return out;
  }

 private:
  std::size_t k_;
  std::vector<Scored> heap_;
};

// Queries scored per pass: rows of scores per chunk stay in L2 (64 queries x 1024 rows: 256 KB).
inline constexpr std::size_t search_query_block = 64;

// The k rows of `vectors` ([N, d]) with the largest inner product with each of the nq queries
// ([nq, d], row-major), best first. Scores of a query are bitwise the same alone or among others.
template <class Backend>
std::vector<std::vector<Scored>> exact_search(const WeightView& vectors, const float* queries, std::size_t nq,
                                              std::size_t k) {
  const std::size_t N = vectors.rows, d = vectors.cols;
  std::vector<std::vector<Scored>> out(nq);
  if (N == 0 || k == 0) return out;
  for (std::size_t q0 = 0; q0 < nq; q0 += search_query_block) {
    const std::size_t m = std::min(search_query_block, nq - q0);
    // One query streams the matrix (memory-bound): long chunks; many: chunks whose scores stay in L2.
    const std::size_t rows = m == 1 ? 8192 : 1024;
    const std::size_t chunks = (N + rows - 1) / rows;
    std::vector<std::vector<TopK>> partial(chunks);
    parallel_for_each<Backend>(chunks, [&](std::size_t c) {
      thread_local AlignedBuffer scores;
      const std::size_t r0 = c * rows, r1 = std::min(N, r0 + rows);
      scores.resize(m * (r1 - r0));
      WeightView part = vectors;  // rows [r0, r1)
      part.data = static_cast<const char*>(vectors.data) + r0 * d * static_cast<std::size_t>(weight_type_bytes(vectors.type));
      part.rows = r1 - r0;
      kernels::impl::inner_products(m, queries + q0 * d, d, part, scores.data(), r1 - r0, d, 0, r1 - r0);
      partial[c].assign(m, TopK(k));
      for (std::size_t q = 0; q < m; ++q) partial[c][q].scan(scores.data() + q * (r1 - r0), r1 - r0, r0);
    });
    for (std::size_t q = 0; q < m; ++q) {
      TopK best(k);
      for (const auto& p : partial) best.merge(p[q]);
      out[q0 + q] = best.sorted();
    }
  }
  return out;
}

}  // namespace tinyllm::detail
