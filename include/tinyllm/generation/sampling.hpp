// Choosing the next token from processed scores: greedy argmax, multinomial sampling from a seeded,
// platform-independent random stream, and the log-probabilities reported with each token.
// Depends on generation/ (config, output, processors, softmax) and kernels/ (argmax).
#pragma once

#include <algorithm>  // std::partial_sort, std::min
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
#include "softmax.hpp"

namespace tinyllm::detail {

// Index of the largest score; the first one on ties (what torch.argmax returns).
inline int argmax(const float* scores, std::size_t n) { return static_cast<int>(kernels::impl::argmax(scores, n)); }

// What a random stream is for, beyond a sequence's own draws: a salt makes the stream independent
// of the plain one of the same (seed, stream).
enum class RandomSalt : std::uint32_t {
  none = 0,              // a sequence's draws (sampling, beam sampling, speculative sampling's test)
  draft = 0x64726166u,   // "draf": the draft model's proposals in speculative decoding
};

// Random stream `stream` of a seed (return sequence r of a prompt: stream r): std::mt19937_64 seeded
// from std::seed_seq{seed low 32 bits, seed high 32 bits, stream} and the salt as a fourth word
// unless it is none. Both are specified bit for bit by the C++ standard, so the stream is the same
// on every platform, and it depends on nothing but its arguments: not on the thread count, the
// other prompts of a batch, or the prompt's place in it.
inline std::mt19937_64 random_stream(std::uint64_t seed, std::size_t stream, RandomSalt salt = RandomSalt::none) {
  const auto lo = static_cast<std::uint32_t>(seed), hi = static_cast<std::uint32_t>(seed >> 32),
             r = static_cast<std::uint32_t>(stream);
  if (salt == RandomSalt::none) {
    std::seed_seq seq{lo, hi, r};
    return std::mt19937_64(seq);
  }
  std::seed_seq seq{lo, hi, r, static_cast<std::uint32_t>(salt)};
  return std::mt19937_64(seq);
}

// Uniform double in [0, 1) from 53 random bits: the same on every platform, unlike
// std::uniform_real_distribution.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Draws an index with probability w[i] / total (total = sum of w > 0): one uniform number, walked
// through the weights in index order.
inline int draw(const std::vector<double>& w, double total, std::mt19937_64& rng) {
  double u = uniform01(rng) * total;
  int last = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] <= 0) continue;
    last = static_cast<int>(i);
    u -= w[i];
    if (u < 0) return last;
  }
  return last;  // u was within rounding of total
}

// Draws an index with probability softmax(scores) (-inf: never).
inline int sample_from(const float* scores, std::size_t V, std::mt19937_64& rng) {
  std::vector<double> w(V);
  const SoftmaxSum sum = softmax_weights<float>(scores, V, w.data());
  if (!(sum.total > 0)) return argmax(scores, V);  // every token was removed: no distribution to draw from
  return draw(w, sum.total, rng);
}

// log of the softmax denominator of scores: log p(id) = scores[id] - log_normalizer. +inf when every
// score is -inf (then every log-probability is -inf).
inline double log_normalizer(const float* scores, std::size_t V) {
  const SoftmaxSum sum = softmax_weights<float>(scores, V, nullptr);
  return sum.empty() ? std::numeric_limits<double>::infinity() : sum.log_norm();
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
