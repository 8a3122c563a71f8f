// The generation loop: prompts are prefilled one by one, then every running sequence advances
// together, one token per step, so each step reads the weights once for the whole batch
// (forward_batch + one head pass over all rows). Greedy and sampling run one sequence per
// (prompt, return sequence); beam search runs num_beams per prompt (beam_search.hpp).
//
// Determinism: a row's arithmetic does not depend on the other rows (forward_batch is bitwise equal to
// running the sequence alone), each sequence draws from its own random stream (sequence_rng), and its
// processors see only its own ids. So a sequence's tokens do not depend on the batch around it, on
// the thread count, or on the run.
// Depends on model/gpt2_model.hpp, tokenizer.hpp and generation/.
#pragma once

#include <algorithm>    // std::find, std::min
#include <cassert>      // assert
#include <cstddef>      // std::size_t
#include <cstring>      // std::memcpy
#include <functional>   // std::function
#include <limits>       // std::numeric_limits
#include <memory>       // std::unique_ptr
#include <optional>     // std::optional
#include <random>       // std::mt19937_64
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include "../config.hpp"
#include "../error.hpp"
#include "../model/gpt2_model.hpp"
#include "../model/weights.hpp"
#include "../tokenizer.hpp"
#include "beam_search.hpp"
#include "config.hpp"
#include "output.hpp"
#include "processors.hpp"
#include "sampling.hpp"
#include "speculative.hpp"
#include "stop_strings.hpp"

namespace tinyllm::detail {

// What generation needs of a model.
struct ModelRef {
  const GPT2Config& config;
  const GPT2Weights& weights;
  const Tokenizer* tokenizer;  // null when the folder has none
};

// A prompt to continue. state.cache holds ids[0, cache.length()) already (a Session's history; empty
// for a fresh prompt); the rest of ids is run first. After generation the cache holds a prefix of the
// first returned sequence of this prompt.
struct PromptState {
  std::vector<int> ids;
  InferenceState state;
};

// Called with (index of the result, new id) after each token; false stops that sequence.
using TokenCallback = std::function<bool(std::size_t, int)>;

// Checks the ids a config names against the model's vocabulary; returns the stop tokens to use.
inline std::vector<int> checked_eos(const ModelRef& m, const GenerationConfig& cfg, const std::vector<int>& model_eos) {
  cfg.validate();
  auto check = [&](const char* field, int id) {
    if (id >= m.config.vocab_size)
      fail(std::string("GenerationConfig.") + field, std::to_string(id) +
                                                         " is not a token id of this model (vocab_size " +
                                                         std::to_string(m.config.vocab_size) + ")");
  };
  for (int id : cfg.eos_token_id) check("eos_token_id", id);
  for (const auto& word : cfg.bad_words_ids)
    for (int id : word) check("bad_words_ids", id);
  if (cfg.assistant_model && cfg.assistant_model.config().vocab_size != m.config.vocab_size)
    fail("GenerationConfig.assistant_model", "has vocab_size " +
                                                 std::to_string(cfg.assistant_model.config().vocab_size) +
                                                 ", the model " + std::to_string(m.config.vocab_size) +
                                                 ": speculative decoding needs the same vocabulary");
  if (!cfg.stop_strings.empty() && !m.tokenizer)
    fail("GenerationConfig.stop_strings", "the model folder has no tokenizer to turn tokens into text");
  return cfg.eos_token_id.empty() ? model_eos : cfg.eos_token_id;
}

template <class Backend>
class Generator {
 public:
  Generator(const ModelRef& m, const GenerationConfig& cfg, std::vector<int> eos, bool want_scores,
            const TokenCallback* on_token)
      : m_(m),
        cfg_(cfg),
        eos_(std::move(eos)),
        scores_(want_scores),
        on_token_(on_token),
        V_(static_cast<std::size_t>(m.config.vocab_size)),
        C_(static_cast<std::size_t>(m.config.n_embd)) {}

