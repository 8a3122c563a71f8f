// The speculative decoding loop (the pieces that need no model: speculative.hpp). Each pass runs
// [last id, proposals...] through the model in one forward pass, keeps the tokens the model agrees
// with plus the one it chooses after them, and rolls the KV cache back past the rest. Proposals come
// from prompt lookup or a draft model (GenerationConfig::assistant_model). Each (prompt, return
// sequence) runs alone, one after another: a pass verifies one sequence's proposals.
// Depends on generation/sequence.hpp and generation/speculative.hpp.
#pragma once

#include <algorithm>  // std::find, std::min
#include <cstddef>    // std::size_t
#include <limits>     // std::numeric_limits
#include <memory>     // std::unique_ptr, std::make_unique
#include <optional>   // std::optional
#include <random>     // std::mt19937_64
#include <utility>    // std::move
#include <vector>     // std::vector

#include "../error.hpp"  // TINYLLM_ASSERT
#include "../model/gpt2_model.hpp"
#include "output.hpp"
#include "processors.hpp"
#include "sampling.hpp"
#include "sequence.hpp"
#include "speculative.hpp"

namespace tinyllm::detail {

// The draft model of one sequence: its cache holds a prefix of the sequence's ids.
struct Draft {
  const GPT2Config& config;
  const GPT2Weights& weights;
  InferenceState state;
  std::mt19937_64 rng;
  std::vector<float> logits;     // [V]
  std::vector<double> q;         // [k, V]: the distributions the proposals were drawn from (sampling)
  std::vector<int> cached_ids;   // the ids in its cache
  std::size_t passes = 0;        // forward passes run
};

template <class Backend>
class SpeculativeLoop {
 public:
  explicit SpeculativeLoop(const ModelRef& m) : m_(m), V_(static_cast<std::size_t>(m.config.vocab_size)) {}

  // Generates s to its end (its cache holds every id of it but the last), with the draft's
  // proposals or, without one, prompt lookup's.
  void run(Sequence& s, Draft* draft) {
    const GenerationConfig& cfg = *s.options.cfg;
    const std::size_t lookup = static_cast<std::size_t>(cfg.prompt_lookup_num_tokens);
    ProposalLength length = draft ? ProposalLength{static_cast<std::size_t>(cfg.num_assistant_tokens), 1,
                                                   std::numeric_limits<std::size_t>::max(),
                                                   cfg.num_assistant_tokens_schedule != "constant"}
                                  : ProposalLength{lookup, std::min<std::size_t>(4, lookup), lookup, true};
    GenerationResult& res = s.result;
    std::vector<int>& ids = res.sequence;
    for (bool finished = false; !finished;) {
      const std::size_t n = ids.size(), room = s.max_length - n - 1;  // tokens after this pass's last choice
      const std::size_t wanted = std::min(room, length.tokens);
      const std::vector<int> proposals =
          draft ? propose(*draft, s, wanted)
                : prompt_lookup(ids, static_cast<std::size_t>(cfg.max_matching_ngram_size), wanted, res.prompt_length);
      const std::size_t accepted = verify(s, draft, proposals, finished);
      // The cache holds ids[0, n) + proposals: keep what the sequence still has, but never its last id.
      s.state->cache.set_length(static_cast<int>(std::min(n + accepted, ids.size() - 1)));
      length.update(proposals.size(), accepted);
    }
    res.speculation.generated = ids.size() - res.prompt_length;
    if (draft) res.speculation.draft_passes = draft->passes;
  }

