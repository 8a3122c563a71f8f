// Beam search over one prompt, with the semantics of Hugging Face's beam search (transformers >= 4.50,
// GenerationMixin._beam_search): the bookkeeping only; the caller runs the model and the processors.
//
// Each step takes the processed log-probabilities of the num_beams running beams and
//   1. scores every continuation as beam score + log-prob, and keeps the best
//      beams_to_keep = max(2, 1 + number of eos ids) * num_beams (beam sampling: draws them instead);
//   2. marks those that end (eos, a stop string, or max_length);
//   3. continues the best num_beams that do not end (an ended one gets -1e9, as in HF);
//   4. files each ending candidate ranked in the first num_beams as a hypothesis scored
//      sum of log-probs / (new tokens, eos included) ^ length_penalty, keeping the best num_beams;
//   5. stops when early_stopping says so (see EarlyStopping) or every candidate ended.
// Depends on generation/config.hpp, output.hpp, sampling.hpp, stop_strings.hpp.
#pragma once

#include <algorithm>    // std::sort, std::stable_sort, std::find, std::min
#include <cmath>        // std::pow
#include <cstddef>      // std::size_t
#include <optional>     // std::optional
#include <random>       // std::mt19937_64
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include "config.hpp"
#include "output.hpp"
#include "sampling.hpp"
#include "stop_strings.hpp"

namespace tinyllm::detail {

// Log-softmax normaliser and best alternatives of one processed row, for GenerationResult.
struct RowScores {
  double log_norm = 0;
  std::vector<TokenLogprob> top;
};

class BeamSearch {
 public:
  struct Beam {
    std::vector<int> ids;  // prompt + generated
    float score = 0;       // sum of processed log-probs (HF: running_beam_scores)
    std::vector<float> logprobs;
    std::vector<std::vector<TokenLogprob>> top;
    StopStringMatcher stop;
  };

  // max_length: prompt + new tokens at most (already capped at the model's n_positions).
  BeamSearch(const GenerationConfig& cfg, const std::vector<int>& prompt, std::size_t max_length,
             const std::vector<int>& eos, const StopStringMatcher& stop)
      : cfg_(cfg),
        eos_(eos),
        prompt_length_(prompt.size()),
        max_length_(max_length),
        beams_(static_cast<std::size_t>(cfg.num_beams)) {
    for (std::size_t b = 0; b < beams_.size(); ++b) {
      beams_[b].ids = prompt;
      beams_[b].score = b == 0 ? 0.0f : -1e9f;  // only the first copy of the prompt expands at step one
      beams_[b].stop = stop;
    }
  }

  const std::vector<Beam>& running() const { return beams_; }
  bool done() const { return done_; }

  // rows: [num_beams, V] processed log-probs, row b for running beam b; info: per row, or null when
  // no scores are wanted; rng: for beam sampling. bytes(id) gives a token's bytes (stop strings).
  // Returns, for each new running beam j, the old beam it continues (to reorder KV caches).
  template <class TokenBytes>
  std::vector<std::size_t> step(const float* rows, std::size_t V, const RowScores* info, std::mt19937_64& rng,
                                TokenBytes&& bytes) {
    const std::size_t nb = beams_.size(), keep = std::max<std::size_t>(2, 1 + eos_.size()) * nb;
    std::vector<Candidate> cand =
        cfg_.do_sample ? sample_candidates(rows, V, keep, rng) : best_candidates(rows, V, keep);
    const std::size_t cur_len = beams_[0].ids.size();
    for (Candidate& c : cand) c.end = ends(beams_[c.beam], c.token, bytes);

    // 3. the next running beams: the best num_beams, ended ones pushed to the back by -1e9
    std::vector<std::size_t> order(cand.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto running_score = [&](std::size_t i) { return cand[i].score + (cand[i].end ? -1e9f : 0.0f); };
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return running_score(a) > running_score(b); });

    // 4. file the candidates that ended, if ranked in the first num_beams
    const bool full = finished_.size() == nb;
    const float length = penalty(cur_len + 1 - prompt_length_);
    for (std::size_t i = 0; i < cand.size() && i < nb; ++i) {
      if (!cand[i].end || (full && cfg_.early_stopping.value() == EarlyStopping::early) || !improvable_) continue;
      Hypothesis h{extend(cand[i], rows, V, info, bytes), cand[i].score / length, *cand[i].end};
      finished_.push_back(std::move(h));
    }
    std::stable_sort(finished_.begin(), finished_.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (finished_.size() > nb) finished_.resize(nb);

    std::vector<Beam> next;
    std::vector<std::size_t> parents;
    for (std::size_t j = 0; j < nb; ++j) {
      next.push_back(extend(cand[order[j]], rows, V, info, bytes));
      next.back().score = running_score(order[j]);
      parents.push_back(cand[order[j]].beam);
    }
    beams_ = std::move(next);

    // 5. can a running beam still beat the worst finished hypothesis?
    const bool all_finished = finished_.size() == nb;
    const std::size_t best_len = cfg_.early_stopping.value() == EarlyStopping::never && cfg_.length_penalty > 0.0f
                                     ? max_length_ - prompt_length_
                                     : cur_len + 1 - prompt_length_;
    const float best_possible = beams_[0].score / penalty(best_len);
    improvable_ = improvable_ && (!all_finished || best_possible > finished_.back().score);
    bool all_ended = true;
    for (const Candidate& c : cand) all_ended = all_ended && c.end;
    done_ = !improvable_ || (all_finished && cfg_.early_stopping.value() == EarlyStopping::early) || all_ended;
    return parents;
  }

