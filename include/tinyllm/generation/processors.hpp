// Hugging Face's logits processors and sampling warpers over one row of scores [V], in place.
// Removed tokens get -inf. process() applies them in the order of HF's _get_logits_processor:
//   repetition_penalty, no_repeat_ngram_size, bad_words_ids, min_length, min_new_tokens, then, when
//   sampling, temperature, top_k, top_p, min_p, typical_p.
// Softmaxes and cumulative sums run in double (HF: float32 with double accumulation); only exact ties
// at a threshold could decide differently. Depends on generation/config.hpp and softmax.hpp.
#pragma once

#include <algorithm>   // std::sort, std::nth_element, std::find, std::equal, std::unique
#include <cmath>       // std::abs
#include <cstddef>     // std::size_t
#include <functional>  // std::greater
#include <utility>     // std::pair
#include <vector>      // std::vector

#include "config.hpp"
#include "softmax.hpp"

namespace tinyllm::detail {

// What the processors see of a sequence: ids[0, n) = prompt (prompt_length ids) + generated so far.
struct SequenceView {
  const int* ids;
  std::size_t n;
  std::size_t prompt_length;
};

// --- processors ---------------------------------------------------------------------------------

// CTRL's repetition penalty: each id present in the sequence has its score divided by `penalty`
// when positive and multiplied by it when negative (once, however often the id occurs).
inline void repetition_penalty(float* scores, SequenceView s, float penalty) {
  std::vector<int> seen(s.ids, s.ids + s.n);
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (int id : seen) {
    float& x = scores[id];
    x = x < 0 ? x * penalty : x / penalty;
  }
}

// Bans every token that would complete an n-gram already in the sequence: for each earlier
// occurrence of the last n-1 ids, the id that followed it. Nothing while the sequence has < n-1 ids.
inline void no_repeat_ngram(float* scores, SequenceView s, std::size_t n) {
  if (s.n + 1 < n) return;
  const int* prefix = s.ids + s.n - (n - 1);  // the last n-1 ids
  for (std::size_t i = 0; i + n <= s.n; ++i)
    if (std::equal(prefix, prefix + (n - 1), s.ids + i)) scores[s.ids[i + n - 1]] = neg_inf;
}

// Bans the last id of every bad word whose other ids end the sequence (a one-id word: always).
// A one-id word that is an eos id is ignored, as HF does.
inline void bad_words(float* scores, SequenceView s, const std::vector<std::vector<int>>& words,
                      const std::vector<int>& eos) {
  for (const std::vector<int>& w : words) {
    if (w.size() == 1 && std::find(eos.begin(), eos.end(), w[0]) != eos.end()) continue;
    const std::size_t prefix = w.size() - 1;
    if (prefix > s.n) continue;
    if (std::equal(w.begin(), w.end() - 1, s.ids + s.n - prefix)) scores[w.back()] = neg_inf;
  }
}

// Forbids eos while the sequence (prompt included) is shorter than min_length.
inline void min_length(float* scores, SequenceView s, std::size_t min_len, const std::vector<int>& eos) {
  if (s.n < min_len)
    for (int id : eos) scores[id] = neg_inf;
}

// Forbids eos while fewer than min_new tokens have been generated.
inline void min_new_tokens(float* scores, SequenceView s, std::size_t min_new, const std::vector<int>& eos) {
  if (s.n - s.prompt_length < min_new)
    for (int id : eos) scores[id] = neg_inf;
}

// --- warpers ------------------------------------------------------------------------------------

inline void temperature(float* scores, std::size_t V, float t) {
  for (std::size_t i = 0; i < V; ++i) scores[i] = scores[i] / t;
}

// Keeps the k highest scores and every score tied with the k-th (HF: scores < kth are removed).
inline void top_k(float* scores, std::size_t V, std::size_t k, std::size_t min_keep) {
  k = std::min(std::max(k, min_keep), V);
  if (k == 0 || k >= V) return;
  std::vector<float> v(scores, scores + V);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end(), std::greater<float>());
  const float kth = v[k - 1];
  for (std::size_t i = 0; i < V; ++i)
    if (scores[i] < kth) scores[i] = neg_inf;
}

// (score, id) of the tokens still in play, their softmax probabilities, and log_norm: the log of the
// softmax denominator (log p = score - log_norm). All in double.
struct Candidates {
  std::vector<std::pair<float, int>> items;
  std::vector<double> p;
  double log_norm = 0;
};
inline Candidates finite_candidates(const float* scores, std::size_t V) {
  std::vector<double> w(V);
  const SoftmaxSum sum = softmax_weights<double>(scores, V, w.data());
  Candidates c;
  for (std::size_t i = 0; i < V; ++i)
    if (scores[i] != neg_inf) {
      c.items.emplace_back(scores[i], static_cast<int>(i));
      c.p.push_back(w[i] / sum.total);
    }
  c.log_norm = sum.log_norm();
  return c;
}

