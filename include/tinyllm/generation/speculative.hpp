// The pieces of speculative decoding that do not touch a model: where proposals come from (prompt
// lookup) and how a proposal drawn from a draft distribution q is accepted or replaced under the
// model's distribution p (speculative sampling). The loop that uses them is Generator::speculate
// (batch.hpp): it appends the proposals to the sequence's KV cache in one forward pass, which gives
// k + 1 rows of logits, keeps the accepted prefix and rolls the cache back past the rest.
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
#include <cmath>      // std::exp
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint32_t, std::uint64_t
#include <limits>     // std::numeric_limits
#include <random>     // std::mt19937_64, std::seed_seq
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "sampling.hpp"

namespace tinyllm::detail {

// Whether, among the generated ids (ids[prompt_length:]), at least two and at least a quarter of
// those that differ from the id before them (where the text switches token) were followed by
// themselves: the habit of a model that runs a token several times once it switches to it (greedy
// decoding of small and random models does; a trained model's text switches token almost every time
// and rarely repeats, but a single repeat, such as a blank line, happens). A quarter because of the
// costs: on the 124M shape a rejected run of 10 proposals adds ~30% to a pass, an accepted one saves
// one pass or more.
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
// there. Four choices differ from HF's, for more accepted tokens per pass (measured in
// bench_speculative); they change proposals only, never the output:
//   - the latest occurrence is used, not the first;
//   - a continuation that runs into the end of the sequence goes on periodically (after "a b a b",
//     "a b" proposes "a b a b ..."; after "x x x", "x" proposes "x x x ...");
//   - when the text generated after prompt_length has the habit of running a token once it switches
//     to it (repeats_switches), a last id that differs from the one before it and whose bigram never
//     occurred before is proposed repeated (a continuation found for that id alone, the token after
//     its previous run, is then the weaker guess). A trained model's text rarely has the habit.
//   - when nothing else applies (the last id is new), it is proposed up to kFallbackTokens times
//     rather than nothing: on the 124M shape a pass of up to four rows costs about one row, and a
//     model that starts a run of its new token (before the habit shows) gets it at once.
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
// prompt_lookup_num_tokens: a rejected proposal of 10 makes a pass ~1.3x one row on the 124M shape,
// one of 4 ~1.0x. With the fallback above, on 80 short prompts (random 124M folder, 64 new tokens):
// 2.39x -> 2.57x plain greedy's tokens/s over all, the weakest prompt 1.31x -> 1.50x.
struct ProposalLength {
  std::size_t tokens, lo, hi;
  bool adapts;
  void update(std::size_t proposed, std::size_t accepted) {
    if (!adapts || proposed == 0) return;
    tokens = accepted == proposed ? std::min(hi, tokens + 2) : std::max(lo, tokens - 1);
  }
};

// The draft model's random stream of return sequence r: independent of sequence_rng(seed, r).
inline std::mt19937_64 draft_rng(std::uint64_t seed, std::size_t r) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(r), 0x64726166u /* "draf" */};
  return std::mt19937_64(seq);
}

// p = softmax(scores) in double (-inf: 0). All -inf: p is one-hot at the argmax, as sample_from does.
inline void probabilities(const float* scores, std::size_t V, std::vector<double>& p) {
  p.assign(V, 0.0);
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < V; ++i) m = std::max(m, static_cast<double>(scores[i]));
  if (m == -std::numeric_limits<double>::infinity()) {
    p[static_cast<std::size_t>(argmax(scores, V))] = 1.0;
    return;
  }
  double total = 0;
  for (std::size_t i = 0; i < V; ++i) {
    p[i] = scores[i] == neg_inf ? 0.0 : std::exp(static_cast<double>(scores[i]) - m);
    total += p[i];
  }
  for (double& x : p) x /= total;
}

// Draws an index with probability w[i] / total (total = sum of w > 0) from one uniform number.
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