 private:
  // One pass: [last id, proposals] through the model, then the model's choice after each accepted
  // prefix, emitted; returns how many proposals were accepted (finished: the sequence ended).
  std::size_t verify(Sequence& s, Draft* draft, const std::vector<int>& proposals, bool& finished) {
    const GenerationConfig& cfg = *s.options.cfg;
    std::vector<int>& ids = s.result.sequence;
    const std::size_t k = proposals.size();
    std::vector<int> pass(1, ids.back());
    pass.insert(pass.end(), proposals.begin(), proposals.end());
    forward_hidden<Backend>(m_.config, m_.weights, *s.state, pass.data(), k + 1);  // cache: ids + proposals
    // Greedy choices on raw logits (eos ids a minimum length may hold back never count as beating a
    // proposal): the head can stop computing rows after a rejection.
    [[maybe_unused]] std::size_t complete = k + 1;  // logits_ [k + 1, V], rows [0, complete) computed
    logits_.resize((k + 1) * V_);
    if (!cfg.do_sample && !processes_beyond_eos(cfg))
      complete = head_greedy(s.state->x.data(), k + 1, proposals.data(), maybe_held_back(cfg, s.options.eos), ids);
    else
      lm_head<Backend>(m_.weights, s.state->x.data(), k + 1, logits_.data());
    SpeculationStats& st = s.result.speculation;
    ++st.target_passes;
    st.proposed += k;
    std::size_t accepted = 0;
    for (std::size_t i = 0; i <= k && !finished; ++i) {
      TINYLLM_ASSERT(i < complete);  // a row past `complete` follows a rejected proposal
      float* row = logits_.data() + i * V_;
      int token = 0;
      float logprob = 0;
      if (draft && cfg.do_sample && i < k)  // speculative sampling against the draft's q
        token = sample_against_draft(s, row, draft->q.data() + i * V_, proposals[i], logprob);
      else  // greedy, or sampling one token as plain decoding would
        s.choose(row, V_, token, logprob, top_);
      const bool agreed = i < k && token == proposals[i];
      accepted += agreed;
      finished = s.emit(token, logprob, top_);
      if (!agreed) break;
    }
    st.accepted += accepted;
    return accepted;
  }

  // The model's token after the proposal x drawn from q: x itself or a replacement (speculative.hpp).
  int sample_against_draft(Sequence& s, float* row, const double* q, int x, float& logprob) {
    const GenerationConfig& cfg = *s.options.cfg;
    const std::vector<int>& ids = s.result.sequence;
    process(row, {ids.data(), ids.size(), s.result.prompt_length}, cfg, s.options.eos);
    warp(row, V_, cfg);
    probabilities(row, V_, p_);
    const int token = speculative_sample(p_, q, x, s.rng).first;
    if (s.options.scores) logprob = token_logprob(row, V_, token, static_cast<std::size_t>(cfg.top_logprobs), &top_);
    return token;
  }

  // logits_ of a greedy verification pass (row i ends in proposals[i]): returns how many rows from
  // the first are computed; the rows after the first rejected proposal may not be. `ids`: the
  // sequence so far; its last 64 distinct ids are checked first (a wrong proposal is most often
  // beaten by an id of the recent context).
  std::size_t head_greedy(const float* hidden, std::size_t n, const int* proposals, const std::vector<int>& ignored,
                          const std::vector<int>& ids) {
    likely_.clear();
    for (std::size_t j = ids.size(); j-- > 0 && likely_.size() < 64;)
      if (std::find(likely_.begin(), likely_.end(), ids[j]) == likely_.end()) likely_.push_back(ids[j]);
    return lm_head_greedy<Backend>(m_.weights, hidden, n, proposals, ignored, logits_.data(), likely_);
  }

  // Up to `wanted` proposals of the draft model after s's ids, greedy or sampled (then d.q keeps each
  // one's distribution). Stops early after a token the draft gives a probability below
  // assistant_confidence_threshold, and at the draft's context limit.
  std::vector<int> propose(Draft& d, const Sequence& s, std::size_t wanted) {
    const GenerationConfig& cfg = *s.options.cfg;
    const std::vector<int>& ids = s.result.sequence;
    const std::size_t ctx = static_cast<std::size_t>(d.config.n_positions);
    if (ids.size() >= ctx) return {};
    const std::size_t k = std::min(wanted, ctx - ids.size());  // the draft runs ids + k - 1 proposals
    if (k == 0) return {};
    draft_logits(d, ids);
    std::vector<int> out, seq = ids;
    std::vector<double> q;
    d.q.clear();
    for (std::size_t j = 0; j < k; ++j) {
      float* row = d.logits.data();
      process(row, {seq.data(), seq.size(), s.result.prompt_length}, cfg, s.options.eos);
      if (cfg.do_sample) warp(row, V_, cfg);
      probabilities(row, V_, q);
      const int t = cfg.do_sample ? draw(q, 1.0, d.rng) : argmax(row, V_);
      if (cfg.do_sample) d.q.insert(d.q.end(), q.begin(), q.end());
      out.push_back(t);
      seq.push_back(t);
      if (j + 1 == k || q[static_cast<std::size_t>(t)] < static_cast<double>(cfg.assistant_confidence_threshold))
        break;
      forward_hidden<Backend>(d.config, d.weights, d.state, &t, 1);
      ++d.passes;
      d.cached_ids.push_back(t);
      lm_head<Backend>(d.weights, d.state.x.data(), 1, d.logits.data());
    }
    return out;
  }

