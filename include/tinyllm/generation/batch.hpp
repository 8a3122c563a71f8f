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
#include <cstddef>      // std::size_t
#include <cstring>      // std::memcpy
#include <functional>   // std::function
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
        GenerationResult& res = results_[s.result];
        const int t = chosen[i];
        res.sequence.push_back(t);
        if (scores_) {
          res.logprobs.push_back(logprob[i]);
          res.sequence_score += logprob[i];
          if (cfg_.top_logprobs > 0) res.top_logprobs.push_back(std::move(top[i]));
        }
        std::optional<FinishReason> end;
        if (std::find(eos_.begin(), eos_.end(), t) != eos_.end())
          end = FinishReason::eos;
        else if (s.stop.active() && s.stop.push(bytes(t)))
          end = FinishReason::stop_string;
        else if (res.sequence.size() >= s.max_length)
          end = FinishReason::length;
        if (on_token_ && !(*on_token_)(s.result, t) && !end) end = FinishReason::stopped;
        if (end) {
          res.finish_reason = *end;
          continue;
        }
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
};

}  // namespace tinyllm::detail
