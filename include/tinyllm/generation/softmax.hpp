// The softmax of one row of scores, the one normalising loop of the generation code: sampling,
// log-probabilities, the warpers' thresholds and speculative sampling all build on it.
// Depends on nothing else in tinyllm.
#pragma once

#include <algorithm>  // std::max
#include <cmath>      // std::exp, std::log
#include <cstddef>    // std::size_t
#include <limits>     // std::numeric_limits

namespace tinyllm::detail {

inline constexpr float neg_inf = -std::numeric_limits<float>::infinity();

// What the weights of a softmax add up to: p[i] = weight[i] / total, log p[i] = scores[i] - log_norm().
struct SoftmaxSum {
  double max = -std::numeric_limits<double>::infinity();  // the largest score; -inf when every score is
  double total = 0;                                       // the sum of the weights
  bool empty() const { return max == -std::numeric_limits<double>::infinity(); }
  double log_norm() const { return max + std::log(total); }
};

// weights[i] = exp(scores[i] - max) for i < n (a removed token, -inf, weighs 0), summed in index
// order in double. Exp is the type exp runs in: float for what every token pays for (a draw, its
// log-probability), where float's exp is the cheaper; double where a threshold or a ratio of
// probabilities decides. weights may be null when only the sum is wanted.
template <class Exp>
SoftmaxSum softmax_weights(const float* scores, std::size_t n, double* weights) {
  SoftmaxSum s;
  for (std::size_t i = 0; i < n; ++i) s.max = std::max(s.max, static_cast<double>(scores[i]));
  const Exp m = static_cast<Exp>(s.max);
  for (std::size_t i = 0; i < n; ++i) {
    const double w = scores[i] == neg_inf ? 0.0 : static_cast<double>(std::exp(static_cast<Exp>(scores[i]) - m));
    if (weights) weights[i] = w;
    s.total += w;
  }
  return s;
}

}  // namespace tinyllm::detail