  // num_return_sequences results per prompt, in prompt order.
  std::vector<GenerationResult> run(std::vector<PromptState>& prompts) {
    const std::size_t R = static_cast<std::size_t>(cfg_.num_return_sequences);
    results_.assign(prompts.size() * R, {});
    for (std::size_t p = 0; p < prompts.size(); ++p)
      for (std::size_t r = 0; r < R; ++r) {
        results_[p * R + r].sequence = prompts[p].ids;
        results_[p * R + r].prompt_length = prompts[p].ids.size();
      }
    if (cfg_.num_beams > 1)
      run_beams(prompts);
    else if (speculative())
      run_speculative(prompts);
    else
      run_sampling(prompts);
    return std::move(results_);
  }

 private:
  // One sequence of greedy or sampling decoding.
  struct Sequence {
    std::size_t result;     // index in results_
    InferenceState* state;  // its KV cache
    std::mt19937_64 rng;
    StopStringMatcher stop;
    std::size_t max_length;
  };
  // One prompt's beam search and the KV caches of its running beams.
  struct BeamGroup {
    std::size_t first_result;
    BeamSearch search;
    std::vector<std::unique_ptr<InferenceState>> states;  // [num_beams]
    std::mt19937_64 rng;
  };

  // New tokens allowed after ids: max_new_tokens or max_length, never past n_positions.
  std::size_t max_length(const std::vector<int>& ids) const {
    const std::size_t n = ids.size(), ctx = static_cast<std::size_t>(m_.config.n_positions);
    std::size_t budget = cfg_.max_new_tokens >= 0                        ? static_cast<std::size_t>(cfg_.max_new_tokens)
                         : static_cast<std::size_t>(cfg_.max_length) > n ? static_cast<std::size_t>(cfg_.max_length) - n
                                                                         : 0;
    return n + std::min(budget, ctx > n ? ctx - n : 0);
  }

  // Runs the ids not yet in the cache; returns the hidden row of the last one ([C], ln_f applied).
  const float* prefill(PromptState& p) {
    const std::size_t done = static_cast<std::size_t>(p.state.cache.length()), T = p.ids.size() - done;
    forward_hidden<Backend>(m_.config, m_.weights, p.state, p.ids.data() + done, T);
    return p.state.x.data() + (T - 1) * C_;
  }

  std::string_view bytes(int id) const {
    if (!m_.tokenizer || id >= m_.tokenizer->vocab_size()) return {};
    try {
      return m_.tokenizer->token_bytes(id);
    } catch (const Error&) {  // a hole in the vocabulary
      return {};
    }
  }
  StopStringMatcher matcher(const std::vector<int>& prompt) const {
    StopStringMatcher s(&cfg_.stop_strings);
    if (s.active())
      for (int id : prompt) s.prime(bytes(id));
    return s;
  }

  // logits[n, V] of n hidden rows.
  void head(const float* hidden, std::size_t n) {
    logits_.resize(n * V_);
    lm_head<Backend>(m_.config, m_.weights, hidden, n, logits_.data());
  }
  // The same for a greedy verification pass (row i ends in proposals[i]): returns how many rows from
  // the first are computed; the rows after the first rejected proposal may not be.
  // `ids`: the sequence so far; its last 64 distinct ids are checked first (a wrong proposal is most
  // often beaten by an id of the recent context).
  std::size_t head_greedy(const float* hidden, std::size_t n, const int* proposals, const std::vector<int>& ignored,
                          const std::vector<int>& ids) {
    likely_.clear();
    for (std::size_t j = ids.size(); j-- > 0 && likely_.size() < 64;)
      if (std::find(likely_.begin(), likely_.end(), ids[j]) == likely_.end()) likely_.push_back(ids[j]);
    logits_.resize(n * V_);
    return lm_head_greedy<Backend>(m_.config, m_.weights, hidden, n, proposals, ignored, logits_.data(), likely_);
  }