// Nucleus: sorted ascending, drops tokens while the cumulative probability is <= 1 - top_p, keeping
// at least min_keep of the most likely.
inline void top_p(float* scores, std::size_t V, float p, std::size_t min_keep) {
  Candidates c = finite_candidates(scores, V);
  std::vector<std::size_t> order(c.items.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return c.items[a].first < c.items[b].first ||
           (c.items[a].first == c.items[b].first && c.items[a].second > c.items[b].second);
  });
  const double cut = 1.0 - static_cast<double>(p);
  double cum = 0;
  for (std::size_t j = 0; j + min_keep < order.size(); ++j) {
    cum += c.p[order[j]];
    if (cum > cut) break;
    scores[c.items[order[j]].second] = neg_inf;
  }
}

// min-p: drops tokens whose probability is below min_p times the top probability, keeping at least
// min_keep of the most likely.
inline void min_p(float* scores, std::size_t V, float mp, std::size_t min_keep) {
  Candidates c = finite_candidates(scores, V);
  double top = 0;
  for (double x : c.p) top = std::max(top, x);
  const double threshold = static_cast<double>(mp) * top;
  std::vector<std::size_t> order(c.items.size());  // most likely first
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return c.items[a].first > c.items[b].first ||
           (c.items[a].first == c.items[b].first && c.items[a].second < c.items[b].second);
  });
  for (std::size_t j = min_keep; j < order.size(); ++j)
    if (c.p[order[j]] < threshold) scores[c.items[order[j]].second] = neg_inf;
}

// Locally typical sampling: rank tokens by |-log p - entropy|, keep the most typical ones until
// their probability reaches `mass` (plus ties of the last kept), and at least min_keep.
inline void typical_p(float* scores, std::size_t V, float mass, std::size_t min_keep) {
  Candidates c = finite_candidates(scores, V);
  const std::size_t n = c.items.size();
  std::vector<double> logp(n), shifted(n);
  double ent = 0;
  for (std::size_t i = 0; i < n; ++i) ent -= c.p[i] * (logp[i] = static_cast<double>(c.items[i].first) - c.log_norm);
  for (std::size_t i = 0; i < n; ++i) shifted[i] = std::abs(-logp[i] - ent);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return shifted[a] < shifted[b]; });
  std::size_t last = 0;  // HF: last_ind = count of cumulative probs < mass, clamped
  double cum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    cum += c.p[order[j]];
    if (cum < static_cast<double>(mass)) ++last;
  }
  if (last >= n) return;
  const double limit = shifted[order[last]];
  for (std::size_t j = min_keep; j < n; ++j)
    if (shifted[order[j]] > limit) scores[c.items[order[j]].second] = neg_inf;
}

// --- the pipeline ---------------------------------------------------------------------------------

// HF's processors for every strategy (beam search applies them to log-softmaxed scores).
inline void process(float* scores, SequenceView s, const GenerationConfig& cfg, const std::vector<int>& eos) {
  if (cfg.repetition_penalty != 1.0f) repetition_penalty(scores, s, cfg.repetition_penalty);
  if (cfg.no_repeat_ngram_size > 0) no_repeat_ngram(scores, s, static_cast<std::size_t>(cfg.no_repeat_ngram_size));
  if (!cfg.bad_words_ids.empty()) bad_words(scores, s, cfg.bad_words_ids, eos);
  if (cfg.min_length > 0) min_length(scores, s, static_cast<std::size_t>(cfg.min_length), eos);
  if (cfg.min_new_tokens > 0) min_new_tokens(scores, s, static_cast<std::size_t>(cfg.min_new_tokens), eos);
}

// Whether process() can change scores other than the eos ids' (which it only ever lowers, to -inf):
// when it cannot, a greedy choice is the raw logits' argmax among the ids that are not held back.
inline bool processes_beyond_eos(const GenerationConfig& cfg) {
  return cfg.repetition_penalty != 1.0f || cfg.no_repeat_ngram_size > 0 || !cfg.bad_words_ids.empty();
}

// The ids process() may hold back (set to -inf) at some step: eos while a minimum length applies.
inline std::vector<int> maybe_held_back(const GenerationConfig& cfg, const std::vector<int>& eos) {
  return cfg.min_length > 0 || cfg.min_new_tokens > 0 ? eos : std::vector<int>{};
}

// HF's warpers, when sampling. min_keep is 1, or number of eos ids + 1 for beam sampling.
inline void warp(float* scores, std::size_t V, const GenerationConfig& cfg, std::size_t min_keep = 1) {
  if (cfg.temperature != 1.0f) temperature(scores, V, cfg.temperature);
  if (cfg.top_k != 0) top_k(scores, V, static_cast<std::size_t>(cfg.top_k), min_keep);
  if (cfg.top_p < 1.0f) top_p(scores, V, cfg.top_p, min_keep);
  if (cfg.min_p > 0.0f) min_p(scores, V, cfg.min_p, min_keep);
  if (cfg.typical_p < 1.0f) typical_p(scores, V, cfg.typical_p, min_keep);
}

}  // namespace tinyllm::detail