  // d.logits = the draft's logits after ids: its cache rolled back to what it shares with ids (all
  // but the last id at most), the rest run.
  void draft_logits(Draft& d, const std::vector<int>& ids) {
    std::size_t keep = 0;
    while (keep < d.cached_ids.size() && keep + 1 < ids.size() && d.cached_ids[keep] == ids[keep]) ++keep;
    d.state.cache.set_length(static_cast<int>(keep));
    d.cached_ids.assign(ids.begin(), ids.end());
    const std::size_t Cd = static_cast<std::size_t>(d.config.n_embd);  // its vocabulary is the model's (V_)
    forward_hidden<Backend>(d.config, d.weights, d.state, ids.data() + keep, ids.size() - keep);
    ++d.passes;
    d.logits.resize(V_);
    lm_head<Backend>(d.weights, d.state.x.data() + (ids.size() - keep - 1) * Cd, 1, d.logits.data());
  }

  const ModelRef m_;
  std::size_t V_;
  std::vector<float> logits_;           // [rows, V]
  std::vector<int> likely_;             // head_greedy's ids to try first
  std::vector<double> p_;               // the model's distribution (speculative sampling)
  std::vector<TokenLogprob> top_;
};

// Speculative decoding of num_return_sequences sequences per prompt (results[p * R + r]), one after
// another. Sequence r > 0 of a prompt starts from a copy of the prompt's cache.
template <class Backend>
void run_speculative(const ModelRef& m, std::vector<PromptState>& prompts, const SequenceOptions& opts,
                     std::vector<GenerationResult>& results) {
  const GenerationConfig& cfg = *opts.cfg;
  const std::size_t R = static_cast<std::size_t>(cfg.num_return_sequences);
  SpeculativeLoop<Backend> loop(m);
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    PromptState& ps = prompts[p];
    if (max_length(m.config, cfg, ps.ids.size()) == ps.ids.size()) continue;  // nothing to generate
    // Invariant of the loop: the cache holds every id of the sequence but the last.
    const std::size_t done = static_cast<std::size_t>(ps.state.cache.length()), n = ps.ids.size();
    if (done >= n) ps.state.cache.set_length(static_cast<int>(n - 1));
    if (done + 1 < n) forward_hidden<Backend>(m.config, m.weights, ps.state, ps.ids.data() + done, n - 1 - done);
    std::vector<std::unique_ptr<InferenceState>> copies;  // taken before sequence 0 changes the cache
    for (std::size_t r = 1; r < R; ++r) {
      copies.push_back(std::make_unique<InferenceState>(m.config));
      copy_cache(m.config, ps.state.cache, copies.back()->cache);
    }
    for (std::size_t r = 0; r < R; ++r) {
      SequenceOptions o = opts;
      o.stream = r;
      Sequence s(m, ps.ids, r == 0 ? &ps.state : copies[r - 1].get(), std::move(o));
      std::optional<Draft> draft;
      if (cfg.assistant_model)
        draft.emplace(Draft{cfg.assistant_model.config(), cfg.assistant_model.weights(),
                            InferenceState(cfg.assistant_model.config()),
                            random_stream(cfg.seed, r, RandomSalt::draft), {}, {}, {}});
      loop.run(s, draft ? &*draft : nullptr);
      results[p * R + r] = std::move(s.result);
    }
  }
}

}  // namespace tinyllm::detail
