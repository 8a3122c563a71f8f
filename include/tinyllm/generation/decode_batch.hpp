// Greedy search and sampling over a batch of sequences that advance together, one token per step:
// a step chooses the next token of every running sequence from one head pass over all of them, then
// runs the ones that go on through the model in one forward_batch, so each step reads the weights
// once for the whole batch. Sequences join (add, fork) and leave (remove) between steps, each with
// its own config, random stream and callback: generate_batch runs its prompts this way, and a
// server can batch requests continuously.
//
// Determinism: a row's arithmetic does not depend on the other rows (forward_batch and the head are
// bitwise equal to running the sequence alone), each sequence draws from its own random stream, and
// its processors see only its own ids. So a sequence's tokens do not depend on the batch around it,
// on when it joined, on the thread count, or on the run.
// Depends on generation/sequence.hpp.
#pragma once

#include <cstddef>  // std::size_t
#include <cstring>  // std::memcpy
#include <map>      // std::map
#include <memory>   // std::unique_ptr, std::make_unique
#include <string>   // std::to_string
#include <utility>  // std::move
#include <vector>   // std::vector

#include "../error.hpp"
#include "../model/gpt2_model.hpp"
#include "output.hpp"
#include "sequence.hpp"

namespace tinyllm::detail {

template <class Backend>
class DecodeBatch {
 public:
  using Id = std::size_t;  // a sequence's handle, unique for the batch's lifetime

  explicit DecodeBatch(const ModelRef& m)
      : m_(m), V_(static_cast<std::size_t>(m.config.vocab_size)), C_(static_cast<std::size_t>(m.config.n_embd)) {}

  // Adds a sequence continuing ids (checked by the caller: not empty, at most n_positions, every id
  // in the vocabulary) in `state`, whose cache holds ids[0, cache.length()) (all but the last at
  // most); the rest runs through the model now. state, like opts.cfg, must outlive the sequence. Its
  // first token comes at the next step. With nothing to generate (max_length, max_new_tokens or
  // n_positions reached) the sequence is finished at once, its result the prompt, and nothing runs.
  Id add(const std::vector<int>& ids, InferenceState& state, SequenceOptions opts) {
    return insert(ids, &state, nullptr, std::move(opts));
  }
  // The same in a state of its own, empty: all of ids runs now.
  Id add(const std::vector<int>& ids, SequenceOptions opts) {
    auto state = std::make_unique<InferenceState>(m_.config);
    InferenceState* s = state.get();
    return insert(ids, s, std::move(state), std::move(opts));
  }
  // Adds a copy of sequence `of` as it is now (ids, scores, stop-string state, cache, next row to
  // choose from) with random stream `stream`: return sequence r of a prompt is fork(first, r).
  Id fork(Id of, std::size_t stream) {
    Entry& from = at(of);
    SequenceOptions opts = from.seq.options;
    opts.stream = stream;
    Entry e{next_id_, Sequence(m_, {}, nullptr, std::move(opts)), nullptr, {}, nullptr, from.finished};
    e.seq.result = from.seq.result;
    e.seq.stop = from.seq.stop;
    e.seq.max_length = from.seq.max_length;
    if (!from.finished) {
      e.owned = std::make_unique<InferenceState>(m_.config);
      copy_cache(m_.config, from.seq.state->cache, e.owned->cache);
      e.seq.state = e.owned.get();
      e.first.assign(from.hidden, from.hidden + C_);
      e.hidden = e.first.data();
    }
    return put(std::move(e));
  }

  // One token for every running sequence; those that go on run through the model together.
  // Callbacks run here, in the order the sequences were added. Returns the sequences that finished.
  std::vector<Id> step() {
    std::vector<Entry*> run;
    for (auto& [id, e] : entries_)
      if (!e.finished) run.push_back(&e);
    const std::size_t n = run.size();
    if (n == 0) return {};
    choose_all(run);
    std::vector<Id> done;
    std::vector<Entry*> next;
    std::vector<int> tokens;
    std::vector<layers::KVCache*> caches;
    for (std::size_t i = 0; i < n; ++i) {
      Entry& e = *run[i];
      if (e.seq.emit(chosen_[i], logprob_[i], top_[i])) {
        e.finished = true;
        done.push_back(e.id);
        continue;
      }
      next.push_back(&e);
      tokens.push_back(chosen_[i]);
      caches.push_back(&e.seq.state->cache);
    }
    if (next.empty()) return done;
    forward_batch<Backend>(m_.config, m_.weights, act_, caches.data(), tokens.data(), tokens.size());
    for (std::size_t i = 0; i < next.size(); ++i) next[i]->hidden = act_.x.data() + i * C_;
    return done;
  }

