// Choosing the next token from logits: greedy argmax, and sampling with Hugging Face's warpers in
// HF's order (temperature, top-k, top-p) and a seeded, platform-independent random stream.
// Depends on generation/config.hpp and kernels/reference.hpp (softmax).
#pragma once

#include <algorithm>  // std::nth_element, std::sort
#include <cmath>      // std::exp
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint64_t
#include <limits>     // std::numeric_limits
#include <random>     // std::mt19937_64
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "config.hpp"

namespace tinyllm::detail {

// Index of the largest logit; the first one on ties (what torch.argmax returns).
inline int argmax(const float* logits, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int>(best);
}

// Uniform double in [0, 1) from 53 random bits: the same on every platform, unlike
// std::uniform_real_distribution.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Samples from softmax(warped logits). Candidates are (logit, id); the warpers follow HF:
// TemperatureLogitsWarper, TopKLogitsWarper (ties with the k-th logit are kept), TopPLogitsWarper
// (drop the least likely tokens whose cumulative probability is <= 1 - top_p; keep at least one).
inline int sample(const float* logits, std::size_t n, const GenerationConfig& cfg, std::mt19937_64& rng) {
  std::vector<std::pair<float, int>> cand;
  cand.reserve(n);
  const float inv_t = 1.0f / cfg.temperature;
  for (std::size_t i = 0; i < n; ++i) cand.emplace_back(logits[i] * inv_t, static_cast<int>(i));
  auto by_logit_desc = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (cfg.top_k > 0 && static_cast<std::size_t>(cfg.top_k) < cand.size()) {
    const std::size_t k = static_cast<std::size_t>(cfg.top_k);
    std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(k - 1), cand.end(), by_logit_desc);
    const float kth = cand[k - 1].first;
    std::size_t keep = 0;
    for (std::size_t i = 0; i < cand.size(); ++i)
      if (cand[i].first >= kth) cand[keep++] = cand[i];
    cand.resize(keep);
  }
  std::sort(cand.begin(), cand.end(), by_logit_desc);
  // probabilities of the survivors
  std::vector<double> p(cand.size());
  const double m = cand[0].first;
  double sum = 0;
  for (std::size_t i = 0; i < cand.size(); ++i) sum += (p[i] = std::exp(static_cast<double>(cand[i].first) - m));
  for (double& x : p) x /= sum;
  std::size_t keep = cand.size();
  if (cfg.top_p < 1.0f) {
    // HF sorts ascending and removes the prefix whose cumulative sum <= 1 - top_p.
    double cum = 0;
    std::size_t removed = 0;
    for (std::size_t i = cand.size(); i-- > 1;) {  // least likely first; the top token always stays
      cum += p[i];
      if (cum <= 1.0 - static_cast<double>(cfg.top_p)) ++removed;
      else break;
    }
    keep = cand.size() - removed;
  }
  double total = 0;
  for (std::size_t i = 0; i < keep; ++i) total += p[i];
  double u = uniform01(rng) * total;
  for (std::size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return cand[i].second;
  }
  return cand[keep - 1].second;
}

}  // namespace tinyllm::detail