  // The best n hypotheses, best first (HF: sequences[:num_return_sequences], sequences_scores).
  std::vector<GenerationResult> results(std::size_t n) const {
    std::vector<GenerationResult> out;
    for (std::size_t i = 0; i < finished_.size() && out.size() < n; ++i)
      out.push_back(to_result(finished_[i].beam, finished_[i].score, finished_[i].reason));
    // Not reached by the loop above, but kept safe: fill from the running beams.
    const float length = penalty(beams_[0].ids.size() - prompt_length_);
    for (std::size_t i = 0; out.size() < n && i < beams_.size(); ++i)
      out.push_back(to_result(beams_[i], beams_[i].score / length, FinishReason::length));
    return out;
  }

 private:
  struct Candidate {
    float score;       // beam score + log-prob
    std::size_t beam;  // the running beam it continues
    int token;
    std::optional<FinishReason> end = {};  // why the beam ends with this token, if it does
  };
  struct Hypothesis {
    Beam beam;
    float score;  // length-penalised
    FinishReason reason;
  };

  // new_tokens ^ length_penalty (HF: a Python float, applied to float32 scores)
  float penalty(std::size_t new_tokens) const {
    return static_cast<float>(std::pow(static_cast<double>(new_tokens), static_cast<double>(cfg_.length_penalty)));
  }

  // The `keep` best (beam, token) pairs, best first; ties: the lower beam, then the lower id.
  std::vector<Candidate> best_candidates(const float* rows, std::size_t V, std::size_t keep) const {
    std::vector<Candidate> all;
    all.reserve(beams_.size() * V);
    for (std::size_t b = 0; b < beams_.size(); ++b)
      for (std::size_t t = 0; t < V; ++t) all.push_back({rows[b * V + t] + beams_[b].score, b, static_cast<int>(t)});
    keep = std::min(keep, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(),
                      [](const Candidate& a, const Candidate& c) {
                        return a.score > c.score ||
                               (a.score == c.score && (a.beam < c.beam || (a.beam == c.beam && a.token < c.token)));
                      });
    all.resize(keep);
    return all;
  }

  // Beam sampling: `keep` draws without replacement from softmax(beam score + log-prob) over all
  // (beam, token) pairs, in the order drawn (HF: torch.multinomial(probs, keep)).
  std::vector<Candidate> sample_candidates(const float* rows, std::size_t V, std::size_t keep,
                                           std::mt19937_64& rng) const {
    std::vector<float> acc(beams_.size() * V);
    for (std::size_t b = 0; b < beams_.size(); ++b)
      for (std::size_t t = 0; t < V; ++t) acc[b * V + t] = rows[b * V + t] + beams_[b].score;
    std::vector<Candidate> out;
    std::vector<char> taken(acc.size(), 0);
    for (std::size_t k = 0; k < keep && k < acc.size(); ++k) {
      std::size_t i = static_cast<std::size_t>(sample_from(acc.data(), acc.size(), rng));
      if (taken[i])  // no probability left (HF's multinomial would fail): take the first free pair
        for (i = 0; taken[i];) ++i;
      out.push_back({beams_[i / V].score + rows[i], i / V, static_cast<int>(i % V)});
      taken[i] = 1;
      acc[i] = neg_inf;
    }
    return out;
  }

  // Why a beam extended by `token` ends, if it does.
  template <class TokenBytes>
  std::optional<FinishReason> ends(const Beam& b, int token, TokenBytes& bytes) const {
    if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) return FinishReason::eos;
    if (b.stop.active()) {
      StopStringMatcher m = b.stop;
      if (m.push(bytes(token))) return FinishReason::stop_string;
    }
    if (b.ids.size() + 1 >= max_length_) return FinishReason::length;
    return std::nullopt;
  }

  // The beam of a candidate: its parent plus the token, with the token's scores.
  template <class TokenBytes>
  Beam extend(const Candidate& c, const float* rows, std::size_t V, const RowScores* info, TokenBytes& bytes) const {
    Beam b = beams_[c.beam];
    b.ids.push_back(c.token);
    if (b.stop.active()) b.stop.push(bytes(c.token));
    if (info) {
      b.logprobs.push_back(static_cast<float>(
          static_cast<double>(rows[c.beam * V + static_cast<std::size_t>(c.token)]) - info[c.beam].log_norm));
      b.top.push_back(info[c.beam].top);
    }
    return b;
  }

  GenerationResult to_result(const Beam& b, float score, FinishReason reason) const {
    GenerationResult r;
    r.sequence = b.ids;
    r.prompt_length = prompt_length_;
    r.logprobs = b.logprobs;
    r.top_logprobs = b.top;
    r.sequence_score = score;
    r.finish_reason = reason;
    return r;
  }

  const GenerationConfig& cfg_;
  const std::vector<int>& eos_;
  std::size_t prompt_length_, max_length_;
  std::vector<Beam> beams_;
  std::vector<Hypothesis> finished_;  // best first, at most num_beams
  bool improvable_ = true;            // HF: is_early_stop_heuristic_unsatisfied
  bool done_ = false;
};

}  // namespace tinyllm::detail