  // Takes a sequence out, finished or not (a cancelled request), and returns its result. Its
  // state's cache holds every id of the result but the last (or, unfinished, all of them).
  GenerationResult remove(Id id) {
    GenerationResult r = std::move(at(id).seq.result);
    entries_.erase(id);
    return r;
  }

  const GenerationResult& result(Id id) const { return at(id).seq.result; }
  bool finished(Id id) const { return at(id).finished; }
  std::size_t size() const { return entries_.size(); }  // sequences in the batch, finished or not
  std::size_t running() const {
    std::size_t n = 0;
    for (const auto& kv : entries_) n += !kv.second.finished;
    return n;
  }

 private:
  struct Entry {
    Id id;
    Sequence seq;
    std::unique_ptr<InferenceState> owned;  // seq.state when the batch made it
    std::vector<float> first;               // [C]: the row of its last id before its first step
    const float* hidden;                    // [C]: the row its next token is chosen from (first, or act_)
    bool finished;
  };

  Id insert(const std::vector<int>& ids, InferenceState* state, std::unique_ptr<InferenceState> owned,
            SequenceOptions opts) {
    Entry e{next_id_, Sequence(m_, ids, state, std::move(opts)), std::move(owned), {}, nullptr, false};
    e.finished = e.seq.max_length == ids.size();  // nothing to generate
    if (!e.finished) {
      const float* h = prefill<Backend>(m_, ids, *state);
      e.first.assign(h, h + C_);
      e.hidden = e.first.data();
    }
    return put(std::move(e));
  }
  Id put(Entry e) {
    const Id id = next_id_++;
    entries_.emplace(id, std::move(e));
    return id;
  }
  Entry& at(Id id) { return find(entries_, id); }
  const Entry& at(Id id) const { return find(entries_, id); }
  template <class Map>
  static auto& find(Map& entries, Id id) {
    auto it = entries.find(id);
    if (it == entries.end()) fail("DecodeBatch", "no sequence " + std::to_string(id));
    return it->second;
  }

  // logits_ of every running sequence's row, then each one's choice (chosen_, logprob_, top_).
  void choose_all(const std::vector<Entry*>& run) {
    const std::size_t n = run.size();
    const float* rows = act_.x.data();
    for (std::size_t i = 0; i < n && rows; ++i)
      if (run[i]->hidden != act_.x.data() + i * C_) rows = nullptr;
    if (!rows) {  // sequences joined or left since the last pass: gather their rows
      in_.resize(n * C_);
      for (std::size_t i = 0; i < n; ++i) std::memcpy(in_.data() + i * C_, run[i]->hidden, C_ * sizeof(float));
      rows = in_.data();
    }
    logits_.resize(n * V_);
    lm_head<Backend>(m_.weights, rows, n, logits_.data());
    chosen_.assign(n, 0);
    logprob_.assign(n, 0.0f);
    top_.assign(n, {});
    Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) run[i]->seq.choose(logits_.data() + i * V_, V_, chosen_[i], logprob_[i], top_[i]);
    });
  }

  const ModelRef m_;
  std::size_t V_, C_;
  std::map<Id, Entry> entries_;  // in the order added
  Id next_id_ = 0;
  Activations act_;                 // the last forward_batch: row i of x is next[i]'s
  std::vector<float> in_, logits_;  // gathered rows [n, C]; logits [n, V]
  std::vector<int> chosen_;
  std::vector<float> logprob_;
  std::vector<std::vector<TokenLogprob>> top_;
};

// Greedy search or sampling of num_return_sequences sequences per prompt (results[p * R + r]),
// all in one DecodeBatch; sequence 0 of a prompt continues in the prompt's own state, r > 0 in a
// copy of it, drawing from random stream r.
template <class Backend>
void run_sampling(const ModelRef& m, std::vector<PromptState>& prompts, const SequenceOptions& opts,
                  std::vector<GenerationResult>& results) {
  const std::size_t R = static_cast<std::size_t>(opts.cfg->num_return_sequences);
  DecodeBatch<Backend> batch(m);
  std::vector<typename DecodeBatch<Backend>::Id> ids;
  for (PromptState& p : prompts) {
    const auto first = batch.add(p.ids, p.state, opts);
    ids.push_back(first);
    for (std::size_t r = 1; r < R; ++r) ids.push_back(batch.fork(first, r));
  }
  while (batch.running() > 0) batch.step();
  for (std::size_t i = 0; i < ids.size(); ++i) results[i] = batch.remove(ids[i]);
}

}  // namespace tinyllm::detail
