// The pieces of speculative decoding that do not touch a model: where proposals come from (prompt
// lookup) and how a proposal drawn from a draft distribution q is accepted or replaced under the
// model's distribution p (speculative sampling). The loop that uses them is SpeculativeLoop
// (speculative_loop.hpp): it appends the proposals to the sequence's KV cache in one forward pass,
// which gives k + 1 rows of logits, keeps the accepted prefix and rolls the cache back past the rest.
//
// Exactness. Every row's logits are bitwise those of one-token-at-a-time decoding (a pass over T
// tokens does each row's arithmetic alone), so:
//   greedy    the model's argmax is kept while it equals the proposal; the first other token ends the
//             pass: the output is token for token plain greedy decoding;
//   sampling  with a proposal that is a fixed id (prompt lookup), a token y ~ p is drawn as plain
//             sampling draws it (same random stream) and the proposal is accepted iff y equals it:
//             the output is token for token plain sampling with the same seed. With a draft model,
//             the proposal x ~ q is accepted with probability min(1, p(x) / q(x)), otherwise a token
//             is drawn from max(0, p - q) normalised (Leviathan et al. 2023; Chen et al. 2023): the
//             output has the model's distribution, from another random stream.
// Depends on generation/sampling.hpp.
#pragma once

#include <algorithm>  // std::min, std::max, std::equal
#include <cstddef>    // std::size_t
#include <limits>     // std::numeric_limits
#include <random>     // std::mt19937_64
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "sampling.hpp"
#include "softmax.hpp"

namespace tinyllm::detail {

// Whether, among the generated ids (ids[prompt_length:]), at least two and at least a quarter of
// those that differ from the id before them (where the text switches token) were followed by
// themselves: the habit of a model that runs a token several times once it switches to it (greedy
// decoding of small and random models does; a trained model's text switches token almost every time
// and rarely repeats, but a single repeat, such as a blank line, happens). A quarter, not a
// majority, because a rejected run costs a pass a fraction of a row while an accepted one saves a
// whole pass or more (docs/performance.md, "Kernel notes").
inline bool repeats_switches(const std::vector<int>& ids, std::size_t prompt_length) {
  const std::size_t L = ids.size();
  std::size_t switches = 0, repeated = 0;
  for (std::size_t i = std::max<std::size_t>(std::min(prompt_length, L), 1); i + 1 < L; ++i)
    if (ids[i] != ids[i - 1]) {
      ++switches;
      repeated += ids[i + 1] == ids[i];
    }
  return repeated >= 2 && 4 * repeated >= switches;
}

// Prompt lookup (HF's PromptLookupCandidateGenerator, the same parameters): for n = max_ngram down to
// 1, find where the last n ids occurred before; propose up to max_tokens ids that followed them
// there. Four choices differ from HF's, for more accepted tokens per pass (bench_speculative shows
// the gain); they change proposals only, never the output:
//   - the latest occurrence is used, not the first;
//   - a continuation that runs into the end of the sequence goes on periodically (after "a b a b",
//     "a b" proposes "a b a b ..."; after "x x x", "x" proposes "x x x ...");
//   - when the text generated after prompt_length has the habit of running a token once it switches
//     to it (repeats_switches), a last id that differs from the one before it and whose bigram never
//     occurred before is proposed repeated (a continuation found for that id alone, the token after
//     its previous run, is then the weaker guess). A trained model's text rarely has the habit.
//   - when nothing else applies (the last id is new), it is proposed up to kFallbackTokens times
//     rather than nothing: a pass of a few rows costs about what one row does (the weights are read
//     once either way), and a model that starts a run of its new token (before the habit shows)
//     gets it at once.
// Empty only for no ids or max_tokens 0.
inline constexpr std::size_t kFallbackTokens = 3;
inline std::vector<int> prompt_lookup(const std::vector<int>& ids, std::size_t max_ngram, std::size_t max_tokens,
                                      std::size_t prompt_length = std::numeric_limits<std::size_t>::max()) {
  const std::size_t L = ids.size();
  if (L == 0 || max_tokens == 0) return {};
  if (L >= 2 && ids[L - 1] != ids[L - 2] && repeats_switches(ids, prompt_length)) {
    bool bigram = false;  // did (ids[L - 2], ids[L - 1]) occur before?
    for (std::size_t i = 0; i + 2 < L && !bigram; ++i) bigram = ids[i] == ids[L - 2] && ids[i + 1] == ids[L - 1];
    if (!bigram) return std::vector<int>(max_tokens, ids.back());
  }
  for (std::size_t n = std::min(max_ngram, L - 1); n >= 1; --n) {
    const int* tail = ids.data() + L - n;
    for (std::size_t i = L - n; i-- > 0;) {  // latest first; the match at i is followed by ids[i + n]
      if (!std::equal(tail, tail + n, ids.data() + i)) continue;
      const std::size_t shift = L - n - i;  // the sequence would repeat with this period
      std::vector<int> out;
      out.reserve(max_tokens);
      for (std::size_t j = 0; j < max_tokens; ++j)  // ids[L + j - shift], or a proposal when past the end
        out.push_back(j < shift ? ids[L + j - shift] : out[j - shift]);
      return out;
    }
  }
  return std::vector<int>(std::min(max_tokens, kFallbackTokens), ids.back());
}

// How many tokens a pass proposes. HF's "heuristic" schedule of num_assistant_tokens: two more after
// a pass that accepted all its proposals, one fewer after one that did not, within [lo, hi]; fixed
// when it does not adapt. Prompt lookup adapts between min(4, prompt_lookup_num_tokens) and
// prompt_lookup_num_tokens: four rows cost a pass about what one does, so after rejections it
// shrinks no further than that (docs/performance.md, "Kernel notes", has the figures).
struct ProposalLength {
  std::size_t tokens, lo, hi;
  bool adapts;
  void update(std::size_t proposed, std::size_t accepted) {
    if (!adapts || proposed == 0) return;
    tokens = accepted == proposed ? std::min(hi, tokens + 2) : std::max(lo, tokens - 1);
  }
};

// p = softmax(scores) in double (-inf: 0). All -inf: p is one-hot at the argmax, as sample_from does.
inline void probabilities(const float* scores, std::size_t V, std::vector<double>& p) {
  p.assign(V, 0.0);
  const SoftmaxSum sum = softmax_weights<double>(scores, V, p.data());
  if (sum.empty()) {
    p[static_cast<std::size_t>(argmax(scores, V))] = 1.0;
    return;
  }
  for (double& x : p) x /= sum.total;
}

// One step of speculative sampling: x was drawn from q; returns (the token, whether it is x). Accepts
// x with probability min(1, p(x) / q(x)) (q: p.size() values); otherwise draws from max(0, p - q), normalised (p itself if
// that is all zero, which happens only when p == q up to rounding).
inline std::pair<int, bool> speculative_sample(const std::vector<double>& p, const double* q, int x,
                                               std::mt19937_64& rng) {
  const std::size_t ix = static_cast<std::size_t>(x);
  if (uniform01(rng) * q[ix] < p[ix]) return {x, true};  // u < p/q, with u in [0, 1)
  std::vector<double> residual(p.size());
  double total = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    residual[i] = std::max(0.0, p[i] - q[i]);
    total += residual[i];
  }
  if (!(total > 0)) return {draw(p, 1.0, rng), false};
  return {draw(residual, total, rng), false};
}

}  // namespace tinyllm::detail
