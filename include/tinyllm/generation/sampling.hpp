// Choosing the next token from processed scores: greedy argmax, multinomial sampling from a seeded,
// platform-independent random stream, and the log-probabilities reported with each token.
// Depends on generation/config.hpp, generation/processors.hpp and kernels/ (argmax).
#pragma once

#include <algorithm>  // std::partial_sort, std::min
#include <cmath>      // std::exp, std::log
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint64_t, std::uint32_t
#include <limits>     // std::numeric_limits
#include <random>     // std::mt19937_64, std::seed_seq
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "../kernels/kernels.hpp"  // argmax
#include "config.hpp"
#include "output.hpp"
#include "processors.hpp"

namespace tinyllm::detail {

// Index of the largest score; the first one on ties (what torch.argmax returns).
inline int argmax(const float* scores, std::size_t n) { return static_cast<int>(kernels::impl::argmax(scores, n)); }

// The random stream of return sequence r of a prompt: std::mt19937_64 seeded from
// std::seed_seq{seed low 32 bits, seed high 32 bits, r}. Both are specified bit for bit by the C++
// standard, so the stream is the same on every platform, and it depends on nothing but (seed, r):
// not on the thread count, the other prompts of a batch, or the prompt's place in it.
inline std::mt19937_64 sequence_rng(std::uint64_t seed, std::size_t r) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(r)};
  return std::mt19937_64(seq);
}

// Uniform double in [0, 1) from 53 random bits: the same on every platform, unlike
// std::uniform_real_distribution.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Draws an index with probability softmax(scores) (-inf: never): one uniform number, walked
// through the probabilities in index order.
inline int sample_from(const float* scores, std::size_t V, std::mt19937_64& rng) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < V; ++i) m = std::max(m, static_cast<double>(scores[i]));
  std::vector<double> e(V);
  double total = 0;
  int last = 0;
  for (std::size_t i = 0; i < V; ++i) {
    e[i] = scores[i] == neg_inf ? 0.0 : static_cast<double>(std::exp(scores[i] - static_cast<float>(m)));
    total += e[i];
    if (e[i] > 0) last = static_cast<int>(i);
  }
  if (!(total > 0)) return argmax(scores, V);  // every token was removed: no distribution to draw from
  double u = uniform01(rng) * total;
  for (std::size_t i = 0; i < V; ++i) {
    u -= e[i];
    if (u < 0 && e[i] > 0) return static_cast<int>(i);
  }
  return last;  // u was within rounding of total
}

// log of the softmax denominator of scores: log p(id) = scores[id] - log_normalizer. +inf when every
// score is -inf (then every log-probability is -inf).
inline double log_normalizer(const float* scores, std::size_t V) {
  double m = -std::numeric_limits<double>::infinity(), sum = 0;
  for (std::size_t i = 0; i < V; ++i) m = std::max(m, static_cast<double>(scores[i]));
  if (m == -std::numeric_limits<double>::infinity()) return std::numeric_limits<double>::infinity();
  const float mf = static_cast<float>(m);
  for (std::size_t i = 0; i < V; ++i) sum += static_cast<double>(std::exp(scores[i] - mf));  // float exp: 3x faster
  return m + std::log(sum);
}

// The n most likely ids and their log-probabilities, most likely first (ties: the lower id).
inline std::vector<TokenLogprob> top_logprobs(const float* scores, std::size_t V, std::size_t n, double log_norm) {
  n = std::min(n, V);
  std::vector<std::pair<float, int>> all(V);
  for (std::size_t i = 0; i < V; ++i) all[i] = {scores[i], static_cast<int>(i)};
  std::partial_sort(
      all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<TokenLogprob> top;
  for (std::size_t i = 0; i < n; ++i)
    top.push_back({all[i].second, static_cast<float>(static_cast<double>(all[i].first) - log_norm)});
  return top;
}

// log softmax(scores)[id]; when n > 0, also the n most likely ids into *top.
inline float token_logprob(const float* scores, std::size_t V, int id, std::size_t n, std::vector<TokenLogprob>* top) {
  const double log_norm = log_normalizer(scores, V);
  if (top && n > 0) *top = top_logprobs(scores, V, n, log_norm);
  return static_cast<float>(static_cast<double>(scores[id]) - log_norm);
}

}  // namespace tinyllm::detail
