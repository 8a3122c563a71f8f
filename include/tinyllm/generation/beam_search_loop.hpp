// The beam search loop (the bookkeeping: beam_search.hpp): every prompt's num_beams running beams
// advance together, one token per step, in one head pass and one forward_batch for all of them; a
// beam's KV cache follows it when beams are reordered. A prompt's group leaves the batch when its
// search is done.
// Depends on generation/sequence.hpp and generation/beam_search.hpp.
#pragma once

#include <cstddef>  // std::size_t
#include <memory>   // std::unique_ptr, std::make_unique
#include <random>   // std::mt19937_64
#include <utility>  // std::move
#include <vector>   // std::vector

#include "../model/gpt2_model.hpp"
#include "beam_search.hpp"
#include "output.hpp"
#include "processors.hpp"
#include "sampling.hpp"
#include "sequence.hpp"

namespace tinyllm::detail {

template <class Backend>
class BeamSearchLoop {
 public:
  BeamSearchLoop(const ModelRef& m, const GenerationConfig& cfg, const std::vector<int>& eos, bool scores)
      : m_(m),
        cfg_(cfg),
        eos_(eos),
        scores_(scores),
        nb_(static_cast<std::size_t>(cfg.num_beams)),
        V_(static_cast<std::size_t>(m.config.vocab_size)),
        C_(static_cast<std::size_t>(m.config.n_embd)) {}

  // The best num_return_sequences sequences of each prompt into results[p * R ...], best first.
  void run(std::vector<PromptState>& prompts, std::vector<GenerationResult>& results) {
    const std::size_t R = static_cast<std::size_t>(cfg_.num_return_sequences);
    std::vector<float> first;  // hidden rows of the first step [groups * num_beams, C]
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      const std::size_t max_len = max_length(m_.config, cfg_, prompts[p].ids.size());
      if (max_len == prompts[p].ids.size()) continue;  // nothing to generate
      const float* h = prefill<Backend>(m_, prompts[p].ids, prompts[p].state);
      Group g{p * R, prompts[p].ids.size(),
              BeamSearch(cfg_, prompts[p].ids, max_len, eos_, stop_matcher(m_.tokenizer, cfg_, prompts[p].ids)),
              {}, random_stream(cfg_.seed, 0)};
      for (std::size_t b = 0; b < nb_; ++b) {
        g.states.push_back(std::make_unique<InferenceState>(m_.config));
        copy_cache(m_.config, prompts[p].state.cache, g.states.back()->cache);
        first.insert(first.end(), h, h + C_);
      }
      groups_.push_back(std::move(g));
    }
    for (const float* hidden = first.data(); !groups_.empty(); hidden = act_.x.data()) {
      process_rows(hidden);
      if (!advance(results, R)) break;
    }
  }

 private:
  // One prompt's beam search and the KV caches of its running beams.
  struct Group {
    std::size_t first_result, prompt_length;
    BeamSearch search;
    std::vector<std::unique_ptr<InferenceState>> states;  // [num_beams]
    std::mt19937_64 rng;
  };

  // logits_ [groups * num_beams, V] of the running beams' rows, as HF's beam search scores them:
  // log_softmax, then the processors (and warpers when sampling); info_ their normalisers and
  // alternatives when scores are wanted.
  void process_rows(const float* hidden) {
    const std::size_t n = groups_.size() * nb_;
    logits_.resize(n * V_);
    lm_head<Backend>(m_.weights, hidden, n, logits_.data());
    info_.assign(scores_ ? n : 0, {});
    const std::size_t min_keep = eos_.size() + 1;  // HF's min_tokens_to_keep for beam sampling
    Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        float* row = logits_.data() + i * V_;
        const Group& g = groups_[i / nb_];
        const BeamSearch::Beam& beam = g.search.running()[i % nb_];
        log_softmax(row);
        process(row, {beam.ids.data(), beam.ids.size(), g.prompt_length}, cfg_, eos_);
        if (cfg_.do_sample) warp(row, V_, cfg_, min_keep);
        if (scores_) {
          info_[i].log_norm = log_normalizer(row, V_);
          info_[i].top = top_logprobs(row, V_, static_cast<std::size_t>(cfg_.top_logprobs), info_[i].log_norm);
        }
      }
    });
  }

  // One step of every group's search; finished groups leave (their results filed), the running beams
  // of the others go through the model. Returns whether any group is left.
  bool advance(std::vector<GenerationResult>& results, std::size_t R) {
    std::vector<Group> next;
    std::vector<int> tokens;
    std::vector<layers::KVCache*> caches;
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      Group& g = groups_[gi];
      const std::vector<std::size_t> parents =
          g.search.step(logits_.data() + gi * nb_ * V_, V_, scores_ ? info_.data() + gi * nb_ : nullptr, g.rng,
                        [this](int id) { return token_bytes(m_.tokenizer, id); });
      if (g.search.done()) {
        std::vector<GenerationResult> best = g.search.results(R);
        for (std::size_t r = 0; r < best.size(); ++r) results[g.first_result + r] = std::move(best[r]);
        continue;
      }
      reorder(g.states, parents);
      for (std::size_t b = 0; b < nb_; ++b) {
        tokens.push_back(g.search.running()[b].ids.back());
        caches.push_back(&g.states[b]->cache);
      }
      next.push_back(std::move(g));
    }
    groups_ = std::move(next);
    if (groups_.empty()) return false;
    forward_batch<Backend>(m_.config, m_.weights, act_, caches.data(), tokens.data(), tokens.size());
    return true;
  }

  // row = log_softmax(row), in place (HF: beam search scores log-probabilities).
  void log_softmax(float* row) const {
    const double log_norm = log_normalizer(row, V_);
    for (std::size_t i = 0; i < V_; ++i) row[i] = static_cast<float>(static_cast<double>(row[i]) - log_norm);
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
  const std::vector<int>& eos_;
  bool scores_;
  std::size_t nb_, V_, C_;
  std::vector<Group> groups_;
  Activations act_;
  std::vector<float> logits_;  // [groups * num_beams, V]
  std::vector<RowScores> info_;
};

}  // namespace tinyllm::detail