  void run_sampling(std::vector<PromptState>& prompts) {
    const std::size_t R = static_cast<std::size_t>(cfg_.num_return_sequences);
    std::vector<Sequence> run;
    std::vector<float> first;  // hidden rows of the first step [run, C]
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      const std::size_t max_len = max_length(prompts[p].ids);
      if (max_len == prompts[p].ids.size()) continue;  // nothing to generate
      const float* h = prefill(prompts[p]);
      for (std::size_t r = 0; r < R; ++r) {  // sequence 0 continues in the prompt's own state
        InferenceState* s = &prompts[p].state;
        if (r > 0) {
          owned_.push_back(std::make_unique<InferenceState>(m_.config));
          copy_cache(m_.config, prompts[p].state.cache, owned_.back()->cache);
          s = owned_.back().get();
        }
        run.push_back({p * R + r, s, sequence_rng(cfg_.seed, r), matcher(prompts[p].ids), max_len});
      }
      for (std::size_t r = 0; r < R; ++r) first.insert(first.end(), h, h + C_);
    }
    const float* hidden = first.data();
    Activations act;
    std::vector<int> chosen;
    std::vector<float> logprob;
    std::vector<std::vector<TokenLogprob>> top;
    while (!run.empty()) {
      const std::size_t n = run.size();
      head(hidden, n);
      chosen.assign(n, 0);
      logprob.assign(n, 0.0f);
      top.assign(n, {});
      Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) choose(run[i], logits_.data() + i * V_, chosen[i], logprob[i], top[i]);
      });
      std::vector<Sequence> next;
      std::vector<int> tokens;
      std::vector<layers::KVCache*> caches;
      for (std::size_t i = 0; i < n; ++i) {
        Sequence& s = run[i];
        const int t = chosen[i];
        if (emit(s, t, logprob[i], top[i])) continue;  // finished
        tokens.push_back(t);
        caches.push_back(&s.state->cache);
        next.push_back(std::move(s));
      }
      run = std::move(next);
      if (run.empty()) break;
      forward_batch<Backend>(m_.config, m_.weights, act, caches.data(), tokens.data(), tokens.size());
      hidden = act.x.data();
    }
  }

  // Appends token t (with its log-prob and alternatives) to s's result, then tells the callback;
  // returns true when the sequence is finished (eos, stop string, length, or the callback said stop).
  bool emit(Sequence& s, int t, float logprob, std::vector<TokenLogprob>& top) {
    GenerationResult& res = results_[s.result];
    res.sequence.push_back(t);
    if (scores_) {
      res.logprobs.push_back(logprob);
      res.sequence_score += logprob;
      if (cfg_.top_logprobs > 0) res.top_logprobs.push_back(std::move(top));
    }
    std::optional<FinishReason> end;
    if (std::find(eos_.begin(), eos_.end(), t) != eos_.end())
      end = FinishReason::eos;
    else if (s.stop.active() && s.stop.push(bytes(t)))
      end = FinishReason::stop_string;
    else if (res.sequence.size() >= s.max_length)
      end = FinishReason::length;
    if (on_token_ && !(*on_token_)(s.result, t) && !end) end = FinishReason::stopped;
    if (end) res.finish_reason = *end;
    return end.has_value();
  }

  // --- speculative decoding (speculative.hpp) ------------------------------------------------------

  bool speculative() const { return cfg_.prompt_lookup_num_tokens > 0 || static_cast<bool>(cfg_.assistant_model); }

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

  // Each (prompt, return sequence) runs alone, one after another: a pass verifies one sequence's
  // proposals. Sequence r > 0 of a prompt starts from a copy of the prompt's cache.
  void run_speculative(std::vector<PromptState>& prompts) {
    const std::size_t R = static_cast<std::size_t>(cfg_.num_return_sequences);
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      PromptState& ps = prompts[p];
      const std::size_t max_len = max_length(ps.ids);
      if (max_len == ps.ids.size()) continue;  // nothing to generate
      // Invariant of the loop: the cache holds every id of the sequence but the last.
      const std::size_t done = static_cast<std::size_t>(ps.state.cache.length()), n = ps.ids.size();
      if (done >= n) ps.state.cache.set_length(static_cast<int>(n - 1));
      if (done + 1 < n) forward_hidden<Backend>(m_.config, m_.weights, ps.state, ps.ids.data() + done, n - 1 - done);
      std::vector<std::unique_ptr<InferenceState>> copies;  // taken before sequence 0 changes the cache
      for (std::size_t r = 1; r < R; ++r) {
        copies.push_back(std::make_unique<InferenceState>(m_.config));
        copy_cache(m_.config, ps.state.cache, copies.back()->cache);
      }
      for (std::size_t r = 0; r < R; ++r) {
        Sequence s{p * R + r, r == 0 ? &ps.state : copies[r - 1].get(), sequence_rng(cfg_.seed, r), matcher(ps.ids),
                   max_len};
        std::optional<Draft> draft;
        if (cfg_.assistant_model)
          draft.emplace(Draft{cfg_.assistant_model.config(), cfg_.assistant_model.weights(),
                              InferenceState(cfg_.assistant_model.config()), draft_rng(cfg_.seed, r), {}, {}, {}});
        speculate(s, draft ? &*draft : nullptr);
      }
    }
  }

  // Generates one sequence: each pass runs [last id, proposals...] through the model in one forward
  // pass, keeps the tokens the model agrees with plus the one it chooses after them, and rolls the
  // cache back past the rest.
  void speculate(Sequence& s, Draft* draft) {
    GenerationResult& res = results_[s.result];
    std::vector<int>& ids = res.sequence;
    layers::KVCache& cache = s.state->cache;
    SpeculationStats& st = res.speculation;
    std::vector<int> proposals, pass;
    std::vector<double> p;
    std::vector<TokenLogprob> top;
    // Greedy choices on raw logits (eos ids a minimum length may hold back never count as beating a
    // proposal): the head can stop computing rows after a rejection.
    const bool prunable = !cfg_.do_sample && !processes_beyond_eos(cfg_);
    const std::vector<int> ignored = maybe_held_back(cfg_, eos_);
    const std::size_t lookup_tokens = static_cast<std::size_t>(cfg_.prompt_lookup_num_tokens);
    ProposalLength length = draft ? ProposalLength{static_cast<std::size_t>(cfg_.num_assistant_tokens), 1,
                                                   std::numeric_limits<std::size_t>::max(),
                                                   cfg_.num_assistant_tokens_schedule != "constant"}
                                  : ProposalLength{lookup_tokens, std::min<std::size_t>(4, lookup_tokens), lookup_tokens, true};
    for (bool finished = false; !finished;) {
      const std::size_t n = ids.size(), room = s.max_length - n - 1;  // tokens after this pass's last choice
      const std::size_t wanted = std::min(room, length.tokens);
      proposals = draft ? propose(*draft, ids, res.prompt_length, wanted)
                        : prompt_lookup(ids, static_cast<std::size_t>(cfg_.max_matching_ngram_size), wanted,
                                        res.prompt_length);
      const std::size_t k = proposals.size();
      pass.assign(1, ids.back());
      pass.insert(pass.end(), proposals.begin(), proposals.end());
      forward_hidden<Backend>(m_.config, m_.weights, *s.state, pass.data(), k + 1);  // cache: ids + proposals
      [[maybe_unused]] std::size_t complete = k + 1;  // logits_ [k + 1, V], rows [0, complete) computed
      if (prunable)
        complete = head_greedy(s.state->x.data(), k + 1, proposals.data(), ignored, ids);
      else
        head(s.state->x.data(), k + 1);
      ++st.target_passes;
      st.proposed += k;
      std::size_t accepted = 0;
      for (std::size_t i = 0; i <= k && !finished; ++i) {
        assert(i < complete);  // a row past `complete` follows a rejected proposal
        float* row = logits_.data() + i * V_;
        int token = 0;
        float logprob = 0;
        if (draft && cfg_.do_sample && i < k) {  // speculative sampling against the draft's q
          process(row, {ids.data(), ids.size(), res.prompt_length}, cfg_, eos_);
          warp(row, V_, cfg_);
          probabilities(row, V_, p);
          token = speculative_sample(p, draft->q.data() + i * V_, proposals[i], s.rng).first;
          if (scores_) logprob = token_logprob(row, V_, token, static_cast<std::size_t>(cfg_.top_logprobs), &top);
        } else {  // greedy, or sampling one token as plain decoding would
          choose(s, row, token, logprob, top);
        }
        const bool agreed = i < k && token == proposals[i];
        accepted += agreed;
        finished = emit(s, token, logprob, top);
        if (!agreed) break;
      }
      st.accepted += accepted;
      // The cache holds ids[0, n) + proposals: keep what the sequence still has, but never its last id.
      cache.set_length(static_cast<int>(std::min(n + accepted, ids.size() - 1)));
      length.update(k, accepted);
    }
    st.generated = ids.size() - res.prompt_length;
    if (draft) st.draft_passes = draft->passes;
  }

  // Up to `wanted` proposals of the draft model after ids, greedy or sampled (then draft.q keeps each
  // one's distribution). Stops early after a token the draft gives a probability below
  // assistant_confidence_threshold, and at the draft's context limit.
  std::vector<int> propose(Draft& d, const std::vector<int>& ids, std::size_t prompt_length, std::size_t wanted) {
    const std::size_t ctx = static_cast<std::size_t>(d.config.n_positions);
    std::size_t k = wanted;
    if (ids.size() >= ctx) return {};
    k = std::min(k, ctx - ids.size());  // the draft runs ids + k - 1 proposals
    if (k == 0) return {};
    // Roll the draft's cache back to what it shares with ids (all but the last id at most), run the rest.
    std::size_t keep = 0;
    while (keep < d.cached_ids.size() && keep + 1 < ids.size() && d.cached_ids[keep] == ids[keep]) ++keep;
    d.state.cache.set_length(static_cast<int>(keep));
    d.cached_ids.assign(ids.begin(), ids.end());
    const std::size_t Cd = static_cast<std::size_t>(d.config.n_embd);  // its vocabulary is the model's (V_)
    forward_hidden<Backend>(d.config, d.weights, d.state, ids.data() + keep, ids.size() - keep);
    ++d.passes;
    d.logits.resize(V_);
    lm_head<Backend>(d.config, d.weights, d.state.x.data() + (ids.size() - keep - 1) * Cd, 1, d.logits.data());
    std::vector<int> out, seq = ids;
    std::vector<double> q;
    d.q.clear();
    for (std::size_t j = 0; j < k; ++j) {
      float* row = d.logits.data();
      process(row, {seq.data(), seq.size(), prompt_length}, cfg_, eos_);
      if (cfg_.do_sample) warp(row, V_, cfg_);
      probabilities(row, V_, q);
      const int t = cfg_.do_sample ? draw(q, 1.0, d.rng) : argmax(row, V_);
      if (cfg_.do_sample) d.q.insert(d.q.end(), q.begin(), q.end());
      out.push_back(t);
      seq.push_back(t);
      if (j + 1 == k || q[static_cast<std::size_t>(t)] < static_cast<double>(cfg_.assistant_confidence_threshold))
        break;
      forward_hidden<Backend>(d.config, d.weights, d.state, &t, 1);
      ++d.passes;
      d.cached_ids.push_back(t);
      lm_head<Backend>(d.config, d.weights, d.state.x.data(), 1, d.logits.data());
    }
    return out;
  }

  // Greedy or sampled choice for one sequence from its logits row (overwritten with the scores).
  void choose(Sequence& s, float* row, int& token, float& logprob, std::vector<TokenLogprob>& top) const {
    const std::vector<int>& ids = results_[s.result].sequence;
    process(row, {ids.data(), ids.size(), results_[s.result].prompt_length}, cfg_, eos_);
    if (cfg_.do_sample) warp(row, V_, cfg_);
    token = cfg_.do_sample ? sample_from(row, V_, s.rng) : argmax(row, V_);
    if (scores_) logprob = token_logprob(row, V_, token, static_cast<std::size_t>(cfg_.top_logprobs), &top);
  }

  void run_beams(std::vector<PromptState>& prompts) {
    const std::size_t R = static_cast<std::size_t>(cfg_.num_return_sequences),
                      nb = static_cast<std::size_t>(cfg_.num_beams);
    std::vector<BeamGroup> groups;
    std::vector<float> first;
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      const std::size_t max_len = max_length(prompts[p].ids);
      if (max_len == prompts[p].ids.size()) continue;
      const float* h = prefill(prompts[p]);
      BeamGroup g{p * R,
                  BeamSearch(cfg_, prompts[p].ids, max_len, eos_, matcher(prompts[p].ids)),
                  {},
                  sequence_rng(cfg_.seed, 0)};
      for (std::size_t b = 0; b < nb; ++b) {
        g.states.push_back(std::make_unique<InferenceState>(m_.config));
        copy_cache(m_.config, prompts[p].state.cache, g.states.back()->cache);
        first.insert(first.end(), h, h + C_);
      }
      groups.push_back(std::move(g));
    }
    const float* hidden = first.data();
    Activations act;
    std::vector<RowScores> info;
    const std::size_t min_keep = eos_.size() + 1;  // HF's min_tokens_to_keep for beam sampling
    while (!groups.empty()) {
      const std::size_t n = groups.size() * nb;
      head(hidden, n);
      info.assign(scores_ ? n : 0, {});
      Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) {
          float* row = logits_.data() + i * V_;
          const BeamSearch::Beam& beam = groups[i / nb].search.running()[i % nb];
          log_softmax(row);
          process(row, {beam.ids.data(), beam.ids.size(), results_[groups[i / nb].first_result].prompt_length}, cfg_,
                  eos_);
          if (cfg_.do_sample) warp(row, V_, cfg_, min_keep);
          if (scores_) info[i].log_norm = log_norm_and_top(row, info[i].top);
        }
      });
      std::vector<BeamGroup> next;
      std::vector<int> tokens;
      std::vector<layers::KVCache*> caches;
      for (std::size_t gi = 0; gi < groups.size(); ++gi) {
        BeamGroup& g = groups[gi];
        const std::vector<std::size_t> parents =
            g.search.step(logits_.data() + gi * nb * V_, V_, scores_ ? info.data() + gi * nb : nullptr, g.rng,
                          [this](int id) { return bytes(id); });
        if (g.search.done()) {
          std::vector<GenerationResult> best = g.search.results(R);
          for (std::size_t r = 0; r < best.size(); ++r) results_[g.first_result + r] = std::move(best[r]);
          continue;
        }
        reorder(g.states, parents);
        for (std::size_t b = 0; b < nb; ++b) {
          tokens.push_back(g.search.running()[b].ids.back());
          caches.push_back(&g.states[b]->cache);
        }
        next.push_back(std::move(g));
      }
      groups = std::move(next);
      if (groups.empty()) break;
      forward_batch<Backend>(m_.config, m_.weights, act, caches.data(), tokens.data(), tokens.size());
      hidden = act.x.data();
    }
  }

  // row = log_softmax(row), in place (HF: beam search scores log-probabilities).
  void log_softmax(float* row) const {
    const double log_norm = log_normalizer(row, V_);
    for (std::size_t i = 0; i < V_; ++i) row[i] = static_cast<float>(static_cast<double>(row[i]) - log_norm);
  }

  double log_norm_and_top(const float* row, std::vector<TokenLogprob>& top) const {
    const double log_norm = log_normalizer(row, V_);
    top = top_logprobs(row, V_, static_cast<std::size_t>(cfg_.top_logprobs), log_norm);
    return log_norm;
  }

  // states[j] <- the cache of old beam parents[j]: moved for a parent's first child, copied after.
  void reorder(std::vector<std::unique_ptr<InferenceState>>& states, const std::vector<std::size_t>& parents) {
    std::vector<std::unique_ptr<InferenceState>> old = std::move(states);
    states.clear();
    states.resize(old.size());
    std::vector<std::size_t> first_child(old.size(), old.size());
    for (std::size_t j = 0; j < parents.size(); ++j)
      if (first_child[parents[j]] == old.size()) {
        first_child[parents[j]] = j;
        states[j] = std::move(old[parents[j]]);
      }
    std::size_t spare = 0;
    for (std::size_t j = 0; j < parents.size(); ++j) {
      if (states[j]) continue;
      while (spare < old.size() && !old[spare]) ++spare;  // a beam with no children: reuse its buffers
      states[j] = spare < old.size() ? std::move(old[spare]) : std::make_unique<InferenceState>(m_.config);
      copy_cache(m_.config, states[first_child[parents[j]]]->cache, states[j]->cache);
    }
  }

  const ModelRef m_;
  const GenerationConfig& cfg_;
  std::vector<int> eos_;
  bool scores_;
  const TokenCallback* on_token_;
  std::size_t V_, C_;
  std::vector<GenerationResult> results_;
  std::vector<std::unique_ptr<InferenceState>> owned_;  // caches of return sequences r > 0
  std::vector<float> logits_;                           // [rows, V]
  std::vector<int> likely_;                             // head_greedy's ids to try first
};

}  // namespace tinyllm::detail
